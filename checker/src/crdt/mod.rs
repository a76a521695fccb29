//! Checks for AP systems whose replicas converge (CRDTs, Shapiro et al.
//! 2011): strong eventual consistency judged from the outside.
//!
//! Both checks look at the **final reads**: the `ok` reads invoked after
//! the last update was invoked and after the last nemesis event (the
//! runner's final heal), i.e. after heal and quiescence. Which replica
//! served a read is its event's `node` field (the recorder writes it).
//! Of each node's final reads (of a key) only the last counts: the runner
//! reads every node again while their answers differ, so a replica still
//! working off a backlog is judged by its answer once it caught up.
//!
//! - [`check_convergence`] (`crdt-convergence`): the final reads from
//!   every node agree (**divergent** if not) and equal the merge of every
//!   acknowledged update: for a counter the value lies between the sum of
//!   the `ok` adds plus every possibly-applied negative `info` add and the
//!   same plus every positive one (**out-of-bounds**); for a set, the
//!   add-wins rules of [`check_or_set`]; for a register, a value some write
//!   wrote (**unexpected**). Fewer than two nodes among the final reads:
//!   agreement was not tested, so at best `unknown`.
//! - [`check_or_set`] (`or-set`): an observed-remove set, add-wins
//!   (Shapiro et al. §3.3.5). Every element of the final read was added
//!   (**unexpected** otherwise), and every `ok` add is present unless some
//!   remove of that element could have observed it — one that did not fail
//!   and had not completed before the add was invoked (**lost** otherwise).
//!   A remove that began after the add ended may still not have seen it
//!   (the replicas may not have gossiped yet), so its element may stay:
//!   add wins.
//!
//! Registers are judged for agreement and written values only: LWW picks
//! the write with the largest timestamp, which a client never sees, so
//! real-time order says nothing certain about which write must win.

use crate::history::{History, HistoryError, Operation, Outcome, Paired, Value};
use crate::verdict::Verdict;
use crate::{Anomalies, Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What kind of replicated object the history's operations describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `add`/`incr` of integers (negative: decrement), reads of an integer.
    Counter,
    /// `add`/`remove` of elements, reads of a list.
    Set,
    /// `write`s, reads of one value.
    Register,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Set => "set",
            Kind::Register => "register",
        }
    }

    /// From the operations: removes or list reads make a set, integer
    /// reads with adds a counter, writes a register.
    fn infer(ops: &[Operation]) -> Kind {
        let ok_read = |p: fn(&Value) -> bool| {
            ops.iter()
                .any(|o| o.f == "read" && o.outcome == Outcome::Ok && p(&o.value))
        };
        if ops.iter().any(|o| o.f == "remove") || ok_read(Value::is_array) {
            Kind::Set
        } else if ops.iter().any(|o| o.f == "write") {
            Kind::Register
        } else {
            Kind::Counter
        }
    }
}

fn is_add(f: &str) -> bool {
    matches!(f, "add" | "incr" | "increment")
}

fn is_update(f: &str) -> bool {
    is_add(f) || matches!(f, "remove" | "write")
}

/// The node that served an op: its completion's `node`, else its invocation's.
pub(crate) fn node_of(history: &History, op: &Operation) -> Option<crate::Sym> {
    op.complete
        .and_then(|c| history.events.get(c))
        .and_then(|e| e.node.clone())
        .or_else(|| history.events.get(op.invoke).and_then(|e| e.node.clone()))
}

/// The final reads (see the module docs), in history order: of each
/// node's final reads of a key, only the last. The runner reads every node
/// again while their answers differ (a replica working off a backlog
/// answers before it has merged what the others have): lag, not
/// divergence, so each replica is judged by the last thing it said. Reads
/// whose node is unknown are all kept.
pub(crate) fn final_reads<'a>(
    history: &History,
    ops: &'a [Operation],
    nemesis: &[usize],
) -> Vec<&'a Operation> {
    let last_update = ops
        .iter()
        .filter(|o| is_update(&o.f))
        .map(|o| o.invoke)
        .max();
    let after = last_update.max(nemesis.iter().copied().max());
    let finals: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        .filter(|o| after.is_none_or(|p| o.invoke > p))
        .collect();
    let mut last: BTreeMap<(crate::Sym, String), usize> = BTreeMap::new();
    for (i, o) in finals.iter().enumerate() {
        if let Some(n) = node_of(history, o) {
            let key = o.key.as_deref().map(Value::to_string).unwrap_or_default();
            last.insert((n, key), i);
        }
    }
    let keep: BTreeSet<usize> = last.into_values().collect();
    finals
        .iter()
        .enumerate()
        .filter(|(i, o)| keep.contains(i) || node_of(history, o).is_none())
        .map(|(_, o)| *o)
        .collect()
}

/// A set read's elements, as canonical JSON strings (so 1 and "1" differ).
fn elements(history: &History, op: &Operation) -> Result<BTreeSet<String>, HistoryError> {
    match op.value.as_array() {
        Some(l) => Ok(l.iter().map(Value::to_string).collect()),
        None => Err(HistoryError {
            line: op_line(history, op),
            message: format!("set read returned {}, not a list", op.value),
        }),
    }
}

fn op_line(history: &History, op: &Operation) -> usize {
    let pos = op.complete.unwrap_or(op.invoke);
    history.events.get(pos).map_or(0, |e| e.line)
}

/// What the add-wins judgement needs from the whole history, built in one
/// pass and shared by every final read (a rescan per read was O(reads ×
/// ops)).
pub(crate) struct OrSetIndex<'o> {
    /// Elements of every add that did not fail.
    added: HashSet<String>,
    /// Element → (removes that did not fail, the latest return among them).
    removes: HashMap<String, (usize, usize)>,
    /// Acknowledged adds and their elements, in invocation order.
    ok_adds: Vec<(&'o Operation, String)>,
}

impl<'o> OrSetIndex<'o> {
    pub(crate) fn new(ops: &'o [Operation], deadline: &Deadline) -> OrSetIndex<'o> {
        let mut ix = OrSetIndex {
            added: HashSet::new(),
            removes: HashMap::new(),
            ok_adds: Vec::new(),
        };
        for o in ops {
            if deadline.tick() {
                break;
            }
            if o.outcome == Outcome::Fail {
                continue;
            }
            if is_add(&o.f) {
                let x = o.invoke_value.to_string();
                if o.outcome == Outcome::Ok {
                    ix.ok_adds.push((o, x.clone()));
                }
                ix.added.insert(x);
            } else if o.f == "remove" {
                let r = ix
                    .removes
                    .entry(o.invoke_value.to_string())
                    .or_insert((0, 0));
                r.0 += 1;
                r.1 = r.1.max(o.ret());
            }
        }
        ix
    }
}

/// Add-wins judgement of one set value against the history's adds and
/// removes: lost ok adds and unexpected elements, counted in `an` and
/// explained for the first few.
fn or_set_anomalies(
    history: &History,
    ix: &OrSetIndex,
    read: &Operation,
    seen: &BTreeSet<String>,
    an: &mut Anomalies,
    deadline: &Deadline,
) {
    for (a, x) in &ix.ok_adds {
        if deadline.tick() {
            return;
        }
        if seen.contains(x) {
            continue;
        }
        // A remove observes the add only if it took effect after the add
        // did: possible unless it completed before the add was invoked.
        let removes = ix.removes.get(x).copied();
        let could_observe = removes.is_some_and(|(_, ret)| ret > a.call());
        if !could_observe {
            an.note("lost", || {
                let why = match removes.map_or(0, |r| r.0) {
                    0 => "it was never removed".to_string(),
                    n => format!("all {n} remove(s) of it completed before the add began"),
                };
                json!({
                    "explanation": format!(
                        "the acknowledged add of {x} ({}) is missing from the final read ({}), and {why}",
                        op_where(history, a), op_where(history, read)),
                    "element": a.invoke_value, "op": op_json(history, a), "read": op_json(history, read),
                })
            });
        }
    }
    for x in seen.iter().filter(|x| !ix.added.contains(*x)) {
        an.note("unexpected", || {
            json!({
                "explanation": format!("the final read ({}) holds {x}, which was never added",
                                       op_where(history, read)),
                "element": serde_json::from_str::<Value>(x).unwrap_or(Value::Null),
                "read": op_json(history, read),
            })
        });
    }
}

/// Puts together the result JSON/text shared by both checks.
pub(crate) fn result(
    model: &str,
    anomalies: BTreeMap<&'static str, Vec<Value>>,
    stats: serde_json::Map<String, Value>,
    unknown_reason: Option<String>,
) -> WorkloadResult {
    result_counted(model, anomalies, &BTreeMap::new(), stats, unknown_reason)
}

/// [`result`] where `counts` holds how many anomalies of a kind there
/// were when only the first few are listed (a kind not in `counts`: as
/// many as listed). Written as `anomaly_counts`.
pub(crate) fn result_counted(
    model: &str,
    anomalies: BTreeMap<&'static str, Vec<Value>>,
    counts: &BTreeMap<&'static str, usize>,
    mut stats: serde_json::Map<String, Value>,
    unknown_reason: Option<String>,
) -> WorkloadResult {
    let verdict = if anomalies.values().any(|v| !v.is_empty()) {
        Verdict::Invalid
    } else if unknown_reason.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let anomalies: BTreeMap<&str, Vec<Value>> = anomalies
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let types: Vec<&str> = anomalies.keys().copied().collect();
    let all: BTreeMap<&str, usize> = anomalies
        .iter()
        .map(|(k, v)| (*k, counts.get(k).copied().unwrap_or(v.len()).max(v.len())))
        .collect();
    let counts: Vec<String> = all.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut text = format!(
        "{verdict} ({model}{}{})\n",
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        },
        match (&unknown_reason, verdict) {
            (Some(r), Verdict::Unknown) => format!(": {r}"),
            _ => String::new(),
        }
    );
    for list in anomalies.values() {
        for e in list.iter().take(10) {
            if let Some(s) = e["explanation"].as_str() {
                text.push_str(&format!("  {s}\n"));
            }
        }
    }
    stats.insert("anomalies".into(), json!(all.values().sum::<usize>()));
    let mut json = json!({
        "valid": verdict.to_json(),
        "model": model,
        "anomaly_types": types,
        "anomalies": anomalies,
        "anomaly_counts": all,
        "stats": stats,
    });
    if let (Some(r), Verdict::Unknown) = (unknown_reason, verdict) {
        json["reason"] = json!(r);
    }
    WorkloadResult {
        verdict,
        json,
        text,
    }
}

/// Eventual convergence: see the module docs. `kind` `None`: inferred.
pub fn check_convergence(
    history: &History,
    kind: Option<Kind>,
) -> Result<WorkloadResult, HistoryError> {
    convergence_paired(history, &history.pair()?, kind, &Deadline::none())
}

/// [`check_convergence`] of an already paired history within `deadline`
/// (see [`crate::Deadline`]).
pub fn convergence_paired(
    history: &History,
    paired: &Paired,
    kind: Option<Kind>,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = convergence_inner(history, paired, kind, deadline)?;
    Ok(within(r, deadline, || "judging the final reads".into()))
}

fn convergence_inner(
    history: &History,
    paired: &Paired,
    kind: Option<Kind>,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let ops = &paired.operations;
    let kind = kind.unwrap_or_else(|| Kind::infer(ops));
    let model = format!(
        "crdt-convergence ({}: final reads from every node agree and equal the merge of the acknowledged updates)",
        kind.name()
    );
    let finals = final_reads(history, ops, &paired.nemesis);
    let mut stats = serde_json::Map::new();
    stats.insert("final_reads".into(), json!(finals.len()));
    let Some(&first) = finals.first() else {
        let reason = "no ok read after the last update and the last nemesis event: \
                      nothing shows what the replicas converged to";
        return Ok(result(&model, BTreeMap::new(), stats, Some(reason.into())));
    };
    // Normalise each final read's value so that agreement is equality.
    let norm = |op: &Operation| -> Result<Value, HistoryError> {
        Ok(match kind {
            Kind::Set => json!(elements(history, op)?),
            Kind::Counter => match op.value.as_i64() {
                Some(v) => json!(v),
                None => {
                    return Err(HistoryError {
                        line: op_line(history, op),
                        message: format!("counter read returned {}, not an integer", op.value),
                    });
                }
            },
            Kind::Register => op.value.clone(),
        })
    };
    let mut by_node: BTreeMap<crate::Sym, (Value, &Operation)> = BTreeMap::new();
    let mut anomalies: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    // Each final read is one big unit of work: the clock is read per read.
    if deadline.expired() {
        return Ok(crate::cut_short(
            &model,
            deadline,
            "finding the final reads",
        ));
    }
    let reference = norm(first)?;
    let mut divergent = Vec::new();
    for &r in &finals {
        if deadline.expired() {
            return Ok(crate::cut_short(
                &model,
                deadline,
                "comparing the final reads",
            ));
        }
        let v = norm(r)?;
        let node = node_of(history, r).unwrap_or_else(|| "?".into());
        if v != reference {
            divergent.push(json!({"node": node, "value": r.value, "op": op_json(history, r)}));
        }
        by_node.entry(node).or_insert((v, r));
    }
    if !divergent.is_empty() {
        let vals: Vec<String> = by_node
            .iter()
            .map(|(n, (_, r))| format!("{n} read {}", r.value))
            .collect();
        anomalies.insert(
            "divergent",
            vec![json!({
                "explanation": format!(
                    "after heal and quiescence the replicas disagree: {} (first final read at {})",
                    vals.join("; "), op_where(history, first)),
                "reads": divergent,
            })],
        );
    }
    let known_nodes = by_node.keys().filter(|n| *n != "?").count();
    stats.insert("final_read_nodes".into(), json!(known_nodes));
    match kind {
        Kind::Counter => {
            let (mut ok_sum, mut lo, mut hi) = (0i64, 0i64, 0i64);
            let mut n_ok = 0;
            for o in ops
                .iter()
                .filter(|o| is_add(&o.f) && o.outcome != Outcome::Fail)
            {
                let Some(d) = o.invoke_value.as_i64() else {
                    return Err(HistoryError {
                        line: history.events.get(o.invoke).map_or(0, |e| e.line),
                        message: format!("counter add of {} is not an integer", o.invoke_value),
                    });
                };
                if o.outcome == Outcome::Ok {
                    ok_sum = ok_sum.saturating_add(d);
                    n_ok += 1;
                } else if d < 0 {
                    lo = lo.saturating_add(d);
                } else {
                    hi = hi.saturating_add(d);
                }
            }
            let (lower, upper) = (ok_sum.saturating_add(lo), ok_sum.saturating_add(hi));
            stats.insert("ok_adds".into(), json!(n_ok));
            stats.insert("bounds".into(), json!([lower, upper]));
            let mut oob = Vec::new();
            for (node, (v, r)) in &by_node {
                let v = v.as_i64().unwrap_or_default();
                if v < lower || v > upper {
                    oob.push(json!({
                        "explanation": format!(
                            "{node} converged to {v} ({}), outside [{lower}, {upper}]: the acknowledged adds \
                             sum to {ok_sum}, adds of unknown outcome may add {lo}..+{hi}",
                            op_where(history, r)),
                        "node": node, "read": v, "lower": lower, "upper": upper,
                        "op": op_json(history, r),
                    }));
                }
            }
            anomalies.insert("out-of-bounds", oob);
        }
        Kind::Set => {
            let ix = OrSetIndex::new(ops, deadline);
            let mut an = Anomalies::new(Anomalies::MAX_LISTED);
            for (v, r) in by_node.values() {
                let seen: BTreeSet<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
                or_set_anomalies(history, &ix, r, &seen, &mut an, deadline);
            }
            for (k, l) in an.listed {
                anomalies.entry(k).or_default().extend(l);
            }
            counts.extend(an.counts);
        }
        Kind::Register => {
            let written: BTreeSet<String> = ops
                .iter()
                .filter(|o| o.f == "write" && o.outcome != Outcome::Fail)
                .map(|o| o.invoke_value.to_string())
                .collect();
            let mut unexpected = Vec::new();
            for (node, (v, r)) in &by_node {
                if !v.is_null() && !written.contains(&v.to_string()) {
                    unexpected.push(json!({
                        "explanation": format!("{node} converged to {v} ({}), which no write wrote",
                                               op_where(history, r)),
                        "node": node, "op": op_json(history, r),
                    }));
                }
            }
            anomalies.insert("unexpected", unexpected);
        }
    }
    let unknown = (known_nodes < 2).then(|| {
        format!(
            "the final reads name {known_nodes} node(s) (the `node` field): agreement between replicas \
             was not tested; read from every node after the heal"
        )
    });
    Ok(result_counted(&model, anomalies, &counts, stats, unknown))
}

/// OR-Set (add-wins) semantics of the final read(s): see the module docs.
/// Agreement between nodes is [`check_convergence`]'s business; here each
/// node's final read is judged on its own, so one final read suffices.
pub fn check_or_set(history: &History) -> Result<WorkloadResult, HistoryError> {
    or_set_paired(history, &history.pair()?, &Deadline::none())
}

/// [`check_or_set`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]). O(n log n): one index of adds and removes for
/// every final read; the first [`Anomalies::MAX_LISTED`] of each kind
/// explained, all counted.
pub fn or_set_paired(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = or_set_inner(history, paired, deadline)?;
    Ok(within(r, deadline, || "judging the final reads".into()))
}

fn or_set_inner(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let ops = &paired.operations;
    let model = "or-set (add-wins: no acknowledged add lost unless a remove could have observed it; \
                 nothing present that was never added)";
    let finals = final_reads(history, ops, &paired.nemesis);
    if deadline.expired() {
        return Ok(crate::cut_short(model, deadline, "finding the final reads"));
    }
    let mut stats = serde_json::Map::new();
    stats.insert("final_reads".into(), json!(finals.len()));
    stats.insert(
        "ok_adds".into(),
        json!(
            ops.iter()
                .filter(|o| is_add(&o.f) && o.outcome == Outcome::Ok)
                .count()
        ),
    );
    stats.insert(
        "ok_removes".into(),
        json!(
            ops.iter()
                .filter(|o| o.f == "remove" && o.outcome == Outcome::Ok)
                .count()
        ),
    );
    if finals.is_empty() {
        let reason = "no ok read after the last update and the last nemesis event";
        return Ok(result(model, BTreeMap::new(), stats, Some(reason.into())));
    }
    let ix = OrSetIndex::new(ops, deadline);
    let mut an = Anomalies::new(Anomalies::MAX_LISTED);
    for r in finals {
        if deadline.expired() {
            break;
        }
        let seen = elements(history, r)?;
        or_set_anomalies(history, &ix, r, &seen, &mut an, deadline);
    }
    Ok(result_counted(model, an.listed, &an.counts, stats, None))
}

#[cfg(test)]
mod tests;
