//! The counter workload's check, as Jepsen's counter checker
//! (`jepsen.checker/counter`): a counter starts at an initial value and
//! only changes by `add`s, so an `ok` read must lie between
//!
//! - the **lower bound**: the initial value plus every `ok` add that
//!   completed before the read was invoked (those certainly happened
//!   first), and
//! - the **upper bound**: the initial value plus every add that was invoked
//!   before the read completed and did not fail (`ok` or `info`: those may
//!   have happened first).
//!
//! Jepsen assumes non-negative increments; here a negative add that may
//! have happened lowers the lower bound instead, so the bounds stay sound.

use crate::history::{History, HistoryError, Outcome, Paired, Value};
use crate::verdict::Verdict;
use crate::{Anomalies, Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;

/// Checks every `ok` read against its bounds. `initial` is the counter's
/// value before the history (Jepsen: 0). No `ok` read: `unknown`.
pub fn check(history: &History, initial: i64) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, initial, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]). O(n log n); the first [`Anomalies::MAX_LISTED`]
/// out-of-bounds reads are explained, all are counted.
pub fn check_paired(
    history: &History,
    paired: &Paired,
    initial: i64,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let mut checked = 0usize;
    let mut total = 0usize;
    let r = check_inner(history, paired, initial, deadline, &mut checked, &mut total)?;
    Ok(within(r, deadline, || {
        format!("{checked} of {total} ok reads checked")
    }))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    initial: i64,
    deadline: &Deadline,
    checked: &mut usize,
    total: &mut usize,
) -> Result<WorkloadResult, HistoryError> {
    let line_of = |pos: usize| history.events.get(pos).map_or(0, |e| e.line);
    // (completion position, delta) of ok adds; (invoke position, delta) of
    // adds that may have happened.
    let mut done: Vec<(usize, i64)> = Vec::new();
    let mut started: Vec<(usize, i64)> = Vec::new();
    let mut reads = Vec::new();
    for op in &paired.operations {
        if deadline.tick() {
            break;
        }
        match op.f.as_str() {
            "add" | "incr" | "increment" => {
                if op.outcome == Outcome::Fail {
                    continue;
                }
                let Some(d) = op.invoke_value.as_i64() else {
                    return Err(HistoryError {
                        line: line_of(op.invoke),
                        message: format!("counter add of {} is not an integer", op.invoke_value),
                    });
                };
                started.push((op.invoke, d));
                if let (Outcome::Ok, Some(c)) = (op.outcome, op.complete) {
                    done.push((c, d));
                }
            }
            "read" if op.outcome == Outcome::Ok => {
                let Some(v) = op.value.as_i64() else {
                    return Err(HistoryError {
                        line: line_of(op.complete.unwrap_or(op.invoke)),
                        message: format!("counter read returned {}, not an integer", op.value),
                    });
                };
                reads.push((op, v));
            }
            _ => {}
        }
    }
    let model = "counter (each read between the certain and the possible sum of adds)";
    if reads.is_empty() {
        let reason = "no read succeeded: nothing to compare the adds with";
        return Ok(WorkloadResult {
            verdict: Verdict::Unknown,
            json: json!({"valid": Verdict::Unknown.to_json(), "model": model, "reason": reason,
                         "anomaly_types": [], "anomalies": {},
                         "stats": {"reads": 0, "adds": started.len()}}),
            text: format!("unknown (counter): {reason}\n"),
        });
    }
    // Prefix sums of positive and negative deltas, in position order, so
    // each read's bounds are two binary searches.
    fn prefix(mut v: Vec<(usize, i64)>) -> (Vec<usize>, Vec<(i64, i64)>) {
        v.sort_unstable_by_key(|x| x.0);
        let mut sums = vec![(0i64, 0i64)];
        for &(_, d) in &v {
            let (p, n) = *sums.last().expect("starts non-empty");
            sums.push(if d >= 0 {
                (p.saturating_add(d), n)
            } else {
                (p, n.saturating_add(d))
            });
        }
        (v.into_iter().map(|x| x.0).collect(), sums)
    }
    let (done_pos, done_sums) = prefix(done);
    let (start_pos, start_sums) = prefix(started);
    let mut errors = Vec::new();
    let mut n_errors = 0usize;
    *total = reads.len();
    for (op, v) in &reads {
        if deadline.tick() {
            break;
        }
        *checked += 1;
        let call = op.invoke;
        let ret = op.complete.unwrap_or(usize::MAX);
        // Certain: ok adds completed before the read was invoked.
        let (cp, cn) = done_sums[done_pos.partition_point(|&p| p < call)];
        // Possible: adds invoked before the read completed (certain ones included).
        let (ip, in_) = start_sums[start_pos.partition_point(|&p| p < ret)];
        let lower = initial.saturating_add(cp).saturating_add(in_);
        let upper = initial.saturating_add(cn).saturating_add(ip);
        if *v < lower || *v > upper {
            n_errors += 1;
            if errors.len() >= Anomalies::MAX_LISTED {
                continue;
            }
            errors.push(json!({
                "explanation": format!(
                    "the read of {v} at {} is outside [{lower}, {upper}]: {}",
                    op_where(history, op),
                    if *v < lower {
                        format!("adds summing to {} had certainly completed before it began", lower - initial)
                    } else {
                        format!("adds invoked before it ended sum to at most {}", upper - initial)
                    }
                ),
                "op": op_json(history, op),
                "lower": lower, "read": v, "upper": upper,
            }));
        }
    }
    let verdict = if n_errors == 0 {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    let mut text = format!(
        "{verdict} (counter: {} ok reads, {} out of bounds, {} adds that may have happened)\n",
        reads.len(),
        n_errors,
        start_pos.len()
    );
    for e in errors.iter().take(10) {
        if let Some(s) = e["explanation"].as_str() {
            text.push_str(&format!("  {s}\n"));
        }
    }
    let anomaly_types: Vec<&str> = if errors.is_empty() {
        vec![]
    } else {
        vec!["out-of-bounds"]
    };
    let json = json!({
        "valid": verdict.to_json(),
        "model": model,
        "initial": initial,
        "anomaly_types": anomaly_types,
        "anomalies": if errors.is_empty() { json!({}) } else { json!({"out-of-bounds": errors}) },
        "anomaly_counts": if n_errors == 0 { json!({}) } else { json!({"out-of-bounds": n_errors}) },
        "stats": {"reads": reads.len(), "adds": start_pos.len(), "ok_adds": done_pos.len(),
                  "out_of_bounds": n_errors},
    });
    Ok(WorkloadResult {
        verdict,
        json,
        text,
    })
}

/// The counter's initial value from `--initial` (a number; absent: 0).
pub fn initial_from(v: Option<&Value>) -> Result<i64, String> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("counter initial value must be an integer, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::*;
    use crate::testing::hist;

    /// p0 adds 5 (ok) then p1 reads; p2's add of 3 is concurrent (info).
    fn h(read: i64) -> History {
        hist(&[
            (0, Invoke, "add", json!(5)),
            (0, Ok, "add", json!(5)),
            (2, Invoke, "add", json!(3)),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(read)),
            (2, Info, "add", json!(3)),
        ])
    }

    #[test]
    fn reads_within_bounds_are_valid() {
        for v in [5, 8] {
            assert_eq!(check(&h(v), 0).unwrap().verdict, Verdict::Valid, "{v}");
        }
    }

    #[test]
    fn reads_outside_bounds_are_reported() {
        // 4 misses the acknowledged 5; 9 is more than was ever added.
        for (v, lower, upper) in [(4, 5, 8), (9, 5, 8)] {
            let r = check(&h(v), 0).unwrap();
            assert_eq!(r.verdict, Verdict::Invalid, "{v}");
            let e = &r.json["anomalies"]["out-of-bounds"][0];
            assert_eq!(
                (e["lower"].as_i64(), e["upper"].as_i64()),
                (Some(lower), Some(upper))
            );
            assert_eq!(e["op"]["index"], 4);
        }
        // The same read of 9 is fine with an initial value of 1.
        assert_eq!(check(&h(9), 1).unwrap().verdict, Verdict::Valid);
    }

    #[test]
    fn an_add_after_the_read_does_not_count() {
        let h = hist(&[
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(2)),
            (0, Invoke, "add", json!(2)),
            (0, Ok, "add", json!(2)),
        ]);
        assert_eq!(check(&h, 0).unwrap().verdict, Verdict::Invalid);
    }

    #[test]
    fn negative_adds_widen_the_lower_bound() {
        let h = hist(&[
            (0, Invoke, "add", json!(5)),
            (0, Ok, "add", json!(5)),
            (2, Invoke, "add", json!(-2)),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!(3)),
        ]);
        assert_eq!(check(&h, 0).unwrap().verdict, Verdict::Valid);
    }

    #[test]
    fn no_reads_is_unknown_and_bad_values_name_the_line() {
        let h = hist(&[(0, Invoke, "add", json!(1)), (0, Ok, "add", json!(1))]);
        assert_eq!(check(&h, 0).unwrap().verdict, Verdict::Unknown);
        let h = hist(&[(0, Invoke, "add", json!("x")), (0, Ok, "add", json!("x"))]);
        assert_eq!(check(&h, 0).unwrap_err().line, 1);
    }
}
