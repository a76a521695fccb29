//! Seeded operation generators.
//!
//! One generator serves all workers of a test (the runner holds it behind a
//! mutex), so values that must be unique (appends, set elements, queue
//! items) come from one counter, and the sequence of operations is a pure
//! function of the options and the seed.

use crate::{Op, Value, Workload, WorkloadOptions};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

/// Produces the operations of one workload.
pub trait Generator: Send {
    /// The next operation for the main phase.
    fn next_op(&mut self) -> Op;

    /// Operations to run once, after faults are healed (final reads).
    /// Empty for workloads that do not need them.
    fn final_ops(&self) -> Vec<Op> {
        Vec::new()
    }
}

/// A generator for `opts.workload`, seeded with `seed`.
pub fn generator(opts: &WorkloadOptions, seed: u64) -> Box<dyn Generator> {
    let rng = StdRng::seed_from_u64(seed);
    let keys = KeyPool::new(opts.active_keys, opts.ops_per_key);
    match opts.workload {
        Workload::Register if opts.register_blind_writes => Box::new(BlindRegisterGen {
            rng,
            keys: u64::from(opts.active_keys.max(1)),
            next_value: 0,
        }),
        Workload::Register => Box::new(RegisterGen { rng, keys }),
        Workload::ListAppend | Workload::RwRegister => Box::new(TxnGen {
            rng,
            keys,
            append: opts.workload == Workload::ListAppend,
            max_len: opts.max_txn_len.max(1),
            next_value: 0,
        }),
        Workload::Set if opts.set_removes => Box::new(OrSetGen { rng }),
        Workload::Set => Box::new(SetGen { next: 0 }),
        Workload::Bank => Box::new(BankGen {
            rng,
            accounts: opts.accounts.max(2),
        }),
        Workload::Counter => Box::new(CounterGen { rng }),
        Workload::Queue => Box::new(QueueGen { rng, next: 0 }),
        Workload::UniqueIds => Box::new(UniqueIdsGen),
        Workload::Lock => Box::new(LockGen { rng }),
        Workload::Saga => Box::new(SagaGen { rng, next: 0 }),
        Workload::Fenced => Box::new(FencedGen { rng, next: 0 }),
        Workload::Siblings => Box::new(SiblingsGen { rng, next: 0 }),
        Workload::Election => Box::new(ElectionGen),
        Workload::Membership => Box::new(MembershipGen),
    }
}

/// Jepsen's "independent keys": a few keys are active at once; a key that
/// has had its share of operations is retired and a fresh key takes its
/// slot, so each key's sub-history stays small.
struct KeyPool {
    /// (key, operations so far)
    active: Vec<(u64, u32)>,
    next_key: u64,
    limit: u32,
}

impl KeyPool {
    fn new(n: u32, limit: u32) -> KeyPool {
        let n = u64::from(n.max(1));
        KeyPool {
            active: (0..n).map(|k| (k, 0)).collect(),
            next_key: n,
            limit: limit.max(1),
        }
    }

    /// Picks an active key and counts one use of it.
    fn pick(&mut self, rng: &mut StdRng) -> u64 {
        let slot = rng.random_range(0..self.active.len());
        self.use_slot(slot)
    }

    fn use_slot(&mut self, slot: usize) -> u64 {
        let (key, used) = &mut self.active[slot];
        let k = *key;
        *used += 1;
        if *used >= self.limit {
            self.active[slot] = (self.next_key, 0);
            self.next_key += 1;
        }
        k
    }
}

struct RegisterGen {
    rng: StdRng,
    keys: KeyPool,
}

impl Generator for RegisterGen {
    fn next_op(&mut self) -> Op {
        let key = Some(json!(self.keys.pick(&mut self.rng)));
        // Few distinct values, so reads and CASes often match (as Jepsen).
        match self.rng.random_range(0..3u8) {
            0 => Op::new("read", key, Value::Null),
            1 => Op::new("write", key, json!(self.rng.random_range(0..5u8))),
            _ => Op::new(
                "cas",
                key,
                json!([self.rng.random_range(0..5u8), self.rng.random_range(0..5u8)]),
            ),
        }
    }
}

/// Reads and blind writes of unique values over keys `0..keys`, each key
/// read once more at the end.
struct BlindRegisterGen {
    rng: StdRng,
    keys: u64,
    next_value: u64,
}

impl Generator for BlindRegisterGen {
    fn next_op(&mut self) -> Op {
        let key = Some(json!(self.rng.random_range(0..self.keys)));
        if self.rng.random_bool(0.5) {
            Op::new("read", key, Value::Null)
        } else {
            self.next_value += 1;
            Op::new("write", key, json!(self.next_value))
        }
    }

    fn final_ops(&self) -> Vec<Op> {
        (0..self.keys)
            .map(|k| Op::new("read", Some(json!(k)), Value::Null))
            .collect()
    }
}

/// list-append (`append`/`r`) and rw-register (`w`/`r`) transactions.
struct TxnGen {
    rng: StdRng,
    keys: KeyPool,
    append: bool,
    max_len: u32,
    /// Written values are unique across all keys (hence per key too), which
    /// is what lets Elle recover the version order.
    next_value: u64,
}

impl Generator for TxnGen {
    fn next_op(&mut self) -> Op {
        let len = self.rng.random_range(1..=self.max_len);
        let mut mops = Vec::with_capacity(len as usize);
        for _ in 0..len {
            if self.rng.random_bool(0.5) {
                // Reads do not count against a key's write budget.
                let slot = self.rng.random_range(0..self.keys.active.len());
                let key = self.keys.active[slot].0;
                mops.push(json!(["r", key, null]));
            } else {
                let key = self.keys.pick(&mut self.rng);
                self.next_value += 1;
                let f = if self.append { "append" } else { "w" };
                mops.push(json!([f, key, self.next_value]));
            }
        }
        Op::new("txn", None, Value::Array(mops))
    }
}

struct SetGen {
    next: u64,
}

impl Generator for SetGen {
    fn next_op(&mut self) -> Op {
        self.next += 1;
        Op::new("add", None, json!(self.next))
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("read", None, Value::Null)]
    }
}

/// Adds, removes and reads over [`OR_SET_UNIVERSE`] elements, so removes
/// meet adds they did and did not observe and elements come back.
struct OrSetGen {
    rng: StdRng,
}

/// Elements of the OR-Set workload: `0..OR_SET_UNIVERSE`.
pub const OR_SET_UNIVERSE: u32 = 64;

impl Generator for OrSetGen {
    fn next_op(&mut self) -> Op {
        let x = json!(self.rng.random_range(0..OR_SET_UNIVERSE));
        match self.rng.random_range(0..10u8) {
            0..=5 => Op::new("add", None, x),
            6..=8 => Op::new("remove", None, x),
            _ => Op::new("read", None, Value::Null),
        }
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("read", None, Value::Null)]
    }
}

struct BankGen {
    rng: StdRng,
    accounts: u32,
}

impl Generator for BankGen {
    fn next_op(&mut self) -> Op {
        if self.rng.random_bool(0.5) {
            return Op::new("read", None, Value::Null);
        }
        let from = self.rng.random_range(0..self.accounts);
        // A different account: shift by 1..accounts.
        let to = (from + self.rng.random_range(1..self.accounts)) % self.accounts;
        let amount = self.rng.random_range(1..=5u32);
        Op::new(
            "transfer",
            None,
            json!({"from": from, "to": to, "amount": amount}),
        )
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("read", None, Value::Null)]
    }
}

struct CounterGen {
    rng: StdRng,
}

impl Generator for CounterGen {
    fn next_op(&mut self) -> Op {
        if self.rng.random_bool(0.5) {
            Op::new("read", None, Value::Null)
        } else {
            Op::new("add", None, json!(self.rng.random_range(1..=5u32)))
        }
    }
}

struct QueueGen {
    rng: StdRng,
    next: u64,
}

impl Generator for QueueGen {
    fn next_op(&mut self) -> Op {
        if self.rng.random_bool(0.5) {
            self.next += 1;
            Op::new("enqueue", None, json!(self.next))
        } else {
            Op::new("dequeue", None, Value::Null)
        }
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("drain", None, Value::Null)]
    }
}

struct UniqueIdsGen;

impl Generator for UniqueIdsGen {
    fn next_op(&mut self) -> Op {
        Op::new("generate", None, Value::Null)
    }
}

struct LockGen {
    rng: StdRng,
}

impl Generator for LockGen {
    fn next_op(&mut self) -> Op {
        // Random acquire/release: a release by a process that does not hold
        // the lock fails, which the mutex checker understands.
        let f = if self.rng.random_bool(0.5) {
            "acquire"
        } else {
            "release"
        };
        Op::new(f, None, Value::Null)
    }
}

/// Orders, restocks and top-ups (docs/saga.md), ids unique among all
/// three (each is an idempotency key). 3 customers and 3 items, so orders
/// contend. Each saga step meets its business failure at a fixed rate,
/// whatever the balances: one order in 20 asks for more credit than any
/// customer has (refused at reserve-credit), one in 20 for more items than
/// any stock (refused at book-stock, credit refunded), and destination 0
/// (one in five) has no route (refused at ship, stock and credit given
/// back). Restocks and top-ups put back a little more than the committed
/// orders take (about 1.15 times), so the services never run dry and
/// every step, ship included, keeps running for the whole run.
struct SagaGen {
    rng: StdRng,
    next: u64,
}

/// Far beyond any customer's credit or item's stock: an order asking this
/// much is refused by its step however the balances went.
pub const SAGA_TOO_MUCH: u32 = 1_000_000;

impl Generator for SagaGen {
    fn next_op(&mut self) -> Op {
        self.next += 1;
        let id = self.next;
        let r = &mut self.rng;
        match r.random_range(0..20u8) {
            0 => Op::new(
                "restock",
                None,
                json!({"id": id, "item": r.random_range(0..3u32), "qty": r.random_range(20..=40u32)}),
            ),
            1 => Op::new(
                "top-up",
                None,
                json!({"id": id, "customer": r.random_range(0..3u32),
                       "amount": r.random_range(150..=300u32)}),
            ),
            _ => {
                let (mut qty, mut amount) = (r.random_range(1..=3u32), r.random_range(1..=30u32));
                match r.random_range(0..20u8) {
                    0 => amount = SAGA_TOO_MUCH,
                    1 => qty = SAGA_TOO_MUCH,
                    _ => {}
                }
                Op::new(
                    "order",
                    None,
                    json!({"saga": id, "customer": r.random_range(0..3u32),
                           "item": r.random_range(0..3u32), "qty": qty, "amount": amount,
                           "dest": r.random_range(0..5u32)}),
                )
            }
        }
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("read", None, Value::Null)]
    }
}

/// The `fenced` workload's lease: long enough to outlast an election
/// (0.5–1 s with faultline-node's defaults), short enough that a pause
/// of a few seconds outlasts it.
pub const FENCED_LEASE_MS: u64 = 1500;

/// The `fenced` workload's locks (each guards the storage key of the
/// same number): few, so clients contend.
pub const FENCED_KEYS: u64 = 2;

/// Leases and fenced writes (docs/lock.md). Each client keeps its own
/// tokens, so an op it cannot do (a write without a lease) fails at once
/// without touching the system.
struct FencedGen {
    rng: StdRng,
    next: i64,
}

impl Generator for FencedGen {
    fn next_op(&mut self) -> Op {
        let key = Some(json!(self.rng.random_range(0..FENCED_KEYS)));
        match self.rng.random_range(0..20) {
            0..6 => Op::new("acquire", key, json!({"lease_ms": FENCED_LEASE_MS})),
            6..15 => {
                self.next += 1;
                Op::new("write", key, json!(self.next))
            }
            15..17 => Op::new("renew", key, json!({"lease_ms": FENCED_LEASE_MS})),
            _ => Op::new("release", key, Value::Null),
        }
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("read", None, Value::Null)]
    }
}

/// The `siblings` workload's keys: few, so writes are concurrent and
/// siblings appear.
pub const SIBLING_KEYS: u64 = 3;

/// Reads and writes of unique values over [`SIBLING_KEYS`] keys (the
/// Dynamo store, docs/dynamo.md). The client writes with the causal
/// context of its process' last read of the key; a final read of each key.
struct SiblingsGen {
    rng: StdRng,
    next: i64,
}

impl Generator for SiblingsGen {
    fn next_op(&mut self) -> Op {
        let key = Some(json!(self.rng.random_range(0..SIBLING_KEYS)));
        if self.rng.random_bool(0.5) {
            Op::new("read", key, Value::Null)
        } else {
            self.next += 1;
            Op::new("write", key, json!(self.next))
        }
    }

    fn final_ops(&self) -> Vec<Op> {
        (0..SIBLING_KEYS)
            .map(|k| Op::new("read", Some(json!(k)), Value::Null))
            .collect()
    }
}

/// The `election` workload: every op asks the client's node for its view
/// of the leader (docs/election.md).
struct ElectionGen;

impl Generator for ElectionGen {
    fn next_op(&mut self) -> Op {
        Op::new("leader?", None, Value::Null)
    }
}

/// Polls of the client's node's membership view (docs/swim.md); the
/// target runs the final poll on every node.
struct MembershipGen;

impl Generator for MembershipGen {
    fn next_op(&mut self) -> Op {
        Op::new("members", None, Value::Null)
    }

    fn final_ops(&self) -> Vec<Op> {
        vec![Op::new("members", None, Value::Null)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn take(w: Workload, seed: u64, n: usize) -> Vec<Op> {
        let mut g = generator(&WorkloadOptions::new(w), seed);
        (0..n).map(|_| g.next_op()).collect()
    }

    #[test]
    fn deterministic_per_seed() {
        for w in Workload::ALL {
            assert_eq!(take(w, 7, 500), take(w, 7, 500), "{w}");
        }
        // Workloads with randomness differ between seeds.
        for w in [Workload::Register, Workload::ListAppend, Workload::Bank] {
            assert_ne!(take(w, 7, 500), take(w, 8, 500), "{w}");
        }
    }

    #[test]
    fn register_ops_carry_keys_and_rotate() {
        let mut o = WorkloadOptions::new(Workload::Register);
        o.active_keys = 2;
        o.ops_per_key = 10;
        let mut g = generator(&o, 1);
        let ops: Vec<Op> = (0..100).map(|_| g.next_op()).collect();
        let mut per_key: HashMap<u64, u32> = HashMap::new();
        for op in &ops {
            let k = op.key.as_ref().and_then(Value::as_u64).expect("key");
            *per_key.entry(k).or_default() += 1;
            assert!(["read", "write", "cas"].contains(&op.f.as_str()));
        }
        assert!(per_key.values().all(|&n| n <= 10), "{per_key:?}");
        assert!(per_key.len() >= 10);
    }

    #[test]
    fn blind_register_writes_are_unique_and_every_key_is_read_at_the_end() {
        let mut o = WorkloadOptions::new(Workload::Register);
        o.register_blind_writes = true;
        o.active_keys = 3;
        let mut g = generator(&o, 7);
        let mut written = HashSet::new();
        for _ in 0..1000 {
            let op = g.next_op();
            let k = op.key.as_ref().and_then(Value::as_u64).expect("key");
            assert!(k < 3, "{op:?}");
            match op.f.as_str() {
                "read" => assert!(op.value.is_null()),
                "write" => assert!(written.insert(op.value.to_string()), "{op:?}"),
                f => panic!("{f}"),
            }
        }
        assert!(written.len() > 400);
        let finals: Vec<u64> = g
            .final_ops()
            .iter()
            .map(|o| o.key.as_ref().and_then(Value::as_u64).expect("key"))
            .collect();
        assert_eq!(finals, [0, 1, 2]);
    }

    #[test]
    fn txn_values_unique_and_lengths_bounded() {
        for (w, f) in [
            (Workload::ListAppend, "append"),
            (Workload::RwRegister, "w"),
        ] {
            let ops = take(w, 3, 1000);
            let mut seen = HashSet::new();
            for op in &ops {
                assert_eq!(op.f, "txn");
                let mops = op.value.as_array().unwrap();
                assert!((1..=5).contains(&mops.len()));
                for m in mops {
                    let m = m.as_array().unwrap();
                    match m[0].as_str().unwrap() {
                        "r" => assert!(m[2].is_null()),
                        x => {
                            assert_eq!(x, f);
                            assert!(seen.insert((m[1].clone().to_string(), m[2].to_string())));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn final_reads_only_where_needed() {
        for w in Workload::ALL {
            let g = generator(&WorkloadOptions::new(w), 0);
            assert_eq!(!g.final_ops().is_empty(), w.needs_final_read(), "{w}");
        }
    }

    #[test]
    fn or_set_variant_removes_within_a_small_universe() {
        let mut o = WorkloadOptions::new(Workload::Set);
        o.set_removes = true;
        let mut g = generator(&o, 4);
        let ops: Vec<Op> = (0..1000).map(|_| g.next_op()).collect();
        let count = |f: &str| ops.iter().filter(|op| op.f == f).count();
        assert!(count("add") > 400 && count("remove") > 200 && count("read") > 50);
        assert!(ops.iter().all(|op| {
            op.value.is_null()
                || op
                    .value
                    .as_u64()
                    .is_some_and(|x| x < u64::from(OR_SET_UNIVERSE))
        }));
        assert_eq!(g.final_ops(), vec![Op::new("read", None, Value::Null)]);
        // Off by default: the plain set workload is unchanged.
        assert!(take(Workload::Set, 4, 100).iter().all(|op| op.f == "add"));
    }

    /// Orders, restocks and top-ups with unique ids; supplies outweigh
    /// what committable orders take (so stock and credit never run out),
    /// and each step's business failure has its share of orders.
    #[test]
    fn saga_mix_resupplies_and_fails_every_step() {
        let ops = take(Workload::Saga, 1, 20_000);
        let mut ids = HashSet::new();
        let (mut stock_in, mut stock_out, mut credit_in, mut credit_out) = (0, 0, 0, 0);
        let mut refused = [0; 3];
        for op in &ops {
            let v = &op.value;
            let id = v["saga"].as_u64().or(v["id"].as_u64()).expect("id");
            assert!(ids.insert(id), "{op:?}");
            let n = |k: &str| v[k].as_u64().expect(k);
            match op.f.as_str() {
                "restock" => stock_in += n("qty"),
                "top-up" => credit_in += n("amount"),
                "order" if n("amount") == u64::from(SAGA_TOO_MUCH) => refused[0] += 1,
                "order" if n("qty") == u64::from(SAGA_TOO_MUCH) => refused[1] += 1,
                "order" if n("dest") == 0 => refused[2] += 1,
                "order" => {
                    stock_out += n("qty");
                    credit_out += n("amount");
                }
                f => panic!("{f}"),
            }
        }
        assert!(
            stock_in > stock_out && stock_in < 2 * stock_out,
            "{stock_in} {stock_out}"
        );
        assert!(
            credit_in > credit_out && credit_in < 2 * credit_out,
            "{credit_in} {credit_out}"
        );
        assert!(refused.iter().all(|&r| r > 500), "{refused:?}");
    }

    #[test]
    fn bank_transfers_between_distinct_accounts() {
        for op in take(Workload::Bank, 9, 500) {
            if op.f == "transfer" {
                assert_ne!(op.value["from"], op.value["to"]);
                assert!(op.value["to"].as_u64().unwrap() < 5);
            }
        }
    }
}
