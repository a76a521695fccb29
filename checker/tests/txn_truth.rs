//! Issue #16, "Checker truth" (transactions): each regression here failed
//! before its fix. Histories are minimal and built in code.

use faultline_checker::Verdict;
use faultline_checker::history::{Event, EventType, History, Process};
use faultline_checker::txn::{self, Explanation, TxnOptions, TxnResult, Workload};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

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

/// All invocations, then all completions (`ok` unless `fail` is given):
/// fully concurrent, so no realtime or process order adds edges.
fn concurrent(ops: &[(u64, &str, Value)]) -> History {
    let mut events = Vec::new();
    for (p, _, v) in ops {
        events.push(ev(events.len() + 1, *p, EventType::Invoke, v.clone()));
    }
    for (p, k, v) in ops {
        let kind = EventType::parse(k).expect("outcome");
        events.push(ev(events.len() + 1, *p, kind, v.clone()));
    }
    History { events }
}

fn check(h: &History, opts: &TxnOptions) -> TxnResult {
    let r = txn::check(h, opts).expect("checkable");
    serde_json::to_string(&r).expect("serializes");
    r
}

fn la(models: &[&str]) -> TxnOptions {
    TxnOptions::new(Workload::ListAppend).models(models)
}

fn set(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// T2 appends to y and x; T1 reads y after T2 but x before it: one item
/// anti-dependency in a cycle, G-single-item.
fn g_single_item() -> History {
    concurrent(&[
        (1, "ok", json!([["r", "x", []], ["r", "y", [1]]])),
        (2, "ok", json!([["append", "y", 1], ["append", "x", 1]])),
        (3, "ok", json!([["r", "x", [1]]])),
    ])
}

/// Fix 1: Adya's PL-2.99 forbids every cycle with an item anti-dependency;
/// Elle's lattice has G-single-item → G-nonadjacent-item → G2-item.
#[test]
fn issue16_repeatable_read_catches_g_single_item() {
    let h = g_single_item();
    let r = check(&h, &la(&["repeatable-read"]));
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.prose());
    assert_eq!(r.anomaly_types, ["G-single-item"]);
    let s = check(&h, &la(&["serializable"]));
    assert_eq!(s.anomaly_types, ["G-single-item"]);
    // Elle: (boundary [:G-single-item]) → :not #{:PL-2+ :PL-2.99}.
    assert_eq!(s.not, set(&["consistent-view", "repeatable-read"]));
    for m in ["serializable", "snapshot-isolation", "strict-serializable"] {
        assert!(s.also_not.contains(&m.to_string()), "{m}: {:?}", s.also_not);
    }
}

/// Fix 2: list-append needs unique appended values per key; Elle's
/// `verify-unique-appends` refuses the history (`:valid? :unknown`,
/// `:type :duplicate-appends`) before any analysis.
#[test]
fn issue16_duplicate_appends_are_refused() {
    let h = concurrent(&[
        (1, "ok", json!([["append", "x", 1]])),
        (2, "ok", json!([["append", "x", 1]])),
        (3, "ok", json!([["r", "x", [1]]])),
    ]);
    let r = check(&h, &la(&["serializable"]));
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.prose());
    assert_eq!(r.anomaly_types, ["duplicate-appends"]);
    let Explanation::DuplicateAppends { key, value, .. } = &r.anomalies["duplicate-appends"][0]
    else {
        panic!("{:?}", r.anomalies);
    };
    assert_eq!((key, value), (&json!("x"), &json!(1)));
    // Elle checks every invocation: a failed one counts too.
    let h = concurrent(&[
        (1, "fail", json!([["append", "x", 1]])),
        (2, "ok", json!([["append", "x", 1]])),
    ]);
    assert_eq!(
        check(&h, &la(&["serializable"])).anomaly_types,
        ["duplicate-appends"]
    );
    // Distinct values stay checkable.
    let h = concurrent(&[
        (1, "ok", json!([["append", "x", 1]])),
        (2, "ok", json!([["append", "x", 2]])),
        (3, "ok", json!([["r", "x", [1, 2]]])),
    ]);
    assert_eq!(check(&h, &la(&["serializable"])).verdict, Verdict::Valid);
}

/// Fix 3: a read listing an element twice is `duplicate-elements`, and the
/// version order is built without the repeat (Elle's `append-index` takes
/// `distinct`), so no write cycle rests on it.
#[test]
fn issue16_duplicate_element_makes_no_g0() {
    let h = concurrent(&[
        (1, "ok", json!([["append", "x", 1]])),
        (2, "ok", json!([["append", "x", 2]])),
        (3, "ok", json!([["r", "x", [1, 2, 1]]])),
    ]);
    let r = check(&h, &la(&["serializable"]));
    assert_eq!(r.anomaly_types, ["duplicate-elements"], "{}", r.prose());
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.not, set(&["read-uncommitted"]));
}

fn corpus(name: &str) -> Option<History> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/elle/histories"
    ))
    .join(name);
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return None;
    }
    Some(faultline_checker::format::parse_file(&path, None).expect("parses"))
}

/// Every cycle explained visits each transaction once.
fn assert_simple_cycles(r: &TxnResult) {
    let mut cycles = 0;
    for e in r.anomalies.values().flatten() {
        if let Explanation::Cycle { txns, steps, .. } = e {
            cycles += 1;
            let ops: BTreeSet<usize> = txns.iter().map(|t| t.op).collect();
            assert_eq!(ops.len(), txns.len(), "repeats a transaction: {e:?}");
            assert_eq!(steps.len(), txns.len());
        }
    }
    assert!(cycles > 0, "no cycle to look at: {}", r.prose());
}

/// Fix 4: on Elle's si-without-g-single history the G2-item-realtime cycle
/// listed one transaction twice (process 4, index 21).
#[test]
fn issue16_cycles_are_simple() {
    let Some(h) = corpus("si-without-g-single.edn") else {
        return;
    };
    let r = check(&h, &TxnOptions::new(Workload::ListAppend));
    assert_simple_cycles(&r);
    assert!(
        r.anomaly_types.iter().any(|t| t == "G2-item"),
        "{:?}",
        r.anomaly_types
    );
}

fn rw(models: &[&str]) -> TxnOptions {
    TxnOptions::new(Workload::RwRegister).models(models)
}

/// `(process, invoke?, value)` events in this order; completions are `ok`.
fn events(evs: &[(u64, bool, Value)]) -> History {
    let mut events = Vec::new();
    for (p, invoke, v) in evs {
        let kind = if *invoke {
            EventType::Invoke
        } else {
            EventType::Ok
        };
        events.push(ev(events.len() + 1, *p, kind, v.clone()));
    }
    History { events }
}

/// Elle's `:wfr-keys?` (rw_register_test "wfr"): T1 read y = 1 and then
/// wrote y = 2, so 1 < 2; T2 read x = 1 from T1 but y = 1, before T1's
/// write: a G-single-item only writes-follow-reads can see.
#[test]
fn wfr_keys_can_be_turned_off() {
    let h = concurrent(&[
        (
            0,
            "ok",
            json!([["r", "y", 1], ["w", "x", 1], ["w", "y", 2]]),
        ),
        (1, "ok", json!([["r", "x", 1], ["r", "y", 1]])),
    ]);
    let on = check(&h, &rw(&["serializable"]));
    assert_eq!(on.anomaly_types, ["G-single-item"], "{}", on.prose());
    let mut off = rw(&["serializable"]);
    off.wfr_keys = false;
    let r = check(&h, &off);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.prose());
}

/// Elle's `:sequential-keys?`: process 0 wrote x = 1, then x = 2 (and
/// z = 5); T3 read x = 1 but z = 5. Only the per-process order of x's
/// versions shows 1 < 2, hence T3 <rw T2 <wr T3.
#[test]
fn sequential_keys_orders_versions_by_process() {
    let h = events(&[
        (0, true, json!([["w", "x", 1]])),
        (0, false, json!([["w", "x", 1]])),
        (0, true, json!([["w", "x", 2], ["w", "z", 5]])),
        (1, true, json!([["r", "x", null], ["r", "z", null]])),
        (0, false, json!([["w", "x", 2], ["w", "z", 5]])),
        (1, false, json!([["r", "x", 1], ["r", "z", 5]])),
    ]);
    let plain = check(&h, &rw(&["serializable"]));
    assert_eq!(plain.verdict, Verdict::Valid, "{}", plain.prose());
    let mut seq = rw(&["serializable"]);
    seq.sequential_keys = true;
    let r = check(&h, &seq);
    assert_eq!(r.anomaly_types, ["G-single-item"], "{}", r.prose());
}

/// Elle's `:anomalies`: these and every anomaly implying one of them fail
/// the check; with no model, nothing else does.
#[test]
fn anomalies_option_checks_exactly_those() {
    let h = g_single_item();
    let mut opts = la(&[]);
    opts.anomalies = vec!["G0".into(), "G1c".into()];
    let r = check(&h, &opts);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.prose());
    // G-single-item implies G2-item (Elle expands by all-anomalies-implying).
    opts.anomalies = vec!["G2-item".into()];
    let r = check(&h, &opts);
    assert_eq!(r.anomaly_types, ["G-single-item"]);
    assert_eq!(r.verdict, Verdict::Invalid);
    let p = txn::prohibited_by(&opts).unwrap();
    for a in [
        "G2-item",
        "G-single-item",
        "G-nonadjacent-item",
        "lost-update",
    ] {
        assert!(p.contains(a), "{a}: {p:?}");
    }
    assert!(!p.contains("G-single") && !p.contains("G0"), "{p:?}");
    opts.anomalies = vec!["G3".into()];
    assert!(txn::check(&h, &opts).is_err());
}
