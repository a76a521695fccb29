//! State-based CRDTs (CvRDTs) as pure state machines (Shapiro, Preguiça,
//! Baquero, Zawirski, "Conflict-free Replicated Data Types", SSS 2011, and
//! the companion "A comprehensive study of Convergent and Commutative
//! Replicated Data Types", INRIA RR-7506, 2011).
//!
//! Each type's states form a join semilattice: [`Crdt::merge`] is the join,
//! so it is commutative, associative and idempotent, and replicas that
//! have merged each other's states (in any order, any number of times)
//! hold equal states. Updates only go up the lattice. Tests check all of
//! this over random reachable states (`tests.rs`).
//!
//! - [`GCounter`]: one count per replica; merge is the pointwise max.
//! - [`PNCounter`]: two G-Counters, increments and decrements.
//! - [`LwwRegister`]: last writer wins by `(timestamp, replica)`. The
//!   timestamp is the replica's wall clock lifted above every timestamp it
//!   has seen (so a write that causally follows another always wins);
//!   concurrent writes on skewed clocks still lose data — that is LWW.
//! - [`OrSet`]: observed-remove set, add-wins: each add has a unique tag
//!   (a dot), a remove tombstones only the tags it observed.
//! - [`MvRegister`]: multi-value register: concurrent writes survive as
//!   siblings, tracked with dots and a causal context (version vector).
//!
//! Time is an input (`now_ms`), never read here. Seeded bugs
//! ([`BUGS`], switched on per replica with [`Bugs`]) are consulted at the
//! line where the mistake would be made.

mod counter;
mod orset;
mod register;
mod store;
#[cfg(test)]
mod tests;

pub use counter::{GCounter, PNCounter};
pub use orset::OrSet;
pub use register::{LwwRegister, MvRegister, Timestamp};
pub use store::{ABOUT, CrdtStore, Message, Record, State};

use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A state-based CRDT.
pub trait Crdt: Clone + PartialEq + std::fmt::Debug {
    /// What a read returns.
    type Value: Clone + PartialEq + std::fmt::Debug;
    /// The join of the two states, into `self`.
    fn merge(&mut self, other: &Self);
    fn value(&self) -> Self::Value;
}

// The seeded CRDT bugs, by `--bug` name.
crate::seeded_bugs! {
    "crdt";
    gcounter_merge_sum = "gcounter-merge-sum":
        "G-Counter merge adds the replicas' counts instead of taking the max, so merging a state twice (gossip repeats) double-counts",
    orset_remove_without_tags = "orset-remove-without-tags":
        "OR-Set remove tombstones the element, not the add tags it observed, so it also removes concurrent (unseen) adds: remove-wins, acknowledged adds lost",
    lww_raw_wall_clock = "lww-raw-wall-clock":
        "LWW-Register stamps writes with the raw wall clock, not lifted above the timestamps it has seen: on a replica whose clock is behind, a write that follows another loses to it",
    lww_tie_keeps_local = "lww-tie-keeps-local":
        "LWW-Register compares timestamps without the replica id and keeps its own value on a tie, so replicas that wrote in the same millisecond never converge",
    ;
    sim_only:
}

/// A unique event name: the replica and its `seq`-th event (Preguiça et
/// al., "Dotted Version Vectors", 2012).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub node: NodeId,
    pub seq: u64,
}

/// A version vector: for each replica, how many of its events are known.
/// Dots are generated contiguously per replica, so `covers` is exact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector(pub BTreeMap<NodeId, u64>);

impl VersionVector {
    pub fn get(&self, node: NodeId) -> u64 {
        self.0.get(&node).copied().unwrap_or(0)
    }

    /// The next dot of `node`, recorded as seen.
    pub fn next_dot(&mut self, node: NodeId) -> Dot {
        let seq = self.get(node) + 1;
        self.0.insert(node, seq);
        Dot { node, seq }
    }

    pub fn covers(&self, d: Dot) -> bool {
        self.get(d.node) >= d.seq
    }

    /// Pointwise max.
    pub fn join(&mut self, other: &VersionVector) {
        for (&n, &s) in &other.0 {
            let e = self.0.entry(n).or_insert(0);
            *e = (*e).max(s);
        }
    }

    /// `self ≤ other` pointwise.
    pub fn le(&self, other: &VersionVector) -> bool {
        self.0.iter().all(|(&n, &s)| other.get(n) >= s)
    }
}
