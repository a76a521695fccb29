//! The saga workload's check: Garcia-Molina & Salem's guarantee ("Sagas",
//! SIGMOD 1987, §1: either every transaction of a saga runs, or the ones
//! that ran are compensated) judged from what clients saw plus a final
//! read of every service's ledger.
//!
//! Operations:
//! - `order` with `{"saga", "customer", "item", "qty", "amount", "dest"}`:
//!   one saga over three services (reserve-credit, book-stock, ship). `ok`
//!   claims it committed, `fail` that it was compensated (no net effect),
//!   `info` either.
//! - the final `read` (after the faults healed), whose `ok` value is
//!   `{"sagas": {"<id>": "committed" | "compensated" | "pending: …"},
//!   "services": {"<name>": {"initial": [..], "current": [..],
//!   "ledger": [{"saga", "kind": "action" | "refused" | "compensation",
//!   "units", "account"}, …]}}}`: each service's idempotency ledger (every
//!   forward action and compensation it applied, per saga) and the status
//!   of every saga known to the orchestrator (or the choreography's entry).
//!
//! Anomalies, each naming the saga and the operation:
//! - `double-action` / `double-compensation`: a service applied a saga's
//!   forward action, or a compensation that undid something, twice (an
//!   idempotency key not honoured);
//! - `half-done`: some services hold the saga's effect and others do not;
//! - `not-terminated`: the saga was still running at the final read, after
//!   the faults healed and the read waited for quiet;
//! - `lost-saga`: a service applied one of its actions but the saga is
//!   unknown to the orchestrator (it can never end);
//! - `status-mismatch`: the orchestrator's outcome disagrees with the
//!   ledgers;
//! - `ok-not-committed` / `fail-but-applied`: the client's answer
//!   disagrees with the saga's fate;
//! - `conservation`: the credit and stock spent and the shipments made are
//!   not exactly those of the committed sagas, or a value is negative.
//!
//! No successful final read: `unknown` (nothing to judge the sagas by).

use crate::history::{History, HistoryError, Operation, Outcome, Paired, Value};
use crate::verdict::Verdict;
use crate::{Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::BTreeMap;

/// The services, in step order, as the final read names them.
pub const SERVICES: [&str; 3] = ["reserve-credit", "book-stock", "ship"];

/// At most this many anomalies of one kind are listed (all are counted).
const MAX_LISTED: usize = 20;

/// One service's ledger, per saga: actions and effective compensations.
#[derive(Clone, Copy, Debug, Default)]
struct Effects {
    actions: u32,
    compensations: u32,
    units: i64,
}

impl Effects {
    fn held(&self) -> bool {
        self.actions > self.compensations
    }
}

struct ServiceRead {
    initial: i64,
    current: i64,
    negative: Vec<i64>,
    /// saga → effects
    per_saga: BTreeMap<u64, Effects>,
}

fn bad(history: &History, op: &Operation, why: String) -> HistoryError {
    let line = history
        .events
        .get(op.complete.unwrap_or(op.invoke))
        .map_or(0, |e| e.line);
    HistoryError {
        line,
        message: format!("saga read: {why}"),
    }
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    v.as_array()?.iter().map(Value::as_i64).collect()
}

fn parse_service(v: &Value) -> Result<ServiceRead, String> {
    let initial = ints(&v["initial"]).ok_or("`initial` is not a list of integers")?;
    let current = ints(&v["current"]).ok_or("`current` is not a list of integers")?;
    let mut per_saga: BTreeMap<u64, Effects> = BTreeMap::new();
    for e in v["ledger"].as_array().ok_or("`ledger` is not a list")? {
        let saga = e["saga"]
            .as_u64()
            .ok_or_else(|| format!("ledger entry {e} has no saga id"))?;
        let units = e["units"].as_i64().unwrap_or(0);
        let f = per_saga.entry(saga).or_default();
        match e["kind"].as_str() {
            Some("action") => {
                f.actions += 1;
                f.units = units;
            }
            Some("compensation") if units > 0 => f.compensations += 1,
            Some("compensation" | "refused") => {}
            _ => return Err(format!("ledger entry {e} has an unknown kind")),
        }
    }
    Ok(ServiceRead {
        initial: initial.iter().sum(),
        current: current.iter().sum(),
        negative: current.into_iter().filter(|v| *v < 0).collect(),
        per_saga,
    })
}

/// Checks a saga history (see the module docs).
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
    Ok(within(r, deadline, || "judging the sagas".to_string()))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let model = "saga (every saga committed or fully compensated, each action and compensation applied once, all ended, credit and stock conserved)";
    let mut orders: BTreeMap<u64, &Operation> = BTreeMap::new();
    let mut read = None;
    let (mut ok, mut fail, mut info) = (0usize, 0usize, 0usize);
    for op in &paired.operations {
        if deadline.tick() {
            break;
        }
        match op.f.as_str() {
            "order" => {
                let Some(id) = op.invoke_value["saga"].as_u64() else {
                    return Err(bad(
                        history,
                        op,
                        format!("order {} has no saga id", op.value),
                    ));
                };
                match op.outcome {
                    Outcome::Ok => ok += 1,
                    Outcome::Fail => fail += 1,
                    Outcome::Info => info += 1,
                }
                orders.insert(id, op);
            }
            "read" if op.outcome == Outcome::Ok => read = Some(op),
            _ => {}
        }
    }
    let mut stats = json!({"orders_ok": ok, "orders_fail": fail, "orders_info": info});
    let unknown = |reason: String, stats: Value| WorkloadResult {
        verdict: Verdict::Unknown,
        json: json!({"valid": Verdict::Unknown.to_json(), "model": model, "reason": reason,
                     "anomaly_types": [], "anomalies": {}, "stats": stats}),
        text: format!("unknown (saga): {reason}\n"),
    };
    let Some(read) = read else {
        return Ok(unknown(
            "no final read succeeded: the services' ledgers are needed to judge the sagas".into(),
            stats,
        ));
    };
    let mut services = Vec::new();
    for name in SERVICES {
        let v = &read.value["services"][name];
        if v.is_null() {
            return Err(bad(history, read, format!("no state of service `{name}`")));
        }
        services.push(parse_service(v).map_err(|e| bad(history, read, format!("{name}: {e}")))?);
    }
    let statuses: BTreeMap<u64, String> = read.value["sagas"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();

    let mut anomalies: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let mut push = |kind: &'static str, saga: u64, explanation: String| {
        let mut a = json!({"saga": saga, "explanation": explanation});
        if let Some(op) = orders.get(&saga) {
            a["op"] = op_json(history, op);
        }
        anomalies.entry(kind).or_default().push(a);
    };
    let at = |saga: u64| {
        orders
            .get(&saga)
            .map_or("no order in the history".to_string(), |op| {
                op_where(history, op)
            })
    };
    let mut all: Vec<u64> = orders.keys().copied().collect();
    for s in &services {
        all.extend(s.per_saga.keys());
    }
    all.extend(statuses.keys());
    all.sort_unstable();
    all.dedup();

    let (mut committed, mut compensated, mut undone, mut pending) = (0usize, 0usize, 0usize, 0);
    let mut spent = [0i64; 3];
    for &saga in &all {
        if deadline.tick() {
            break;
        }
        let fx: Vec<Effects> = services
            .iter()
            .map(|s| s.per_saga.get(&saga).copied().unwrap_or_default())
            .collect();
        for (name, f) in SERVICES.iter().zip(&fx) {
            if f.actions > 1 {
                push(
                    "double-action",
                    saga,
                    format!(
                        "saga {saga} ({}): {name} applied its forward action {} times",
                        at(saga),
                        f.actions
                    ),
                );
            }
            if f.compensations > 1 {
                push(
                    "double-compensation",
                    saga,
                    format!(
                        "saga {saga} ({}): {name} applied its compensation {} times",
                        at(saga),
                        f.compensations
                    ),
                );
            }
        }
        let held: Vec<&str> = SERVICES
            .iter()
            .zip(&fx)
            .filter(|(_, f)| f.held())
            .map(|(n, _)| *n)
            .collect();
        let is_committed = held.len() == SERVICES.len();
        let touched = fx.iter().any(|f| f.actions > 0);
        if !held.is_empty() && !is_committed {
            push(
                "half-done",
                saga,
                format!(
                    "saga {saga} ({}) holds its effect at {} but not at {}: neither committed nor \
                     compensated",
                    at(saga),
                    held.join(", "),
                    SERVICES
                        .iter()
                        .filter(|n| !held.contains(n))
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let status = statuses.get(&saga).map(String::as_str);
        match status {
            Some(s) if s.starts_with("pending") => {
                pending += 1;
                push(
                    "not-terminated",
                    saga,
                    format!(
                        "saga {saga} ({}) was still running at the final read, after the faults \
                         healed: {s}",
                        at(saga)
                    ),
                );
            }
            None if touched => push(
                "lost-saga",
                saga,
                format!(
                    "saga {saga} ({}): services applied its actions but the orchestrator has no \
                     record of it, so it can never end",
                    at(saga)
                ),
            ),
            Some("committed") if !is_committed => push(
                "status-mismatch",
                saga,
                format!(
                    "saga {saga} ({}) ended committed, but only {:?} hold its effect",
                    at(saga),
                    held
                ),
            ),
            Some("compensated") if !held.is_empty() => push(
                "status-mismatch",
                saga,
                format!(
                    "saga {saga} ({}) ended compensated, but {} still hold its effect",
                    at(saga),
                    held.join(", ")
                ),
            ),
            _ => {}
        }
        if is_committed {
            committed += 1;
            for (i, f) in fx.iter().enumerate() {
                spent[i] += f.units;
            }
        } else if held.is_empty() {
            compensated += 1;
            if touched {
                undone += 1;
            }
        }
        if let Some(op) = orders.get(&saga) {
            match op.outcome {
                Outcome::Ok if !is_committed || status != Some("committed") => push(
                    "ok-not-committed",
                    saga,
                    format!(
                        "order {saga} ({}) was answered ok, but the saga is {}",
                        at(saga),
                        status.unwrap_or("unknown to the orchestrator")
                    ),
                ),
                Outcome::Fail if !held.is_empty() || status == Some("committed") => push(
                    "fail-but-applied",
                    saga,
                    format!(
                        "order {saga} ({}) failed, but {} hold its effect (status {})",
                        at(saga),
                        if held.is_empty() {
                            "no services".to_string()
                        } else {
                            held.join(", ")
                        },
                        status.unwrap_or("unknown")
                    ),
                ),
                _ => {}
            }
        }
    }
    let mut conservation = Vec::new();
    for (i, (name, s)) in SERVICES.iter().zip(&services).enumerate() {
        let (used, what) = if *name == "ship" {
            (s.current - s.initial, "shipments exist")
        } else {
            (s.initial - s.current, "spent")
        };
        if used != spent[i] {
            conservation.push(format!(
                "{name}: {used} {what} (initially {}, now {}), but the committed sagas account \
                 for {}",
                s.initial, s.current, spent[i]
            ));
        }
        if !s.negative.is_empty() {
            conservation.push(format!("{name}: negative values {:?}", s.negative));
        }
    }
    for c in conservation {
        anomalies
            .entry("conservation")
            .or_default()
            .push(json!({"explanation": c}));
    }

    if let Some(o) = stats.as_object_mut() {
        o.extend([
            ("sagas".to_string(), json!(all.len())),
            ("committed".to_string(), json!(committed)),
            ("compensated".to_string(), json!(compensated)),
            ("compensated_after_effects".to_string(), json!(undone)),
            ("pending".to_string(), json!(pending)),
        ]);
    }
    if orders.is_empty() {
        return Ok(unknown("no order was invoked".into(), stats));
    }
    let counts: BTreeMap<&str, usize> = anomalies.iter().map(|(k, v)| (*k, v.len())).collect();
    for v in anomalies.values_mut() {
        v.truncate(MAX_LISTED);
    }
    let types: Vec<&str> = anomalies.keys().copied().collect();
    let verdict = if types.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    let text = if types.is_empty() {
        format!(
            "valid (saga): {} sagas: {committed} committed, {compensated} compensated \
             ({undone} after partial effects); no double application; credit, stock and \
             shipments conserved\n",
            all.len()
        )
    } else {
        let first = anomalies
            .values()
            .next()
            .and_then(|v| v.first())
            .and_then(|a| a["explanation"].as_str())
            .unwrap_or_default()
            .to_string();
        format!(
            "invalid (saga): {} — e.g. {first}\n",
            counts
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(WorkloadResult {
        verdict,
        json: json!({"valid": verdict.to_json(), "model": model, "anomaly_types": types,
                     "anomalies": anomalies, "anomaly_counts": counts, "stats": stats}),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::history::EventType::{Info, Invoke, Ok as OkE};
    use crate::testing::hist;

    fn order(saga: u64, amount: i64) -> Value {
        json!({"saga": saga, "customer": 0, "item": 0, "qty": 1, "amount": amount, "dest": 1})
    }

    /// A final read: `ledgers[i]` is service i's `(saga, kind, units)`.
    fn read(
        initial: [i64; 3],
        current: [i64; 3],
        ledgers: [&[(u64, &str, i64)]; 3],
        sagas: Value,
    ) -> Value {
        let mut services = serde_json::Map::new();
        for i in 0..3 {
            let l: Vec<Value> = ledgers[i]
                .iter()
                .map(|(s, k, u)| json!({"saga": s, "kind": k, "units": u, "account": 0}))
                .collect();
            services.insert(
                SERVICES[i].into(),
                json!({"initial": [initial[i]], "current": [current[i]], "ledger": l}),
            );
        }
        json!({"mode": "orchestrated", "sagas": sagas, "services": services})
    }

    fn run(orders: &[(u64, EventType, i64)], r: Value) -> WorkloadResult {
        let mut evs = Vec::new();
        for (saga, outcome, amount) in orders {
            evs.push((1, Invoke, "order", order(*saga, *amount)));
            evs.push((1, *outcome, "order", order(*saga, *amount)));
        }
        evs.push((9, Invoke, "read", Value::Null));
        evs.push((9, OkE, "read", r));
        check(&hist(&evs)).unwrap()
    }

    #[test]
    fn committed_and_compensated_sagas_are_valid() {
        let r = read(
            [100, 10, 0],
            [95, 9, 1],
            [
                &[(1, "action", 5), (2, "action", 7), (2, "compensation", 7)],
                &[(1, "action", 1), (2, "refused", 1)],
                &[(1, "action", 1)],
            ],
            json!({"1": "committed", "2": "compensated"}),
        );
        let res = run(&[(1, OkE, 5), (2, EventType::Fail, 7)], r);
        assert_eq!(res.verdict, Verdict::Valid, "{}", res.json);
        assert_eq!(res.json["stats"]["compensated_after_effects"], 1);
    }

    #[test]
    fn a_double_refund_breaks_conservation() {
        let r = read(
            [100, 10, 0],
            [107, 10, 0],
            [
                &[
                    (2, "action", 7),
                    (2, "compensation", 7),
                    (2, "compensation", 7),
                ],
                &[(2, "refused", 1)],
                &[],
            ],
            json!({"2": "compensated"}),
        );
        let res = run(&[(2, EventType::Fail, 7)], r);
        assert_eq!(res.verdict, Verdict::Invalid);
        let types = res.json["anomaly_types"].to_string();
        assert!(types.contains("double-compensation"), "{types}");
        assert!(types.contains("conservation"), "{types}");
    }

    #[test]
    fn half_done_lost_and_pending_sagas_are_invalid() {
        // Saga 3: credit reserved, never went further, and the orchestrator
        // forgot it; saga 4 still running at the end.
        let r = read(
            [100, 10, 0],
            [91, 10, 0],
            [&[(3, "action", 5), (4, "action", 4)], &[], &[]],
            json!({"4": "pending: step 1 (book-stock) started"}),
        );
        let res = run(&[(3, Info, 5), (4, Info, 4)], r);
        assert_eq!(res.verdict, Verdict::Invalid);
        let types = res.json["anomaly_types"].to_string();
        for t in ["half-done", "lost-saga", "not-terminated"] {
            assert!(types.contains(t), "{t}: {types}");
        }
        assert!(res.text.contains("half-done"), "{}", res.text);
    }

    #[test]
    fn answers_must_match_the_fate() {
        let r = read(
            [100, 10, 0],
            [100, 10, 0],
            [&[(5, "refused", 5)], &[], &[]],
            json!({"5": "compensated"}),
        );
        let res = run(&[(5, OkE, 5)], r);
        assert_eq!(res.json["anomaly_types"], json!(["ok-not-committed"]));
    }

    #[test]
    fn no_final_read_is_unknown_and_bad_reads_name_the_line() {
        let h = hist(&[
            (1, Invoke, "order", order(1, 5)),
            (1, OkE, "order", order(1, 5)),
        ]);
        let res = check(&h).unwrap();
        assert_eq!(res.verdict, Verdict::Unknown);
        assert!(res.json["reason"].as_str().unwrap().contains("final read"));
        let h = hist(&[
            (9, Invoke, "read", Value::Null),
            (9, OkE, "read", json!({"services": {}})),
        ]);
        let e = check(&h).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("reserve-credit"), "{}", e.message);
    }
}
