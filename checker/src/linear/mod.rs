//! Linearizability checking: the WGL search ([`search`]) per key, keys
//! checked independently and in parallel (P-compositionality: a history is
//! linearizable iff each key's sub-history is).
//!
//! Entry points: [`check_history`] (pairs the events first) and [`check`].
//! The answer is a [`LinearResult`]; [`LinearResult::to_json`] renders the
//! `results.json` form.

mod cache;
pub(crate) use cache::FxHasher;
pub mod generator;
mod minimal;
mod search;
#[cfg(test)]
mod tests;

use crate::history::{History, Operation, Outcome, Value};
pub use crate::model::key_name;
use crate::model::{
    CollModel, Keyed, Model, ModelError, ModelKind, ModelSpec, MultiModel, MutexModel, Problem,
    RegModel, op_line,
};
use crate::verdict::Verdict;
use minimal::{ShrinkLimits, Shrunk};
pub(crate) use minimal::{coll_why, register_why, short};
use search::{Budget, SearchOut};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Search budgets and parallelism.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wall-clock budget for the whole check; keys still running when it
    /// expires answer `unknown`.
    pub time_limit: Option<Duration>,
    /// Budget for the memo tables of all keys together (an estimate).
    pub memory_limit_bytes: usize,
    /// Check each key on its own (P-compositionality). When false, a keyed
    /// register/kv history is checked as one map-valued object; other models
    /// always split (their keys are independent objects either way).
    pub split_by_key: bool,
    /// Worker threads; 0 means `available_parallelism()`.
    pub threads: usize,
    /// Check every key even after one is found not linearizable. When
    /// false (the default, as Porcupine), the remaining keys stop and
    /// answer `unknown`; the overall verdict is `invalid` either way.
    pub exhaustive: bool,
    /// Shrink each invalid key to a minimal counterexample
    /// ([`KeyResult::minimal`]). Runs under `time_limit` (or, without one,
    /// 2 s per key); costs nothing for valid keys.
    pub shrink: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_limit: None,
            memory_limit_bytes: 1 << 30,
            split_by_key: true,
            threads: 0,
            exhaustive: false,
            shrink: true,
        }
    }
}

/// Why a history could not be checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinearError {
    /// Events could not be paired into operations.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// An operation does not fit the model (names its line).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The verdict for one key (one independent object).
///
/// JSON (`serde`): `{"valid": true|false|"unknown", "reason": null|"…",
/// "ops": 84, "states_explored": 312, "longest_prefix": [0, 2, 1],
/// "failing_op": 7, "tried": [7, 9], "final_state": "3"}`; op ids are
/// `Operation::id`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyResult {
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    /// Why the verdict is `unknown` (time or memory budget).
    pub reason: Option<String>,
    /// Operations searched (after dropping failed ops and unconstrained
    /// reads).
    pub ops: usize,
    /// Distinct (linearized set, state) configurations memoised.
    pub states_explored: u64,
    /// The longest linearizable sequence the search reached (op ids, in
    /// linearization order). Empty for valid keys.
    pub longest_prefix: Vec<usize>,
    /// The op whose return could not be passed at the end of that sequence:
    /// no order of the ops before its return leads further.
    pub failing_op: Option<usize>,
    /// Ops that were candidates there (concurrent with it), all tried.
    pub tried: Vec<usize>,
    /// Model state after `longest_prefix`.
    pub final_state: Option<String>,
    /// Invalid keys: a minimal counterexample, as op ids in invocation
    /// order. The key restricted to these ops, with every other op relaxed
    /// (free to take effect at any time, or never), is still not
    /// linearizable, and relaxing any one of them makes it linearizable
    /// (see `minimal.rs`). Empty for other keys.
    pub minimal: Vec<usize>,
    /// `Some(false)` when shrinking ran out of time: `minimal` is then a
    /// proven counterexample that may not be minimal (possibly the whole
    /// key). `None` when not shrunk.
    pub minimal_complete: Option<bool>,
    /// Why `minimal` admits no order, in the model's terms.
    pub minimal_explanation: Option<String>,
}

/// Totals over all keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub ops: usize,
    pub keys: usize,
    pub states_explored: u64,
    pub elapsed_ms: f64,
    pub threads: usize,
}

/// The anomaly type of a key that is not linearizable, in `results.json`'s
/// `anomalies` and `anomaly_types`.
pub const NONLINEARIZABLE: &str = "nonlinearizable";

/// The answer of the linearizability checker.
///
/// `verdict` is the worst key verdict (invalid > unknown > valid); a history
/// with no `ok` operation is `valid` (vacuously, as Knossos and Porcupine)
/// with the warning `no-completed-ops`. Keys are named by [`key_name`]: the key string, other
/// key values as JSON text, and `_` for operations without a key (or for
/// the whole history when it is not split).
///
/// [`LinearResult::to_json`] gives the `results.json` form:
///
/// ```json
/// {"valid": false, "model": "cas-register",
///  "keys": {"_": {"valid": false, "reason": null, "ops": 3,
///                 "states_explored": 2, "longest_prefix": [0, 1],
///                 "failing_op": 2, "tried": [2], "final_state": "2"}},
///  "anomaly_types": ["nonlinearizable"],
///  "anomalies": {"nonlinearizable": [{"key": "_",
///                 "op": {"id": 2, "process": 2, "f": "read", "value": 1,
///                        "line": 6, "index": 4},
///                 "prefix": [{"id": 0, …}, {"id": 1, …}],
///                 "tried": [{"id": 2, …}],
///                 "final_state": "2",
///                 "explanation": "…",
///                 "minimal": [{"id": 0, …, "returned_line": 2}, {"id": 2, …}],
///                 "minimal_complete": true,
///                 "minimal_explanation": "Key \"_\": a minimal counterexample has 2 …"}]},
///  "warnings": [],
///  "stats": {"ops": 3, "keys": 1, "states_explored": 2,
///            "elapsed_ms": 0.1, "threads": 1}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearResult {
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    pub model: String,
    pub keys: BTreeMap<String, KeyResult>,
    pub stats: Stats,
    /// Codes of conditions worth a look that do not change the verdict:
    /// `no-completed-ops` (no `ok` operation: valid only vacuously).
    pub warnings: Vec<String>,
}

/// Pairs `history` and checks it.
pub fn check_history(
    history: &History,
    spec: &ModelSpec,
    opts: &Options,
) -> Result<LinearResult, LinearError> {
    let paired = history.pair()?;
    check(&paired.operations, Some(history), spec, opts)
}

/// Searches one key; shrinks it when it is not linearizable.
fn run_problem<M: Model>(
    (mut m, s, o): Problem<M>,
    b: &Budget,
    shrink: Option<&ShrinkLimits>,
) -> (SearchOut, Option<Shrunk>) {
    let init = s.clone();
    let out = search::search(&mut m, s, &o, b);
    let shrunk = match shrink {
        Some(limits) if out.verdict == Some(Verdict::Invalid) => {
            // Each key gets its own shrink budget, inside the check-wide
            // deadline if there is one: an explanation must not eat the
            // check's whole budget (a 120 s `faultline test` check spent
            // all of it shrinking one 151-op key while later keys waited).
            let own_end = Instant::now() + minimal::DEFAULT_SHRINK_LIMIT;
            let own = ShrinkLimits {
                deadline: Some(limits.deadline.map_or(own_end, |d| d.min(own_end))),
                time_limit: Some(
                    limits
                        .time_limit
                        .map_or(minimal::DEFAULT_SHRINK_LIMIT, |t| {
                            t.min(minimal::DEFAULT_SHRINK_LIMIT)
                        }),
                ),
                mem_limit: limits.mem_limit,
            };
            let limits = &own;
            Some(minimal::shrink(&mut m, &init, &o, &out, limits))
        }
        _ => None,
    };
    (out, shrunk)
}

/// Checks paired operations against one of the built-in models `spec`
/// names. `history` (the source of `ops`) is used only to name lines in
/// errors and explanations. Each model goes through [`check_model`].
pub fn check(
    ops: &[Operation],
    history: Option<&History>,
    spec: &ModelSpec,
    opts: &Options,
) -> Result<LinearResult, LinearError> {
    match spec.kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv if !opts.split_by_key => {
            check_model(ops, history, &Keyed::new(RegModel::new(spec)), opts)
        }
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            check_model(ops, history, &RegModel::new(spec), opts)
        }
        ModelKind::Mutex => check_model(ops, history, &MutexModel::new(spec)?, opts),
        ModelKind::MultiRegister => check_model(ops, history, &MultiModel::new(spec), opts),
        ModelKind::Set | ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
            check_model(ops, history, &CollModel::new(spec)?, opts)
        }
    }
}

/// Checks paired operations against `model`, built in or your own (see
/// [`Model`] and `checker/examples/user_model.rs`): the operations are
/// split into objects by [`Model::partition`], each object compiled on its
/// own clone of `model` and searched in parallel under `opts`' budgets
/// (`unknown` when they run out), and each object that is not
/// linearizable shrunk to a minimal counterexample (`opts.shrink`).
/// `opts.split_by_key` is the built-in models' business (see [`check`]):
/// here the partition alone decides. `history` (the source of `ops`) is
/// used only to name lines.
pub fn check_model<M: Model>(
    ops: &[Operation],
    history: Option<&History>,
    model: &M,
    opts: &Options,
) -> Result<LinearResult, LinearError> {
    let start = Instant::now();
    // Group by object, keeping invocation order within each group.
    let mut groups: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        groups.entry(model.partition(op)).or_default().push(op);
    }
    let mut jobs: Vec<(String, Problem<M>)> = Vec::with_capacity(groups.len());
    for (k, g) in &groups {
        jobs.push((k.clone(), crate::model::compile(model, k, g, history)?));
    }

    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
    .clamp(1, jobs.len().max(1));
    // Largest first, so one big key doesn't start last.
    jobs.sort_by_key(|(_, j)| std::cmp::Reverse(j.2.len()));
    let n_jobs = jobs.len();
    type Slot<M> = Mutex<Option<(String, Problem<M>)>>;
    let queue: Vec<Slot<M>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let next = AtomicUsize::new(0);
    let cancel = AtomicU8::new(0);
    let mem_used = AtomicUsize::new(0);
    let budget = Budget {
        deadline: opts.time_limit.map(|t| start + t),
        time_limit: opts.time_limit,
        cancel: &cancel,
        exhaustive: opts.exhaustive,
        mem_used: &mem_used,
        mem_limit: opts.memory_limit_bytes,
    };
    let shrink_limits = opts.shrink.then_some(ShrinkLimits {
        deadline: budget.deadline,
        time_limit: opts.time_limit,
        mem_limit: opts.memory_limit_bytes,
    });
    let results: Mutex<Vec<(String, KeyResult)>> = Mutex::new(Vec::with_capacity(n_jobs));
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = queue.get(i) else { break };
            let taken = slot.lock().map(|mut s| s.take()).unwrap_or(None);
            let Some((key, job)) = taken else { continue };
            let n = job.2.len();
            let (out, shrunk) = run_problem(job, &budget, shrink_limits.as_ref());
            let kr = key_result(out, n, shrunk);
            if let Ok(mut r) = results.lock() {
                r.push((key, kr));
            }
        }
    };
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(worker);
            }
        });
    }
    let mut keys: BTreeMap<String, KeyResult> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .collect();
    for (k, kr) in keys.iter_mut() {
        if kr.minimal.is_empty() {
            continue;
        }
        let Some(all) = groups.get(k) else { continue };
        let min: Vec<&Operation> = kr
            .minimal
            .iter()
            .filter_map(|&id| all.iter().find(|o| o.id == id).copied())
            .collect();
        kr.minimal_explanation = Some(minimal::explain(
            model,
            k,
            &min,
            all,
            kr.minimal_complete == Some(true),
            history,
        ));
    }
    let mut verdict = Verdict::Valid;
    let mut stats = Stats {
        ops: 0,
        keys: keys.len(),
        states_explored: 0,
        elapsed_ms: 0.0,
        threads,
    };
    for kr in keys.values() {
        verdict = verdict.worst(kr.verdict);
        stats.ops += kr.ops;
        stats.states_explored += kr.states_explored;
    }
    if keys.len() != n_jobs {
        // A worker died: never claim validity for keys not checked.
        verdict = verdict.worst(Verdict::Unknown);
    }
    let mut warnings = Vec::new();
    if !ops.iter().any(|o| o.outcome == Outcome::Ok) {
        // No operation certainly completed (none at all, all failed, or all
        // timed out): every such history is linearizable, vacuously, as
        // Knossos and Porcupine answer. Say so, since a run whose cluster
        // never started looks like this.
        warnings.push("no-completed-ops".to_string());
    }
    stats.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(LinearResult {
        verdict,
        model: model.name(),
        keys,
        stats,
        warnings,
    })
}

fn key_result(out: SearchOut, ops: usize, shrunk: Option<Shrunk>) -> KeyResult {
    let verdict = out.verdict.unwrap_or(Verdict::Unknown);
    let explain = verdict != Verdict::Valid;
    KeyResult {
        verdict,
        reason: out.reason,
        ops,
        states_explored: out.states,
        longest_prefix: if explain { out.longest } else { Vec::new() },
        failing_op: if explain { out.failing } else { None },
        tried: if explain { out.tried } else { Vec::new() },
        final_state: if explain { out.final_state } else { None },
        minimal_complete: shrunk.as_ref().map(|s| s.complete),
        minimal: shrunk.map(|s| s.ids).unwrap_or_default(),
        minimal_explanation: None,
    }
}

fn op_json(op: &Operation, history: &History) -> Value {
    let ev = history.events.get(op.invoke);
    serde_json::json!({
        "id": op.id,
        "process": op.process.to_value(),
        "f": op.f,
        "key": op.key,
        "value": op.value,
        "outcome": op.outcome,
        "line": op_line(op, Some(history)),
        "index": ev.and_then(|e| e.index.get()).unwrap_or(op.invoke as u64),
    })
}

fn op_prose(op: &Operation, history: &History) -> String {
    let how = match op.outcome {
        Outcome::Ok => "ok",
        Outcome::Fail => "failed",
        Outcome::Info => "unknown-outcome",
    };
    format!(
        "{how} {} {} by process {} (line {})",
        op.f,
        op.value,
        op.process,
        op_line(op, Some(history))
    )
}

impl LinearResult {
    /// The `results.json` form (see the type's docs): `valid`, `model`,
    /// `keys`, `anomaly_types`, `anomalies` (`nonlinearizable`: one entry
    /// per invalid key),
    /// `stats`. `ops` are the operations that were checked (ids index it).
    pub fn to_json(&self, ops: &[Operation], history: &History) -> Value {
        let by_id = |id: usize| {
            ops.get(id)
                .filter(|o| o.id == id)
                .or_else(|| ops.iter().find(|o| o.id == id))
        };
        let mut anomalies = Vec::new();
        for (key, kr) in &self.keys {
            if kr.verdict != Verdict::Invalid {
                continue;
            }
            let prefix: Vec<Value> = kr
                .longest_prefix
                .iter()
                .filter_map(|&i| by_id(i))
                .map(|o| op_json(o, history))
                .collect();
            let tried: Vec<Value> = kr
                .tried
                .iter()
                .filter_map(|&i| by_id(i))
                .map(|o| op_json(o, history))
                .collect();
            let minimal: Vec<Value> = kr
                .minimal
                .iter()
                .filter_map(|&i| by_id(i))
                .map(|o| {
                    let mut j = op_json(o, history);
                    j["returned_line"] = o
                        .complete
                        .and_then(|c| history.events.get(c))
                        .map_or(Value::Null, |e| Value::from(e.line));
                    j
                })
                .collect();
            let failing = kr.failing_op.and_then(by_id);
            let state = kr.final_state.clone().unwrap_or_default();
            let explanation = match failing {
                Some(f) => {
                    let others: Vec<String> = kr
                        .tried
                        .iter()
                        .filter(|&&i| i != f.id)
                        .filter_map(|&i| by_id(i))
                        .map(|o| op_prose(o, history))
                        .collect();
                    format!(
                        "Key {key:?} is not linearizable. The longest linearizable prefix has {} operation(s) and leaves the {} in state {state}. \
                         The {} must take effect before it returns, but it is illegal in that state{}, and no order of the operations concurrent with it \
                         ({}) reaches a state where it is legal.",
                        kr.longest_prefix.len(),
                        self.model,
                        op_prose(f, history),
                        if kr.tried.contains(&f.id) {
                            ""
                        } else {
                            " or already ruled out"
                        },
                        if others.is_empty() {
                            "none".to_string()
                        } else {
                            others.join("; ")
                        }
                    )
                }
                None => format!(
                    "Key {key:?} is not linearizable: no operation can be linearized first."
                ),
            };
            anomalies.push(serde_json::json!({
                "key": key,
                "op": failing.map(|o| op_json(o, history)),
                "prefix": prefix,
                "tried": tried,
                "final_state": kr.final_state,
                "explanation": explanation,
                "minimal": minimal,
                "minimal_complete": kr.minimal_complete,
                "minimal_explanation": kr.minimal_explanation,
            }));
        }
        serde_json::json!({
            "valid": self.verdict.to_json(),
            "model": self.model,
            "keys": serde_json::to_value(&self.keys).unwrap_or(Value::Null),
            // One shape with every checker: anomaly type → list.
            "anomaly_types": if anomalies.is_empty() { vec![] } else { vec![NONLINEARIZABLE] },
            "anomalies": if anomalies.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ (NONLINEARIZABLE): anomalies })
            },
            "warnings": self.warnings,
            "stats": serde_json::to_value(&self.stats).unwrap_or(Value::Null),
        })
    }
}
