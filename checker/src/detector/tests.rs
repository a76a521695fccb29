//! Tests of the detector checker.

use super::*;
use crate::history::{Event, EventType};

/// `(process, type, f, node, value, time in ms)`; process `None` is the nemesis.
fn h(evs: &[Ev]) -> History {
    History {
        events: evs
            .iter()
            .enumerate()
            .map(|(i, (p, t, f, n, v, ms))| {
                let process = match p {
                    Some(p) => Process::Client(*p),
                    None => Process::Nemesis,
                };
                let mut e = Event::new(process, *t, *f, v.clone());
                e.index = Some(i as u64).into();
                e.line = i + 1;
                e.time = Some(ms * MS);
                e.node = (!n.is_empty()).then(|| crate::Sym::new(n));
                e
            })
            .collect(),
    }
}

fn view(states: &[(&str, &str)]) -> Value {
    states
        .iter()
        .map(|(n, s)| (n.to_string(), json!({"state": s, "incarnation": 0})))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

type Ev = (
    Option<u64>,
    EventType,
    &'static str,
    &'static str,
    Value,
    u64,
);

/// n1 and n2 poll every 100 ms over `[from, to)`; `state_of_3(t)` is
/// what they see of n3.
fn polls(from: u64, to: u64, state_of_3: impl Fn(u64) -> &'static str) -> Vec<Ev> {
    let mut v = Vec::new();
    let mut t = from;
    while t < to {
        for (p, n) in [(1u64, "n1"), (2, "n2")] {
            let s = state_of_3(t);
            v.push((Some(p), EventType::Invoke, "members", n, Value::Null, t));
            v.push((
                Some(p),
                EventType::Ok,
                "members",
                n,
                view(&[("n1", "alive"), ("n2", "alive"), ("n3", s)]),
                t + 5,
            ));
        }
        t += 100;
    }
    v
}

fn nemesis(f: &'static str, v: Value, t: u64) -> [Ev; 2] {
    [
        (None, EventType::Info, f, "", Value::Null, t),
        (None, EventType::Info, f, "", v, t + 10),
    ]
}

fn with_kill(state_of_3: impl Fn(u64) -> &'static str) -> History {
    let mut evs = polls(0, 20_000, state_of_3);
    evs.extend(nemesis(
        "start",
        json!({"fault": "kill", "node": "n3"}),
        5_000,
    ));
    evs.extend(nemesis(
        "heal",
        json!({"healed": [{"kind": "kill"}]}),
        11_000,
    ));
    evs.sort_by_key(|e| e.5);
    h(&evs)
}

#[test]
fn a_detected_kill_is_valid_and_timed() {
    let r = check(
        &with_kill(|t| match t {
            5_800..11_500 => "dead",
            _ => "alive",
        }),
        &DetectorOptions::default(),
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
    let st = &r.json["stats"];
    assert_eq!(st["failures"], 1);
    assert_eq!(st["detections"], 2);
    assert_eq!(st["detection_median_ms"], 805);
    assert_eq!(st["false_suspicions"], 0);
}

#[test]
fn a_kill_never_noticed_is_never_detected() {
    let r = check(&with_kill(|_| "alive"), &DetectorOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(
        r.json["anomaly_types"],
        json!(["never-detected"]),
        "{}",
        r.json
    );
}

#[test]
fn a_node_left_dead_after_the_heal_is_false_dead() {
    let r = check(
        &with_kill(|t| if t >= 5_800 { "dead" } else { "alive" }),
        &DetectorOptions::default(),
    )
    .unwrap();
    assert_eq!(r.json["anomaly_types"], json!(["false-dead"]), "{}", r.json);
    let e = r.json["anomalies"]["false-dead"][0]["explanation"]
        .as_str()
        .unwrap();
    assert!(e.contains("n3 dead at 15"), "{e}");
}

#[test]
fn suspicions_under_loss_count_but_do_not_invalidate() {
    let mut evs = polls(0, 20_000, |t| match t {
        3_000..3_400 => "suspect",
        4_000..4_200 => "dead",
        _ => "alive",
    });
    evs.extend(nemesis(
        "start",
        json!({"fault": "loss", "probability": 0.3}),
        2_000,
    ));
    evs.extend(nemesis("heal", json!({"healed": []}), 6_000));
    evs.sort_by_key(|e| e.5);
    let r = check(&h(&evs), &DetectorOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
    let st = &r.json["stats"];
    assert_eq!(st["false_suspicions"], 4, "{st}");
    assert_eq!(st["per_node"]["n3"]["false_suspicions"], 4, "{st}");
    let rate = st["false_positive_rate"].as_f64().unwrap();
    assert!(rate > 0.01 && rate < 0.05, "{rate}");
    // 12 bad of the 41 polls × 2 observers × 2 subjects inside the window.
    let under = st["false_positive_rate_under_loss"].as_f64().unwrap();
    assert!((under - 12.0 / 164.0).abs() < 1e-9, "{st}");
}

#[test]
fn a_false_positive_rate_above_the_bound_is_invalid() {
    let mut evs = polls(0, 20_000, |t| match t {
        3_000..3_400 => "suspect",
        4_000..4_200 => "dead",
        _ => "alive",
    });
    evs.extend(nemesis(
        "start",
        json!({"fault": "loss", "probability": 0.3}),
        2_000,
    ));
    evs.extend(nemesis("heal", json!({"healed": []}), 6_000));
    evs.sort_by_key(|e| e.5);
    let h = h(&evs);
    // The rate is between 1% and 5% (the test above).
    for (bound, verdict) in [(0.01, Verdict::Invalid), (0.05, Verdict::Valid)] {
        let opts = DetectorOptions {
            max_false_positive_rate: Some(bound),
            ..DetectorOptions::default()
        };
        let r = check(&h, &opts).unwrap();
        assert_eq!(r.verdict, verdict, "{bound}: {}", r.json);
        if verdict == Verdict::Invalid {
            assert_eq!(r.json["anomaly_types"], json!(["false-positive-rate"]));
            let e = r.json["anomalies"]["false-positive-rate"][0]["explanation"]
                .as_str()
                .unwrap();
            assert!(e.contains("above the bound of 1.00%"), "{e}");
        }
    }
}

#[test]
fn a_partitioned_node_may_be_suspected() {
    let mut evs = polls(0, 20_000, |t| match t {
        3_000..9_000 => "dead",
        _ => "alive",
    });
    evs.extend(nemesis(
        "start",
        json!({"fault": "partition", "grudge": {"n3": ["n1", "n2"]}}),
        2_500,
    ));
    evs.extend(nemesis("heal", json!({"healed": []}), 8_000));
    evs.sort_by_key(|e| e.5);
    let r = check(&h(&evs), &DetectorOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
    assert_eq!(r.json["stats"]["false_suspicions"], 0);
}

#[test]
fn without_views_it_is_unknown() {
    let r = check(&h(&[]), &DetectorOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
}
