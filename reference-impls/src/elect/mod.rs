//! A leader election service (docs/election.md): one core, three
//! algorithms, chosen with `--option algo=bully|ring|raft`:
//!
//! - **bully** (Garcia-Molina, "Elections in a distributed computing
//!   system", IEEE ToC 1982): a node that misses its leader sends
//!   `Election` to every higher id; a live higher id `Answer`s and takes
//!   over; a node no higher id answers announces itself (`Coordinator`);
//! - **ring** (Chang & Roberts, "An improved algorithm for decentralized
//!   extrema-finding in circular configurations of processes", CACM 1979):
//!   an `Election` token carrying the highest id seen circulates; the node
//!   whose own id comes back has won and sends its `Coordinator` token
//!   around the ring. Dead or cut-off successors are skipped after a hop
//!   timeout (each hop is acknowledged);
//! - **raft** (Ongaro & Ousterhout 2014, §5.2): [`crate::raft::Raft`]'s
//!   own election (randomized timeouts, one durable vote per term); the
//!   term is the epoch.
//!
//! The textbook bully and ring algorithms assume a synchronous network
//! without partitions: cut the network and each side elects its own
//! coordinator. To keep the promise clients check — **at most one leader
//! per epoch** — bully and ring run their announcement as a quorum round
//! ([`quorum`]): a `Coordinator(epoch, id)` is a request for a promise,
//! which a node gives (after persisting it) only for an epoch above the one
//! it promised, or again to the same leader; a candidate leads only once a
//! majority has promised, and a leader steps down when it has not heard a
//! majority's heartbeat acknowledgements for a lease (`election_ticks`).
//! Epochs are never reused: a refused candidate retries above the highest
//! epoch it heard of. The seeded bugs remove exactly those safeguards.
//!
//! Clients ask any node `leader?` ([`crate::kv::Op::Leader`]) and get its
//! view `{"epoch": e, "leader": id|null, "am_leader": bool}`, sent only
//! after everything the view depends on is durable. A follower names a
//! leader only once it heard that leader's heartbeat (sent only by an
//! established leader), never on a mere `Coordinator`.

pub mod quorum;
#[cfg(test)]
mod tests;

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Op, RequestId};
use crate::raft::{self, Raft};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One line about the protocol (`faultline-node --list`).
pub const ABOUT: &str = "leader election: bully, ring (Chang-Roberts) or Raft's randomized timeouts (--option algo=bully|ring|raft), answering leader? (election workload only)";

// Simulator-only bugs (after `sim_only:`) are honoured by the core but are
// not `--bug`s: no lab run exposes them, so their simulator tests are the
// check (docs/reference-impls.md, "Replaced bugs").

// The election service's seeded bugs (`--bug NAME`); the description
// starts with the algorithms it applies to.
crate::seeded_bugs! {
    "elect";
    no_quorum = "no-quorum":
        "[bully, ring] the textbook announcement: a candidate leads as soon as it sends Coordinator, without a majority's promises, so each side of a partition elects its own leader in the same epoch",
    volatile_epoch = "volatile-epoch":
        "[bully, ring] the promised epoch is kept in memory only: a restarted node reports (and promises) epochs it had already passed",
    accept_higher_id = "accept-higher-id":
        "[bully] 'the highest id wins': a node also promises a higher id at the epoch it already promised to a lower one, so two leaders share an epoch",
    volatile_term = "volatile-term":
        "[raft] currentTerm and votedFor are kept in memory only: a restarted node goes back to term 0, votes again in terms it voted in, and reports an older term",
    vote_twice = "vote-twice":
        "[raft] a node grants its vote to every candidate of its current term (the votedFor check is missing), so split votes elect two leaders",
    ;
    sim_only:
    ring_count_hops = "ring-count-hops":
        "[ring] the winner counts its Coordinator token's hops, not the promises in it; no lab run exposed it (docs/election.md: 0 of 5); see `ring_count_hops_is_caught`",
    volatile_vote = "volatile-vote":
        "[raft] votedFor is not persisted, so a restarted node may vote twice in a term; no lab run exposed it (docs/election.md: 0 of 4); see `raft_bugs_vote_twice_in_a_term`",
}

/// Which election algorithm a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Bully,
    Ring,
    Raft,
}

impl Algo {
    pub const NAMES: [&str; 3] = ["bully", "ring", "raft"];

    pub fn parse(s: &str) -> Result<Algo, String> {
        match s {
            "bully" => Ok(Algo::Bully),
            "ring" => Ok(Algo::Ring),
            "raft" => Ok(Algo::Raft),
            other => Err(format!(
                "algo={other}: unknown election algorithm (known: bully, ring, raft)"
            )),
        }
    }

    /// The `algo` option of `config` (default bully).
    pub fn of(config: &Config) -> Result<Algo, String> {
        Algo::parse(config.option("algo").unwrap_or("bully"))
    }

    pub fn name(self) -> &'static str {
        Algo::NAMES[self as usize]
    }
}

/// The algorithms the seeded bug `name` applies to (from its description).
pub fn bug_algos(name: &str) -> Vec<&'static str> {
    BUGS.iter()
        .find(|b| b.name == name)
        .and_then(|b| b.description.strip_prefix('['))
        .and_then(|d| d.split_once(']'))
        .map(|(a, _)| {
            Algo::NAMES
                .into_iter()
                .filter(|n| a.split(", ").any(|x| x == *n))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks that every bug applies to `algo`.
pub fn validate_bugs(algo: Algo, bugs: &[String]) -> Result<(), String> {
    for b in bugs {
        if !BUGS.iter().any(|x| x.name == b) {
            let known: Vec<&str> = BUGS.iter().map(|x| x.name).collect();
            let sim = if SIM_ONLY_BUGS.iter().any(|x| x.name == b) {
                " (a simulator-only bug: no lab run exposed it)"
            } else {
                ""
            };
            return Err(format!(
                "unknown bug `{b}`{sim} (known: {})",
                known.join(", ")
            ));
        }
        let algos = bug_algos(b);
        if !algos.contains(&algo.name()) {
            return Err(format!(
                "bug `{b}` applies to algo={} only, not algo={}",
                algos.join("|"),
                algo.name()
            ));
        }
    }
    Ok(())
}

/// A peer message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Quorum(quorum::Msg),
    Raft(raft::Message),
}

/// A durable record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// Bully/ring: this node promised `epoch` to `leader` (the last one
    /// wins on recovery).
    Promise {
        epoch: u64,
        leader: NodeId,
    },
    Raft(raft::Record),
}

/// What `leader?` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub epoch: u64,
    pub leader: Option<NodeId>,
    pub am_leader: bool,
}

impl View {
    pub fn json(&self) -> serde_json::Value {
        json!({"epoch": self.epoch, "leader": self.leader, "am_leader": self.am_leader})
    }
}

/// The reply to a request: `leader?` is answered with the view, anything
/// else certainly had no effect.
fn answer(op: &Op, view: View) -> Reply {
    match op {
        Op::Leader => Reply::Done(Ok(view.json())),
        other => Reply::Done(Err(format!(
            "the election service answers leader? only, not {other:?}"
        ))),
    }
}

/// The core: one of the algorithms.
pub enum Elect {
    Quorum(Box<quorum::QuorumElect>),
    Raft(Box<RaftElect>),
}

impl Elect {
    pub fn view(&self) -> View {
        match self {
            Elect::Quorum(q) => q.view(),
            Elect::Raft(r) => r.view(),
        }
    }
}

impl Core for Elect {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Elect {
        // `faultline-node elect` and the target validate the option; a bad
        // one here (a test) falls back to bully.
        match Algo::of(&config).unwrap_or(Algo::Bully) {
            Algo::Raft => Elect::Raft(Box::new(RaftElect::recover(config, records))),
            algo => Elect::Quorum(Box::new(quorum::QuorumElect::recover(
                config, algo, records,
            ))),
        }
    }

    fn step(&mut self, input: Input<Message>) {
        match self {
            Elect::Quorum(q) => q.step(input),
            Elect::Raft(r) => r.step(input),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        match self {
            Elect::Quorum(q) => q.ready(),
            Elect::Raft(r) => r.ready(),
        }
    }

    fn status(&self) -> Status {
        match self {
            Elect::Quorum(q) => q.status(),
            Elect::Raft(r) => r.raft.status(),
        }
    }
}

/// Raft's election as the election service: the term is the epoch.
pub struct RaftElect {
    raft: Raft,
    volatile_vote: bool,
    volatile_term: bool,
    replies: Vec<(RequestId, Reply)>,
}

impl RaftElect {
    fn recover(config: Config, records: Vec<Record>) -> RaftElect {
        let bugs = Bugs::from_config(&config);
        let (volatile_vote, volatile_term) = (bugs.volatile_vote, bugs.volatile_term);
        // Raft's own bugs: the election service's `vote-twice` is Raft's.
        let raft_bugs = raft::Bugs {
            vote_twice: bugs.vote_twice,
            ..raft::Bugs::default()
        };
        let records = records
            .into_iter()
            .filter_map(|r| match r {
                Record::Raft(r) => Some(r),
                Record::Promise { .. } => None,
            })
            .collect();
        RaftElect {
            raft: Raft::recover_with(config, records, raft_bugs),
            volatile_vote,
            volatile_term,
            replies: Vec::new(),
        }
    }

    pub fn view(&self) -> View {
        let s = self.raft.status();
        View {
            epoch: s.term,
            leader: s.leader,
            am_leader: s.is_leader(),
        }
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { now_ms } => self.raft.step(Input::Tick { now_ms }),
            Input::Message {
                from,
                msg: Message::Raft(msg),
            } => self.raft.step(Input::Message { from, msg }),
            Input::Message { .. } => {}
            Input::Request(cmd) => {
                let r = answer(&cmd.op, self.view());
                self.replies.push((cmd.id, r));
            }
        }
    }

    /// What the seeded bugs fail to persist.
    fn persisted(&self, r: raft::Record) -> Option<Record> {
        match r {
            // BUG volatile-term: the hard state stays in memory.
            raft::Record::HardState { .. } if self.volatile_term => None,
            // BUG volatile-vote: the term is written, the vote is not.
            raft::Record::HardState { term, .. } if self.volatile_vote => {
                Some(Record::Raft(raft::Record::HardState {
                    term,
                    voted_for: None,
                }))
            }
            r => Some(Record::Raft(r)),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        let r = self.raft.ready();
        Ready {
            rewrite: r
                .rewrite
                .map(|rw| rw.into_iter().filter_map(|x| self.persisted(x)).collect()),
            records: r
                .records
                .into_iter()
                .filter_map(|x| self.persisted(x))
                .collect(),
            messages: r
                .messages
                .into_iter()
                .map(|(to, m)| (to, Message::Raft(m)))
                .collect(),
            replies: std::mem::take(&mut self.replies),
            applied: Vec::new(),
        }
    }
}
