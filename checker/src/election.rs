//! The `election` workload's check: what clients observe of a leader
//! election service (docs/election.md).
//!
//! Operations: `leader?` sent to one node; the ok value is that node's view
//! `{"node": "n2", "epoch": 3, "leader": "n3"|null, "am_leader": false}`
//! (`node` falls back to the event's `node` field). A view *claims* a
//! leader for its epoch: itself when `am_leader`, else `leader`.
//!
//! Anomalies:
//!
//! - `split-brain`: two different nodes were claimed leader of the same
//!   epoch (by any views, at any times): the promise of every election
//!   service with epochs/terms (Raft's election safety, §5.2);
//! - `epoch-regression`: a node's view had epoch `e`, and a later view of
//!   the same node (invoked after the first completed) has a lower epoch —
//!   the node forgot an epoch it had acted on, which is how reused epochs
//!   start.
//!
//! Measurement, not a verdict: **time to elect** after each nemesis fault
//! aimed at the node then known as the leader (the fault's `node`,
//! `isolated` or `nodes` names it): from the fault's `start` event to the
//! completion of the first ok view that claims a leader in a higher epoch
//! than the one the old leader led.
//!
//! The verdict is `unknown` when no view ever claimed a leader.

use crate::history::{History, HistoryError, Operation, Outcome, Paired, Process, Value};
use crate::verdict::Verdict;
use crate::{Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many anomalies of one kind are listed (all are counted).
const MAX_LISTED: usize = 20;

/// One ok view.
struct Seen<'o> {
    op: &'o Operation,
    node: String,
    epoch: u64,
    /// The leader it claims, if any.
    claims: Option<String>,
    call: u64,
    ret: u64,
}

fn name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(format!("n{n}")),
        _ => None,
    }
}

/// Median and max of `xs` (sorted in place).
fn summary(xs: &mut [f64]) -> Value {
    if xs.is_empty() {
        return json!({"count": 0, "median_ms": null, "max_ms": null});
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    let median = if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    };
    json!({"count": xs.len(), "median_ms": median, "max_ms": xs[xs.len() - 1]})
}

/// Checks an election history (see the module docs).
pub fn check(history: &History) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): cut short, `unknown` (or `invalid` if an
/// anomaly was already found).
pub fn check_paired(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = check_inner(history, paired, deadline)?;
    Ok(within(r, deadline, || "judging the views".to_string()))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let time = |pos: usize| history.events.get(pos).and_then(|e| e.time);
    let mut seen: Vec<Seen> = Vec::new();
    let mut untimed = 0usize;
    for o in &paired.operations {
        if deadline.tick() {
            break;
        }
        if !matches!(o.process, Process::Client(_) | Process::Named(_))
            || !matches!(o.f.as_str(), "leader?" | "leader")
            || o.outcome != Outcome::Ok
        {
            continue;
        }
        let v = &o.value;
        let node = v
            .get("node")
            .and_then(name)
            .or_else(|| {
                o.complete
                    .and_then(|c| history.events[c].node.as_deref().map(String::from))
            })
            .or_else(|| history.events[o.invoke].node.as_deref().map(String::from));
        let (Some(node), Some(epoch)) = (node, v.get("epoch").and_then(Value::as_u64)) else {
            continue;
        };
        let claims = if v.get("am_leader").and_then(Value::as_bool) == Some(true) {
            Some(node.clone())
        } else {
            v.get("leader").and_then(name)
        };
        let (call, ret) = match (time(o.call()), o.complete.and_then(time)) {
            (Some(c), Some(r)) => (c, r),
            _ => {
                untimed += 1;
                (o.call() as u64, o.ret() as u64)
            }
        };
        seen.push(Seen {
            op: o,
            node,
            epoch,
            claims,
            call,
            ret,
        });
    }

    let mut anomalies: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut note = |kind: &'static str, v: Value| {
        let n = counts.entry(kind).or_default();
        *n += 1;
        if *n <= MAX_LISTED {
            anomalies.entry(kind).or_default().push(v);
        }
    };

    // split-brain: per epoch, the first view claiming each leader.
    let mut by_epoch: BTreeMap<u64, BTreeMap<&str, &Seen>> = BTreeMap::new();
    for s in &seen {
        if let Some(l) = &s.claims {
            by_epoch
                .entry(s.epoch)
                .or_default()
                .entry(l.as_str())
                .or_insert(s);
        }
    }
    for (epoch, leaders) in &by_epoch {
        if leaders.len() < 2 {
            continue;
        }
        let parts: Vec<String> = leaders
            .iter()
            .map(|(l, s)| format!("{l} (as seen by {} at {})", s.node, op_where(history, s.op)))
            .collect();
        note(
            "split-brain",
            json!({
                "epoch": epoch,
                "leaders": leaders.keys().collect::<Vec<_>>(),
                "ops": leaders.values().map(|s| op_json(history, s.op)).collect::<Vec<_>>(),
                "explanation": format!("epoch {epoch} had {} leaders: {}", leaders.len(), parts.join("; ")),
            }),
        );
    }

    // epoch-regression: per node, in invocation order, against the highest
    // epoch of a view that completed before this one was invoked.
    let mut per_node: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    for s in &seen {
        per_node.entry(s.node.as_str()).or_default().push(s);
    }
    for (node, mut views) in per_node {
        views.sort_by_key(|s| s.call);
        let mut done: Vec<&Seen> = views.clone();
        done.sort_by_key(|s| s.ret);
        let mut best: Option<&Seen> = None;
        let mut j = 0;
        for s in &views {
            if deadline.tick() {
                break;
            }
            while j < done.len() && done[j].ret < s.call {
                if best.is_none_or(|b| done[j].epoch > b.epoch) {
                    best = Some(done[j]);
                }
                j += 1;
            }
            if let Some(b) = best
                && s.epoch < b.epoch
            {
                note(
                    "epoch-regression",
                    json!({
                        "node": node,
                        "from": b.epoch,
                        "to": s.epoch,
                        "ops": [op_json(history, b.op), op_json(history, s.op)],
                        "explanation": format!(
                            "{node} reported epoch {} ({}), then epoch {} ({})",
                            b.epoch, op_where(history, b.op), s.epoch, op_where(history, s.op)
                        ),
                    }),
                );
                // One report per drop: judge what follows against it.
                best = Some(s);
            }
        }
    }

    let elect = time_to_elect(history, &seen);

    let anomaly_types: Vec<&str> = anomalies.keys().copied().collect();
    let leaders_seen = seen.iter().filter(|s| s.claims.is_some()).count();
    let (verdict, reason) = if !anomaly_types.is_empty() {
        (Verdict::Invalid, None)
    } else if leaders_seen == 0 {
        (
            Verdict::Unknown,
            Some("no view named a leader: nothing to check".to_string()),
        )
    } else {
        (Verdict::Valid, None)
    };
    let epochs: BTreeSet<u64> = by_epoch.keys().copied().collect();
    let fmt_ms = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.0} ms"));
    let mut text = format!(
        "{verdict} (election: {} views, {leaders_seen} naming a leader, {} epochs with a leader; \
         time to elect after {} leader faults: median {}, max {}{}){}\n",
        seen.len(),
        epochs.len(),
        elect["faults"],
        fmt_ms(&elect["median_ms"]),
        fmt_ms(&elect["max_ms"]),
        match elect["not_elected"].as_u64() {
            Some(n) if n > 0 => format!(", {n} without a new leader seen"),
            _ => String::new(),
        },
        if anomaly_types.is_empty() {
            String::new()
        } else {
            format!("; anomalies: {}", anomaly_types.join(", "))
        }
    );
    if let Some(r) = &reason {
        text.push_str(&format!("  {r}\n"));
    }
    for list in anomalies.values() {
        for a in list.iter().take(5) {
            if let Some(e) = a["explanation"].as_str() {
                text.push_str(&format!("  {e}\n"));
            }
        }
    }
    let mut out = json!({
        "valid": verdict.to_json(),
        "model": "election (at most one leader per epoch; epochs never go back)",
        "anomaly_types": anomaly_types,
        "anomalies": anomalies,
        "anomaly_counts": counts,
        "stats": {"views": seen.len(), "views_naming_a_leader": leaders_seen,
                  "epochs_with_a_leader": epochs.len(), "untimed_views": untimed},
        "time_to_elect": elect,
    });
    if let Some(r) = reason {
        out["reason"] = json!(r);
    }
    Ok(WorkloadResult {
        verdict,
        json: out,
        text,
    })
}

/// Time to elect after each fault aimed at the then-current leader.
fn time_to_elect(history: &History, seen: &[Seen]) -> Value {
    // Claims of leadership in completion order.
    let mut claims: Vec<(u64, u64, &str)> = seen
        .iter()
        .filter_map(|s| s.claims.as_deref().map(|l| (s.ret, s.epoch, l)))
        .collect();
    claims.sort();
    // Prefix maxima over the completion order: the claim of the highest
    // (epoch, completion) so far, and its epoch, so each fault is two
    // binary searches instead of two scans of every claim.
    let mut best_upto: Vec<usize> = Vec::with_capacity(claims.len());
    let mut max_epoch: Vec<u64> = Vec::with_capacity(claims.len());
    for (i, &(r, ep, _)) in claims.iter().enumerate() {
        let b = match best_upto.last() {
            Some(&b) if (claims[b].1, claims[b].0) > (ep, r) => b,
            _ => i,
        };
        best_upto.push(b);
        max_epoch.push(claims[b].1);
    }
    let mut samples = Vec::new();
    let mut faults = Vec::new();
    let mut not_elected = 0u64;
    for e in &history.events {
        if !e.process.is_nemesis() || e.f != "start" || e.value.is_null() {
            continue;
        }
        let Some(t) = e.time else { continue };
        let v = &e.value;
        let mut targets: Vec<String> = ["node", "isolated"]
            .iter()
            .filter_map(|k| v.get(*k).and_then(Value::as_str).map(String::from))
            .collect();
        // A list of names, or (a fault of several parts, e.g. `kill-all`) a
        // list of per-part outcomes keyed by the node each part hit.
        if let Some(ns) = v.get("nodes").and_then(Value::as_array) {
            for n in ns {
                match n {
                    Value::String(s) => targets.push(s.clone()),
                    Value::Object(m) => targets.extend(m.keys().cloned()),
                    _ => {}
                }
            }
        }
        // The leader as known at the fault: the claim of the highest epoch
        // completed before it.
        let upto = claims.partition_point(|(r, _, _)| *r <= t);
        let Some(&(_, epoch, leader)) = upto.checked_sub(1).map(|i| &claims[best_upto[i]]) else {
            continue;
        };
        if !targets.iter().any(|n| n == leader) {
            continue;
        }
        // Claims before `upto` have epochs <= `epoch`: the first later one
        // above it is where the running maximum first exceeds it.
        let next = claims.get(max_epoch.partition_point(|&e| e <= epoch));
        let fault = v.get("fault").and_then(Value::as_str).unwrap_or("?");
        match next {
            Some(&(r, ep, l)) => {
                let ms = (r - t) as f64 / 1e6;
                samples.push(ms);
                faults.push(
                    json!({"time": t, "fault": fault, "leader": leader, "epoch": epoch,
                                   "new_leader": l, "new_epoch": ep, "ms": ms}),
                );
            }
            None => {
                not_elected += 1;
                faults.push(
                    json!({"time": t, "fault": fault, "leader": leader, "epoch": epoch,
                                   "new_leader": null, "ms": null}),
                );
            }
        }
    }
    let mut out = summary(&mut samples);
    out["faults"] = json!(faults.len());
    out["not_elected"] = json!(not_elected);
    out["per_fault"] = json!(faults);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::{self, *};
    use crate::history::{Event, History};

    /// `(process, type, value, time in ms)`; process 99 is the nemesis.
    fn h(evs: &[(u64, EventType, Value, u64)]) -> History {
        History {
            events: evs
                .iter()
                .enumerate()
                .map(|(i, (p, k, v, t))| {
                    let (proc_, f) = if *p == 99 {
                        (Process::Nemesis, "start")
                    } else {
                        (Process::Client(*p), "leader?")
                    };
                    Event {
                        index: Some(i as u64).into(),
                        line: i + 1,
                        time: Some(t * 1_000_000),
                        ..Event::new(proc_, *k, f, v.clone())
                    }
                })
                .collect(),
        }
    }

    fn view(node: &str, epoch: u64, leader: Option<&str>, am: bool) -> Value {
        json!({"node": node, "epoch": epoch, "leader": leader, "am_leader": am})
    }

    fn poll(evs: &mut Vec<(u64, EventType, Value, u64)>, p: u64, v: Value, t: u64) {
        evs.push((p, Invoke, Value::Null, t));
        evs.push((p, Ok, v, t + 1));
    }

    #[test]
    fn one_leader_per_epoch_is_valid_and_time_to_elect_is_measured() {
        let mut e = Vec::new();
        poll(&mut e, 1, view("n3", 1, Some("n3"), true), 0);
        poll(&mut e, 2, view("n1", 1, Some("n3"), false), 10);
        e.push((99, Info, Value::Null, 100));
        e.push((99, Info, json!({"fault": "kill", "node": "n3"}), 100));
        poll(&mut e, 2, view("n1", 1, None, false), 200);
        poll(&mut e, 2, view("n2", 2, Some("n2"), true), 700);
        // A fault on a follower is not timed.
        e.push((99, Info, json!({"fault": "pause", "node": "n1"}), 800));
        // A kill-all hits the leader too: timed (its start records one
        // outcome per node).
        poll(&mut e, 2, view("n1", 2, Some("n2"), false), 900);
        e.push((99, Info, Value::Null, 1000));
        e.push((
            99,
            Info,
            json!({"fault": "kill-all", "nodes": [{"n1": {"exit": 0}}, {"n2": {"exit": 0}}]}),
            1000,
        ));
        poll(&mut e, 2, view("n1", 3, Some("n1"), true), 1400);
        let r = check(&h(&e)).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
        let t = &r.json["time_to_elect"];
        assert_eq!(t["faults"], json!(2), "{t}");
        assert_eq!(t["per_fault"][0]["ms"], json!(601.0), "{t}");
        assert_eq!(t["per_fault"][1]["fault"], json!("kill-all"), "{t}");
        assert_eq!(t["per_fault"][1]["ms"], json!(401.0), "{t}");
        assert!(r.text.contains("median 501 ms"), "{}", r.text);
    }

    #[test]
    fn two_leaders_in_one_epoch_is_split_brain() {
        let mut e = Vec::new();
        poll(&mut e, 1, view("n3", 2, Some("n3"), true), 0);
        poll(&mut e, 2, view("n1", 2, Some("n2"), false), 10);
        let r = check(&h(&e)).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.json["anomaly_types"], json!(["split-brain"]));
        let x = r.json["anomalies"]["split-brain"][0]["explanation"]
            .as_str()
            .unwrap();
        assert!(
            x.contains("epoch 2 had 2 leaders") && x.contains("line"),
            "{x}"
        );
    }

    #[test]
    fn a_node_going_back_an_epoch_is_a_regression() {
        let mut e = Vec::new();
        poll(&mut e, 1, view("n1", 4, Some("n3"), false), 0);
        poll(&mut e, 1, view("n1", 0, None, false), 10);
        // Concurrent views may complete in any order: not a regression.
        e.push((2, Invoke, Value::Null, 20));
        e.push((3, Invoke, Value::Null, 20));
        e.push((3, Ok, view("n2", 5, Some("n3"), false), 21));
        e.push((2, Ok, view("n2", 4, Some("n3"), false), 22));
        let r = check(&h(&e)).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["epoch-regression"]));
        assert_eq!(r.json["anomaly_counts"]["epoch-regression"], json!(1));
    }

    #[test]
    fn no_leader_seen_is_unknown() {
        let mut e = Vec::new();
        poll(&mut e, 1, view("n1", 0, None, false), 0);
        let r = check(&h(&e)).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
    }
}
