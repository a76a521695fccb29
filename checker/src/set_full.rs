//! The set workload's check, as Jepsen's set checker: after the faults heal,
//! one final read must hold every acknowledged add and nothing that was
//! never added. Adds of unknown outcome may be present or not.

use crate::history::{History, HistoryError, Outcome, Value};
use crate::verdict::Verdict;
use serde_json::json;

/// The verdict, its `results.json` form, and a one-line summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SetResult {
    pub verdict: Verdict,
    /// `{"valid", "model", "anomaly_types", "anomalies": {"lost"|"unexpected": [..]}, "stats"}`
    pub json: Value,
    pub text: String,
}

/// Set workload: every acknowledged add must be in the final read, and the
/// final read must hold nothing that was never added (Jepsen's set checker).
/// Adds of unknown outcome may be present or not. No `ok` final read: unknown.
pub fn check(history: &History) -> Result<SetResult, HistoryError> {
    Ok(check_paired(&history.pair()?, &crate::Deadline::none()))
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): cut short before the final read was compared,
/// `unknown`. O(n log n).
pub fn check_paired(paired: &crate::history::Paired, deadline: &crate::Deadline) -> SetResult {
    use std::collections::BTreeSet;
    let mut ok_adds = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    let mut final_read: Option<&Vec<Value>> = None;
    for op in &paired.operations {
        if deadline.tick() {
            let reason = deadline.reason(&format!(
                "reading the adds ({} operations examined)",
                deadline.ticks()
            ));
            return SetResult {
                verdict: Verdict::Unknown,
                json: json!({"valid": Verdict::Unknown.to_json(), "model": "set", "reason": reason,
                       "stopped": reason}),
                text: format!("unknown (set): {reason}\n"),
            };
        }
        match op.f.as_str() {
            "add" => {
                let v = op.invoke_value.to_string();
                if op.outcome != Outcome::Fail {
                    attempted.insert(v.clone());
                }
                if op.outcome == Outcome::Ok {
                    ok_adds.insert(v);
                }
            }
            "read" if op.outcome == Outcome::Ok => {
                // The last one wins: keep a reference (cloning every
                // read's list cost the sum of all reads' sizes).
                if let Some(l) = op.value.as_array() {
                    final_read = Some(l);
                }
            }
            _ => {}
        }
    }
    let Some(read) = final_read else {
        let reason = "no final read succeeded: nothing to compare the adds with";
        return SetResult {
            verdict: Verdict::Unknown,
            json: json!({"valid": Verdict::Unknown.to_json(), "model": "set", "reason": reason,
                   "stats": {"ok_adds": ok_adds.len(), "attempted_adds": attempted.len()}}),
            text: format!("unknown (set): {reason}\n"),
        };
    };
    let seen: BTreeSet<String> = read.iter().map(Value::to_string).collect();
    let lost: Vec<&String> = ok_adds.difference(&seen).collect();
    let unexpected: Vec<&String> = seen.difference(&attempted).collect();
    let recovered = attempted
        .difference(&ok_adds)
        .filter(|v| seen.contains(*v))
        .count();
    let verdict = if lost.is_empty() && unexpected.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    let mut anomaly_types = Vec::new();
    let mut anomalies = serde_json::Map::new();
    if !lost.is_empty() {
        anomaly_types.push("lost");
        anomalies.insert(
            "lost".into(),
            json!([{"explanation": format!(
                "{} acknowledged add(s) missing from the final read, e.g. {}",
                lost.len(),
                lost.iter().take(10).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ), "elements": lost.iter().take(100).collect::<Vec<_>>()}]),
        );
    }
    if !unexpected.is_empty() {
        anomaly_types.push("unexpected");
        anomalies.insert(
            "unexpected".into(),
            json!([{"explanation": format!(
                "{} element(s) in the final read were never added, e.g. {}",
                unexpected.len(),
                unexpected.iter().take(10).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )}]),
        );
    }
    let text = format!(
        "{verdict} (set: {} acknowledged adds, {} in the final read, {} lost, {} unexpected, \
         {} of unknown outcome present)\n",
        ok_adds.len(),
        seen.len(),
        lost.len(),
        unexpected.len(),
        recovered
    );
    SetResult {
        verdict,
        json: json!({
            "valid": verdict.to_json(),
            "model": "set (every acknowledged add is in the final read)",
            "anomaly_types": anomaly_types,
            "anomalies": anomalies,
            "stats": {"ok_adds": ok_adds.len(), "attempted_adds": attempted.len(),
                      "final_read": seen.len(), "lost": lost.len(),
                      "unexpected": unexpected.len(), "recovered": recovered},
        }),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process};

    fn ev(p: u64, kind: EventType, f: &str, v: Value) -> Event {
        Event::new(Process::Client(p), kind, f, v)
    }

    #[test]
    fn set_check_finds_lost_adds() {
        use EventType::*;
        let mut events = vec![
            ev(0, Invoke, "add", json!(1)),
            ev(0, Ok, "add", json!(1)),
            ev(1, Invoke, "add", json!(2)),
            ev(1, Info, "add", json!(2)),
            ev(0, Invoke, "add", json!(3)),
            ev(0, Ok, "add", json!(3)),
            ev(0, Invoke, "read", Value::Null),
        ];
        let mut ok = events.clone();
        ok.push(ev(0, Ok, "read", json!([1, 2, 3])));
        let v = check(&History { events: ok }).unwrap().verdict;
        assert_eq!(v, Verdict::Valid);
        events.push(ev(0, Ok, "read", json!([1])));
        let r = check(&History { events }).unwrap();
        let (v, j) = (r.verdict, r.json);
        assert_eq!(v, Verdict::Invalid);
        assert_eq!(j["stats"]["lost"], 1);
    }
}
