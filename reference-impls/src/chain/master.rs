//! The master's side of chain replication: one reconfiguration decision
//! per round from the members' reported [`State`]s, and the admin request
//! that installs it. The members' core is in the parent module.

use super::State;
use crate::core::NodeId;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The master's decision for one round.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Nothing to change.
    Keep,
    /// Install `(epoch, chain)` on every member of `chain`; `removed` and
    /// `added` say why.
    Install {
        epoch: u64,
        chain: Vec<NodeId>,
        removed: Vec<NodeId>,
        added: Vec<NodeId>,
    },
}

/// The master's policy, given its configuration `(epoch, chain)` and the
/// states of the members that answered (`peers`: every node). One change
/// per round:
/// 1. members that missed the current configuration get it again;
/// 2. members that do not answer, or that no other answering member hears,
///    are removed (if all would be, the head stays); the new head must be
///    synced, else `Err` (waiting is all that is safe);
/// 3. else one answering non-member that the tail hears is appended.
pub fn plan(
    epoch: u64,
    chain: &[NodeId],
    peers: &[NodeId],
    states: &BTreeMap<NodeId, State>,
) -> Result<Plan, String> {
    if chain.is_empty() {
        return Err("empty chain".into());
    }
    // Unheard: other members answer, and none of them hears it.
    let unheard = |m: NodeId| {
        let others: Vec<&State> = chain
            .iter()
            .filter(|o| **o != m)
            .filter_map(|o| states.get(o))
            .collect();
        !others.is_empty() && !others.iter().any(|s| s.hears.contains(&m))
    };
    let mut removed: Vec<NodeId> = chain
        .iter()
        .copied()
        .filter(|m| !states.contains_key(m) || unheard(*m))
        .collect();
    if removed.len() == chain.len() && states.contains_key(&chain[0]) {
        removed.retain(|m| *m != chain[0]);
    }
    if !removed.is_empty() {
        let new: Vec<NodeId> = chain
            .iter()
            .copied()
            .filter(|m| !removed.contains(m))
            .collect();
        let Some(head) = new.first() else {
            return Err(format!("every member of chain {chain:?} failed"));
        };
        if *head != chain[0] && !states.get(head).is_some_and(|s| s.synced) {
            return Err(format!(
                "the new head {head} has not caught up with its predecessor yet"
            ));
        }
        return Ok(Plan::Install {
            epoch: epoch + 1,
            chain: new,
            removed,
            added: Vec::new(),
        });
    }
    if chain
        .iter()
        .any(|m| states.get(m).is_some_and(|s| s.epoch < epoch))
    {
        return Ok(Plan::Install {
            epoch,
            chain: chain.to_vec(),
            removed: Vec::new(),
            added: Vec::new(),
        });
    }
    let tail = chain[chain.len() - 1];
    let tail_hears = states
        .get(&tail)
        .map(|s| s.hears.clone())
        .unwrap_or_default();
    if let Some(x) = peers
        .iter()
        .copied()
        .find(|p| !chain.contains(p) && states.contains_key(p) && tail_hears.contains(p))
    {
        let mut new = chain.to_vec();
        new.push(x);
        return Ok(Plan::Install {
            epoch: epoch + 1,
            chain: new,
            removed: Vec::new(),
            added: vec![x],
        });
    }
    Ok(Plan::Keep)
}

/// An install request for [`crate::core::Core::admin`].
pub fn install_request(epoch: u64, chain: &[NodeId]) -> Value {
    json!({"install": {"epoch": epoch, "chain": chain}})
}
