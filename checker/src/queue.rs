//! The queue workload's check, as Jepsen's total-queue checker
//! (`jepsen.checker/total-queue`): every element is enqueued once; after
//! the faults heal a final `drain` empties the queue. Then
//!
//! - **lost**: an acknowledged (`ok`) enqueue whose element was never
//!   dequeued (needs an `ok` drain: without one, what is still queued is
//!   unknown, and so is the verdict);
//! - **unexpected**: a dequeued element that was never enqueued (no
//!   enqueue of it was even attempted);
//! - **duplicated**: an element dequeued more than once. Jepsen's
//!   total-queue reports these without failing the test (at-least-once
//!   queues); here they fail it unless [`QueueOptions::allow_duplicates`];
//! - **recovered** (not an anomaly): dequeued elements whose enqueue had an
//!   unknown outcome (`info`).
//!
//! Operations: `enqueue v`, `dequeue` (the `ok` value is the element; a
//! `null` value or `fail` means nothing was dequeued) and `drain` (the `ok`
//! value is the list of elements left).

use crate::history::{History, HistoryError, Outcome, Paired, Value};
use crate::verdict::Verdict;
use crate::{Deadline, WorkloadResult, op_json, within};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Knobs of the queue check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueOptions {
    /// Accept an element dequeued more than once (at-least-once delivery).
    pub allow_duplicates: bool,
}

/// Checks a queue history (see the module docs).
pub fn check(history: &History, opts: &QueueOptions) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, opts, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): cut short, `unknown` (or `invalid` if an
/// anomaly was already found).
pub fn check_paired(
    history: &History,
    paired: &Paired,
    opts: &QueueOptions,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = check_inner(history, paired, opts, deadline)?;
    Ok(within(r, deadline, || {
        "reading the enqueues and dequeues".to_string()
    }))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    opts: &QueueOptions,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let mut attempted: BTreeSet<String> = BTreeSet::new();
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    // element → the ops that dequeued it (drains included)
    let mut dequeued: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut drained = false;
    for op in &paired.operations {
        if deadline.tick() {
            break;
        }
        match (op.f.as_str(), op.outcome) {
            ("enqueue", Outcome::Fail) => {}
            ("enqueue", outcome) => {
                let v = op.invoke_value.to_string();
                attempted.insert(v.clone());
                if outcome == Outcome::Ok {
                    acknowledged.insert(v);
                }
            }
            ("dequeue", Outcome::Ok) if !op.value.is_null() => {
                dequeued
                    .entry(op.value.to_string())
                    .or_default()
                    .push(op.id);
            }
            ("drain", Outcome::Ok) => {
                let Some(items) = op.value.as_array() else {
                    let pos = op.complete.unwrap_or(op.invoke);
                    return Err(HistoryError {
                        line: history.events.get(pos).map_or(0, |e| e.line),
                        message: format!("drain returned {}, not a list of elements", op.value),
                    });
                };
                drained = true;
                for v in items {
                    dequeued.entry(v.to_string()).or_default().push(op.id);
                }
            }
            _ => {}
        }
    }
    let lost: Vec<&String> = if drained {
        acknowledged
            .iter()
            .filter(|v| !dequeued.contains_key(*v))
            .collect()
    } else {
        Vec::new()
    };
    let unexpected: Vec<&String> = dequeued
        .keys()
        .filter(|v| !attempted.contains(*v))
        .collect();
    let duplicated: Vec<(&String, &Vec<usize>)> =
        dequeued.iter().filter(|(_, ops)| ops.len() > 1).collect();
    let recovered = dequeued
        .keys()
        .filter(|v| attempted.contains(*v) && !acknowledged.contains(*v))
        .count();
    let undrained = acknowledged
        .iter()
        .filter(|v| !dequeued.contains_key(*v))
        .count();

    let show = |l: &[&String]| {
        l.iter()
            .take(10)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut anomalies = serde_json::Map::new();
    if !lost.is_empty() {
        anomalies.insert("lost".into(), json!([{
            "explanation": format!(
                "{} acknowledged enqueue(s) were never dequeued, not even by the final drain, e.g. {}",
                lost.len(), show(&lost)),
            "elements": lost.iter().take(100).collect::<Vec<_>>(),
        }]));
    }
    if !unexpected.is_empty() {
        anomalies.insert(
            "unexpected".into(),
            json!([{
                "explanation": format!(
                    "{} dequeued element(s) were never enqueued, e.g. {}",
                    unexpected.len(), show(&unexpected)),
                "elements": unexpected.iter().take(100).collect::<Vec<_>>(),
            }]),
        );
    }
    if !duplicated.is_empty() {
        let list: Vec<Value> = duplicated
            .iter()
            .take(100)
            .map(|(v, ids)| {
                let ops: Vec<Value> = ids
                    .iter()
                    .map(|&i| op_json(history, &paired.operations[i]))
                    .collect();
                let at: Vec<String> = ops
                    .iter()
                    .map(|o| format!("index {} (line {})", o["index"], o["line"]))
                    .collect();
                json!({
                    "explanation": format!("element {v} was dequeued {} times: at {}", ids.len(), at.join(", ")),
                    "element": v, "count": ids.len(), "ops": ops,
                })
            })
            .collect();
        anomalies.insert("duplicated".into(), Value::Array(list));
    }
    let failing = !lost.is_empty()
        || !unexpected.is_empty()
        || (!duplicated.is_empty() && !opts.allow_duplicates);
    let (verdict, reason) = if failing {
        (Verdict::Invalid, None)
    } else if attempted.is_empty() && dequeued.is_empty() {
        (
            Verdict::Unknown,
            Some("no enqueue or dequeue happened: nothing to check".to_string()),
        )
    } else if !drained && undrained > 0 {
        (
            Verdict::Unknown,
            Some(format!(
                "no final drain succeeded, so whether {undrained} acknowledged element(s) \
                 never dequeued were lost or are still queued is unknown"
            )),
        )
    } else {
        (Verdict::Valid, None)
    };
    let anomaly_types: Vec<String> = anomalies.keys().cloned().collect();
    let mut text = format!(
        "{verdict} (queue: {} acknowledged enqueues, {} dequeued, {} lost, {} duplicated, \
         {} unexpected, {recovered} of unknown outcome recovered)\n",
        acknowledged.len(),
        dequeued.len(),
        lost.len(),
        duplicated.len(),
        unexpected.len()
    );
    if let Some(r) = &reason {
        text.push_str(&format!("  {r}\n"));
    }
    for list in anomalies.values() {
        for a in list.as_array().into_iter().flatten().take(10) {
            if let Some(e) = a["explanation"].as_str() {
                text.push_str(&format!("  {e}\n"));
            }
        }
    }
    let mut json = json!({
        "valid": verdict.to_json(),
        "model": "total-queue (no acknowledged element lost, none duplicated or unexpected)",
        "duplicates_allowed": opts.allow_duplicates,
        "anomaly_types": anomaly_types,
        "anomalies": anomalies,
        "stats": {"attempted": attempted.len(), "acknowledged": acknowledged.len(),
                  "dequeued": dequeued.len(), "drained": drained, "lost": lost.len(),
                  "unexpected": unexpected.len(), "duplicated": duplicated.len(),
                  "recovered": recovered},
    });
    if let Some(r) = reason {
        json["reason"] = json!(r);
    }
    Ok(WorkloadResult {
        verdict,
        json,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::*;
    use crate::testing::hist;

    /// Enqueues 1 (ok), 2 (ok), 3 (info); dequeues `deq`; drains `rest`.
    fn h(deq: Value, rest: Value) -> History {
        hist(&[
            (0, Invoke, "enqueue", json!(1)),
            (0, Ok, "enqueue", json!(1)),
            (0, Invoke, "enqueue", json!(2)),
            (0, Ok, "enqueue", json!(2)),
            (1, Invoke, "enqueue", json!(3)),
            (1, Info, "enqueue", json!(3)),
            (2, Invoke, "dequeue", Value::Null),
            (2, Ok, "dequeue", deq),
            (2, Invoke, "drain", Value::Null),
            (2, Ok, "drain", rest),
        ])
    }

    fn verdict(h: &History) -> (Verdict, Value) {
        let r = check(h, &QueueOptions::default()).unwrap();
        (r.verdict, r.json)
    }

    #[test]
    fn everything_dequeued_once_is_valid() {
        let (v, j) = verdict(&h(json!(1), json!([2, 3])));
        assert_eq!(v, Verdict::Valid, "{j}");
        assert_eq!(j["stats"]["recovered"], 1);
        // The info enqueue may never have happened.
        assert_eq!(verdict(&h(json!(1), json!([2]))).0, Verdict::Valid);
    }

    #[test]
    fn lost_duplicated_unexpected() {
        let (v, j) = verdict(&h(json!(1), json!([3])));
        assert_eq!(v, Verdict::Invalid);
        assert_eq!(j["anomaly_types"], json!(["lost"]), "{j}");
        assert_eq!(j["anomalies"]["lost"][0]["elements"], json!(["2"]));

        let (v, j) = verdict(&h(json!(1), json!([1, 2])));
        assert_eq!(v, Verdict::Invalid);
        assert_eq!(j["anomaly_types"], json!(["duplicated"]), "{j}");
        let e = j["anomalies"]["duplicated"][0]["explanation"]
            .as_str()
            .unwrap();
        assert!(e.contains("index 7") && e.contains("index 9"), "{e}");
        let r = check(
            &h(json!(1), json!([1, 2])),
            &QueueOptions {
                allow_duplicates: true,
            },
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Valid);

        let (v, j) = verdict(&h(json!(9), json!([1, 2])));
        assert_eq!(v, Verdict::Invalid);
        assert_eq!(j["anomaly_types"], json!(["unexpected"]), "{j}");
    }

    #[test]
    fn no_queue_operations_is_unknown() {
        let h = hist(&[(0, Invoke, "read", Value::Null), (0, Ok, "read", json!(1))]);
        assert_eq!(verdict(&h).0, Verdict::Unknown);
    }

    #[test]
    fn without_a_drain_missing_elements_are_unknown() {
        let mut hh = h(json!(1), json!([2]));
        hh.events.truncate(8);
        let (v, j) = verdict(&hh);
        assert_eq!(v, Verdict::Unknown, "{j}");
        assert!(j["reason"].as_str().unwrap().contains("drain"));
    }
}
