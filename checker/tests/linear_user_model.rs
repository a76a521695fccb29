//! A model written outside the crate (`checker/examples/user_model.rs`, a
//! bounded FIFO queue) checked through the public `Model` trait and
//! `linear::check_model`: verdicts, minimal counterexample, per-key split,
//! `unknown` on budget, and errors naming lines.

#[allow(dead_code)]
#[path = "../examples/user_model.rs"]
mod user_model;

use faultline_checker::linear::{Options, check_model};
use faultline_checker::{Event, EventType, History, Process, Value, Verdict};
use std::time::Duration;
use user_model::{BoundedQueue, INVALID, VALID, check_text};

#[test]
fn user_model_valid_history_is_valid() {
    let (_, r) = check_text(VALID, 2).expect("check");
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.model, "bounded-queue(2)");
    // With room for three, the refused offer is the anomaly.
    let (_, r) = check_text(VALID, 3).expect("check");
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn user_model_invalid_history_has_the_three_offers_as_minimal_counterexample() {
    let (h, r) = check_text(INVALID, 2).expect("check");
    assert_eq!(r.verdict, Verdict::Invalid);
    let kr = &r.keys["_"];
    assert_eq!(kr.minimal_complete, Some(true));
    let ops = h.pair().expect("pair").operations;
    let shown: Vec<(&str, &Value)> = kr
        .minimal
        .iter()
        .map(|&id| (ops[id].f.as_str(), &ops[id].invoke_value))
        .collect();
    let (one, two, three) = (Value::from(1), Value::from(2), Value::from(3));
    assert_eq!(
        shown,
        vec![("offer", &one), ("offer", &two), ("offer", &three)]
    );
    let why = kr.minimal_explanation.as_deref().unwrap_or("");
    assert!(why.contains("3 operation(s)"), "{why}");
    assert!(why.contains("offer 3"), "{why}");
    // The answer carries the model's own description of the stuck state.
    assert_eq!(kr.final_state.as_deref(), Some("[1, 2] (capacity 2)"));
    // With room for three, the same history is linearizable.
    let (_, r) = check_text(INVALID, 3).expect("check");
    assert_eq!(r.verdict, Verdict::Valid);
}

/// `clients` concurrent offers of distinct elements, then a poll of an
/// element never offered: not linearizable, but the search can only learn
/// that by trying every order of the offers (the queue's states differ).
fn crowded(clients: u64) -> History {
    let mut events = Vec::new();
    for p in 0..clients {
        events.push(Event::new(
            Process::Client(p),
            EventType::Invoke,
            "offer",
            Value::from(p),
        ));
    }
    for p in 0..clients {
        events.push(Event::new(
            Process::Client(p),
            EventType::Ok,
            "offer",
            Value::Bool(true),
        ));
    }
    for (kind, v) in [
        (EventType::Invoke, Value::Null),
        (EventType::Ok, Value::from(99)),
    ] {
        events.push(Event::new(Process::Client(0), kind, "poll", v));
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.line = i + 1;
    }
    History { events }
}

#[test]
fn user_model_is_split_by_key_and_bounded_by_the_time_limit() {
    // Two keys, one valid and one not: each is its own queue.
    let mut events = Vec::new();
    for (key, third) in [("a", false), ("b", true)] {
        for (i, v) in [1, 2, 3].into_iter().enumerate() {
            let ok = if i < 2 { true } else { third };
            for (kind, value) in [
                (EventType::Invoke, Value::from(v)),
                (EventType::Ok, Value::Bool(ok)),
            ] {
                let mut e = Event::new(Process::Client(0), kind, "offer", value);
                e.key = Some(Box::new(Value::from(key)));
                events.push(e);
            }
        }
    }
    let h = History { events };
    let ops = h.pair().expect("pair").operations;
    let r = check_model(
        &ops,
        Some(&h),
        &BoundedQueue { capacity: 2 },
        &Options {
            exhaustive: true,
            ..Options::default()
        },
    )
    .expect("check");
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys["a"].verdict, Verdict::Valid);
    assert_eq!(r.keys["b"].verdict, Verdict::Invalid);

    // A search too big for its budget answers unknown.
    let h = crowded(12);
    let ops = h.pair().expect("pair").operations;
    let r = check_model(
        &ops,
        Some(&h),
        &BoundedQueue { capacity: 64 },
        &Options {
            time_limit: Some(Duration::from_millis(50)),
            ..Options::default()
        },
    )
    .expect("check");
    assert_eq!(r.verdict, Verdict::Unknown, "{:?}", r.stats);
    let reason = r.keys["_"].reason.as_deref().unwrap_or("");
    assert!(reason.contains("time limit"), "{reason}");
}

#[test]
fn user_model_errors_name_the_line() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"push\",\"value\":1}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"push\",\"value\":1}\n";
    let e = check_text(text, 2).expect_err("push is not a queue op");
    assert!(e.starts_with("line 1:"), "{e}");
    assert!(e.contains("no operation `push`"), "{e}");
}
