//! Counters: G-Counter and PN-Counter (Shapiro et al. 2011, §3.1.1–3.1.2).

use super::{Bugs, Crdt};
use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Grow-only counter: replica `i` only increments `counts[i]`; the value
/// is the sum; merge takes the pointwise max (each entry is owned by one
/// replica, so the max is its latest count).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GCounter {
    pub counts: BTreeMap<NodeId, u64>,
    #[serde(skip)]
    pub bugs: Bugs,
}

impl GCounter {
    pub fn new(bugs: Bugs) -> GCounter {
        GCounter {
            counts: BTreeMap::new(),
            bugs,
        }
    }

    pub fn increment(&mut self, node: NodeId, by: u64) {
        let c = self.counts.entry(node).or_insert(0);
        *c = c.saturating_add(by);
    }
}

impl Crdt for GCounter {
    type Value = u64;

    fn merge(&mut self, other: &Self) {
        for (&n, &c) in &other.counts {
            let e = self.counts.entry(n).or_insert(0);
            *e = if self.bugs.gcounter_merge_sum {
                // Seeded bug: sum is not idempotent; a repeated gossip
                // message counts the same increments again.
                e.saturating_add(c)
            } else {
                (*e).max(c)
            };
        }
    }

    fn value(&self) -> u64 {
        self.counts.values().fold(0u64, |a, &c| a.saturating_add(c))
    }
}

/// Counter with increments and decrements: a G-Counter of each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PNCounter {
    pub p: GCounter,
    pub n: GCounter,
}

impl PNCounter {
    pub fn new(bugs: Bugs) -> PNCounter {
        PNCounter {
            p: GCounter::new(bugs),
            n: GCounter::new(bugs),
        }
    }

    /// Adds `delta` (negative: a decrement) at replica `node`.
    pub fn add(&mut self, node: NodeId, delta: i64) {
        if delta >= 0 {
            self.p.increment(node, delta.unsigned_abs());
        } else {
            self.n.increment(node, delta.unsigned_abs());
        }
    }
}

impl Crdt for PNCounter {
    type Value = i64;

    fn merge(&mut self, other: &Self) {
        self.p.merge(&other.p);
        self.n.merge(&other.n);
    }

    fn value(&self) -> i64 {
        (i128::from(self.p.value()) - i128::from(self.n.value()))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}
