//! The interface every protocol core implements, and the contract its shell
//! keeps (etcd raft's `Ready` loop).
//!
//! A core is a deterministic state machine: given the same [`Config`] and the
//! same sequence of [`Input`]s it produces the same [`Ready`] batches. It
//! never touches a socket, a file or a clock.
//!
//! # The Ready contract
//!
//! After feeding one or more inputs with [`Core::step`], the shell calls
//! [`Core::ready`] and must, **in this order**:
//!
//! 1. if `rewrite` is set, atomically replace the node's durable log with
//!    those records (write a new file, fsync, rename) — log compaction;
//! 2. append `records` to the durable log and fsync it;
//! 3. only then send `messages` and `replies`.
//!
//! Step 2 before step 3 is what makes "a crash after an ack must not lose
//! the write" hold: a vote, a promise or an accepted entry is on disk before
//! anybody hears of it. A shell may batch several `step`s before one
//! `ready` (group commit); the order above still holds for the batch.
//!
//! On restart the shell reads every record back and calls
//! [`Core::recover`]; volatile state (roles, leaders, commit points a
//! protocol doesn't persist) starts from scratch.

use crate::kv::{Command, Output, RequestId};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// A member of the cluster, `1..=n`.
pub type NodeId = u64;

/// What a core is told when it starts.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// Every member, this node included, sorted.
    pub peers: Vec<NodeId>,
    /// Seeds the core's own randomness (election timeouts).
    pub seed: u64,
    /// Seeded bugs to enable, by name (see [`crate::bugs`]).
    pub bugs: BTreeSet<String>,
    /// Ticks without hearing from a leader before a follower campaigns
    /// (randomized by the core in `[election_ticks, 2 * election_ticks)`).
    pub election_ticks: u64,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: u64,
    /// Protocol options by name, with an optional value (`lease-read`,
    /// `snapshot-entries=64`); a protocol ignores names it doesn't know.
    pub options: BTreeMap<String, String>,
}

impl Config {
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Config {
        Config {
            id,
            peers,
            seed: id,
            bugs: BTreeSet::new(),
            election_ticks: 10,
            heartbeat_ticks: 2,
            options: BTreeMap::new(),
        }
    }

    /// The option `name`: `Some("")` when set without a value.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// True when the seeded bug `name` is enabled.
    pub fn bug(&self, name: &str) -> bool {
        self.bugs.contains(name)
    }

    /// A majority of the members.
    pub fn quorum(&self) -> usize {
        self.peers.len() / 2 + 1
    }
}

/// One input to a core.
#[derive(Clone, Debug)]
pub enum Input<M> {
    /// Logical time advanced by one tick. `now_ms` is this node's wall
    /// clock; only lease reads may use it, and only to compare it with
    /// earlier readings of the same clock (that is their weakness, which the
    /// clock nemesis exploits).
    Tick { now_ms: u64 },
    /// A message from a peer.
    Message { from: NodeId, msg: M },
    /// A client request that arrived at this node. Read-only ops
    /// ([`crate::kv::Op::is_read_only`]) may be served without a log entry
    /// (ReadIndex, leases) if the protocol can do so safely.
    Request(Command),
}

/// How a client request ended, from the node's point of view.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Applied (or, for reads, evaluated) with this output.
    Done(Output),
    /// This node can't serve it; `leader` is its best guess. The request
    /// certainly had no effect through this node.
    NotLeader { leader: Option<NodeId> },
    /// The request may or may not take effect (e.g. leadership was lost
    /// after it entered the log): the client must report `info`.
    Unknown(String),
}

/// A batch of work for the shell; see the module docs for the order.
#[derive(Clone, Debug)]
pub struct Ready<M, R> {
    pub rewrite: Option<Vec<R>>,
    pub records: Vec<R>,
    pub messages: Vec<(NodeId, M)>,
    pub replies: Vec<(RequestId, Reply)>,
    /// Commands this node applied to its store since the last batch, with
    /// their position in the replicated sequence (Raft index, Paxos slot,
    /// Zab zxid as `epoch << 32 | counter`). Used by tests to check state
    /// machine safety (one command per position) and by logs.
    pub applied: Vec<(u64, Command)>,
}

impl<M, R> Default for Ready<M, R> {
    fn default() -> Self {
        Ready {
            rewrite: None,
            records: Vec::new(),
            messages: Vec::new(),
            replies: Vec::new(),
            applied: Vec::new(),
        }
    }
}

impl<M, R> Ready<M, R> {
    pub fn is_empty(&self) -> bool {
        self.rewrite.is_none()
            && self.records.is_empty()
            && self.messages.is_empty()
            && self.replies.is_empty()
            && self.applied.is_empty()
    }
}

/// A node's role and view, for tests and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `leader`, `follower`, `candidate`, `looking`, … in the paper's words.
    pub role: &'static str,
    /// Raft term, Paxos ballot round, Zab epoch.
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Highest position known committed/chosen.
    pub commit: u64,
}

impl Status {
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }
}

/// A protocol core. See the module docs for the contract.
pub trait Core: Sized {
    type Message: Clone + Debug + Serialize + DeserializeOwned + Send + 'static;
    type Record: Clone + Debug + Serialize + DeserializeOwned + Send + 'static;

    /// Builds a node from its durable records (none on first start).
    fn recover(config: Config, records: Vec<Self::Record>) -> Self;
    fn step(&mut self, input: Input<Self::Message>);
    /// Drains the work produced since the last call.
    fn ready(&mut self) -> Ready<Self::Message, Self::Record>;
    fn status(&self) -> Status;

    /// Measurements for the node's log, drained after each durable batch:
    /// the shell writes each as `note {json}` with its wall clock added as
    /// `at_ms` (2PC's blocked periods, which `faultline test` reads back
    /// from the fetched logs). Data only: nothing may depend on it.
    fn notes(&mut self) -> Vec<serde_json::Value> {
        Vec::new()
    }

    /// An operator's request (`{"admin":…}` on the client API), for
    /// protocols driven from outside — primary-backup's fence and promote.
    /// Its effects go out with the next `ready()`, and the shell answers
    /// only after that batch is durable.
    fn admin(&mut self, request: &serde_json::Value) -> Result<serde_json::Value, String> {
        let _ = request;
        Err("this protocol takes no admin requests".into())
    }
}
