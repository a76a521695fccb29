//! Synthetic histories of the workloads, with injected anomalies, for the
//! workload checkers' budget tests and for `examples/gen_workload.rs`
//! (which writes them as JSON Lines for benchmarks).
//!
//! Each generator makes a sequential, valid history of about `ops`
//! operations (two events each) and then plants `anomalies` anomalies
//! the checker must find (it may count more: one planted fault can break
//! several later checks). Seeded: the same arguments give the same
//! history.

#![allow(dead_code)]

use faultline_checker::history::{Event, EventType, History, Process};
use serde_json::{Value, json};

/// xorshift64*: enough randomness for shapes of histories, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The workloads [`generate`] knows, as `faultline check --model` names them.
pub const MODELS: &[&str] = &[
    "fenced",
    "siblings",
    "detector",
    "or-set",
    "crdt-convergence",
    "lww-register",
    "bank",
    "counter",
    "queue",
    "unique-ids",
    "election",
    "lock",
];

/// Builds histories event by event; times in ns, 50 µs apart.
pub struct Builder {
    pub events: Vec<Event>,
    pub now: u64,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            events: Vec::new(),
            now: 0,
        }
    }

    pub fn ev(&mut self, p: Process, kind: EventType, f: &str, key: Option<Value>, v: Value) {
        self.now += 50_000;
        let i = self.events.len();
        self.events.push(Event {
            index: Some(i as u64).into(),
            line: i + 1,
            time: Some(self.now),
            key: key.map(Box::new),
            ..Event::new(p, kind, f, v)
        });
    }

    /// An invocation and its completion, back to back.
    pub fn op(
        &mut self,
        p: u64,
        f: &str,
        key: Option<Value>,
        call: Value,
        kind: EventType,
        ret: Value,
    ) {
        self.ev(Process::Client(p), EventType::Invoke, f, key.clone(), call);
        self.ev(Process::Client(p), kind, f, key, ret);
    }

    pub fn node(&mut self, n: &str) {
        if let Some(e) = self.events.last_mut() {
            e.node = Some(n.into());
        }
        let k = self.events.len();
        if k >= 2 {
            self.events[k - 2].node = Some(n.into());
        }
    }

    pub fn done(self) -> History {
        History {
            events: self.events,
        }
    }
}

/// A history of `model` with about `ops` operations and `anomalies`
/// planted anomalies; `None` for a model it does not know.
pub fn generate(model: &str, ops: usize, anomalies: usize, seed: u64) -> Option<History> {
    let mut rng = Rng::new(seed);
    Some(match model {
        "fenced" => fenced(ops, anomalies, &mut rng),
        "siblings" => siblings(ops, anomalies, &mut rng),
        "detector" => detector(ops, anomalies, &mut rng),
        "or-set" | "crdt-convergence" => or_set(ops, anomalies, &mut rng),
        "lww-register" => lww(ops, anomalies, &mut rng),
        "bank" => bank(ops, anomalies, &mut rng),
        "counter" => counter(ops, anomalies, &mut rng),
        "queue" => queue(ops, anomalies, &mut rng),
        "unique-ids" => unique_ids(ops, anomalies, &mut rng),
        "election" => election(ops, anomalies, &mut rng),
        "lock" => lock(ops, anomalies, &mut rng),
        _ => return None,
    })
}

/// Fenced leases, shaped like the run of issue #24 (per 1.65 M ops:
/// ~20 k grants, ~50 k writes accepted without a token, ~1.55 M failed
/// ops): processes take turns holding each of 8 keys (token per key
/// growing by one), write (mostly without their token), some writes
/// rejected (fail), release; processes without a lease mostly send writes
/// refused locally (fail); a final read of the storage's log. Anomalies cycle
/// through a stale write accepted without a token, a grant with a token
/// lower than the one before, and a grant inside another's lease.
fn fenced(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    const KEYS: u64 = 8;
    const PROCS: u64 = 16;
    let mut b = Builder::new();
    let mut token = [0u64; KEYS as usize];
    // key → holder process; process → held (key, token)
    let mut holder: [Option<u64>; KEYS as usize] = [None; KEYS as usize];
    let mut held: Vec<Option<(u64, u64)>> = vec![None; PROCS as usize];
    let mut log: Vec<Vec<Value>> = vec![Vec::new(); KEYS as usize];
    let mut next_value = 0i64;
    // Spread the planted anomalies over the run.
    let every = (ops / (anomalies + 1)).max(1);
    let mut planted = 0;
    let mut n = 0;
    while n < ops {
        n += 1;
        if planted < anomalies && n % every == 0 {
            let k = rng.below(KEYS);
            match planted % 3 {
                // A write sent without a token, accepted after newer ones.
                0 if token[k as usize] > 1 => {
                    // First a write fenced with the newest token (most
                    // writes carry none), so the stale one is judged
                    // against it.
                    next_value += 1;
                    let q = PROCS + 2000 + planted as u64;
                    let fenced = json!({"value": next_value, "token": token[k as usize]});
                    b.op(
                        q,
                        "write",
                        Some(json!(k)),
                        json!(next_value),
                        Ok,
                        fenced.clone(),
                    );
                    log[k as usize].push(fenced);
                    next_value += 1;
                    let p = PROCS + 1 + planted as u64;
                    b.op(
                        p,
                        "acquire",
                        Some(json!(k)),
                        json!({"lease_ms": 1}),
                        Ok,
                        json!({"token": token[k as usize] - 1, "lease_ms": 1}),
                    );
                    b.op(
                        p,
                        "write",
                        Some(json!(k)),
                        json!(next_value),
                        Ok,
                        json!({"value": next_value, "token": null}),
                    );
                    log[k as usize].push(json!({"value": next_value, "token": null}));
                }
                // A token lower than the last grant's.
                1 if token[k as usize] > 1 && holder[k as usize].is_none() => {
                    let p = PROCS + 1 + planted as u64;
                    b.op(
                        p,
                        "acquire",
                        Some(json!(k)),
                        json!({"lease_ms": 1}),
                        Ok,
                        json!({"token": token[k as usize] - 1, "lease_ms": 1}),
                    );
                }
                // A grant while the holder's lease certainly held.
                _ => {
                    let (p, q) = (PROCS + 1 + planted as u64, PROCS + 1000 + planted as u64);
                    token[k as usize] += 1;
                    b.op(
                        p,
                        "acquire",
                        Some(json!(k)),
                        json!({"lease_ms": 60_000}),
                        Ok,
                        json!({"token": token[k as usize], "lease_ms": 60_000}),
                    );
                    token[k as usize] += 1;
                    b.op(
                        q,
                        "acquire",
                        Some(json!(k)),
                        json!({"lease_ms": 1}),
                        Ok,
                        json!({"token": token[k as usize], "lease_ms": 1}),
                    );
                    b.op(p, "release", Some(json!(k)), Value::Null, Ok, Value::Null);
                }
            }
            planted += 1;
            continue;
        }
        let p = rng.below(PROCS);
        match held[p as usize] {
            // Most operations of a real run (issue #24: 1.5 M of 1.63 M)
            // fail: writes refused locally by a client holding no lease.
            None if rng.chance(0.985) => {
                next_value += 1;
                let k = rng.below(KEYS);
                b.op(
                    p,
                    "write",
                    Some(json!(k)),
                    json!(next_value),
                    Fail,
                    json!(next_value),
                );
                if let Some(e) = b.events.last_mut() {
                    e.error = Some(Box::new(json!("no lease held: refused by the client")));
                }
            }
            None => {
                let k = rng.below(KEYS);
                if holder[k as usize].is_some() {
                    b.op(
                        p,
                        "acquire",
                        Some(json!(k)),
                        json!({"lease_ms": 10_000}),
                        Fail,
                        json!({"lease_ms": 10_000}),
                    );
                } else {
                    token[k as usize] += 1;
                    let t = token[k as usize];
                    holder[k as usize] = Some(p);
                    held[p as usize] = Some((k, t));
                    b.op(
                        p,
                        "acquire",
                        Some(json!(k)),
                        json!({"lease_ms": 10_000}),
                        Ok,
                        json!({"token": t, "lease_ms": 10_000}),
                    );
                }
            }
            Some((k, t)) => {
                // About four operations per hold, as in the run.
                if rng.chance(0.21) {
                    holder[k as usize] = None;
                    held[p as usize] = None;
                    b.op(
                        p,
                        "release",
                        Some(json!(k)),
                        Value::Null,
                        Ok,
                        json!({"token": t}),
                    );
                } else {
                    next_value += 1;
                    if rng.chance(0.3) {
                        // Rejected (the storage saw a newer token first).
                        b.op(
                            p,
                            "write",
                            Some(json!(k)),
                            json!(next_value),
                            Fail,
                            json!(next_value),
                        );
                    } else {
                        // Most sent without a token (as a client with the
                        // skip-fencing bug, while it holds the lease: still
                        // valid).
                        let sent = if rng.chance(0.95) { None } else { Some(t) };
                        b.op(
                            p,
                            "write",
                            Some(json!(k)),
                            json!(next_value),
                            Ok,
                            json!({"value": next_value, "token": sent}),
                        );
                        log[k as usize].push(json!({"value": next_value, "token": sent}));
                    }
                }
            }
        }
    }
    let read: serde_json::Map<String, Value> = log
        .into_iter()
        .enumerate()
        .map(|(k, l)| (k.to_string(), Value::Array(l)))
        .collect();
    b.op(PROCS, "read", None, Value::Null, Ok, Value::Object(read));
    // Each client talks to one node, as in a run (and as many bytes).
    for e in &mut b.events {
        if let Process::Client(p) = e.process {
            e.node = Some(format!("n{}", p % 3 + 1).into());
        }
    }
    b.done()
}

/// When the `n`th of `ops` operations should plant one of `anomalies`.
fn plant_at(n: usize, ops: usize, anomalies: usize) -> bool {
    anomalies > 0
        && n.is_multiple_of((ops / (anomalies + 1)).max(1))
        && n / (ops / (anomalies + 1)).max(1) <= anomalies
}

const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

/// A Dynamo-style store of siblings over 4 keys: a write replaces the
/// siblings its context read and adds its value. Planted: an acknowledged
/// write the store drops at once (`lost-write` at the final reads).
fn siblings(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    const KEYS: u64 = 4;
    const PROCS: u64 = 10;
    let mut b = Builder::new();
    let mut store: Vec<Vec<i64>> = vec![Vec::new(); KEYS as usize];
    // (process, key) → the siblings its last read returned
    let mut ctx: Vec<Vec<Vec<i64>>> = vec![vec![Vec::new(); KEYS as usize]; PROCS as usize];
    let mut next = 0i64;
    for n in 1..=ops {
        let p = rng.below(PROCS);
        let k = rng.below(KEYS) as usize;
        let node = NODES[p as usize % NODES.len()];
        if rng.chance(0.5) {
            let sib = store[k].clone();
            b.op(p, "read", Some(json!(k)), Value::Null, Ok, json!(sib));
            ctx[p as usize][k] = sib;
        } else {
            next += 1;
            let seen = &ctx[p as usize][k];
            store[k].retain(|v| !seen.contains(v));
            store[k].push(next);
            b.op(p, "write", Some(json!(k)), json!(next), Ok, json!(next));
            if plant_at(n, ops, anomalies) {
                store[k].retain(|v| *v != next);
            }
        }
        b.node(node);
    }
    for (i, node) in NODES.iter().enumerate() {
        for (k, sib) in store.iter().enumerate() {
            b.op(
                100 + i as u64,
                "read",
                Some(json!(k)),
                Value::Null,
                Ok,
                json!(sib),
            );
            b.node(node);
        }
    }
    b.done()
}

/// Membership views of 5 nodes, each observer polling; every 50 000
/// operations a node is killed for 10 s (views show it dead 1 s in) and
/// healed. Planted: a view showing an up node dead while nothing is
/// failing (`false-dead`).
fn detector(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let view = |dead: Option<usize>| -> Value {
        let m: serde_json::Map<String, Value> = NODES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let st = if Some(i) == dead { "dead" } else { "alive" };
                (n.to_string(), json!({"state": st, "incarnation": 1}))
            })
            .collect();
        Value::Object(m)
    };
    // (victim, start, show dead from, heal) of the open fault
    let mut fault: Option<(usize, u64, u64)> = None;
    let mut since_fault = 0usize;
    // Planted views wait for a quiet moment (no fault for the grace, 4 s).
    let mut pending = 0usize;
    for n in 1..=ops {
        since_fault += 1;
        pending += usize::from(plant_at(n, ops, anomalies));
        if fault.is_none() && since_fault >= 50_000 {
            let victim = rng.below(NODES.len() as u64) as usize;
            b.ev(Process::Nemesis, Invoke, "start", None, Value::Null);
            b.ev(
                Process::Nemesis,
                Info,
                "start",
                None,
                json!({"fault": "kill", "node": NODES[victim]}),
            );
            // 10 s (2 s in the small histories of tests).
            let secs = if ops >= 1_000_000 { 10 } else { 2 };
            fault = Some((victim, b.now, b.now + secs * 1_000_000_000));
            since_fault = 0;
        }
        if let Some((_, _, end)) = fault
            && b.now > end
        {
            b.ev(Process::Nemesis, Invoke, "heal", None, Value::Null);
            b.ev(Process::Nemesis, Info, "heal", None, json!("healed"));
            fault = None;
            since_fault = 0;
        }
        let o = rng.below(NODES.len() as u64) as usize;
        let dead = match fault {
            Some((v, start, _)) if b.now > start + 1_000_000_000 => Some(v),
            _ => None,
        };
        let planted = pending > 0 && fault.is_none() && since_fault > 45_000;
        pending -= usize::from(planted);
        let v = if planted {
            view(Some((o + 1) % NODES.len()))
        } else {
            view(dead)
        };
        b.op(o as u64, "members", None, Value::Null, Ok, v);
        b.node(NODES[o]);
    }
    b.done()
}

/// An add-wins set replicated on 5 nodes: unique adds, removes of
/// elements whose add completed, a final read from every node. Planted:
/// an acknowledged add missing from every final read (`lost`).
fn or_set(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let mut present: Vec<i64> = Vec::new();
    let mut lost: std::collections::HashSet<i64> = Default::default();
    let mut next = 0i64;
    for n in 1..=ops {
        let p = rng.below(10);
        if present.len() > 10 && rng.chance(0.3) {
            let i = rng.below(present.len() as u64) as usize;
            let x = present.swap_remove(i);
            b.op(p, "remove", None, json!(x), Ok, json!(x));
        } else {
            next += 1;
            b.op(p, "add", None, json!(next), Ok, json!(next));
            if plant_at(n, ops, anomalies) {
                lost.insert(next);
            } else {
                present.push(next);
            }
        }
        b.node(NODES[p as usize % NODES.len()]);
    }
    let mut fin = present.clone();
    fin.sort_unstable();
    for (i, node) in NODES.iter().enumerate() {
        b.op(100 + i as u64, "read", None, Value::Null, Ok, json!(fin));
        b.node(node);
    }
    b.done()
}

/// Last-writer-wins registers over 4 keys on one linearizable copy (so
/// causally consistent), 10 processes bound to nodes, final reads from
/// every node. Planted: a process reads the value before its own write
/// (`read-your-writes`).
fn lww(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    const KEYS: u64 = 4;
    let mut b = Builder::new();
    let mut cur: Vec<Option<i64>> = vec![None; KEYS as usize];
    let mut next = 0i64;
    let mut n = 0;
    while n < ops {
        n += 1;
        let p = rng.below(10);
        let k = rng.below(KEYS) as usize;
        let node = NODES[p as usize % NODES.len()];
        if plant_at(n, ops, anomalies) && cur[k].is_some() {
            // Read v, write w, read v again: v is in w's causal past.
            let old = cur[k];
            b.op(p, "read", Some(json!(k)), Value::Null, Ok, json!(old));
            b.node(node);
            next += 1;
            cur[k] = Some(next);
            b.op(p, "write", Some(json!(k)), json!(next), Ok, json!(next));
            b.node(node);
            b.op(p, "read", Some(json!(k)), Value::Null, Ok, json!(old));
            b.node(node);
            n += 1;
            continue;
        }
        if rng.chance(0.5) {
            b.op(p, "read", Some(json!(k)), Value::Null, Ok, json!(cur[k]));
        } else {
            next += 1;
            cur[k] = Some(next);
            b.op(p, "write", Some(json!(k)), json!(next), Ok, json!(next));
        }
        b.node(node);
    }
    for (i, node) in NODES.iter().enumerate() {
        for (k, v) in cur.iter().enumerate() {
            b.op(
                100 + i as u64,
                "read",
                Some(json!(k)),
                Value::Null,
                Ok,
                json!(v),
            );
            b.node(node);
        }
    }
    b.done()
}

/// Five accounts of 100, transfers between them, reads of all balances.
/// Planted: a read whose balances sum wrong (`wrong-total`).
fn bank(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let mut bal = [100i64; 5];
    let mut pending = 0;
    for n in 1..=ops {
        let p = rng.below(10);
        pending += usize::from(plant_at(n, ops, anomalies));
        if pending == 0 && rng.chance(0.5) {
            let (from, to) = (rng.below(5) as usize, rng.below(5) as usize);
            let amount = rng.below(5) as i64 + 1;
            let t = json!({"from": from, "to": to, "amount": amount});
            if bal[from] >= amount && from != to {
                bal[from] -= amount;
                bal[to] += amount;
                b.op(p, "transfer", None, t.clone(), Ok, t);
            } else {
                b.op(p, "transfer", None, t.clone(), Fail, t);
            }
        } else {
            let mut seen = bal;
            if pending > 0 {
                pending -= 1;
                seen[0] += 7;
            }
            b.op(p, "read", None, Value::Null, Ok, json!(seen));
        }
    }
    b.done()
}

/// Adds of 1..5 and reads of the exact value. Planted: a read far above
/// anything added (`out-of-bounds`).
fn counter(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let mut v = 0i64;
    let mut pending = 0;
    for n in 1..=ops {
        let p = rng.below(10);
        pending += usize::from(plant_at(n, ops, anomalies));
        if pending == 0 && rng.chance(0.5) {
            let d = rng.below(5) as i64 + 1;
            v += d;
            b.op(p, "add", None, json!(d), Ok, json!(d));
        } else {
            let seen = if plant_at(n, ops, anomalies) {
                v + 1_000_000
            } else {
                v
            };
            b.op(p, "read", None, Value::Null, Ok, json!(seen));
        }
    }
    b.done()
}

/// A FIFO queue: unique enqueues, dequeues, a final drain. Planted: an
/// acknowledged enqueue the queue drops (`lost`).
fn queue(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let mut q: std::collections::VecDeque<i64> = Default::default();
    let mut next = 0i64;
    for n in 1..=ops {
        let p = rng.below(10);
        if !q.is_empty() && rng.chance(0.45) {
            let x = q.pop_front();
            b.op(p, "dequeue", None, Value::Null, Ok, json!(x));
        } else {
            next += 1;
            b.op(p, "enqueue", None, json!(next), Ok, json!(next));
            if !plant_at(n, ops, anomalies) {
                q.push_back(next);
            }
        }
    }
    let rest: Vec<i64> = q.into_iter().collect();
    b.op(99, "drain", None, Value::Null, Ok, json!(rest));
    b.done()
}

/// Generates of unique ids. Planted: an id returned twice (`duplicated`).
fn unique_ids(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    for n in 1..=ops {
        let p = rng.below(10);
        let id = if plant_at(n, ops, anomalies) {
            n as i64 - 1
        } else {
            n as i64
        };
        b.op(p, "generate", None, Value::Null, Ok, json!(id));
    }
    b.done()
}

/// Leader polls on 5 nodes; the leader changes (a new epoch) every 10 000
/// operations. Planted: a view naming another leader in the current
/// epoch (`split-brain`).
fn election(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let (mut epoch, mut leader) = (1u64, 0usize);
    for n in 1..=ops {
        if n % 10_000 == 0 {
            epoch += 1;
            leader = rng.below(NODES.len() as u64) as usize;
        }
        let o = rng.below(NODES.len() as u64) as usize;
        let l = if plant_at(n, ops, anomalies) {
            (leader + 1) % NODES.len()
        } else {
            leader
        };
        b.op(
            o as u64,
            "leader?",
            None,
            Value::Null,
            Ok,
            json!({"node": NODES[o], "epoch": epoch, "leader": NODES[l]}),
        );
        b.node(NODES[o]);
    }
    b.done()
}

/// A mutex taken in turn by 10 processes with growing fencing tokens.
/// Planted: a grant to another process while the lock is held
/// (`overlapping-holds`).
fn lock(ops: usize, anomalies: usize, rng: &mut Rng) -> History {
    use EventType::*;
    let mut b = Builder::new();
    let mut token = 0i64;
    let (mut n, mut pending) = (0, 0);
    while n < ops {
        let p = rng.below(10);
        token += 1;
        b.op(p, "acquire", None, Value::Null, Ok, json!({"token": token}));
        n += 1;
        pending += usize::from(plant_at(n, ops, anomalies));
        if pending > 0 {
            pending -= 1;
            token += 1;
            b.op(
                p + 10,
                "acquire",
                None,
                Value::Null,
                Ok,
                json!({"token": token}),
            );
            b.op(p + 10, "release", None, Value::Null, Ok, Value::Null);
            n += 2;
        }
        b.op(p, "release", None, Value::Null, Ok, Value::Null);
        n += 1;
        pending += usize::from(plant_at(n, ops, anomalies));
    }
    b.done()
}

/// One event as a JSON Lines record (the fields `faultline` writes).
pub fn to_json_line(e: &Event) -> String {
    let mut m = serde_json::Map::new();
    if let Some(i) = e.index.get() {
        m.insert("index".into(), json!(i));
    }
    if let Some(t) = e.time {
        m.insert("time".into(), json!(t));
    }
    m.insert("process".into(), e.process.to_value());
    m.insert("type".into(), json!(e.kind.as_str()));
    m.insert("f".into(), json!(e.f));
    if let Some(k) = &e.key {
        m.insert("key".into(), (**k).clone());
    }
    m.insert("value".into(), e.value.clone());
    if let Some(n) = &e.node {
        m.insert("node".into(), json!(n));
    }
    if let Some(x) = &e.error {
        m.insert("error".into(), (**x).clone());
    }
    Value::Object(m).to_string()
}

/// Runs `model`'s checker on a paired history within `deadline`, as
/// `faultline check --model MODEL --time-limit` does.
pub fn check(
    model: &str,
    history: &History,
    paired: &faultline_checker::history::Paired,
    deadline: &faultline_checker::Deadline,
) -> faultline_checker::WorkloadResult {
    use faultline_checker::*;
    let r = match model {
        "fenced" => Ok(fenced::check_paired(history, paired, deadline)),
        "siblings" => siblings::check_paired(history, paired, deadline),
        "detector" => Ok(detector::check_paired(
            history,
            paired,
            &detector::DetectorOptions::default(),
            deadline,
        )),
        "or-set" => crdt::or_set_paired(history, paired, deadline),
        "crdt-convergence" => crdt::convergence_paired(history, paired, None, deadline),
        "lww-register" => lww::check_paired(history, paired, deadline),
        "bank" => bank::check_paired(history, paired, &bank::BankOptions::default(), deadline),
        "counter" => counter::check_paired(history, paired, 0, deadline),
        "queue" => queue::check_paired(history, paired, &queue::QueueOptions::default(), deadline),
        "unique-ids" => unique_ids::check_paired(history, paired, deadline),
        "election" => election::check_paired(history, paired, deadline),
        "lock" => lock::check_paired(history, paired, &lock::LockOptions::default(), deadline),
        other => panic!("no checker for {other}"),
    };
    r.unwrap_or_else(|e| panic!("{model}: {e}"))
}

/// The anomaly kind each generator plants.
pub fn planted_kind(model: &str) -> &'static str {
    match model {
        "fenced" => "stale-write-accepted",
        "siblings" => "lost-write",
        "detector" => "false-dead",
        "or-set" | "crdt-convergence" => "lost",
        "lww-register" => "read-your-writes",
        "bank" => "wrong-total",
        "counter" => "out-of-bounds",
        "queue" => "lost",
        "unique-ids" => "duplicated",
        "election" => "split-brain",
        "lock" => "overlapping-holds",
        _ => "",
    }
}
