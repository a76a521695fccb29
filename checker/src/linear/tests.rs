//! Unit tests of the models and the search, and a brute-force oracle run on
//! many random small histories per model.

use super::generator::Rng;
use super::*;
use crate::history::{Event, EventType, Process};
use crate::model::{
    CollModel, Keyed, Model, ModelKind, ModelSpec, MultiModel, MutexModel, Problem, RegModel,
    compile,
};
use serde_json::json;
use std::collections::HashSet;

/// (process, type, f, value) rows; optional key as a 5th element via `evk`.
fn ev(line: usize, p: u64, kind: EventType, f: &str, value: Value, key: Option<&str>) -> Event {
    Event {
        key: key.map(|k| Box::new(Value::from(k))),
        line,
        ..Event::new(Process::Client(p), kind, f, value)
    }
}

fn hist(rows: &[(u64, &str, &str, Value)]) -> History {
    History {
        events: rows
            .iter()
            .enumerate()
            .map(|(i, (p, t, f, v))| {
                ev(
                    i + 1,
                    *p,
                    EventType::parse(t).expect("type"),
                    f,
                    v.clone(),
                    None,
                )
            })
            .collect(),
    }
}

fn verdict(h: &History, spec: &ModelSpec) -> Verdict {
    check_history(h, spec, &one_thread())
        .expect("check")
        .verdict
}

fn one_thread() -> Options {
    Options {
        threads: 1,
        ..Options::default()
    }
}

#[test]
fn formats_etcd_example_is_not_linearizable() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "write", json!(2)),
        (1, "ok", "write", json!(2)),
        (2, "invoke", "read", Value::Null),
        (2, "ok", "read", json!(1)),
    ]);
    let spec = ModelSpec::porcupine_etcd();
    let r = check_history(&h, &spec, &one_thread()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    let k = &r.keys["_"];
    assert_eq!(k.longest_prefix, vec![0, 1]);
    assert_eq!(k.failing_op, Some(2));
    assert_eq!(k.final_state.as_deref(), Some("2"));
    let ops = h.pair().unwrap().operations;
    let j = r.to_json(&ops, &h);
    assert_eq!(j["valid"], json!(false));
    assert_eq!(j["anomalies"]["nonlinearizable"][0]["op"]["line"], json!(5));
    assert!(
        j["anomalies"]["nonlinearizable"][0]["explanation"]
            .as_str()
            .unwrap()
            .contains("state 2")
    );
}

#[test]
fn formats_knossos_example_is_linearizable() {
    let mut h = hist(&[
        (0, "invoke", "read", Value::Null),
        (1, "invoke", "write", json!(3)),
        (1, "info", "write", json!(3)),
        (9, "info", "start", json!("partition")),
        (0, "ok", "read", json!(3)),
    ]);
    h.events[3].process = Process::Nemesis;
    let spec = ModelSpec::new(ModelKind::CasRegister).with_initial(json!(0));
    assert_eq!(verdict(&h, &spec), Verdict::Valid);
    // Without the unknown write the read of 3 is impossible.
    let h2 = hist(&[
        (0, "invoke", "read", Value::Null),
        (0, "ok", "read", json!(3)),
    ]);
    assert_eq!(verdict(&h2, &spec), Verdict::Invalid);
}

/// Issue #16: no completed operation (none at all, all failed, all timed
/// out) is linearizable, vacuously (Knossos, Porcupine), with a warning.
/// Before the fix the first two answered `unknown` and the third `valid`
/// without a warning.
#[test]
fn zero_completed_ops_is_valid_with_a_warning() {
    let all_failed = hist(&[
        (0, "invoke", "cas", json!([1, 2])),
        (0, "fail", "cas", json!([1, 2])),
        (1, "invoke", "cas", json!([2, 3])),
        (1, "fail", "cas", json!([2, 3])),
    ]);
    let all_info = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
    ]);
    for (name, h) in [
        ("empty", History::default()),
        ("all failed", all_failed),
        ("all info", all_info),
    ] {
        let r = check_history(&h, &ModelSpec::new(ModelKind::CasRegister), &one_thread()).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{name}");
        assert_eq!(r.warnings, vec!["no-completed-ops".to_string()], "{name}");
        let ops = h.pair().unwrap().operations;
        assert_eq!(r.to_json(&ops, &h)["warnings"], json!(["no-completed-ops"]));
    }
    // One ok op: no warning.
    let one = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
    ]);
    let r = check_history(&one, &ModelSpec::new(ModelKind::CasRegister), &one_thread()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(r.warnings.is_empty());
}

#[test]
fn stale_read_shrinks_to_the_write_and_the_read() {
    // w1 completes, then w7 and w2, then a read of 1: w1, one later write
    // and the read are the counterexample (w1 must stay: relaxed, it could
    // take effect last); the other ops are relaxed away.
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (3, "invoke", "write", json!(7)),
        (1, "invoke", "write", json!(2)),
        (1, "ok", "write", json!(2)),
        (3, "ok", "write", json!(7)),
        (4, "invoke", "read", Value::Null),
        (4, "ok", "read", json!(7)),
        (2, "invoke", "read", Value::Null),
        (2, "ok", "read", json!(1)),
    ]);
    let r = check_history(&h, &ModelSpec::new(ModelKind::CasRegister), &one_thread()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    let k = &r.keys["_"];
    // ops: 0 = write 1, 1 = write 7, 2 = write 2, 3 = read 7, 4 = read 1.
    assert_eq!(k.minimal_complete, Some(true));
    assert_eq!(k.minimal, vec![0, 1, 4], "{:?}", k.minimal_explanation);
    let why = k.minimal_explanation.as_deref().unwrap();
    assert!(why.contains("Stale read"), "{why}");
    assert!(why.contains("the value read was overwritten"), "{why}");
    let j = r.to_json(&h.pair().unwrap().operations, &h);
    let m = &j["anomalies"]["nonlinearizable"][0]["minimal"];
    assert_eq!(m[0]["line"], json!(1));
    assert_eq!(m[1]["line"], json!(3));
    assert_eq!(m[1]["returned_line"], json!(6));
    assert_eq!(m[2]["line"], json!(9));
    assert_eq!(
        j["anomalies"]["nonlinearizable"][0]["minimal_complete"],
        json!(true)
    );
}

#[test]
fn nil_read_semantics_is_an_option() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", Value::Null),
    ]);
    assert_eq!(verdict(&h, &ModelSpec::porcupine_etcd()), Verdict::Invalid);
    assert_eq!(
        verdict(&h, &ModelSpec::new(ModelKind::CasRegister)),
        Verdict::Valid
    );
}

#[test]
fn bad_op_shapes_are_errors_with_lines() {
    let h = hist(&[(0, "invoke", "cas", json!(3)), (0, "ok", "cas", json!(3))]);
    let e = check_history(&h, &ModelSpec::new(ModelKind::CasRegister), &one_thread()).unwrap_err();
    match e {
        LinearError::Model(m) => {
            assert_eq!(m.line, 1);
            assert!(m.message.contains("pair"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let h = hist(&[
        (0, "invoke", "cas", json!([1, 2])),
        (0, "ok", "cas", json!([1, 2])),
    ]);
    let e = check_history(&h, &ModelSpec::new(ModelKind::Register), &one_thread()).unwrap_err();
    assert!(e.to_string().contains("no operation `cas`"), "{e}");
    let h = hist(&[
        (0, "invoke", "txn", json!([["read", "x"]])),
        (0, "ok", "txn", json!(1)),
    ]);
    assert!(check_history(&h, &ModelSpec::new(ModelKind::MultiRegister), &one_thread()).is_err());
}

#[test]
fn kv_append_and_split() {
    let mut h = History::default();
    let rows = [
        (0, "invoke", "append", json!("x 0 1 y"), "4"),
        (1, "invoke", "get", Value::Null, "4"),
        (0, "ok", "append", json!("x 0 1 y"), "4"),
        (1, "ok", "get", json!("x 0 1 y"), "4"),
        (2, "invoke", "append", json!("z"), "4"),
        (2, "ok", "append", json!("z"), "4"),
        (3, "invoke", "get", Value::Null, "5"),
        (3, "ok", "get", json!(""), "5"),
        (3, "invoke", "get", Value::Null, "4"),
        (3, "ok", "get", json!("x 0 1 yz"), "4"),
    ];
    for (i, (p, t, f, v, k)) in rows.iter().enumerate() {
        h.events.push(ev(
            i + 1,
            *p,
            EventType::parse(t).unwrap(),
            f,
            v.clone(),
            Some(k),
        ));
    }
    let spec = ModelSpec::porcupine_kv();
    for split in [true, false] {
        let o = Options {
            split_by_key: split,
            threads: 2,
            ..Options::default()
        };
        let r = check_history(&h, &spec, &o).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "split {split}");
        assert_eq!(r.keys.len(), if split { 2 } else { 1 });
    }
    h.events[9].value = json!("zx 0 1 y");
    assert_eq!(verdict(&h, &spec), Verdict::Invalid);
}

#[test]
fn mutex_set_and_queues() {
    let m = ModelSpec::new(ModelKind::Mutex);
    let h = hist(&[
        (0, "invoke", "acquire", Value::Null),
        (0, "ok", "acquire", Value::Null),
        (1, "invoke", "acquire", Value::Null),
        (1, "ok", "acquire", Value::Null),
    ]);
    assert_eq!(verdict(&h, &m), Verdict::Invalid);
    let set = ModelSpec::new(ModelKind::Set);
    let h = hist(&[
        (0, "invoke", "add", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!([1])),
        (0, "info", "add", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!([])),
    ]);
    assert_eq!(verdict(&h, &set), Verdict::Invalid);
    let fifo = ModelSpec::new(ModelKind::FifoQueue);
    let uq = ModelSpec::new(ModelKind::UnorderedQueue);
    let h = hist(&[
        (0, "invoke", "enqueue", json!(1)),
        (0, "ok", "enqueue", json!(1)),
        (0, "invoke", "enqueue", json!(2)),
        (0, "ok", "enqueue", json!(2)),
        (1, "invoke", "dequeue", Value::Null),
        (1, "ok", "dequeue", json!(2)),
    ]);
    assert_eq!(verdict(&h, &fifo), Verdict::Invalid);
    assert_eq!(verdict(&h, &uq), Verdict::Valid);
    let multi = ModelSpec::new(ModelKind::MultiRegister).with_initial(json!({"x": 0, "y": 0}));
    let h = hist(&[
        (
            0,
            "invoke",
            "txn",
            json!([["write", "x", 1], ["write", "y", 1]]),
        ),
        (
            1,
            "invoke",
            "txn",
            json!([["read", "x", 1], ["read", "y", 0]]),
        ),
        (1, "ok", "txn", json!([["read", "x", 1], ["read", "y", 0]])),
        (
            0,
            "ok",
            "txn",
            json!([["write", "x", 1], ["write", "y", 1]]),
        ),
    ]);
    assert_eq!(verdict(&h, &multi), Verdict::Invalid);
}

#[test]
fn time_limit_gives_unknown_never_valid() {
    let h = super::generator::generate(&super::generator::GenConfig {
        seed: 7,
        ops: 3000,
        keys: 1,
        concurrency: 30,
        info_rate: 0.3,
    });
    let o = Options {
        time_limit: Some(Duration::from_millis(1)),
        threads: 1,
        ..Options::default()
    };
    let r = check_history(&h, &ModelSpec::porcupine_etcd(), &o).unwrap();
    assert_ne!(r.verdict, Verdict::Invalid);
    if r.verdict == Verdict::Unknown {
        assert!(
            r.keys["0"]
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("time limit")
        );
    }
}

#[test]
fn generated_histories_are_linearizable() {
    for seed in 0..20 {
        let h = super::generator::generate(&super::generator::GenConfig {
            seed,
            ops: 2000,
            keys: 5,
            concurrency: 12,
            info_rate: 0.05,
        });
        let r = check_history(&h, &ModelSpec::porcupine_etcd(), &Options::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "seed {seed}");
    }
}

// ---------------------------------------------------------------------------
// Brute-force oracle.

/// Exhaustive search over (linearized set, state): any unlinearized op may
/// go next unless some unlinearized ok op returned before its call; unknown
/// ops are optional. Independent of the list/stack machinery of `search`.
fn oracle<M: Model>(p: Problem<M>) -> bool {
    let (mut model, init, ops) = p;
    assert!(ops.len() <= 16);
    let all_ok: u32 = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.ok)
        .fold(0, |m, (i, _)| m | 1 << i);
    let mut dead: HashSet<(u32, M::State)> = HashSet::new();
    fn go<M: Model>(
        m: &mut M,
        ops: &[crate::model::CompiledOp<M::Op>],
        all_ok: u32,
        done: u32,
        s: M::State,
        dead: &mut HashSet<(u32, M::State)>,
    ) -> bool {
        if done & all_ok == all_ok {
            return true;
        }
        if dead.contains(&(done, s.clone())) {
            return false;
        }
        for (i, o) in ops.iter().enumerate() {
            if done & (1 << i) != 0 {
                continue;
            }
            let blocked = ops
                .iter()
                .enumerate()
                .any(|(j, p)| p.ok && done & (1 << j) == 0 && p.ret < o.call);
            if blocked {
                continue;
            }
            if let Some(n) = m.step(&s, &o.op)
                && go(m, ops, all_ok, done | 1 << i, n, dead)
            {
                return true;
            }
        }
        dead.insert((done, s));
        false
    }
    go(&mut model, &ops, all_ok, 0, init, &mut dead)
}

fn oracle_verdict(ops: &[Operation], spec: &ModelSpec) -> bool {
    let all: Vec<&Operation> = ops.iter().collect();
    match spec.kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            oracle(compile(&Keyed::new(RegModel::new(spec)), "_", &all, None).expect("compile"))
        }
        ModelKind::Mutex => oracle(
            compile(&MutexModel::new(spec).expect("spec"), "_", &all, None).expect("compile"),
        ),
        ModelKind::MultiRegister => {
            oracle(compile(&MultiModel::new(spec), "_", &all, None).expect("compile"))
        }
        _ => {
            oracle(compile(&CollModel::new(spec).expect("spec"), "_", &all, None).expect("compile"))
        }
    }
}

/// A random op (f, invoke value, ok value) for a model.
fn random_op(kind: ModelKind, r: &mut Rng) -> (&'static str, Value, Value) {
    let v = |r: &mut Rng| json!(r.below(3));
    let maybe_null = |r: &mut Rng, x: Value| if r.below(6) == 0 { Value::Null } else { x };
    match kind {
        ModelKind::Register | ModelKind::CasRegister => {
            match r.below(if kind == ModelKind::Register { 2 } else { 3 }) {
                0 => {
                    let x = v(r);
                    ("read", Value::Null, maybe_null(r, x))
                }
                1 => {
                    let x = v(r);
                    ("write", x.clone(), x)
                }
                _ => {
                    let x = json!([r.below(3), r.below(3)]);
                    ("cas", x.clone(), x)
                }
            }
        }
        ModelKind::Kv => {
            let s = ["", "a", "b", "ab", "ba", "aa"];
            match r.below(3) {
                0 => ("get", Value::Null, json!(s[r.below(6) as usize])),
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
        ModelKind::Mutex => {
            if r.below(2) == 0 {
                ("acquire", Value::Null, Value::Null)
            } else {
                ("release", Value::Null, Value::Null)
            }
        }
        ModelKind::Set => {
            if r.below(2) == 0 {
                let x = v(r);
                ("add", x.clone(), x)
            } else {
                let m = r.below(8);
                let set: Vec<u64> = (0..3).filter(|i| m & (1 << i) != 0).collect();
                ("read", Value::Null, json!(set))
            }
        }
        ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
            if r.below(2) == 0 {
                let x = v(r);
                ("enqueue", x.clone(), x)
            } else {
                let x = v(r);
                ("dequeue", Value::Null, maybe_null(r, x))
            }
        }
        ModelKind::MultiRegister => {
            let n = 1 + r.below(2);
            let mut inv = Vec::new();
            let mut okv = Vec::new();
            for _ in 0..n {
                let k = if r.below(2) == 0 { "x" } else { "y" };
                if r.below(2) == 0 {
                    inv.push(json!(["read", k, null]));
                    let x = v(r);
                    okv.push(json!(["read", k, maybe_null(r, x)]));
                } else {
                    let x = v(r);
                    inv.push(json!(["write", k, x]));
                    okv.push(json!(["write", k, x]));
                }
            }
            ("txn", json!(inv), json!(okv))
        }
    }
}

/// A random small history: up to `max_ops` ops on up to 4 processes; each
/// ends ok, fail (only ops that may fail: cas, acquire) or info.
/// An open op of the random history generator: f, invoke value, ok value, key.
type Open = (&'static str, Value, Value, Option<&'static str>);

fn random_history(kind: ModelKind, r: &mut Rng, max_ops: usize) -> History {
    let n_ops = 1 + r.below(max_ops as u64) as usize;
    let procs = 1 + r.below(4) as usize;
    let mut open: Vec<Option<Open>> = vec![None; procs];
    let mut pid: Vec<u64> = (0..procs as u64).collect();
    let mut events = Vec::new();
    let mut invoked = 0;
    let key = |r: &mut Rng| -> Option<&'static str> {
        if kind == ModelKind::Kv {
            Some(if r.below(2) == 0 { "k0" } else { "k1" })
        } else {
            None
        }
    };
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
                let k = key(r);
                events.push(ev(line, pid[p], EventType::Invoke, f, iv.clone(), k));
                open[p] = Some((f, iv, ov, k));
            }
            Some((f, iv, ov, k)) => {
                let roll = r.below(10);
                if roll == 0 {
                    // Left open at the end (info by pairing) or info now.
                    events.push(ev(line, pid[p], EventType::Info, f, json!("timed-out"), k));
                    pid[p] += procs as u64;
                } else if roll == 1 && matches!(f, "cas" | "acquire" | "dequeue") {
                    events.push(ev(line, pid[p], EventType::Fail, f, iv, k));
                } else {
                    events.push(ev(line, pid[p], EventType::Ok, f, ov, k));
                }
            }
        }
    }
    History { events }
}

fn cases() -> u64 {
    std::env::var("FAULTLINE_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

fn spec_for(kind: ModelKind, seed: u64) -> ModelSpec {
    let mut s = ModelSpec::new(kind);
    match kind {
        ModelKind::Register | ModelKind::CasRegister => {
            if seed.is_multiple_of(2) {
                s.initial = Some(json!(0));
            } else {
                s.nil_read_is_absent = true;
            }
        }
        ModelKind::MultiRegister => s.initial = Some(json!({"x": 0, "y": 0})),
        _ => {}
    }
    s
}

fn oracle_agrees(kind: ModelKind) {
    let n = cases();
    let base = std::env::var("FAULTLINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut counts = [0u64; 2];
    for case in 0..n {
        let seed = base.wrapping_mul(1_000_003).wrapping_add(case) ^ (kind as u64) << 56;
        let mut r = Rng(seed);
        let h = random_history(kind, &mut r, 9);
        let spec = spec_for(kind, seed);
        let ops = h.pair().expect("pair").operations;
        let want = oracle_verdict(&ops, &spec);
        counts[want as usize] += 1;
        for split in [true, false] {
            let o = Options {
                split_by_key: split,
                threads: 1,
                ..Options::default()
            };
            let got = check(&ops, Some(&h), &spec, &o).expect("check").verdict;
            // No completed op: valid, vacuously (with a warning).
            let want_v = if want {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
            assert_eq!(
                got,
                want_v,
                "model {kind}, split {split}, seed {seed} (FAULTLINE_SEED={base}, case {case}): history {:#?}",
                h.events
                    .iter()
                    .map(|e| (
                        e.process.to_string(),
                        e.kind,
                        &e.f,
                        e.value.to_string(),
                        &e.key
                    ))
                    .collect::<Vec<_>>()
            );
        }
    }
    // The generator must exercise both answers.
    assert!(
        counts[0] > n / 50 && counts[1] > n / 50,
        "{kind}: invalid/valid = {counts:?}"
    );
}

#[test]
fn oracle_register() {
    oracle_agrees(ModelKind::Register)
}
#[test]
fn oracle_cas_register() {
    oracle_agrees(ModelKind::CasRegister)
}
#[test]
fn oracle_kv() {
    oracle_agrees(ModelKind::Kv)
}
#[test]
fn oracle_mutex() {
    oracle_agrees(ModelKind::Mutex)
}
#[test]
fn oracle_set() {
    oracle_agrees(ModelKind::Set)
}
#[test]
fn oracle_unordered_queue() {
    oracle_agrees(ModelKind::UnorderedQueue)
}
#[test]
fn oracle_fifo_queue() {
    oracle_agrees(ModelKind::FifoQueue)
}
#[test]
fn oracle_multi_register() {
    oracle_agrees(ModelKind::MultiRegister)
}

// ---------------------------------------------------------------------------
// Minimal counterexamples against the oracle.

/// The oracle's verdict on `p` with the ok ops outside `keep` relaxed as
/// `minimal.rs` documents: observers dropped, others turned `info` (ret at
/// infinity, same invocation).
fn relaxed_linearizable<M: Model>(p: Problem<M>, keep: &HashSet<usize>) -> bool
where
    M::Op: Clone,
{
    let (m, init, ops) = p;
    let ops = ops
        .into_iter()
        .filter_map(|o| {
            if !o.ok || keep.contains(&o.id) {
                Some(o)
            } else if m.is_pure(&o.op) {
                None
            } else {
                Some(crate::model::CompiledOp {
                    ret: usize::MAX,
                    ok: false,
                    ..o
                })
            }
        })
        .collect();
    oracle((m, init, ops))
}

fn relaxed_oracle(group: &[&Operation], spec: &ModelSpec, keep: &HashSet<usize>) -> bool {
    let key = group
        .first()
        .map_or("_".to_string(), |o| key_name(o.key.as_deref()));
    match spec.kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => relaxed_linearizable(
            compile(&RegModel::new(spec), &key, group, None).expect("compile"),
            keep,
        ),
        ModelKind::Mutex => relaxed_linearizable(
            compile(&MutexModel::new(spec).expect("spec"), &key, group, None).expect("compile"),
            keep,
        ),
        ModelKind::MultiRegister => relaxed_linearizable(
            compile(&MultiModel::new(spec), &key, group, None).expect("compile"),
            keep,
        ),
        _ => relaxed_linearizable(
            compile(&CollModel::new(spec).expect("spec"), &key, group, None).expect("compile"),
            keep,
        ),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("FAULTLINE_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3000)
    ))]
    /// On random histories, each invalid key's minimal set is invalid
    /// (with everything else relaxed) and relaxing any one of its ops makes
    /// it linearizable, by the brute-force oracle.
    #[test]
    fn minimal_sets_are_invalid_and_one_minimal(seed in proptest::prelude::any::<u64>(), k in 0usize..8) {
        let kind = ModelKind::ALL[k];
        let mut r = Rng(seed);
        let h = random_history(kind, &mut r, 9);
        let spec = spec_for(kind, seed);
        let ops = h.pair().expect("pair").operations;
        let opts = Options { exhaustive: true, threads: 1, ..Options::default() };
        let res = check(&ops, Some(&h), &spec, &opts).expect("check");
        for (key, kr) in &res.keys {
            if kr.verdict != Verdict::Invalid {
                continue;
            }
            proptest::prop_assert_eq!(kr.minimal_complete, Some(true));
            proptest::prop_assert!(!kr.minimal.is_empty());
            proptest::prop_assert!(kr.minimal_explanation.is_some());
            let group: Vec<&Operation> = ops
                .iter()
                .filter(|o| key_name(o.key.as_deref()) == *key)
                .collect();
            let keep: HashSet<usize> = kr.minimal.iter().copied().collect();
            proptest::prop_assert!(
                !relaxed_oracle(&group, &spec, &keep),
                "minimal set {:?} of key {} is linearizable: {:?}", kr.minimal, key, h.events
            );
            for drop in &kr.minimal {
                let mut fewer = keep.clone();
                fewer.remove(drop);
                proptest::prop_assert!(
                    relaxed_oracle(&group, &spec, &fewer),
                    "minimal set {:?} of key {} minus op {} is still invalid: {:?}",
                    kr.minimal, key, drop, h.events
                );
            }
        }
    }
}
