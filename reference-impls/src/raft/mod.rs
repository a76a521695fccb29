//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus
//! Algorithm", USENIX ATC 2014; Ongaro's PhD thesis "Consensus: Bridging
//! Theory and Practice", 2014) as a pure [`Core`].
//!
//! - Leader election with randomized timeouts (§5.2); a vote only for a
//!   candidate whose log is at least as up-to-date (§5.4.1).
//! - Log replication (§5.3): AppendEntries with the consistency check
//!   (`prev_log_index`/`prev_log_term`) gives the log-matching property; a
//!   leader appends each request at once and sends every unsent entry (up to
//!   [`MAX_BATCH`]) per follower, pipelined (optimistic `next_index`).
//! - Commitment only of current-term entries by counting replicas (§5.4.2);
//!   a new leader appends a no-op so it learns its commit index quickly
//!   (§8, thesis §6.4).
//! - Persistence before sending: `currentTerm`/`votedFor` ([`Record::HardState`])
//!   and entries ([`Record::Entries`], whose first index truncates any
//!   conflicting suffix) go into the same [`Ready`] as the messages that
//!   depend on them; the shell writes records first.
//! - Log compaction (§7, thesis ch. 5): every `snapshot-entries` applied
//!   entries the log is rewritten as a [`Snapshot`] of the [`Store`] plus the
//!   remaining entries; a follower behind the snapshot gets InstallSnapshot.
//! - Linearizable reads via ReadIndex (thesis §6.4): the read waits for a
//!   current-term commit, records the commit index, confirms leadership with
//!   a heartbeat round acknowledged by a majority, and is served once applied
//!   up to that index. Option `lease-read` (thesis §6.4.1) serves reads
//!   locally during a lease that starts when a heartbeat round was *sent*
//!   and lasts half the minimum election timeout (the clock-drift bound);
//!   followers then refuse votes for a minimum election timeout after
//!   hearing from a leader (§4.2.3), which is what makes the lease sound.
//! - Single-server membership change (thesis §4.1): `AddServer`/`RemoveServer`
//!   entries take effect as soon as they are appended; one at a time, and
//!   only after the leader has committed an entry in its term.
//! - CheckQuorum (thesis §6.2): a leader that hasn't heard from a majority
//!   for an election timeout steps down (off with the two read bugs).
//!
//! - PreVote (thesis §9.6, option `pre-vote`): a node polls for votes before
//!   incrementing its term.
//!
//! Options (`Config::options`): `lease-read`, `pre-vote`, `snapshot-entries=N`
//! (default [`DEFAULT_SNAPSHOT_ENTRIES`]).

mod log;
#[cfg(test)]
mod tests;

pub use log::RaftLog;

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, Op, RequestId, Store};
use crate::quorum::{self, Tally};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

// Simulator-only bugs (after `sim_only:`) are honoured by the core but are
// not `--bug`s: no lab run exposes them, so their simulator tests are the
// check (docs/reference-impls.md, "Replaced bugs").

// Raft's seeded bugs (`--bug NAME`).
crate::seeded_bugs! {
    "raft";
    vote_without_log_check = "vote-without-log-check":
        "grants votes without the up-to-date-log check (§5.4.1), so a leader can lack committed entries and overwrite them",
    commit_by_next_index = "commit-by-next-index":
        "the leader counts a follower as holding every entry it has sent (nextIndex − 1, advanced optimistically by pipelining) instead of what it acknowledged (matchIndex), so it commits and answers writes no follower has",
    ack_before_commit = "ack-before-commit":
        "the leader acknowledges a blind write once it is in its own durable log, before a majority has it, so a leader change loses acknowledged writes",
    lease_read_no_bound = "lease-read-no-bound":
        "lease reads (implies lease-read) time the lease from when acks arrive, for a whole maximum election timeout with no clock-drift bound, keep serving from it after stepping down, and run without CheckQuorum (etcd/raft's default)",
    read_without_quorum = "read-without-quorum":
        "a leader serves reads from its own state without confirming leadership (no ReadIndex round) and without CheckQuorum (etcd/raft's default), so a partitioned leader reads stale data",
    ;
    sim_only:
    commit_old_term = "commit-old-term":
        "commits earlier-term entries by counting replicas (Figure 8, §5.4.2) and so skips the election no-op; see `bug_commit_old_term_breaks_state_machine_safety` (tests/raft_sim.rs) and `commit_old_term_bug_commits_by_counting`",
    vote_twice = "vote-twice":
        "grants its vote to every candidate of its current term (the votedFor check is missing); enabled through the election service's `vote-twice` (elect --option algo=raft)",
}

/// Most entries in one AppendEntries.
pub const MAX_BATCH: usize = 512;
/// Applied entries between snapshots unless `snapshot-entries=N` is given.
pub const DEFAULT_SNAPSHOT_ENTRIES: u64 = 10_000;

pub type Term = u64;
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EntryData {
    /// Appended by a new leader (§8) so it can commit an entry of its term.
    Noop,
    Command(Command),
    /// Single-server membership change (thesis §4.1).
    AddServer(NodeId),
    RemoveServer(NodeId),
}

impl EntryData {
    pub fn is_conf(&self) -> bool {
        matches!(self, EntryData::AddServer(_) | EntryData::RemoveServer(_))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub data: EntryData,
}

/// The compacted prefix of the log: the state machine after
/// `last_included_index`, and the configuration at that point (§7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_included_index: Index,
    pub last_included_term: Term,
    pub voters: BTreeSet<NodeId>,
    pub store: Store,
}

/// Durable records (Figure 2, "persistent state on all servers").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    HardState {
        term: Term,
        voted_for: Option<NodeId>,
    },
    /// Entries in index order. Recovery deletes any existing entry at the
    /// first one's index and after (a conflict truncation, §5.3 step 3),
    /// skipping entries already covered by the snapshot.
    Entries(Vec<Entry>),
    /// Replaces the log up to `last_included_index` (only in rewrites).
    Snapshot(Box<Snapshot>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    RequestVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    RequestVoteResponse {
        term: Term,
        vote_granted: bool,
    },
    /// Thesis §9.6: "would you vote for me in `term`?" — changes no state.
    PreVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    /// `term` is the one asked about when granted, else the voter's.
    PreVoteResponse {
        term: Term,
        vote_granted: bool,
    },
    AppendEntries {
        term: Term,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        /// The leader's latest heartbeat round, echoed back (ReadIndex).
        read_seq: u64,
    },
    AppendEntriesResponse {
        term: Term,
        success: bool,
        /// On success: the follower's log matches the leader's up to here.
        match_index: Index,
        /// On failure: the `prev_log_index` that didn't match, and the
        /// highest index the follower might still match (a hint).
        rejected: Index,
        hint: Index,
        read_seq: u64,
    },
    /// An empty AppendEntries without the log check; `leader_commit` is
    /// capped at what the follower is known to match.
    Heartbeat {
        term: Term,
        leader_commit: Index,
        read_seq: u64,
    },
    HeartbeatResponse {
        term: Term,
        read_seq: u64,
    },
    /// Answered with an `AppendEntriesResponse` matching the snapshot.
    InstallSnapshot {
        term: Term,
        snapshot: Box<Snapshot>,
        read_seq: u64,
    },
}

impl Message {
    fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::InstallSnapshot { term, .. } => *term,
        }
    }
}

/// A membership change (thesis §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChange {
    AddServer(NodeId),
    RemoveServer(NodeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Thesis §9.6: polling for votes before incrementing the term.
    PreCandidate,
    Candidate,
    Leader,
}

/// The leader's view of one follower (Figure 2 `nextIndex[]`,
/// `matchIndex[]`).
#[derive(Clone, Debug)]
struct Progress {
    next_index: Index,
    match_index: Index,
    /// Highest heartbeat round it acknowledged in this term.
    acked_seq: u64,
    /// Heard from since the last CheckQuorum.
    recent_active: bool,
    /// `match_index` at the previous heartbeat: no progress since then
    /// while behind means a lost message, so entries are resent.
    match_at_heartbeat: Index,
}

#[derive(Clone, Debug)]
struct PendingRead {
    id: RequestId,
    op: Op,
    /// Heartbeat round that must be acknowledged by a majority.
    seq: Option<u64>,
    read_index: Index,
}

pub struct Raft {
    config: Config,
    bugs: Bugs,
    id: NodeId,
    rng: StdRng,
    lease_read: bool,
    pre_vote: bool,
    snapshot_entries: u64,

    // Persistent state (Figure 2).
    term: Term,
    voted_for: Option<NodeId>,
    log: RaftLog,

    // Volatile state.
    role: Role,
    leader: Option<NodeId>,
    commit_index: Index,
    last_applied: Index,
    store: Store,
    voters: BTreeSet<NodeId>,
    election_elapsed: u64,
    randomized_election_timeout: u64,
    heartbeat_elapsed: u64,
    check_quorum_elapsed: u64,
    now_ms: u64,
    ticks: u64,
    /// Length of a tick on this node's clock, learned from two ticks.
    tick_ms: Option<u64>,

    // Candidate.
    votes: Tally,

    // Leader.
    progress: BTreeMap<NodeId, Progress>,
    pending_writes: BTreeMap<Index, RequestId>,
    reads: Vec<PendingRead>,
    read_seq: u64,
    /// Heartbeat rounds not yet acknowledged by a majority: (seq, sent at).
    rounds: VecDeque<(u64, u64)>,
    lease_until_ms: u64,

    out: Ready<Message, Record>,
    rewrite: bool,
}

impl Raft {
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    fn quorum(&self) -> usize {
        quorum::majority(self.voters.len())
    }

    /// A fresh election among the current voters with this node's own vote.
    fn start_tally(&mut self) {
        self.votes = Tally::new(self.voters.len(), self.quorum());
        self.votes.grant(self.id);
    }

    /// Counts `from`'s grant (only voters' count; §5.2) and says whether
    /// the election is won.
    fn count_vote(&mut self, from: NodeId) -> bool {
        if self.voters.contains(&from) {
            self.votes.grant(from);
        }
        self.votes.won()
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let e = self.config.election_ticks.max(1);
        self.randomized_election_timeout = e + self.rng.random_range(0..e);
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.out.messages.push((to, msg));
    }

    fn reply(&mut self, id: RequestId, reply: Reply) {
        self.out.replies.push((id, reply));
    }

    fn persist_hard_state(&mut self) {
        self.out.records.push(Record::HardState {
            term: self.term,
            voted_for: self.voted_for,
        });
    }

    fn peers(&self) -> Vec<NodeId> {
        self.voters
            .iter()
            .copied()
            .filter(|&p| p != self.id)
            .collect()
    }

    /// A current-term entry is committed, so the commit index is the
    /// leader's own (thesis §6.4 step 1).
    fn committed_in_term(&self) -> bool {
        self.log.term(self.commit_index) == Some(self.term)
    }

    // ---- role changes ----------------------------------------------------

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        }
        if self.role == Role::Leader {
            self.abandon_requests();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.votes = Tally::default();
        if !self.bugs.lease_read_no_bound {
            self.lease_until_ms = 0;
        }
        self.reset_election_timer();
    }

    /// Leadership lost: writes already in the log may still commit
    /// (`Unknown`); reads had no effect.
    fn abandon_requests(&mut self) {
        for (_, id) in std::mem::take(&mut self.pending_writes) {
            self.reply(
                id,
                Reply::Unknown("leadership lost after the write entered the log".into()),
            );
        }
        for r in std::mem::take(&mut self.reads) {
            self.reply(r.id, Reply::NotLeader { leader: None });
        }
        self.rounds.clear();
    }

    /// Thesis §9.6: asks for pre-votes for `term + 1` without changing the
    /// term, so a node that was partitioned away can't disrupt a leader.
    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timer();
        self.start_tally();
        if self.votes.won() {
            self.become_candidate();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for p in self.peers() {
            self.send(
                p,
                Message::PreVote {
                    term: self.term + 1,
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    fn become_candidate(&mut self) {
        self.role = Role::Candidate;
        self.term += 1;
        self.voted_for = Some(self.id);
        self.leader = None;
        self.persist_hard_state();
        self.reset_election_timer();
        self.start_tally();
        if self.votes.won() {
            self.become_leader();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for p in self.peers() {
            self.send(
                p,
                Message::RequestVote {
                    term: self.term,
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.heartbeat_elapsed = 0;
        self.check_quorum_elapsed = 0;
        self.lease_until_ms = 0;
        self.rounds.clear();
        let next_index = self.log.last_index() + 1;
        self.progress = self
            .peers()
            .into_iter()
            .map(|p| (p, Progress::new(next_index)))
            .collect();
        if !self.bugs.commit_old_term {
            self.append(EntryData::Noop);
        }
        self.broadcast_heartbeat();
        self.maybe_commit();
    }

    // ---- inputs ------------------------------------------------------------

    fn tick(&mut self, now_ms: u64) {
        if self.ticks > 0 && now_ms > self.now_ms {
            self.tick_ms = Some(now_ms - self.now_ms);
        }
        self.ticks += 1;
        self.now_ms = now_ms;
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_election_timeout
                    && self.voters.contains(&self.id)
                {
                    if self.pre_vote {
                        self.become_pre_candidate();
                    } else {
                        self.become_candidate();
                    }
                }
            }
        }
    }

    fn tick_leader(&mut self) {
        self.check_quorum_elapsed += 1;
        // The read bugs trust local state or a lease, as etcd/raft does with
        // CheckQuorum off (its default): a partitioned leader keeps leading.
        let check_quorum = !self.bugs.read_without_quorum && !self.bugs.lease_read_no_bound;
        if check_quorum && self.check_quorum_elapsed >= self.config.election_ticks.max(1) {
            self.check_quorum_elapsed = 0;
            let active = self
                .voters
                .iter()
                .filter(|&&v| {
                    v == self.id || self.progress.get(&v).is_some_and(|p| p.recent_active)
                })
                .count();
            if active < self.quorum() {
                // CheckQuorum (thesis §6.2): probably partitioned away.
                self.become_follower(self.term, None);
                return;
            }
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
        }
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks.max(1) {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
            let last = self.log.last_index();
            let stalled: Vec<NodeId> = self
                .progress
                .iter_mut()
                .filter_map(|(&id, p)| {
                    let stalled = p.match_index < last && p.match_index == p.match_at_heartbeat;
                    p.match_at_heartbeat = p.match_index;
                    if stalled {
                        // A message was lost: resend from the last match.
                        p.next_index = p.match_index + 1;
                    }
                    stalled.then_some(id)
                })
                .collect();
            for p in stalled {
                self.send_append(p);
            }
        }
    }

    fn propose(&mut self, cmd: Command) {
        if self.bugs.lease_read_no_bound
            && cmd.op.is_read_only()
            && self.now_ms < self.lease_until_ms
        {
            // BUG lease-read-no-bound: the lease is only a timestamp, still
            // trusted after this node stepped down.
            self.serve_read(cmd.id, &cmd.op);
            return;
        }
        if self.role != Role::Leader {
            self.reply(
                cmd.id,
                Reply::NotLeader {
                    leader: self.leader,
                },
            );
            return;
        }
        if cmd.op.is_read_only() {
            self.read(cmd);
            return;
        }
        let index = self.append(EntryData::Command(cmd.clone()));
        if let (true, Op::Write { value, .. }) = (self.bugs.ack_before_commit, &cmd.op) {
            // BUG ack-before-commit: durable here (the reply goes out after
            // this batch's fsync), but not yet on a majority.
            self.reply(cmd.id, Reply::Done(Ok(serde_json::json!(value))));
        } else {
            self.pending_writes.insert(index, cmd.id);
        }
        self.maybe_commit();
    }

    fn read(&mut self, cmd: Command) {
        if self.bugs.read_without_quorum {
            // BUG read-without-quorum: believes it is still the leader.
            self.serve_read(cmd.id, &cmd.op);
            return;
        }
        if self.lease_read && self.committed_in_term() && self.now_ms < self.lease_until_ms {
            self.serve_read(cmd.id, &cmd.op);
            return;
        }
        self.reads.push(PendingRead {
            id: cmd.id,
            op: cmd.op,
            seq: None,
            read_index: 0,
        });
    }

    fn serve_read(&mut self, id: RequestId, op: &Op) {
        let out = self
            .store
            .query(op)
            .unwrap_or_else(|| Err("not a read-only op".into()));
        self.reply(id, Reply::Done(out));
    }

    /// Proposes a membership change (thesis §4.1); returns the entry's
    /// index. Refused unless this node leads, has committed an entry of its
    /// term, and no other change is uncommitted.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<Index, String> {
        if self.role != Role::Leader {
            return Err(format!("not the leader (leader: {:?})", self.leader));
        }
        if !self.committed_in_term() {
            return Err("no entry of this term committed yet".into());
        }
        if self.log.last_conf_index() > self.commit_index {
            return Err("a membership change is still uncommitted".into());
        }
        let data = match cc {
            ConfChange::AddServer(id) => EntryData::AddServer(id),
            ConfChange::RemoveServer(id) => EntryData::RemoveServer(id),
        };
        let index = self.append(data);
        self.maybe_commit();
        Ok(index)
    }

    /// Leader: appends an entry of this term; it takes effect on the
    /// configuration at once if it is one.
    fn append(&mut self, data: EntryData) -> Index {
        let e = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            data,
        };
        let index = e.index;
        if e.data.is_conf() {
            log::apply_conf(&mut self.voters, &e.data);
            self.sync_progress();
        }
        self.out.records.push(Record::Entries(vec![e.clone()]));
        self.log.append(e);
        index
    }

    /// Adds progress for new voters and drops removed ones.
    fn sync_progress(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let next = self.log.last_index() + 1;
        for p in self.peers() {
            self.progress
                .entry(p)
                .or_insert_with(|| Progress::new(next));
        }
        let voters = self.voters.clone();
        self.progress.retain(|p, _| voters.contains(p));
    }

    // ---- messages ----------------------------------------------------------

    fn step_message(&mut self, from: NodeId, msg: Message) {
        match msg {
            // Pre-votes carry a term nobody is in yet: they change no state.
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => {
                self.handle_pre_vote(from, term, last_log_index, last_log_term);
                return;
            }
            Message::PreVoteResponse { term, vote_granted } => {
                if vote_granted && self.role == Role::PreCandidate && term == self.term + 1 {
                    if self.count_vote(from) {
                        self.become_candidate();
                    }
                } else if !vote_granted && term > self.term {
                    self.become_follower(term, None);
                }
                return;
            }
            _ => {}
        }
        let term = msg.term();
        if term > self.term {
            if let Message::RequestVote { .. } = msg
                && self.in_lease()
            {
                // §4.2.3: a leader was heard within the minimum election
                // timeout; ignore the vote without updating the term. Lease
                // reads rely on it.
                return;
            }
            let leader = match msg {
                Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. } => Some(from),
                _ => None,
            };
            self.become_follower(term, leader);
        } else if term < self.term {
            // Stale: tell the sender our term so an old leader steps down.
            match msg {
                Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. } => {
                    let resp = Message::AppendEntriesResponse {
                        term: self.term,
                        success: false,
                        match_index: 0,
                        rejected: 0,
                        hint: 0,
                        read_seq: 0,
                    };
                    self.send(from, resp);
                }
                Message::RequestVote { .. } => {
                    let resp = Message::RequestVoteResponse {
                        term: self.term,
                        vote_granted: false,
                    };
                    self.send(from, resp);
                }
                _ => {}
            }
            return;
        }
        if let Message::RequestVote {
            last_log_index,
            last_log_term,
            ..
        } = msg
        {
            self.handle_request_vote(from, last_log_index, last_log_term);
            return;
        }
        match self.role {
            Role::Leader => self.step_leader(from, msg),
            Role::Candidate => self.step_candidate(from, msg),
            Role::PreCandidate => match msg {
                Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. } => {
                    self.become_follower(self.term, Some(from));
                    self.step_follower(from, msg);
                }
                // Votes of this term were for an earlier candidacy.
                _ => {}
            },
            Role::Follower => self.step_follower(from, msg),
        }
    }

    fn up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        // §5.4.1: at least as up-to-date = later last term, or the same
        // last term and at least as long.
        self.bugs.vote_without_log_check
            || (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    /// Thesis §9.6: granted if the candidate's log is up-to-date and this
    /// node hasn't heard from a leader within an election timeout.
    fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let leader_alive = self.role == Role::Leader
            || (self.leader.is_some() && self.election_elapsed < self.config.election_ticks);
        let vote_granted =
            term > self.term && !leader_alive && self.up_to_date(last_log_index, last_log_term);
        let term = if vote_granted { term } else { self.term };
        self.send(from, Message::PreVoteResponse { term, vote_granted });
    }

    fn handle_request_vote(
        &mut self,
        candidate: NodeId,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let up_to_date = self.up_to_date(last_log_index, last_log_term);
        // `vote-twice` is the election service's seeded bug (crate::elect).
        let can_vote = self.voted_for.is_none_or(|v| v == candidate) || self.bugs.vote_twice;
        let vote_granted = can_vote && up_to_date;
        if vote_granted {
            if self.voted_for != Some(candidate) {
                self.voted_for = Some(candidate);
                self.persist_hard_state();
            }
            self.reset_election_timer();
        }
        let resp = Message::RequestVoteResponse {
            term: self.term,
            vote_granted,
        };
        self.send(candidate, resp);
    }

    fn step_candidate(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::RequestVoteResponse {
                vote_granted: true, ..
            } => {
                // Not a match guard: a guard that fails would fall through
                // to the arms below with the vote already counted.
                let won = self.count_vote(from);
                if won {
                    self.become_leader();
                }
            }
            // A leader of this term exists (§5.2): follow it.
            Message::AppendEntries { .. }
            | Message::Heartbeat { .. }
            | Message::InstallSnapshot { .. } => {
                self.become_follower(self.term, Some(from));
                self.step_follower(from, msg);
            }
            _ => {}
        }
    }

    fn step_follower(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_seq,
                ..
            } => {
                self.heard_from_leader(from);
                self.handle_append_entries(
                    from,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    read_seq,
                );
            }
            Message::Heartbeat {
                leader_commit,
                read_seq,
                ..
            } => {
                self.heard_from_leader(from);
                self.advance_commit(leader_commit.min(self.log.last_index()));
                let resp = Message::HeartbeatResponse {
                    term: self.term,
                    read_seq,
                };
                self.send(from, resp);
            }
            Message::InstallSnapshot {
                snapshot, read_seq, ..
            } => {
                self.heard_from_leader(from);
                self.handle_install_snapshot(from, snapshot, read_seq);
            }
            _ => {}
        }
    }

    /// A follower that heard from a leader within the minimum election
    /// timeout — or restarted less than one ago, since it may have acked a
    /// lease round just before it crashed — doesn't vote (lease mode).
    fn in_lease(&self) -> bool {
        let e = self.config.election_ticks;
        self.lease_read
            && self.role == Role::Follower
            && (self.leader.is_some() || self.ticks < e)
            && self.election_elapsed < e
    }

    fn heard_from_leader(&mut self, from: NodeId) {
        self.leader = Some(from);
        self.election_elapsed = 0;
    }

    /// §5.3, Figure 2 "AppendEntries RPC, receiver implementation".
    fn handle_append_entries(
        &mut self,
        from: NodeId,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        read_seq: u64,
    ) {
        let contiguous = entries
            .iter()
            .zip(prev_log_index + 1..)
            .all(|(e, i)| e.index == i);
        if !contiguous {
            // Not from a correct leader; answering could only mislead it.
            return;
        }
        let snap = self.log.snapshot_index();
        // Below our snapshot everything is committed, hence matches.
        let ok = prev_log_index < snap || self.log.term(prev_log_index) == Some(prev_log_term);
        if !ok {
            let last = self.log.last_index();
            let hint = if prev_log_index > last {
                last
            } else {
                // Skip back over the whole conflicting term.
                let ct = self.log.term(prev_log_index);
                let mut i = prev_log_index.saturating_sub(1);
                while i > self.commit_index.max(snap) && self.log.term(i) == ct {
                    i -= 1;
                }
                i
            };
            let resp = Message::AppendEntriesResponse {
                term: self.term,
                success: false,
                match_index: 0,
                rejected: prev_log_index,
                hint,
                read_seq,
            };
            self.send(from, resp);
            return;
        }
        let last_new = prev_log_index + entries.len() as u64;
        let mut new_from = None;
        let mut truncated = false;
        for (i, e) in entries.iter().enumerate() {
            if e.index <= snap {
                continue;
            }
            match self.log.term(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    // §5.3 step 3: a conflict; delete it and all that follow.
                    self.log.truncate_from(e.index);
                    truncated = true;
                    new_from = Some(i);
                    break;
                }
                None => {
                    new_from = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = new_from {
            let new = entries[i..].to_vec();
            let conf = truncated || new.iter().any(|e| e.data.is_conf());
            for e in &new {
                self.log.append(e.clone());
            }
            self.out.records.push(Record::Entries(new));
            if conf {
                self.voters = self.log.voters();
            }
        }
        self.advance_commit(leader_commit.min(last_new));
        let resp = Message::AppendEntriesResponse {
            term: self.term,
            success: true,
            match_index: last_new,
            rejected: 0,
            hint: 0,
            read_seq,
        };
        self.send(from, resp);
    }

    /// §7: InstallSnapshot, receiver side.
    fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Box<Snapshot>, read_seq: u64) {
        let index = snapshot.last_included_index;
        if index > self.commit_index {
            if self.log.term(index) == Some(snapshot.last_included_term) {
                // Keep the entries that follow the snapshot (§7 step 6).
                let keep = self
                    .log
                    .entries
                    .split_off((index - self.log.snapshot_index()) as usize);
                self.log.entries = keep;
            } else {
                self.log.entries.clear();
            }
            self.store = snapshot.store.clone();
            self.log.snapshot = *snapshot;
            self.commit_index = index;
            self.last_applied = index;
            self.voters = self.log.voters();
            self.rewrite = true;
        }
        let resp = Message::AppendEntriesResponse {
            term: self.term,
            success: true,
            match_index: index,
            rejected: 0,
            hint: 0,
            read_seq,
        };
        self.send(from, resp);
    }

    fn step_leader(&mut self, from: NodeId, msg: Message) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        match msg {
            Message::AppendEntriesResponse {
                success,
                match_index,
                rejected,
                hint,
                read_seq,
                ..
            } => {
                pr.recent_active = true;
                pr.acked_seq = pr.acked_seq.max(read_seq);
                if success {
                    if match_index > pr.match_index {
                        pr.match_index = match_index;
                    }
                    pr.next_index = pr.next_index.max(match_index + 1);
                    self.maybe_commit();
                } else if rejected > pr.match_index {
                    pr.next_index = (pr.match_index + 1).max((hint + 1).min(rejected));
                    self.send_append(from);
                }
                self.advance_reads();
            }
            Message::HeartbeatResponse { read_seq, .. } => {
                pr.recent_active = true;
                pr.acked_seq = pr.acked_seq.max(read_seq);
                self.advance_reads();
            }
            _ => {}
        }
    }

    // ---- leader replication ------------------------------------------------

    /// Sends the next batch of unsent entries (or the snapshot) to `to`,
    /// advancing `next_index` optimistically (pipelining). Sends an empty
    /// AppendEntries as a probe when there is nothing new.
    fn send_append(&mut self, to: NodeId) {
        let Some(pr) = self.progress.get(&to) else {
            return;
        };
        let next = pr.next_index;
        if next <= self.log.snapshot_index() {
            let msg = Message::InstallSnapshot {
                term: self.term,
                snapshot: Box::new(self.log.snapshot.clone()),
                read_seq: self.read_seq,
            };
            let next = self.log.snapshot_index() + 1;
            if let Some(pr) = self.progress.get_mut(&to) {
                pr.next_index = next;
            }
            self.send(to, msg);
            return;
        }
        let last = self.log.last_index();
        let prev_log_index = next - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            return;
        };
        let entries = if next <= last {
            let to_index = last.min(next + MAX_BATCH as u64 - 1);
            self.log.slice(next, to_index).to_vec()
        } else {
            Vec::new()
        };
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.next_index = next + entries.len() as u64;
        }
        let counted = !entries.is_empty() && self.bugs.commit_by_next_index;
        let msg = Message::AppendEntries {
            term: self.term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_seq: self.read_seq,
        };
        self.send(to, msg);
        if counted {
            self.maybe_commit();
        }
    }

    /// Starts a heartbeat round: a new `read_seq`, remembered with the time
    /// it was sent (lease reads start there).
    fn broadcast_heartbeat(&mut self) {
        self.read_seq += 1;
        self.rounds.push_back((self.read_seq, self.now_ms));
        let peers: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(&p, pr)| (p, pr.match_index))
            .collect();
        for (p, m) in peers {
            let msg = Message::Heartbeat {
                term: self.term,
                leader_commit: self.commit_index.min(m),
                read_seq: self.read_seq,
            };
            self.send(p, msg);
        }
        self.advance_reads();
    }

    /// §5.3/§5.4.2: the highest index stored on a majority commits if it is
    /// from the current term.
    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let matched: Vec<Index> = self
            .voters
            .iter()
            .map(|v| {
                if *v == self.id {
                    self.log.last_index()
                } else {
                    self.progress.get(v).map_or(0, |p| {
                        // BUG commit-by-next-index: what was sent, not what
                        // was acknowledged.
                        if self.bugs.commit_by_next_index {
                            p.match_index.max(p.next_index.saturating_sub(1))
                        } else {
                            p.match_index
                        }
                    })
                }
            })
            .collect();
        let Some(n) = quorum::quorum_index(matched, self.quorum()) else {
            return;
        };
        if n <= self.commit_index {
            return;
        }
        // BUG commit-old-term (sim only, SIM_ONLY_BUGS): counts replicas of
        // earlier-term entries too.
        if self.bugs.commit_old_term || self.log.term(n) == Some(self.term) {
            self.advance_commit(n);
        }
    }

    /// The highest heartbeat round a majority acknowledged in this term.
    fn confirmed_seq(&self) -> u64 {
        let acked: Vec<u64> = self
            .voters
            .iter()
            .map(|v| {
                if *v == self.id {
                    self.read_seq
                } else {
                    self.progress.get(v).map_or(0, |p| p.acked_seq)
                }
            })
            .collect();
        quorum::quorum_index(acked, self.quorum()).unwrap_or(0)
    }

    /// Extends the lease and serves reads whose round a majority
    /// acknowledged and whose read index is applied.
    fn advance_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let confirmed = self.confirmed_seq();
        if self.lease_read
            && let Some(tick_ms) = self.tick_ms
        {
            if self.bugs.lease_read_no_bound {
                // BUG lease-read-no-bound: the lease runs from when the acks
                // arrive, for the longest election timeout, and trusts the
                // clocks to agree.
                if self.rounds.front().is_some_and(|&(s, _)| s <= confirmed) {
                    self.lease_until_ms = self.now_ms + 2 * self.config.election_ticks * tick_ms;
                }
            } else if let Some(&(_, sent)) =
                self.rounds.iter().rev().find(|&&(s, _)| s <= confirmed)
            {
                // Followers that acked this round refuse votes for at least
                // an election timeout after receiving it, which is after
                // `sent`; half of that allows for clocks drifting apart by
                // up to 2x (thesis §6.4.1).
                let lease = self.config.election_ticks * tick_ms / 2;
                self.lease_until_ms = self.lease_until_ms.max(sent + lease);
            }
        }
        while self.rounds.front().is_some_and(|&(s, _)| s <= confirmed) {
            self.rounds.pop_front();
        }
        let applied = self.last_applied;
        let mut served = Vec::new();
        self.reads.retain(|r| {
            let ready = r.seq.is_some_and(|s| s <= confirmed) && r.read_index <= applied;
            if ready {
                served.push((r.id, r.op.clone()));
            }
            !ready
        });
        for (id, op) in served {
            self.serve_read(id, &op);
        }
    }

    /// Gives reads that arrived since the last round a read index and a new
    /// heartbeat round (thesis §6.4 steps 1–2), once a current-term entry
    /// is committed.
    fn start_read_round(&mut self) {
        if self.role != Role::Leader || !self.committed_in_term() {
            return;
        }
        if !self.reads.iter().any(|r| r.seq.is_none()) {
            return;
        }
        let seq = self.read_seq + 1;
        let commit = self.commit_index;
        for r in self.reads.iter_mut().filter(|r| r.seq.is_none()) {
            r.seq = Some(seq);
            r.read_index = commit;
        }
        self.broadcast_heartbeat();
    }

    // ---- commit and apply --------------------------------------------------

    fn advance_commit(&mut self, commit: Index) {
        if commit > self.commit_index {
            self.commit_index = commit;
            self.apply();
        }
    }

    fn apply(&mut self) {
        let upto = self.commit_index.min(self.log.last_index());
        while self.last_applied < upto {
            let i = self.last_applied + 1;
            let Some(e) = self.log.entry(i) else {
                break;
            };
            let pending = self.pending_writes.remove(&i);
            match &e.data {
                EntryData::Command(cmd) => {
                    let out = self.store.apply(cmd);
                    self.out.applied.push((i, cmd.clone()));
                    if let Some(id) = pending {
                        let reply = if id == cmd.id {
                            Reply::Done(out)
                        } else {
                            Reply::Unknown("entry overwritten".into())
                        };
                        self.out.replies.push((id, reply));
                    }
                }
                EntryData::Noop | EntryData::AddServer(_) | EntryData::RemoveServer(_) => {
                    if let Some(id) = pending {
                        self.out
                            .replies
                            .push((id, Reply::Unknown("entry overwritten".into())));
                    }
                }
            }
            self.last_applied = i;
        }
        if self.role == Role::Leader
            && !self.voters.contains(&self.id)
            && self.log.last_conf_index() <= self.commit_index
        {
            // Thesis §4.2.2: a removed leader steps down once its removal
            // is committed.
            self.become_follower(self.term, None);
        }
    }

    fn maybe_compact(&mut self) {
        if self.last_applied - self.log.snapshot_index() < self.snapshot_entries {
            return;
        }
        let index = self.last_applied;
        let Some(term) = self.log.term(index) else {
            return;
        };
        let voters = self.log.voters_at(index);
        let keep = self
            .log
            .entries
            .split_off((index - self.log.snapshot_index()) as usize);
        self.log.entries = keep;
        self.log.snapshot = Snapshot {
            last_included_index: index,
            last_included_term: term,
            voters,
            store: self.store.clone(),
        };
        self.rewrite = true;
    }

    /// Everything durable, for a log rewrite.
    fn durable_image(&self) -> Vec<Record> {
        let mut v = vec![
            Record::HardState {
                term: self.term,
                voted_for: self.voted_for,
            },
            Record::Snapshot(Box::new(self.log.snapshot.clone())),
        ];
        if !self.log.entries.is_empty() {
            v.push(Record::Entries(self.log.entries.clone()));
        }
        v
    }
}

impl Progress {
    fn new(next_index: Index) -> Progress {
        Progress {
            next_index,
            match_index: 0,
            acked_seq: 0,
            recent_active: true,
            match_at_heartbeat: 0,
        }
    }
}

impl Raft {
    /// [`Core::recover`] with the seeded bugs given, typed: a core that
    /// embeds Raft (the lock service, the election service) decides which
    /// of Raft's bugs its own bugs are.
    pub fn recover_with(config: Config, records: Vec<Record>, bugs: Bugs) -> Raft {
        let voters: BTreeSet<NodeId> = config.peers.iter().copied().collect();
        let mut log = RaftLog::new(Snapshot {
            last_included_index: 0,
            last_included_term: 0,
            voters,
            store: Store::new(),
        });
        let (mut term, mut voted_for) = (0, None);
        for r in records {
            match r {
                Record::HardState {
                    term: t,
                    voted_for: v,
                } => {
                    term = t;
                    voted_for = v;
                }
                Record::Snapshot(s) => {
                    log.entries.clear();
                    log.snapshot = *s;
                }
                Record::Entries(es) => {
                    let mut truncated = false;
                    for e in es {
                        if e.index <= log.snapshot_index() {
                            continue;
                        }
                        if !truncated {
                            log.truncate_from(e.index);
                            truncated = true;
                        }
                        if e.index == log.last_index() + 1 {
                            log.append(e);
                        }
                    }
                }
            }
        }
        let lease_read = config.option("lease-read").is_some() || bugs.lease_read_no_bound;
        let snapshot_entries = config
            .option("snapshot-entries")
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_SNAPSHOT_ENTRIES);
        let snap = log.snapshot_index();
        let mut raft = Raft {
            id: config.id,
            rng: StdRng::seed_from_u64(config.seed),
            lease_read,
            pre_vote: config.option("pre-vote").is_some(),
            snapshot_entries,
            term,
            voted_for,
            voters: log.voters(),
            store: log.snapshot.store.clone(),
            log,
            role: Role::Follower,
            leader: None,
            commit_index: snap,
            last_applied: snap,
            election_elapsed: 0,
            randomized_election_timeout: 0,
            heartbeat_elapsed: 0,
            check_quorum_elapsed: 0,
            now_ms: 0,
            ticks: 0,
            tick_ms: None,
            votes: Tally::default(),
            progress: BTreeMap::new(),
            pending_writes: BTreeMap::new(),
            reads: Vec::new(),
            read_seq: 0,
            rounds: VecDeque::new(),
            lease_until_ms: 0,
            out: Ready::default(),
            rewrite: false,
            config,
            bugs,
        };
        raft.reset_election_timer();
        raft
    }
}

impl Core for Raft {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Raft {
        let bugs = Bugs::from_config(&config);
        Raft::recover_with(config, records, bugs)
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { now_ms } => self.tick(now_ms),
            Input::Message { from, msg } => self.step_message(from, msg),
            Input::Request(cmd) => self.propose(cmd),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        if self.role == Role::Leader {
            self.start_read_round();
            let peers: Vec<NodeId> = self
                .progress
                .iter()
                .filter(|(_, p)| p.next_index <= self.log.last_index())
                .map(|(&id, _)| id)
                .collect();
            for p in peers {
                self.send_append(p);
            }
            self.advance_reads();
        }
        self.maybe_compact();
        if std::mem::take(&mut self.rewrite) {
            // The rewrite holds all durable state, including whatever the
            // records of this batch said.
            self.out.records.clear();
            self.out.rewrite = Some(self.durable_image());
        }
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        Status {
            role: match self.role {
                Role::Follower => "follower",
                Role::PreCandidate => "pre-candidate",
                Role::Candidate => "candidate",
                Role::Leader => "leader",
            },
            term: self.term,
            leader: self.leader,
            commit: self.commit_index,
        }
    }
}
