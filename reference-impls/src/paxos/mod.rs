//! Multi-Paxos: a replicated log of slots, each decided by single-decree
//! Paxos, with a stable leader that runs phase 1 once for every future slot.
//!
//! Vocabulary from Lamport, "Paxos Made Simple" (2001) and van Renesse &
//! Altinbuken, "Paxos Made Moderately Complex" (2015; "PMMC" below). Every
//! node plays all three roles: **acceptor** (durable `promised` ballot and
//! `accepted` (slot → ballot, value)), **learner/replica** (the `chosen`
//! log, applied in slot order to the shared [`Store`]) and **proposer**
//! (follower → candidate → leader; PMMC's scout and commanders).
//!
//! - **Ballots** are `(round, node)`, totally ordered (PMMC §3).
//! - **Phase 1** (`Prepare`/`Promise`, PMMC's p1a/p1b) is run once by a
//!   candidate for all slots from its first unchosen slot on. Each promise
//!   carries the acceptor's accepted (slot, ballot, value) for those slots;
//!   the new leader adopts, per slot, the value with the highest ballot and
//!   fills the gaps below the highest reported slot with no-ops (Paxos Made
//!   Simple §3, "gaps").
//! - **Phase 2** (`Accept`/`Accepted`, p2a/p2b): the leader then only runs
//!   phase 2. One `Accept` carries many slots (pipelining; batching happens
//!   across every `step` before one `ready`). A slot is chosen once a phase-2
//!   quorum accepted it in the leader's ballot.
//! - **Learning**: `Accept` carries the leader's chosen prefix (`commit`); a
//!   follower whose accepted value for a slot has the leader's ballot learns
//!   it is chosen (the leader proposes one value per slot per ballot). Gaps
//!   (dropped messages, restarts) are filled by `CatchUp`/`Chosen`, or a
//!   `Snapshot` when the leader compacted past them.
//! - **Leader election**: a node that hears no leader for a randomized
//!   timeout becomes a candidate with a higher round. A leader that hears of
//!   a higher ballot (a `Nack`, a `Prepare`, an `Accept`) is preempted and
//!   steps down; one that hears from no phase-2 quorum for an election
//!   timeout steps down too, so clients stop waiting on it.
//! - **Reads go through the log** like writes: a read is applied at its slot,
//!   so it is linearizable without leases or clocks.
//! - **Durability**: a promise and every accepted entry are records, so they
//!   are on disk before the `Promise`/`Accepted` that reports them. Learned
//!   values are recorded as `Commit` (the accepted value is the chosen one) or
//!   `Chosen` (it isn't), so a restart re-applies its log without asking.
//! - **Compaction**: the leader tells everyone the slot every replica has
//!   applied (`compact`); each node then rewrites its log as a snapshot of
//!   its store plus what it accepted and learned after that slot.
//! - **Flexible Paxos** (Howard et al. 2016): phase-1 and phase-2 quorums
//!   may differ as long as `q1 + q2 > n` ([`PaxosConfig`]).

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, RequestId, Store};
use crate::quorum::Tally;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[cfg(test)]
mod tests;

crate::seeded_bugs! {
    "paxos";
    accept_ignores_promise = "accept-ignores-promise":
        "an acceptor accepts an Accept whose ballot is lower than the one it promised",
    no_adopt_highest = "no-adopt-highest":
        "a new leader re-proposes the first accepted value it hears of for a slot \
                      (its own first), not the one with the highest ballot",
    leader_local_read = "leader-local-read":
        "the leader answers reads from its own state instead of through a slot \
                      (no lease), and keeps leading until a higher ballot preempts it, so a \
                      partitioned leader reads stale data",
    minority_quorum = "minority-quorum":
        "the leader decides a slot once one acceptor fewer than a phase-2 quorum \
                      accepted it",
    noop_gap_overwrite = "noop-gap-overwrite":
        "a new leader fills every slot missing from its own log with a no-op, \
                      overwriting values the promises reported",
    ;
    sim_only:
}

/// A log position. Slot 0 is never used; the first command goes to slot 1.
pub type Slot = u64;

/// A ballot number: totally ordered by round, then by the proposing node,
/// so two proposers never share one (PMMC §3).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    /// The ballot as one monotone number for [`Status::term`]: distinct
    /// ballots of distinct leaders never share a term.
    pub fn as_term(self) -> u64 {
        (self.round << 16) | (self.node & 0xffff)
    }
}

/// What a slot holds: a client command or a no-op that fills a gap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Noop,
    Command(Command),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a, for every slot ≥ `from`.
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b: everything this acceptor accepted at slots ≥ `from`.
    Promise {
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
    },
    /// Phase 2a for many slots; with no entries it is the leader's heartbeat.
    /// `commit`: the leader's chosen prefix; `compact`: every replica has
    /// applied up to here.
    Accept {
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
        commit: Slot,
        compact: Slot,
    },
    /// Phase 2b for the listed slots, plus how far this replica applied.
    Accepted {
        ballot: Ballot,
        slots: Vec<Slot>,
        applied: Slot,
    },
    /// A Prepare or Accept at `ballot` was refused: this acceptor promised
    /// `promised` (PMMC's "preempted").
    Nack { ballot: Ballot, promised: Ballot },
    /// A lagging replica asks the leader for chosen values from `from` on.
    CatchUp { from: Slot },
    /// Chosen values, answering a `CatchUp`.
    Chosen {
        entries: Vec<(Slot, Value)>,
        commit: Slot,
    },
    /// The leader's store after `upto`, for a replica behind its compaction.
    Snapshot { upto: Slot, store: Store },
}

/// Durable state, appended to the node's log and replayed by `recover`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    /// The acceptor promised `ballot`.
    Promise { ballot: Ballot },
    /// The acceptor accepted these entries at `ballot` (implies a promise).
    Accepted {
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
    },
    /// Learned chosen values this node had not accepted.
    Chosen { entries: Vec<(Slot, Value)> },
    /// Every slot up to `upto` is chosen: its value is the `Chosen` record's
    /// if there is one, else the accepted one (as of this record).
    Commit { upto: Slot },
    /// Only first in a rewrite: the store after applying slots `..= upto`.
    Snapshot { upto: Slot, store: Store },
}

/// Knobs of this protocol beyond [`Config`]; the defaults are majorities.
#[derive(Clone, Debug, PartialEq)]
pub struct PaxosConfig {
    /// Phase-1 (prepare) quorum size; `None` = majority.
    pub phase1_quorum: Option<usize>,
    /// Phase-2 (accept) quorum size; `None` = majority.
    pub phase2_quorum: Option<usize>,
    /// Compact once every replica applied this many slots past the last
    /// compaction.
    pub snapshot_every: u64,
    /// At most this many slots per `Chosen` answer or resend.
    pub max_batch: usize,
}

impl Default for PaxosConfig {
    fn default() -> Self {
        PaxosConfig {
            phase1_quorum: None,
            phase2_quorum: None,
            snapshot_every: 4096,
            max_batch: 1024,
        }
    }
}

impl PaxosConfig {
    /// Parses `q1=3,q2=2,snapshot=4096,batch=1024` (any subset, any order).
    pub fn parse(s: &str) -> Result<PaxosConfig, String> {
        let mut c = PaxosConfig::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("paxos option `{part}`: expected key=value"))?;
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| format!("paxos option `{part}`: `{v}` is not a number"))?;
            match k.trim() {
                "q1" => c.phase1_quorum = Some(n as usize),
                "q2" => c.phase2_quorum = Some(n as usize),
                "snapshot" => c.snapshot_every = n.max(1),
                "batch" => c.max_batch = (n as usize).max(1),
                other => {
                    return Err(format!(
                        "paxos option `{other}`: expected q1, q2, snapshot or batch"
                    ));
                }
            }
        }
        Ok(c)
    }

    /// The (phase-1, phase-2) quorum sizes for `n` members; Flexible Paxos
    /// needs every phase-1 quorum to meet every phase-2 quorum.
    pub fn quorums(&self, n: usize) -> Result<(usize, usize), String> {
        let majority = n / 2 + 1;
        let q1 = self.phase1_quorum.unwrap_or(majority);
        let q2 = self.phase2_quorum.unwrap_or(majority);
        if q1 == 0 || q2 == 0 || q1 > n || q2 > n {
            return Err(format!(
                "paxos quorums q1={q1} q2={q2}: each must be in 1..={n}"
            ));
        }
        if q1 + q2 <= n {
            return Err(format!(
                "paxos quorums q1={q1} q2={q2}: q1 + q2 must exceed n={n}, or two leaders can \
                 choose different values"
            ));
        }
        Ok((q1, q2))
    }
}

/// One slot the leader proposed and has not yet seen chosen.
#[derive(Debug)]
struct Proposal {
    value: Value,
    /// Phase-2 answers (Accepted) in the leader's ballot.
    accepted_by: Tally,
    /// Tick of the last (re)send, so a heartbeat resends only stale ones.
    sent_at: u64,
}

#[derive(Debug)]
struct Leadership {
    proposals: BTreeMap<Slot, Proposal>,
    next_slot: Slot,
    /// New proposals not yet sent, flushed as one Accept by `ready`.
    unsent: Vec<(Slot, Value)>,
    /// Slots holding requests that arrived here, awaiting their reply.
    pending: BTreeMap<Slot, RequestId>,
    peer_applied: BTreeMap<NodeId, Slot>,
    /// Peers heard from since the last quorum check.
    heard: BTreeSet<NodeId>,
    since_heartbeat: u64,
    since_check: u64,
}

#[derive(Debug)]
enum Role {
    Follower,
    /// Running phase 1 for every slot ≥ `from` (PMMC's scout).
    Candidate {
        from: Slot,
        /// Phase-1 answers (Promise) to our Prepare.
        promised_by: Tally,
        adopted: BTreeMap<Slot, (Ballot, Value)>,
    },
    Leader(Box<Leadership>),
}

pub struct Paxos {
    config: Config,
    bugs: Bugs,
    q1: usize,
    q2: usize,
    options: PaxosConfig,
    rng: StdRng,

    // Acceptor (durable).
    promised: Ballot,
    accepted: BTreeMap<Slot, (Ballot, Value)>,

    // Learner / replica.
    chosen: BTreeMap<Slot, Value>,
    /// Chosen prefix, all applied to `store`.
    applied: Slot,
    store: Store,
    /// Slots `..= compacted` are dropped from `accepted` and `chosen`.
    compacted: Slot,
    /// Highest `Commit` record written.
    committed_record: Slot,
    /// Learned values that need a `Chosen` record.
    unrecorded: Vec<(Slot, Value)>,

    // Proposer.
    ballot: Ballot,
    role: Role,
    leader: Option<NodeId>,
    max_round: u64,
    elapsed: u64,
    timeout: u64,
    ticks: u64,
    leader_commit: Slot,
    /// Slots up to here were checked against the current leader's commit.
    scanned: (Ballot, Slot),
    last_catch_up: Option<u64>,

    out: Ready<Message, Record>,
    observe: Option<Observations>,
}

/// What tests watch: every value this node learned and every entry it
/// accepted, to check "one chosen value per slot" directly.
#[derive(Debug, Default)]
pub struct Observations {
    pub learned: Vec<(Slot, Value)>,
    pub accepted: Vec<(Slot, Ballot, Value)>,
}

impl Paxos {
    /// Builds a node with protocol options; `recover` uses the defaults.
    pub fn recover_with(
        config: Config,
        options: PaxosConfig,
        records: Vec<Record>,
    ) -> Result<Paxos, String> {
        let (q1, q2) = options.quorums(config.peers.len())?;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let timeout = random_timeout(&mut rng, config.election_ticks);
        let mut p = Paxos {
            bugs: Bugs::from_config(&config),
            config,
            q1,
            q2,
            options,
            rng,
            promised: Ballot::default(),
            accepted: BTreeMap::new(),
            chosen: BTreeMap::new(),
            applied: 0,
            store: Store::new(),
            compacted: 0,
            committed_record: 0,
            unrecorded: Vec::new(),
            ballot: Ballot::default(),
            role: Role::Follower,
            leader: None,
            max_round: 0,
            elapsed: 0,
            timeout,
            ticks: 0,
            leader_commit: 0,
            scanned: (Ballot::default(), 0),
            last_catch_up: None,
            out: Ready::default(),
            observe: None,
        };
        p.replay(records);
        Ok(p)
    }

    fn replay(&mut self, records: Vec<Record>) {
        for r in records {
            match r {
                Record::Promise { ballot } => self.promised = self.promised.max(ballot),
                Record::Accepted { ballot, entries } => {
                    self.promised = self.promised.max(ballot);
                    for (s, v) in entries {
                        if s > self.compacted {
                            self.accepted.insert(s, (ballot, v));
                        }
                    }
                }
                Record::Chosen { entries } => {
                    for (s, v) in entries {
                        if s > self.compacted {
                            self.chosen.insert(s, v);
                        }
                    }
                }
                Record::Commit { upto } => {
                    for s in self.committed_record.max(self.applied) + 1..=upto {
                        if !self.chosen.contains_key(&s)
                            && let Some((_, v)) = self.accepted.get(&s)
                        {
                            self.chosen.insert(s, v.clone());
                        }
                    }
                    self.committed_record = self.committed_record.max(upto);
                }
                Record::Snapshot { upto, store } => {
                    self.store = store;
                    self.applied = upto;
                    self.committed_record = upto;
                }
            }
        }
        self.max_round = self.promised.round;
        self.apply_chosen();
        // Everything replayed is already on disk.
        self.out.records.clear();
        self.committed_record = self.committed_record.max(self.applied);
    }

    /// Tests: start recording learned and accepted values.
    pub fn observe(&mut self) {
        self.observe = Some(Observations::default());
    }

    /// Tests: what was observed since the last call.
    pub fn take_observations(&mut self) -> Observations {
        self.observe
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The chosen prefix this replica has applied.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// This replica's state machine.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn id(&self) -> NodeId {
        self.config.id
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let id = self.id();
        self.config.peers.iter().copied().filter(move |&p| p != id)
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.out.messages.push((to, msg));
    }

    fn broadcast(&mut self, msg: Message) {
        let peers: Vec<NodeId> = self.peers().collect();
        for p in peers {
            self.out.messages.push((p, msg.clone()));
        }
    }

    fn reply(&mut self, rid: RequestId, reply: Reply) {
        self.out.replies.push((rid, reply));
    }

    fn phase2_quorum(&self) -> usize {
        if self.bugs.minority_quorum {
            // BUG(minority-quorum): one accepted short of a quorum.
            return self.q2.saturating_sub(1).max(1);
        }
        self.q2
    }

    /// An empty phase-2 count for one slot.
    fn accept_tally(&self) -> Tally {
        Tally::new(self.config.peers.len(), self.phase2_quorum())
    }

    // ---- roles ----

    /// PMMC's scout: phase 1 with a fresh, higher ballot for every slot this
    /// node has not learned.
    fn become_candidate(&mut self) {
        self.step_down("a new election");
        self.max_round = self.max_round.max(self.promised.round) + 1;
        self.ballot = Ballot {
            round: self.max_round,
            node: self.id(),
        };
        // The candidate's own promise is durable before its Prepare is sent,
        // so a restart never reuses the ballot.
        self.promised = self.ballot;
        self.out.records.push(Record::Promise {
            ballot: self.ballot,
        });
        self.leader = None;
        self.reset_timer();
        let from = self.applied + 1;
        let adopted: BTreeMap<Slot, (Ballot, Value)> = self
            .accepted
            .range(from..)
            .map(|(s, bv)| (*s, bv.clone()))
            .collect();
        let mut promised_by = Tally::new(self.config.peers.len(), self.q1);
        promised_by.grant(self.id());
        self.role = Role::Candidate {
            from,
            promised_by,
            adopted,
        };
        let ballot = self.ballot;
        self.broadcast(Message::Prepare { ballot, from });
        if self.q1 <= 1 {
            self.become_leader();
        }
    }

    /// Phase 1 is done: re-propose the adopted values (and no-ops in the
    /// gaps) in our ballot, then serve requests with phase 2 only.
    fn become_leader(&mut self) {
        let Role::Candidate { from, adopted, .. } =
            std::mem::replace(&mut self.role, Role::Follower)
        else {
            return;
        };
        let last = [
            from.saturating_sub(1),
            adopted.keys().next_back().copied().unwrap_or(0),
            self.chosen.keys().next_back().copied().unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let mut unsent = Vec::new();
        let mut proposals = BTreeMap::new();
        let votes = self.accept_tally();
        for s in from..=last {
            if self.chosen.contains_key(&s) {
                continue;
            }
            let value = if self.bugs.noop_gap_overwrite {
                // BUG(noop-gap-overwrite): a gap in our own log is not a gap
                // in the quorum's; this drops what the promises reported.
                self.accepted
                    .get(&s)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Noop)
            } else {
                adopted
                    .get(&s)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Noop)
            };
            unsent.push((s, value.clone()));
            proposals.insert(
                s,
                Proposal {
                    value,
                    accepted_by: votes.clone(),
                    sent_at: self.ticks,
                },
            );
        }
        let peer_applied = self.peers().map(|p| (p, 0)).collect();
        self.role = Role::Leader(Box::new(Leadership {
            proposals,
            next_slot: last + 1,
            unsent,
            pending: BTreeMap::new(),
            peer_applied,
            heard: BTreeSet::new(),
            since_heartbeat: 0,
            since_check: 0,
        }));
        self.leader = Some(self.id());
        // Announce the leadership now, even with nothing to re-propose.
        self.heartbeat();
    }

    /// Back to follower; requests waiting here get `Unknown` (their slot
    /// may still be chosen by a later leader).
    fn step_down(&mut self, why: &str) {
        let old = std::mem::replace(&mut self.role, Role::Follower);
        if let Role::Leader(l) = old {
            for rid in l.pending.into_values() {
                self.reply(
                    rid,
                    Reply::Unknown(format!("paxos: leader {} stepped down: {why}", self.id())),
                );
            }
            if self.leader == Some(self.id()) {
                self.leader = None;
            }
        }
    }

    fn reset_timer(&mut self) {
        self.elapsed = 0;
        self.timeout = random_timeout(&mut self.rng, self.config.election_ticks);
    }

    /// Seen a ballot above ours: remember its round, and stop leading.
    fn preempted(&mut self, by: Ballot) {
        self.max_round = self.max_round.max(by.round);
        if !matches!(self.role, Role::Follower) && by > self.ballot {
            self.step_down(&format!("preempted by ballot {}.{}", by.round, by.node));
            self.reset_timer();
        }
    }

    // ---- inputs ----

    fn tick(&mut self) {
        self.ticks += 1;
        if let Role::Leader(l) = &mut self.role {
            l.since_heartbeat += 1;
            l.since_check += 1;
            let beat = l.since_heartbeat >= self.config.heartbeat_ticks.max(1);
            let check = l.since_check >= self.config.election_ticks.max(1);
            let heard = l.heard.len() + 1;
            // BUG(leader-local-read): like PMMC's leaders, it only steps
            // down when preempted.
            let check = check && !self.bugs.leader_local_read;
            if check {
                l.since_check = 0;
                l.heard.clear();
                if heard < self.q2 {
                    self.step_down("lost contact with a quorum");
                    self.reset_timer();
                    return;
                }
            }
            if beat {
                self.heartbeat();
            }
            return;
        }
        self.elapsed += 1;
        if self.elapsed >= self.timeout {
            self.become_candidate();
            return;
        }
        if self.applied < self.leader_commit
            && let Some(leader) = self.leader
            && self
                .last_catch_up
                .is_none_or(|t| self.ticks >= t + 2 * self.config.heartbeat_ticks.max(1))
        {
            self.last_catch_up = Some(self.ticks);
            let from = self.applied + 1;
            self.send(leader, Message::CatchUp { from });
        }
    }

    /// The leader's heartbeat: an Accept per peer carrying the proposals
    /// that peer has not acknowledged yet (retransmission), the commit
    /// point, and the compaction point.
    fn heartbeat(&mut self) {
        self.flush_proposals();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        l.since_heartbeat = 0;
        let compact = l
            .peer_applied
            .values()
            .copied()
            .min()
            .unwrap_or(self.applied)
            .min(self.applied);
        let ticks = self.ticks;
        let stale = ticks.saturating_sub(self.config.heartbeat_ticks.max(1));
        let mut msgs = Vec::new();
        for p in self
            .config
            .peers
            .iter()
            .copied()
            .filter(|&p| p != self.config.id)
        {
            let entries: Vec<(Slot, Value)> = l
                .proposals
                .iter()
                .filter(|(_, pr)| pr.sent_at <= stale && !pr.accepted_by.granted_by(p))
                .take(self.options.max_batch)
                .map(|(s, pr)| (*s, pr.value.clone()))
                .collect();
            msgs.push((
                p,
                Message::Accept {
                    ballot: self.ballot,
                    entries,
                    commit: self.applied,
                    compact,
                },
            ));
        }
        for pr in l.proposals.values_mut() {
            if pr.sent_at <= stale {
                pr.sent_at = ticks;
            }
        }
        self.out.messages.extend(msgs);
        self.maybe_compact(compact);
    }

    fn on_request(&mut self, cmd: Command) {
        if matches!(self.role, Role::Leader(_))
            && self.bugs.leader_local_read
            && let Some(out) = self.store.query(&cmd.op)
        {
            // BUG(leader-local-read): no slot, no lease.
            self.reply(cmd.id, Reply::Done(out));
            return;
        }
        let votes = self.accept_tally();
        let Role::Leader(l) = &mut self.role else {
            let leader = self.leader.filter(|&l| l != self.config.id);
            self.reply(cmd.id, Reply::NotLeader { leader });
            return;
        };
        let slot = l.next_slot;
        l.next_slot += 1;
        l.pending.insert(slot, cmd.id);
        let value = Value::Command(cmd);
        l.unsent.push((slot, value.clone()));
        l.proposals.insert(
            slot,
            Proposal {
                value,
                accepted_by: votes,
                sent_at: self.ticks,
            },
        );
    }

    /// Sends the new proposals as one Accept. The leader accepts them itself
    /// here, in the same batch as the record, so its own vote is on disk
    /// before any peer's Accepted can complete a quorum.
    fn flush_proposals(&mut self) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.unsent.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut l.unsent);
        let ballot = self.ballot;
        let id = self.config.id;
        for (s, _) in &entries {
            if let Some(p) = l.proposals.get_mut(s) {
                p.accepted_by.grant(id);
            }
        }
        for (s, v) in &entries {
            self.accepted.insert(*s, (ballot, v.clone()));
            if let Some(o) = &mut self.observe {
                o.accepted.push((*s, ballot, v.clone()));
            }
        }
        self.out.records.push(Record::Accepted {
            ballot,
            entries: entries.clone(),
        });
        let commit = self.applied;
        let compact = self.compacted;
        self.broadcast(Message::Accept {
            ballot,
            entries: entries.clone(),
            commit,
            compact,
        });
        let slots: Vec<Slot> = entries.iter().map(|(s, _)| *s).collect();
        self.count_accepted(id, ballot, &slots);
    }

    fn on_message(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::Prepare { ballot, from: slot } => self.on_prepare(from, ballot, slot),
            Message::Promise { ballot, accepted } => self.on_promise(from, ballot, accepted),
            Message::Accept {
                ballot,
                entries,
                commit,
                compact,
            } => self.on_accept(from, ballot, entries, commit, compact),
            Message::Accepted {
                ballot,
                slots,
                applied,
            } => {
                if let Role::Leader(l) = &mut self.role
                    && ballot == self.ballot
                {
                    l.heard.insert(from);
                    let a = l.peer_applied.entry(from).or_default();
                    *a = (*a).max(applied);
                    self.count_accepted(from, ballot, &slots);
                }
            }
            Message::Nack { ballot, promised } => {
                if ballot == self.ballot {
                    self.preempted(promised);
                    if promised.node != self.id() {
                        self.leader = Some(promised.node);
                    }
                } else {
                    self.max_round = self.max_round.max(promised.round);
                }
            }
            Message::CatchUp { from: slot } => self.on_catch_up(from, slot),
            // A leader learns only from its own quorums: its commit point
            // tells followers that their values in its ballot are chosen.
            Message::Chosen { .. } | Message::Snapshot { .. }
                if matches!(self.role, Role::Leader(_)) => {}
            Message::Chosen { entries, commit } => {
                let got = !entries.is_empty();
                for (s, v) in entries {
                    self.learn(s, v);
                }
                self.leader_commit = self.leader_commit.max(commit);
                self.flush_learned();
                if got && self.applied < self.leader_commit && matches!(self.role, Role::Follower) {
                    self.last_catch_up = Some(self.ticks);
                    let next = self.applied + 1;
                    self.send(from, Message::CatchUp { from: next });
                }
            }
            Message::Snapshot { upto, store } => self.on_snapshot(upto, store),
        }
    }

    /// Phase 1b (PMMC acceptor, p1a): promise if the ballot is at least
    /// the one promised, and report what was accepted from `slot` on.
    fn on_prepare(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        if ballot < self.promised {
            let promised = self.promised;
            self.send(from, Message::Nack { ballot, promised });
            return;
        }
        if ballot > self.promised {
            self.promised = ballot;
            self.out.records.push(Record::Promise { ballot });
            self.preempted(ballot);
            self.reset_timer();
            self.leader = None;
        }
        let accepted = self
            .accepted
            .range(slot..)
            .map(|(s, (b, v))| (*s, *b, v.clone()))
            .collect();
        self.send(from, Message::Promise { ballot, accepted });
    }

    fn on_promise(&mut self, from: NodeId, ballot: Ballot, accepted: Vec<(Slot, Ballot, Value)>) {
        if ballot != self.ballot {
            return;
        }
        let keep_first = self.bugs.no_adopt_highest;
        let Role::Candidate {
            from: first,
            promised_by,
            adopted,
        } = &mut self.role
        else {
            return;
        };
        if !promised_by.grant(from) {
            return;
        }
        for (s, b, v) in accepted {
            if s < *first {
                continue;
            }
            match adopted.get(&s) {
                // BUG(no-adopt-highest): the first value heard wins.
                Some(_) if keep_first => {}
                Some((have, _)) if *have >= b => {}
                _ => {
                    adopted.insert(s, (b, v));
                }
            }
        }
        if promised_by.won() {
            self.become_leader();
        }
    }

    /// Phase 2b (PMMC acceptor, p2a), then learning from `commit`.
    fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
        commit: Slot,
        compact: Slot,
    ) {
        if ballot < self.promised && !self.bugs.accept_ignores_promise {
            let promised = self.promised;
            self.send(from, Message::Nack { ballot, promised });
            return;
        }
        // BUG(accept-ignores-promise) reaches here with a lower ballot too.
        let current = ballot >= self.promised;
        if ballot > self.promised {
            self.promised = ballot;
            self.preempted(ballot);
            if entries.is_empty() {
                self.out.records.push(Record::Promise { ballot });
            }
        }
        let mut slots = Vec::with_capacity(entries.len());
        let mut record = Vec::with_capacity(entries.len());
        for (s, v) in entries {
            if s <= self.compacted {
                continue;
            }
            if let Some(o) = &mut self.observe {
                o.accepted.push((s, ballot, v.clone()));
            }
            slots.push(s);
            self.accepted.insert(s, (ballot, v.clone()));
            record.push((s, v));
        }
        if !record.is_empty() {
            self.out.records.push(Record::Accepted {
                ballot,
                entries: record,
            });
        }
        if !current {
            // Only the buggy build gets here; it answers but learns nothing.
            let applied = self.applied;
            self.send(
                from,
                Message::Accepted {
                    ballot,
                    slots,
                    applied,
                },
            );
            return;
        }
        self.leader = Some(from);
        self.elapsed = 0;
        if self.scanned.0 != ballot {
            self.scanned = (ballot, self.applied);
        }
        self.leader_commit = self.leader_commit.max(commit);
        // A value accepted in the leader's own ballot at a slot the leader
        // says is chosen is the chosen value: one value per slot per ballot.
        let lo = self.scanned.1.max(self.applied) + 1;
        if commit >= lo {
            let learnable: Vec<(Slot, Value)> = self
                .accepted
                .range(lo..=commit)
                .filter(|(s, (b, _))| *b == ballot && !self.chosen.contains_key(s))
                .map(|(s, (_, v))| (*s, v.clone()))
                .collect();
            for (s, v) in learnable {
                self.learn(s, v);
            }
            self.scanned.1 = commit;
        }
        self.flush_learned();
        let applied = self.applied;
        self.send(
            from,
            Message::Accepted {
                ballot,
                slots,
                applied,
            },
        );
        if self.applied < self.leader_commit
            && self
                .last_catch_up
                .is_none_or(|t| self.ticks >= t + 2 * self.config.heartbeat_ticks.max(1))
        {
            self.last_catch_up = Some(self.ticks);
            let next = self.applied + 1;
            self.send(from, Message::CatchUp { from: next });
        }
        self.maybe_compact(compact);
    }

    /// The leader counts an Accepted; a quorum in its ballot chooses a slot.
    fn count_accepted(&mut self, from: NodeId, ballot: Ballot, slots: &[Slot]) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if ballot != self.ballot {
            return;
        }
        let mut decided = Vec::new();
        for s in slots {
            if let Some(p) = l.proposals.get_mut(s) {
                p.accepted_by.grant(from);
                if p.accepted_by.won() {
                    decided.push(*s);
                }
            }
        }
        let values: Vec<(Slot, Value)> = decided
            .into_iter()
            .filter_map(|s| l.proposals.remove(&s).map(|p| (s, p.value)))
            .collect();
        for (s, v) in values {
            self.learn(s, v);
        }
        self.flush_learned();
    }

    fn on_catch_up(&mut self, from: NodeId, slot: Slot) {
        // Compacted, or applied from a snapshot this node installed: only
        // the store has those slots now.
        if slot <= self.compacted || (slot <= self.applied && !self.chosen.contains_key(&slot)) {
            let (upto, store) = (self.applied, self.store.clone());
            self.send(from, Message::Snapshot { upto, store });
            return;
        }
        let entries: Vec<(Slot, Value)> = self
            .chosen
            .range(slot..)
            .take(self.options.max_batch)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        let commit = self.applied;
        self.send(from, Message::Chosen { entries, commit });
    }

    fn on_snapshot(&mut self, upto: Slot, store: Store) {
        if upto <= self.applied {
            return;
        }
        self.store = store;
        self.applied = upto;
        self.chosen = self.chosen.split_off(&(upto + 1));
        self.unrecorded.retain(|(s, _)| *s > upto);
        self.apply_chosen();
        self.rewrite();
    }

    // ---- learning and applying ----

    fn learn(&mut self, slot: Slot, value: Value) {
        if slot <= self.applied || self.chosen.contains_key(&slot) {
            return;
        }
        if let Some(o) = &mut self.observe {
            o.learned.push((slot, value.clone()));
        }
        if self.accepted.get(&slot).map(|(_, v)| v) != Some(&value) {
            self.unrecorded.push((slot, value.clone()));
        }
        self.chosen.insert(slot, value);
    }

    /// Records what was learned, applies the chosen prefix, and records the
    /// new commit point (after the `Chosen` records it depends on).
    fn flush_learned(&mut self) {
        if !self.unrecorded.is_empty() {
            let entries = std::mem::take(&mut self.unrecorded);
            self.out.records.push(Record::Chosen { entries });
        }
        self.apply_chosen();
        if self.applied > self.committed_record {
            self.committed_record = self.applied;
            self.out.records.push(Record::Commit { upto: self.applied });
        }
    }

    fn apply_chosen(&mut self) {
        while let Some(v) = self.chosen.get(&(self.applied + 1)) {
            let slot = self.applied + 1;
            self.applied = slot;
            let Value::Command(cmd) = v else {
                continue;
            };
            let cmd = cmd.clone();
            let output = self.store.apply(&cmd);
            if let Role::Leader(l) = &mut self.role
                && let Some(rid) = l.pending.remove(&slot)
            {
                let reply = if rid == cmd.id {
                    Reply::Done(output)
                } else {
                    Reply::Unknown("paxos: another command was chosen for its slot".into())
                };
                self.out.replies.push((rid, reply));
            }
            self.out.applied.push((slot, cmd));
        }
    }

    // ---- compaction ----

    /// Every replica applied `upto`: nobody will ask for those slots again,
    /// neither in phase 1 (a candidate starts after its applied prefix) nor
    /// in a catch-up.
    fn maybe_compact(&mut self, upto: Slot) {
        let upto = upto.min(self.applied);
        if upto < self.compacted + self.options.snapshot_every {
            return;
        }
        self.compacted = upto;
        self.accepted = self.accepted.split_off(&(upto + 1));
        self.chosen = self.chosen.split_off(&(upto + 1));
        self.rewrite();
    }

    /// Replaces the durable log by the current state. Records already in
    /// this batch are subsumed by it, so they are dropped.
    fn rewrite(&mut self) {
        let mut log = vec![
            Record::Snapshot {
                upto: self.applied,
                store: self.store.clone(),
            },
            Record::Promise {
                ballot: self.promised,
            },
        ];
        let mut by_ballot: BTreeMap<Ballot, Vec<(Slot, Value)>> = BTreeMap::new();
        for (s, (b, v)) in &self.accepted {
            by_ballot.entry(*b).or_default().push((*s, v.clone()));
        }
        for (ballot, entries) in by_ballot {
            log.push(Record::Accepted { ballot, entries });
        }
        let chosen: Vec<(Slot, Value)> = self.chosen.iter().map(|(s, v)| (*s, v.clone())).collect();
        if !chosen.is_empty() {
            log.push(Record::Chosen { entries: chosen });
        }
        self.unrecorded.clear();
        self.committed_record = self.applied;
        self.out.records.clear();
        self.out.rewrite = Some(log);
    }
}

fn random_timeout(rng: &mut StdRng, election_ticks: u64) -> u64 {
    let base = election_ticks.max(1);
    rng.random_range(base..2 * base)
}

impl Core for Paxos {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Paxos {
        // Majorities always satisfy q1 + q2 > n, so this cannot fail.
        Paxos::recover_with(config, PaxosConfig::default(), records)
            .unwrap_or_else(|e| unreachable!("majority quorums rejected: {e}"))
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => self.tick(),
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Request(cmd) => self.on_request(cmd),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        self.flush_proposals();
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        let role = match self.role {
            Role::Follower => "follower",
            Role::Candidate { .. } => "candidate",
            Role::Leader(_) => "leader",
        };
        let term = match self.role {
            Role::Follower => self.promised.as_term(),
            _ => self.ballot.as_term(),
        };
        Status {
            role,
            term,
            leader: self.leader,
            commit: self.applied,
        }
    }
}
