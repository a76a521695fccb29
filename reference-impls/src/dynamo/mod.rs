//! A Dynamo-style key-value store (DeCandia et al., "Dynamo: Amazon's
//! Highly Available Key-value Store", SOSP 2007) as pure state machines.
//!
//! - Keys are placed on the consistent-hash ring of [`crate::ring`]
//!   (virtual nodes); a key's **preference list** is the first `n` distinct
//!   nodes clockwise from its hash (§4.3).
//! - **Any node coordinates** a request: a put goes to the `n` nodes of the
//!   preference list and is acknowledged after `w` of them stored it, a get
//!   answers after `r` replied (§4.5). Unreachable nodes are skipped for
//!   the next healthy ones on the ring — a **sloppy quorum** — which keep
//!   the write with a **hint** naming the intended node and hand it off
//!   when that node is back (§4.6).
//! - Versions carry their causal past (dotted version vectors: Preguiça,
//!   Baquero, Almeida, Fonte, Gonçalves, "Dotted Version Vectors", 2012):
//!   a put's new version supersedes exactly what the client's **context**
//!   (from its last get) covers; concurrent versions are kept as
//!   **siblings** and all returned to the client (§4.4).
//! - A get merges the replies and **read-repairs** stale replicas (§4.5);
//!   replicas of shared key ranges compare **Merkle trees** and exchange
//!   only the differing buckets (anti-entropy, §4.7; [`merkle`]).
//!
//! The node is [`store::DynamoStore`]; seeded bugs are [`BUGS`].

pub mod merkle;
mod store;
#[cfg(test)]
mod tests;

pub use store::{ABOUT, DynamoStore, Message, OPTIONS, Params, Record, preference_list_of};

use crate::crdt::{Dot, VersionVector};
use crate::kv::Key;
use serde::{Deserialize, Serialize};

// The seeded Dynamo bugs, by `--bug` name.
crate::seeded_bugs! {
    "dynamo";
    lww_wall_clock = "lww-wall-clock":
        "replicas resolve versions by last-writer-wins on the coordinator's wall clock instead of keeping concurrent siblings (Riak's last_write_wins): a concurrent acknowledged write vanishes, and under clock skew even a later write loses to an earlier one",
    read_repair_overwrite = "read-repair-overwrite":
        "read repair writes the read's result back to every replica of the key, which replace their versions with it instead of merging: a put acknowledged between the read's replies and the (late) repair is lost",
    no_hinted_handoff = "no-hinted-handoff":
        "a stand-in of a sloppy quorum keeps its hinted writes but never hands them off: a write acknowledged only by stand-ins during a partition never reaches the key's replicas",
    ;
    sim_only:
}

/// One stored version of a key: its own event (`dot`), the causal past
/// its writer had seen (`context`) and the value. Its clock is
/// `context ∪ {dot}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub dot: Dot,
    pub context: VersionVector,
    pub value: i64,
    /// The coordinator's wall clock at the put, in ms (used only by the
    /// `lww-wall-clock` bug).
    pub ts: u64,
}

impl Version {
    /// True when `self`'s writer had seen `other` (so `self` supersedes it).
    pub fn descends(&self, other: &Version) -> bool {
        self.context.covers(other.dot)
    }
}

/// The versions of one key a replica holds: an antichain under causality
/// (no version's context covers another's dot), sorted by dot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Siblings(pub Vec<Version>);

impl Siblings {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values, sorted (what a get returns).
    pub fn values(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.0.iter().map(|x| x.value).collect();
        v.sort_unstable();
        v
    }

    /// The causal context a get hands the client: the join of every
    /// sibling's clock.
    pub fn context(&self) -> VersionVector {
        let mut vv = VersionVector::default();
        for v in &self.0 {
            vv.join(&v.context);
            let e = vv.0.entry(v.dot.node).or_insert(0);
            *e = (*e).max(v.dot.seq);
        }
        vv
    }

    /// Adds `v` (see [`Siblings::merge`]).
    pub fn insert(&mut self, v: Version, lww: bool) {
        self.merge(&Siblings(vec![v]), lww);
    }

    /// The join of two sibling sets, into `self`: the union, minus every
    /// version some other version descends from. Commutative, associative
    /// and idempotent (tests check it), so replicas that exchanged their
    /// versions in any order agree. With `lww` (the `lww-wall-clock`
    /// bug) only the version with the largest `(ts, dot)` survives.
    pub fn merge(&mut self, other: &Siblings, lww: bool) {
        let mut all = std::mem::take(&mut self.0);
        for v in &other.0 {
            if !all.iter().any(|x| x.dot == v.dot) {
                all.push(v.clone());
            }
        }
        let keep: Vec<Version> = all
            .iter()
            .filter(|v| !all.iter().any(|w| w.dot != v.dot && w.descends(v)))
            .cloned()
            .collect();
        self.0 = keep;
        if lww && let Some(best) = self.0.iter().max_by_key(|v| (v.ts, v.dot)).cloned() {
            self.0 = vec![best];
        }
        self.0.sort_by_key(|v| v.dot);
    }
}

/// A key and its siblings, as gossiped by anti-entropy and handoff.
pub type Entry = (Key, Siblings);
