//! A seeded, in-memory simulated transactional store, for tests and
//! benchmarks of the checker: it produces list-append or rw-register
//! histories under a chosen isolation level. Not a model of any real
//! database.

use super::Workload;
use crate::history::{Event, EventType, History, Process};
use serde_json::{Value, json};

/// How the simulated store isolates transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Each transaction takes effect atomically at one instant between its
    /// invocation and completion: strict serializability.
    Serializable,
    /// Reads see the snapshot taken at the first micro-op; commit aborts if
    /// another transaction committed a write to a written key since
    /// (first-committer-wins).
    SnapshotIsolation,
    /// Each read sees the latest committed state; writes are buffered and
    /// applied at commit with no conflict check.
    ReadCommitted,
    /// Transactions apply atomically, as [`Isolation::Serializable`], but a
    /// read of a key the transaction touches only once is served from a
    /// replica lagging up to [`SimOptions::max_lag`] micro-ops behind (the
    /// "read from a follower" bug). Stale reads point rw edges backwards
    /// in time while ww / wr edges point forwards, so with enough lag
    /// nearly the whole history is one strongly connected component:
    /// the checker's worst case.
    StaleReads,
}

/// Simulation parameters.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    pub txns: usize,
    pub processes: usize,
    /// Keys in use at any time.
    pub keys: usize,
    /// After this many appends a key is retired for a fresh one (as Jepsen's
    /// `max-writes-per-key`), so reads stay short.
    pub max_writes_per_key: usize,
    pub min_mops: usize,
    pub max_mops: usize,
    pub isolation: Isolation,
    /// List appends (`["append",k,v]`, reads return lists) or register
    /// writes (`["w",k,v]`, reads return the last value or `null`).
    pub workload: Workload,
    /// [`Isolation::StaleReads`]: the most micro-ops a read may lag behind.
    pub max_lag: usize,
}

impl Default for SimOptions {
    /// The shape of the 1,000,000-transaction benchmark in `BENCHMARKS.md`:
    /// 20 processes, 1–5 micro-ops, 1,000 keys in use, 32 writes per key.
    fn default() -> SimOptions {
        SimOptions {
            seed: 1,
            txns: 1_000_000,
            processes: 20,
            keys: 1000,
            max_writes_per_key: 32,
            min_mops: 1,
            max_mops: 5,
            isolation: Isolation::Serializable,
            workload: Workload::ListAppend,
            max_lag: 0,
        }
    }
}

/// splitmix64: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[derive(Clone, Copy)]
enum MopSpec {
    Append(u64, u64),
    Read(u64),
}

struct Running {
    mops: Vec<MopSpec>,
    /// Read results so far, by micro-op position.
    results: Vec<Option<Vec<u64>>>,
    pos: usize,
    /// SI: commit sequence number the snapshot was taken at.
    snapshot: Option<u64>,
    /// Serializable: already applied, only the completion remains.
    applied: bool,
}

/// Committed state: per key, the list and the commit number of each append.
#[derive(Default)]
struct Store {
    lists: std::collections::HashMap<u64, Vec<(u64, u64)>>,
    /// Per key, the commit number of its last committed append.
    last_write: std::collections::HashMap<u64, u64>,
    seq: u64,
}

impl Store {
    fn read(&self, k: u64, at: Option<u64>) -> Vec<u64> {
        self.lists.get(&k).map_or_else(Vec::new, |l| {
            l.iter()
                .filter(|(_, s)| at.is_none_or(|a| *s <= a))
                .map(|(v, _)| *v)
                .collect()
        })
    }
}

fn mop_json(m: &MopSpec, result: Option<&Vec<u64>>, w: Workload) -> Value {
    match (m, w) {
        (MopSpec::Append(k, v), Workload::ListAppend) => json!(["append", k, v]),
        (MopSpec::Append(k, v), Workload::RwRegister) => json!(["w", k, v]),
        (MopSpec::Read(k), Workload::ListAppend) => json!(["r", k, result]),
        // A register holds the last value written (`null`: never written).
        (MopSpec::Read(k), Workload::RwRegister) => json!(["r", k, result.and_then(|l| l.last())]),
    }
}

/// Runs the simulation and returns its history.
pub fn simulate(o: &SimOptions) -> History {
    let mut rng = Rng::new(o.seed);
    let mut store = Store::default();
    let mut events: Vec<Event> = Vec::with_capacity(o.txns * 2);
    let mut running: Vec<Option<Running>> = (0..o.processes).map(|_| None).collect();
    // Key slots: slot i currently uses key `gen[i] * keys + i`.
    let mut generation = vec![0u64; o.keys];
    let mut writes = vec![0usize; o.keys];
    let mut next_val: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut started = 0usize;
    let mut open = 0usize;
    let push = |events: &mut Vec<Event>, p: usize, kind: EventType, value: Value| {
        let n = events.len();
        events.push(Event {
            index: Some(n as u64).into(),
            time: Some(n as u64 * 1000),
            process: Process::Client(p as u64),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
            line: n + 1,
        });
    };
    while started < o.txns || open > 0 {
        let p = rng.below(o.processes);
        match running[p].take() {
            None => {
                if started >= o.txns {
                    continue;
                }
                started += 1;
                open += 1;
                let n = o.min_mops + rng.below(o.max_mops - o.min_mops + 1);
                let mut mops = Vec::with_capacity(n);
                for _ in 0..n {
                    let slot = rng.below(o.keys);
                    let k = generation[slot] * o.keys as u64 + slot as u64;
                    if rng.below(2) == 0 {
                        let v = next_val.entry(k).or_insert(0);
                        *v += 1;
                        mops.push(MopSpec::Append(k, *v));
                        writes[slot] += 1;
                        if writes[slot] >= o.max_writes_per_key {
                            writes[slot] = 0;
                            generation[slot] += 1;
                        }
                    } else {
                        mops.push(MopSpec::Read(k));
                    }
                }
                let inv =
                    Value::Array(mops.iter().map(|m| mop_json(m, None, o.workload)).collect());
                push(&mut events, p, EventType::Invoke, inv);
                let results = vec![None; mops.len()];
                running[p] = Some(Running {
                    mops,
                    results,
                    pos: 0,
                    snapshot: None,
                    applied: false,
                });
            }
            Some(mut r) => {
                let done = match o.isolation {
                    Isolation::Serializable | Isolation::StaleReads => {
                        if !r.applied {
                            for i in 0..r.mops.len() {
                                store.seq += 1;
                                match r.mops[i] {
                                    MopSpec::Append(k, v) => {
                                        store.lists.entry(k).or_default().push((v, store.seq))
                                    }
                                    MopSpec::Read(k) => {
                                        // Only a key the transaction touches once
                                        // is read stale: a stale read next to its
                                        // own appends would be `internal` or
                                        // `incompatible-order` noise.
                                        let alone = r.mops.iter().enumerate().all(|(j, m)| {
                                            j == i
                                                || !matches!(*m, MopSpec::Append(k2, _) | MopSpec::Read(k2) if k2 == k)
                                        });
                                        let at = if o.isolation == Isolation::StaleReads && alone {
                                            let lag = rng.below(o.max_lag + 1) as u64;
                                            Some(store.seq.saturating_sub(lag))
                                        } else {
                                            None
                                        };
                                        r.results[i] = Some(store.read(k, at));
                                    }
                                }
                            }
                            r.applied = true;
                            false
                        } else {
                            true
                        }
                    }
                    Isolation::SnapshotIsolation | Isolation::ReadCommitted => {
                        if r.pos < r.mops.len() {
                            if r.snapshot.is_none() {
                                r.snapshot = Some(store.seq);
                            }
                            if let MopSpec::Read(k) = r.mops[r.pos] {
                                let at = match o.isolation {
                                    Isolation::SnapshotIsolation => r.snapshot,
                                    _ => None,
                                };
                                let mut l = store.read(k, at);
                                // Own earlier appends are visible to oneself.
                                l.extend(r.mops[..r.pos].iter().filter_map(|m| match m {
                                    MopSpec::Append(k2, v) if *k2 == k => Some(*v),
                                    _ => None,
                                }));
                                r.results[r.pos] = Some(l);
                            }
                            r.pos += 1;
                            false
                        } else {
                            true
                        }
                    }
                };
                if !done {
                    running[p] = Some(r);
                    continue;
                }
                let mut ok = true;
                if matches!(
                    o.isolation,
                    Isolation::SnapshotIsolation | Isolation::ReadCommitted
                ) {
                    let snap = r.snapshot.unwrap_or(0);
                    if o.isolation == Isolation::SnapshotIsolation {
                        ok = r.mops.iter().all(|m| match m {
                            MopSpec::Append(k, _) => {
                                store.last_write.get(k).is_none_or(|&s| s <= snap)
                            }
                            MopSpec::Read(_) => true,
                        });
                    }
                    if ok {
                        store.seq += 1;
                        for m in &r.mops {
                            if let MopSpec::Append(k, v) = *m {
                                store.lists.entry(k).or_default().push((v, store.seq));
                                store.last_write.insert(k, store.seq);
                            }
                        }
                    }
                }
                let value = Value::Array(
                    r.mops
                        .iter()
                        .zip(&r.results)
                        .map(|(m, res)| mop_json(m, res.as_ref(), o.workload))
                        .collect(),
                );
                push(
                    &mut events,
                    p,
                    if ok { EventType::Ok } else { EventType::Fail },
                    value,
                );
                open -= 1;
            }
        }
    }
    History { events }
}

/// One JSON Lines record per event, in faultline's history format.
pub fn event_json(e: &Event) -> Value {
    json!({
        "index": e.index,
        "time": e.time,
        "process": e.process.to_value(),
        "type": e.kind.as_str(),
        "f": e.f,
        "value": e.value,
    })
}
