//! Zab, ZooKeeper's atomic broadcast, as a pure [`Core`].
//!
//! After Junqueira, Reed and Serafini, "Zab: High-performance broadcast for
//! primary-backup systems" (DSN 2011, §IV, Algorithms 1–3) and Medeiros,
//! "ZooKeeper's atomic broadcast protocol: Theory and practice" (2012, §3:
//! the phases as ZooKeeper implements them). A node is `looking`,
//! `following` or `leading`, and an epoch goes through four phases:
//!
//! - **Phase 0, leader election** (Fast Leader Election): looking nodes
//!   exchange [`Vote`]s ordered by (currentEpoch, last zxid, server id) and
//!   settle on the best vote a quorum shares. Election only picks a
//!   *prospective* leader; safety comes from the phases below.
//! - **Phase 1, discovery**: followers send `FOLLOWERINFO` (their
//!   acceptedEpoch, the paper's CEPOCH); once a quorum has, the leader picks
//!   `e' = max(acceptedEpoch) + 1` and sends `NEWEPOCH(e')`. A follower
//!   accepts it only if `e'` is above its acceptedEpoch (or it is the same
//!   leader's epoch again), persists acceptedEpoch — the promise not to
//!   accept proposals of older epochs — and answers `ACKEPOCH` with its
//!   currentEpoch, last zxid and the shape of its history. The leader takes
//!   the most up-to-date history of its quorum, by (currentEpoch, last zxid),
//!   as the epoch's initial history, fetching it from the follower that has
//!   it when that isn't the leader itself.
//! - **Phase 2, synchronization**: `NEWLEADER(e')` carries what each
//!   follower lacks: a TRUNC point (the last zxid both histories share) and a
//!   DIFF (the leader's transactions after it). The follower persists
//!   currentEpoch and the history, then ACKs; once a quorum has acked, the
//!   initial history is committed (ZooKeeper's UPTODATE) and the leader is
//!   *established*. Followers apply nothing before that commit.
//! - **Phase 3, broadcast**: the leader assigns `zxid = epoch << 32 |
//!   counter`, sends `PROPOSAL`s (batched per [`Core::ready`]), followers
//!   persist and ACK (cumulatively, as FIFO channels make Zab's ACKs), and
//!   the leader sends `COMMIT` for the longest prefix a quorum has acked.
//!
//! Channels are not FIFO here (the sim drops, duplicates and reorders), so a
//! follower accepts a proposal batch only if it continues its history
//! (`prev` ≤ its last zxid), and the leader resends from each follower's
//! last ACK on heartbeats — the equivalent of ZooKeeper re-syncing a learner
//! whose connection broke.
//!
//! Client requests: only the established leader takes them; anyone else
//! replies `NotLeader` (followers name the leader once synced). **Reads go
//! through the broadcast** like writes: ZooKeeper serves reads from a
//! follower's local state and is only sequentially consistent (a `sync`
//! first makes it closer to linearizable); ordering the read as a
//! transaction makes register and list-append histories linearizable.
//!
//! `applied` positions are zxids. Durable [`Record`]s: acceptedEpoch and
//! currentEpoch (each with the leader they came from) and the transaction
//! log, written before the ACK that depends on them (the Ready contract).

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, RequestId, Store};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[cfg(test)]
mod tests;

// Simulator-only bugs (after `sim_only:`) are honoured by the core but are
// not `--bug`s: no lab run exposes them, so their simulator tests are the
// check (docs/reference-impls.md, "Replaced bugs").

// Zab's seeded bugs (`--bug NAME`).
crate::seeded_bugs! {
    "zab";
    accept_stale_epoch = "accept-stale-epoch":
        "a synced follower takes PROPOSAL, COMMIT and PING from any server, checking \
                      neither that it is the leader it follows nor the epoch (Algorithm 3's \
                      e' = currentEpoch), and acks them with its last zxid: a deposed leader that \
                      wakes up (SIGCONT) finds a quorum again and commits and serves reads beside the new one",
    reuse_epoch = "reuse-epoch":
        "a new leader reuses the highest acceptedEpoch instead of bumping past it \
                      (numbering on from its own last zxid), and followers ack a NEWEPOCH equal to \
                      the one they accepted: two leaders share an epoch, and a server holding the \
                      other leader's longer suffix delivers it under the zxids the new leader commits",
    commit_before_quorum = "commit-before-quorum":
        "the leader counts its own ACK twice, committing a proposal one ACK short of a quorum",
    skip_truncate = "skip-truncate":
        "a follower ignores TRUNC and keeps an uncommitted suffix from an old epoch, \
                      delivering transactions no quorum accepted",
    read_without_sync = "read-without-sync":
        "every server answers reads from the state it has delivered, as ZooKeeper \
                      does for a read without a preceding sync(), and keeps answering while cut \
                      off from the leader (like ZooKeeper's read-only mode)",
    ;
    sim_only:
    serve_before_sync = "serve-before-sync":
        "a follower delivers the NEWLEADER history as soon as it arrives, before the leader has a quorum (UPTODATE), so it may apply transactions that are later truncated; see `bug_serve_before_sync_breaks_total_order`",
}

pub type Epoch = u64;
/// `epoch << 32 | counter`; 0 is "nothing".
pub type Zxid = u64;

pub fn zxid(epoch: Epoch, counter: u64) -> Zxid {
    (epoch << 32) | counter
}

pub fn epoch_of(z: Zxid) -> Epoch {
    z >> 32
}

pub fn counter_of(z: Zxid) -> u64 {
    z & 0xffff_ffff
}

/// Most proposals the leader resends to a lagging follower per heartbeat.
const RESEND_BATCH: usize = 256;

/// One transaction of the replicated history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    pub zxid: Zxid,
    pub cmd: Command,
}

/// A Fast Leader Election vote, ordered as ZooKeeper's `totalOrderPredicate`:
/// currentEpoch, then last zxid, then server id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vote {
    pub epoch: Epoch,
    pub zxid: Zxid,
    pub leader: NodeId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

/// The part of a follower's history that is newer than the prospective
/// leader's, so the leader can adopt it (phase 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Newer {
    /// `Some(z)`: `txns` follow the leader's last zxid `z`; `None`: the
    /// histories diverge and `txns` is the whole history.
    pub after: Option<Zxid>,
    pub txns: Vec<Txn>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Phase 0. `round` is FLE's logical clock (electionEpoch).
    Notification {
        round: u64,
        vote: Vote,
        state: PeerState,
    },
    /// Phase 1, the paper's CEPOCH. `session` names this follower's attempt
    /// to join, so duplicates and stale replies are recognised.
    FollowerInfo { session: u64, accepted_epoch: Epoch },
    /// Carries the leader's own (currentEpoch, last zxid) so a follower with
    /// a newer history can send it along with its ACKEPOCH.
    NewEpoch {
        session: u64,
        epoch: Epoch,
        current_epoch: Epoch,
        last_zxid: Zxid,
    },
    AckEpoch {
        session: u64,
        epoch: Epoch,
        current_epoch: Epoch,
        last_zxid: Zxid,
        /// (epoch, last counter) of each epoch in the history, oldest
        /// first: enough to find the last zxid both histories share.
        runs: Vec<(Epoch, u64)>,
        newer: Option<Newer>,
    },
    /// Phase 2: TRUNC to `base`, then the DIFF; `follower_last` is the last
    /// zxid the follower reported, so a stale copy is not applied to a
    /// history that has moved on.
    NewLeader {
        session: u64,
        epoch: Epoch,
        base: Zxid,
        follower_last: Zxid,
        diff: Vec<Txn>,
        last: Zxid,
    },
    AckNewLeader {
        session: u64,
        epoch: Epoch,
        zxid: Zxid,
    },
    /// Phase 3: transactions following `prev` in the leader's history.
    Proposal {
        epoch: Epoch,
        prev: Zxid,
        txns: Vec<Txn>,
    },
    /// Everything up to `zxid` is logged.
    Ack { epoch: Epoch, zxid: Zxid },
    /// Everything up to `zxid` is committed.
    Commit { epoch: Epoch, zxid: Zxid },
    /// Heartbeat; also carries the commit point. Answered with an `Ack`.
    Ping { epoch: Epoch, commit: Zxid },
}

/// What a node writes to its durable log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    AcceptedEpoch {
        epoch: Epoch,
        leader: NodeId,
    },
    CurrentEpoch {
        epoch: Epoch,
        leader: NodeId,
    },
    Txn(Txn),
    /// Drop every transaction after `to`.
    Truncate {
        to: Zxid,
    },
    /// Written at each start, so follower sessions never repeat.
    Boot {
        incarnation: u64,
    },
}

#[derive(Debug)]
struct Looking {
    vote: Vote,
    /// Votes of looking peers in our round (ours included).
    received: BTreeMap<NodeId, Vote>,
    /// Peers out of the election: whom they follow or lead.
    outside: BTreeMap<NodeId, NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FollowerPhase {
    /// Sent FOLLOWERINFO, waiting for NEWEPOCH.
    Discovery,
    /// Sent ACKEPOCH, waiting for NEWLEADER.
    AckedEpoch,
    /// History synchronized with the leader; proposals and commits accepted.
    Synced,
}

#[derive(Debug)]
struct Following {
    leader: NodeId,
    session: u64,
    phase: FollowerPhase,
    heard: u64,
}

#[derive(Clone, Debug)]
enum LearnerState {
    /// Sent FOLLOWERINFO.
    Info,
    /// Sent ACKEPOCH.
    AckedEpoch {
        last_zxid: Zxid,
        runs: Vec<(Epoch, u64)>,
    },
    /// Sent NEWLEADER.
    Syncing {
        last_zxid: Zxid,
        runs: Vec<(Epoch, u64)>,
    },
    /// Acked NEWLEADER; `acked` is its highest acknowledged zxid.
    Synced { acked: Zxid },
}

/// The leader's view of one follower (ZooKeeper's LearnerHandler).
#[derive(Debug)]
struct Learner {
    session: u64,
    accepted_epoch: Epoch,
    current_epoch: Epoch,
    state: LearnerState,
    newer: Option<Newer>,
    heard: u64,
}

#[derive(Debug)]
struct Leading {
    /// The new epoch, once a quorum sent FOLLOWERINFO.
    epoch: Option<Epoch>,
    /// The initial history is chosen and NEWLEADERs are out.
    syncing: bool,
    /// A quorum acked NEWLEADER: phase 3.
    established: bool,
    learners: BTreeMap<NodeId, Learner>,
    since: u64,
    next_counter: u64,
    /// Proposals not yet sent to followers (batched per `ready`).
    unsent_from: Option<usize>,
    commit_dirty: bool,
}

#[derive(Debug)]
enum State {
    Looking(Looking),
    Following(Following),
    Leading(Leading),
}

/// A Zab server.
pub struct Zab {
    config: Config,
    bugs: Bugs,
    rng: StdRng,
    // Durable.
    accepted_epoch: Epoch,
    accepted_leader: NodeId,
    current_epoch: Epoch,
    current_leader: NodeId,
    history: Vec<Txn>,
    // Volatile.
    state: State,
    incarnation: u64,
    joins: u64,
    tick: u64,
    timeout: u64,
    round: u64,
    commit: Zxid,
    applied: Zxid,
    store: Store,
    pending: BTreeSet<RequestId>,
    out: Ready<Message, Record>,
}

impl Zab {
    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }

    pub fn history(&self) -> &[Txn] {
        &self.history
    }

    pub fn last_zxid(&self) -> Zxid {
        self.history.last().map_or(0, |t| t.zxid)
    }

    /// The epoch of an established leader.
    pub fn established_epoch(&self) -> Option<Epoch> {
        match &self.state {
            State::Leading(l) if l.established => l.epoch,
            _ => None,
        }
    }

    fn quorum(&self) -> usize {
        self.config.quorum()
    }

    fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.config
            .peers
            .iter()
            .copied()
            .filter(move |p| *p != self.config.id)
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.out.messages.push((to, msg));
    }

    fn broadcast(&mut self, msg: Message) {
        let to: Vec<NodeId> = self.others().collect();
        for p in to {
            self.out.messages.push((p, msg.clone()));
        }
    }

    fn contains(&self, z: Zxid) -> bool {
        z == 0 || self.history.binary_search_by_key(&z, |t| t.zxid).is_ok()
    }

    /// Index of the first transaction after `z`.
    fn index_after(&self, z: Zxid) -> usize {
        self.history.partition_point(|t| t.zxid <= z)
    }

    fn runs(&self) -> Vec<(Epoch, u64)> {
        let mut runs: Vec<(Epoch, u64)> = Vec::new();
        for t in &self.history {
            let (e, c) = (epoch_of(t.zxid), counter_of(t.zxid));
            match runs.last_mut() {
                Some((le, lc)) if *le == e => *lc = c,
                _ => runs.push((e, c)),
            }
        }
        runs
    }

    /// The last zxid this history shares with a follower's, from its runs:
    /// a zxid names one transaction and the whole prefix before it.
    fn common_prefix(&self, runs: &[(Epoch, u64)]) -> Zxid {
        for &(e, k) in runs.iter().rev() {
            let i = self.history.partition_point(|t| t.zxid < zxid(e + 1, 0));
            if let Some(t) = i.checked_sub(1).map(|i| &self.history[i])
                && epoch_of(t.zxid) == e
            {
                return zxid(e, k.min(counter_of(t.zxid)));
            }
        }
        0
    }

    fn my_vote(&self) -> Vote {
        Vote {
            epoch: self.current_epoch,
            zxid: self.last_zxid(),
            leader: self.config.id,
        }
    }

    fn reset_timeout(&mut self) {
        let e = self.config.election_ticks.max(1);
        self.timeout = self.rng.random_range(e..2 * e);
    }

    // ---- durable state ------------------------------------------------

    fn set_accepted_epoch(&mut self, epoch: Epoch, leader: NodeId) {
        self.accepted_epoch = epoch;
        self.accepted_leader = leader;
        self.out
            .records
            .push(Record::AcceptedEpoch { epoch, leader });
    }

    fn set_current_epoch(&mut self, epoch: Epoch, leader: NodeId) {
        if self.current_epoch != epoch || self.current_leader != leader {
            self.current_epoch = epoch;
            self.current_leader = leader;
            self.out
                .records
                .push(Record::CurrentEpoch { epoch, leader });
        }
    }

    fn append(&mut self, txn: Txn) {
        self.out.records.push(Record::Txn(txn.clone()));
        self.history.push(txn);
    }

    fn truncate(&mut self, to: Zxid) {
        let i = self.index_after(to);
        if i < self.history.len() {
            self.history.truncate(i);
            self.out.records.push(Record::Truncate { to });
        }
    }

    /// Appends the transactions after our last zxid (the rest we have).
    fn extend(&mut self, txns: &[Txn]) {
        let last = self.last_zxid();
        let from = txns.partition_point(|t| t.zxid <= last);
        for t in &txns[from..] {
            self.append(t.clone());
        }
    }

    // ---- delivery -----------------------------------------------------

    fn advance_commit(&mut self, z: Zxid) {
        let z = z.min(self.last_zxid());
        if z > self.commit {
            self.commit = z;
        }
        self.apply_committed();
    }

    fn apply_committed(&mut self) {
        let from = self.index_after(self.applied);
        let to = self.index_after(self.commit);
        for i in from..to.max(from) {
            let txn = &self.history[i];
            let out = self.store.apply(&txn.cmd);
            self.applied = txn.zxid;
            self.out.applied.push((txn.zxid, txn.cmd.clone()));
            if self.pending.remove(&txn.cmd.id) {
                self.out.replies.push((txn.cmd.id, Reply::Done(out)));
            }
        }
    }

    // ---- role changes -------------------------------------------------

    fn become_looking(&mut self) {
        for rid in std::mem::take(&mut self.pending) {
            self.out.replies.push((
                rid,
                Reply::Unknown("leadership lost with the request in flight".into()),
            ));
        }
        self.round += 1;
        let vote = self.my_vote();
        self.state = State::Looking(Looking {
            vote,
            received: BTreeMap::from([(self.config.id, vote)]),
            outside: BTreeMap::new(),
        });
        self.reset_timeout();
        self.broadcast_vote();
        self.check_election();
    }

    fn broadcast_vote(&mut self) {
        if let State::Looking(l) = &self.state {
            let msg = Message::Notification {
                round: self.round,
                vote: l.vote,
                state: PeerState::Looking,
            };
            self.broadcast(msg);
        }
    }

    fn become_following(&mut self, leader: NodeId) {
        // Unique and increasing across restarts, so the leader can tell a
        // new join from a duplicate or a stale one.
        self.joins += 1;
        let session = (self.incarnation << 32) | self.joins;
        self.state = State::Following(Following {
            leader,
            session,
            phase: FollowerPhase::Discovery,
            heard: self.tick,
        });
        self.reset_timeout();
        let accepted_epoch = self.accepted_epoch;
        self.send(
            leader,
            Message::FollowerInfo {
                session,
                accepted_epoch,
            },
        );
    }

    fn become_leading(&mut self) {
        self.state = State::Leading(Leading {
            epoch: None,
            syncing: false,
            established: false,
            learners: BTreeMap::new(),
            since: self.tick,
            next_counter: 1,
            unsent_from: None,
            commit_dirty: false,
        });
        self.reset_timeout();
        self.advance_leader();
    }

    // ---- phase 0: leader election ------------------------------------

    fn step_election(&mut self, from: NodeId, round: u64, vote: Vote, state: PeerState) {
        let my_round = self.round;
        let State::Looking(l) = &mut self.state else {
            // Out of the election: tell a looking peer whom we follow/lead.
            if state == PeerState::Looking {
                let (leader, st) = match &self.state {
                    State::Following(f) => (f.leader, PeerState::Following),
                    _ => (self.config.id, PeerState::Leading),
                };
                let vote = Vote {
                    epoch: self.current_epoch,
                    zxid: self.last_zxid(),
                    leader,
                };
                self.send(
                    from,
                    Message::Notification {
                        round: my_round,
                        vote,
                        state: st,
                    },
                );
            }
            return;
        };
        match state {
            PeerState::Leading => {
                self.become_following(from);
                return;
            }
            PeerState::Following => {
                l.outside.insert(from, vote.leader);
            }
            PeerState::Looking => {
                if round > my_round {
                    self.round = round;
                    let own = Vote {
                        epoch: self.current_epoch,
                        zxid: self.history.last().map_or(0, |t| t.zxid),
                        leader: self.config.id,
                    };
                    l.vote = own.max(vote);
                    l.received.clear();
                    l.received.insert(self.config.id, l.vote);
                    l.received.insert(from, vote);
                    self.broadcast_vote();
                } else if round < my_round {
                    let msg = Message::Notification {
                        round: my_round,
                        vote: l.vote,
                        state: PeerState::Looking,
                    };
                    self.send(from, msg);
                    return;
                } else {
                    l.received.insert(from, vote);
                    if vote > l.vote {
                        l.vote = vote;
                        l.received.insert(self.config.id, vote);
                        self.broadcast_vote();
                    }
                }
            }
        }
        self.check_election();
    }

    fn check_election(&mut self) {
        let q = self.quorum();
        let me = self.config.id;
        let State::Looking(l) = &self.state else {
            return;
        };
        let agree = l.received.values().filter(|v| **v == l.vote).count();
        let followers_of_me = l.outside.values().filter(|x| **x == me).count();
        if agree >= q {
            if l.vote.leader == me {
                self.become_leading();
            } else {
                let leader = l.vote.leader;
                self.become_following(leader);
            }
        } else if followers_of_me + 1 >= q {
            self.become_leading();
        }
    }

    // ---- leader: phases 1–3 ------------------------------------------

    fn step_leader(&mut self, from: NodeId, msg: Message) {
        let tick = self.tick;
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if let Some(lr) = l.learners.get_mut(&from) {
            lr.heard = tick;
        }
        match msg {
            Message::FollowerInfo {
                session,
                accepted_epoch,
            } => {
                if l.learners
                    .get(&from)
                    .is_some_and(|lr| lr.session >= session)
                {
                    // A duplicate (answered on the heartbeat) or stale.
                    return;
                }
                l.learners.insert(
                    from,
                    Learner {
                        session,
                        accepted_epoch,
                        current_epoch: 0,
                        state: LearnerState::Info,
                        newer: None,
                        heard: tick,
                    },
                );
                if l.epoch.is_some() {
                    self.send_new_epoch(from);
                }
                self.advance_leader();
            }
            Message::AckEpoch {
                session,
                epoch,
                current_epoch,
                last_zxid,
                runs,
                newer,
            } => {
                let Some(lr) = l.learners.get_mut(&from) else {
                    return;
                };
                if lr.session != session
                    || l.epoch != Some(epoch)
                    || !matches!(lr.state, LearnerState::Info)
                {
                    return;
                }
                lr.current_epoch = current_epoch;
                lr.newer = newer;
                lr.state = LearnerState::AckedEpoch { last_zxid, runs };
                if l.syncing {
                    self.send_new_leader(from);
                }
                self.advance_leader();
            }
            Message::AckNewLeader {
                session,
                epoch,
                zxid,
            } => {
                let Some(lr) = l.learners.get_mut(&from) else {
                    return;
                };
                if lr.session != session || l.epoch != Some(epoch) {
                    return;
                }
                if !matches!(lr.state, LearnerState::Syncing { .. }) {
                    return;
                }
                lr.state = LearnerState::Synced { acked: zxid };
                if l.established {
                    // A late joiner: bring it up to date (UPTODATE).
                    let commit = self.commit;
                    self.send(
                        from,
                        Message::Commit {
                            epoch,
                            zxid: commit,
                        },
                    );
                    self.resend_proposals(from);
                }
                self.advance_leader();
                self.update_commit();
            }
            Message::Ack { epoch, zxid } => {
                if l.epoch != Some(epoch) {
                    return;
                }
                let last = self.history.last().map_or(0, |t| t.zxid);
                if let Some(Learner {
                    state: LearnerState::Synced { acked },
                    ..
                }) = l.learners.get_mut(&from)
                {
                    *acked = (*acked).max(zxid.min(last));
                }
                self.update_commit();
            }
            // Notifications are handled in `step`; the rest are a leader's
            // messages, stale here.
            _ => {}
        }
    }

    /// Moves a prospective leader through discovery and synchronization as
    /// far as its quorum allows.
    fn advance_leader(&mut self) {
        let q = self.quorum();
        let me = self.config.id;
        let mine = (self.current_epoch, self.last_zxid());
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if l.epoch.is_none() {
            if l.learners.len() + 1 < q {
                return;
            }
            let highest = l
                .learners
                .values()
                .map(|lr| lr.accepted_epoch)
                .fold(self.accepted_epoch, Epoch::max);
            // Seeded bug: no bump past the acceptedEpochs heard.
            let epoch = if self.bugs.reuse_epoch {
                highest.max(1)
            } else {
                highest + 1
            };
            l.epoch = Some(epoch);
            let to: Vec<NodeId> = l.learners.keys().copied().collect();
            self.set_accepted_epoch(epoch, me);
            for p in to {
                self.send_new_epoch(p);
            }
        }
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let Some(epoch) = l.epoch else { return };
        if !l.syncing {
            let acked: Vec<NodeId> = l
                .learners
                .iter()
                .filter(|(_, lr)| matches!(lr.state, LearnerState::AckedEpoch { .. }))
                .map(|(p, _)| *p)
                .collect();
            if acked.len() + 1 < q {
                return;
            }
            // The most up-to-date history of the quorum becomes the initial
            // history (by currentEpoch, then last zxid).
            let best = l
                .learners
                .values()
                .filter_map(|lr| match &lr.state {
                    LearnerState::AckedEpoch { last_zxid, .. } => {
                        Some(((lr.current_epoch, *last_zxid), lr.newer.clone()))
                    }
                    _ => None,
                })
                .max_by_key(|(k, _)| *k);
            l.syncing = true;
            if let Some((k, Some(newer))) = best
                && k > mine
            {
                match newer.after {
                    Some(z) if z == self.last_zxid() => {}
                    _ => self.truncate(0),
                }
                self.extend(&newer.txns);
            }
            self.set_current_epoch(epoch, me);
            // Seeded bug: in a reused epoch the numbering goes on after our
            // own last zxid, so it collides only with a server holding a
            // longer suffix of that epoch, which takes our proposals for
            // ones it has, acks them, and delivers its own instead.
            let last = self.last_zxid();
            if self.bugs.reuse_epoch
                && epoch_of(last) == epoch
                && let State::Leading(l) = &mut self.state
            {
                l.next_counter = counter_of(last) + 1;
            }
            for p in acked {
                self.send_new_leader(p);
            }
        }
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if !l.established {
            let synced = l
                .learners
                .values()
                .filter(|lr| matches!(lr.state, LearnerState::Synced { .. }))
                .count();
            if synced + 1 >= q {
                l.established = true;
                l.since = self.tick;
                self.update_commit();
            }
        }
    }

    fn send_new_epoch(&mut self, to: NodeId) {
        let (current_epoch, last_zxid) = (self.current_epoch, self.last_zxid());
        let State::Leading(l) = &self.state else {
            return;
        };
        let (Some(epoch), Some(lr)) = (l.epoch, l.learners.get(&to)) else {
            return;
        };
        let msg = Message::NewEpoch {
            session: lr.session,
            epoch,
            current_epoch,
            last_zxid,
        };
        self.send(to, msg);
    }

    fn send_new_leader(&mut self, to: NodeId) {
        let last = self.last_zxid();
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let (Some(epoch), Some(lr)) = (l.epoch, l.learners.get_mut(&to)) else {
            return;
        };
        let (follower_last, runs) = match &lr.state {
            LearnerState::AckedEpoch { last_zxid, runs }
            | LearnerState::Syncing { last_zxid, runs } => (*last_zxid, runs.clone()),
            _ => return,
        };
        lr.state = LearnerState::Syncing {
            last_zxid: follower_last,
            runs: runs.clone(),
        };
        let session = lr.session;
        let base = self.common_prefix(&runs);
        let diff = self.history[self.index_after(base)..].to_vec();
        self.send(
            to,
            Message::NewLeader {
                session,
                epoch,
                base,
                follower_last,
                diff,
                last,
            },
        );
    }

    fn resend_proposals(&mut self, to: NodeId) {
        let State::Leading(l) = &self.state else {
            return;
        };
        let (Some(epoch), Some(lr)) = (l.epoch, l.learners.get(&to)) else {
            return;
        };
        let LearnerState::Synced { acked } = lr.state else {
            return;
        };
        let from = self.index_after(acked);
        if from < self.history.len() {
            let to_i = (from + RESEND_BATCH).min(self.history.len());
            let txns = self.history[from..to_i].to_vec();
            self.send(
                to,
                Message::Proposal {
                    epoch,
                    prev: acked,
                    txns,
                },
            );
        }
    }

    /// Commits the longest prefix a quorum (the leader included) has acked.
    fn update_commit(&mut self) {
        let q = self.quorum();
        let last = self.last_zxid();
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if !l.established {
            return;
        }
        let mut acks: Vec<Zxid> = l
            .learners
            .values()
            .filter_map(|lr| match lr.state {
                LearnerState::Synced { acked } => Some(acked),
                _ => None,
            })
            .collect();
        acks.push(last);
        // Seeded bug: the leader's own ACK counted twice.
        if self.bugs.commit_before_quorum {
            acks.push(last);
        }
        let Some(z) = crate::quorum::quorum_index(acks, q) else {
            return;
        };
        if z > self.commit {
            l.commit_dirty = true;
            self.advance_commit(z);
        }
    }

    fn propose(&mut self, cmd: Command) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let Some(epoch) = l.epoch else { return };
        let z = zxid(epoch, l.next_counter);
        l.next_counter += 1;
        if l.unsent_from.is_none() {
            l.unsent_from = Some(self.history.len());
        }
        self.pending.insert(cmd.id);
        self.append(Txn { zxid: z, cmd });
        self.update_commit();
    }

    fn tick_leader(&mut self) {
        let q = self.quorum();
        let tick = self.tick;
        let timeout = self.timeout;
        let State::Leading(l) = &self.state else {
            return;
        };
        if !l.established {
            if tick - l.since > 2 * timeout {
                self.become_looking();
            } else if tick.is_multiple_of(self.config.heartbeat_ticks.max(1)) {
                let learners: Vec<(NodeId, LearnerState)> = l
                    .learners
                    .iter()
                    .map(|(p, lr)| (*p, lr.state.clone()))
                    .collect();
                for (p, st) in learners {
                    match st {
                        LearnerState::Info => self.send_new_epoch(p),
                        LearnerState::Syncing { .. } => self.send_new_leader(p),
                        _ => {}
                    }
                }
            }
            return;
        }
        let live = l
            .learners
            .values()
            .filter(|lr| {
                matches!(lr.state, LearnerState::Synced { .. }) && tick - lr.heard <= timeout
            })
            .count();
        if live + 1 < q && tick - l.since > timeout {
            self.become_looking();
            return;
        }
        if !tick.is_multiple_of(self.config.heartbeat_ticks.max(1)) {
            return;
        }
        let epoch = l.epoch.unwrap_or(0);
        let commit = self.commit;
        let learners: Vec<(NodeId, LearnerState)> = l
            .learners
            .iter()
            .map(|(p, lr)| (*p, lr.state.clone()))
            .collect();
        for (p, st) in learners {
            match st {
                LearnerState::Info => self.send_new_epoch(p),
                LearnerState::AckedEpoch { .. } | LearnerState::Syncing { .. } => {
                    self.send_new_leader(p)
                }
                LearnerState::Synced { .. } => {
                    self.send(p, Message::Ping { epoch, commit });
                    self.resend_proposals(p);
                }
            }
        }
    }

    // ---- follower -----------------------------------------------------

    fn step_follower(&mut self, from: NodeId, msg: Message) {
        let tick = self.tick;
        let State::Following(f) = &mut self.state else {
            return;
        };
        // Seeded bug: broadcast messages from anyone, of any epoch.
        let stale = self.bugs.accept_stale_epoch
            && f.phase == FollowerPhase::Synced
            && matches!(
                msg,
                Message::Proposal { .. } | Message::Commit { .. } | Message::Ping { .. }
            );
        if from != f.leader && !stale {
            return;
        }
        // Only messages meant for this join keep the leader alive in our
        // eyes: a follower the leader has lost track of times out and
        // rejoins instead of waiting forever.
        let ours = match &msg {
            Message::NewEpoch { session, .. } => {
                *session == f.session && f.phase != FollowerPhase::Synced
            }
            Message::NewLeader { session, .. } => *session == f.session,
            Message::Proposal { epoch, .. }
            | Message::Commit { epoch, .. }
            | Message::Ping { epoch, .. } => {
                f.phase == FollowerPhase::Synced && (*epoch == self.current_epoch || stale)
            }
            _ => false,
        };
        if !ours {
            return;
        }
        if from != f.leader {
            // The stale leader is answered, the one we follow is not news.
            let epoch = match msg {
                Message::Proposal { epoch, prev, txns } => {
                    if prev <= self.last_zxid() {
                        self.extend(&txns);
                    }
                    epoch
                }
                Message::Ping { epoch, .. } => epoch,
                _ => return,
            };
            let zxid = self.last_zxid();
            self.send(from, Message::Ack { epoch, zxid });
            return;
        }
        f.heard = tick;
        let (leader, session, phase) = (f.leader, f.session, f.phase);
        match msg {
            Message::NewEpoch {
                session: s,
                epoch,
                current_epoch,
                last_zxid,
            } => {
                if s != session || phase == FollowerPhase::Synced {
                    return;
                }
                let fresh = epoch > self.accepted_epoch;
                let again = epoch == self.accepted_epoch
                    && (self.accepted_leader == leader || self.bugs.reuse_epoch);
                if !fresh && !again {
                    // A promise to a newer epoch (or a rival) stands.
                    self.become_looking();
                    return;
                }
                if fresh || self.accepted_leader != leader {
                    self.set_accepted_epoch(epoch, leader);
                }
                if let State::Following(f) = &mut self.state {
                    f.phase = FollowerPhase::AckedEpoch;
                }
                let mine = (self.current_epoch, self.last_zxid());
                let newer = (mine > (current_epoch, last_zxid)).then(|| {
                    if self.contains(last_zxid) {
                        Newer {
                            after: Some(last_zxid),
                            txns: self.history[self.index_after(last_zxid)..].to_vec(),
                        }
                    } else {
                        Newer {
                            after: None,
                            txns: self.history.clone(),
                        }
                    }
                });
                let msg = Message::AckEpoch {
                    session,
                    epoch,
                    current_epoch: self.current_epoch,
                    last_zxid: self.last_zxid(),
                    runs: self.runs(),
                    newer,
                };
                self.send(leader, msg);
            }
            Message::NewLeader {
                session: s,
                epoch,
                base,
                follower_last,
                diff,
                last,
            } => {
                if s != session
                    || phase == FollowerPhase::Discovery
                    || epoch != self.accepted_epoch
                    || self.accepted_leader != leader
                {
                    return;
                }
                let mine = self.last_zxid();
                if mine != last {
                    if mine != follower_last {
                        // Stale: computed from a history we no longer have.
                        return;
                    }
                    // Seeded bug: the old epoch's suffix stays.
                    if !self.bugs.skip_truncate {
                        self.truncate(base);
                    }
                    self.extend(&diff);
                }
                self.set_current_epoch(epoch, leader);
                if let State::Following(f) = &mut self.state {
                    f.phase = FollowerPhase::Synced;
                }
                // Seeded bug: delivered before a quorum has it (no UPTODATE).
                if self.bugs.serve_before_sync {
                    self.advance_commit(last);
                }
                let zxid = self.last_zxid();
                self.send(
                    leader,
                    Message::AckNewLeader {
                        session,
                        epoch,
                        zxid,
                    },
                );
            }
            Message::Proposal { epoch, prev, txns } => {
                if phase != FollowerPhase::Synced || epoch != self.current_epoch {
                    return;
                }
                if prev <= self.last_zxid() {
                    self.extend(&txns);
                }
                let zxid = self.last_zxid();
                self.send(leader, Message::Ack { epoch, zxid });
            }
            Message::Commit { epoch, zxid }
                if phase == FollowerPhase::Synced && epoch == self.current_epoch =>
            {
                self.advance_commit(zxid);
            }
            Message::Ping { epoch, commit }
                if phase == FollowerPhase::Synced && epoch == self.current_epoch =>
            {
                self.advance_commit(commit);
                let zxid = self.last_zxid();
                self.send(leader, Message::Ack { epoch, zxid });
            }
            _ => {}
        }
    }

    fn tick_follower(&mut self) {
        let State::Following(f) = &self.state else {
            return;
        };
        if self.tick - f.heard > self.timeout {
            self.become_looking();
            return;
        }
        if f.phase == FollowerPhase::Discovery
            && self.tick.is_multiple_of(self.config.heartbeat_ticks.max(1))
        {
            let msg = Message::FollowerInfo {
                session: f.session,
                accepted_epoch: self.accepted_epoch,
            };
            self.send(f.leader, msg);
        }
    }

    fn request(&mut self, cmd: Command) {
        if self.bugs.read_without_sync
            && let Some(out) = self.store.query(&cmd.op)
        {
            // Seeded bug: a local read, wherever the client is connected.
            self.out.replies.push((cmd.id, Reply::Done(out)));
            return;
        }
        let leader = match &self.state {
            State::Leading(l) if l.established => {
                self.propose(cmd);
                return;
            }
            State::Following(f) if f.phase == FollowerPhase::Synced => Some(f.leader),
            _ => None,
        };
        self.out.replies.push((cmd.id, Reply::NotLeader { leader }));
    }
}

impl Core for Zab {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Zab {
        let incarnation = records
            .iter()
            .filter_map(|r| match r {
                Record::Boot { incarnation } => Some(*incarnation),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 1;
        let rng =
            StdRng::seed_from_u64(config.seed ^ incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut z = Zab {
            bugs: Bugs::from_config(&config),
            config,
            rng,
            accepted_epoch: 0,
            accepted_leader: 0,
            current_epoch: 0,
            current_leader: 0,
            history: Vec::new(),
            state: State::Looking(Looking {
                vote: Vote {
                    epoch: 0,
                    zxid: 0,
                    leader: 0,
                },
                received: BTreeMap::new(),
                outside: BTreeMap::new(),
            }),
            incarnation,
            joins: 0,
            tick: 0,
            timeout: 0,
            round: 0,
            commit: 0,
            applied: 0,
            store: Store::new(),
            pending: BTreeSet::new(),
            out: Ready::default(),
        };
        for r in records {
            match r {
                Record::AcceptedEpoch { epoch, leader } => {
                    z.accepted_epoch = epoch;
                    z.accepted_leader = leader;
                }
                Record::CurrentEpoch { epoch, leader } => {
                    z.current_epoch = epoch;
                    z.current_leader = leader;
                }
                Record::Txn(t) => z.history.push(t),
                Record::Truncate { to } => {
                    let i = z.index_after(to);
                    z.history.truncate(i);
                }
                Record::Boot { .. } => {}
            }
        }
        // acceptedEpoch ≥ currentEpoch always: NEWLEADER(e) needs NEWEPOCH(e).
        if z.accepted_epoch < z.current_epoch {
            z.accepted_epoch = z.current_epoch;
            z.accepted_leader = z.current_leader;
        }
        z.out.records.push(Record::Boot { incarnation });
        z.become_looking();
        z
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => {
                self.tick += 1;
                match &self.state {
                    State::Looking(_) => {
                        if self.tick.is_multiple_of(self.config.heartbeat_ticks.max(1)) {
                            self.broadcast_vote();
                        }
                    }
                    State::Following(_) => self.tick_follower(),
                    State::Leading(_) => self.tick_leader(),
                }
            }
            Input::Message {
                from,
                msg: Message::Notification { round, vote, state },
            } => self.step_election(from, round, vote, state),
            Input::Message { from, msg } => match &self.state {
                State::Looking(_) => {}
                State::Following(_) => self.step_follower(from, msg),
                State::Leading(_) => self.step_leader(from, msg),
            },
            Input::Request(cmd) => self.request(cmd),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        if let State::Leading(l) = &mut self.state {
            let epoch = l.epoch.unwrap_or(0);
            let synced: Vec<NodeId> = l
                .learners
                .iter()
                .filter(|(_, lr)| matches!(lr.state, LearnerState::Synced { .. }))
                .map(|(p, _)| *p)
                .collect();
            if let Some(from) = l.unsent_from.take() {
                let prev = from.checked_sub(1).map_or(0, |i| self.history[i].zxid);
                let txns = self.history[from..].to_vec();
                for &p in &synced {
                    self.out.messages.push((
                        p,
                        Message::Proposal {
                            epoch,
                            prev,
                            txns: txns.clone(),
                        },
                    ));
                }
            }
            if std::mem::take(&mut l.commit_dirty) {
                for &p in &synced {
                    self.out.messages.push((
                        p,
                        Message::Commit {
                            epoch,
                            zxid: self.commit,
                        },
                    ));
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        let (role, term, leader) = match &self.state {
            State::Looking(_) => ("looking", self.current_epoch, None),
            State::Following(f) => ("following", self.current_epoch, Some(f.leader)),
            State::Leading(l) if l.established => {
                ("leader", l.epoch.unwrap_or(0), Some(self.config.id))
            }
            State::Leading(_) => ("leading", self.accepted_epoch, Some(self.config.id)),
        };
        Status {
            role,
            term,
            leader,
            commit: self.commit,
        }
    }
}
