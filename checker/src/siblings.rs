//! Sibling-aware register histories of a Dynamo-style store (DeCandia et
//! al., SOSP 2007 §4.4): no acknowledged write is lost, judged fairly to a
//! store that promises only eventual consistency with siblings.
//!
//! The history (workload `siblings`): per `key`, `write`s of values unique
//! per key and `read`s whose `ok` value is the list of every sibling. A
//! process writes with the causal context of **its own latest `ok` read of
//! the key that completed before the write was invoked** (none: an empty
//! context). So the history alone says what each write supersedes:
//!
//! - `seen(w)`: the siblings that read returned;
//! - `covers(w)`: `seen(w)` and, transitively, what each of those covers —
//!   the write's causal past. A correct store may drop a version only when
//!   a stored version covers it.
//!
//! Anomalies:
//! - **lost-write**: a **final read** of a key (an `ok` read invoked after
//!   the last write was invoked and after the last nemesis event, i.e.
//!   after heal and quiescence) lacks an acknowledged (`ok`) write `w`,
//!   and no sibling it returned covers `w` (of a node's final reads of a
//!   key, the last). Mid-run reads are not judged
//!   for completeness: a sloppy quorum may legitimately miss a write
//!   during a partition.
//! - **superseded-sibling** (any read): two returned siblings, one in the
//!   other's causal past — a version that was overwritten came back, or
//!   the store failed to order what its client had ordered.
//! - **unexpected-value** (any read): a value never written to that key,
//!   or written only after the read had completed.
//!
//! Writes whose values repeat within a key make `seen` ambiguous: the
//! verdict is then `unknown`, as it is when a key with acknowledged writes
//! has no final read.

use crate::history::{History, HistoryError, Operation, Outcome, Value};
use crate::verdict::Verdict;
use crate::{WorkloadResult, op_json, op_where};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

type Key = String;

/// Keys with more writes than this are not indexed (`unknown`): the index
/// takes writes² bits per key (60,000 writes: 450 MB).
const MAX_WRITES_PER_KEY: usize = 60_000;

/// One key's causal pasts: each write's position (invocation order) and
/// the bit set of the writes it covers.
struct Covers {
    pos: BTreeMap<String, usize>,
    bits: Vec<Vec<u64>>,
}

impl Covers {
    /// Is the write of `a` in the causal past of the write of `b`?
    fn contains(&self, b: &str, a: &str) -> bool {
        match (self.pos.get(b), self.pos.get(a)) {
            (Some(&bi), Some(&ai)) => self.bits[bi][ai / 64] >> (ai % 64) & 1 == 1,
            _ => false,
        }
    }
}

fn key_of(op: &Operation) -> Key {
    op.key.as_ref().map_or("null".into(), Value::to_string)
}

/// A read's siblings as canonical JSON strings.
fn siblings(op: &Operation) -> Option<Vec<String>> {
    op.value
        .as_array()
        .map(|l| l.iter().map(Value::to_string).collect())
}

/// Checks a `siblings` history (see the module docs).
pub fn check(history: &History) -> Result<WorkloadResult, HistoryError> {
    let paired = history.pair()?;
    let ops = &paired.operations;
    let model = "siblings (no acknowledged write lost after heal and quiescence; \
                 no superseded sibling; no value never written)";
    let mut unknown: Option<String> = None;
    // key → value → the write op
    let mut writes: BTreeMap<Key, BTreeMap<String, &Operation>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.f == "write") {
        let v = o.invoke_value.to_string();
        if writes.entry(key_of(o)).or_default().insert(v, o).is_some() {
            unknown.get_or_insert(format!(
                "value {} is written twice to key {}: the check needs unique values per key",
                o.invoke_value,
                key_of(o)
            ));
        }
    }
    // seen(w): per (process, key), the latest ok read completed before w.
    let mut reads_of: BTreeMap<(String, Key), Vec<&Operation>> = BTreeMap::new();
    for r in ops
        .iter()
        .filter(|r| r.f == "read" && r.outcome == Outcome::Ok)
    {
        reads_of
            .entry((r.process.to_value().to_string(), key_of(r)))
            .or_default()
            .push(r);
    }
    for list in reads_of.values_mut() {
        list.sort_by_key(|r| r.ret());
    }
    let mut seen: BTreeMap<(Key, String), Vec<String>> = BTreeMap::new();
    for w in ops.iter().filter(|o| o.f == "write") {
        let list = reads_of
            .get(&(w.process.to_value().to_string(), key_of(w)))
            .map_or(&[][..], Vec::as_slice);
        let i = list.partition_point(|r| r.ret() < w.call());
        let s = i
            .checked_sub(1)
            .and_then(|j| siblings(list[j]))
            .unwrap_or_default();
        seen.insert((key_of(w), w.invoke_value.to_string()), s);
    }
    // covers(w) as a bit set over the key's writes. A write's `seen` values
    // were returned by a read that completed before it was invoked, so
    // their writes were invoked earlier (else `unexpected-value`): in
    // invocation order every write's past is known before the write's, and
    // covers(w) = ∪ {x} ∪ covers(x) over x ∈ seen(w). A walk per query made
    // the sibling check O(reads × siblings² × writes): minutes for a 60 s run.
    let mut index: BTreeMap<Key, Covers> = BTreeMap::new();
    for (key, m) in &writes {
        if m.len() > MAX_WRITES_PER_KEY {
            unknown.get_or_insert(format!(
                "{} writes to key {key}: more than the {MAX_WRITES_PER_KEY} per key the sibling check \
                 indexes (their causal pasts take writes² bits)",
                m.len()
            ));
            continue;
        }
        let mut order: Vec<(&String, &&Operation)> = m.iter().collect();
        order.sort_by_key(|(_, w)| w.invoke);
        let pos: BTreeMap<&String, usize> = order
            .iter()
            .enumerate()
            .map(|(i, (v, _))| (*v, i))
            .collect();
        let words = order.len().div_ceil(64);
        let mut bits: Vec<Vec<u64>> = Vec::with_capacity(order.len());
        for (i, (v, _)) in order.iter().enumerate() {
            let mut b = vec![0u64; words];
            for x in seen.get(&(key.clone(), (*v).clone())).into_iter().flatten() {
                if let Some(&j) = pos.get(x).filter(|&&j| j < i) {
                    b[j / 64] |= 1 << (j % 64);
                    for (d, s) in b.iter_mut().zip(&bits[j]) {
                        *d |= *s;
                    }
                }
            }
            bits.push(b);
        }
        let pos = pos.into_iter().map(|(v, i)| (v.clone(), i)).collect();
        index.insert(key.clone(), Covers { pos, bits });
    }
    // Is `a` in covers(b), for values of `key`?
    let covers = |key: &Key, b: &String, a: &String| -> bool {
        index.get(key).is_some_and(|c| c.contains(b, a))
    };
    let mut anomalies: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let reads: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        .collect();
    let mut max_siblings = 0;
    let mut with_siblings = 0;
    for r in &reads {
        let key = key_of(r);
        let Some(sib) = siblings(r) else {
            return Err(HistoryError {
                line: history.events.get(r.ret()).map_or(0, |e| e.line),
                message: format!("a read returned {}, not a list of siblings", r.value),
            });
        };
        max_siblings = max_siblings.max(sib.len());
        with_siblings += usize::from(sib.len() > 1);
        for x in &sib {
            let ok = writes
                .get(&key)
                .and_then(|m| m.get(x))
                .is_some_and(|w| w.call() < r.ret());
            if !ok {
                anomalies.entry("unexpected-value").or_default().push(json!({
                    "explanation": format!("the read of key {key} ({}) returned {x}, which no write to that key had begun to write",
                                           op_where(history, r)),
                    "key": key, "value": x, "read": op_json(history, r),
                }));
            }
        }
        for a in &sib {
            for b in &sib {
                if a != b && covers(&key, b, a) {
                    anomalies.entry("superseded-sibling").or_default().push(json!({
                        "explanation": format!(
                            "the read of key {key} ({}) returned {a} and {b} as siblings, but the write of {b} \
                             was made by a client that had seen {a} (directly or through later versions): {b} supersedes it",
                            op_where(history, r)),
                        "key": key, "superseded": a, "by": b, "read": op_json(history, r),
                    }));
                }
            }
        }
    }
    // Final reads: after the last write was invoked and the last nemesis event.
    let last_write = ops
        .iter()
        .filter(|o| o.f == "write")
        .map(|o| o.invoke)
        .max();
    let after = last_write.max(paired.nemesis.iter().copied().max());
    let finals: Vec<&&Operation> = reads
        .iter()
        .filter(|r| after.is_none_or(|p| r.invoke > p))
        .collect();
    // Of a node's final reads of a key only the last counts: the runner
    // reads every node again while their answers differ (a lagging
    // replica), as for the CRDT checks.
    let mut last: BTreeMap<(String, Key), usize> = BTreeMap::new();
    for (i, r) in finals.iter().enumerate() {
        if let Some(n) = crate::crdt::node_of(history, r) {
            last.insert((n, key_of(r)), i);
        }
    }
    let keep: BTreeSet<usize> = last.into_values().collect();
    let finals: Vec<&&Operation> = finals
        .into_iter()
        .enumerate()
        .filter(|(i, r)| keep.contains(i) || crate::crdt::node_of(history, r).is_none())
        .map(|(_, r)| r)
        .collect();
    let mut final_keys = BTreeSet::new();
    for r in &finals {
        let key = key_of(r);
        final_keys.insert(key.clone());
        let sib: BTreeSet<String> = siblings(r).unwrap_or_default().into_iter().collect();
        for w in writes.get(&key).into_iter().flat_map(|m| m.values()) {
            let v = w.invoke_value.to_string();
            if w.outcome != Outcome::Ok
                || sib.contains(&v)
                || sib.iter().any(|y| covers(&key, y, &v))
            {
                continue;
            }
            anomalies.entry("lost-write").or_default().push(json!({
                "explanation": format!(
                    "the acknowledged write of {v} to key {key} ({}) is missing from the final read ({}), \
                     which returned [{}], and none of those was written by a client that had seen {v}: \
                     the store dropped it",
                    op_where(history, w), op_where(history, r),
                    sib.iter().cloned().collect::<Vec<_>>().join(", ")),
                "key": key, "value": w.invoke_value, "write": op_json(history, w),
                "read": op_json(history, r),
            }));
        }
    }
    let missing: Vec<&Key> = writes
        .iter()
        .filter(|(k, m)| m.values().any(|w| w.outcome == Outcome::Ok) && !final_keys.contains(*k))
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        unknown.get_or_insert(format!(
            "no final read (after the last write and the heal) of key {}: lost writes were not looked for there",
            missing.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let count = |o: Outcome| {
        ops.iter()
            .filter(|x| x.f == "write" && x.outcome == o)
            .count()
    };
    let stats = json!({
        "writes_ok": count(Outcome::Ok), "writes_info": count(Outcome::Info),
        "reads_ok": reads.len(), "final_reads": finals.len(),
        "reads_with_siblings": with_siblings, "max_siblings": max_siblings,
        "anomalies": anomalies.values().map(Vec::len).sum::<usize>(),
    });
    let verdict = if !anomalies.is_empty() {
        Verdict::Invalid
    } else if unknown.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let counts: Vec<String> = anomalies
        .iter()
        .map(|(k, v)| format!("{} {k}", v.len()))
        .collect();
    let mut text = format!("{verdict} ({model}");
    if !counts.is_empty() {
        text.push_str(&format!(": {}", counts.join(", ")));
    }
    if let (Some(r), Verdict::Unknown) = (&unknown, verdict) {
        text.push_str(&format!(": {r}"));
    }
    text.push_str(")\n");
    for list in anomalies.values() {
        for e in list.iter().take(10) {
            if let Some(s) = e["explanation"].as_str() {
                text.push_str(&format!("  {s}\n"));
            }
        }
    }
    let types: Vec<&str> = anomalies.keys().copied().collect();
    let mut json = json!({
        "valid": verdict.to_json(), "model": model, "anomaly_types": types,
        "anomalies": anomalies, "stats": stats,
    });
    if let (Some(r), Verdict::Unknown) = (unknown, verdict) {
        json["reason"] = json!(r);
    }
    Ok(WorkloadResult {
        verdict,
        json,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::{self, *};
    use crate::history::{Event, Process};

    /// `(process, type, f, key, value)`; `f` "nemesis" is the nemesis.
    fn h(evs: &[(u64, EventType, &str, i64, Value)]) -> History {
        History {
            events: evs
                .iter()
                .enumerate()
                .map(|(i, (p, k, f, key, v))| {
                    let process = if *f == "nemesis" {
                        Process::Nemesis
                    } else {
                        Process::Client(*p)
                    };
                    Event {
                        index: Some(i as u64),
                        line: i + 1,
                        key: (*f != "nemesis").then(|| json!(key)),
                        ..Event::new(process, *k, *f, v.clone())
                    }
                })
                .collect(),
        }
    }

    /// Two concurrent writes (1 by p0, 2 by p1), then p0 reads both and
    /// writes 3 over them; a heal; a final read returning `fin`.
    fn history(fin: Value) -> History {
        h(&[
            (0, Invoke, "write", 0, json!(1)),
            (1, Invoke, "write", 0, json!(2)),
            (0, Ok, "write", 0, json!(1)),
            (1, Ok, "write", 0, json!(2)),
            (0, Invoke, "read", 0, Value::Null),
            (0, Ok, "read", 0, json!([1, 2])),
            (0, Invoke, "write", 0, json!(3)),
            (0, Ok, "write", 0, json!(3)),
            (2, Invoke, "write", 0, json!(4)),
            (2, Info, "write", 0, json!(4)),
            (9, Info, "nemesis", 0, json!("heal")),
            (1, Invoke, "read", 0, Value::Null),
            (1, Ok, "read", 0, fin),
        ])
    }

    #[test]
    fn superseded_writes_may_go_concurrent_ones_must_stay() {
        for fin in [json!([3]), json!([3, 4])] {
            let r = check(&history(fin.clone())).unwrap();
            assert_eq!(r.verdict, Verdict::Valid, "{fin}: {}", r.text);
        }
        let r = check(&history(json!([4]))).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.json["anomaly_types"], json!(["lost-write"]));
        assert!(r.text.contains("write of 3 to key 0"), "{}", r.text);
        // 1 and 2 were covered only by 3, which is gone too.
        assert_eq!(
            r.json["anomalies"]["lost-write"].as_array().unwrap().len(),
            3
        );
    }

    #[test]
    fn a_superseded_sibling_or_a_value_never_written_is_an_anomaly() {
        let r = check(&history(json!([1, 3]))).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["superseded-sibling"]));
        let r = check(&history(json!([3, 9]))).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["unexpected-value"]));
    }

    #[test]
    fn reads_before_the_heal_are_not_judged_for_completeness() {
        let mut evs = history(json!([3])).events;
        // A stale read during the partition: allowed.
        evs.insert(
            8,
            Event {
                key: Some(json!(0)),
                ..Event::new(Process::Client(5), Invoke, "read", Value::Null)
            },
        );
        evs.insert(
            9,
            Event {
                key: Some(json!(0)),
                ..Event::new(Process::Client(5), Ok, "read", json!([1]))
            },
        );
        let r = check(&History { events: evs }).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
        assert_eq!(r.json["stats"]["final_reads"], 1);
    }

    #[test]
    fn no_final_read_or_repeated_values_is_unknown_never_valid() {
        let mut evs = history(json!([3])).events;
        evs.truncate(11);
        let r = check(&History { events: evs }).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.json["reason"].as_str().unwrap().contains("key 0"));
        let r = check(&h(&[
            (0, Invoke, "write", 0, json!(1)),
            (0, Ok, "write", 0, json!(1)),
            (0, Invoke, "write", 0, json!(1)),
            (0, Ok, "write", 0, json!(1)),
            (0, Invoke, "read", 0, Value::Null),
            (0, Ok, "read", 0, json!([1])),
        ]))
        .unwrap();
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.text);
    }
}
