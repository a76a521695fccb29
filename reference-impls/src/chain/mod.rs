//! `chain`: chain replication (van Renesse & Schneider, "Chain Replication
//! for Supporting High Throughput and Availability", OSDI 2004).
//!
//! The members of the current **configuration** `(epoch, chain)` form a
//! chain. Writes enter at the **head**, which appends them to its log
//! (every entry carries the epoch that created it), fsyncs and sends
//! `Forward` to its successor; each member appends + fsyncs and forwards
//! down. An entry is **committed** once the **tail** has it; the commit
//! point travels back up with `Ack`, and the head replies to the client
//! (the paper has the tail reply; replying at the head once the tail's
//! acknowledgement arrived is the same point in time for the client, and
//! keeps one connection per request). Reads go to the tail, which holds
//! exactly the committed prefix.
//!
//! A `Forward` carries the epoch of the entry before it (Raft's
//! log-matching rule): a member whose log does not match asks for an
//! earlier start, so a predecessor that gets a new successor resends what
//! that successor lacks — the paper's "Sent" set — and a member re-added
//! after a failure drops the suffix it wrote alone.
//!
//! **Reads at the tail under partitions.** The paper assumes fail-stop
//! servers; with a partition the master may replace a tail that still
//! believes it is the tail. So the tail confirms each batch of reads with
//! one `Check` round to every member of its chain: each answers with its
//! log length if it is still in the tail's epoch, and the reads are served
//! once every member answered and the tail's commit reached the longest
//! reported log. No write of a newer configuration can commit without
//! passing a member of this one (the master only removes members or
//! appends one), and that member would not have answered.
//!
//! **Reconfiguration** is the master's ([`plan`]), not the members': the
//! faultline target runs it (`targets/src/chain.rs`) as a failure detector
//! and installs each new configuration with `{"admin":{"install":…}}` on
//! every member of the new chain. It removes members that do not answer or
//! that no other member hears from (new epoch; the successor of a removed
//! head becomes head, the predecessor of a removed tail becomes tail and
//! its log is committed), and re-adds an answering non-member at the tail,
//! which serves no read and commits nothing until it caught up with its
//! predecessor. A node that hears of a newer epoch from a member adopts it
//! (`Stale`), so a removed head stops taking writes.

mod master;
#[cfg(test)]
mod tests;

pub use master::{Plan, install_request, plan};

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, RequestId, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const ABOUT: &str = "chain replication: writes at the head, reads at the tail, \
     reconfiguration by the master (the target's failover) with epochs";

crate::seeded_bugs! {
    "chain";
    ack_at_head = "ack-at-head":
        "the head replies once its own fsync is done, before the tail has the \
                      write (lost when the head fails)",
    read_at_head = "read-at-head":
        "the head answers reads from its log, including updates the tail does \
                      not have yet (dirty reads of writes a failure then loses)",
    no_fencing = "no-fencing":
        "a member accepts Forwards from an older epoch, so a removed head \
                      overwrites the new chain's log after a partition heals",
    tail_before_sync = "tail-before-sync":
        "a member re-added at the tail serves reads and commits its own log \
                      before it caught up with its predecessor",
    ;
    sim_only:
}

/// Entries per Forward message.
const MAX_BATCH: usize = 256;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub epoch: u64,
    pub cmd: Command,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Entries `prev+1 ..` from the predecessor, the epoch of its entry at
    /// `prev`, its log length and commit point.
    Forward {
        epoch: u64,
        chain: Vec<NodeId>,
        prev: u64,
        prev_epoch: u64,
        entries: Vec<Entry>,
        len: u64,
        commit: u64,
        /// The sender holds every committed entry (see [`State::synced`]).
        synced: bool,
    },
    /// To the predecessor: `ok` "my log matches yours up to `len`,
    /// durably" (else "resend from `len + 1`"), and the commit point known
    /// downstream.
    Ack {
        epoch: u64,
        ok: bool,
        len: u64,
        commit: u64,
    },
    /// The tail's read confirmation round.
    Check {
        epoch: u64,
        round: u64,
    },
    Checked {
        epoch: u64,
        round: u64,
        len: u64,
    },
    /// "The configuration is now `(epoch, chain)`."
    Stale {
        epoch: u64,
        chain: Vec<NodeId>,
    },
    /// Liveness only: lets the master learn who hears whom.
    Ping,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    Config { epoch: u64, chain: Vec<NodeId> },
    Entry { index: u64, entry: Entry },
}

/// What a member reports to the master (`{"admin":{"state":true}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub id: NodeId,
    pub epoch: u64,
    pub chain: Vec<NodeId>,
    pub len: u64,
    pub commit: u64,
    /// Holds every committed entry: it has matched its predecessor's whole
    /// log in this epoch, or it is a head that was synced when made head.
    pub synced: bool,
    /// Peers it heard from within `election_ticks`.
    pub hears: Vec<NodeId>,
}

/// The tail's read confirmation in progress.
#[derive(Debug)]
struct Round {
    round: u64,
    waiting: BTreeSet<NodeId>,
    max_len: u64,
    reads: Vec<Command>,
}

pub struct Chain {
    config: Config,
    bugs: Bugs,
    epoch: u64,
    chain: Vec<NodeId>,
    log: Vec<Entry>,
    commit: u64,
    applied: u64,
    store: Store,
    /// Non-head: the length up to which our log matches the predecessor's
    /// (confirmed in this epoch).
    matched: u64,
    synced: bool,
    /// To the successor: next index to send, and what it acknowledged.
    next: u64,
    succ_matched: u64,
    ticks: u64,
    /// Tick we last heard from each peer.
    heard: BTreeMap<NodeId, u64>,
    out: Ready<Message, Record>,
    /// Head: log index → the request waiting for its commit.
    pending: BTreeMap<u64, RequestId>,
    /// Tail: reads waiting for the next Check round.
    queued: Vec<Command>,
    check: Option<Round>,
    /// Tail: confirmed reads, each waiting until commit ≥ its length.
    confirmed: Vec<(u64, Command)>,
    rounds: u64,
}

impl Chain {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn chain(&self) -> &[NodeId] {
        &self.chain
    }

    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    pub fn log_len(&self) -> u64 {
        self.log.len() as u64
    }

    fn me(&self) -> NodeId {
        self.config.id
    }

    fn position(&self) -> Option<usize> {
        self.chain.iter().position(|m| *m == self.me())
    }

    pub fn is_head(&self) -> bool {
        self.chain.first() == Some(&self.me())
    }

    pub fn is_tail(&self) -> bool {
        self.chain.last() == Some(&self.me())
    }

    fn pred(&self) -> Option<NodeId> {
        let p = self.position()?;
        p.checked_sub(1).map(|i| self.chain[i])
    }

    fn succ(&self) -> Option<NodeId> {
        let p = self.position()?;
        self.chain.get(p + 1).copied()
    }

    fn epoch_at(&self, index: u64) -> u64 {
        if index == 0 {
            0
        } else {
            self.log.get(index as usize - 1).map_or(0, |e| e.epoch)
        }
    }

    pub fn state(&self) -> State {
        let window = self.config.election_ticks.max(1);
        State {
            id: self.me(),
            epoch: self.epoch,
            chain: self.chain.clone(),
            len: self.log_len(),
            commit: self.commit,
            synced: self.synced,
            hears: self
                .heard
                .iter()
                .filter(|(_, t)| self.ticks.saturating_sub(**t) < window)
                .map(|(p, _)| *p)
                .collect(),
        }
    }

    fn send(&mut self, to: NodeId, m: Message) {
        self.out.messages.push((to, m));
    }

    /// Moves to a newer configuration. A head that is no longer head gives
    /// up on its pending writes (they may or may not survive); a tail that
    /// is no longer tail sends its reads elsewhere (no effect).
    fn adopt(&mut self, epoch: u64, chain: Vec<NodeId>) {
        let was_head = self.is_head();
        let was_member = self.position().is_some();
        self.epoch = epoch;
        self.chain = chain;
        self.out.records.push(Record::Config {
            epoch,
            chain: self.chain.clone(),
        });
        if was_head && !self.is_head() {
            for (_, id) in std::mem::take(&mut self.pending) {
                self.out
                    .replies
                    .push((id, Reply::Unknown("no longer the head".into())));
            }
        }
        let tail = self.chain.last().copied();
        let reads: Vec<Command> = std::mem::take(&mut self.queued)
            .into_iter()
            .chain(self.check.take().into_iter().flat_map(|r| r.reads))
            .chain(
                std::mem::take(&mut self.confirmed)
                    .into_iter()
                    .map(|(_, c)| c),
            )
            .collect();
        for c in reads {
            self.out
                .replies
                .push((c.id, Reply::NotLeader { leader: tail }));
        }
        // The head's log is the chain's; everyone else re-matches its
        // (possibly new) predecessor in this epoch.
        self.matched = if self.is_head() { self.log_len() } else { 0 };
        self.synced = self.is_head() && was_member && self.synced;
        if self.is_tail() && self.bugs.tail_before_sync {
            self.matched = self.log_len();
            self.synced = true;
        }
        self.next = self.log_len() + 1;
        self.succ_matched = 0;
        if let Some(s) = self.succ() {
            self.send_forward(s, self.next);
        }
        self.advance_tail();
    }

    /// What a member may pass on: the head its whole log, the others only
    /// the prefix confirmed with their predecessor in this epoch (a member
    /// re-added with a suffix of its own must not hand it down).
    fn forwardable(&self) -> u64 {
        if self.is_head() {
            self.log_len()
        } else {
            self.matched.min(self.log_len())
        }
    }

    fn send_forward(&mut self, to: NodeId, from_next: u64) {
        let len = self.forwardable();
        let start = from_next.clamp(1, len + 1);
        let end = (start - 1 + MAX_BATCH as u64).min(len);
        let entries = self.log[(start - 1) as usize..end as usize].to_vec();
        self.next = end + 1;
        let m = Message::Forward {
            epoch: self.epoch,
            chain: self.chain.clone(),
            prev: start - 1,
            prev_epoch: self.epoch_at(start - 1),
            entries,
            len,
            commit: self.commit,
            synced: self.synced,
        };
        self.send(to, m);
    }

    /// The tail's log is committed up to what it matched (all of it for a
    /// chain of one).
    fn advance_tail(&mut self) {
        if self.is_tail() {
            let m = if self.is_head() {
                self.log_len()
            } else {
                self.matched
            };
            self.commit = self.commit.max(m.min(self.log_len()));
        }
        self.apply();
        self.serve_reads();
    }

    fn apply(&mut self) {
        let upto = self.commit.min(self.log_len());
        while self.applied < upto {
            self.applied += 1;
            let cmd = self.log[(self.applied - 1) as usize].cmd.clone();
            let out = self.store.apply(&cmd);
            if let Some(id) = self.pending.remove(&self.applied) {
                self.out.replies.push((id, Reply::Done(out)));
            }
            self.out.applied.push((self.applied, cmd));
        }
    }

    fn serve_reads(&mut self) {
        if self.confirmed.is_empty() || self.applied < self.commit {
            return;
        }
        let commit = self.commit;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.confirmed)
            .into_iter()
            .partition(|(len, _)| *len <= commit);
        self.confirmed = later;
        for (_, c) in now {
            let out = self
                .store
                .query(&c.op)
                .unwrap_or_else(|| Err("not a read".into()));
            self.out.replies.push((c.id, Reply::Done(out)));
        }
    }

    /// Starts a Check round for the queued reads, unless one is running.
    fn start_round(&mut self) {
        if self.check.is_some() || self.queued.is_empty() {
            return;
        }
        self.rounds += 1;
        let others: BTreeSet<NodeId> = self
            .chain
            .iter()
            .copied()
            .filter(|m| *m != self.me())
            .collect();
        let round = Round {
            round: self.rounds,
            waiting: others.clone(),
            max_len: self.commit,
            reads: std::mem::take(&mut self.queued),
        };
        for m in others {
            self.send(
                m,
                Message::Check {
                    epoch: self.epoch,
                    round: round.round,
                },
            );
        }
        self.check = Some(round);
        self.finish_round();
    }

    fn finish_round(&mut self) {
        if !self.check.as_ref().is_some_and(|r| r.waiting.is_empty()) {
            return;
        }
        if let Some(r) = self.check.take() {
            // Bug `tail-before-sync`: the tail trusts its own state.
            let need = if self.bugs.tail_before_sync {
                0
            } else {
                r.max_len
            };
            self.confirmed
                .extend(r.reads.into_iter().map(|c| (need, c)));
        }
        self.serve_reads();
        self.start_round();
    }

    fn stale(&mut self, to: NodeId) {
        self.send(
            to,
            Message::Stale {
                epoch: self.epoch,
                chain: self.chain.clone(),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn on_forward(
        &mut self,
        from: NodeId,
        epoch: u64,
        chain: Vec<NodeId>,
        prev: u64,
        prev_epoch: u64,
        entries: Vec<Entry>,
        len: u64,
        commit: u64,
        pred_synced: bool,
    ) {
        let fenced = epoch < self.epoch;
        if fenced && !self.bugs.no_fencing {
            self.stale(from);
            return;
        }
        if epoch > self.epoch {
            self.adopt(epoch, chain);
        }
        if !fenced && self.pred() != Some(from) {
            return;
        }
        let n = entries.len() as u64;
        if prev > self.log_len() || self.epoch_at(prev) != prev_epoch {
            let hint = self.log_len().min(prev.saturating_sub(1));
            self.send(
                from,
                Message::Ack {
                    epoch,
                    ok: false,
                    len: hint,
                    commit: self.commit,
                },
            );
            return;
        }
        let mut truncated = false;
        for (i, e) in entries.into_iter().enumerate() {
            let index = prev + 1 + i as u64;
            if index <= self.log_len() {
                if self.log[(index - 1) as usize].epoch == e.epoch {
                    continue;
                }
                // A suffix this node wrote in an older configuration.
                self.log.truncate((index - 1) as usize);
                truncated = true;
                if index <= self.applied {
                    // Only with `no-fencing`: the applied state goes too,
                    // as it would on the next restart (rebuilt from the log).
                    self.store = Store::new();
                    self.applied = 0;
                }
            }
            self.log.push(e.clone());
            if !truncated {
                self.out.records.push(Record::Entry { index, entry: e });
            }
        }
        if truncated {
            self.rewrite();
        }
        let matched = prev + n;
        if !fenced {
            self.matched = self.matched.max(matched);
            if pred_synced && self.matched >= len {
                self.synced = true;
            }
        }
        // What our predecessor knows committed is committed here too, as
        // far as our log matches its.
        self.commit = self.commit.max(commit.min(matched));
        self.send(
            from,
            Message::Ack {
                epoch,
                ok: true,
                len: matched,
                commit: self.commit,
            },
        );
        if let Some(s) = self.succ()
            && self.next <= self.forwardable()
        {
            self.send_forward(s, self.next);
        }
        self.advance_tail();
        if self.is_tail() {
            self.relay_commit();
        }
    }

    fn rewrite(&mut self) {
        let mut all = vec![Record::Config {
            epoch: self.epoch,
            chain: self.chain.clone(),
        }];
        all.extend(self.log.iter().enumerate().map(|(i, e)| Record::Entry {
            index: i as u64 + 1,
            entry: e.clone(),
        }));
        self.out.records.clear();
        self.out.rewrite = Some(all);
    }

    /// Tells the predecessor what we matched and what is committed.
    fn relay_commit(&mut self) {
        if let Some(p) = self.pred() {
            let m = Message::Ack {
                epoch: self.epoch,
                ok: true,
                len: self.matched,
                commit: self.commit,
            };
            self.send(p, m);
        }
    }

    fn on_ack(&mut self, from: NodeId, epoch: u64, ok: bool, len: u64, commit: u64) {
        if epoch < self.epoch {
            self.stale(from);
            return;
        }
        if epoch != self.epoch || self.succ() != Some(from) {
            return;
        }
        if ok {
            self.succ_matched = self.succ_matched.max(len);
            if self.next <= len {
                self.next = len + 1;
            }
        } else {
            self.next = len + 1;
        }
        if self.next <= self.forwardable() || !ok {
            self.send_forward(from, self.next);
        }
        let before = self.commit;
        self.commit = self.commit.max(commit.min(self.succ_matched));
        self.apply();
        if self.commit > before {
            self.relay_commit();
        }
    }

    fn on_request(&mut self, cmd: Command) {
        if cmd.op.is_read_only() {
            if self.is_head() && self.bugs.read_at_head {
                let mut s = self.store.clone();
                for e in &self.log[self.applied as usize..] {
                    let _ = s.apply(&e.cmd);
                }
                let out = s.query(&cmd.op).unwrap_or_else(|| Err("not a read".into()));
                self.out.replies.push((cmd.id, Reply::Done(out)));
                return;
            }
            if !self.is_tail() {
                let tail = self.chain.last().copied();
                self.out
                    .replies
                    .push((cmd.id, Reply::NotLeader { leader: tail }));
                return;
            }
            self.queued.push(cmd);
            self.start_round();
            return;
        }
        if self.is_head() && self.cut_off() {
            // A head that has not heard its successor for a while sends
            // writes down the chain: the master will likely make the
            // successor head (no effect here either way).
            let succ = self.succ();
            self.out
                .replies
                .push((cmd.id, Reply::NotLeader { leader: succ }));
            return;
        }
        if !self.is_head() {
            let head = self.chain.first().copied();
            self.out
                .replies
                .push((cmd.id, Reply::NotLeader { leader: head }));
            return;
        }
        let entry = Entry {
            epoch: self.epoch,
            cmd: cmd.clone(),
        };
        self.log.push(entry.clone());
        let index = self.log_len();
        self.matched = index;
        self.out.records.push(Record::Entry { index, entry });
        self.pending.insert(index, cmd.id);
        if let Some(s) = self.succ()
            && self.next == index
        {
            self.send_forward(s, index);
        }
        if self.bugs.ack_at_head {
            // The head's own fsync (this batch) is all it waits for.
            self.commit = index;
        }
        self.advance_tail();
    }

    /// Head: its successor has been silent for `election_ticks`.
    fn cut_off(&self) -> bool {
        self.succ().is_some_and(|s| {
            let last = self.heard.get(&s).copied().unwrap_or(0);
            self.ticks.saturating_sub(last) >= self.config.election_ticks.max(1)
        })
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        if self.is_head() && self.cut_off() && !self.pending.is_empty() {
            // Clients resend (same id) and get sent down the chain.
            for (_, id) in std::mem::take(&mut self.pending) {
                self.out
                    .replies
                    .push((id, Reply::Unknown("the head's successor is silent".into())));
            }
        }
        if !self
            .ticks
            .is_multiple_of(self.config.heartbeat_ticks.max(1))
        {
            return;
        }
        let me = self.me();
        for p in self.config.peers.clone() {
            if p != me {
                self.send(p, Message::Ping);
            }
        }
        if let Some(s) = self.succ() {
            let from = (self.succ_matched + 1).min(self.next);
            self.send_forward(s, from);
        }
        if let Some(r) = &self.check {
            let (round, waiting) = (r.round, r.waiting.clone());
            for m in waiting {
                self.send(
                    m,
                    Message::Check {
                        epoch: self.epoch,
                        round,
                    },
                );
            }
        }
    }
}

impl Core for Chain {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Self {
        let mut epoch = 1;
        let mut chain = config.peers.clone();
        let fresh = records.is_empty();
        let mut log: Vec<Entry> = Vec::with_capacity(records.len());
        for r in records {
            match r {
                Record::Config { epoch: e, chain: c } => {
                    epoch = e;
                    chain = c;
                }
                Record::Entry { index, entry } => {
                    if index >= 1 && index <= log.len() as u64 + 1 {
                        log.truncate(index as usize - 1);
                        log.push(entry);
                    }
                }
            }
        }
        let mut c = Chain {
            bugs: Bugs::from_config(&config),
            config,
            epoch,
            chain,
            log,
            commit: 0,
            applied: 0,
            store: Store::new(),
            matched: 0,
            synced: false,
            next: 1,
            succ_matched: 0,
            ticks: 0,
            heard: BTreeMap::new(),
            out: Ready::default(),
            pending: BTreeMap::new(),
            queued: Vec::new(),
            check: None,
            confirmed: Vec::new(),
            rounds: 0,
        };
        c.next = c.log_len() + 1;
        // A head's durable log is the chain's; everyone else re-matches.
        c.synced = fresh || c.is_head();
        c.matched = if c.is_head() { c.log_len() } else { 0 };
        if c.is_head() && c.is_tail() {
            c.commit = c.log_len();
            c.apply();
        }
        c
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => self.on_tick(),
            Input::Request(cmd) => self.on_request(cmd),
            Input::Message { from, msg } => {
                self.heard.insert(from, self.ticks);
                match msg {
                    Message::Forward {
                        epoch,
                        chain,
                        prev,
                        prev_epoch,
                        entries,
                        len,
                        commit,
                        synced,
                    } => self.on_forward(
                        from, epoch, chain, prev, prev_epoch, entries, len, commit, synced,
                    ),
                    Message::Ack {
                        epoch,
                        ok,
                        len,
                        commit,
                    } => self.on_ack(from, epoch, ok, len, commit),
                    Message::Check { epoch, round } => {
                        if epoch < self.epoch {
                            self.stale(from);
                        } else if epoch == self.epoch {
                            // The head's log holds every acknowledged
                            // write; the others only confirm the epoch.
                            let len = if self.is_head() {
                                self.log_len()
                            } else {
                                self.commit
                            };
                            self.send(from, Message::Checked { epoch, round, len });
                        }
                    }
                    Message::Checked { epoch, round, len } => {
                        if epoch == self.epoch
                            && let Some(r) = self.check.as_mut()
                            && r.round == round
                            && r.waiting.remove(&from)
                        {
                            r.max_len = r.max_len.max(len);
                            self.finish_round();
                        }
                    }
                    Message::Stale { epoch, chain } => {
                        if epoch > self.epoch {
                            self.adopt(epoch, chain);
                        }
                    }
                    Message::Ping => {}
                }
            }
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        let role = match (self.position(), self.is_head(), self.is_tail()) {
            (None, _, _) => "removed",
            (_, true, _) => "leader",
            (_, _, true) => "tail",
            _ => "middle",
        };
        Status {
            role,
            term: self.epoch,
            leader: self.chain.first().copied(),
            commit: self.commit,
        }
    }

    fn admin(&mut self, req: &Value) -> Result<Value, String> {
        if let Some(i) = req.get("install") {
            let epoch = i.get("epoch").and_then(Value::as_u64);
            let chain: Option<Vec<NodeId>> = i
                .get("chain")
                .and_then(|c| serde_json::from_value(c.clone()).ok());
            let (Some(epoch), Some(chain)) = (epoch, chain) else {
                return Err(format!(
                    "install {i}: expected {{\"epoch\":E,\"chain\":[ids]}}"
                ));
            };
            if chain.is_empty() || chain.iter().any(|m| !self.config.peers.contains(m)) {
                return Err(format!("install: chain {chain:?} is not made of members"));
            }
            if epoch < self.epoch || (epoch == self.epoch && chain != self.chain) {
                return Err(format!(
                    "install {epoch} {chain:?}: already in epoch {} with chain {:?}",
                    self.epoch, self.chain
                ));
            }
            if epoch > self.epoch {
                self.adopt(epoch, chain);
            }
            return serde_json::to_value(self.state()).map_err(|e| e.to_string());
        }
        if req.get("state").is_some() {
            return serde_json::to_value(self.state()).map_err(|e| e.to_string());
        }
        Err(format!(
            "unknown admin request {req}: expected {{\"install\":{{\"epoch\":E,\"chain\":[ids]}}}} \
             or {{\"state\":true}}"
        ))
    }
}
