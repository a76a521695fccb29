//! Seeded operation generators.
//!
//! One generator serves all workers of a test (the runner holds it behind a
//! mutex), so values that must be unique (appends, set elements, queue
//! items) come from one counter, and the sequence of operations is a pure
//! function of the options and the seed.

use crate::{Op, Outcome, Value, Workload, WorkloadOptions};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::time::Duration;

/// Produces the operations of one workload.
pub trait Generator: Send {
    /// The next operation for the main phase.
    fn next_op(&mut self) -> Op;

    /// The next operation for client `worker` (the runner's worker index,
    /// which keeps it across process ids) at `now` (since the test
    /// started). Generators that track what each client holds (fenced)
    /// override it; the default is [`Generator::next_op`].
    fn next_op_for(&mut self, worker: usize, now: Duration) -> Op {
        let _ = (worker, now);
        self.next_op()
    }

    /// How `worker`'s `op` ended (`value`: the `ok` completion's value),
    /// at `now`. After an `info` the worker has a fresh process and a
    /// fresh client, so anything it held is gone. Default: ignored.
    fn completed(
        &mut self,
        worker: usize,
        op: &Op,
        outcome: Outcome,
        value: &Value,
        now: Duration,
    ) {
        let _ = (worker, op, outcome, value, now);
    }

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
        Workload::Lock => Box::new(LockGen {
            rng,
            holding: Vec::new(),
        }),
        Workload::Saga => Box::new(SagaGen { rng, next: 0 }),
        Workload::Fenced => Box::new(FencedGen {
            rng,
            next: 0,
            clients: Vec::new(),
            accepted: [None; FENCED_KEYS as usize],
        }),
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

/// Acquire and release, following which clients hold the lock: a holder
/// releases, the others acquire. A release by a client that does not hold
/// the lock is sent on purpose one time in ten (the lock must refuse it,
/// and the mutex checker judges it), not half the time: one generator for
/// all clients made four ops in five fail (issue #24's audit).
struct LockGen {
    rng: StdRng,
    /// Per worker: does it hold the lock (its last acquire was `ok` and it
    /// has not released since)?
    holding: Vec<bool>,
}

impl LockGen {
    fn holds(&mut self, worker: usize) -> &mut bool {
        if self.holding.len() <= worker {
            self.holding.resize(worker + 1, false);
        }
        &mut self.holding[worker]
    }
}

impl Generator for LockGen {
    fn next_op(&mut self) -> Op {
        // Without a client to follow: as if client 0 asked.
        self.next_op_for(0, Duration::ZERO)
    }

    fn next_op_for(&mut self, worker: usize, _: Duration) -> Op {
        let stray_release = self.rng.random_range(0..10u8) == 0;
        let f = if *self.holds(worker) || stray_release {
            "release"
        } else {
            "acquire"
        };
        Op::new(f, None, Value::Null)
    }

    fn completed(&mut self, worker: usize, op: &Op, outcome: Outcome, _: &Value, _: Duration) {
        let held = self.holds(worker);
        match (op.f.as_str(), outcome) {
            ("acquire", Outcome::Ok) => *held = true,
            // An `info` leaves a fresh process holding nothing; a release,
            // whatever its answer, ends what this client thought it held.
            (_, Outcome::Info) | ("release", _) => *held = false,
            _ => {}
        }
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

/// How long before its lease runs out (by the generator's clock, which
/// starts when the acquire or renew was handed to the client, before the
/// client's own clock starts) a client stops being sent writes: the
/// time an operation may take to reach the client's own lease check.
const FENCED_LEASE_MARGIN: Duration = Duration::from_millis(200);

/// A client sends at most one stale-token write per this interval.
pub const FENCED_STALE_EVERY: Duration = Duration::from_secs(2);

/// What the fenced generator knows of one client (a runner worker), per
/// key (lock).
#[derive(Clone, Default)]
struct FencedClient {
    /// The lease it certainly still holds: (token, runs out at).
    lease: [Option<(u64, Duration)>; FENCED_KEYS as usize],
    /// The token of its last grant (acquire or renew `ok`), kept after
    /// the lease ran out or was released: the stale token it may send.
    last_token: [Option<u64>; FENCED_KEYS as usize],
    /// When it was last handed an acquire or renew of the key.
    asked: [Duration; FENCED_KEYS as usize],
    /// No stale write before this.
    next_stale: Duration,
}

/// Leases and fenced writes (docs/lock.md). The generator follows each
/// client's leases from the completions, so a client is sent writes,
/// renews and releases only while it holds a lease (by a clock that
/// starts before the client's own), and acquires otherwise: nothing it
/// would refuse locally in a loop. Where the checker needs one, it sends
/// a stale-token write on purpose (at most one per client per
/// [`FENCED_STALE_EVERY`]): a client without a lease whose last token is
/// below one the storage has acknowledged for the key writes with that
/// token ([`Op::expect_refusal`]). A storage that checks tokens must
/// refuse it; a client that skips fencing gets it accepted, which the
/// checker reports as `stale-write-accepted`.
struct FencedGen {
    rng: StdRng,
    next: i64,
    clients: Vec<FencedClient>,
    /// Per key, the highest token of an acknowledged write.
    accepted: [Option<u64>; FENCED_KEYS as usize],
}

impl FencedGen {
    fn client(&mut self, worker: usize) -> &mut FencedClient {
        if self.clients.len() <= worker {
            self.clients.resize(worker + 1, FencedClient::default());
        }
        &mut self.clients[worker]
    }

    fn write(&mut self, key: u64) -> Op {
        self.next += 1;
        Op::new("write", Some(json!(key)), json!(self.next))
    }
}

impl Generator for FencedGen {
    fn next_op(&mut self) -> Op {
        // Without a client to follow: as if client 0 asked at time zero.
        self.next_op_for(0, Duration::ZERO)
    }

    fn next_op_for(&mut self, worker: usize, now: Duration) -> Op {
        let key = self.rng.random_range(0..FENCED_KEYS);
        let k = key as usize;
        let lease = json!({"lease_ms": FENCED_LEASE_MS});
        let roll = self.rng.random_range(0..20u8);
        let accepted = self.accepted[k];
        let c = self.client(worker);
        if c.lease[k].is_some_and(|(_, until)| now + FENCED_LEASE_MARGIN >= until) {
            c.lease[k] = None;
        }
        if c.lease[k].is_some() {
            return match roll {
                0..14 => self.write(key),
                14..17 => {
                    c.asked[k] = now;
                    Op::new("renew", Some(json!(key)), lease)
                }
                _ => Op::new("release", Some(json!(key)), Value::Null),
            };
        }
        let stale = matches!((c.last_token[k], accepted), (Some(t), Some(a)) if t < a);
        if stale && now >= c.next_stale {
            c.next_stale = now + FENCED_STALE_EVERY;
            let mut op = self.write(key);
            op.expect_refusal = true;
            return op;
        }
        c.asked[k] = now;
        Op::new("acquire", Some(json!(key)), lease)
    }

    fn completed(&mut self, worker: usize, op: &Op, outcome: Outcome, value: &Value, _: Duration) {
        let Some(key) = op
            .key
            .as_ref()
            .and_then(Value::as_u64)
            .filter(|k| *k < FENCED_KEYS)
        else {
            return;
        };
        let k = key as usize;
        if op.f == "write" && outcome == Outcome::Ok {
            if let Some(t) = value.get("token").and_then(Value::as_u64) {
                self.accepted[k] = self.accepted[k].max(Some(t));
            }
            return;
        }
        let c = self.client(worker);
        match (op.f.as_str(), outcome) {
            // A fresh process and client: it holds nothing, and its
            // grants are not the new process's (the checker judges a
            // write by its own process's last grant).
            (_, Outcome::Info) => *c = FencedClient::default(),
            ("acquire" | "renew", Outcome::Ok) => {
                let token = value.get("token").and_then(Value::as_u64);
                let ms = value
                    .get("lease_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(FENCED_LEASE_MS);
                c.lease[k] = token.map(|t| (t, c.asked[k] + Duration::from_millis(ms)));
                c.last_token[k] = token.or(c.last_token[k]);
            }
            // The client drops its lease when a renew fails, when it
            // releases, and when the storage refuses its token.
            ("renew" | "release", _) | ("write", Outcome::Fail) => c.lease[k] = None,
            _ => {}
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
    fn lock_holders_release_and_the_others_acquire() {
        let mut g = generator(&WorkloadOptions::new(Workload::Lock), 3);
        let t = Duration::ZERO;
        let acquire = Op::new("acquire", None, Value::Null);
        let release = Op::new("release", None, Value::Null);
        // Worker 1 holds the lock: its next op is a release, every time.
        g.completed(1, &acquire, Outcome::Ok, &Value::Null, t);
        assert_eq!(g.next_op_for(1, t).f, "release");
        // Worker 2 does not: mostly acquires, a stray release one in ten.
        let ops: Vec<Op> = (0..1000).map(|_| g.next_op_for(2, t)).collect();
        let stray = ops.iter().filter(|o| o.f == "release").count();
        assert!(
            (50..=150).contains(&stray),
            "{stray} stray releases of 1000"
        );
        // A release (whatever its answer) or an info ends the hold.
        g.completed(1, &release, Outcome::Fail, &Value::Null, t);
        let after: Vec<Op> = (0..50).map(|_| g.next_op_for(1, t)).collect();
        assert!(after.iter().any(|o| o.f == "acquire"));
        g.completed(3, &acquire, Outcome::Ok, &Value::Null, t);
        g.completed(3, &acquire, Outcome::Info, &Value::Null, t);
        let after: Vec<Op> = (0..50).map(|_| g.next_op_for(3, t)).collect();
        assert!(after.iter().any(|o| o.f == "acquire"));
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Grants `worker` the lease on every key it asks for, with `token`.
    fn grant(g: &mut dyn Generator, worker: usize, op: &Op, token: u64, now: Duration) {
        let v = json!({"token": token, "lease_ms": FENCED_LEASE_MS});
        g.completed(worker, op, Outcome::Ok, &v, now);
    }

    #[test]
    fn fenced_client_without_a_lease_is_only_asked_to_acquire() {
        let mut g = generator(&WorkloadOptions::new(Workload::Fenced), 5);
        for i in 0..1000 {
            let op = g.next_op_for(0, ms(i));
            assert_eq!(op.f, "acquire", "{op:?}");
            // Refused: the lock is held by someone else.
            g.completed(0, &op, Outcome::Fail, &Value::Null, ms(i));
        }
    }

    #[test]
    fn fenced_holder_writes_renews_releases_until_its_lease_runs_out() {
        let mut g = generator(&WorkloadOptions::new(Workload::Fenced), 6);
        // Acquire both keys at t = 0.
        let mut held = HashSet::new();
        while held.len() < FENCED_KEYS as usize {
            let op = g.next_op_for(0, ms(0));
            assert_eq!(op.f, "acquire");
            grant(g.as_mut(), 0, &op, 1, ms(10));
            held.insert(op.key.clone());
        }
        let mut fs = HashMap::new();
        for _ in 0..500 {
            let op = g.next_op_for(0, ms(100));
            *fs.entry(op.f.clone()).or_insert(0) += 1;
            if op.f == "write" {
                assert!(!op.expect_refusal);
            }
        }
        assert!(!fs.contains_key("acquire"), "{fs:?}");
        assert!(
            fs["write"] > 300 && fs["renew"] > 30 && fs["release"] > 10,
            "{fs:?}"
        );
        // Past the lease (less the margin): back to acquiring.
        let late = ms(FENCED_LEASE_MS) - FENCED_LEASE_MARGIN;
        for _ in 0..100 {
            assert_eq!(g.next_op_for(0, late).f, "acquire");
        }
    }

    #[test]
    fn fenced_stale_write_is_sent_on_purpose_at_a_rate_and_forgotten_after_info() {
        let mut g = generator(&WorkloadOptions::new(Workload::Fenced), 7);
        let key0 = |g: &mut Box<dyn Generator>, w: usize, now: Duration| loop {
            let op = g.next_op_for(w, now);
            if op.key == Some(json!(0)) {
                return op;
            }
        };
        // Client 0 gets token 1 and releases; client 1 gets token 2 and
        // writes with it (acknowledged).
        let a = key0(&mut g, 0, ms(0));
        grant(g.as_mut(), 0, &a, 1, ms(5));
        let r = Op::new("release", Some(json!(0)), Value::Null);
        g.completed(0, &r, Outcome::Ok, &json!({"token": 1}), ms(6));
        let b = key0(&mut g, 1, ms(10));
        assert_eq!(b.f, "acquire");
        grant(g.as_mut(), 1, &b, 2, ms(15));
        // Before any write with token 2 was acknowledged: no stale write.
        for i in 0..50 {
            assert!(!key0(&mut g, 0, ms(20 + i)).expect_refusal);
        }
        let w = Op::new("write", Some(json!(0)), json!(99));
        g.completed(
            1,
            &w,
            Outcome::Ok,
            &json!({"value": 99, "token": 2}),
            ms(80),
        );
        // Now client 0 sends one stale write, then none for 2 s.
        let first = key0(&mut g, 0, ms(100));
        assert_eq!((first.f.as_str(), first.expect_refusal), ("write", true));
        for i in 0..200 {
            let op = key0(&mut g, 0, ms(101 + i));
            assert!(!op.expect_refusal, "{op:?} at {i}");
        }
        let again = key0(&mut g, 0, ms(100) + FENCED_STALE_EVERY);
        assert!(again.expect_refusal, "{again:?}");
        // After an info, client 0 is a new process with no token.
        g.completed(0, &again, Outcome::Info, &Value::Null, ms(2200));
        for i in 0..100 {
            let op = key0(&mut g, 0, ms(5000 + 10 * i));
            assert!(!op.expect_refusal, "{op:?}");
        }
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
