//! Merkle trees for anti-entropy (Merkle 1987; Dynamo §4.7): two replicas
//! compare the roots of their trees over the keys they share, and only when
//! the roots differ the leaves, then exchange just the keys of the
//! differing leaves.
//!
//! The tree is two levels: [`LEAVES`] buckets (a key's bucket is a hash of
//! the key), each leaf the order-independent sum of its entries' hashes,
//! and a root hashing the leaves in order. Equal key → versions maps give
//! equal trees on every node (no `std` hasher); a differing entry changes
//! its leaf and, with overwhelming probability, the root.

use super::Siblings;
use crate::kv::Key;
use crate::ring::{hash_u64, mix64};
use serde::{Deserialize, Serialize};

/// Leaves per tree.
pub const LEAVES: usize = 64;

/// The leaf a key hashes to.
pub fn bucket(key: Key) -> usize {
    (hash_u64(key, 0x6d65_726b_6c65) % LEAVES as u64) as usize
}

/// The hash of one key's versions: their dots and values, in dot order.
pub fn entry_hash(key: Key, siblings: &Siblings) -> u64 {
    let mut h = mix64(key);
    for v in &siblings.0 {
        for x in [v.dot.node, v.dot.seq, v.value as u64] {
            h = mix64(h ^ x);
        }
    }
    h
}

/// A Merkle tree over a set of keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub leaves: Vec<u64>,
    pub root: u64,
}

impl Tree {
    /// The tree of `entries` (keys with no versions count as absent).
    pub fn build<'a>(entries: impl IntoIterator<Item = (&'a Key, &'a Siblings)>) -> Tree {
        let mut leaves = vec![0u64; LEAVES];
        for (&k, s) in entries {
            if !s.is_empty() {
                let b = bucket(k);
                leaves[b] = leaves[b].wrapping_add(entry_hash(k, s));
            }
        }
        let root = leaves.iter().fold(0u64, |h, &l| mix64(h ^ l));
        Tree { leaves, root }
    }

    /// The buckets whose leaves differ (all of them if `other` is malformed).
    pub fn diff(&self, other: &[u64]) -> Vec<usize> {
        if other.len() != self.leaves.len() {
            return (0..self.leaves.len()).collect();
        }
        (0..self.leaves.len())
            .filter(|&i| self.leaves[i] != other[i])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{Dot, VersionVector};
    use crate::dynamo::Version;
    use std::collections::BTreeMap;

    fn sib(node: u64, seq: u64, value: i64) -> Siblings {
        Siblings(vec![Version {
            dot: Dot { node, seq },
            context: VersionVector::default(),
            value,
            ts: 0,
        }])
    }

    #[test]
    fn equal_maps_equal_trees_and_a_difference_names_its_bucket() {
        let a: BTreeMap<Key, Siblings> = (0..200).map(|k| (k, sib(1, k + 1, k as i64))).collect();
        let mut b = a.clone();
        assert_eq!(Tree::build(&a), Tree::build(&b));
        b.insert(17, sib(2, 1, 99));
        let (ta, tb) = (Tree::build(&a), Tree::build(&b));
        assert_ne!(ta.root, tb.root);
        assert_eq!(ta.diff(&tb.leaves), vec![bucket(17)]);
        // A key missing on one side differs too; an empty entry is absent.
        b.insert(17, a[&17].clone());
        b.insert(1000, Siblings::default());
        assert_eq!(Tree::build(&b), ta);
        b.remove(&3);
        assert_eq!(Tree::build(&b).diff(&ta.leaves), vec![bucket(3)]);
        assert_eq!(ta.diff(&[1, 2]).len(), LEAVES);
    }
}
