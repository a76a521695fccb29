//! The bank workload's check, as Jepsen's bank checker
//! (`jepsen.tests.bank/checker`): money moves between accounts by
//! transfers, so every read of all balances that saw a consistent snapshot
//! sums to the same total, and (unless the test allows overdrafts) no
//! balance is ever negative.
//!
//! Operations: `transfer` with `{"from", "to", "amount"}` (not judged
//! themselves) and `read`, whose `ok` value holds every account's balance:
//! an object `{"0": 20, "1": 20, …}` or a list `[20, 20, …]` (index =
//! account). Per `ok` read, as Jepsen: `wrong-n` (not the expected number of
//! accounts), `unexpected-key` (an account that does not exist),
//! `nil-balance` (a balance that is not a number), `wrong-total` (balances
//! that do not sum to the conserved total) and `negative-value`. A read
//! that is not a snapshot (read skew) shows up as a wrong total, which is
//! why the workload names snapshot isolation.

use crate::history::{History, HistoryError, Outcome, Paired, Value};
use crate::verdict::Verdict;
use crate::{Anomalies, Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// What the bank is known to hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BankOptions {
    /// The conserved total. `None`: the most common total among the `ok`
    /// reads is taken as the reference (and the result says so).
    pub total: Option<i64>,
    /// The accounts, by name (`"0"`, `"1"`, …). `None`: not checked.
    pub accounts: Option<Vec<String>>,
    /// Whether balances may go below zero (Jepsen's `negative-balances?`).
    pub negative_balances: bool,
}

impl BankOptions {
    /// Options from an initial state: a number (the total), a list of
    /// balances (accounts `0..n`) or an object of account → balance.
    pub fn from_initial(initial: &Value) -> Result<BankOptions, String> {
        let balances = balances(initial).map_err(|e| format!("bank initial state: {e}"))?;
        match balances {
            Some(b) => {
                let mut total = 0i64;
                for (acct, v) in &b {
                    let v =
                        v.ok_or_else(|| format!("initial balance of {acct} is not a number"))?;
                    total = total.saturating_add(v);
                }
                Ok(BankOptions {
                    total: Some(total),
                    accounts: Some(b.keys().cloned().collect()),
                    negative_balances: false,
                })
            }
            None => match initial.as_i64() {
                Some(t) => Ok(BankOptions {
                    total: Some(t),
                    ..BankOptions::default()
                }),
                None => Err(format!(
                    "bank initial state must be a total, a list of balances or an object of \
                     account -> balance, got {initial}"
                )),
            },
        }
    }
}

/// account → balance (`None` when not an integer); `Ok(None)` when the
/// value is neither an object nor a list.
type Balances = BTreeMap<String, Option<i64>>;

fn balances(v: &Value) -> Result<Option<Balances>, String> {
    match v {
        Value::Object(m) => Ok(Some(
            m.iter().map(|(k, b)| (k.clone(), b.as_i64())).collect(),
        )),
        Value::Array(l) => Ok(Some(
            l.iter()
                .enumerate()
                .map(|(i, b)| (i.to_string(), b.as_i64()))
                .collect(),
        )),
        _ => Ok(None),
    }
}

/// Checks every `ok` read of a bank history (see the module docs).
/// No `ok` read at all: `unknown`.
pub fn check(history: &History, opts: &BankOptions) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, opts, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]). Linear in the operations; explanations are kept
/// for the first [`Anomalies::MAX_LISTED`] anomalies of each kind, all
/// counted in `anomaly_counts`.
pub fn check_paired(
    history: &History,
    paired: &Paired,
    opts: &BankOptions,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = check_inner(history, paired, opts, deadline)?;
    Ok(within(r.0, deadline, || {
        format!("{} of {} ok reads checked", r.1, r.2)
    }))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    opts: &BankOptions,
    deadline: &Deadline,
) -> Result<(WorkloadResult, usize, usize), HistoryError> {
    let mut reads = Vec::new();
    let (mut transfers_ok, mut transfers_fail, mut transfers_info) = (0usize, 0usize, 0usize);
    for op in &paired.operations {
        if deadline.tick() {
            break;
        }
        match (op.f.as_str(), op.outcome) {
            ("read", Outcome::Ok) => {
                let Some(b) = balances(&op.value).ok().flatten() else {
                    let line = history.events.get(op.complete.unwrap_or(op.invoke));
                    return Err(HistoryError {
                        line: line.map_or(0, |e| e.line),
                        message: format!(
                            "bank read returned {}: expected an object of account -> balance \
                             or a list of balances",
                            op.value
                        ),
                    });
                };
                reads.push((op, b));
            }
            ("transfer", Outcome::Ok) => transfers_ok += 1,
            ("transfer", Outcome::Fail) => transfers_fail += 1,
            ("transfer", Outcome::Info) => transfers_info += 1,
            _ => {}
        }
    }
    let stats = |extra: Value| {
        let mut s = json!({"ok_reads": reads.len(), "transfers_ok": transfers_ok,
                           "transfers_fail": transfers_fail, "transfers_info": transfers_info});
        if let (Some(o), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        s
    };
    let model = "bank (every read sums to the conserved total, no negative balances)";
    if reads.is_empty() {
        let reason = "no read succeeded: no balances to check";
        return Ok((
            WorkloadResult {
                verdict: Verdict::Unknown,
                json: json!({"valid": Verdict::Unknown.to_json(), "model": model, "reason": reason,
                             "anomaly_types": [], "anomalies": {}, "stats": stats(json!({}))}),
                text: format!("unknown (bank): {reason}\n"),
            },
            0,
            0,
        ));
    }

    let sum = |b: &Balances| b.values().flatten().fold(0i64, |a, v| a.saturating_add(*v));
    // Without a given total, the most common read total is the reference:
    // a correct store's reads all agree, so the odd ones out are the anomalies.
    let (total, total_source) = match opts.total {
        Some(t) => (t, "given"),
        None => {
            let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
            for (_, b) in &reads {
                if b.values().all(Option::is_some) {
                    *counts.entry(sum(b)).or_default() += 1;
                }
            }
            let t = counts
                .iter()
                .max_by_key(|(t, n)| (**n, std::cmp::Reverse(**t)))
                .map_or(0, |(t, _)| *t);
            (t, "the most common total among the ok reads")
        }
    };
    let expected: Option<BTreeSet<&str>> = opts
        .accounts
        .as_ref()
        .map(|a| a.iter().map(String::as_str).collect());

    let mut an = Anomalies::new(Anomalies::MAX_LISTED);
    let (mut checked, mut bad_reads) = (0usize, 0usize);
    for (op, b) in &reads {
        if deadline.tick() {
            break;
        }
        checked += 1;
        let before: usize = an.counts.values().sum();
        let at = || op_where(history, op);
        let mut push = |kind: &'static str, explanation: &dyn Fn() -> String| {
            an.note(
                kind,
                || json!({"explanation": explanation(), "op": op_json(history, op)}),
            );
        };
        if let Some(exp) = &expected {
            if b.len() != exp.len() {
                push("wrong-n", &|| {
                    format!(
                        "the read at {} saw {} account(s), but the bank has {}",
                        at(),
                        b.len(),
                        exp.len()
                    )
                });
            }
            let unexpected: Vec<&str> = b
                .keys()
                .map(String::as_str)
                .filter(|k| !exp.contains(k))
                .collect();
            if !unexpected.is_empty() {
                push("unexpected-key", &|| {
                    format!(
                        "the read at {} saw account(s) {} that do not exist",
                        at(),
                        unexpected.join(", ")
                    )
                });
            }
        }
        let nil: Vec<&str> = b
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
            .collect();
        if !nil.is_empty() {
            push("nil-balance", &|| {
                format!(
                    "the read at {} has no numeric balance for account(s) {}",
                    at(),
                    nil.join(", ")
                )
            });
        } else if sum(b) != total {
            push("wrong-total", &|| {
                format!(
                    "the read at {} sums to {} but the bank holds {total} ({}): {}",
                    at(),
                    sum(b),
                    total_source,
                    op.value
                )
            });
        }
        if !opts.negative_balances {
            let neg: Vec<String> = b
                .iter()
                .filter_map(|(k, v)| v.filter(|v| *v < 0).map(|v| format!("{k}: {v}")))
                .collect();
            if !neg.is_empty() {
                push("negative-value", &|| {
                    format!(
                        "the read at {} has negative balance(s) ({}), which this bank forbids",
                        at(),
                        neg.join(", ")
                    )
                });
            }
        }
        if an.counts.values().sum::<usize>() > before {
            bad_reads += 1;
        }
    }
    let verdict = if an.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    let anomaly_types: Vec<&str> = an.counts.keys().copied().collect();
    let mut text = format!(
        "{verdict} (bank: {} ok reads, {} of them wrong; total {total} ({total_source}); \
         {transfers_ok} ok transfers)\n",
        reads.len(),
        bad_reads
    );
    for list in an.listed.values() {
        for a in list.iter().take(10) {
            if let Some(e) = a["explanation"].as_str() {
                text.push_str(&format!("  {e}\n"));
            }
        }
    }
    let json = json!({
        "valid": verdict.to_json(),
        "model": model,
        "total": total,
        "total_source": total_source,
        "negative_balances_allowed": opts.negative_balances,
        "anomaly_types": anomaly_types,
        "anomalies": an.listed,
        "anomaly_counts": an.counts,
        "stats": stats(json!({"wrong_reads": bad_reads})),
    });
    let n_reads = reads.len();
    Ok((
        WorkloadResult {
            verdict,
            json,
            text,
        },
        checked,
        n_reads,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::*;
    use crate::testing::hist;

    fn opts(total: i64) -> BankOptions {
        BankOptions {
            total: Some(total),
            accounts: Some(vec!["0".into(), "1".into()]),
            negative_balances: false,
        }
    }

    fn with_read(read: Value) -> History {
        hist(&[
            (
                0,
                Invoke,
                "transfer",
                json!({"from": 0, "to": 1, "amount": 5}),
            ),
            (1, Invoke, "read", Value::Null),
            (0, Ok, "transfer", json!({"from": 0, "to": 1, "amount": 5})),
            (1, Ok, "read", read),
        ])
    }

    #[test]
    fn conserved_total_is_valid() {
        // Before or after the concurrent transfer: both sum to 20.
        for read in [json!({"0": 10, "1": 10}), json!([5, 15])] {
            let r = check(&with_read(read), &opts(20)).unwrap();
            assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
        }
    }

    #[test]
    fn wrong_total_names_the_op_index() {
        // Read skew: the debit seen, the credit not.
        let r = check(&with_read(json!({"0": 5, "1": 10})), &opts(20)).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.json["anomaly_types"], json!(["wrong-total"]));
        let a = &r.json["anomalies"]["wrong-total"][0];
        assert_eq!(a["op"]["index"], 3, "the read's completion: {a}");
        assert!(
            a["explanation"].as_str().unwrap().contains("sums to 15"),
            "{a}"
        );
    }

    #[test]
    fn negative_balance_is_invalid_unless_allowed() {
        let h = with_read(json!({"0": -5, "1": 25}));
        let r = check(&h, &opts(20)).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["negative-value"]));
        let mut o = opts(20);
        o.negative_balances = true;
        assert_eq!(check(&h, &o).unwrap().verdict, Verdict::Valid);
    }

    #[test]
    fn missing_and_unexpected_accounts() {
        let r = check(&with_read(json!({"0": 20, "7": 0})), &opts(20)).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["unexpected-key"]));
        let r = check(&with_read(json!({"0": 20})), &opts(20)).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["wrong-n"]));
        let r = check(&with_read(json!({"0": 20, "1": null})), &opts(20)).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["nil-balance"]));
    }

    #[test]
    fn total_defaults_to_the_most_common_one() {
        let h = hist(&[
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!([10, 10])),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!([12, 10])),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!([2, 18])),
        ]);
        let r = check(&h, &BankOptions::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.json["total"], 20);
        assert_eq!(r.json["anomalies"]["wrong-total"][0]["op"]["index"], 3);
    }

    #[test]
    fn no_ok_read_is_unknown_and_bad_shapes_name_the_line() {
        let h = hist(&[
            (1, Invoke, "read", Value::Null),
            (1, Fail, "read", Value::Null),
        ]);
        assert_eq!(check(&h, &opts(20)).unwrap().verdict, Verdict::Unknown);
        let e = check(&with_read(json!(20)), &opts(20)).unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(
            BankOptions::from_initial(&json!([50, 50])).unwrap().total,
            Some(100)
        );
        assert!(BankOptions::from_initial(&json!("x")).is_err());
    }
}
