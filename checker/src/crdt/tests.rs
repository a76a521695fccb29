//! Tests of the crdt checker.

use super::*;
use crate::history::EventType::{self, *};
use crate::history::{Event, Process};

/// `(process, type, f, value, node)`; lines from 1, indices from 0.
fn h(evs: &[(u64, EventType, &str, Value, &str)]) -> History {
    History {
        events: evs
            .iter()
            .enumerate()
            .map(|(i, (p, k, f, v, n))| {
                let process = if *f == "nemesis" {
                    Process::Nemesis
                } else {
                    Process::Client(*p)
                };
                Event {
                    index: Some(i as u64).into(),
                    line: i + 1,
                    node: (!n.is_empty()).then(|| crate::Sym::new(n)),
                    ..Event::new(process, *k, *f, v.clone())
                }
            })
            .collect(),
    }
}

/// Adds on n1 and n2 during a partition, the heal, then a final read
/// on each node returning `r1` and `r2`.
fn counter(r1: i64, r2: i64) -> History {
    h(&[
        (0, Invoke, "add", json!(5), "n1"),
        (0, Ok, "add", json!(5), "n1"),
        (1, Invoke, "add", json!(-2), "n2"),
        (1, Ok, "add", json!(-2), "n2"),
        (2, Invoke, "add", json!(4), "n2"),
        (2, Info, "add", json!(4), "n2"),
        (9, Info, "nemesis", json!("heal"), ""),
        (0, Invoke, "read", Value::Null, "n1"),
        (0, Ok, "read", json!(r1), "n1"),
        (1, Invoke, "read", Value::Null, "n2"),
        (1, Ok, "read", json!(r2), "n2"),
    ])
}

#[test]
fn counter_replicas_that_agree_within_bounds_converge() {
    for v in [3, 7] {
        let r = check_convergence(&counter(v, v), None).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{v}: {}", r.text);
        assert_eq!(r.json["stats"]["bounds"], json!([3, 7]));
    }
}

#[test]
fn counter_replicas_that_disagree_are_divergent() {
    let r = check_convergence(&counter(3, 7), None).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.json["anomaly_types"], json!(["divergent"]));
    assert!(r.text.contains("n1 read 3; n2 read 7"), "{}", r.text);
}

#[test]
fn a_converged_counter_missing_an_acknowledged_add_is_out_of_bounds() {
    // 1 = the -2 and the info 4 without the acknowledged 5 … minus 6:
    // below 3; 10 counts an add twice (G-Counter merge by sum).
    for v in [1, 10] {
        let r = check_convergence(&counter(v, v), None).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid, "{v}");
        assert_eq!(r.json["anomaly_types"], json!(["out-of-bounds"]));
        assert_eq!(
            r.json["anomalies"]["out-of-bounds"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}

#[test]
fn reads_before_the_heal_are_not_final() {
    let mut ev = counter(3, 3).events;
    // A stale read during the partition, before the heal: ignored.
    ev.insert(
        6,
        Event {
            node: Some("n1".into()),
            ..Event::new(Process::Client(5), Invoke, "read", Value::Null)
        },
    );
    ev.insert(
        7,
        Event {
            node: Some("n1".into()),
            ..Event::new(Process::Client(5), Ok, "read", json!(99))
        },
    );
    let r = check_convergence(&History { events: ev }, None).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
    assert_eq!(r.json["stats"]["final_reads"], 2);
}

/// Two rounds of final reads (the runner re-reads while replicas
/// disagree): n2 lags in the first, `n2_last` is its second answer.
fn counter_two_rounds(n2_last: i64) -> History {
    let mut ev = counter(3, 7).events;
    for (p, t, v) in [(0, Invoke, Value::Null), (0, Ok, json!(3))] {
        ev.push(Event {
            node: Some("n1".into()),
            ..Event::new(Process::Client(p), t, "read", v)
        });
    }
    for (t, v) in [(Invoke, Value::Null), (Ok, json!(n2_last))] {
        ev.push(Event {
            node: Some("n2".into()),
            ..Event::new(Process::Client(1), t, "read", v)
        });
    }
    for (i, e) in ev.iter_mut().enumerate() {
        e.index = Some(i as u64).into();
        e.line = i + 1;
    }
    History { events: ev }
}

#[test]
fn a_replica_that_lagged_and_then_agreed_converged() {
    let r = check_convergence(&counter_two_rounds(3), None).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
    assert_eq!(r.json["stats"]["final_reads"], 2);
    // Its last answer still differs: divergent.
    let r = check_convergence(&counter_two_rounds(7), None).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.text);
    assert!(r.text.contains("n1 read 3; n2 read 7"), "{}", r.text);
}

#[test]
fn one_node_or_no_final_read_is_unknown_never_valid() {
    let mut one = counter(3, 3);
    one.events.truncate(9);
    let r = check_convergence(&one, None).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.text);
    assert!(r.json["reason"].as_str().unwrap().contains("1 node"));
    // … but a wrong value on that one node is still invalid.
    let mut bad = counter(1, 1);
    bad.events.truncate(9);
    assert_eq!(
        check_convergence(&bad, None).unwrap().verdict,
        Verdict::Invalid
    );
    let mut none = counter(3, 3);
    none.events.truncate(7);
    assert_eq!(
        check_convergence(&none, None).unwrap().verdict,
        Verdict::Unknown
    );
}

/// n1 adds 1 and later removes it; n2 adds 1 again after the remove
/// completed (concurrent in causality: n2 had not heard of it) and adds
/// 2; an info add of 3. Then a final read on n1.
fn or_set_history(read: Value) -> History {
    h(&[
        (0, Invoke, "add", json!(1), "n1"),
        (0, Ok, "add", json!(1), "n1"),
        (0, Invoke, "remove", json!(1), "n1"),
        (0, Ok, "remove", json!(1), "n1"),
        (1, Invoke, "add", json!(1), "n2"),
        (1, Ok, "add", json!(1), "n2"),
        (1, Invoke, "add", json!(2), "n2"),
        (1, Ok, "add", json!(2), "n2"),
        (2, Invoke, "add", json!(3), "n2"),
        (2, Info, "add", json!(3), "n2"),
        (9, Info, "nemesis", json!("heal"), ""),
        (0, Invoke, "read", Value::Null, "n1"),
        (0, Ok, "read", read, "n1"),
    ])
}

#[test]
fn or_set_add_wins_over_a_remove_that_could_not_see_it() {
    for read in [json!([1, 2]), json!([2, 1, 3])] {
        let r = check_or_set(&or_set_history(read.clone())).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{read}: {}", r.text);
    }
}

#[test]
fn or_set_losing_an_add_made_after_the_remove_is_invalid() {
    // Remove-wins (the `orset-remove-without-tags` bug): n2's later add
    // of 1 vanished although no remove could have observed it.
    let r = check_or_set(&or_set_history(json!([2]))).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.text);
    assert_eq!(r.json["anomaly_types"], json!(["lost"]));
    let e = &r.json["anomalies"]["lost"][0];
    assert_eq!(e["element"], 1);
    assert_eq!(e["op"]["index"], 5);
    assert!(
        e["explanation"]
            .as_str()
            .unwrap()
            .contains("completed before the add began")
    );
}

#[test]
fn or_set_element_never_added_is_unexpected() {
    let r = check_or_set(&or_set_history(json!([1, 2, 4]))).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.json["anomaly_types"], json!(["unexpected"]));
}

#[test]
fn or_set_the_first_add_may_go_with_its_remove() {
    // Only the first add of 1 could have been observed by the remove;
    // without n2's later add, an empty-of-1 read is fine.
    let mut hist = or_set_history(json!([2]));
    hist.events.drain(4..6);
    let r = check_or_set(&hist).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
}

#[test]
fn set_convergence_uses_add_wins_and_agreement() {
    let mut hist = or_set_history(json!([1, 2]));
    hist.events.push(Event {
        node: Some("n2".into()),
        ..Event::new(Process::Client(1), Invoke, "read", Value::Null)
    });
    hist.events.push(Event {
        node: Some("n2".into()),
        ..Event::new(Process::Client(1), Ok, "read", json!([2, 1]))
    });
    let r = check_convergence(&hist, None).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
    hist.events.last_mut().unwrap().value = json!([2]);
    let r = check_convergence(&hist, None).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.json["anomaly_types"], json!(["divergent", "lost"]));
}

#[test]
fn register_convergence_needs_agreement_on_a_written_value() {
    let reg = |a: Value, b: Value| {
        h(&[
            (0, Invoke, "write", json!(1), "n1"),
            (0, Ok, "write", json!(1), "n1"),
            (1, Invoke, "write", json!(2), "n2"),
            (1, Ok, "write", json!(2), "n2"),
            (0, Invoke, "read", Value::Null, "n1"),
            (0, Ok, "read", a, "n1"),
            (1, Invoke, "read", Value::Null, "n2"),
            (1, Ok, "read", b, "n2"),
        ])
    };
    // Either write may win (timestamps are invisible to clients).
    for v in [1, 2] {
        assert_eq!(
            check_convergence(&reg(json!(v), json!(v)), None)
                .unwrap()
                .verdict,
            Verdict::Valid
        );
    }
    assert_eq!(
        check_convergence(&reg(json!(1), json!(2)), None)
            .unwrap()
            .verdict,
        Verdict::Invalid
    );
    let r = check_convergence(&reg(json!(3), json!(3)), None).unwrap();
    assert_eq!(r.json["anomaly_types"], json!(["unexpected"]));
}

#[test]
fn a_non_integer_counter_read_names_its_line() {
    let mut hist = counter(3, 3);
    hist.events[8].value = json!("x");
    assert_eq!(
        check_convergence(&hist, Some(Kind::Counter))
            .unwrap_err()
            .line,
        9
    );
}
