//! Observed-remove set, add-wins (Shapiro et al. 2011, §3.3.5 "OR-Set").
//!
//! Every add creates a fresh tag (a [`Dot`]); an element is present while
//! it has a live tag. A remove tombstones exactly the tags its replica has
//! observed, so an add it has not seen (concurrent) survives: add wins.

use super::{Bugs, Crdt, Dot, VersionVector};
use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrSet<T: Ord> {
    /// Live tags of each present element.
    pub entries: BTreeMap<T, BTreeSet<Dot>>,
    /// Tags removed (the tombstones); they never come back.
    pub tombstones: BTreeSet<Dot>,
    /// Dots generated so far, per replica (to make fresh tags).
    pub clock: VersionVector,
    /// Only with the `orset-remove-without-tags` bug: elements removed
    /// wholesale, whatever tags they have anywhere.
    pub removed: BTreeSet<T>,
    #[serde(skip)]
    pub bugs: Bugs,
}

impl<T: Ord + Clone> OrSet<T> {
    pub fn new(bugs: Bugs) -> OrSet<T> {
        OrSet {
            entries: BTreeMap::new(),
            tombstones: BTreeSet::new(),
            clock: VersionVector::default(),
            removed: BTreeSet::new(),
            bugs,
        }
    }

    /// Adds `x` at replica `node` with a fresh tag, which it returns.
    pub fn add(&mut self, node: NodeId, x: T) -> Dot {
        let d = self.clock.next_dot(node);
        if self.removed.contains(&x) {
            // Only under the seeded bug: the element-wide tombstone
            // swallows this add too (acknowledged, then lost).
            return d;
        }
        self.entries.entry(x).or_default().insert(d);
        d
    }

    /// Removes `x`: tombstones the tags of `x` this replica has observed
    /// and returns them (none: `x` was not present here).
    pub fn remove(&mut self, x: &T) -> BTreeSet<Dot> {
        let seen = self.entries.remove(x).unwrap_or_default();
        if self.bugs.orset_remove_without_tags {
            // Seeded bug: the remove names the element, not the tags, so
            // adds this replica never saw are removed too.
            self.removed.insert(x.clone());
        }
        self.tombstones.extend(seen.iter().copied());
        seen
    }

    pub fn contains(&self, x: &T) -> bool {
        self.entries.contains_key(x)
    }
}

impl<T: Ord + Clone + std::fmt::Debug> Crdt for OrSet<T> {
    type Value = BTreeSet<T>;

    fn merge(&mut self, other: &Self) {
        self.tombstones.extend(other.tombstones.iter().copied());
        self.removed.extend(other.removed.iter().cloned());
        self.clock.join(&other.clock);
        for (x, tags) in &other.entries {
            self.entries.entry(x.clone()).or_default().extend(tags);
        }
        let (tomb, removed) = (&self.tombstones, &self.removed);
        self.entries.retain(|x, tags| {
            tags.retain(|d| !tomb.contains(d));
            !tags.is_empty() && !removed.contains(x)
        });
    }

    fn value(&self) -> BTreeSet<T> {
        self.entries.keys().cloned().collect()
    }
}
