//! Bully and ring elections with a quorum announcement (see the parent
//! module for why): the candidate is chosen the textbook way, then it must
//! collect a majority of durable promises for a fresh epoch before it
//! leads, and it keeps leading only while a majority acknowledges its
//! heartbeats.
//!
//! Timing, in ticks: the election timeout is randomized in
//! `[election_ticks, 2 * election_ticks)`; heartbeats every
//! `heartbeat_ticks`; the lease is `election_ticks`; a bully candidate
//! waits `2 * heartbeat_ticks` for an `Answer`; a ring hop is skipped after
//! `2 * heartbeat_ticks` without its `HopAck`.

use super::{Algo, Message, Record, View, answer};
use crate::core::{Config, Input, NodeId, Ready, Status};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Bully and ring messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Bully: the sender campaigns; sent to every higher id.
    Election,
    /// Bully: a higher id is alive and takes the election over.
    Answer,
    /// Bully: a request for a promise of `epoch` to the sender.
    Coordinator {
        epoch: u64,
    },
    /// The promise was given (and is durable).
    Ack {
        epoch: u64,
    },
    /// Refused: the receiver promised `epoch` (at least the asked one) to
    /// another node.
    Nack {
        epoch: u64,
    },
    /// An established leader's heartbeat.
    Heartbeat {
        epoch: u64,
    },
    HeartbeatAck {
        epoch: u64,
    },
    /// Ring: a token for the successor, acknowledged hop by hop.
    Ring {
        seq: u64,
        token: Token,
    },
    HopAck {
        seq: u64,
    },
}

/// What travels around the ring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Token {
    /// Chang–Roberts: the highest id seen so far, and the highest epoch.
    Election { candidate: NodeId, max_epoch: u64 },
    /// The winner's request for promises of `epoch`, collected on the way.
    Coordinator {
        epoch: u64,
        leader: NodeId,
        promised: Vec<NodeId>,
        hops: u32,
        max_epoch: u64,
        refused: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    /// Bully: waiting for an `Answer`; ring: our token is out.
    Electing,
    /// Bully: a higher id answered; waiting for its heartbeat.
    Waiting,
    /// Collecting promises for `cand_epoch`.
    Candidate,
    Leader,
}

pub struct QuorumElect {
    id: NodeId,
    peers: Vec<NodeId>,
    quorum: usize,
    algo: Algo,
    no_quorum: bool,
    volatile_epoch: bool,
    accept_higher_id: bool,
    count_hops: bool,
    election_ticks: u64,
    heartbeat_ticks: u64,
    rng: StdRng,
    /// The durable promise: (epoch, leader).
    promised: (u64, NodeId),
    /// The highest epoch heard of.
    max_seen: u64,
    role: Role,
    /// The established leader of `promised.0`, once heard from.
    leader: Option<NodeId>,
    ticks: u64,
    elapsed: u64,
    timeout: u64,
    cand_epoch: u64,
    acks: BTreeSet<NodeId>,
    refused: bool,
    /// Leader: when each peer last acknowledged a heartbeat; when it
    /// started leading.
    last_ack: BTreeMap<NodeId, u64>,
    leading_since: u64,
    /// Ring: forwarded an election token since the last leader.
    participant: bool,
    next_seq: u64,
    /// Ring: seq → (token, successors skipped, sent at).
    pending: BTreeMap<u64, (Token, usize, u64)>,
    out: Ready<Message, Record>,
}

impl QuorumElect {
    pub fn recover(config: Config, algo: Algo, records: Vec<Record>) -> QuorumElect {
        let mut promised = (0, 0);
        for r in records {
            if let Record::Promise { epoch, leader } = r {
                promised = (epoch, leader);
            }
        }
        let bugs = super::Bugs::from_config(&config);
        let mut q = QuorumElect {
            id: config.id,
            peers: config.peers.clone(),
            quorum: config.quorum(),
            algo,
            no_quorum: bugs.no_quorum,
            volatile_epoch: bugs.volatile_epoch,
            accept_higher_id: algo == Algo::Bully && bugs.accept_higher_id,
            count_hops: algo == Algo::Ring && bugs.ring_count_hops,
            election_ticks: config.election_ticks.max(1),
            heartbeat_ticks: config.heartbeat_ticks.max(1),
            rng: StdRng::seed_from_u64(config.seed),
            promised,
            max_seen: promised.0,
            role: Role::Follower,
            leader: None,
            ticks: 0,
            elapsed: 0,
            timeout: 0,
            cand_epoch: 0,
            acks: BTreeSet::new(),
            refused: false,
            last_ack: BTreeMap::new(),
            leading_since: 0,
            participant: false,
            next_seq: 0,
            pending: BTreeMap::new(),
            out: Ready::default(),
        };
        q.reset_timer();
        q
    }

    pub fn view(&self) -> View {
        View {
            epoch: self.promised.0,
            leader: if self.role == Role::Leader {
                Some(self.id)
            } else {
                self.leader
            },
            am_leader: self.role == Role::Leader,
        }
    }

    pub fn status(&self) -> Status {
        let v = self.view();
        Status {
            role: match self.role {
                Role::Follower => "follower",
                Role::Electing | Role::Waiting => "electing",
                Role::Candidate => "candidate",
                Role::Leader => "leader",
            },
            term: v.epoch,
            leader: v.leader,
            commit: 0,
        }
    }

    pub fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => self.tick(),
            Input::Message {
                from,
                msg: Message::Quorum(m),
            } => self.step_message(from, m),
            Input::Message { .. } => {}
            Input::Request(cmd) => {
                let r = answer(&cmd.op, self.view());
                self.out.replies.push((cmd.id, r));
            }
        }
    }

    pub fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, to: NodeId, m: Msg) {
        self.out.messages.push((to, Message::Quorum(m)));
    }

    fn others(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .copied()
            .filter(|&p| p != self.id)
            .collect()
    }

    fn reset_timer(&mut self) {
        self.elapsed = 0;
        self.timeout = self.election_ticks + self.rng.random_range(0..self.election_ticks);
    }

    // ---- promises ------------------------------------------------------

    /// Gives (and persists) a promise of `epoch` to `to` if allowed.
    fn promise(&mut self, epoch: u64, to: NodeId) -> bool {
        self.max_seen = self.max_seen.max(epoch);
        let (e, l) = self.promised;
        let ok = epoch > e
            || (epoch == e && to == l)
            // BUG accept-higher-id: the same epoch again, to a higher id.
            || (self.accept_higher_id && epoch == e && to > l);
        if ok && (epoch, to) != self.promised {
            if to != self.id && matches!(self.role, Role::Leader | Role::Candidate) {
                self.role = Role::Follower;
                self.reset_timer();
            }
            self.promised = (epoch, to);
            self.leader = None;
            if !self.volatile_epoch {
                self.out.records.push(Record::Promise { epoch, leader: to });
            }
        }
        ok
    }

    // ---- roles ---------------------------------------------------------

    fn start_election(&mut self) {
        self.leader = None;
        self.role = Role::Electing;
        self.reset_timer();
        match self.algo {
            Algo::Ring => {
                self.participant = true;
                let t = Token::Election {
                    candidate: self.id,
                    max_epoch: self.max_seen,
                };
                self.send_ring(t);
            }
            _ => {
                let higher: Vec<NodeId> =
                    self.others().into_iter().filter(|&p| p > self.id).collect();
                if higher.is_empty() {
                    self.announce(self.next_epoch());
                    return;
                }
                for p in higher {
                    self.send(p, Msg::Election);
                }
            }
        }
    }

    fn next_epoch(&self) -> u64 {
        self.max_seen.max(self.promised.0) + 1
    }

    /// Asks for promises of `epoch` (promising it to ourselves first).
    fn announce(&mut self, epoch: u64) {
        self.participant = false;
        if !self.promise(epoch, self.id) {
            // Someone else holds this epoch here: go higher.
            return self.announce(self.next_epoch());
        }
        self.role = Role::Candidate;
        self.cand_epoch = epoch;
        self.acks = BTreeSet::from([self.id]);
        self.refused = false;
        self.elapsed = 0;
        // BUG no-quorum: the textbook Coordinator message *is* the
        // election's end.
        if self.no_quorum || self.acks.len() >= self.quorum {
            return self.become_leader();
        }
        self.ask_promises();
    }

    fn ask_promises(&mut self) {
        let epoch = self.cand_epoch;
        match self.algo {
            Algo::Ring => self.send_ring(Token::Coordinator {
                epoch,
                leader: self.id,
                promised: vec![self.id],
                hops: 1,
                max_epoch: epoch,
                refused: false,
            }),
            _ => {
                for p in self.others() {
                    if !self.acks.contains(&p) {
                        self.send(p, Msg::Coordinator { epoch });
                    }
                }
            }
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.leading_since = self.ticks;
        self.last_ack = self
            .acks
            .iter()
            .filter(|&&p| p != self.id)
            .map(|&p| (p, self.ticks))
            .collect();
        self.broadcast_heartbeat();
    }

    fn broadcast_heartbeat(&mut self) {
        self.elapsed = 0;
        let epoch = self.promised.0;
        for p in self.others() {
            self.send(p, Msg::Heartbeat { epoch });
        }
    }

    fn step_down(&mut self) {
        self.role = Role::Follower;
        self.leader = None;
        self.reset_timer();
    }

    // ---- time ------------------------------------------------------------

    fn tick(&mut self) {
        self.ticks += 1;
        self.elapsed += 1;
        self.retry_hops();
        match self.role {
            Role::Leader => {
                let lease = self.election_ticks;
                let live = 1 + self
                    .last_ack
                    .values()
                    .filter(|&&t| self.ticks - t <= lease)
                    .count();
                if live < self.quorum && self.ticks - self.leading_since > lease {
                    return self.step_down();
                }
                if self.elapsed >= self.heartbeat_ticks {
                    self.broadcast_heartbeat();
                }
            }
            Role::Candidate => {
                let retry = match self.algo {
                    Algo::Ring => self.election_ticks,
                    _ => 2 * self.heartbeat_ticks,
                };
                if self.elapsed >= retry {
                    self.elapsed = 0;
                    if self.refused {
                        self.announce(self.next_epoch());
                    } else {
                        self.ask_promises();
                    }
                }
            }
            Role::Electing if self.algo == Algo::Bully => {
                if self.elapsed >= 2 * self.heartbeat_ticks {
                    self.announce(self.next_epoch());
                }
            }
            Role::Follower | Role::Electing | Role::Waiting => {
                if self.elapsed >= self.timeout {
                    self.start_election();
                }
            }
        }
    }

    // ---- messages --------------------------------------------------------

    fn step_message(&mut self, from: NodeId, m: Msg) {
        match m {
            Msg::Election => {
                self.send(from, Msg::Answer);
                match self.role {
                    Role::Leader => self.broadcast_heartbeat(),
                    Role::Follower | Role::Waiting => self.start_election(),
                    Role::Electing | Role::Candidate => {}
                }
            }
            Msg::Answer => {
                if self.role == Role::Electing {
                    self.role = Role::Waiting;
                    self.reset_timer();
                }
            }
            Msg::Coordinator { epoch } => {
                if self.promise(epoch, from) {
                    self.send(from, Msg::Ack { epoch });
                    self.elapsed = 0;
                    self.bully_take_over(from);
                } else {
                    let e = self.promised.0;
                    self.send(from, Msg::Nack { epoch: e });
                }
            }
            Msg::Ack { epoch } => {
                if self.role == Role::Candidate && epoch == self.cand_epoch {
                    self.acks.insert(from);
                    if self.acks.len() >= self.quorum {
                        self.become_leader();
                    }
                }
            }
            Msg::Nack { epoch } => {
                self.max_seen = self.max_seen.max(epoch);
                match self.role {
                    Role::Candidate if epoch >= self.cand_epoch => self.refused = true,
                    Role::Leader if epoch >= self.promised.0 => self.step_down(),
                    _ => {}
                }
            }
            Msg::Heartbeat { epoch } => {
                if self.promise(epoch, from) {
                    if self.role != Role::Follower || self.leader != Some(from) {
                        self.role = Role::Follower;
                        self.leader = Some(from);
                    }
                    self.participant = false;
                    self.reset_timer();
                    self.send(from, Msg::HeartbeatAck { epoch });
                    self.bully_take_over(from);
                } else {
                    let e = self.promised.0;
                    self.send(from, Msg::Nack { epoch: e });
                }
            }
            Msg::HeartbeatAck { epoch } => {
                if self.role == Role::Leader && epoch == self.promised.0 {
                    self.last_ack.insert(from, self.ticks);
                }
            }
            Msg::Ring { seq, token } => {
                self.send(from, Msg::HopAck { seq });
                self.handle_token(token);
            }
            Msg::HopAck { seq } => {
                self.pending.remove(&seq);
            }
        }
    }

    /// Bully: a live node with a higher id than the leader takes over
    /// (a recovered process holds an election, 1982 §3).
    fn bully_take_over(&mut self, leader: NodeId) {
        if self.algo == Algo::Bully && leader < self.id && self.role == Role::Follower {
            self.start_election();
        }
    }

    // ---- the ring --------------------------------------------------------

    /// The `k`-th live-or-not successor on the ring (0: the next one);
    /// `None` once every other node was tried.
    fn successor(&self, k: usize) -> Option<NodeId> {
        let n = self.peers.len();
        let me = self.peers.iter().position(|&p| p == self.id)?;
        (k + 1 < n).then(|| self.peers[(me + k + 1) % n])
    }

    fn send_ring(&mut self, token: Token) {
        self.next_seq += 1;
        let seq = self.next_seq;
        match self.successor(0) {
            Some(to) => {
                self.pending.insert(seq, (token.clone(), 0, self.ticks));
                self.send(to, Msg::Ring { seq, token });
            }
            None => self.handle_token(token),
        }
    }

    /// Skips successors that did not acknowledge a hop in time; with none
    /// left the token comes back to us.
    fn retry_hops(&mut self) {
        let wait = 2 * self.heartbeat_ticks;
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, _, at))| self.ticks - at >= wait)
            .map(|(&s, _)| s)
            .collect();
        for seq in due {
            let Some((token, skipped, _)) = self.pending.remove(&seq) else {
                continue;
            };
            match self.successor(skipped + 1) {
                Some(to) => {
                    self.pending
                        .insert(seq, (token.clone(), skipped + 1, self.ticks));
                    self.send(to, Msg::Ring { seq, token });
                }
                None => self.handle_token(token),
            }
        }
    }

    fn handle_token(&mut self, token: Token) {
        match token {
            Token::Election {
                candidate,
                max_epoch,
            } => {
                self.max_seen = self.max_seen.max(max_epoch);
                let max_epoch = self.max_seen;
                if candidate == self.id {
                    if self.role == Role::Electing {
                        self.announce(self.next_epoch());
                    }
                } else if self.role == Role::Leader {
                    // The candidate will hear our heartbeat.
                    self.broadcast_heartbeat();
                } else if candidate > self.id {
                    self.participant = true;
                    self.send_ring(Token::Election {
                        candidate,
                        max_epoch,
                    });
                } else if !self.participant {
                    // Chang–Roberts: replace a lower candidate by ourselves.
                    self.participant = true;
                    if self.role == Role::Follower {
                        self.role = Role::Electing;
                        self.reset_timer();
                    }
                    self.send_ring(Token::Election {
                        candidate: self.id,
                        max_epoch,
                    });
                }
            }
            Token::Coordinator {
                epoch,
                leader,
                mut promised,
                mut hops,
                mut max_epoch,
                mut refused,
            } => {
                if leader == self.id {
                    self.max_seen = self.max_seen.max(max_epoch);
                    if self.role != Role::Candidate || epoch != self.cand_epoch {
                        return;
                    }
                    let unique: BTreeSet<NodeId> = promised.iter().copied().collect();
                    // BUG ring-count-hops: every hop counts as a promise.
                    let votes = if self.count_hops {
                        hops as usize
                    } else {
                        unique.len()
                    };
                    self.acks = unique;
                    if votes >= self.quorum {
                        self.become_leader();
                    } else {
                        self.refused |= refused;
                    }
                    return;
                }
                hops += 1;
                if self.promise(epoch, leader) {
                    promised.push(self.id);
                    self.elapsed = 0;
                } else {
                    refused = true;
                }
                max_epoch = max_epoch.max(self.promised.0);
                self.send_ring(Token::Coordinator {
                    epoch,
                    leader,
                    promised,
                    hops,
                    max_epoch,
                    refused,
                });
            }
        }
    }
}
