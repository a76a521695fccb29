//! The `membership` workload's check: a failure detector judged by its two
//! properties (Chandra and Toueg, "Unreliable failure detectors for
//! reliable distributed systems", JACM 1996), measured the way the SWIM
//! paper does (Das, Gupta, Motivala, DSN 2002, §5: detection time and
//! false-positive rate).
//!
//! Operations: `members` by a client bound to one node (the event's
//! `node`, the *observer*), ok value the observer's view
//! `{"n1": {"state": "alive"|"suspect"|"dead", "incarnation": 3}, …}`.
//! Faults come from the nemesis events: `kill`, `pause`, `crash`,
//! `kill-leader`, `pause-leader` of a `node` are real failures of that node
//! from the nemesis' `start` invocation to the `heal` invocation (a
//! suspicion is excused until the heal's completion plus the grace);
//! `partition` (its `grudge`), `isolate-leader` and `skew-leader` separate
//! nodes; every other fault (`loss`, `latency`, `bandwidth`, `clock`, and
//! a fault's `loss` field) fails nothing.
//!
//! Measured, per node (the *subject*):
//!
//! - **detection time**: from a failure's start to each live observer's
//!   first observation (completion time) of the subject as suspect or
//!   dead; median and max over every (failure, observer);
//! - **false suspicions**: an observer's view of the subject went from
//!   alive to suspect/dead while the subject was up (no failure of it
//!   within [`DetectorOptions::grace_ms`]) and in the observer's part of
//!   any partition — loss does not excuse it. Per node, per minute of the
//!   run, and the **false-positive rate**: the share of observations of
//!   up, reachable members that showed them suspect or dead.
//!
//! Anomalies (each makes the run invalid):
//!
//! - `never-detected` (completeness): a node failed for longer than
//!   [`DetectorOptions::detection_bound_ms`], and a live observer's last
//!   observation before the heal, at least that long after the failure
//!   began, still showed it alive;
//! - `false-dead` (accuracy): an observer showed an up, reachable node as
//!   dead at a time when no fault of any kind had been active for
//!   [`DetectorOptions::grace_ms`] (so every false suspicion caused by
//!   loss had had that long to be refuted) — this includes the final reads
//!   after the heal.
//!
//! - `false-positive-rate` (accuracy, only with
//!   [`DetectorOptions::max_false_positive_rate`]): the run's
//!   false-positive rate exceeds the bound the user set — a detector that
//!   suspects live members too readily (SWIM without indirect probes) has
//!   no single wrong observation, only too many.
//!
//! The verdict is `unknown` when no view was ever observed.

use crate::history::{History, HistoryError, Operation, Outcome, Process, Value};
use crate::verdict::Verdict;
use crate::{WorkloadResult, op_json, op_where};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many anomalies of one kind are listed (all are counted).
const MAX_LISTED: usize = 20;

/// The check's bounds.
#[derive(Clone, Copy, Debug)]
pub struct DetectorOptions {
    /// A failure longer than this must be detected by every live observer.
    pub detection_bound_ms: u64,
    /// Time after a fault ends during which views may still be catching
    /// up (a restarted node rejoining, a refutation spreading).
    pub grace_ms: u64,
    /// An accuracy bound (`--max-false-positive-rate`): a run whose
    /// false-positive rate exceeds it is invalid (`false-positive-rate`).
    /// None: the rate is measured, not judged — what rate is acceptable
    /// depends on the loss the run injects, so only the user can say.
    pub max_false_positive_rate: Option<f64>,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            detection_bound_ms: 5_000,
            grace_ms: 4_000,
            max_false_positive_rate: None,
        }
    }
}

/// One nemesis window: from a start's invocation to the next heal's completion.
#[derive(Debug, Default)]
struct Window {
    start: u64,
    /// The heal's invocation: a killed node is restarted after this, so a
    /// view that shows it alive later may be right.
    heal: u64,
    end: u64,
    fault: String,
    /// Nodes that really failed.
    failed: BTreeSet<String>,
    /// node → nodes it cannot reach (made symmetric).
    cut: BTreeMap<String, BTreeSet<String>>,
    /// Packets were lost (a `loss` fault, or another fault's `loss` field).
    lossy: bool,
}

const MS: u64 = 1_000_000;

fn windows(history: &History) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    let mut pending_start: Option<u64> = None;
    let mut pending_heal: Option<u64> = None;
    let mut open: Option<Window> = None;
    for e in history.events.iter().filter(|e| e.process.is_nemesis()) {
        let Some(t) = e.time else { continue };
        match (e.f.as_str(), e.value.is_null()) {
            ("start", true) => pending_start = Some(t),
            ("start", false) => {
                let v = &e.value;
                let fault = v["fault"].as_str().unwrap_or("").to_string();
                let mut w = Window {
                    start: pending_start.take().unwrap_or(t),
                    heal: u64::MAX,
                    end: u64::MAX,
                    fault: fault.clone(),
                    ..Window::default()
                };
                w.lossy = fault == "loss" || v.get("loss").is_some();
                let node = v["node"].as_str().map(str::to_string);
                match fault.as_str() {
                    "kill" | "pause" | "crash" | "kill-leader" | "pause-leader" => {
                        w.failed.extend(node);
                    }
                    "isolate-leader" | "skew-leader" => {
                        if let Some(n) = node {
                            w.cut.entry(n).or_default().insert("*".into());
                        }
                    }
                    _ => {}
                }
                if let Some(g) = v["grudge"].as_object() {
                    for (a, bs) in g {
                        for b in bs
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                        {
                            w.cut.entry(a.clone()).or_default().insert(b.to_string());
                            w.cut.entry(b.to_string()).or_default().insert(a.clone());
                        }
                    }
                }
                if let Some(prev) = open.replace(w) {
                    out.push(prev);
                }
            }
            ("heal", true) => pending_heal = Some(t),
            ("heal", false) => {
                let call = pending_heal.take().unwrap_or(t);
                if let Some(mut w) = open.take() {
                    w.heal = call.max(w.start);
                    w.end = t;
                    out.push(w);
                }
            }
            _ => {}
        }
    }
    out.extend(open);
    out
}

/// One `ok` view: who saw what, when.
struct Obs<'o> {
    op: &'o Operation,
    observer: String,
    call: u64,
    ret: u64,
    view: BTreeMap<String, String>,
}

fn median(v: &mut [u64]) -> Option<u64> {
    v.sort_unstable();
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Checks a membership history (see the module docs).
pub fn check(history: &History, opts: &DetectorOptions) -> Result<WorkloadResult, HistoryError> {
    let paired = history.pair()?;
    let time = |pos: usize| history.events.get(pos).and_then(|e| e.time);
    let ws = windows(history);
    let model = "detector (failures detected within a bound; no live, reachable member left dead)";
    let grace = opts.grace_ms * MS;
    let bound = opts.detection_bound_ms * MS;

    let mut obs: Vec<Obs> = Vec::new();
    for o in &paired.operations {
        if !(matches!(o.process, Process::Client(_) | Process::Named(_))
            && o.f == "members"
            && o.outcome == Outcome::Ok)
        {
            continue;
        }
        let observer = history
            .events
            .get(o.invoke)
            .and_then(|e| e.node.clone())
            .unwrap_or_default();
        let (Some(call), Some(ret)) = (time(o.call()), o.complete.and_then(time)) else {
            continue;
        };
        let view = o
            .value
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v["state"].as_str().unwrap_or("unknown").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        obs.push(Obs {
            op: o,
            observer,
            call,
            ret,
            view,
        });
    }
    obs.sort_by_key(|o| o.ret);
    let nodes: BTreeSet<String> = obs
        .iter()
        .flat_map(|o| o.view.keys().cloned().chain([o.observer.clone()]))
        .filter(|n| !n.is_empty())
        .collect();

    // Was `n` failed (or within the grace after) at some time in [a, b]?
    let down = |n: &str, a: u64, b: u64| {
        ws.iter()
            .any(|w| w.failed.contains(n) && w.start <= b && a <= w.end.saturating_add(grace))
    };
    let apart = |x: &str, y: &str, a: u64, b: u64| {
        ws.iter().any(|w| {
            w.start <= b
                && a <= w.end.saturating_add(grace)
                && [(x, y), (y, x)].iter().any(|(p, q)| {
                    w.cut
                        .get(*p)
                        .is_some_and(|c| c.contains(*q) || c.contains("*"))
                })
        })
    };
    // No fault of any kind active in [a - grace, b].
    let quiet = |a: u64, b: u64| {
        !ws.iter()
            .any(|w| w.start <= b && a.saturating_sub(grace) <= w.end)
    };

    let mut anomalies: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut note = |kind: &'static str, v: Value| {
        let n = counts.entry(kind).or_default();
        *n += 1;
        if *n <= MAX_LISTED {
            anomalies.entry(kind).or_default().push(v);
        }
    };

    // Detection times, per subject; undetected (failure, observer) pairs.
    let mut detect: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut undetected = 0usize;
    let mut failures = 0usize;
    for w in &ws {
        for s in &w.failed {
            failures += 1;
            for o in nodes.iter().filter(|o| *o != s) {
                if down(o, w.start, w.end) {
                    continue;
                }
                let mine: Vec<&Obs> = obs
                    .iter()
                    .filter(|x| &x.observer == o && x.ret >= w.start && x.call <= w.heal)
                    .collect();
                let first = mine.iter().find(|x| {
                    matches!(x.view.get(s).map(String::as_str), Some("suspect" | "dead"))
                });
                match first {
                    Some(x) => detect
                        .entry(s.clone())
                        .or_default()
                        .push(x.ret.saturating_sub(w.start)),
                    None => undetected += 1,
                }
                let late = mine
                    .iter()
                    .rev()
                    .find(|x| x.call >= w.start + bound && x.ret <= w.heal);
                if w.heal != u64::MAX
                    && w.heal - w.start > bound
                    && let Some(x) = late
                    && x.view.get(s).map(String::as_str) == Some("alive")
                {
                    note(
                        "never-detected",
                        json!({
                            "explanation": format!(
                                "{s} failed ({}) at {} ms until {} ms, but {o} still showed it alive \
                                 {} ms after it failed ({})",
                                w.fault, w.start / MS, w.heal / MS,
                                (x.call - w.start) / MS, op_where(history, x.op)),
                            "node": s, "observer": o, "op": op_json(history, x.op),
                        }),
                    );
                }
            }
        }
    }

    // False suspicions and false dead: walk each observer's views in order.
    let mut false_susp: BTreeMap<String, usize> = BTreeMap::new();
    let mut prev: BTreeMap<(String, String), String> = BTreeMap::new();
    let (mut up_obs, mut up_obs_bad) = (0usize, 0usize);
    // The same, for observations made while packets were being lost.
    let (mut loss_obs, mut loss_obs_bad) = (0usize, 0usize);
    for x in &obs {
        for (s, state) in &x.view {
            if *s == x.observer {
                continue;
            }
            let justified = down(s, x.call, x.ret)
                || down(&x.observer, x.call, x.ret)
                || apart(s, &x.observer, x.call, x.ret);
            let bad = matches!(state.as_str(), "suspect" | "dead");
            let was = prev.insert((x.observer.clone(), s.clone()), state.clone());
            if justified {
                continue;
            }
            up_obs += 1;
            if bad {
                up_obs_bad += 1;
            }
            if ws
                .iter()
                .any(|w| w.lossy && w.start <= x.call && x.ret <= w.end)
            {
                loss_obs += 1;
                if bad {
                    loss_obs_bad += 1;
                }
            }
            if bad && was.as_deref().is_none_or(|w| w == "alive") {
                *false_susp.entry(s.clone()).or_default() += 1;
            }
            if state == "dead" && quiet(x.call, x.ret) {
                note(
                    "false-dead",
                    json!({
                        "explanation": format!(
                            "{} showed {s} dead at {} ms ({}), though {s} was up and reachable \
                             and no fault had been active for {} ms",
                            x.observer, x.call / MS, op_where(history, x.op), opts.grace_ms),
                        "node": s, "observer": x.observer, "op": op_json(history, x.op),
                    }),
                );
            }
        }
    }

    let span = match (obs.first(), obs.last()) {
        (Some(a), Some(b)) => b.ret.saturating_sub(a.call),
        _ => 0,
    };
    let minutes = span as f64 / 60e9;
    let mut per_node = serde_json::Map::new();
    let mut all_detect: Vec<u64> = Vec::new();
    for n in &nodes {
        let mut d = detect.get(n).cloned().unwrap_or_default();
        all_detect.extend(&d);
        let fs = false_susp.get(n).copied().unwrap_or(0);
        per_node.insert(
            n.clone(),
            json!({
                "detections": d.len(),
                "detection_median_ms": median(&mut d).map(|x| x / MS),
                "detection_max_ms": d.iter().max().map(|x| x / MS),
                "false_suspicions": fs,
                "false_suspicions_per_minute": if minutes > 0.0 { fs as f64 / minutes } else { 0.0 },
            }),
        );
    }
    let total_fs: usize = false_susp.values().sum();
    let det_median = median(&mut all_detect).map(|x| x / MS);
    let det_max = all_detect.iter().max().map(|x| x / MS);
    let fp_rate = if up_obs > 0 {
        up_obs_bad as f64 / up_obs as f64
    } else {
        0.0
    };
    let fp_rate_loss = (loss_obs > 0).then(|| loss_obs_bad as f64 / loss_obs as f64);
    let per_node_minute = if minutes > 0.0 && !nodes.is_empty() {
        total_fs as f64 / minutes / nodes.len() as f64
    } else {
        0.0
    };

    if let Some(bound) = opts.max_false_positive_rate
        && fp_rate > bound
    {
        *counts.entry("false-positive-rate").or_default() += 1;
        anomalies.entry("false-positive-rate").or_default().push(json!({
            "explanation": format!(
                "{up_obs_bad} of {up_obs} observations of up, reachable members ({:.2}%) showed them \
                 suspect or dead, above the bound of {:.2}% (--max-false-positive-rate {bound})",
                fp_rate * 100.0,
                bound * 100.0
            ),
            "false_positive_rate": fp_rate,
            "bound": bound,
        }));
    }

    let anomaly_types: Vec<&str> = anomalies.keys().copied().collect();
    let reason = (obs.is_empty() && anomalies.is_empty())
        .then_some("no membership view was observed: nothing to check");
    let verdict = if !anomalies.is_empty() {
        Verdict::Invalid
    } else if reason.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let ms = |x: Option<u64>| x.map_or("-".to_string(), |v| format!("{v} ms"));
    let mut text = format!(
        "{verdict} (detector: {} views of {} nodes over {:.1} min; {failures} failures, detection \
         median {} max {}, {undetected} (failure, observer) pairs undetected during the fault; \
         {total_fs} false suspicions ({per_node_minute:.2} per node-minute), false-positive rate \
         {:.4}{})\n",
        obs.len(),
        nodes.len(),
        minutes,
        ms(det_median),
        ms(det_max),
        fp_rate,
        if anomaly_types.is_empty() {
            String::new()
        } else {
            format!("; anomalies: {}", anomaly_types.join(", "))
        }
    );
    for (n, v) in &per_node {
        text.push_str(&format!(
            "  {n}: {} detections (median {}, max {}), {} false suspicions\n",
            v["detections"], v["detection_median_ms"], v["detection_max_ms"], v["false_suspicions"]
        ));
    }
    if let Some(r) = reason {
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
        "model": model,
        "anomaly_types": anomaly_types,
        "anomalies": anomalies,
        "anomaly_counts": counts,
        "stats": {
            "views": obs.len(),
            "nodes": nodes.len(),
            "minutes": minutes,
            "failures": failures,
            "detections": all_detect.len(),
            "detection_median_ms": det_median,
            "detection_max_ms": det_max,
            "undetected_during_fault": undetected,
            "false_suspicions": total_fs,
            "false_suspicions_per_node_minute": per_node_minute,
            "false_positive_rate": fp_rate,
            "false_positive_rate_under_loss": fp_rate_loss,
            "observations_under_loss": loss_obs,
            "detection_bound_ms": opts.detection_bound_ms,
            "grace_ms": opts.grace_ms,
            "per_node": per_node,
        },
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

#[cfg(test)]
mod tests {
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
                    e.index = Some(i as u64);
                    e.line = i + 1;
                    e.time = Some(ms * MS);
                    e.node = (!n.is_empty()).then(|| n.to_string());
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
}
