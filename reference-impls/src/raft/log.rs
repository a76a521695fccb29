//! The Raft log: a snapshot (the compacted prefix, §7 / thesis ch. 5)
//! followed by the entries after it.

use super::{Entry, EntryData, Snapshot};
use crate::core::NodeId;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub struct RaftLog {
    /// Everything up to `snapshot.last_included_index`, applied.
    pub snapshot: Snapshot,
    /// `entries[i].index == snapshot.last_included_index + 1 + i`.
    pub entries: Vec<Entry>,
}

impl RaftLog {
    pub fn new(snapshot: Snapshot) -> RaftLog {
        RaftLog {
            snapshot,
            entries: Vec::new(),
        }
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.last_included_index
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.last_included_term, |e| e.term)
    }

    /// The term of the entry at `index`; `None` if compacted away (below the
    /// snapshot) or past the end.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index() {
            return Some(self.snapshot.last_included_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let first = self.snapshot_index() + 1;
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize)
    }

    /// Entries `from..=to` (both present in the log).
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        let first = self.snapshot_index() + 1;
        let (a, b) = ((from - first) as usize, (to - first + 1) as usize);
        &self.entries[a..b.min(self.entries.len())]
    }

    /// Deletes the entry at `index` and all that follow (§5.3, a conflict).
    pub fn truncate_from(&mut self, index: u64) {
        let first = self.snapshot_index() + 1;
        let keep = index.saturating_sub(first) as usize;
        self.entries.truncate(keep);
    }

    /// Appends `e`, which must be the next index (recovery and followers
    /// truncate first).
    pub fn append(&mut self, e: Entry) {
        debug_assert_eq!(e.index, self.last_index() + 1);
        self.entries.push(e);
    }

    /// The voting members after the entries up to `index` (a configuration
    /// takes effect as soon as it is in the log, §4.1).
    pub fn voters_at(&self, index: u64) -> BTreeSet<NodeId> {
        let mut voters = self.snapshot.voters.clone();
        for e in &self.entries {
            if e.index > index {
                break;
            }
            apply_conf(&mut voters, &e.data);
        }
        voters
    }

    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.voters_at(self.last_index())
    }

    /// Index of the latest configuration entry in the log (0 if none after
    /// the snapshot).
    pub fn last_conf_index(&self) -> u64 {
        self.entries
            .iter()
            .rev()
            .find(|e| e.data.is_conf())
            .map_or(0, |e| e.index)
    }
}

pub fn apply_conf(voters: &mut BTreeSet<NodeId>, data: &EntryData) {
    match data {
        EntryData::AddServer(id) => {
            voters.insert(*id);
        }
        EntryData::RemoveServer(id) => {
            voters.remove(id);
        }
        EntryData::Noop | EntryData::Command(_) => {}
    }
}
