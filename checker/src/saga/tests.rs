use super::*;
use crate::history::EventType;
use crate::history::EventType::{Info, Invoke, Ok as OkE};
use crate::testing::hist;

fn order(saga: u64, amount: i64) -> Value {
    json!({"saga": saga, "customer": 0, "item": 0, "qty": 1, "amount": amount, "dest": 1})
}

/// A final read: `ledgers[i]` is service i's `(saga, kind, units)`.
fn read(
    initial: [i64; 3],
    current: [i64; 3],
    ledgers: [&[(u64, &str, i64)]; 3],
    sagas: Value,
) -> Value {
    let mut services = serde_json::Map::new();
    for i in 0..3 {
        let l: Vec<Value> = ledgers[i]
            .iter()
            .map(|(s, k, u)| json!({"saga": s, "kind": k, "units": u, "account": 0}))
            .collect();
        services.insert(
            SERVICES[i].into(),
            json!({"initial": [initial[i]], "current": [current[i]], "ledger": l}),
        );
    }
    json!({"mode": "orchestrated", "sagas": sagas, "services": services})
}

fn run(orders: &[(u64, EventType, i64)], r: Value) -> WorkloadResult {
    let mut evs = Vec::new();
    for (saga, outcome, amount) in orders {
        evs.push((1, Invoke, "order", order(*saga, *amount)));
        evs.push((1, *outcome, "order", order(*saga, *amount)));
    }
    evs.push((9, Invoke, "read", Value::Null));
    evs.push((9, OkE, "read", r));
    check(&hist(&evs)).unwrap()
}

#[test]
fn committed_and_compensated_sagas_are_valid() {
    let r = read(
        [100, 10, 0],
        [95, 9, 1],
        [
            &[(1, "action", 5), (2, "action", 7), (2, "compensation", 7)],
            &[(1, "action", 1), (2, "refused", 1)],
            &[(1, "action", 1)],
        ],
        json!({"1": "committed", "2": "compensated"}),
    );
    let res = run(&[(1, OkE, 5), (2, EventType::Fail, 7)], r);
    assert_eq!(res.verdict, Verdict::Valid, "{}", res.json);
    assert_eq!(res.json["stats"]["compensated_after_effects"], 1);
}

#[test]
fn a_double_refund_breaks_conservation() {
    let r = read(
        [100, 10, 0],
        [107, 10, 0],
        [
            &[
                (2, "action", 7),
                (2, "compensation", 7),
                (2, "compensation", 7),
            ],
            &[(2, "refused", 1)],
            &[],
        ],
        json!({"2": "compensated"}),
    );
    let res = run(&[(2, EventType::Fail, 7)], r);
    assert_eq!(res.verdict, Verdict::Invalid);
    let types = res.json["anomaly_types"].to_string();
    assert!(types.contains("double-compensation"), "{types}");
    assert!(types.contains("conservation"), "{types}");
}

#[test]
fn half_done_lost_and_pending_sagas_are_invalid() {
    // Saga 3: credit reserved, never went further, and the orchestrator
    // forgot it; saga 4 still running at the end.
    let r = read(
        [100, 10, 0],
        [91, 10, 0],
        [&[(3, "action", 5), (4, "action", 4)], &[], &[]],
        json!({"4": "pending: step 1 (book-stock) started"}),
    );
    let res = run(&[(3, Info, 5), (4, Info, 4)], r);
    assert_eq!(res.verdict, Verdict::Invalid);
    let types = res.json["anomaly_types"].to_string();
    for t in ["half-done", "lost-saga", "not-terminated"] {
        assert!(types.contains(t), "{t}: {types}");
    }
    assert!(res.text.contains("half-done"), "{}", res.text);
}

#[test]
fn answers_must_match_the_fate() {
    let r = read(
        [100, 10, 0],
        [100, 10, 0],
        [&[(5, "refused", 5)], &[], &[]],
        json!({"5": "compensated"}),
    );
    let res = run(&[(5, OkE, 5)], r);
    assert_eq!(res.json["anomaly_types"], json!(["ok-not-committed"]));
}

/// Orders, then restocks and top-ups `(f, id, outcome, units)` (account
/// 0), then the final read.
fn run_with_supplies(
    orders: &[(u64, EventType, i64)],
    supplies: &[(&str, u64, EventType, i64)],
    r: Value,
) -> WorkloadResult {
    let mut evs = Vec::new();
    for (saga, outcome, amount) in orders {
        evs.push((1, Invoke, "order", order(*saga, *amount)));
        evs.push((1, *outcome, "order", order(*saga, *amount)));
    }
    for (f, id, outcome, units) in supplies {
        let v = if *f == "restock" {
            json!({"id": id, "item": 0, "qty": units})
        } else {
            json!({"id": id, "customer": 0, "amount": units})
        };
        evs.push((2, Invoke, *f, v.clone()));
        evs.push((2, *outcome, *f, v));
    }
    evs.push((9, Invoke, "read", Value::Null));
    evs.push((9, OkE, "read", r));
    check(&hist(&evs)).unwrap()
}

/// Saga 1 commits (credit 5, stock 1, one shipment); restock 10 adds 4
/// items, top-up 11 adds 20 credit, and an `info` restock 12 took
/// effect: all accounted, valid.
#[test]
fn restocks_and_top_ups_are_conserved() {
    let r = read(
        [100, 10, 0],
        [115, 15, 1],
        [
            &[(1, "action", 5), (11, "supply", 20)],
            &[(10, "supply", 4), (1, "action", 1), (12, "supply", 2)],
            &[(1, "action", 1)],
        ],
        json!({"1": "committed"}),
    );
    let sup = [
        ("restock", 10, OkE, 4),
        ("top-up", 11, OkE, 20),
        ("restock", 12, Info, 2),
        ("top-up", 13, EventType::Fail, 9),
    ];
    let res = run_with_supplies(&[(1, OkE, 5)], &sup, r);
    assert_eq!(res.verdict, Verdict::Valid, "{}", res.json);
    assert_eq!(res.json["stats"]["restocks_applied"], 2);
    assert_eq!(res.json["stats"]["top_ups_applied"], 1);
    assert_eq!(res.json["stats"]["top_ups_fail"], 1);
}

/// A planted lost restock: acknowledged, but neither in the ledger nor
/// in the stock (a service that forgot it across a crash). The stock
/// adds up by the ledger, so only the history shows it.
#[test]
fn a_lost_restock_is_caught() {
    let r = read(
        [100, 10, 0],
        [95, 9, 1],
        [
            &[(1, "action", 5)],
            &[(1, "action", 1)],
            &[(1, "action", 1)],
        ],
        json!({"1": "committed"}),
    );
    let res = run_with_supplies(&[(1, OkE, 5)], &[("restock", 10, OkE, 4)], r);
    assert_eq!(res.verdict, Verdict::Invalid);
    assert_eq!(res.json["anomaly_types"], json!(["lost-restock"]));
    let a = &res.json["anomalies"]["lost-restock"][0];
    assert_eq!(a["saga"], 10);
    assert!(
        a["explanation"].as_str().unwrap().contains("restock 10"),
        "{a}"
    );
    assert_eq!(a["op"]["f"], "restock", "{a}");
}

/// A top-up applied twice (two ledger lines, the credit up by both),
/// one applied though it failed, one nobody asked for, and a restock
/// the ledger has once but the stock counted twice.
#[test]
fn doubled_failed_phantom_and_uncounted_supplies_are_caught() {
    let r = read(
        [100, 10, 0],
        [147, 18, 0],
        [
            &[
                (11, "supply", 20),
                (11, "supply", 20),
                (13, "supply", 5),
                (14, "supply", 2),
            ],
            &[(10, "supply", 4)],
            &[],
        ],
        json!({}),
    );
    let sup = [
        ("restock", 10, OkE, 4),
        ("top-up", 11, OkE, 20),
        ("top-up", 13, EventType::Fail, 5),
    ];
    let res = run_with_supplies(&[(1, EventType::Fail, 5)], &sup, r);
    assert_eq!(
        res.json["anomaly_types"],
        json!([
            "conservation",
            "double-top-up",
            "fail-but-applied",
            "phantom-supply"
        ]),
        "{}",
        res.json
    );
    let c = res.json["anomalies"]["conservation"].to_string();
    assert!(c.contains("book-stock: -4 spent"), "{c}");
}

#[test]
fn step_outcomes_follow_the_refusing_step() {
    use Outcome::{Fail, Info, Ok};
    assert_eq!(step_outcomes(Ok, None), [Some(Ok); 3]);
    assert_eq!(step_outcomes(Info, Some("timed out")), [None; 3]);
    let e = "saga 4 compensated: book-stock: out of stock: item 1 has Some(0), the order \
             needs 2";
    assert_eq!(step_outcomes(Fail, Some(e)), [Some(Ok), Some(Fail), None]);
    let e = "saga 5 compensated: ship: no route to destination 0";
    assert_eq!(
        step_outcomes(Fail, Some(e)),
        [Some(Ok), Some(Ok), Some(Fail)]
    );
    // An older service's words, and a client that never got through.
    let e = "saga 6 compensated: insufficient credit: customer 0 has Some(1)";
    assert_eq!(step_outcomes(Fail, Some(e)), [Some(Fail), None, None]);
    assert_eq!(step_outcomes(Fail, Some("connection refused")), [None; 3]);
}

#[test]
fn no_final_read_is_unknown_and_bad_reads_name_the_line() {
    let h = hist(&[
        (1, Invoke, "order", order(1, 5)),
        (1, OkE, "order", order(1, 5)),
    ]);
    let res = check(&h).unwrap();
    assert_eq!(res.verdict, Verdict::Unknown);
    assert!(res.json["reason"].as_str().unwrap().contains("final read"));
    let h = hist(&[
        (9, Invoke, "read", Value::Null),
        (9, OkE, "read", json!({"services": {}})),
    ]);
    let e = check(&h).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("reserve-credit"), "{}", e.message);
}
