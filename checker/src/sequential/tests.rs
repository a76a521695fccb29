//! The sequential-consistency search against a brute-force oracle on many
//! random small histories per model (`FAULTLINE_SC_CASES`, default 3,000;
//! BENCHMARKS.md records the 100,000 run), including litmus histories built
//! to be sequentially consistent on every key but not as a whole, and the
//! literature's examples.

use super::*;
use crate::history::{Event, EventType, Outcome as Out, Value};
use crate::linear::generator::Rng;
use crate::model::{CompiledOp, compile};
use serde_json::json;
use std::collections::HashSet;

fn ev(line: usize, p: u64, kind: EventType, f: &str, value: Value, key: &str) -> Event {
    Event {
        key: Some(Box::new(Value::from(key))),
        line,
        ..Event::new(Process::Client(p), kind, f, value)
    }
}

/// `(process, f, key, invoke value, ok value)`, each op invoked and
/// completed before the next row.
fn seq_hist(rows: &[(u64, &str, &str, Value, Value)]) -> History {
    let mut events = Vec::new();
    for (p, f, k, iv, ov) in rows {
        events.push(ev(
            events.len() + 1,
            *p,
            EventType::Invoke,
            f,
            iv.clone(),
            k,
        ));
        events.push(ev(events.len() + 1, *p, EventType::Ok, f, ov.clone(), k));
    }
    History { events }
}

fn no_limits() -> Options {
    Options {
        threads: 1,
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------
// Brute-force oracle.

/// One op as the oracle sees it: object, compiled op, required?, process,
/// invocation position, relaxed?
struct OOp<O> {
    key: usize,
    op: O,
    ok: bool,
    proc: Process,
    call: usize,
    relaxed: bool,
}

/// Exhaustive search over (ops done or skipped, every object's state): an
/// op may go next when every unrelaxed op of its process invoked before it
/// is done or skipped; `info` and relaxed ops may be skipped; relaxed ops
/// ignore program order. Shares only the models with the fast search.
fn oracle<M: Model>(ops: &[Operation], model: &M, relaxed: &HashSet<usize>) -> bool {
    let mut groups: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        groups.entry(model.partition(op)).or_default().push(op);
    }
    let mut models = Vec::new();
    let mut states = Vec::new();
    let mut all: Vec<OOp<M::Op>> = Vec::new();
    for (k, g) in &groups {
        let (m, init, compiled): (M, M::State, Vec<CompiledOp<M::Op>>) =
            compile(model, k, g, None).expect("compile");
        for c in compiled {
            let src = ops.iter().find(|o| o.id == c.id).expect("op");
            all.push(OOp {
                key: models.len(),
                op: c.op,
                ok: c.ok,
                proc: src.process.clone(),
                call: c.call,
                relaxed: relaxed.contains(&c.id),
            });
        }
        models.push(m);
        states.push(init);
    }
    assert!(all.len() <= 20, "oracle: too many ops");
    let must: u32 = all
        .iter()
        .enumerate()
        .filter(|(_, o)| o.ok && !o.relaxed)
        .fold(0, |m, (i, _)| m | 1 << i);
    #[allow(clippy::type_complexity)]
    fn go<M: Model>(
        models: &mut [M],
        all: &[OOp<M::Op>],
        must: u32,
        done: u32,
        states: Vec<M::State>,
        dead: &mut HashSet<(u32, Vec<M::State>)>,
    ) -> bool {
        if done & must == must {
            return true;
        }
        if dead.contains(&(done, states.clone())) {
            return false;
        }
        for (i, o) in all.iter().enumerate() {
            if done & (1 << i) != 0 {
                continue;
            }
            let blocked = !o.relaxed
                && all.iter().enumerate().any(|(j, p)| {
                    !p.relaxed && p.proc == o.proc && p.call < o.call && done & (1 << j) == 0
                });
            if blocked {
                continue;
            }
            if let Some(n) = models[o.key].step(&states[o.key], &o.op) {
                let mut s = states.clone();
                s[o.key] = n;
                if go(models, all, must, done | 1 << i, s, dead) {
                    return true;
                }
            }
            if (!o.ok || o.relaxed) && go(models, all, must, done | 1 << i, states.clone(), dead) {
                return true;
            }
        }
        dead.insert((done, states));
        false
    }
    let mut dead = HashSet::new();
    go(&mut models, &all, must, 0, states, &mut dead)
}

fn oracle_for(kind: ModelKind, spec: &ModelSpec, ops: &[Operation], r: &HashSet<usize>) -> bool {
    match kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            oracle(ops, &RegModel::new(spec), r)
        }
        ModelKind::Mutex => oracle(ops, &MutexModel::new(spec).expect("spec"), r),
        ModelKind::MultiRegister => oracle(ops, &MultiModel::new(spec), r),
        _ => oracle(ops, &CollModel::new(spec).expect("spec"), r),
    }
}

// ---------------------------------------------------------------------------
// Random histories.

const KEYS: [&str; 2] = ["x", "y"];

/// A random op (f, invoke value, ok value) for a model; values 1..=3 (0 is
/// the registers' initial value).
fn random_op(kind: ModelKind, r: &mut Rng) -> (&'static str, Value, Value) {
    let v = |r: &mut Rng| json!(1 + r.below(3));
    match kind {
        ModelKind::Register | ModelKind::CasRegister => {
            match r.below(if kind == ModelKind::Register { 2 } else { 3 }) {
                0 => {
                    let x = json!(r.below(4));
                    ("read", Value::Null, x)
                }
                1 => {
                    let x = v(r);
                    ("write", x.clone(), x)
                }
                _ => {
                    let x = json!([r.below(4), 1 + r.below(3)]);
                    ("cas", x.clone(), x)
                }
            }
        }
        ModelKind::Kv => {
            let s = ["", "a", "b", "ab", "ba"];
            match r.below(3) {
                0 => ("get", Value::Null, json!(s[r.below(5) as usize])),
                1 => {
                    let x = json!(s[1 + r.below(2) as usize]);
                    ("put", x.clone(), x)
                }
                _ => {
                    let x = json!(s[1 + r.below(2) as usize]);
                    ("append", x.clone(), x)
                }
            }
        }
        ModelKind::Set => {
            if r.below(2) == 0 {
                let x = v(r);
                ("add", x.clone(), x)
            } else {
                let m = r.below(8);
                let set: Vec<u64> = (1..=3).filter(|i| m & (1 << (i - 1)) != 0).collect();
                ("read", Value::Null, json!(set))
            }
        }
        _ => {
            if r.below(2) == 0 {
                let x = v(r);
                ("enqueue", x.clone(), x)
            } else {
                let x = if r.below(4) == 0 { Value::Null } else { v(r) };
                ("dequeue", Value::Null, x)
            }
        }
    }
}

type Open = (&'static str, Value, Value, &'static str);

/// Up to `max_ops` ops over two keys on up to 4 processes; each ends ok,
/// fail (cas, dequeue) or info (the process then takes a new id).
fn random_history(kind: ModelKind, r: &mut Rng, max_ops: usize) -> History {
    let n_ops = 1 + r.below(max_ops as u64) as usize;
    let procs = 1 + r.below(4) as usize;
    let mut open: Vec<Option<Open>> = vec![None; procs];
    let mut pid: Vec<u64> = (0..procs as u64).collect();
    let mut events = Vec::new();
    let mut invoked = 0;
    loop {
        let busy = open.iter().filter(|o| o.is_some()).count();
        if invoked >= n_ops && busy == 0 {
            break;
        }
        let p = r.below(procs as u64) as usize;
        let line = events.len() + 1;
        match open[p].take() {
            None => {
                if invoked >= n_ops {
                    continue;
                }
                invoked += 1;
                let (f, iv, ov) = random_op(kind, r);
                let k = KEYS[r.below(2) as usize];
                events.push(ev(line, pid[p], EventType::Invoke, f, iv.clone(), k));
                open[p] = Some((f, iv, ov, k));
            }
            Some((f, iv, ov, k)) => {
                let roll = r.below(12);
                if roll == 0 {
                    events.push(ev(line, pid[p], EventType::Info, f, json!("timed-out"), k));
                    pid[p] += procs as u64;
                } else if roll == 1 && matches!(f, "cas" | "dequeue") {
                    events.push(ev(line, pid[p], EventType::Fail, f, iv, k));
                } else {
                    events.push(ev(line, pid[p], EventType::Ok, f, ov, k));
                }
            }
        }
    }
    History { events }
}

/// A litmus history in the store-buffer / message-passing family: 2–3
/// processes each write (add, enqueue) unique values to the keys and read
/// (dequeue) them back, each read seeing either the initial state or a
/// value some process wrote to that key. Such reads are usually explained
/// key by key, but the cross-key program orders often admit no single
/// order: the histories that tell a local check from a global one.
fn litmus_history(kind: ModelKind, r: &mut Rng) -> History {
    let procs = 2 + r.below(2);
    let mut progs: Vec<Vec<(bool, &'static str)>> = Vec::new();
    for _ in 0..procs {
        let n = 1 + r.below(3) as usize;
        progs.push(
            (0..n)
                .map(|_| (r.below(2) == 0, KEYS[r.below(2) as usize]))
                .collect(),
        );
    }
    // Unique values: process p's j-th write is 10 * (p + 1) + j.
    let written: Vec<(&str, u64)> = progs
        .iter()
        .enumerate()
        .flat_map(|(p, prog)| {
            prog.iter()
                .enumerate()
                .filter(|(_, (w, _))| *w)
                .map(move |(j, (_, k))| (*k, 10 * (p as u64 + 1) + j as u64))
        })
        .collect();
    let mut rows: Vec<(u64, &str, &str, Value, Value)> = Vec::new();
    let mut pos = vec![0usize; procs as usize];
    while pos.iter().zip(&progs).any(|(i, p)| *i < p.len()) {
        let p = r.below(procs) as usize;
        let Some(&(is_write, k)) = progs[p].get(pos[p]) else {
            continue;
        };
        let j = pos[p];
        pos[p] += 1;
        let seen: Vec<u64> = written
            .iter()
            .filter(|(wk, _)| *wk == k)
            .map(|(_, v)| *v)
            .collect();
        let pick = |r: &mut Rng| -> Option<u64> {
            let i = r.below(seen.len() as u64 + 1) as usize;
            seen.get(i).copied()
        };
        let v = 10 * (p as u64 + 1) + j as u64;
        let row = match (kind, is_write) {
            (ModelKind::Register | ModelKind::CasRegister, true) => ("write", json!(v), json!(v)),
            (ModelKind::Register | ModelKind::CasRegister, false) => {
                ("read", Value::Null, json!(pick(r).unwrap_or(0)))
            }
            (ModelKind::Kv, true) => ("put", json!(v.to_string()), json!(v.to_string())),
            (ModelKind::Kv, false) => (
                "get",
                Value::Null,
                json!(pick(r).map_or(String::new(), |x| x.to_string())),
            ),
            (ModelKind::Set, true) => ("add", json!(v), json!(v)),
            (ModelKind::Set, false) => {
                let s: Vec<u64> = seen.iter().copied().filter(|_| r.below(2) == 0).collect();
                ("read", Value::Null, json!(s))
            }
            (_, true) => ("enqueue", json!(v), json!(v)),
            (_, false) => ("dequeue", Value::Null, json!(pick(r))),
        };
        rows.push((p as u64, row.0, k, row.1, row.2));
    }
    seq_hist(&rows)
}

fn spec_for(kind: ModelKind) -> ModelSpec {
    let mut s = ModelSpec::new(kind);
    if matches!(kind, ModelKind::Register | ModelKind::CasRegister) {
        s.initial = Some(json!(0));
    }
    s
}

fn cases() -> u64 {
    std::env::var("FAULTLINE_SC_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000)
}

fn show(h: &History) -> Vec<String> {
    h.events
        .iter()
        .map(|e| format!("{} {} {:?} {} {}", e.process, e.kind, e.key, e.f, e.value))
        .collect()
}

/// The fast search agrees with the oracle on `cases()` random histories
/// and as many litmus histories, its witnesses are minimal (by the
/// oracle), a linearizable history is never called not sequential, and
/// the litmus family really holds histories sequential per key but not as
/// a whole.
fn agrees(kind: ModelKind) {
    let n = cases();
    let base = std::env::var("FAULTLINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5c_u64);
    let spec = spec_for(kind);
    let mut counts = [0u64; 2];
    let mut local_only = 0u64;
    for case in 0..2 * n {
        let seed = base.wrapping_mul(1_000_003).wrapping_add(case) ^ (kind as u64) << 56;
        let mut r = Rng(seed);
        let litmus = case >= n;
        let h = if litmus {
            litmus_history(kind, &mut r)
        } else {
            random_history(kind, &mut r, 9)
        };
        let ops = h.pair().expect("pair").operations;
        let want = oracle_for(kind, &spec, &ops, &HashSet::new());
        counts[want as usize] += 1;
        let got = check(&ops, Some(&h), &spec, &no_limits()).expect("check");
        let want_v = if want {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        let ctx = || format!("{kind} seed {seed} (case {case}): {:#?}", show(&h));
        assert_eq!(got.verdict, want_v, "{}", ctx());
        if !want {
            let lin = crate::linear::check(&ops, Some(&h), &spec, &no_limits()).expect("lin");
            assert_eq!(
                lin.verdict,
                Verdict::Invalid,
                "linearizable, not SC? {}",
                ctx()
            );
            // The witness: invalid with everything else relaxed, and valid
            // when any one of its ops is relaxed too.
            assert_eq!(got.witness_complete, Some(true), "{}", ctx());
            let keep: HashSet<usize> = got.witness.iter().copied().collect();
            let rest: HashSet<usize> = ops
                .iter()
                .map(|o| o.id)
                .filter(|i| !keep.contains(i))
                .collect();
            assert!(
                !oracle_for(kind, &spec, &ops, &rest),
                "witness {:?} {}",
                got.witness,
                ctx()
            );
            for id in &keep {
                let mut more = rest.clone();
                more.insert(*id);
                assert!(
                    oracle_for(kind, &spec, &ops, &more),
                    "witness {:?} not minimal at {id}: {}",
                    got.witness,
                    ctx()
                );
            }
            let per_key = KEYS.iter().all(|k| {
                let sub: Vec<Operation> = ops
                    .iter()
                    .filter(|o| o.key.as_deref() == Some(&Value::from(*k)))
                    .cloned()
                    .collect();
                oracle_for(kind, &spec, &sub, &HashSet::new())
            });
            local_only += per_key as u64;
        }
    }
    assert!(
        counts[0] > n / 50 && counts[1] > n / 50,
        "{kind}: invalid/valid = {counts:?}"
    );
    assert!(
        local_only > n / 300,
        "{kind}: only {local_only} histories sequential per key but not as a whole"
    );
}

#[test]
fn oracle_register() {
    agrees(ModelKind::Register)
}
#[test]
fn oracle_cas_register() {
    agrees(ModelKind::CasRegister)
}
#[test]
fn oracle_kv() {
    agrees(ModelKind::Kv)
}
#[test]
fn oracle_set() {
    agrees(ModelKind::Set)
}
#[test]
fn oracle_unordered_queue() {
    agrees(ModelKind::UnorderedQueue)
}
#[test]
fn oracle_fifo_queue() {
    agrees(ModelKind::FifoQueue)
}

// ---------------------------------------------------------------------------
// The literature's examples.

/// Herlihy & Shavit, *The Art of Multiprocessor Programming* (2008), §3.4.1,
/// Fig. 3.8 ("sequential consistency is not compositional"): two FIFO queues
/// `p`, `q`; A enqueues x on p then on q, then dequeues y from p; B
/// enqueues y on q then on p, then dequeues x from q. Each queue alone is
/// sequentially consistent, the two together are not.
#[test]
fn herlihy_shavit_queues_are_sequential_per_queue_not_together() {
    let (a, b) = (0, 1);
    let h = seq_hist(&[
        (a, "enqueue", "p", json!("x"), json!("x")),
        (b, "enqueue", "q", json!("y"), json!("y")),
        (a, "enqueue", "q", json!("x"), json!("x")),
        (b, "enqueue", "p", json!("y"), json!("y")),
        (a, "dequeue", "p", Value::Null, json!("y")),
        (b, "dequeue", "q", Value::Null, json!("x")),
    ]);
    let spec = ModelSpec::new(ModelKind::FifoQueue);
    let r = check_history(&h, &spec, &no_limits()).expect("check");
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.witness.len(), 6, "every op is needed: {r:?}");
    assert!(r.explanation.as_deref().unwrap_or("").contains("process 0"));
    let ops = h.pair().expect("pair").operations;
    for k in ["p", "q"] {
        let sub: Vec<Operation> = ops
            .iter()
            .filter(|o| o.key.as_deref() == Some(&Value::from(k)))
            .cloned()
            .collect();
        let one = check(&sub, None, &spec, &no_limits()).expect("check");
        assert_eq!(one.verdict, Verdict::Valid, "queue {k} alone");
    }
}

/// A stale read from a follower is sequential but not linearizable: the
/// read comes after the write in real time, yet it may be ordered first.
#[test]
fn stale_read_is_sequential_not_linearizable() {
    let h = seq_hist(&[
        (0, "write", "x", json!(1), json!(1)),
        (1, "read", "x", Value::Null, json!(0)),
    ]);
    let spec = spec_for(ModelKind::Register);
    let r = check_history(&h, &spec, &no_limits()).expect("check");
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.order.len(), 2);
    let lin = crate::linear::check_history(&h, &spec, &no_limits()).expect("lin");
    assert_eq!(lin.verdict, Verdict::Invalid);
    // …but a process never reads its own write out of order.
    let h = seq_hist(&[
        (0, "write", "x", json!(1), json!(1)),
        (0, "read", "x", Value::Null, json!(0)),
    ]);
    assert_eq!(
        check_history(&h, &spec, &no_limits())
            .expect("check")
            .verdict,
        Verdict::Invalid
    );
}

/// An `info` write may take effect, or not, but only after its process's
/// earlier ops.
#[test]
fn info_ops_are_optional_after_their_program_order() {
    let mut h = seq_hist(&[
        (0, "write", "x", json!(1), json!(1)),
        (1, "read", "x", Value::Null, json!(2)),
        (1, "read", "x", Value::Null, json!(1)),
    ]);
    // Process 0 then writes 2 and times out: 2 may land before the reads.
    h.events
        .push(ev(7, 0, EventType::Invoke, "write", json!(2), "x"));
    let spec = spec_for(ModelKind::Register);
    let r = check_history(&h, &spec, &no_limits()).expect("check");
    assert_eq!(
        r.verdict,
        Verdict::Invalid,
        "2 then 1 needs 1 after 2: {r:?}"
    );
    // Reading 1 then 2 is fine.
    let mut h = seq_hist(&[
        (0, "write", "x", json!(1), json!(1)),
        (1, "read", "x", Value::Null, json!(1)),
        (1, "read", "x", Value::Null, json!(2)),
    ]);
    h.events
        .push(ev(7, 0, EventType::Invoke, "write", json!(2), "x"));
    let r = check_history(&h, &spec, &no_limits()).expect("check");
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(h.pair().expect("pair").operations[3].outcome == Out::Info);
}

/// A search cut short answers `unknown`, never `valid`.
#[test]
fn budgets_give_unknown_never_valid() {
    // Twelve writers of unique values to x and a reader that sees a, then
    // b, then a again: impossible, but only after b's write, so the search
    // must try the writers' interleavings before it (exponentially many).
    let mut rows = Vec::new();
    for i in 0..12u64 {
        for j in 0..10u64 {
            let v = json!(100 * (i + 1) + j);
            rows.push((i, "write", "x", v.clone(), v));
        }
    }
    for v in [100, 200, 100] {
        rows.push((99, "read", "x", Value::Null, json!(v)));
    }
    let h = seq_hist(&rows);
    let spec = spec_for(ModelKind::Register);
    let opts = Options {
        time_limit: Some(Duration::from_millis(20)),
        ..no_limits()
    };
    let r = check_history(&h, &spec, &opts).expect("check");
    assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("time limit reached"));
    let opts = Options {
        memory_limit_bytes: 1,
        ..no_limits()
    };
    let r = check_history(&h, &spec, &opts).expect("check");
    assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("memory limit reached"));
}
