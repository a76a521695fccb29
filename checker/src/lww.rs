//! `lww-register`: what a last-writer-wins register store (a CRDT store of
//! LWW registers, Shapiro et al. 2011 §3.2.1) promises, judged from the
//! outside on a history of reads and blind writes of unique values over a
//! few keys, each client bound to one replica.
//!
//! LWW picks the write with the largest timestamp, which no client sees,
//! so real time says nothing certain about which of two concurrent writes
//! must win (Jepsen's and Knossos's linearizability would call the store
//! broken for doing what it documents). What it does promise:
//!
//! - **causal consistency** ([`crate::session`], model `causal`): a write
//!   is stamped after every write its replica has seen, so a write that
//!   causally follows another (its session read or wrote it first) always
//!   wins over it, and a replica never goes back. A stale read is named
//!   after the session guarantee its witness breaks (`read-your-writes`,
//!   `monotonic-reads`, `monotonic-writes`, `writes-follow-reads`,
//!   `causal-stale-read`); a value nobody wrote is a `garbage-read`. This
//!   is what a write stamped with a skewed raw wall clock breaks: it loses
//!   to a write its own session had just read.
//! - **convergence**: after heal and quiescence (the final reads, see
//!   [`crate::crdt`]) every replica returns the same value for each key
//!   (`divergent` if not) — what ties broken by the local replica break.

use crate::crdt::{final_reads, node_of, result};
use crate::history::{History, HistoryError, Paired};
use crate::session::{self, SessionError, SessionOptions};
use crate::{Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The checker's name, as `faultline check --model` takes it.
pub const MODEL: &str = "lww-register";

/// Checks `history`: see the module docs.
pub fn check(history: &History) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): the session check shares the pairing and the
/// deadline; cut short, `unknown` (or `invalid` with what was found).
pub fn check_paired(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let r = check_inner(history, paired, deadline)?;
    Ok(within(r, deadline, || "checking causal consistency".into()))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let model = "lww-register (causal consistency of every read; per key, the final reads \
                 from every replica agree)";
    let causal = session::check_paired(history, paired, &SessionOptions::default(), deadline)
        .map_err(|e| match e {
            SessionError::Op { line, message } => HistoryError { line, message },
            // The default model is `causal`, always known.
            SessionError::Model(message) => HistoryError { line: 0, message },
        })?;
    let mut anomalies: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for (kind, list) in &causal.anomalies {
        let Some(name) = session::GUARANTEES
            .iter()
            .chain(["causal-stale-read", "cyclic-causal-order", "garbage-read"].iter())
            .find(|g| **g == kind.as_str())
        else {
            continue;
        };
        let entry = anomalies.entry(name).or_default();
        entry.extend(list.iter().filter_map(|v| serde_json::to_value(v).ok()));
    }

    let finals = final_reads(history, &paired.operations, &paired.nemesis);
    // key → node → (value, read)
    let mut by_key: BTreeMap<String, BTreeMap<crate::Sym, Vec<&crate::history::Operation>>> =
        BTreeMap::new();
    for r in &finals {
        let key = r
            .key
            .as_deref()
            .map_or_else(|| "null".into(), Value::to_string);
        let node = node_of(history, r).unwrap_or_else(|| "?".into());
        by_key
            .entry(key)
            .or_default()
            .entry(node)
            .or_default()
            .push(r);
    }
    let mut nodes_seen = 0;
    for (key, nodes) in &by_key {
        nodes_seen = nodes_seen.max(nodes.len());
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (node, reads) in nodes {
            for r in reads {
                values
                    .entry(r.value.to_string())
                    .or_default()
                    .push(node.to_string());
            }
        }
        if values.len() > 1 {
            let said: Vec<String> = values
                .iter()
                .map(|(v, ns)| format!("{} read {v}", ns.join(", ")))
                .collect();
            let reads: Vec<Value> = nodes
                .iter()
                .flat_map(|(n, rs)| {
                    rs.iter().map(
                        move |r| json!({"node": n, "value": r.value, "op": op_json(history, r)}),
                    )
                })
                .collect();
            let first = nodes.values().flatten().next();
            anomalies.entry("divergent").or_default().push(json!({
                "key": key,
                "explanation": format!(
                    "key {key}: after heal and quiescence the replicas disagree: {} \
                     (first final read at {})",
                    said.join("; "),
                    first.map_or_else(|| "?".into(), |r| op_where(history, r))
                ),
                "reads": reads,
            }));
        }
    }

    let mut stats = serde_json::Map::new();
    stats.insert("final_reads".into(), json!(finals.len()));
    stats.insert("keys".into(), json!(by_key.len()));
    stats.insert("reads_checked".into(), json!(causal.stats.reads_checked));
    stats.insert("writes".into(), json!(causal.stats.writes));
    stats.insert("processes".into(), json!(causal.stats.processes));
    let mut unknown = causal.reasons.first().cloned();
    if unknown.is_none() && nodes_seen < 2 {
        unknown = Some(if finals.is_empty() {
            "no ok read after the last update and the last nemesis event: nothing shows \
             what the replicas converged to"
                .into()
        } else {
            "the final reads came from fewer than two replicas: agreement was not tested".into()
        });
    }
    Ok(result(model, anomalies, stats, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    /// A history from `(process, type, f, key, value, node)` events; the
    /// nemesis when `f` is `nemesis`.
    fn h(events: &[(u64, &str, &str, u64, Value, &str)]) -> History {
        let text: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(i, (p, t, f, k, v, n))| {
                if *f == "nemesis" {
                    return json!({"index": i, "process": "nemesis", "type": "info",
                                  "f": "heal", "value": null})
                    .to_string();
                }
                json!({"index": i, "process": p, "type": t, "f": f, "key": k, "value": v,
                       "node": n})
                .to_string()
            })
            .collect();
        crate::format::jsonl::parse(text.join("\n").as_bytes()).expect("history")
    }

    fn heal() -> (u64, &'static str, &'static str, u64, Value, &'static str) {
        (0, "info", "nemesis", 0, Value::Null, "")
    }

    #[test]
    fn causal_and_converged_is_valid_even_when_the_earlier_write_wins() {
        // Two concurrent writes; the one made first in real time wins (a
        // faster clock): LWW's promise, not an anomaly.
        let hist = h(&[
            (0, "invoke", "write", 0, json!(1), "n1"),
            (0, "ok", "write", 0, json!(1), "n1"),
            (1, "invoke", "write", 0, json!(2), "n2"),
            (1, "ok", "write", 0, json!(2), "n2"),
            (1, "invoke", "read", 0, Value::Null, "n2"),
            (1, "ok", "read", 0, json!(1), "n2"),
            heal(),
            (2, "invoke", "read", 0, Value::Null, "n1"),
            (2, "ok", "read", 0, json!(1), "n1"),
            (3, "invoke", "read", 0, Value::Null, "n2"),
            (3, "ok", "read", 0, json!(1), "n2"),
        ]);
        let r = check(&hist).expect("check");
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
    }

    #[test]
    fn a_write_that_loses_to_the_write_its_session_read_is_read_your_writes() {
        // Process 1 reads 1, writes 2, then reads 1 again: its write was
        // stamped below the one it followed (a clock behind).
        let hist = h(&[
            (0, "invoke", "write", 0, json!(1), "n1"),
            (0, "ok", "write", 0, json!(1), "n1"),
            (1, "invoke", "read", 0, Value::Null, "n2"),
            (1, "ok", "read", 0, json!(1), "n2"),
            (1, "invoke", "write", 0, json!(2), "n2"),
            (1, "ok", "write", 0, json!(2), "n2"),
            (1, "invoke", "read", 0, Value::Null, "n2"),
            (1, "ok", "read", 0, json!(1), "n2"),
            heal(),
            (2, "invoke", "read", 0, Value::Null, "n1"),
            (2, "ok", "read", 0, json!(1), "n1"),
            (3, "invoke", "read", 0, Value::Null, "n2"),
            (3, "ok", "read", 0, json!(1), "n2"),
        ]);
        let r = check(&hist).expect("check");
        assert_eq!(r.verdict, Verdict::Invalid, "{}", r.text);
        assert!(
            r.json["anomaly_types"]
                .as_array()
                .expect("types")
                .contains(&json!("read-your-writes")),
            "{}",
            r.json
        );
    }

    #[test]
    fn replicas_that_disagree_after_the_heal_are_divergent_per_key() {
        let hist = h(&[
            (0, "invoke", "write", 0, json!(1), "n1"),
            (0, "ok", "write", 0, json!(1), "n1"),
            (1, "invoke", "write", 0, json!(2), "n2"),
            (1, "ok", "write", 0, json!(2), "n2"),
            (0, "invoke", "write", 1, json!(3), "n1"),
            (0, "ok", "write", 1, json!(3), "n1"),
            heal(),
            (2, "invoke", "read", 0, Value::Null, "n1"),
            (2, "ok", "read", 0, json!(1), "n1"),
            (3, "invoke", "read", 0, Value::Null, "n2"),
            (3, "ok", "read", 0, json!(2), "n2"),
            (2, "invoke", "read", 1, Value::Null, "n1"),
            (2, "ok", "read", 1, json!(3), "n1"),
            (3, "invoke", "read", 1, Value::Null, "n2"),
            (3, "ok", "read", 1, json!(3), "n2"),
        ]);
        let r = check(&hist).expect("check");
        assert_eq!(r.verdict, Verdict::Invalid, "{}", r.text);
        let div = r.json["anomalies"]["divergent"]
            .as_array()
            .expect("divergent");
        assert_eq!(div.len(), 1, "{}", r.json);
        assert_eq!(div[0]["key"], "0");
        assert!(r.text.contains("n1 read 1"), "{}", r.text);
    }

    #[test]
    fn final_reads_from_one_replica_are_unknown_not_valid() {
        let hist = h(&[
            (0, "invoke", "write", 0, json!(1), "n1"),
            (0, "ok", "write", 0, json!(1), "n1"),
            heal(),
            (2, "invoke", "read", 0, Value::Null, "n1"),
            (2, "ok", "read", 0, json!(1), "n1"),
        ]);
        let r = check(&hist).expect("check");
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.text);
    }
}
