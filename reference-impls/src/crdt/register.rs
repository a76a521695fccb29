//! Registers: LWW-Register and MV-Register (Shapiro et al. 2011, §3.2).

use super::{Bugs, Crdt, Dot, VersionVector};
use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A write's timestamp: wall-clock milliseconds, then the writing replica
/// to break ties (so the order is total and every replica picks the same
/// winner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    pub ms: u64,
    pub node: NodeId,
}

/// Last-writer-wins register. The largest timestamp wins. A write is
/// stamped `max(now_ms, latest seen + 1)`: a write that causally follows
/// another always wins, but of two concurrent writes on skewed clocks the
/// one with the faster clock wins even if it was made earlier in real time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    /// `None` until the first write.
    pub value: Option<T>,
    pub ts: Timestamp,
    #[serde(skip)]
    pub bugs: Bugs,
}

impl<T: Clone + PartialEq + std::fmt::Debug> LwwRegister<T> {
    pub fn new(bugs: Bugs) -> LwwRegister<T> {
        LwwRegister {
            value: None,
            ts: Timestamp::default(),
            bugs,
        }
    }

    /// Writes `v` at replica `node` whose wall clock reads `now_ms`; returns
    /// the write's timestamp.
    pub fn set(&mut self, node: NodeId, now_ms: u64, v: T) -> Timestamp {
        let ms = if self.bugs.lww_raw_wall_clock {
            // Seeded bug: a clock behind the timestamps already seen gives
            // this write a smaller stamp, so it loses to a write it followed.
            now_ms
        } else {
            now_ms.max(self.ts.ms.saturating_add(1))
        };
        let ts = Timestamp { ms, node };
        // The write is the join of the current state and the new one.
        self.merge(&LwwRegister {
            value: Some(v),
            ts,
            bugs: self.bugs,
        });
        ts
    }
}

impl<T: Clone + PartialEq + std::fmt::Debug> Crdt for LwwRegister<T> {
    type Value = Option<T>;

    fn merge(&mut self, other: &Self) {
        let newer = if self.bugs.lww_tie_keeps_local {
            // Seeded bug: the replica id is left out, and a tie keeps the
            // local value, so two replicas keep different values forever.
            other.ts.ms > self.ts.ms
        } else {
            other.ts > self.ts
        };
        if newer {
            self.value = other.value.clone();
            self.ts = other.ts;
        }
    }

    fn value(&self) -> Option<T> {
        self.value.clone()
    }
}

/// Multi-value register: a write replaces every value its replica has
/// seen; concurrent writes survive side by side (siblings) until a later
/// write that has seen them all. Values are tagged with dots; the causal
/// context says which dots have been seen (Dynamo's vector clocks, here as
/// a dotted version vector).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvRegister<T> {
    pub entries: BTreeMap<Dot, T>,
    pub ctx: VersionVector,
}

impl<T: Clone + Ord + std::fmt::Debug> Default for MvRegister<T> {
    fn default() -> Self {
        MvRegister {
            entries: BTreeMap::new(),
            ctx: VersionVector::default(),
        }
    }
}

impl<T: Clone + Ord + std::fmt::Debug> MvRegister<T> {
    /// Writes `v` at replica `node`, overwriting every value seen; returns
    /// the write's dot.
    pub fn set(&mut self, node: NodeId, v: T) -> Dot {
        let d = self.ctx.next_dot(node);
        self.entries.clear();
        self.entries.insert(d, v);
        d
    }
}

impl<T: Clone + Ord + std::fmt::Debug> Crdt for MvRegister<T> {
    /// The siblings' values, sorted (empty before the first write).
    type Value = BTreeSet<T>;

    fn merge(&mut self, other: &Self) {
        // A value survives unless the other side has seen its dot and
        // dropped it (overwritten).
        let mut out: BTreeMap<Dot, T> = BTreeMap::new();
        for (d, v) in &self.entries {
            if other.entries.contains_key(d) || !other.ctx.covers(*d) {
                out.insert(*d, v.clone());
            }
        }
        for (d, v) in &other.entries {
            if self.entries.contains_key(d) || !self.ctx.covers(*d) {
                out.insert(*d, v.clone());
            }
        }
        self.entries = out;
        self.ctx.join(&other.ctx);
    }

    fn value(&self) -> BTreeSet<T> {
        self.entries.values().cloned().collect()
    }
}
