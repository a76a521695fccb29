//! The lock workload's check: mutual exclusion and fencing tokens.
//!
//! Operations: `acquire` and `release` (also `lock`/`unlock`), optionally
//! per `key` (independent locks). A target that hands out fencing tokens
//! returns one as the `ok` acquire's value: an integer or `{"token": n}`.
//!
//! Three checks, each sound on its own:
//!
//! - **mutual exclusion, directly** (`overlapping-holds`): an `ok` acquire
//!   by process p certainly holds the lock from its completion until p
//!   invokes its next `release` (or the end of the history, when p never
//!   releases: a lock that lapses by itself, as a lease that expires, is
//!   not a mutex). Another `ok` acquire whose whole interval lies inside
//!   that hold was granted while the lock was held.
//! - **linearizability** against Knossos's `mutex` model (acquire when
//!   unlocked, release when locked), with the WGL search of [`crate::linear`]:
//!   it also finds the violations no single pair shows. A search budget
//!   that runs out makes the verdict `unknown`, never `valid`.
//! - **fencing tokens** (Kleppmann's fencing: a lock service's tokens must
//!   grow with every grant): `non-monotonic-token` when an acquire that
//!   completed before another was invoked got a token that is not smaller,
//!   `duplicate-token` when two grants share a token. Skipped (and said so)
//!   when no acquire returned a token.

use crate::history::{History, HistoryError, Operation, Outcome, Paired, Value};
use crate::linear::{self, Options};
use crate::model::{ModelKind, ModelSpec};
use crate::verdict::Verdict;
use crate::{Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Budgets of the lock check's linearizability search.
#[derive(Clone, Debug, PartialEq)]
pub struct LockOptions {
    pub time_limit: Option<Duration>,
    pub memory_limit_bytes: usize,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            time_limit: None,
            memory_limit_bytes: 1 << 30,
        }
    }
}

/// At most this many anomalies of one kind are listed (all are counted).
const MAX_LISTED: usize = 20;

fn is_acquire(op: &Operation) -> bool {
    matches!(op.f.as_str(), "acquire" | "lock")
}

fn is_release(op: &Operation) -> bool {
    matches!(op.f.as_str(), "release" | "unlock")
}

/// The fencing token of an `ok` acquire, when it returned one.
fn token(op: &Operation) -> Option<i64> {
    op.value.as_i64().or_else(|| {
        ["token", "fence", "fencing_token"]
            .iter()
            .find_map(|k| op.value.get(k).and_then(Value::as_i64))
    })
}

/// Checks a lock history (see the module docs).
pub fn check(history: &History, opts: &LockOptions) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, opts, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): cut short, `unknown` (or `invalid` if an
/// anomaly was already found).
pub fn check_paired(
    history: &History,
    paired: &Paired,
    opts: &LockOptions,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = check_inner(history, paired, opts, deadline)?;
    Ok(within(r, deadline, || {
        "checking the lock's holds and tokens".to_string()
    }))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    opts: &LockOptions,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    // References for the direct checks; the linearizability search gets
    // its own copy only if there is time for it.
    let refs: Vec<&Operation> = paired
        .operations
        .iter()
        .filter(|o| is_acquire(o) || is_release(o))
        .collect();
    let model = "lock (mutual exclusion; fencing tokens increase)";
    let grants = refs
        .iter()
        .filter(|o| is_acquire(o) && o.outcome == Outcome::Ok)
        .count();
    if grants == 0 {
        let reason = "no acquire succeeded: nothing to check";
        return Ok(WorkloadResult {
            verdict: Verdict::Unknown,
            json: json!({"valid": Verdict::Unknown.to_json(), "model": model, "reason": reason,
                         "anomaly_types": [], "anomalies": {},
                         "stats": {"ops": refs.len(), "acquired": 0}}),
            text: format!("unknown (lock): {reason}\n"),
        });
    }
    let mut by_key: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for &o in &refs {
        if deadline.tick() {
            return Ok(crate::cut_short(
                model,
                deadline,
                "grouping the operations by key",
            ));
        }
        by_key
            .entry(linear::key_name(o.key.as_deref()))
            .or_default()
            .push(o);
    }
    let mut anomalies: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut tokens_seen = 0usize;
    for group in by_key.values() {
        overlapping_holds(history, group, &mut anomalies, &mut counts, deadline);
        tokens_seen += fencing(history, group, &mut anomalies, &mut counts);
    }
    // No time left for the linearizability search (whose setup alone is
    // linear in the ops): answer with what the direct checks found.
    if deadline.ran_out() || deadline.expired() {
        let verdict = if anomalies.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Invalid
        };
        let types: Vec<&str> = anomalies.keys().copied().collect();
        return Ok(WorkloadResult {
            verdict,
            json: json!({"valid": verdict.to_json(), "model": model, "anomaly_types": types,
                         "anomalies": anomalies, "anomaly_counts": counts,
                         "linearizability": {"valid": Verdict::Unknown.to_json()},
                         "stats": {"ops": refs.len(), "acquired": grants, "tokens": tokens_seen}}),
            text: format!(
                "{verdict} (lock: {grants} acquires granted, {} ops; mutex linearizability not \
                 checked)\n",
                refs.len()
            ),
        });
    }
    let ops: Vec<Operation> = refs.iter().map(|o| (*o).clone()).collect();

    // Knossos's mutex model over the same operations.
    let mut spec = ModelSpec::new(ModelKind::Mutex);
    spec.initial = None;
    let lin_opts = Options {
        // The search gets what is left of the check's budget.
        time_limit: match (opts.time_limit, deadline.remaining()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        memory_limit_bytes: opts.memory_limit_bytes,
        exhaustive: true,
        // The lock checker explains a violation by its own overlapping
        // holds; shrinking a 300k-op mutex history to a minimal set is not
        // bounded well enough yet (issue #16 note) and adds nothing here.
        shrink: false,
        ..Options::default()
    };
    let lin = linear::check(&ops, Some(history), &spec, &lin_opts).map_err(|e| match e {
        linear::LinearError::History(h) => h,
        linear::LinearError::Model(m) => HistoryError {
            line: m.line,
            message: m.message,
        },
    })?;
    let lin_json = lin.to_json(&ops, history);
    if lin.verdict == Verdict::Invalid {
        let list: Vec<Value> = lin_json["anomalies"][linear::NONLINEARIZABLE]
            .as_array()
            .cloned()
            .unwrap_or_default();
        counts.insert("nonlinearizable", list.len());
        anomalies.insert("nonlinearizable", list);
    }
    let unknown_reason = (lin.verdict == Verdict::Unknown).then(|| {
        let why: Vec<String> = lin.keys.values().filter_map(|k| k.reason.clone()).collect();
        format!(
            "the mutex linearizability search did not finish ({})",
            if why.is_empty() {
                "no reason given".to_string()
            } else {
                why.join("; ")
            }
        )
    });
    let verdict = if !anomalies.is_empty() {
        Verdict::Invalid
    } else {
        lin.verdict
    };
    let fencing_note = if tokens_seen == 0 {
        "not checked: no acquire returned a fencing token"
    } else {
        "checked"
    };
    let anomaly_types: Vec<&str> = anomalies.keys().copied().collect();
    let mut text = format!(
        "{verdict} (lock: {grants} acquires granted, {} ops; mutex linearizability {}; fencing \
         tokens {fencing_note}{})\n",
        ops.len(),
        lin.verdict,
        if anomaly_types.is_empty() {
            String::new()
        } else {
            format!("; anomalies: {}", anomaly_types.join(", "))
        }
    );
    if let Some(r) = &unknown_reason {
        text.push_str(&format!("  {r}\n"));
    }
    for list in anomalies.values() {
        for a in list.iter().take(10) {
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
        "linearizability": {"valid": lin.verdict.to_json(), "keys": lin_json["keys"]},
        "fencing": fencing_note,
        "stats": {"ops": ops.len(), "acquired": grants, "tokens": tokens_seen,
                  "states_explored": lin.stats.states_explored,
                  "elapsed_ms": lin.stats.elapsed_ms},
    });
    if let Some(r) = unknown_reason {
        out["reason"] = json!(r);
    }
    Ok(WorkloadResult {
        verdict,
        json: out,
        text,
    })
}

/// Two grants inside one certain hold (see the module docs).
fn overlapping_holds<'h>(
    history: &History,
    ops: &[&Operation],
    anomalies: &mut BTreeMap<&'h str, Vec<Value>>,
    counts: &mut BTreeMap<&'h str, usize>,
    deadline: &Deadline,
) {
    // Each op's process's next release (invoked later), from one backward
    // pass: a forward scan per grant was quadratic.
    let mut next_release = vec![usize::MAX; ops.len()];
    let mut later: std::collections::HashMap<&crate::history::Process, usize> =
        std::collections::HashMap::new();
    for (i, o) in ops.iter().enumerate().rev() {
        next_release[i] = later.get(&o.process).copied().unwrap_or(usize::MAX);
        if is_release(o) {
            later.insert(&o.process, o.call());
        }
    }
    // ok acquires by invocation position (ops are in invocation order).
    let grants: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| is_acquire(o) && o.outcome == Outcome::Ok)
        .collect();
    let mut n = 0usize;
    for (i, a) in ops.iter().enumerate() {
        if deadline.tick() {
            return;
        }
        if !(is_acquire(a) && a.outcome == Outcome::Ok) {
            continue;
        }
        let start = a.ret();
        // The holder's next release, invoked after the grant.
        let end = next_release[i];
        let from = grants.partition_point(|b| b.call() <= start);
        for b in &grants[from..] {
            if deadline.tick() {
                return;
            }
            if b.call() >= end {
                break;
            }
            if b.ret() >= end {
                continue;
            }
            n += 1;
            if n > MAX_LISTED {
                continue;
            }
            let until = if end == usize::MAX {
                "it never released it".to_string()
            } else {
                let line = history.events.get(end).map_or(0, |e| e.line);
                format!("it invoked its release at line {line}")
            };
            anomalies
                .entry("overlapping-holds")
                .or_default()
                .push(json!({
                    "explanation": format!(
                        "the acquire at {} was granted while the lock was held: the acquire at {} \
                         had completed before it was invoked, and {until} only after it completed",
                        op_where(history, b),
                        op_where(history, a)
                    ),
                    "holder": op_json(history, a),
                    "op": op_json(history, b),
                }));
        }
    }
    if n > 0 {
        counts.insert("overlapping-holds", n);
    }
}

/// Fencing-token checks; returns how many grants carried a token.
fn fencing<'h>(
    history: &History,
    ops: &[&Operation],
    anomalies: &mut BTreeMap<&'h str, Vec<Value>>,
    counts: &mut BTreeMap<&'h str, usize>,
) -> usize {
    let mut by_call: Vec<(&Operation, i64)> = ops
        .iter()
        .filter(|o| is_acquire(o) && o.outcome == Outcome::Ok)
        .filter_map(|o| token(o).map(|t| (*o, t)))
        .collect();
    let n_tokens = by_call.len();
    by_call.sort_by_key(|(o, _)| o.call());
    let mut by_ret = by_call.clone();
    by_ret.sort_by_key(|(o, _)| o.ret());

    let mut non_monotonic = 0usize;
    // The largest token among grants completed before the current invocation.
    let mut best: Option<(&Operation, i64)> = None;
    let mut j = 0;
    for &(b, tb) in &by_call {
        while j < by_ret.len() && by_ret[j].0.ret() < b.call() {
            if best.is_none_or(|(_, t)| by_ret[j].1 > t) {
                best = Some(by_ret[j]);
            }
            j += 1;
        }
        if let Some((a, ta)) = best
            && tb <= ta
        {
            non_monotonic += 1;
            if non_monotonic <= MAX_LISTED {
                anomalies
                    .entry("non-monotonic-token")
                    .or_default()
                    .push(json!({
                        "explanation": format!(
                            "the acquire at {} got fencing token {tb}, but the acquire at {} \
                             completed before it was invoked with token {ta}: tokens must increase",
                            op_where(history, b),
                            op_where(history, a)
                        ),
                        "earlier": op_json(history, a),
                        "op": op_json(history, b),
                    }));
            }
        }
    }
    if non_monotonic > 0 {
        counts.insert("non-monotonic-token", non_monotonic);
    }

    let mut same: BTreeMap<i64, Vec<&Operation>> = BTreeMap::new();
    for &(o, t) in &by_call {
        same.entry(t).or_default().push(o);
    }
    let dups: Vec<Value> = same
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(t, v)| {
            let at: Vec<String> = v.iter().map(|o| op_where(history, o)).collect();
            json!({
                "explanation": format!("fencing token {t} was granted {} times: {}", v.len(), at.join("; ")),
                "token": t,
                "ops": v.iter().map(|o| op_json(history, o)).collect::<Vec<_>>(),
            })
        })
        .collect();
    if !dups.is_empty() {
        counts.insert("duplicate-token", dups.len());
        anomalies
            .entry("duplicate-token")
            .or_default()
            .extend(dups.into_iter().take(MAX_LISTED));
    }
    n_tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::*;
    use crate::testing::hist;

    fn run(h: &History) -> WorkloadResult {
        check(h, &LockOptions::default()).unwrap()
    }

    /// p0 acquires (token 1) and releases; p1 acquires (token `t1`) after
    /// p0 invoked its release (`late`: after it completed).
    fn handoff(t1: i64, late: bool) -> History {
        let mut evs = vec![
            (0, Invoke, "acquire", Value::Null),
            (0, Ok, "acquire", json!(1)),
            (0, Invoke, "release", Value::Null),
        ];
        let b = [
            (1, Invoke, "acquire", Value::Null),
            (1, Ok, "acquire", json!({"token": t1})),
        ];
        let r = (0, Ok, "release", Value::Null);
        if late {
            evs.push(r);
            evs.extend(b);
        } else {
            evs.extend(b);
            evs.push(r);
        }
        hist(&evs)
    }

    #[test]
    fn handoffs_with_growing_tokens_are_valid() {
        for late in [false, true] {
            let r = run(&handoff(2, late));
            assert_eq!(r.verdict, Verdict::Valid, "late={late}: {}", r.json);
            assert_eq!(r.json["fencing"], "checked");
        }
    }

    #[test]
    fn a_grant_inside_a_hold_is_invalid() {
        // p1's acquire is invoked and ok while p0 holds and has not released.
        let h = hist(&[
            (0, Invoke, "acquire", Value::Null),
            (0, Ok, "acquire", Value::Null),
            (1, Invoke, "acquire", Value::Null),
            (1, Ok, "acquire", Value::Null),
            (0, Invoke, "release", Value::Null),
            (0, Ok, "release", Value::Null),
        ]);
        let r = run(&h);
        assert_eq!(r.verdict, Verdict::Invalid);
        let types = r.json["anomaly_types"].as_array().unwrap();
        assert!(types.contains(&json!("overlapping-holds")), "{}", r.json);
        assert!(types.contains(&json!("nonlinearizable")), "{}", r.json);
        let e = r.json["anomalies"]["overlapping-holds"][0]["explanation"]
            .as_str()
            .unwrap();
        assert!(e.contains("index 3") && e.contains("index 1"), "{e}");
        assert_eq!(
            r.json["fencing"],
            "not checked: no acquire returned a fencing token"
        );
    }

    #[test]
    fn a_grant_concurrent_with_the_release_is_fine_but_not_before_it() {
        // Valid near-twin of the above: p1's acquire completes after p0's
        // release was invoked (handoff(…, false)); here it is invoked before
        // p0's release is, but completes after: it may wait for the lock.
        let h = hist(&[
            (0, Invoke, "acquire", Value::Null),
            (0, Ok, "acquire", Value::Null),
            (1, Invoke, "acquire", Value::Null),
            (0, Invoke, "release", Value::Null),
            (0, Ok, "release", Value::Null),
            (1, Ok, "acquire", Value::Null),
        ]);
        assert_eq!(run(&h).verdict, Verdict::Valid);
    }

    #[test]
    fn tokens_must_increase_in_real_time() {
        let r = run(&handoff(1, true));
        assert_eq!(r.verdict, Verdict::Invalid);
        let types = r.json["anomaly_types"].as_array().unwrap();
        assert!(types.contains(&json!("non-monotonic-token")), "{}", r.json);
        assert!(types.contains(&json!("duplicate-token")), "{}", r.json);
        let r = run(&handoff(0, true));
        assert_eq!(
            r.json["anomaly_types"],
            json!(["non-monotonic-token"]),
            "{}",
            r.json
        );
    }

    #[test]
    fn only_the_linearizability_search_sees_some_violations() {
        // Two concurrent grants, no release: neither lies inside the other's
        // certain hold (each was invoked before the other completed), but
        // no order of them is legal for a mutex.
        let h = hist(&[
            (0, Invoke, "acquire", Value::Null),
            (1, Invoke, "acquire", Value::Null),
            (0, Ok, "acquire", Value::Null),
            (1, Ok, "acquire", Value::Null),
        ]);
        let r = run(&h);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.json["anomaly_types"], json!(["nonlinearizable"]));
    }

    #[test]
    fn no_grant_is_unknown() {
        let h = hist(&[
            (0, Invoke, "acquire", Value::Null),
            (0, Fail, "acquire", Value::Null),
        ]);
        assert_eq!(run(&h).verdict, Verdict::Unknown);
    }
}
