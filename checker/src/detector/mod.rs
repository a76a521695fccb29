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

use crate::history::{History, HistoryError, Operation, Outcome, Paired, Process, Value};
use crate::verdict::Verdict;
use crate::{Anomalies, Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// A membership state as the checks tell them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Alive,
    Suspect,
    Dead,
    Other,
}

impl State {
    fn of(s: Option<&str>) -> State {
        match s {
            Some("alive") => State::Alive,
            Some("suspect") => State::Suspect,
            Some("dead") => State::Dead,
            _ => State::Other,
        }
    }

    fn bad(self) -> bool {
        matches!(self, State::Suspect | State::Dead)
    }
}

/// One `ok` view: who saw what, when; nodes as interned ids.
struct Obs<'o> {
    op: &'o Operation,
    observer: usize,
    call: u64,
    ret: u64,
    view: Vec<(usize, State)>,
}

impl Obs<'_> {
    fn state_of(&self, n: usize) -> Option<State> {
        self.view.iter().find(|(m, _)| *m == n).map(|(_, s)| *s)
    }
}

/// Intervals `[start, end]` sorted by start with the running maximum of
/// `end`: "does any interval with start <= b reach a?" in O(log n).
#[derive(Default)]
struct Reach {
    starts: Vec<u64>,
    max_end: Vec<u64>,
}

impl Reach {
    fn new(mut v: Vec<(u64, u64)>) -> Reach {
        v.sort_unstable();
        let mut r = Reach::default();
        let mut m = 0;
        for (s, e) in v {
            m = m.max(e);
            r.starts.push(s);
            r.max_end.push(m);
        }
        r
    }

    /// Some interval has `start <= b` and `end >= a`.
    fn any(&self, a: u64, b: u64) -> bool {
        let n = self.starts.partition_point(|&s| s <= b);
        n > 0 && self.max_end[n - 1] >= a
    }
}

fn median(v: &mut [u64]) -> Option<u64> {
    v.sort_unstable();
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Checks a membership history (see the module docs).
pub fn check(history: &History, opts: &DetectorOptions) -> Result<WorkloadResult, HistoryError> {
    Ok(check_paired(
        history,
        &history.pair()?,
        opts,
        &Deadline::none(),
    ))
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): cut short, `unknown` (or `invalid` if an anomaly
/// was already found).
///
/// Near-linear: node names are interned, the fault windows become per
/// node (and per pair of nodes) interval indexes answering "was it down
/// / cut off / was anything active" by binary search, and each (window,
/// subject, observer) looks only at that observer's views within the
/// window.
pub fn check_paired(
    history: &History,
    paired: &Paired,
    opts: &DetectorOptions,
    deadline: &Deadline,
) -> WorkloadResult {
    let mut total = 0;
    let r = check_inner(history, paired, opts, deadline, &mut total);
    within(r, deadline, || {
        format!("the check had read {total} views when it stopped")
    })
}

fn check_inner(
    history: &History,
    paired: &Paired,
    opts: &DetectorOptions,
    deadline: &Deadline,
    total: &mut usize,
) -> WorkloadResult {
    let time = |pos: usize| history.events.get(pos).and_then(|e| e.time);
    let ws = windows(history);
    let model = "detector (failures detected within a bound; no live, reachable member left dead)";
    let grace = opts.grace_ms * MS;
    let bound = opts.detection_bound_ms * MS;

    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut intern = |n: &str| -> usize {
        if let Some(&i) = ids.get(n) {
            return i;
        }
        ids.insert(n.to_string(), names.len());
        names.push(n.to_string());
        names.len() - 1
    };
    let mut obs: Vec<Obs> = Vec::new();
    for o in &paired.operations {
        if deadline.tick() {
            break;
        }
        if !(matches!(o.process, Process::Client(_) | Process::Named(_))
            && o.f == "members"
            && o.outcome == Outcome::Ok)
        {
            continue;
        }
        let observer = intern(
            history
                .events
                .get(o.invoke)
                .and_then(|e| e.node.as_deref())
                .unwrap_or_default(),
        );
        let (Some(call), Some(ret)) = (time(o.call()), o.complete.and_then(time)) else {
            continue;
        };
        let view = o
            .value
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (intern(k), State::of(v["state"].as_str())))
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
    *total = obs.len();
    obs.sort_by_key(|o| o.ret);
    // Every name the windows use, interned too (a cut may name a node no
    // view mentions).
    for w in &ws {
        for n in w.failed.iter().chain(w.cut.keys()) {
            intern(n);
        }
        for c in w.cut.values() {
            for n in c {
                intern(n);
            }
        }
    }
    let nodes: BTreeSet<String> = obs
        .iter()
        .flat_map(|o| o.view.iter().map(|v| v.0).chain([o.observer]))
        .map(|i| names[i].clone())
        .filter(|n| !n.is_empty())
        .collect();
    let node_ids: Vec<usize> = nodes.iter().map(|n| ids[n]).collect();
    let n_names = names.len();

    // Was `n` failed (or within the grace after) at some time in [a, b]?
    let down_idx: Vec<Reach> = {
        let mut per: Vec<Vec<(u64, u64)>> = vec![Vec::new(); n_names];
        for w in &ws {
            for n in &w.failed {
                per[ids[n]].push((w.start, w.end.saturating_add(grace)));
            }
        }
        per.into_iter().map(Reach::new).collect()
    };
    let down = |n: usize, a: u64, b: u64| down_idx[n].any(a, b);
    // Were x and y cut apart at some time in [a, b]? Per unordered pair.
    let apart_idx: HashMap<(usize, usize), Reach> = {
        let mut per: HashMap<(usize, usize), Vec<(u64, u64)>> = HashMap::new();
        for w in &ws {
            let iv = (w.start, w.end.saturating_add(grace));
            let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
            for (p, c) in &w.cut {
                let p = ids[p];
                if c.contains("*") {
                    for q in 0..n_names {
                        pairs.insert((p.min(q), p.max(q)));
                    }
                }
                for q in c {
                    let q = ids[q];
                    pairs.insert((p.min(q), p.max(q)));
                }
            }
            for pq in pairs {
                per.entry(pq).or_default().push(iv);
            }
        }
        per.into_iter().map(|(k, v)| (k, Reach::new(v))).collect()
    };
    let apart = |x: usize, y: usize, a: u64, b: u64| {
        apart_idx
            .get(&(x.min(y), x.max(y)))
            .is_some_and(|r| r.any(a, b))
    };
    // No fault of any kind active in [a - grace, b].
    let active = Reach::new(ws.iter().map(|w| (w.start, w.end)).collect());
    let quiet = |a: u64, b: u64| !active.any(a.saturating_sub(grace), b);
    // Some lossy window contains [a, b].
    let lossy = Reach::new(
        ws.iter()
            .filter(|w| w.lossy)
            .map(|w| (w.start, w.end))
            .collect(),
    );
    let under_loss = |a: u64, b: u64| lossy.any(b, a);

    let mut an = Anomalies::new(MAX_LISTED);

    // Each observer's views, in completion order, and its longest view
    // (to bound "invoked before t" scans by completion time).
    let mut by_observer: Vec<Vec<usize>> = vec![Vec::new(); n_names];
    let mut longest: Vec<u64> = vec![0; n_names];
    for (i, x) in obs.iter().enumerate() {
        by_observer[x.observer].push(i);
        longest[x.observer] = longest[x.observer].max(x.ret - x.call);
    }

    // Detection times, per subject; undetected (failure, observer) pairs.
    let mut detect: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut undetected = 0usize;
    let mut failures = 0usize;
    'windows: for w in &ws {
        for s in &w.failed {
            failures += 1;
            let sid = ids[s];
            for &o in node_ids.iter().filter(|&&o| o != sid) {
                if deadline.tick() {
                    break 'windows;
                }
                if down(o, w.start, w.end) {
                    continue;
                }
                let mine = &by_observer[o];
                // Views with ret >= start and call <= heal, in ret order:
                // past ret > heal + longest, none was invoked by the heal.
                let lo = mine.partition_point(|&x| obs[x].ret < w.start);
                let limit = w.heal.saturating_add(longest[o]);
                let mut first = None;
                for &x in &mine[lo..] {
                    if deadline.tick() {
                        break 'windows;
                    }
                    let x = &obs[x];
                    if x.ret > limit {
                        break;
                    }
                    if x.call <= w.heal && x.state_of(sid).is_some_and(State::bad) {
                        first = Some(x);
                        break;
                    }
                }
                match first {
                    Some(x) => detect
                        .entry(s.clone())
                        .or_default()
                        .push(x.ret.saturating_sub(w.start)),
                    None => undetected += 1,
                }
                // The last view invoked `bound` after the failure began
                // and completed by the heal.
                let hi = mine.partition_point(|&x| obs[x].ret <= w.heal);
                let late = mine[lo..hi.max(lo)]
                    .iter()
                    .rev()
                    .map(|&x| &obs[x])
                    .find(|x| x.call >= w.start + bound && x.ret <= w.heal);
                if w.heal != u64::MAX
                    && w.heal - w.start > bound
                    && let Some(x) = late
                    && x.state_of(sid) == Some(State::Alive)
                {
                    let o = &names[o];
                    an.note("never-detected", || {
                        json!({
                            "explanation": format!(
                                "{s} failed ({}) at {} ms until {} ms, but {o} still showed it alive \
                                 {} ms after it failed ({})",
                                w.fault, w.start / MS, w.heal / MS,
                                (x.call - w.start) / MS, op_where(history, x.op)),
                            "node": s, "observer": o, "op": op_json(history, x.op),
                        })
                    });
                }
            }
        }
    }

    // False suspicions and false dead: walk each observer's views in order.
    let mut false_susp: BTreeMap<String, usize> = BTreeMap::new();
    let mut fs_by_id: Vec<usize> = vec![0; n_names];
    let mut prev: HashMap<(usize, usize), State> = HashMap::new();
    let (mut up_obs, mut up_obs_bad) = (0usize, 0usize);
    // The same, for observations made while packets were being lost.
    let (mut loss_obs, mut loss_obs_bad) = (0usize, 0usize);
    for x in &obs {
        if deadline.tick() {
            break;
        }
        for &(s, state) in &x.view {
            if s == x.observer {
                continue;
            }
            let justified = down(s, x.call, x.ret)
                || down(x.observer, x.call, x.ret)
                || apart(s, x.observer, x.call, x.ret);
            let bad = state.bad();
            let was = prev.insert((x.observer, s), state);
            if justified {
                continue;
            }
            up_obs += 1;
            if bad {
                up_obs_bad += 1;
            }
            if under_loss(x.call, x.ret) {
                loss_obs += 1;
                if bad {
                    loss_obs_bad += 1;
                }
            }
            if bad && was.is_none_or(|w| w == State::Alive) {
                fs_by_id[s] += 1;
            }
            if state == State::Dead && quiet(x.call, x.ret) {
                let (s, observer) = (&names[s], &names[x.observer]);
                an.note("false-dead", || {
                    json!({
                        "explanation": format!(
                            "{observer} showed {s} dead at {} ms ({}), though {s} was up and reachable \
                             and no fault had been active for {} ms",
                            x.call / MS, op_where(history, x.op), opts.grace_ms),
                        "node": s, "observer": observer, "op": op_json(history, x.op),
                    })
                });
            }
        }
    }
    for (i, n) in fs_by_id.into_iter().enumerate() {
        if n > 0 {
            false_susp.insert(names[i].clone(), n);
        }
    }
    let mut counts = an.counts;
    let mut anomalies = an.listed;

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
    WorkloadResult {
        verdict,
        json: out,
        text,
    }
}

#[cfg(test)]
mod tests;
