//! Two-phase commit with presumed abort (Gray, "Notes on Data Base
//! Operating Systems", 1978; Mohan, Lindsay & Obermarck, "Transaction
//! Management in the R* Distributed Database Management System", TODS
//! 1986) as a pure [`Core`], running bank transfers across shards.
//!
//! Every node is a **participant** (resource manager) holding one shard of
//! the bank: account `a` lives on `peers[a % n]`. The lowest id is also
//! the **coordinator** (transaction manager) and the only node that takes
//! client requests (the others answer `NotLeader`); its status says
//! `leader`, so tools that target a primary target it.
//!
//! A client request becomes one distributed transaction, named by a
//! [`TxnId`] (the coordinator's incarnation and a counter, so ids are never
//! reused across restarts):
//!
//! 1. **Prepare**: the coordinator sends each participant its part
//!    ([`Work`]). A participant locks the accounts (a prepare that
//!    conflicts with a held or earlier-queued lock waits, first come first
//!    served, for at most half the vote timeout, which also breaks
//!    deadlocks across shards); if it can do its part (the accounts exist,
//!    no overdraft) it force-logs [`Record::Prepared`] and votes yes;
//!    otherwise it votes no and forgets (a participant may abort
//!    unilaterally only *before* voting yes).
//! 2. **Decision**: with every vote yes the coordinator force-logs
//!    [`Record::Commit`] (the commit point), then sends `Commit` and answers
//!    the client; a no vote or a vote timeout aborts. **Presumed abort**:
//!    abort decisions are never logged and never acknowledged — a
//!    coordinator that knows nothing of a transaction answers "abort".
//! 3. A participant applies a commit (logging [`Record::Committed`]),
//!    releases its locks and acknowledges; when every participant has, the
//!    coordinator writes [`Record::End`] and forgets the transaction. Until
//!    then it re-sends the decision, also after a restart.
//!
//! **Recovery of in-doubt transactions**: a participant that voted yes and
//! has not heard the decision (it is *blocked*: it may neither commit nor
//! abort, and keeps its locks) asks the coordinator (`Inquire`) every few
//! ticks, also right after its own restart. While the coordinator is down
//! nothing can resolve them — the "single point of blocking" the tests
//! measure ([`TwoPc::blocked`]).
//!
//! **Reads** of all balances are read-only 2PC transactions: each
//! participant takes shared locks on its accounts and votes with its
//! balances; once every vote is in (the lock point, when all locks are held
//! at once) the coordinator sends `Commit`, and answers the client only
//! when every participant confirms it still held its locks (a participant
//! that restarted lost them). Read locks are not logged; they are released
//! on the decision or after a timeout. This makes a read a consistent
//! snapshot of all shards (strict two-phase locking).
//!
//! Timers, in ticks: re-sends and inquiries every `heartbeat_ticks`; the
//! coordinator aborts a transaction whose votes are not all in after
//! `election_ticks`.

#[cfg(test)]
mod tests;

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, Op, RequestId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One line about the protocol (`faultline-node --list`).
pub const ABOUT: &str = "two-phase commit with presumed abort: node 1 coordinates, every node holds a shard of the bank (bank workload only)";

// Two-phase commit's seeded bugs (`--bug NAME`).
crate::seeded_bugs! {
    "twopc";
    vote_before_log = "vote-before-log":
        "a participant votes yes without force-logging its prepare record, so after a restart it has forgotten the vote and acknowledges the commit without applying it",
    decide_before_log = "decide-before-log":
        "the coordinator sends commit and answers the client before logging the decision (the record waits for the next tick), so a crash in between makes its recovery presume abort",
    unilateral_abort = "unilateral-abort":
        "a participant that voted yes aborts on its own when the decision takes longer than a fifth of the vote timeout (as if it were still allowed to), while the coordinator may have committed",
    forget_commit_early = "forget-commit-early":
        "presumed abort done wrong: the coordinator writes its end record and forgets a commit at once instead of after every acknowledgement, so a participant that missed the commit and asks is told abort",
    read_early_release = "read-early-release":
        "the read-only optimization done wrong: participants release a read's shared locks as soon as they vote and the coordinator answers without the second round, so a read can see a transfer at one shard but not the other",
    ;
    sim_only:
}

/// A bank account number.
pub type Account = u32;

/// Names a distributed transaction: the coordinator's incarnation and a
/// counter within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    pub epoch: u64,
    pub n: u64,
}

/// One participant's part of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Work {
    /// Bank setup: these balances, unless the shard is already set up.
    Init(Vec<(Account, i64)>),
    /// Add each delta to its account (a transfer's debit and/or credit).
    Deltas(Vec<(Account, i64)>),
    /// Read every balance on the shard under shared locks.
    Read,
}

impl Work {
    fn is_read(&self) -> bool {
        matches!(self, Work::Read)
    }
}

/// A participant's vote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Vote {
    Yes,
    /// No, and why (the client sees it as the failure).
    No(String),
    /// Yes to a read, with the shard's balances.
    Read(BTreeMap<Account, i64>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator → participant: phase 1.
    Prepare {
        txn: Txn,
    },
    /// Participant → coordinator.
    Vote {
        tid: TxnId,
        vote: Vote,
    },
    /// Coordinator → participant: the decision (for a read: release and
    /// confirm the locks were held).
    Commit {
        tid: TxnId,
    },
    Abort {
        tid: TxnId,
    },
    /// Participant → coordinator: the commit is applied (`held`: for a
    /// read, the shared locks were held until the decision).
    Ack {
        tid: TxnId,
        held: bool,
    },
    /// Participant → coordinator: "what became of `tid`?" (in doubt).
    Inquire {
        tid: TxnId,
    },
}

/// A transaction as one participant sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    pub tid: TxnId,
    /// The client request it serves (retries of it are answered once).
    pub rid: RequestId,
    /// Every participant of the transaction.
    pub participants: Vec<NodeId>,
    /// This participant's part.
    pub work: Work,
}

/// One durable record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    /// Coordinator: a new incarnation (transaction ids restart above it).
    Epoch(u64),
    /// Coordinator: the commit decision, with the client's answer (so a
    /// retried request gets it again).
    Commit {
        tid: TxnId,
        rid: RequestId,
        participants: Vec<NodeId>,
        output: Value,
    },
    /// Coordinator: every participant acknowledged the commit.
    End { tid: TxnId },
    /// Participant: voted yes (forced before the vote is sent).
    Prepared(Txn),
    /// Participant: applied the commit.
    Committed(Txn),
    /// Participant: applied an abort of a prepared transaction.
    Aborted { tid: TxnId },
}

/// A participant's prepared (in-doubt until decided) transaction.
#[derive(Clone, Debug)]
struct Prepared {
    txn: Txn,
    /// This node's tick when it voted yes (or recovered the vote).
    since: u64,
    /// The wall clock then (the last tick's `now_ms`), only for the node's
    /// log of blocked periods ([`Core::notes`]); 0 until a tick after a
    /// restart.
    since_ms: u64,
    last_inquiry: u64,
}

/// How one blocked period ended, for the blocking-window measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub tid: TxnId,
    /// Ticks from the yes vote (or the restart that recovered it) to the
    /// decision.
    pub ticks: u64,
    pub committed: bool,
    /// The vote was recovered from the log after a restart.
    pub recovered: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Collecting,
    /// A read whose votes are all in: waiting for the lock confirmations.
    Validating,
}

/// A transaction the coordinator is running.
#[derive(Clone, Debug)]
struct Active {
    rid: RequestId,
    parts: BTreeMap<NodeId, Work>,
    votes: BTreeMap<NodeId, Vote>,
    held: BTreeSet<NodeId>,
    phase: Phase,
    started: u64,
    last_send: u64,
    /// The client's answer on commit.
    output: Value,
}

/// A commit waiting for acknowledgements.
#[derive(Clone, Debug)]
struct Committing {
    participants: Vec<NodeId>,
    acked: BTreeSet<NodeId>,
    last_send: u64,
}

pub struct TwoPc {
    config: Config,
    bugs: Bugs,
    coordinator: NodeId,
    ticks: u64,
    /// The last tick's wall clock, reported, never decided on.
    now_ms: u64,
    /// Blocked periods for the node's log, drained by [`Core::notes`].
    notes: Vec<Value>,
    out: Ready<Message, Record>,
    /// Messages to this node itself, handled before `step` returns.
    local: VecDeque<Message>,

    // Coordinator.
    epoch: u64,
    next_n: u64,
    active: BTreeMap<TxnId, Active>,
    by_rid: BTreeMap<RequestId, TxnId>,
    committing: BTreeMap<TxnId, Committing>,
    /// Answers of committed requests, for retries.
    done: BTreeMap<RequestId, Value>,
    /// `decide-before-log`: decision records not yet handed to the shell.
    deferred: Vec<Record>,

    // Participant.
    initialized: bool,
    balances: BTreeMap<Account, i64>,
    prepared: BTreeMap<TxnId, Prepared>,
    /// Prepares waiting for locks, in arrival order, with the tick they
    /// came.
    parked: Vec<(Txn, u64)>,
    /// Shared locks of reads: tid → tick taken.
    reading: BTreeMap<TxnId, u64>,
    /// Reads released by a commit (a duplicate commit still confirms).
    released_reads: BTreeSet<TxnId>,
    /// Outcomes known here: true = committed.
    resolved: BTreeMap<TxnId, bool>,
    /// Every transaction this shard committed, in order (from the log).
    committed: Vec<Txn>,
    blocked: Vec<Blocked>,
    recovered: BTreeSet<TxnId>,
}

impl TwoPc {
    pub fn is_coordinator(&self) -> bool {
        self.config.id == self.coordinator
    }

    /// The shard holding `account`.
    pub fn shard_of(peers: &[NodeId], account: Account) -> NodeId {
        peers[account as usize % peers.len()]
    }

    /// This shard's balances.
    pub fn balances(&self) -> &BTreeMap<Account, i64> {
        &self.balances
    }

    /// Every transaction this shard committed, in commit order.
    pub fn committed(&self) -> &[Txn] {
        &self.committed
    }

    /// Transactions this participant voted yes on and has no decision for.
    pub fn in_doubt(&self) -> Vec<TxnId> {
        self.prepared.keys().copied().collect()
    }

    /// How each blocked period of this incarnation ended.
    pub fn blocked(&self) -> &[Blocked] {
        &self.blocked
    }

    fn retransmit_ticks(&self) -> u64 {
        self.config.heartbeat_ticks.max(1)
    }

    fn vote_timeout(&self) -> u64 {
        self.config.election_ticks.max(2)
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        if to == self.config.id {
            self.local.push_back(msg);
        } else {
            self.out.messages.push((to, msg));
        }
    }

    fn handle(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::Prepare { txn } if from == self.coordinator => self.on_prepare(txn),
            Message::Commit { tid } if from == self.coordinator => self.on_decision(tid, true),
            Message::Abort { tid } if from == self.coordinator => self.on_decision(tid, false),
            Message::Vote { tid, vote } if self.is_coordinator() => self.on_vote(from, tid, vote),
            Message::Ack { tid, held } if self.is_coordinator() => self.on_ack(from, tid, held),
            Message::Inquire { tid } if self.is_coordinator() => self.on_inquire(from, tid),
            _ => {}
        }
    }

    fn drain_local(&mut self) {
        let me = self.config.id;
        while let Some(m) = self.local.pop_front() {
            self.handle(me, m);
        }
    }

    // ---- coordinator ----

    fn on_request(&mut self, cmd: Command) {
        if !self.is_coordinator() {
            self.out.replies.push((
                cmd.id,
                Reply::NotLeader {
                    leader: Some(self.coordinator),
                },
            ));
            return;
        }
        if let Some(v) = self.done.get(&cmd.id) {
            self.out.replies.push((cmd.id, Reply::Done(Ok(v.clone()))));
            return;
        }
        if self.by_rid.contains_key(&cmd.id) {
            // A retry of a transaction still running: it answers when done.
            return;
        }
        let peers = self.config.peers.clone();
        let mut parts: BTreeMap<NodeId, Work> = BTreeMap::new();
        let output = match &cmd.op {
            Op::BankInit { balances } => {
                for &p in &peers {
                    parts.insert(p, Work::Init(Vec::new()));
                }
                for (a, b) in balances.iter().enumerate() {
                    let a = a as Account;
                    if let Some(Work::Init(v)) = parts.get_mut(&Self::shard_of(&peers, a)) {
                        v.push((a, *b));
                    }
                }
                json!(balances)
            }
            Op::BankTransfer { from, to, amount } => {
                if from == to || *amount < 0 {
                    let e = format!("transfer: bad accounts {from} -> {to} or amount {amount}");
                    self.out.replies.push((cmd.id, Reply::Done(Err(e))));
                    return;
                }
                for (a, d) in [(*from, -amount), (*to, *amount)] {
                    let w = parts
                        .entry(Self::shard_of(&peers, a))
                        .or_insert(Work::Deltas(Vec::new()));
                    if let Work::Deltas(v) = w {
                        v.push((a, d));
                    }
                }
                json!({"from": from, "to": to, "amount": amount})
            }
            Op::BankRead => {
                for &p in &peers {
                    parts.insert(p, Work::Read);
                }
                Value::Null
            }
            _ => {
                let e = "twopc serves only the bank workload".to_string();
                self.out.replies.push((cmd.id, Reply::Done(Err(e))));
                return;
            }
        };
        self.next_n += 1;
        let tid = TxnId {
            epoch: self.epoch,
            n: self.next_n,
        };
        self.by_rid.insert(cmd.id, tid);
        self.active.insert(
            tid,
            Active {
                rid: cmd.id,
                parts,
                votes: BTreeMap::new(),
                held: BTreeSet::new(),
                phase: Phase::Collecting,
                started: self.ticks,
                last_send: self.ticks,
                output,
            },
        );
        self.send_prepares(tid);
    }

    /// Sends Prepare to every participant that has not voted.
    fn send_prepares(&mut self, tid: TxnId) {
        let Some(a) = self.active.get(&tid) else {
            return;
        };
        let participants: Vec<NodeId> = a.parts.keys().copied().collect();
        let msgs: Vec<(NodeId, Message)> = a
            .parts
            .iter()
            .filter(|(p, _)| !a.votes.contains_key(p))
            .map(|(p, w)| {
                (
                    *p,
                    Message::Prepare {
                        txn: Txn {
                            tid,
                            rid: a.rid,
                            participants: participants.clone(),
                            work: w.clone(),
                        },
                    },
                )
            })
            .collect();
        for (p, m) in msgs {
            self.send(p, m);
        }
    }

    fn on_vote(&mut self, from: NodeId, tid: TxnId, vote: Vote) {
        let Some(a) = self.active.get_mut(&tid) else {
            if self.committing.contains_key(&tid) {
                self.send(from, Message::Commit { tid });
            } else if !matches!(vote, Vote::No(_)) {
                // Presumed abort: a vote for a transaction this
                // incarnation does not know (aborted, or begun before a
                // restart) gets "abort", which releases the voter's locks.
                self.send(from, Message::Abort { tid });
            }
            return;
        };
        if a.phase != Phase::Collecting || !a.parts.contains_key(&from) {
            return;
        }
        if let Vote::No(why) = vote {
            self.abort(tid, format!("aborted: {why}"));
            return;
        }
        a.votes.insert(from, vote);
        if a.votes.len() < a.parts.len() {
            return;
        }
        if a.parts.values().all(Work::is_read) {
            if self.bugs.read_early_release {
                // Every participant already let go of its locks.
                self.finish_read(tid);
                return;
            }
            a.phase = Phase::Validating;
            a.last_send = self.ticks;
            let ps: Vec<NodeId> = a.parts.keys().copied().collect();
            for p in ps {
                self.send(p, Message::Commit { tid });
            }
            return;
        }
        self.commit(tid);
    }

    /// Every vote is yes: the commit point.
    fn commit(&mut self, tid: TxnId) {
        let Some(a) = self.active.remove(&tid) else {
            return;
        };
        self.by_rid.remove(&a.rid);
        let participants: Vec<NodeId> = a.parts.keys().copied().collect();
        let rec = Record::Commit {
            tid,
            rid: a.rid,
            participants: participants.clone(),
            output: a.output.clone(),
        };
        if self.bugs.decide_before_log {
            self.deferred.push(rec);
        } else {
            self.out.records.push(rec);
        }
        self.done.insert(a.rid, a.output.clone());
        if self.bugs.forget_commit_early {
            self.out.records.push(Record::End { tid });
        } else {
            self.committing.insert(
                tid,
                Committing {
                    participants: participants.clone(),
                    acked: BTreeSet::new(),
                    last_send: self.ticks,
                },
            );
        }
        for p in participants {
            self.send(p, Message::Commit { tid });
        }
        self.out.replies.push((a.rid, Reply::Done(Ok(a.output))));
    }

    /// Aborts a transaction that has not committed: not logged, not
    /// acknowledged (presumed abort).
    fn abort(&mut self, tid: TxnId, why: String) {
        let Some(a) = self.active.remove(&tid) else {
            return;
        };
        self.by_rid.remove(&a.rid);
        for p in a.parts.keys().copied().collect::<Vec<_>>() {
            self.send(p, Message::Abort { tid });
        }
        self.out.replies.push((a.rid, Reply::Done(Err(why))));
    }

    /// A read whose locks were all held at once: answer with the balances.
    fn finish_read(&mut self, tid: TxnId) {
        let Some(a) = self.active.remove(&tid) else {
            return;
        };
        self.by_rid.remove(&a.rid);
        let mut all = BTreeMap::new();
        for v in a.votes.values() {
            if let Vote::Read(b) = v {
                all.extend(b.iter().map(|(k, v)| (*k, *v)));
            }
        }
        let balances: Vec<i64> = all.values().copied().collect();
        self.out
            .replies
            .push((a.rid, Reply::Done(Ok(json!(balances)))));
    }

    fn on_ack(&mut self, from: NodeId, tid: TxnId, held: bool) {
        if let Some(a) = self.active.get_mut(&tid) {
            if a.phase != Phase::Validating {
                return;
            }
            if !held {
                // The participant restarted or timed out its locks: the
                // balances may not be one snapshot.
                self.abort(tid, "read: a shard lost its locks".into());
                return;
            }
            a.held.insert(from);
            if a.held.len() == a.parts.len() {
                self.finish_read(tid);
            }
            return;
        }
        let Some(c) = self.committing.get_mut(&tid) else {
            return;
        };
        c.acked.insert(from);
        if c.participants.iter().all(|p| c.acked.contains(p)) {
            self.committing.remove(&tid);
            self.out.records.push(Record::End { tid });
        }
    }

    fn on_inquire(&mut self, from: NodeId, tid: TxnId) {
        if self.committing.contains_key(&tid) {
            self.send(from, Message::Commit { tid });
        } else if !self.active.contains_key(&tid) {
            // Presumed abort.
            self.send(from, Message::Abort { tid });
        }
        // Still collecting votes: the decision will come.
    }

    fn coordinator_tick(&mut self) {
        if !self.deferred.is_empty() {
            let d = std::mem::take(&mut self.deferred);
            self.out.records.extend(d);
        }
        let now = self.ticks;
        let r = self.retransmit_ticks();
        let timeout = self.vote_timeout();
        let tids: Vec<TxnId> = self.active.keys().copied().collect();
        for tid in tids {
            let Some(a) = self.active.get(&tid) else {
                continue;
            };
            if now.saturating_sub(a.started) >= timeout {
                self.abort(
                    tid,
                    "aborted: timed out waiting for the participants".into(),
                );
                continue;
            }
            if now.saturating_sub(a.last_send) < r {
                continue;
            }
            let phase = a.phase.clone();
            let unconfirmed: Vec<NodeId> = a
                .parts
                .keys()
                .copied()
                .filter(|p| !a.held.contains(p))
                .collect();
            if let Some(a) = self.active.get_mut(&tid) {
                a.last_send = now;
            }
            match phase {
                Phase::Collecting => self.send_prepares(tid),
                Phase::Validating => {
                    for p in unconfirmed {
                        self.send(p, Message::Commit { tid });
                    }
                }
            }
        }
        let mut resend = Vec::new();
        for (tid, c) in self.committing.iter_mut() {
            if now.saturating_sub(c.last_send) >= r {
                c.last_send = now;
                for p in &c.participants {
                    if !c.acked.contains(p) {
                        resend.push((*p, *tid));
                    }
                }
            }
        }
        for (p, tid) in resend {
            self.send(p, Message::Commit { tid });
        }
    }

    // ---- participant ----

    fn vote(&mut self, tid: TxnId, vote: Vote) {
        let c = self.coordinator;
        self.send(c, Message::Vote { tid, vote });
    }

    fn on_prepare(&mut self, txn: Txn) {
        let tid = txn.tid;
        match self.resolved.get(&tid) {
            Some(true) => return,
            Some(false) => {
                self.vote(tid, Vote::No("already aborted".into()));
                return;
            }
            None => {}
        }
        if self.prepared.contains_key(&tid) {
            self.vote(tid, Vote::Yes);
            return;
        }
        if self.reading.contains_key(&tid) {
            self.vote(tid, Vote::Read(self.balances.clone()));
            return;
        }
        if self.parked.iter().any(|(t, _)| t.tid == tid) {
            return;
        }
        if self.conflicts(&txn.work, self.parked.len()) {
            let now = self.ticks;
            self.parked.push((txn, now));
            return;
        }
        self.prepare(txn);
    }

    /// Locks are free: check the work, then vote.
    fn prepare(&mut self, txn: Txn) {
        let tid = txn.tid;
        if let Err(why) = self.check(&txn.work) {
            // Voting no is a unilateral abort, allowed before a yes vote.
            self.resolved.insert(tid, false);
            self.vote(tid, Vote::No(why));
            return;
        }
        if txn.work.is_read() {
            if !self.bugs.read_early_release {
                self.reading.insert(tid, self.ticks);
            }
            self.vote(tid, Vote::Read(self.balances.clone()));
            return;
        }
        if !self.bugs.vote_before_log {
            self.out.records.push(Record::Prepared(txn.clone()));
        }
        self.prepared.insert(
            tid,
            Prepared {
                txn,
                since: self.ticks,
                since_ms: self.now_ms,
                last_inquiry: self.ticks,
            },
        );
        self.vote(tid, Vote::Yes);
    }

    /// Whether `work` must wait for a lock: one held (prepared writes,
    /// reads) or one asked for by the first `ahead` parked transactions
    /// (first come, first served, so a read is not starved by transfers).
    fn conflicts(&self, work: &Work, ahead: usize) -> bool {
        let overlap = |a: &Work, b: &Work| match (a, b) {
            (Work::Read, Work::Read) => false,
            (Work::Deltas(x), Work::Deltas(y)) => {
                x.iter().any(|(a, _)| y.iter().any(|(b, _)| a == b))
            }
            _ => true,
        };
        self.prepared.values().any(|p| overlap(work, &p.txn.work))
            || (!self.reading.is_empty() && overlap(work, &Work::Read))
            || self.parked[..ahead]
                .iter()
                .any(|(t, _)| overlap(work, &t.work))
    }

    /// Prepares parked transactions whose locks are now free, in arrival
    /// order; those that waited too long vote no (which also breaks
    /// deadlocks between shards).
    fn retry_parked(&mut self) {
        let limit = self.vote_timeout() / 2;
        let mut i = 0;
        while i < self.parked.len() {
            let (txn, since) = &self.parked[i];
            if !self.conflicts(&txn.work, i) {
                let (txn, _) = self.parked.remove(i);
                self.prepare(txn);
            } else if self.ticks.saturating_sub(*since) >= limit {
                let (txn, _) = self.parked.remove(i);
                self.resolved.insert(txn.tid, false);
                self.vote(txn.tid, Vote::No("timed out waiting for a lock".into()));
            } else {
                i += 1;
            }
        }
    }

    /// The work's own conditions, once its locks are held.
    fn check(&self, work: &Work) -> Result<(), String> {
        if let Work::Deltas(ds) = work {
            for (a, d) in ds {
                let Some(b) = self.balances.get(a) else {
                    return Err(format!("transfer: no account {a}"));
                };
                match b.checked_add(*d) {
                    Some(v) if v >= 0 => {}
                    Some(_) => return Err(format!("transfer: account {a} has too little")),
                    None => return Err(format!("transfer: account {a} would overflow")),
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, work: &Work) {
        match work {
            Work::Init(bs) => {
                if !self.initialized {
                    self.initialized = true;
                    self.balances.extend(bs.iter().copied());
                }
            }
            Work::Deltas(ds) => {
                for (a, d) in ds {
                    // Checked when prepared, under the lock.
                    let b = self.balances.entry(*a).or_default();
                    *b = b.saturating_add(*d);
                }
            }
            Work::Read => {}
        }
    }

    fn on_decision(&mut self, tid: TxnId, commit: bool) {
        let c = self.coordinator;
        self.parked.retain(|(t, _)| t.tid != tid);
        if let Some(p) = self.prepared.remove(&tid) {
            let b = Blocked {
                tid,
                ticks: self.ticks - p.since,
                committed: commit,
                recovered: self.recovered.contains(&tid),
            };
            self.note_blocked(&b, p.since_ms);
            self.blocked.push(b);
            self.resolved.insert(tid, commit);
            if commit {
                self.apply(&p.txn.work);
                self.out.records.push(Record::Committed(p.txn.clone()));
                self.committed.push(p.txn);
                self.send(c, Message::Ack { tid, held: true });
            } else {
                self.out.records.push(Record::Aborted { tid });
            }
            return;
        }
        if self.reading.remove(&tid).is_some() {
            if commit {
                self.released_reads.insert(tid);
                self.send(c, Message::Ack { tid, held: true });
            }
            return;
        }
        if commit {
            // Already applied (a duplicate), or — a read whose locks are
            // gone, or a forgotten vote — not held.
            let held = self.released_reads.contains(&tid) || self.resolved.get(&tid) == Some(&true);
            self.send(c, Message::Ack { tid, held });
        }
    }

    /// One prepared period for the node's log: deployed runs measure the
    /// blocking window from these (the shell adds the end, `at_ms`).
    fn note_blocked(&mut self, b: &Blocked, since_ms: u64) {
        self.notes.push(json!({
            "blocked": format!("{}.{}", b.tid.epoch, b.tid.n),
            "since_ms": since_ms,
            "ticks": b.ticks,
            "committed": b.committed,
            "recovered": b.recovered,
        }));
    }

    fn participant_tick(&mut self) {
        let now = self.ticks;
        let r = self.retransmit_ticks();
        let timeout = self.vote_timeout();
        let mut ask = Vec::new();
        let mut give_up = Vec::new();
        for (tid, p) in self.prepared.iter_mut() {
            // The buggy participant's patience: a fifth of the vote timeout
            // (100 ms in the deployed server).
            if self.bugs.unilateral_abort && now - p.since >= (timeout / 5).max(2) {
                give_up.push(*tid);
            } else if now - p.since >= r && now - p.last_inquiry >= r {
                p.last_inquiry = now;
                ask.push(*tid);
            }
        }
        for tid in ask {
            let c = self.coordinator;
            self.send(c, Message::Inquire { tid });
        }
        for tid in give_up {
            if let Some(p) = self.prepared.remove(&tid) {
                let b = Blocked {
                    tid,
                    ticks: now - p.since,
                    committed: false,
                    recovered: self.recovered.contains(&tid),
                };
                self.note_blocked(&b, p.since_ms);
            }
            self.resolved.insert(tid, false);
            self.out.records.push(Record::Aborted { tid });
        }
        // Read locks are volatile and may be dropped: the read then fails
        // its confirmation round.
        self.reading
            .retain(|_, since| now.saturating_sub(*since) < 2 * timeout);
    }
}

impl Core for TwoPc {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Self {
        let coordinator = config.peers.iter().copied().min().unwrap_or(config.id);
        let mut n = TwoPc {
            coordinator,
            ticks: 0,
            now_ms: 0,
            notes: Vec::new(),
            out: Ready::default(),
            local: VecDeque::new(),
            epoch: 0,
            next_n: 0,
            active: BTreeMap::new(),
            by_rid: BTreeMap::new(),
            committing: BTreeMap::new(),
            done: BTreeMap::new(),
            deferred: Vec::new(),
            initialized: false,
            balances: BTreeMap::new(),
            prepared: BTreeMap::new(),
            parked: Vec::new(),
            reading: BTreeMap::new(),
            released_reads: BTreeSet::new(),
            resolved: BTreeMap::new(),
            committed: Vec::new(),
            blocked: Vec::new(),
            recovered: BTreeSet::new(),
            bugs: Bugs::from_config(&config),
            config,
        };
        for r in records {
            match r {
                Record::Epoch(e) => n.epoch = n.epoch.max(e),
                Record::Commit {
                    tid,
                    rid,
                    participants,
                    output,
                } => {
                    n.done.insert(rid, output);
                    n.committing.insert(
                        tid,
                        Committing {
                            participants,
                            acked: BTreeSet::new(),
                            last_send: 0,
                        },
                    );
                }
                Record::End { tid } => {
                    n.committing.remove(&tid);
                }
                Record::Prepared(txn) => {
                    n.prepared.insert(
                        txn.tid,
                        Prepared {
                            txn,
                            since: 0,
                            since_ms: 0,
                            last_inquiry: 0,
                        },
                    );
                }
                Record::Committed(txn) => {
                    n.prepared.remove(&txn.tid);
                    n.resolved.insert(txn.tid, true);
                    n.apply(&txn.work);
                    n.committed.push(txn);
                }
                Record::Aborted { tid } => {
                    n.prepared.remove(&tid);
                    n.resolved.insert(tid, false);
                }
            }
        }
        if n.is_coordinator() {
            n.epoch += 1;
            n.out.records.push(Record::Epoch(n.epoch));
            // Re-send every logged commit that was not acknowledged.
            let resend: Vec<(NodeId, TxnId)> = n
                .committing
                .iter()
                .flat_map(|(t, c)| c.participants.iter().map(|p| (*p, *t)))
                .collect();
            for (p, tid) in resend {
                n.send(p, Message::Commit { tid });
            }
        }
        // In-doubt transactions: ask at once.
        n.recovered = n.prepared.keys().copied().collect();
        for tid in n.recovered.clone() {
            let c = n.coordinator;
            n.send(c, Message::Inquire { tid });
        }
        n.drain_local();
        n
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { now_ms } => {
                self.ticks += 1;
                if self.now_ms == 0 {
                    // Votes recovered from the log start now.
                    for p in self.prepared.values_mut() {
                        p.since_ms = now_ms;
                    }
                }
                self.now_ms = now_ms;
                if self.is_coordinator() {
                    self.coordinator_tick();
                }
                self.participant_tick();
            }
            Input::Message { from, msg } => self.handle(from, msg),
            Input::Request(cmd) => self.on_request(cmd),
        }
        self.drain_local();
        if !self.parked.is_empty() {
            self.retry_parked();
            self.drain_local();
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn notes(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.notes)
    }

    fn status(&self) -> Status {
        Status {
            role: if self.is_coordinator() {
                "leader"
            } else {
                "participant"
            },
            term: if self.is_coordinator() { self.epoch } else { 0 },
            leader: Some(self.coordinator),
            commit: self.committed.len() as u64,
        }
    }
}
