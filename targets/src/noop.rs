//! An in-process target: one in-memory store behind a mutex, so every
//! operation is atomic and the store is linearizable by construction.
//!
//! It implements every workload, which lets the runner be tested and
//! benchmarked without a real system. [`NoopTarget::with_delays`] makes some
//! operations sleep (before they take effect), to exercise timeouts.

use crate::{BoxFuture, Client, ClientOpts, Target, TargetError};
use faultline_workloads::{Completion, Op, Value, Workload, WorkloadOptions};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Makes a share of operations slow, e.g. longer than the runner's timeout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delays {
    /// Chance in `[0, 1]` that an operation sleeps.
    pub probability: f64,
    /// How long it sleeps before taking effect.
    pub delay: Duration,
    /// Seed for the per-client random choices (mixed with a client number).
    pub seed: u64,
}

/// The no-op target. Cheap to clone: clones share one store.
#[derive(Clone, Default)]
pub struct NoopTarget {
    store: Arc<Mutex<Store>>,
    delays: Option<Delays>,
    clients: Arc<AtomicU64>,
}

impl NoopTarget {
    pub fn new() -> NoopTarget {
        NoopTarget::default()
    }

    /// A noop target whose operations sometimes sleep first (see [`Delays`]).
    pub fn with_delays(delays: Delays) -> NoopTarget {
        NoopTarget {
            delays: Some(delays),
            ..NoopTarget::default()
        }
    }
}

impl Target for NoopTarget {
    fn name(&self) -> &str {
        "noop"
    }

    fn workloads(&self) -> &[Workload] {
        // The single-store workloads (not `saga`, which needs services).
        &crate::node::WORKLOADS
    }

    fn client<'a>(
        &'a self,
        _node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        let id = self.clients.fetch_add(1, Ordering::Relaxed);
        let client = NoopClient {
            id,
            store: Arc::clone(&self.store),
            workload: opts.workload.clone(),
            delays: self.delays.map(|d| {
                (
                    d,
                    StdRng::seed_from_u64(d.seed ^ id.wrapping_mul(0x9E37_79B9)),
                )
            }),
        };
        Box::pin(async move { Ok(Box::new(client) as Box<dyn Client>) })
    }
}

#[derive(Default)]
struct Store {
    /// register and rw-register values, by key's JSON text
    registers: HashMap<String, Value>,
    lists: HashMap<String, Vec<Value>>,
    set: BTreeSet<u64>,
    /// None until setup
    accounts: Option<BTreeMap<u32, i64>>,
    counter: i64,
    queue: VecDeque<Value>,
    next_id: u64,
    /// client id holding the lock
    lock: Option<u64>,
}

struct NoopClient {
    id: u64,
    store: Arc<Mutex<Store>>,
    workload: WorkloadOptions,
    delays: Option<(Delays, StdRng)>,
}

impl Client for NoopClient {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        let res = match self.store.lock() {
            Ok(mut s) => {
                if self.workload.workload == Workload::Bank && s.accounts.is_none() {
                    let balances = self.workload.initial_balances();
                    s.accounts = Some((0u32..).zip(balances).collect());
                }
                Ok(())
            }
            Err(_) => Err("noop store poisoned".to_string()),
        };
        Box::pin(async move { res })
    }

    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        let sleep = match &mut self.delays {
            Some((d, rng)) => rng
                .random_bool(d.probability.clamp(0.0, 1.0))
                .then_some(d.delay),
            None => None,
        };
        Box::pin(async move {
            if let Some(d) = sleep {
                // Sleeping before applying: if the runner gives up and drops
                // this future, the op never happens, which `info` allows.
                tokio::time::sleep(d).await;
            }
            match self.store.lock() {
                Ok(mut s) => apply(&mut s, self.id, self.workload.workload, op),
                Err(_) => Completion::info("noop store poisoned"),
            }
        })
    }
}

fn key_of(op: &Op) -> String {
    op.key.as_ref().map_or_else(String::new, Value::to_string)
}

fn apply(s: &mut Store, client: u64, workload: Workload, op: &Op) -> Completion {
    match (workload, op.f.as_str()) {
        (Workload::Register, "read") => {
            Completion::ok(s.registers.get(&key_of(op)).cloned().unwrap_or(Value::Null))
        }
        (Workload::Register, "write") => {
            s.registers.insert(key_of(op), op.value.clone());
            Completion::ok(op.value.clone())
        }
        (Workload::Register, "cas") => {
            let (Some(old), Some(new)) = (op.value.get(0), op.value.get(1)) else {
                return Completion::fail("cas value must be [old, new]");
            };
            let cur = s.registers.entry(key_of(op)).or_insert(Value::Null);
            if cur == old {
                *cur = new.clone();
                Completion::ok(op.value.clone())
            } else {
                Completion::fail("cas mismatch")
            }
        }
        (Workload::ListAppend | Workload::RwRegister, "txn") => txn(s, op),
        (Workload::Set, "add") => match op.value.as_u64() {
            Some(v) => {
                s.set.insert(v);
                Completion::ok(op.value.clone())
            }
            None => Completion::fail("set elements are unsigned integers"),
        },
        (Workload::Set, "read") => Completion::ok(json!(s.set)),
        (Workload::Bank, "transfer") => {
            let Some(acc) = s.accounts.as_mut() else {
                return Completion::fail("bank accounts not set up");
            };
            let field = |k: &str| op.value.get(k).and_then(Value::as_u64);
            let (Some(from), Some(to), Some(amount)) =
                (field("from"), field("to"), field("amount"))
            else {
                return Completion::fail("transfer needs from, to, amount");
            };
            let (from, to, amount) = (from as u32, to as u32, amount as i64);
            let (Some(&fb), true) = (acc.get(&from), acc.contains_key(&to)) else {
                return Completion::fail("no such account");
            };
            if fb < amount {
                // Jepsen's bank forbids negative balances by default.
                return Completion::fail("insufficient funds");
            }
            *acc.entry(from).or_default() -= amount;
            *acc.entry(to).or_default() += amount;
            Completion::ok(op.value.clone())
        }
        (Workload::Bank, "read") => match &s.accounts {
            // JSON object keys are strings: {"0": 20, "1": 20, …}
            Some(acc) => Completion::ok(json!(acc)),
            None => Completion::fail("bank accounts not set up"),
        },
        (Workload::Counter, "add") => match op.value.as_i64() {
            Some(d) => {
                s.counter += d;
                Completion::ok(op.value.clone())
            }
            None => Completion::fail("counter add takes an integer"),
        },
        (Workload::Counter, "read") => Completion::ok(json!(s.counter)),
        (Workload::Queue, "enqueue") => {
            s.queue.push_back(op.value.clone());
            Completion::ok(op.value.clone())
        }
        (Workload::Queue, "dequeue") => match s.queue.pop_front() {
            Some(v) => Completion::ok(v),
            None => Completion::fail("empty"),
        },
        (Workload::Queue, "drain") => Completion::ok(Value::Array(s.queue.drain(..).collect())),
        (Workload::UniqueIds, "generate") => {
            s.next_id += 1;
            Completion::ok(json!(s.next_id))
        }
        (Workload::Lock, "acquire") => match s.lock {
            None => {
                s.lock = Some(client);
                Completion::ok(Value::Null)
            }
            Some(_) => Completion::fail("held"),
        },
        (Workload::Lock, "release") => match s.lock {
            Some(c) if c == client => {
                s.lock = None;
                Completion::ok(Value::Null)
            }
            _ => Completion::fail("not held"),
        },
        (w, f) => Completion::fail(format!("noop: `{f}` is not an operation of {w}")),
    }
}

/// list-append and rw-register transactions, applied atomically.
fn txn(s: &mut Store, op: &Op) -> Completion {
    let Some(mops) = op.value.as_array() else {
        return Completion::fail("txn value must be a list of micro-ops");
    };
    // Validate everything first: a bad micro-op must not leave half a txn applied.
    let mut parsed = Vec::with_capacity(mops.len());
    for m in mops {
        match (m.get(0).and_then(Value::as_str), m.get(1), m.get(2)) {
            (Some(f @ ("append" | "w" | "r")), Some(k), Some(v)) => parsed.push((f, k, v, m)),
            _ => return Completion::fail(format!("bad micro-op {m}")),
        }
    }
    let mut out = Vec::with_capacity(mops.len());
    for (f, k, v, m) in parsed {
        let key = k.to_string();
        match f {
            "append" => s.lists.entry(key).or_default().push(v.clone()),
            "w" => {
                s.registers.insert(key, v.clone());
            }
            "r" => {
                let read = if let Some(l) = s.lists.get(&key) {
                    json!(l)
                } else {
                    s.registers.get(&key).cloned().unwrap_or(Value::Null)
                };
                out.push(json!(["r", k, read]));
                continue;
            }
            _ => unreachable!("validated above"),
        }
        out.push(m.clone());
    }
    Completion::ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_workloads::Outcome;

    async fn run(target: &NoopTarget, w: Workload, ops: &[Op]) -> Vec<Completion> {
        let opts = ClientOpts::new(WorkloadOptions::new(w));
        let mut c = target.client("n1", &opts).await.unwrap();
        c.setup().await.unwrap();
        let mut out = Vec::new();
        for op in ops {
            out.push(c.invoke(op).await);
        }
        out
    }

    #[tokio::test]
    async fn register_cas() {
        let t = NoopTarget::new();
        let k = Some(json!(1));
        let r = run(
            &t,
            Workload::Register,
            &[
                Op::new("read", k.clone(), Value::Null),
                Op::new("write", k.clone(), json!(2)),
                Op::new("cas", k.clone(), json!([2, 3])),
                Op::new("cas", k.clone(), json!([2, 4])),
                Op::new("read", k.clone(), Value::Null),
            ],
        )
        .await;
        let outcomes: Vec<Outcome> = r.iter().map(|c| c.outcome).collect();
        use Outcome::*;
        assert_eq!(outcomes, [Ok, Ok, Ok, Fail, Ok]);
        assert_eq!(r[0].value, Value::Null);
        assert_eq!(r[4].value, json!(3));
    }

    #[tokio::test]
    async fn list_append_reads_own_appends() {
        let t = NoopTarget::new();
        let r = run(
            &t,
            Workload::ListAppend,
            &[
                Op::new("txn", None, json!([["append", 1, 1], ["r", 1, null]])),
                Op::new(
                    "txn",
                    None,
                    json!([["append", 1, 2], ["r", 1, null], ["r", 2, null]]),
                ),
            ],
        )
        .await;
        assert_eq!(r[0].value, json!([["append", 1, 1], ["r", 1, [1]]]));
        assert_eq!(
            r[1].value,
            json!([["append", 1, 2], ["r", 1, [1, 2]], ["r", 2, null]])
        );
    }

    #[tokio::test]
    async fn bank_conserves_and_refuses_overdraft() {
        let t = NoopTarget::new();
        let r = run(
            &t,
            Workload::Bank,
            &[
                Op::new("transfer", None, json!({"from": 0, "to": 1, "amount": 5})),
                Op::new("transfer", None, json!({"from": 0, "to": 1, "amount": 500})),
                Op::new("read", None, Value::Null),
            ],
        )
        .await;
        assert_eq!(r[0].outcome, Outcome::Ok);
        assert_eq!(r[1].outcome, Outcome::Fail);
        let total: i64 = r[2]
            .value
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_i64)
            .sum();
        assert_eq!(total, 100);
    }

    #[tokio::test]
    async fn queue_and_lock() {
        let t = NoopTarget::new();
        let q = run(
            &t,
            Workload::Queue,
            &[
                Op::new("dequeue", None, Value::Null),
                Op::new("enqueue", None, json!(1)),
                Op::new("enqueue", None, json!(2)),
                Op::new("dequeue", None, Value::Null),
                Op::new("drain", None, Value::Null),
            ],
        )
        .await;
        assert_eq!(q[0].outcome, Outcome::Fail);
        assert_eq!(q[3].value, json!(1));
        assert_eq!(q[4].value, json!([2]));
        let l = run(
            &t,
            Workload::Lock,
            &[
                Op::new("release", None, Value::Null),
                Op::new("acquire", None, Value::Null),
                Op::new("acquire", None, Value::Null),
                Op::new("release", None, Value::Null),
            ],
        )
        .await;
        let o: Vec<Outcome> = l.iter().map(|c| c.outcome).collect();
        assert_eq!(o, [Outcome::Fail, Outcome::Ok, Outcome::Fail, Outcome::Ok]);
    }
}
