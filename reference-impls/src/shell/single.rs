//! `single`: the smallest correct replicated core, scaffolding for the
//! shell (bring-up, shell tests) — not a consensus protocol.
//!
//! The member with the lowest id is the primary, forever. It appends every
//! client command to its log (a durable [`Record`]), streams log suffixes
//! to every backup, and commits an entry once **every** member has it on
//! disk (synchronous replication to all: with a fixed primary this is what
//! makes the primary's own log, and any backup's, a prefix of the truth
//! after any crash). Commands apply in log order; the primary replies.
//! Backups answer `NotLeader{primary}`. A dead backup stops commits until
//! it returns; a dead primary stops the cluster. No failover, no seeded
//! bugs.
//!
//! Because the primary's log only grows and backups only copy it, an entry
//! at index i is the same on every member that has it; a backup acks the
//! length of its log, and the primary resends from there.

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Entries per Append message.
const MAX_BATCH: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Entries `prev+1 ..= prev+entries.len()` and the primary's commit.
    Append {
        prev: u64,
        entries: Vec<Command>,
        commit: u64,
    },
    /// "My log has `len` entries (all durable)."
    Ack { len: u64 },
}

/// One durable log entry, at `index` (1-based).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub index: u64,
    pub cmd: Command,
}

pub struct Single {
    config: Config,
    primary: NodeId,
    log: Vec<Command>,
    commit: u64,
    applied: u64,
    store: Store,
    /// Primary: each backup's acknowledged log length.
    acked: BTreeMap<NodeId, u64>,
    /// Primary: each backup's next index to send (optimistic pipelining).
    next: BTreeMap<NodeId, u64>,
    ticks: u64,
    out: Ready<Message, Record>,
    /// Requests that arrived here, by log index.
    pending: BTreeMap<u64, crate::kv::RequestId>,
}

impl Single {
    fn is_primary(&self) -> bool {
        self.config.id == self.primary
    }

    fn backups(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.config
            .peers
            .iter()
            .copied()
            .filter(move |p| *p != self.config.id)
    }

    fn send_append(&mut self, to: NodeId, from_next: u64) {
        let len = self.log.len() as u64;
        let start = from_next.clamp(1, len + 1);
        let end = (start - 1 + MAX_BATCH as u64).min(len);
        let entries = self.log[(start - 1) as usize..end as usize].to_vec();
        self.next.insert(to, end + 1);
        self.out.messages.push((
            to,
            Message::Append {
                prev: start - 1,
                entries,
                commit: self.commit,
            },
        ));
    }

    fn advance_commit(&mut self) {
        let all = self
            .backups()
            .map(|b| self.acked.get(&b).copied().unwrap_or(0))
            .min()
            .unwrap_or(self.log.len() as u64)
            .min(self.log.len() as u64);
        if all > self.commit {
            self.commit = all;
        }
    }

    fn apply(&mut self) {
        let upto = self.commit.min(self.log.len() as u64);
        while self.applied < upto {
            self.applied += 1;
            let cmd = &self.log[(self.applied - 1) as usize];
            let out = self.store.apply(cmd);
            if let Some(id) = self.pending.remove(&self.applied) {
                self.out.replies.push((id, Reply::Done(out)));
            }
            self.out.applied.push((self.applied, cmd.clone()));
        }
    }
}

impl Core for Single {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Self {
        let primary = config.peers.iter().copied().min().unwrap_or(config.id);
        let mut log = Vec::with_capacity(records.len());
        for r in records {
            // Records are appended in index order; a repeat would be a bug
            // in this core, and is ignored rather than trusted.
            if r.index == log.len() as u64 + 1 {
                log.push(r.cmd);
            }
        }
        Single {
            config,
            primary,
            log,
            commit: 0,
            applied: 0,
            store: Store::new(),
            acked: BTreeMap::new(),
            next: BTreeMap::new(),
            ticks: 0,
            out: Ready::default(),
            pending: BTreeMap::new(),
        }
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => {
                self.ticks += 1;
                if self.is_primary()
                    && self
                        .ticks
                        .is_multiple_of(self.config.heartbeat_ticks.max(1))
                {
                    // Retransmit from what each backup acknowledged: covers
                    // lost messages and restarted backups.
                    for b in self.backups().collect::<Vec<_>>() {
                        let from = self.acked.get(&b).copied().unwrap_or(0) + 1;
                        self.send_append(b, from);
                    }
                }
            }
            Input::Request(cmd) => {
                if !self.is_primary() {
                    self.out.replies.push((
                        cmd.id,
                        Reply::NotLeader {
                            leader: Some(self.primary),
                        },
                    ));
                    return;
                }
                self.log.push(cmd.clone());
                let index = self.log.len() as u64;
                self.out.records.push(Record {
                    index,
                    cmd: cmd.clone(),
                });
                self.pending.insert(index, cmd.id);
                for b in self.backups().collect::<Vec<_>>() {
                    let next = self.next.get(&b).copied().unwrap_or(1);
                    if next == index {
                        self.send_append(b, next);
                    }
                }
                self.advance_commit();
                self.apply();
            }
            Input::Message { from, msg } => match msg {
                Message::Append {
                    prev,
                    entries,
                    commit,
                } => {
                    if self.is_primary() || from != self.primary {
                        return;
                    }
                    let len = self.log.len() as u64;
                    if prev <= len {
                        for (i, e) in entries.into_iter().enumerate() {
                            let index = prev + 1 + i as u64;
                            if index > self.log.len() as u64 {
                                self.log.push(e.clone());
                                self.out.records.push(Record { index, cmd: e });
                            }
                        }
                    }
                    self.commit = self.commit.max(commit.min(self.log.len() as u64));
                    self.out.messages.push((
                        from,
                        Message::Ack {
                            len: self.log.len() as u64,
                        },
                    ));
                    self.apply();
                }
                Message::Ack { len } => {
                    if !self.is_primary() {
                        return;
                    }
                    let a = self.acked.entry(from).or_insert(0);
                    *a = (*a).max(len);
                    if len < self.next.get(&from).copied().unwrap_or(1).saturating_sub(1) {
                        // The backup is behind what was sent (lost messages
                        // or a restart): rewind.
                        self.next.insert(from, len + 1);
                    }
                    let len_log = self.log.len() as u64;
                    let next = self.next.get(&from).copied().unwrap_or(1);
                    if next <= len_log {
                        self.send_append(from, next);
                    }
                    self.advance_commit();
                    self.apply();
                }
            },
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        Status {
            role: if self.is_primary() {
                "leader"
            } else {
                "follower"
            },
            term: 1,
            leader: Some(self.primary),
            commit: self.commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Op, RequestId};
    use crate::sim::{Faults, Sim};

    /// Every acknowledged write survives drops, duplicates and crash
    /// restarts, and the sim's state-machine safety holds.
    #[test]
    fn single_is_safe_and_live_under_the_sim() {
        for seed in 0..100 {
            let mut sim: Sim<Single> = Sim::new(3, seed, |_| {});
            sim.faults = Faults {
                drop: 0.1,
                duplicate: 0.05,
            };
            for i in 1..=20u64 {
                let id = RequestId { client: 1, seq: i };
                sim.request(
                    1,
                    Command {
                        id,
                        op: Op::Write {
                            key: 1,
                            value: i as i64,
                        },
                    },
                );
                sim.request(
                    2,
                    Command {
                        id: RequestId { client: 2, seq: i },
                        op: Op::Read { key: 1 },
                    },
                );
                sim.run(40);
                if i % 7 == 0 {
                    let victim = 1 + seed % 3;
                    sim.crash(victim);
                    sim.run(20);
                    sim.restart(victim);
                }
            }
            sim.faults = Faults::NONE;
            for _ in 0..200 {
                sim.run(50);
                sim.stabilize();
            }
            assert!(
                sim.replies_to(RequestId { client: 2, seq: 1 })
                    .iter()
                    .all(|r| matches!(r, Reply::NotLeader { leader: Some(1) }))
            );
            // Every command the primary logged is applied everywhere, in
            // the same order (the sim checks the order).
            let done = sim
                .replies
                .iter()
                .filter(|(_, _, r)| matches!(r, Reply::Done(_)))
                .count();
            assert!(done > 0, "seed {seed}: nothing committed");
            for n in sim.nodes.values() {
                let n = n.as_ref().expect("all restarted");
                assert_eq!(n.applied, n.log.len() as u64, "seed {seed}");
            }
        }
    }
}
