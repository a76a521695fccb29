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
//!   A ledger line of kind `"supply"` is a restock (book-stock) or top-up
//!   (reserve-credit); its `saga` field is the supply's id.
//! - `restock` with `{"id", "item", "qty"}` and `top-up` with `{"id",
//!   "customer", "amount"}`: stock or credit added, once per `id` (the
//!   service's idempotency key; ids are unique among orders and supplies).
//!   `ok` claims it was added, `fail` that it was not, `info` either.
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
//! - `lost-restock` / `lost-top-up`: acknowledged, but not in the ledger;
//!   `double-restock` / `double-top-up`: in the ledger more than once;
//!   `phantom-supply`: in the ledger but never asked for (or with other
//!   units or account than asked); a `fail`ed one in the ledger is
//!   `fail-but-applied`;
//! - `conservation`: the credit and stock spent and the shipments made are
//!   not exactly those of the committed sagas (after the supplies in the
//!   ledgers are added back), or a value is negative.
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
    /// supply id → (account, units) of each ledger line
    supplies: BTreeMap<u64, Vec<(u64, i64)>>,
}

/// A restock or top-up as the history asked for it.
struct SupplyOp<'a> {
    op: &'a Operation,
    /// Index into [`SERVICES`]: 0 (top-up) or 1 (restock).
    service: usize,
    account: u64,
    units: i64,
}

impl SupplyOp<'_> {
    fn what(&self) -> &'static str {
        if self.service == 0 {
            "top-up"
        } else {
            "restock"
        }
    }
}

/// A restock or top-up from the history: `None` for other operations, an
/// error for one without its fields.
fn supply_op(op: &Operation) -> Option<Result<(u64, SupplyOp<'_>), String>> {
    let (service, account, units) = match op.f.as_str() {
        "top-up" => (0, "customer", "amount"),
        "restock" => (1, "item", "qty"),
        _ => return None,
    };
    let v = &op.invoke_value;
    let (Some(id), Some(account), Some(units)) =
        (v["id"].as_u64(), v[account].as_u64(), v[units].as_i64())
    else {
        return Some(Err(format!("{} {v} needs id, {account} and {units}", op.f)));
    };
    Some(Ok((
        id,
        SupplyOp {
            op,
            service,
            account,
            units,
        },
    )))
}

/// Which steps an `order` reached and how each went, from its completion:
/// `ok` ran all three; a `fail` names the step that refused (the saga
/// service's answer is `saga N compensated: <step>: why`), so the steps
/// before it ran and the ones after did not; `info`, or a `fail` that names
/// no step (the client never reached the entry), says nothing. Per-step
/// counts of a run (`faultline_results::steps`) are built from this.
pub fn step_outcomes(outcome: Outcome, error: Option<&str>) -> [Option<Outcome>; 3] {
    match outcome {
        Outcome::Ok => [Some(Outcome::Ok); 3],
        Outcome::Info => [None; 3],
        Outcome::Fail => {
            let Some(e) = error else { return [None; 3] };
            // Older services' refusals did not name the step: their words.
            const WORDS: [&str; 3] = ["insufficient credit", "out of stock", "no route"];
            let failed = (0..3).find(|&i| {
                e.contains(&format!("compensated: {}:", SERVICES[i])) || e.contains(WORDS[i])
            });
            let mut out = [None; 3];
            if let Some(f) = failed {
                for (i, o) in out.iter_mut().enumerate().take(f + 1) {
                    *o = Some(if i == f { Outcome::Fail } else { Outcome::Ok });
                }
            }
            out
        }
    }
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
    let mut supplies: BTreeMap<u64, Vec<(u64, i64)>> = BTreeMap::new();
    for e in v["ledger"].as_array().ok_or("`ledger` is not a list")? {
        let saga = e["saga"]
            .as_u64()
            .ok_or_else(|| format!("ledger entry {e} has no saga id"))?;
        let units = e["units"].as_i64().unwrap_or(0);
        if e["kind"] == "supply" {
            let account = e["account"].as_u64().unwrap_or(u64::MAX);
            supplies.entry(saga).or_default().push((account, units));
            continue;
        }
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
        supplies,
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
    let mut supplies: BTreeMap<u64, SupplyOp<'_>> = BTreeMap::new();
    let mut read = None;
    let (mut ok, mut fail, mut info) = (0usize, 0usize, 0usize);
    // [restock, top-up] × [ok, fail, info]
    let mut supply_counts = [[0usize; 3]; 2];
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
            _ => {
                if let Some(r) = supply_op(op) {
                    let (id, s) = r.map_err(|e| bad(history, op, e))?;
                    let o = match op.outcome {
                        Outcome::Ok => 0,
                        Outcome::Fail => 1,
                        Outcome::Info => 2,
                    };
                    supply_counts[usize::from(s.service == 0)][o] += 1;
                    supplies.insert(id, s);
                }
            }
        }
    }
    let [rs, tu] = supply_counts;
    let mut stats = json!({"orders_ok": ok, "orders_fail": fail, "orders_info": info,
                           "restocks_ok": rs[0], "restocks_fail": rs[1], "restocks_info": rs[2],
                           "top_ups_ok": tu[0], "top_ups_fail": tu[1], "top_ups_info": tu[2]});
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
        if let Some(op) = orders
            .get(&saga)
            .copied()
            .or_else(|| supplies.get(&saga).map(|s| s.op))
        {
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
    // Restocks and top-ups: each asked for, once, as asked; `ok` ones
    // present and `fail`ed ones absent.
    let mut added = [0i64; 3];
    for (i, s) in services.iter().enumerate() {
        for (&id, lines) in &s.supplies {
            if deadline.tick() {
                break;
            }
            added[i] += lines.iter().map(|(_, u)| u).sum::<i64>();
            let asked = supplies.get(&id).filter(|a| a.service == i);
            let what = asked.map_or("supply", |a| a.what());
            if lines.len() > 1 {
                let kind = if i == 0 {
                    "double-top-up"
                } else {
                    "double-restock"
                };
                push(
                    kind,
                    id,
                    format!(
                        "{what} {id}: {} added it {} times ({lines:?} as (account, units))",
                        SERVICES[i],
                        lines.len()
                    ),
                );
            }
            match asked {
                None => push(
                    "phantom-supply",
                    id,
                    format!(
                        "{}'s ledger adds {lines:?} (account, units) as supply {id}, which no \
                         client asked of it",
                        SERVICES[i]
                    ),
                ),
                Some(a) if lines.iter().any(|l| *l != (a.account, a.units)) => push(
                    "phantom-supply",
                    id,
                    format!(
                        "{what} {id} ({}) asked for {} to account {}, but {} added {lines:?} \
                         (account, units)",
                        op_where(history, a.op),
                        a.units,
                        a.account,
                        SERVICES[i]
                    ),
                ),
                Some(a) if a.op.outcome == Outcome::Fail => push(
                    "fail-but-applied",
                    id,
                    format!(
                        "{what} {id} ({}) failed, but {} added it",
                        op_where(history, a.op),
                        SERVICES[i]
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    for (&id, a) in &supplies {
        if a.op.outcome == Outcome::Ok && !services[a.service].supplies.contains_key(&id) {
            let kind = if a.service == 0 {
                "lost-top-up"
            } else {
                "lost-restock"
            };
            push(
                kind,
                id,
                format!(
                    "{} {id} ({}) of {} to account {} was acknowledged, but {}'s ledger does \
                     not have it",
                    a.what(),
                    op_where(history, a.op),
                    a.units,
                    a.account,
                    SERVICES[a.service]
                ),
            );
        }
    }
    let mut conservation = Vec::new();
    for (i, (name, s)) in SERVICES.iter().zip(&services).enumerate() {
        let (used, what) = if *name == "ship" {
            (s.current - s.initial, "shipments exist".to_string())
        } else {
            (
                s.initial + added[i] - s.current,
                format!("spent (initially {}, {} supplied", s.initial, added[i]),
            )
        };
        if used != spent[i] {
            conservation.push(if *name == "ship" {
                format!(
                    "{name}: {used} {what} (initially {}, now {}), but the committed sagas \
                     account for {}",
                    s.initial, s.current, spent[i]
                )
            } else {
                format!(
                    "{name}: {used} {what}, now {}), but the committed sagas account for {}",
                    s.current, spent[i]
                )
            });
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
            (
                "top_ups_applied".to_string(),
                json!(services[0].supplies.len()),
            ),
            (
                "restocks_applied".to_string(),
                json!(services[1].supplies.len()),
            ),
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
mod tests;
