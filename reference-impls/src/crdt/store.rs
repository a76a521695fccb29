//! `faultline-node crdt`: a replica of a CRDT store as a [`Core`], so the
//! shell (TCP, write-ahead log, client API) runs it like the consensus
//! protocols.
//!
//! Every replica holds one [`PNCounter`], one [`OrSet`] of integers and an
//! [`LwwRegister`] per key. It is **available**: a client update is applied
//! locally and acknowledged in the same Ready batch (after its record is
//! fsynced), whatever the network does; a read answers the local value.
//!
//! Replication is state-based anti-entropy by **push-pull gossip**
//! (Demers et al., "Epidemic algorithms for replicated database
//! maintenance", PODC 1987): every `gossip-ticks` ticks a replica pushes
//! its whole state to `fanout` random peers (seeded); a peer merges it and,
//! if it knew something the pusher did not, answers with its own state
//! (the pull). A replica whose state did not change since its last push to
//! a peer skips that peer, except every [`RESEND_ROUNDS`]th round, so a
//! push lost in a partition is repeated after the heal.
//!
//! Durability: each replica persists only the effects of **its own**
//! updates ([`Record`]: its counter entries, an add's tag, the tags a
//! remove tombstoned, a write's timestamp) — what it learned by gossip its
//! peers persisted and will gossip again. On restart the records are
//! merged back in order; every [`SNAPSHOT_RECORDS`] records the log is
//! rewritten as one snapshot of the whole state.
//!
//! Options (`--option`): `gossip-ticks=N` (default: the heartbeat ticks),
//! `fanout=K` (default 1). Seeded bugs: [`super::BUGS`].

use super::{Bugs, Crdt, Dot, LwwRegister, OrSet, PNCounter, Timestamp, VersionVector};
use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, Key, Op};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// One line about the protocol, for `faultline-node --list`.
pub const ABOUT: &str = "CRDT store: PN-Counter, OR-Set and LWW-Registers, updates accepted by every replica, push-pull gossip of whole states";

/// Every this many gossip rounds a replica pushes even an unchanged state.
pub const RESEND_ROUNDS: u64 = 10;
/// Own-update records between two snapshots (log rewrites).
pub const SNAPSHOT_RECORDS: u64 = 4096;

/// A replica's whole state: the join of everything it has seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub counter: PNCounter,
    pub set: OrSet<i64>,
    pub registers: BTreeMap<Key, LwwRegister<i64>>,
}

impl State {
    fn new(bugs: Bugs) -> State {
        State {
            counter: PNCounter::new(bugs),
            set: OrSet::new(bugs),
            registers: BTreeMap::new(),
        }
    }

    /// The bug flags are not serialized (they belong to the replica, not
    /// to the state it receives), so they are put back after decoding.
    fn with_bugs(mut self, bugs: Bugs) -> State {
        self.counter.p.bugs = bugs;
        self.counter.n.bugs = bugs;
        self.set.bugs = bugs;
        for r in self.registers.values_mut() {
            r.bugs = bugs;
        }
        self
    }

    /// The join of `self` and `other`, into `self`; `other`'s bug flags
    /// are ignored (a replica merges with its own code).
    fn merge(&mut self, other: &State, bugs: Bugs) {
        self.counter.merge(&other.counter);
        self.set.merge(&other.set);
        for (k, r) in &other.registers {
            self.registers
                .entry(*k)
                .or_insert_with(|| LwwRegister::new(bugs))
                .merge(r);
        }
    }
}

/// Gossip between replicas.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// "Here is my state"; answered with a `Pull` when the receiver knew more.
    Push(State),
    /// The answer to a push.
    Pull(State),
}

/// The durable effect of one of this replica's own updates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    /// This replica's PN-Counter entries after an add.
    Counter { p: u64, n: u64 },
    /// An OR-Set add and its fresh tag.
    SetAdd { value: i64, dot: Dot },
    /// An OR-Set remove and the tags it tombstoned (`whole`: the element
    /// itself, only under the `orset-remove-without-tags` bug).
    SetRemove {
        value: i64,
        tags: BTreeSet<Dot>,
        whole: bool,
    },
    /// An LWW write and its timestamp.
    Write { key: Key, value: i64, ts: Timestamp },
    /// The whole state (the log's first record after a rewrite).
    Snapshot(State),
}

/// One CRDT replica.
pub struct CrdtStore {
    id: NodeId,
    others: Vec<NodeId>,
    bugs: Bugs,
    state: State,
    rng: StdRng,
    /// The wall clock at the last tick (LWW timestamps; libfaketime reaches it).
    now_ms: u64,
    ticks: u64,
    gossip_ticks: u64,
    fanout: usize,
    rounds: u64,
    /// Bumped whenever the state changes.
    version: u64,
    /// Per peer: the version last pushed to it.
    pushed: BTreeMap<NodeId, u64>,
    /// Own updates applied (the status' `commit`, for logs).
    updates: u64,
    records_since_snapshot: u64,
    out: Ready<Message, Record>,
}

impl CrdtStore {
    /// The replica's state (tests).
    pub fn state(&self) -> &State {
        &self.state
    }

    fn replay(&mut self, r: Record) {
        let me = self.id;
        match r {
            Record::Counter { p, n } => {
                // Set, not merged: the buggy merge would add the entry to itself.
                let e = self.state.counter.p.counts.entry(me).or_insert(0);
                *e = (*e).max(p);
                let e = self.state.counter.n.counts.entry(me).or_insert(0);
                *e = (*e).max(n);
            }
            Record::SetAdd { value, dot } => {
                let mut d = OrSet::new(self.bugs);
                d.entries.insert(value, BTreeSet::from([dot]));
                d.clock = VersionVector(BTreeMap::from([(dot.node, dot.seq)]));
                self.state.set.merge(&d);
            }
            Record::SetRemove { value, tags, whole } => {
                let mut d = OrSet::new(self.bugs);
                d.tombstones = tags;
                if whole {
                    d.removed.insert(value);
                }
                self.state.set.merge(&d);
            }
            Record::Write { key, value, ts } => {
                let r = LwwRegister {
                    value: Some(value),
                    ts,
                    bugs: self.bugs,
                };
                self.state
                    .registers
                    .entry(key)
                    .or_insert_with(|| LwwRegister::new(self.bugs))
                    .merge(&r);
            }
            Record::Snapshot(s) => self.state = s.with_bugs(self.bugs),
        }
    }

    /// Applies a client's op locally; the record (if it changed anything)
    /// and the output.
    fn apply(&mut self, op: &Op) -> (Option<Record>, Result<serde_json::Value, String>) {
        let me = self.id;
        match op {
            Op::CounterAdd { delta } => {
                self.state.counter.add(me, *delta);
                let get = |g: &super::GCounter| g.counts.get(&me).copied().unwrap_or(0);
                let rec = Record::Counter {
                    p: get(&self.state.counter.p),
                    n: get(&self.state.counter.n),
                };
                (Some(rec), Ok(json!(delta)))
            }
            Op::CounterRead => (None, Ok(json!(self.state.counter.value()))),
            Op::SetAdd { value } => {
                let dot = self.state.set.add(me, *value);
                (
                    Some(Record::SetAdd { value: *value, dot }),
                    Ok(json!(value)),
                )
            }
            Op::SetRemove { value } => {
                let tags = self.state.set.remove(value);
                let rec = Record::SetRemove {
                    value: *value,
                    tags,
                    whole: self.bugs.orset_remove_without_tags,
                };
                (Some(rec), Ok(json!(value)))
            }
            Op::SetRead => (None, Ok(json!(self.state.set.value()))),
            Op::Write { key, value } => {
                let bugs = self.bugs;
                let r = self
                    .state
                    .registers
                    .entry(*key)
                    .or_insert_with(|| LwwRegister::new(bugs));
                let ts = r.set(me, self.now_ms, *value);
                let rec = Record::Write {
                    key: *key,
                    value: *value,
                    ts,
                };
                (Some(rec), Ok(json!(value)))
            }
            Op::Read { key } => {
                let v = self.state.registers.get(key).and_then(|r| r.value());
                (None, Ok(json!(v)))
            }
            other => (
                None,
                Err(format!(
                    "the CRDT store has no {other:?} (counter add/read, set add/remove/read, register write/read)"
                )),
            ),
        }
    }

    fn request(&mut self, cmd: Command) {
        let (rec, out) = self.apply(&cmd.op);
        if let Some(rec) = rec {
            self.updates += 1;
            self.version += 1;
            self.records_since_snapshot += 1;
            self.out.records.push(rec);
            if self.records_since_snapshot >= SNAPSHOT_RECORDS {
                // The snapshot already holds this batch's records; appending
                // them after it again is harmless (merges are idempotent).
                self.out.rewrite = Some(vec![Record::Snapshot(self.state.clone())]);
                self.records_since_snapshot = 0;
            }
        }
        // Available: answered now; the shell fsyncs the record first.
        self.out.replies.push((cmd.id, Reply::Done(out)));
    }

    fn gossip(&mut self) {
        self.rounds += 1;
        let resend = self.rounds.is_multiple_of(RESEND_ROUNDS);
        let mut peers = self.others.clone();
        let mut sent = 0;
        while sent < self.fanout && !peers.is_empty() {
            let p = peers.swap_remove(self.rng.random_range(0..peers.len()));
            if !resend && self.pushed.get(&p) == Some(&self.version) {
                continue;
            }
            self.pushed.insert(p, self.version);
            self.out
                .messages
                .push((p, Message::Push(self.state.clone())));
            sent += 1;
        }
    }

    fn receive(&mut self, from: NodeId, msg: Message) {
        let (theirs, push) = match msg {
            Message::Push(s) => (s, true),
            Message::Pull(s) => (s, false),
        };
        let theirs = theirs.with_bugs(self.bugs);
        let before = self.state.clone();
        self.state.merge(&theirs, self.bugs);
        if self.state != before {
            self.version += 1;
        }
        if push && self.state != theirs {
            self.out
                .messages
                .push((from, Message::Pull(self.state.clone())));
            self.pushed.insert(from, self.version);
        }
    }
}

impl Core for CrdtStore {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> CrdtStore {
        let bugs = Bugs::from_config(&config);
        let gossip_ticks = config
            .option("gossip-ticks")
            .and_then(|v| v.parse().ok())
            .unwrap_or(config.heartbeat_ticks)
            .max(1);
        let fanout = config
            .option("fanout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        let mut s = CrdtStore {
            id: config.id,
            others: config
                .peers
                .iter()
                .copied()
                .filter(|p| *p != config.id)
                .collect(),
            bugs,
            state: State::new(bugs),
            rng: StdRng::seed_from_u64(config.seed),
            now_ms: 0,
            ticks: 0,
            gossip_ticks,
            fanout,
            rounds: 0,
            version: 0,
            pushed: BTreeMap::new(),
            updates: 0,
            records_since_snapshot: 0,
            out: Ready::default(),
        };
        for r in records {
            s.records_since_snapshot += 1;
            s.replay(r);
        }
        s
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { now_ms } => {
                self.now_ms = now_ms;
                self.ticks += 1;
                if self.ticks.is_multiple_of(self.gossip_ticks) {
                    self.gossip();
                }
            }
            Input::Message { from, msg } => self.receive(from, msg),
            Input::Request(cmd) => self.request(cmd),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        Status {
            role: "replica",
            term: 0,
            leader: None,
            commit: self.updates,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The store under the in-process network: random updates on every
    //! replica under drops, duplicates, partitions and crash-restarts, then
    //! a heal and quiet gossip: every replica reads the same value, and it
    //! holds every acknowledged update (the CRDT paper's strong eventual
    //! consistency, judged as `faultline check --model crdt-convergence`).

    use super::*;
    use crate::kv::RequestId;
    use crate::sim::{Faults, Sim};
    use serde_json::Value;

    fn cmd(seq: u64, op: Op) -> Command {
        Command {
            id: RequestId { client: 1, seq },
            op,
        }
    }

    fn read(sim: &mut Sim<CrdtStore>, id: NodeId, seq: u64, op: Op) -> Value {
        sim.request(id, cmd(seq, op));
        match sim.replies.last() {
            Some((_, _, Reply::Done(Ok(v)))) => v.clone(),
            other => panic!("seed {}: read on {id}: {other:?}", sim.seed),
        }
    }

    /// Runs a random schedule; returns (sum of acked adds, elements whose
    /// last acked update was an add, each replica's final (counter, set)).
    fn run(seed: u64, bugs: &[&str]) -> (i64, BTreeSet<i64>, Vec<(Value, Value)>) {
        let mut sim: Sim<CrdtStore> = Sim::new(3, seed, |c| {
            c.bugs = bugs.iter().map(|b| b.to_string()).collect();
            c.heartbeat_ticks = 2;
        });
        sim.faults = Faults {
            drop: 0.1,
            duplicate: 0.1,
        };
        let (mut sum, mut kept) = (0i64, BTreeSet::new());
        let mut seq = 0;
        for round in 0..300u64 {
            let id = sim.rng.random_range(1..=3u64);
            seq += 1;
            let op = match sim.rng.random_range(0..3u8) {
                0 => Op::CounterAdd {
                    delta: sim.rng.random_range(-3..=5),
                },
                1 => Op::SetAdd {
                    value: sim.rng.random_range(0..20),
                },
                _ => Op::SetRemove {
                    value: sim.rng.random_range(0..20),
                },
            };
            let live = sim.nodes[&id].is_some();
            sim.request(id, cmd(seq, op.clone()));
            if live {
                match op {
                    Op::CounterAdd { delta } => sum += delta,
                    Op::SetAdd { value } => {
                        kept.insert(value);
                    }
                    Op::SetRemove { value } => {
                        kept.remove(&value);
                    }
                    _ => {}
                }
            }
            sim.run(5);
            match round % 60 {
                10 => sim.isolate(1 + round % 3),
                30 => sim.heal(),
                40 => sim.crash(1 + round % 3),
                50 => {
                    let id = 1 + (round - 10) % 3;
                    if sim.nodes[&id].is_none() {
                        sim.restart(id);
                    }
                }
                _ => {}
            }
        }
        sim.heal();
        for id in 1..=3 {
            if sim.nodes[&id].is_none() {
                sim.restart(id);
            }
        }
        sim.faults = Faults::NONE;
        for _ in 0..400 {
            for id in 1..=3 {
                sim.tick(id);
            }
            sim.stabilize();
        }
        let finals = (1..=3)
            .map(|id| {
                (
                    read(&mut sim, id, 10_000 + id, Op::CounterRead),
                    read(&mut sim, id, 20_000 + id, Op::SetRead),
                )
            })
            .collect();
        (sum, kept, finals)
    }

    #[test]
    fn replicas_converge_to_every_acknowledged_update() {
        for seed in 0..40 {
            let (sum, kept, finals) = run(seed, &[]);
            assert!(
                finals.iter().all(|f| f == &finals[0]),
                "seed {seed}: {finals:?}"
            );
            assert_eq!(finals[0].0, json!(sum), "seed {seed}");
            let set: BTreeSet<i64> = serde_json::from_value(finals[0].1.clone()).unwrap();
            // Requests are sequential, so an add after an element's last
            // remove has a tag no remove observed: add wins, it must be there.
            assert!(kept.is_subset(&set), "seed {seed}: {kept:?} ⊄ {set:?}");
            assert!(
                set.iter().all(|x| (0..20).contains(x)),
                "seed {seed}: {set:?}"
            );
        }
    }

    #[test]
    fn restart_recovers_own_updates_and_snapshots() {
        let mut sim: Sim<CrdtStore> = Sim::new(1, 1, |_| {});
        for seq in 1..=(SNAPSHOT_RECORDS + 10) {
            sim.request(1, cmd(seq, Op::CounterAdd { delta: 1 }));
        }
        sim.request(1, cmd(99_990, Op::SetAdd { value: 4 }));
        sim.request(1, cmd(99_991, Op::SetAdd { value: 5 }));
        sim.request(1, cmd(99_992, Op::SetRemove { value: 4 }));
        sim.tick(1);
        sim.request(1, cmd(99_993, Op::Write { key: 2, value: 7 }));
        sim.crash(1);
        sim.restart(1);
        assert_eq!(
            read(&mut sim, 1, 99_994, Op::CounterRead),
            json!(SNAPSHOT_RECORDS + 10)
        );
        assert_eq!(read(&mut sim, 1, 99_995, Op::SetRead), json!([5]));
        assert_eq!(read(&mut sim, 1, 99_996, Op::Read { key: 2 }), json!(7));
        // A fresh tag after the restart does not reuse an old one.
        sim.request(1, cmd(99_997, Op::SetAdd { value: 4 }));
        assert_eq!(read(&mut sim, 1, 99_998, Op::SetRead), json!([4, 5]));
    }

    #[test]
    fn seeded_gcounter_merge_sum_overcounts_in_the_cluster() {
        let caught = (0..10)
            .filter(|&s| {
                let (sum, _, f) = run(s, &["gcounter-merge-sum"]);
                f.iter().any(|(c, _)| c != &json!(sum))
            })
            .count();
        assert!(caught >= 9, "caught in {caught} of 10");
    }

    #[test]
    fn seeded_orset_remove_without_tags_loses_a_later_add() {
        let mut sim: Sim<CrdtStore> = Sim::new(2, 3, |c| {
            c.bugs = ["orset-remove-without-tags".to_string()].into();
        });
        sim.request(1, cmd(1, Op::SetAdd { value: 1 }));
        sim.request(1, cmd(2, Op::SetRemove { value: 1 }));
        // Acknowledged after the remove completed: add-wins keeps it.
        sim.request(2, cmd(3, Op::SetAdd { value: 1 }));
        for _ in 0..20 {
            sim.tick(1);
            sim.tick(2);
            sim.stabilize();
        }
        assert_eq!(read(&mut sim, 2, 4, Op::SetRead), json!([]));
    }

    #[test]
    fn other_ops_fail_without_effect() {
        let mut sim: Sim<CrdtStore> = Sim::new(1, 1, |_| {});
        sim.request(
            1,
            cmd(
                1,
                Op::Cas {
                    key: 1,
                    from: 0,
                    to: 1,
                },
            ),
        );
        assert!(matches!(
            sim.replies.last(),
            Some((_, _, Reply::Done(Err(_))))
        ));
    }
}
