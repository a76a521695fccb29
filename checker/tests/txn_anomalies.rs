//! One minimal history per anomaly, each yielding exactly that anomaly, and
//! a near-twin that yields none.

use faultline_checker::Verdict;
use faultline_checker::history::{Event, EventType, History, Process};
use faultline_checker::txn::{self, TxnOptions, Workload};
use serde_json::{Value, json};

/// `(process, outcome, micro-ops)`.
type Op = (u64, &'static str, Value);

fn ev(line: usize, p: u64, kind: EventType, value: Value) -> Event {
    Event {
        index: Some(line as u64).into(),
        time: None,
        process: Process::Client(p),
        kind,
        f: "txn".into(),
        key: None,
        value,
        node: None,
        error: None,
        line,
    }
}

fn kind(s: &str) -> EventType {
    EventType::parse(s).expect("outcome")
}

/// All invocations, then all completions: fully concurrent, so no realtime
/// or process order adds edges.
fn concurrent(ops: &[Op]) -> History {
    let mut events = Vec::new();
    for (p, _, v) in ops {
        events.push(ev(events.len() + 1, *p, EventType::Invoke, v.clone()));
    }
    for (p, k, v) in ops {
        events.push(ev(events.len() + 1, *p, kind(k), v.clone()));
    }
    History { events }
}

/// Each operation completes before the next is invoked.
fn sequential(ops: &[Op]) -> History {
    let mut events = Vec::new();
    for (p, k, v) in ops {
        events.push(ev(events.len() + 1, *p, EventType::Invoke, v.clone()));
        events.push(ev(events.len() + 1, *p, kind(k), v.clone()));
    }
    History { events }
}

fn types(h: &History, opts: &TxnOptions) -> (Verdict, Vec<String>) {
    let r = txn::check(h, opts).expect("checkable");
    // Every result must render and serialize, and every data step of a
    // cycle must name its key.
    assert!(!r.prose().is_empty());
    for e in r.anomalies.values().flatten() {
        if let txn::Explanation::Cycle { steps, .. } = e {
            for s in steps {
                let data = matches!(s.kind.as_str(), "ww" | "wr" | "rw");
                assert!(!data || s.key.is_some(), "unexplained step {s:?}");
            }
            assert!(txn::svg::render_cycle(e).is_some());
        }
    }
    serde_json::to_string(&r).expect("serializes");
    (r.verdict, r.anomaly_types)
}

fn la() -> TxnOptions {
    TxnOptions::new(Workload::ListAppend)
}

fn assert_exactly(h: &History, opts: &TxnOptions, expected: &[&str]) {
    let (v, t) = types(h, opts);
    assert_eq!(t, expected, "anomaly types");
    assert_eq!(v, Verdict::Invalid);
}

fn assert_valid(h: &History, opts: &TxnOptions) {
    let r = txn::check(h, opts).expect("checkable");
    assert_eq!(r.anomaly_types, Vec::<String>::new(), "{}", r.prose());
    assert_eq!(r.verdict, Verdict::Valid);
}

#[test]
fn g0() {
    let bad = concurrent(&[
        (1, "ok", json!([["append", "x", 1], ["append", "y", 2]])),
        (2, "ok", json!([["append", "x", 2], ["append", "y", 1]])),
        (3, "ok", json!([["r", "x", [1, 2]], ["r", "y", [1, 2]]])),
    ]);
    assert_exactly(&bad, &la(), &["G0"]);
    let good = concurrent(&[
        (1, "ok", json!([["append", "x", 1], ["append", "y", 1]])),
        (2, "ok", json!([["append", "x", 2], ["append", "y", 2]])),
        (3, "ok", json!([["r", "x", [1, 2]], ["r", "y", [1, 2]]])),
    ]);
    assert_valid(&good, &la());
}

#[test]
fn g1a() {
    let mk = |o| {
        concurrent(&[
            (1, o, json!([["append", "x", 1]])),
            (2, "ok", json!([["r", "x", [1]], ["r", "y", [1]]])),
            (3, "ok", json!([["append", "y", 1]])),
        ])
    };
    assert_exactly(&mk("fail"), &la(), &["G1a"]);
    assert_valid(&mk("ok"), &la());
}

#[test]
fn g1b() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["append", "x", 1], ["append", "x", 2]])),
            (2, "ok", json!([["r", "x", read]])),
        ])
    };
    // Reading between T1's two appends also puts T2 between them: T1 <wr T2
    // <rw T1, a G-single (Elle reports both too).
    assert_exactly(&mk(json!([1])), &la(), &["G-single-item", "G1b"]);
    assert_valid(&mk(json!([1, 2])), &la());
}

#[test]
fn g1c() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["append", "x", 1], ["r", "y", read]])),
            (2, "ok", json!([["append", "y", 1], ["r", "x", [1]]])),
        ])
    };
    assert_exactly(&mk(json!([1])), &la(), &["G1c"]);
    assert_valid(&mk(json!([])), &la());
}

#[test]
fn g_single() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["r", "x", read], ["r", "z", [1]]])),
            (2, "ok", json!([["append", "x", 1], ["append", "z", 1]])),
            (3, "ok", json!([["r", "x", [1]]])),
        ])
    };
    assert_exactly(&mk(json!([])), &la(), &["G-single-item"]);
    assert_valid(&mk(json!([1])), &la());
}

#[test]
fn g_nonadjacent() {
    let mk = |read_d: Value| {
        concurrent(&[
            (1, "ok", json!([["r", "a", []], ["r", "d", read_d]])),
            (2, "ok", json!([["append", "a", 1], ["append", "b", 1]])),
            (3, "ok", json!([["r", "b", [1]], ["r", "c", []]])),
            (4, "ok", json!([["append", "c", 1], ["append", "d", 1]])),
            (
                5,
                "ok",
                json!([["r", "a", [1]], ["r", "c", [1]], ["r", "d", [1]]]),
            ),
        ])
    };
    assert_exactly(&mk(json!([1])), &la(), &["G-nonadjacent-item"]);
    assert_valid(&mk(json!([])), &la());
}

#[test]
fn g2_item() {
    let mk = |read_y: Value| {
        concurrent(&[
            (1, "ok", json!([["r", "x", []], ["append", "y", 1]])),
            (2, "ok", json!([["r", "y", read_y], ["append", "x", 1]])),
            (3, "ok", json!([["r", "x", [1]], ["r", "y", [1]]])),
        ])
    };
    assert_exactly(&mk(json!([])), &la(), &["G2-item"]);
    assert_valid(&mk(json!([1])), &la());
    // Snapshot isolation allows it; repeatable read does not.
    let r = txn::check(&mk(json!([])), &la().models(&["snapshot-isolation"])).unwrap();
    assert_eq!(r.verdict, Verdict::Valid);
}

#[test]
fn internal() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["append", "x", 1], ["r", "x", read]])),
            (2, "ok", json!([["r", "x", [1]]])),
        ])
    };
    assert_exactly(&mk(json!([])), &la(), &["internal"]);
    assert_valid(&mk(json!([1])), &la());
}

#[test]
fn future_read() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["r", "x", read], ["append", "x", 1]])),
            (2, "ok", json!([["r", "x", [1]]])),
        ])
    };
    assert_exactly(&mk(json!([1])), &la(), &["future-read"]);
    assert_valid(&mk(json!([])), &la());
}

#[test]
fn dirty_update() {
    // A committed append after an aborted one. Seeing the aborted element
    // is also a dirty read, so G1a comes with it, as in Elle.
    let mk = |o| {
        concurrent(&[
            (1, o, json!([["append", "x", 1]])),
            (2, "ok", json!([["append", "x", 2]])),
            (3, "ok", json!([["r", "x", [1, 2]]])),
        ])
    };
    assert_exactly(&mk("fail"), &la(), &["G1a", "dirty-update"]);
    assert_valid(&mk("ok"), &la());
}

#[test]
fn duplicate_elements() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["append", "x", 1]])),
            (2, "ok", json!([["r", "x", read]])),
        ])
    };
    assert_exactly(&mk(json!([1, 1])), &la(), &["duplicate-elements"]);
    assert_valid(&mk(json!([1])), &la());
}

#[test]
fn incompatible_order() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["append", "x", 1]])),
            (2, "ok", json!([["append", "x", 2]])),
            (3, "ok", json!([["r", "x", [1, 2]]])),
            (4, "ok", json!([["r", "x", read]])),
        ])
    };
    assert_exactly(&mk(json!([2, 1])), &la(), &["incompatible-order"]);
    assert_valid(&mk(json!([1])), &la());
}

#[test]
fn lost_update() {
    let mk = |read: Value| {
        concurrent(&[
            (1, "ok", json!([["r", "x", []], ["append", "x", 1]])),
            (2, "ok", json!([["r", "x", read], ["append", "x", 2]])),
            (3, "ok", json!([["append", "y", 1]])),
            (4, "ok", json!([["r", "y", [1]]])),
        ])
    };
    // Both read [] and appended; each missed the other's unread append, so
    // the rw edges form a G2-item cycle too (as Elle infers).
    assert_exactly(&mk(json!([])), &la(), &["G2-item", "lost-update"]);
    assert_valid(&mk(json!([1])), &la());
}

#[test]
fn cyclic_versions() {
    let mk = |read: Value| {
        sequential(&[
            (1, "ok", json!([["w", "x", 1]])),
            (2, "ok", json!([["r", "x", 1]])),
            (2, "ok", json!([["r", "x", read]])),
        ])
    };
    let mut opts = TxnOptions::new(Workload::RwRegister).models(&["read-uncommitted"]);
    opts.sequential_keys = true;
    assert_exactly(&mk(Value::Null), &opts, &["cyclic-versions"]);
    assert_valid(&mk(json!(1)), &opts);
}

#[test]
fn g_single_realtime() {
    let mk = |read: Value| {
        let mut h = sequential(&[
            (1, "ok", json!([["append", "x", 1]])),
            (2, "ok", json!([["r", "x", read]])),
        ]);
        // A concurrent reader fixes the order of x.
        let n = h.events.len();
        h.events.insert(
            0,
            ev(n + 1, 3, EventType::Invoke, json!([["r", "x", null]])),
        );
        h.events
            .push(ev(n + 2, 3, EventType::Ok, json!([["r", "x", [1]]])));
        h
    };
    assert_exactly(&mk(json!([])), &la(), &["G-single-item-realtime"]);
    assert_valid(&mk(json!([1])), &la());
}

#[test]
fn g_single_process() {
    let mk = |read: Value| {
        let mut h = sequential(&[
            (1, "ok", json!([["append", "x", 1]])),
            (1, "ok", json!([["r", "x", read]])),
        ]);
        let n = h.events.len();
        h.events.insert(
            0,
            ev(n + 1, 3, EventType::Invoke, json!([["r", "x", null]])),
        );
        h.events
            .push(ev(n + 2, 3, EventType::Ok, json!([["r", "x", [1]]])));
        h
    };
    let opts = la().models(&["strong-session-snapshot-isolation"]);
    assert_exactly(&mk(json!([])), &opts, &["G-single-item-process"]);
    assert_valid(&mk(json!([1])), &opts);
    // Strict serializability sees the realtime variant too.
    let (_, t) = types(&mk(json!([])), &la());
    assert_eq!(t, ["G-single-item-process", "G-single-item-realtime"]);
}

#[test]
fn rw_register_g_single_and_g1a() {
    let opts = TxnOptions::new(Workload::RwRegister);
    // T1 reads x's initial state and y = T2's write; T2 overwrote x: G-single.
    let bad = concurrent(&[
        (1, "ok", json!([["r", "x", null], ["r", "y", 1]])),
        (2, "ok", json!([["w", "x", 1], ["w", "y", 1]])),
    ]);
    assert_exactly(&bad, &opts, &["G-single-item"]);
    let good = concurrent(&[
        (1, "ok", json!([["r", "x", 1], ["r", "y", 1]])),
        (2, "ok", json!([["w", "x", 1], ["w", "y", 1]])),
    ]);
    assert_valid(&good, &opts);
    let g1a = concurrent(&[
        (1, "fail", json!([["w", "x", 1]])),
        (2, "ok", json!([["r", "x", 1], ["r", "y", 2]])),
        (3, "ok", json!([["w", "y", 2]])),
    ]);
    assert_exactly(&g1a, &opts, &["G1a"]);
}

#[test]
fn unknown_when_graph_is_empty() {
    let h = concurrent(&[(1, "ok", json!([["append", "x", 1]]))]);
    let r = txn::check(&h, &la()).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.anomaly_types, ["empty-transaction-graph"]);
}

#[test]
fn malformed_micro_op_names_its_line() {
    let h = concurrent(&[(1, "ok", json!([["append", "x"]]))]);
    let e = txn::check(&h, &la()).unwrap_err();
    assert!(e.to_string().starts_with("line 2:"), "{e}");
    let h = concurrent(&[(1, "ok", json!([["w", "x", 1]]))]);
    assert!(
        txn::check(&h, &la())
            .unwrap_err()
            .to_string()
            .contains("not a list-append")
    );
}

#[test]
fn explanations_render_as_prose_and_svg() {
    let h = concurrent(&[
        (1, "ok", json!([["r", "x", []], ["r", "z", [1]]])),
        (2, "ok", json!([["append", "x", 1], ["append", "z", 1]])),
        (3, "ok", json!([["r", "x", [1]]])),
    ]);
    let r = txn::check(&h, &la()).unwrap();
    let e = &r.anomalies["G-single-item"][0];
    let prose = txn::explain::render(e);
    assert!(
        prose.contains("T1 read key \"x\" without T2's append of 1"),
        "{prose}"
    );
    assert!(
        prose.contains("T2 < T1") || prose.contains("T1 < T2"),
        "{prose}"
    );
    assert!(prose.contains("a contradiction"), "{prose}");
    let svg = txn::svg::render_cycle(e).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("T2") && svg.contains("rw"));
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["valid"], json!(false));
    assert_eq!(j["anomaly_types"], json!(["G-single-item"]));
    let steps = j["anomalies"]["G-single-item"][0]["steps"]
        .as_array()
        .unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"rw") && kinds.contains(&"wr"), "{kinds:?}");
    assert!(steps[0]["key"].as_str().is_some());
    // Elle: (boundary [:G-single-item]) → :not #{:PL-2+ :PL-2.99}.
    assert_eq!(j["not"], json!(["consistent-view", "repeatable-read"]));
    assert!(
        j["also_not"]
            .as_array()
            .unwrap()
            .contains(&json!("snapshot-isolation"))
    );
}

/// A ring of n transactions, each missing its predecessor's append: an
/// all-rw G2-item cycle, with no G-single or G-nonadjacent in it.
fn rw_ring(n: usize) -> History {
    let mut ops: Vec<Op> = (0..n)
        .map(|i| {
            (
                i as u64,
                "ok",
                json!([["r", i, []], ["append", (i + 1) % n, 1]]),
            )
        })
        .collect();
    let all: Vec<Value> = (0..n).map(|i| json!(["r", i, [1]])).collect();
    ops.push((n as u64, "ok", Value::Array(all)));
    concurrent(&ops)
}

#[test]
fn search_timeout_is_unknown_never_valid() {
    let h = rw_ring(50);
    let si = la().models(&["snapshot-isolation"]);
    assert_valid(&h, &si);
    let mut rushed = si.clone();
    rushed.time_limit = Some(std::time::Duration::ZERO);
    let r = txn::check(&h, &rushed).unwrap();
    assert_eq!(r.anomaly_types, ["cycle-search-timeout"], "{}", r.prose());
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.not.is_empty());
    // With serializability required, the same history is G2-item.
    assert_exactly(&h, &la().models(&["serializable"]), &["G2-item"]);
}

#[test]
fn spent_total_budget_is_unknown_even_without_a_per_component_limit() {
    // The CLI's `--time-limit` bounds the whole check: with it spent,
    // nothing is analysed and the verdict must not be `valid`.
    let h = rw_ring(50);
    let mut o = la().models(&["snapshot-isolation"]);
    o.time_limit = None;
    o.total_limit = Some(std::time::Duration::ZERO);
    let r = txn::check(&h, &o).unwrap();
    assert_eq!(r.anomaly_types, ["check-timeout"], "{}", r.prose());
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.prose().contains("time limit ran out"), "{}", r.prose());
    // The same with an absolute deadline already past.
    let mut o = la().models(&["snapshot-isolation"]);
    o.deadline = Some(std::time::Instant::now());
    let r = txn::check(&h, &o).unwrap();
    assert_eq!(r.anomaly_types, ["check-timeout"], "{}", r.prose());
    assert_eq!(r.verdict, Verdict::Unknown);
}

#[test]
fn unfinished_check_is_unknown() {
    let r = txn::unfinished(&la(), "reading the history").unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.anomaly_types, ["check-timeout"]);
    assert!(txn::unfinished(&la().models(&["no-such-model"]), "x").is_err());
}

#[test]
fn timeout_falls_back_to_cycle_exists() {
    let h = rw_ring(50);
    let mut o = la().models(&["serializable"]);
    o.time_limit = Some(std::time::Duration::ZERO);
    let r = txn::check(&h, &o).unwrap();
    assert_eq!(
        r.anomaly_types,
        ["PL-3-cycle-exists", "cycle-search-timeout"],
        "{}",
        r.prose()
    );
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.not, ["serializable"]);
}

#[test]
fn rw_register_g1b_internal_lost_update() {
    let opts = TxnOptions::new(Workload::RwRegister);
    let g1b = concurrent(&[
        (1, "ok", json!([["w", "x", 1], ["w", "x", 2]])),
        (2, "ok", json!([["r", "x", 1]])),
    ]);
    let (_, t) = types(&g1b, &opts);
    assert!(t.contains(&"G1b".to_string()), "{t:?}");
    let internal = concurrent(&[
        (1, "ok", json!([["w", "x", 1], ["r", "x", 2]])),
        (2, "ok", json!([["w", "x", 2], ["r", "y", null]])),
        (3, "ok", json!([["w", "y", 1]])),
    ]);
    let (_, t) = types(&internal, &opts);
    assert!(t.contains(&"internal".to_string()), "{t:?}");
    let lost = concurrent(&[
        (1, "ok", json!([["r", "x", null], ["w", "x", 1]])),
        (2, "ok", json!([["r", "x", null], ["w", "x", 2]])),
    ]);
    let (_, t) = types(&lost, &opts);
    assert!(t.contains(&"lost-update".to_string()), "{t:?}");
}

#[test]
fn explanations_are_capped_per_type_but_counted_in_full() {
    // 1,200 transactions that each miss their own append: 1,200 `internal`
    // anomalies, of which only MAX_EXPLANATIONS are explained.
    let n = txn::MAX_EXPLANATIONS + 200;
    let ops: Vec<Op> = (0..n)
        .map(|i| (i as u64, "ok", json!([["append", i, 1], ["r", i, []]])))
        .collect();
    let r = txn::check(&concurrent(&ops), &la()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.anomaly_counts["internal"], n);
    assert_eq!(r.anomalies["internal"].len(), txn::MAX_EXPLANATIONS);
    assert!(
        r.prose().contains("… and 200 more not shown"),
        "{}",
        r.prose()
    );
}
