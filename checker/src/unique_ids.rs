//! The unique-ids workload's check, as Jepsen's `unique-ids` checker:
//! every `ok` `generate` must return an id no other `ok` generate returned.
//! Generates of unknown outcome returned nothing anyone could use, so only
//! acknowledged ids count.

use crate::history::{History, HistoryError, Outcome, Paired, Value};
use crate::verdict::Verdict;
use crate::{Deadline, WorkloadResult, op_json, within};
use serde_json::json;

/// Checks that acknowledged ids are distinct. No `ok` generate: `unknown`.
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
    Ok(within(r, deadline, || {
        "looking for duplicate ids".to_string()
    }))
}

/// An acknowledged id: integers as themselves (16 bytes, no heap: 10 M
/// ids sort in a few hundred MB), anything else as its JSON text.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Id {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Int(n) => write!(f, "{n}"),
            Id::Text(s) => f.write_str(s),
        }
    }
}

fn check_inner(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let mut attempted = 0usize;
    // (id, op) for every acknowledged id; sorted, equal ids are neighbours.
    let mut ids: Vec<(Id, usize)> = Vec::new();
    let (mut min, mut max): (Option<i64>, Option<i64>) = (None, None);
    for op in paired.operations.iter().filter(|o| o.f == "generate") {
        if deadline.tick() {
            break;
        }
        attempted += 1;
        if op.outcome != Outcome::Ok {
            continue;
        }
        let id = match op.value.as_i64() {
            Some(n) => {
                min = Some(min.map_or(n, |m| m.min(n)));
                max = Some(max.map_or(n, |m| m.max(n)));
                Id::Int(n)
            }
            None => Id::Text(op.value.to_string()),
        };
        ids.push((id, op.id));
    }
    ids.sort_unstable();
    let acknowledged = ids.len();
    let model = "unique-ids (no id returned twice)";
    if acknowledged == 0 {
        let reason = "no generate succeeded: no ids to compare";
        return Ok(WorkloadResult {
            verdict: Verdict::Unknown,
            json: json!({"valid": Verdict::Unknown.to_json(), "model": model, "reason": reason,
                         "anomaly_types": [], "anomalies": {},
                         "stats": {"attempted": attempted, "acknowledged": 0}}),
            text: format!("unknown (unique-ids): {reason}\n"),
        });
    }
    let (mut distinct, mut duplicated) = (0usize, 0usize);
    // Explained: the first few duplicated ids; all are counted.
    let mut dups: Vec<Value> = Vec::new();
    for group in ids.chunk_by(|a, b| a.0 == b.0) {
        if deadline.tick() {
            break;
        }
        distinct += 1;
        if group.len() < 2 {
            continue;
        }
        duplicated += 1;
        if dups.len() >= crate::Anomalies::MAX_LISTED {
            continue;
        }
        let id = group[0].0.to_string();
        let ops: Vec<Value> = group
            .iter()
            .map(|&(_, i)| op_json(history, &paired.operations[i]))
            .collect();
        let at: Vec<String> = ops
            .iter()
            .map(|o| {
                format!(
                    "process {} at index {} (line {})",
                    o["process"], o["index"], o["line"]
                )
            })
            .collect();
        dups.push(json!({
            "explanation": format!("id {id} was generated {} times: by {}", ops.len(), at.join("; ")),
            "id": id, "count": ops.len(), "ops": ops,
        }));
    }
    let verdict = if dups.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    let mut text = format!(
        "{verdict} (unique-ids: {acknowledged} acknowledged of {attempted} attempted, \
         {distinct} distinct, {duplicated} duplicated)\n"
    );
    for d in dups.iter().take(10) {
        if let Some(e) = d["explanation"].as_str() {
            text.push_str(&format!("  {e}\n"));
        }
    }
    let json = json!({
        "valid": verdict.to_json(),
        "model": model,
        "anomaly_types": if dups.is_empty() { json!([]) } else { json!(["duplicated"]) },
        "anomalies": if dups.is_empty() { json!({}) } else { json!({"duplicated": dups}) },
        "anomaly_counts": if dups.is_empty() { json!({}) } else { json!({"duplicated": duplicated}) },
        "stats": {"attempted": attempted, "acknowledged": acknowledged, "distinct": distinct,
                  "duplicated": duplicated, "range": [min, max]},
    });
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

    fn h(second: Value) -> History {
        hist(&[
            (0, Invoke, "generate", Value::Null),
            (1, Invoke, "generate", Value::Null),
            (0, Ok, "generate", json!(1)),
            (1, Ok, "generate", second),
            (2, Invoke, "generate", Value::Null),
            (2, Info, "generate", Value::Null),
        ])
    }

    #[test]
    fn distinct_ids_are_valid() {
        let r = check(&h(json!(2))).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
        assert_eq!(r.json["stats"]["range"], json!([1, 2]));
    }

    #[test]
    fn a_duplicate_names_both_ops() {
        let r = check(&h(json!(1))).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        let d = &r.json["anomalies"]["duplicated"][0];
        assert_eq!(d["count"], 2);
        let e = d["explanation"].as_str().unwrap();
        assert!(e.contains("index 2") && e.contains("index 3"), "{e}");
    }

    #[test]
    fn nothing_acknowledged_is_unknown() {
        let h = hist(&[
            (0, Invoke, "generate", Value::Null),
            (0, Fail, "generate", Value::Null),
        ]);
        assert_eq!(check(&h).unwrap().verdict, Verdict::Unknown);
    }
}
