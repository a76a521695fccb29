//! SWIM membership (Das, Gupta, Motivala, "SWIM: Scalable Weakly-consistent
//! Infection-style Process Group Membership Protocol", DSN 2002) as a pure
//! core, with a phi-accrual detector option (Hayashibara, Défago, Yared,
//! Katayama, "The φ Accrual Failure Detector", SRDS 2004) and push-pull
//! anti-entropy of the membership and a small metadata map (Demers et al.,
//! PODC 1987; HashiCorp memberlist's push-pull).
//!
//! **Failure detection (§3.1, §4.3).** Every protocol period
//! (`period-ticks`) a member probes one other member, taken from a
//! shuffled round-robin list of the members it does not think dead: a
//! `Ping`, answered by an `Ack`. With no ack after `ping-timeout-ticks` it
//! asks `k` other random members to probe the target on its behalf
//! (`PingReq`; the relay pings the target and forwards the ack). With no
//! ack, direct or indirect, by the end of the period the target is
//! *suspected*.
//!
//! **Suspicion (§4.2).** A `Suspect{M, inc}` spreads like any update;
//! every member that holds it starts a timer of `suspicion-mult` ×
//! max(1, log10 n) periods (memberlist's formula) and declares `M` dead
//! (`Dead{M, inc}`, the paper's Confirm) when it expires. A suspected
//! member that hears of its suspicion *refutes* it: it raises its
//! incarnation number above the suspicion's and spreads `Alive{M, inc+1}`.
//! Precedence (§4.2): `Alive{inc}` overrides `Suspect`/`Alive` of a lower
//! incarnation; `Suspect{inc}` overrides `Alive` of an incarnation ≤ inc
//! and `Suspect` of a lower one; `Dead{inc}` overrides both of an
//! incarnation ≤ inc. A member that restarts (its incarnation is in its
//! log, [`Record`]) rejoins with a higher incarnation, so `Alive` overrides
//! `Dead` of a lower incarnation, as in memberlist.
//!
//! **Dissemination (§4.1).** Updates are piggybacked on pings, acks and
//! ping-reqs: at most [`MAX_PIGGYBACK`] per message, fewest transmissions
//! first, each retransmitted at most `retransmit-mult` × ⌈log2(n+1)⌉ times
//! (the paper's λ log n), then retired. A member that receives a ping or
//! ping-req from a member it holds suspect or dead queues that belief
//! afresh, so the ack tells the sender, which then refutes: a member paused
//! through its whole suspicion would otherwise never hear of it once
//! every queue retired the news, unless push-pull ran.
//!
//! **Push-pull.** Every `push-pull-ticks` a member sends its whole view and
//! metadata map to one random member, which merges them with the same
//! precedence rules and answers with its own. It repairs what piggybacking
//! lost (e.g. after a partition heals). Each member's metadata is a small
//! string map it alone writes (`{"admin":{"meta":{"k":"v"}}}`), versioned.
//!
//! **Phi accrual (`--option detector=phi`).** Instead of one probe per
//! period, a member pings every member it does not think dead each period
//! (heartbeats) and keeps the last [`PHI_WINDOW`] inter-arrival times of
//! each one's acks; it suspects a member when φ = −log10(P(a heartbeat
//! arrives later than now)) exceeds `phi-threshold` (default 8), with the
//! normal distribution's tail in Akka's logistic approximation and the
//! standard deviation floored at half a period. Suspicion, refutation,
//! dissemination and push-pull are SWIM's.
//!
//! The client API's `{"admin":{"members":true}}` answers this member's view:
//! `{"members":{"1":{"state":"alive","incarnation":3},…},"meta":{…}}`.
//!
//! Seeded bugs: [`BUGS`].

mod params;
mod phi;
#[cfg(test)]
mod tests;

pub use params::{Detector, OPTIONS, Params};
use phi::Arrivals;

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One line about the protocol, for `faultline-node --list`.
pub const ABOUT: &str = "SWIM membership: ping, ping-req via k members, suspicion with incarnation numbers, piggybacked gossip; phi-accrual option; push-pull metadata";

/// Updates piggybacked on one message at most.
pub const MAX_PIGGYBACK: usize = 8;
/// Inter-arrival times kept per member for phi.
pub const PHI_WINDOW: usize = 32;

// The seeded SWIM bugs, by `--bug` name.
crate::seeded_bugs! {
    "swim";
    no_incarnation = "no-incarnation":
        "SWIM without incarnation numbers: a refutation or a rejoin carries the same number as the suspicion, so it never overrides it; a suspected or restarted member stays suspect, then dead, for good",
    no_suspicion = "no-suspicion":
        "basic SWIM (§3) without the suspicion sub-protocol: a missed probe declares the member dead at once and nobody refutes; a live member unlucky under packet loss stays removed",
    no_ping_req = "no-ping-req":
        "no indirect probing: a missed direct ack is enough to suspect, so a member that only some members can reach (a majorities-ring partition, a lossy link) is suspected again and again",
    piggyback_unbounded = "piggyback-unbounded":
        "piggyback dissemination without retransmission limits: updates are never retired and the oldest go first, so once more than a message holds are queued, new suspicions and refutations never leave by gossip",
    ;
    sim_only:
}

/// A member's state in a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Alive,
    Suspect,
    Dead,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "dead",
        }
    }
}

/// A membership update: what is gossiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub node: NodeId,
    pub state: State,
    pub incarnation: u64,
}

/// One member's metadata: a version and a small map, written by the member.
pub type Meta = (u64, BTreeMap<String, String>);

/// Messages between members.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    Ping {
        seq: u64,
        updates: Vec<Update>,
    },
    Ack {
        seq: u64,
        updates: Vec<Update>,
    },
    /// "Probe `target` for me and forward its ack with my `seq`."
    PingReq {
        seq: u64,
        target: NodeId,
        updates: Vec<Update>,
    },
    /// A whole view and metadata; `reply` asks for the receiver's.
    PushPull {
        members: Vec<Update>,
        meta: BTreeMap<NodeId, Meta>,
        reply: bool,
    },
}

/// What a member keeps durable: its incarnation number, so a restart
/// rejoins above every incarnation it ever announced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    Incarnation(u64),
}

#[derive(Clone, Copy, Debug)]
struct Member {
    state: State,
    incarnation: u64,
    /// Tick at which the current suspicion started.
    since: u64,
}

/// The probe of the current period.
struct Probe {
    target: NodeId,
    seq: u64,
    started: u64,
    acked: bool,
    indirect_sent: bool,
}

/// One SWIM member.
pub struct Swim {
    id: NodeId,
    n: usize,
    params: Params,
    bugs: Bugs,
    incarnation: u64,
    members: BTreeMap<NodeId, Member>,
    meta: BTreeMap<NodeId, Meta>,
    /// (update, transmissions so far), in insertion order.
    broadcasts: Vec<(Update, u64)>,
    rng: StdRng,
    tick: u64,
    seq: u64,
    probe: Option<Probe>,
    /// The round-robin probe order (§4.3), refilled and reshuffled when used up.
    order: Vec<NodeId>,
    /// Relayed probes: my seq → (origin, origin's seq).
    relays: BTreeMap<u64, (NodeId, u64)>,
    arrivals: BTreeMap<NodeId, Arrivals>,
    /// Outstanding phi heartbeats: seq → member.
    beats: BTreeMap<u64, NodeId>,
    /// Times this member's view moved someone to suspect or dead (logs).
    pub suspicions: u64,
    out: Ready<Message, Record>,
}

impl Swim {
    /// The state and incarnation this member holds for `node`.
    pub fn view(&self, node: NodeId) -> Option<(State, u64)> {
        if node == self.id {
            return Some((State::Alive, self.incarnation));
        }
        self.members.get(&node).map(|m| (m.state, m.incarnation))
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn meta(&self) -> &BTreeMap<NodeId, Meta> {
        &self.meta
    }

    fn retransmit_limit(&self) -> u64 {
        let log = (usize::BITS - self.n.leading_zeros()) as u64; // ⌈log2(n+1)⌉
        self.params.retransmit_mult * log.max(1)
    }

    fn suspicion_ticks(&self) -> u64 {
        let scale = (self.n as f64).log10().max(1.0);
        (self.params.suspicion_mult as f64 * scale * self.params.period_ticks as f64) as u64
    }

    fn broadcast(&mut self, u: Update) {
        // A newer update about a member replaces the queued one.
        self.broadcasts.retain(|(b, _)| b.node != u.node);
        self.broadcasts.push((u, 0));
    }

    /// The updates to piggyback on the next message.
    fn piggyback(&mut self) -> Vec<Update> {
        let limit = self.retransmit_limit();
        if self.bugs.piggyback_unbounded {
            // The mistake: oldest first, never retired.
            return self
                .broadcasts
                .iter_mut()
                .take(MAX_PIGGYBACK)
                .map(|(u, t)| {
                    *t += 1;
                    *u
                })
                .collect();
        }
        let mut idx: Vec<usize> = (0..self.broadcasts.len()).collect();
        idx.sort_by_key(|&i| self.broadcasts[i].1);
        idx.truncate(MAX_PIGGYBACK);
        let mut out = Vec::with_capacity(idx.len());
        for &i in &idx {
            self.broadcasts[i].1 += 1;
            out.push(self.broadcasts[i].0);
        }
        self.broadcasts.retain(|(_, t)| *t < limit);
        out
    }

    fn send(&mut self, to: NodeId, msg: impl FnOnce(Vec<Update>) -> Message) {
        let updates = self.piggyback();
        self.out.messages.push((to, msg(updates)));
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn set_incarnation(&mut self, inc: u64) {
        self.incarnation = inc;
        self.out.records.push(Record::Incarnation(inc));
        let own = self.meta.entry(self.id).or_default();
        own.0 += 1;
        own.1.insert("incarnation".into(), inc.to_string());
    }

    /// Someone says this member is suspect or dead: refute (§4.2).
    fn refute(&mut self, inc: u64) {
        if self.bugs.no_suspicion {
            // Basic SWIM has no refutation: a confirmed member stays removed.
            return;
        }
        if inc < self.incarnation {
            return;
        }
        if !self.bugs.no_incarnation {
            self.set_incarnation(inc + 1);
        }
        let me = self.alive_self();
        self.broadcast(me);
    }

    fn alive_self(&self) -> Update {
        Update {
            node: self.id,
            state: State::Alive,
            incarnation: self.incarnation,
        }
    }

    /// Applies an update with the paper's precedence; true if it changed
    /// the view (then it is gossiped on).
    fn apply(&mut self, u: Update) -> bool {
        if u.node == self.id {
            if u.state != State::Alive {
                self.refute(u.incarnation);
            }
            return false;
        }
        let Some(cur) = self.members.get(&u.node).copied() else {
            return false; // not a member
        };
        // Without incarnation numbers every update looks equally old.
        let (new, old) = if self.bugs.no_incarnation {
            (0, 0)
        } else {
            (u.incarnation, cur.incarnation)
        };
        let wins = match (u.state, cur.state) {
            (State::Alive, _) => new > old,
            (State::Suspect, State::Alive) => new >= old,
            (State::Suspect, _) => new > old,
            (State::Dead, State::Dead) => false,
            (State::Dead, _) => new >= old,
        };
        if !wins {
            return false;
        }
        let u = if self.bugs.no_suspicion && u.state == State::Suspect {
            Update {
                state: State::Dead,
                ..u
            }
        } else {
            u
        };
        if u.state != State::Alive && cur.state == State::Alive {
            self.suspicions += 1;
        }
        if u.state == State::Alive
            && let Some(a) = self.arrivals.get_mut(&u.node)
        {
            // A refuted or rejoined member gets a fresh heartbeat clock,
            // or phi would suspect it again before its next ack.
            a.last = Some(self.tick);
        }
        self.members.insert(
            u.node,
            Member {
                state: u.state,
                incarnation: u.incarnation,
                since: self.tick,
            },
        );
        self.broadcast(u);
        true
    }

    /// This member's own suspicion of `node` (a missed probe, or phi).
    fn suspect(&mut self, node: NodeId) {
        let Some(m) = self.members.get(&node).copied() else {
            return;
        };
        if m.state != State::Alive {
            return;
        }
        let state = if self.bugs.no_suspicion {
            State::Dead
        } else {
            State::Suspect
        };
        self.apply(Update {
            node,
            state,
            incarnation: m.incarnation,
        });
    }

    fn live_others(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|(_, m)| m.state != State::Dead)
            .map(|(id, _)| *id)
            .collect()
    }

    fn next_target(&mut self) -> Option<NodeId> {
        loop {
            if self.order.is_empty() {
                self.order = self.live_others();
                if self.order.is_empty() {
                    return None;
                }
                self.order.shuffle(&mut self.rng);
            }
            let t = self.order.pop()?;
            if self.members.get(&t).is_some_and(|m| m.state != State::Dead) {
                return Some(t);
            }
        }
    }

    fn on_tick(&mut self) {
        self.tick += 1;
        let p = self.params.clone();
        // Suspicion timers (§4.2): every holder of a suspicion runs one.
        let timeout = self.suspicion_ticks();
        let expired: Vec<(NodeId, u64)> = self
            .members
            .iter()
            .filter(|(_, m)| m.state == State::Suspect && self.tick >= m.since + timeout)
            .map(|(id, m)| (*id, m.incarnation))
            .collect();
        for (node, incarnation) in expired {
            self.apply(Update {
                node,
                state: State::Dead,
                incarnation,
            });
        }
        match p.detector {
            Detector::Swim => self.swim_tick(&p),
            Detector::Phi => self.phi_tick(&p),
        }
        if self.tick.is_multiple_of(p.push_pull_ticks) {
            let others = self.live_others();
            if !others.is_empty() {
                let to = others[self.rng.random_range(0..others.len())];
                let msg = self.push_pull(true);
                self.out.messages.push((to, msg));
            }
        }
    }

    fn swim_tick(&mut self, p: &Params) {
        if let Some(pr) = &self.probe
            && !pr.acked
            && !pr.indirect_sent
            && self.tick >= pr.started + p.ping_timeout_ticks
        {
            let (target, seq) = (pr.target, pr.seq);
            if let Some(pr) = self.probe.as_mut() {
                pr.indirect_sent = true;
            }
            if !self.bugs.no_ping_req {
                let mut relays: Vec<NodeId> = self
                    .live_others()
                    .into_iter()
                    .filter(|r| *r != target)
                    .collect();
                relays.shuffle(&mut self.rng);
                relays.truncate(p.k);
                for r in relays {
                    self.send(r, |updates| Message::PingReq {
                        seq,
                        target,
                        updates,
                    });
                }
            } else {
                // Without indirect probing a missed direct ack is enough.
                self.suspect(target);
            }
        }
        if !self.tick.is_multiple_of(p.period_ticks) {
            return;
        }
        if let Some(pr) = self.probe.take()
            && !pr.acked
        {
            self.suspect(pr.target);
        }
        if let Some(target) = self.next_target() {
            let seq = self.next_seq();
            self.probe = Some(Probe {
                target,
                seq,
                started: self.tick,
                acked: false,
                indirect_sent: false,
            });
            self.send(target, |updates| Message::Ping { seq, updates });
        }
    }

    fn push_pull(&self, reply: bool) -> Message {
        let mut members: Vec<Update> = self
            .members
            .iter()
            .map(|(id, m)| Update {
                node: *id,
                state: m.state,
                incarnation: m.incarnation,
            })
            .collect();
        members.push(self.alive_self());
        Message::PushPull {
            members,
            meta: self.meta.clone(),
            reply,
        }
    }

    /// `from` spoke to us, so it runs; if we hold it suspect or dead, gossip
    /// that again so the reply carries it and `from` can refute. Queued
    /// afresh, it goes first (fewest transmissions); otherwise a member that
    /// missed the news while paused, after every queue retired it, would
    /// never hear it without push-pull (Lifeguard's "buddy system" does the
    /// same for suspects it probes).
    fn tell_if_held_down(&mut self, from: NodeId) {
        if let Some(m) = self.members.get(&from).copied()
            && m.state != State::Alive
        {
            self.broadcast(Update {
                node: from,
                state: m.state,
                incarnation: m.incarnation,
            });
        }
    }

    fn receive(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::Ping { seq, updates } => {
                self.apply_all(updates);
                self.tell_if_held_down(from);
                self.send(from, |updates| Message::Ack { seq, updates });
            }
            Message::Ack { seq, updates } => {
                self.apply_all(updates);
                if let Some((origin, oseq)) = self.relays.remove(&seq) {
                    self.send(origin, |updates| Message::Ack { seq: oseq, updates });
                    return;
                }
                if let Some(pr) = self.probe.as_mut()
                    && pr.seq == seq
                {
                    pr.acked = true;
                }
                if let Some(node) = self.beats.remove(&seq) {
                    self.heartbeat(node);
                }
            }
            Message::PingReq {
                seq,
                target,
                updates,
            } => {
                self.apply_all(updates);
                self.tell_if_held_down(from);
                let mine = self.next_seq();
                self.relays.insert(mine, (from, seq));
                // Relays not answered in a while are forgotten.
                while self.relays.len() > 64 {
                    self.relays.pop_first();
                }
                self.send(target, |updates| Message::Ping { seq: mine, updates });
            }
            Message::PushPull {
                members,
                meta,
                reply,
            } => {
                self.apply_all(members);
                for (node, (v, m)) in meta {
                    if node == self.id {
                        continue;
                    }
                    let cur = self.meta.entry(node).or_default();
                    if v > cur.0 {
                        *cur = (v, m);
                    }
                }
                if reply {
                    let msg = self.push_pull(false);
                    self.out.messages.push((from, msg));
                }
            }
        }
    }

    fn apply_all(&mut self, updates: Vec<Update>) {
        for u in updates {
            self.apply(u);
        }
    }

    /// The view as the client API answers it.
    pub fn view_json(&self) -> Value {
        let mut members = serde_json::Map::new();
        members.insert(
            self.id.to_string(),
            json!({"state": "alive", "incarnation": self.incarnation}),
        );
        for (id, m) in &self.members {
            members.insert(
                id.to_string(),
                json!({"state": m.state.name(), "incarnation": m.incarnation}),
            );
        }
        let meta: serde_json::Map<String, Value> = self
            .meta
            .iter()
            .map(|(id, (v, m))| (id.to_string(), json!({"version": v, "map": m})))
            .collect();
        json!({"id": self.id, "members": members, "meta": meta})
    }
}

impl Core for Swim {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Swim {
        // The shell validated the options; a bad one falls back to defaults.
        let params = Params::from_config(&config).unwrap_or_else(|_| {
            Params::from_config(&Config::new(config.id, config.peers.clone()))
                .expect("defaults are valid")
        });
        let bugs = Bugs::from_config(&config);
        let last = records
            .iter()
            .map(|Record::Incarnation(i)| *i)
            .max()
            .unwrap_or(0);
        let members = config
            .peers
            .iter()
            .filter(|p| **p != config.id)
            .map(|p| {
                (
                    *p,
                    Member {
                        state: State::Alive,
                        incarnation: 0,
                        since: 0,
                    },
                )
            })
            .collect();
        let mut s = Swim {
            id: config.id,
            n: config.peers.len(),
            params,
            bugs,
            incarnation: 0,
            members,
            meta: BTreeMap::new(),
            broadcasts: Vec::new(),
            rng: StdRng::seed_from_u64(config.seed),
            tick: 0,
            seq: 0,
            probe: None,
            order: Vec::new(),
            relays: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            beats: BTreeMap::new(),
            suspicions: 0,
            out: Ready::default(),
        };
        // A restart rejoins above every incarnation it announced (the
        // seeded bug keeps the number: it has none).
        let inc = if records.is_empty() || bugs.no_incarnation {
            last
        } else {
            last + 1
        };
        s.set_incarnation(inc);
        let me = s.alive_self();
        s.broadcast(me);
        s
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => self.on_tick(),
            Input::Message { from, msg } => self.receive(from, msg),
            Input::Request(cmd) => self.out.replies.push((
                cmd.id,
                Reply::Done(Err(
                    "SWIM keeps no data: ask {\"admin\":{\"members\":true}}".into(),
                )),
            )),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        Status {
            role: "member",
            term: self.incarnation,
            leader: None,
            commit: self
                .members
                .values()
                .filter(|m| m.state == State::Alive)
                .count() as u64
                + 1,
        }
    }

    fn admin(&mut self, request: &Value) -> Result<Value, String> {
        if request.get("members").is_some() {
            return Ok(self.view_json());
        }
        if let Some(m) = request.get("meta").and_then(Value::as_object) {
            let own = self.meta.entry(self.id).or_default();
            for (k, v) in m {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                own.1.insert(k.clone(), v);
            }
            own.0 += 1;
            return Ok(self.view_json());
        }
        Err("SWIM admin requests: {\"members\":true} or {\"meta\":{\"key\":\"value\"}}".into())
    }
}
