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

use crate::history::{History, HistoryError, Operation, Outcome, Paired, Process, Value};
use crate::verdict::Verdict;
use crate::{Anomalies, Deadline, WorkloadResult, op_json, op_where, within};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Key = String;

/// Explanations kept per anomaly kind (all are counted).
const MAX_LISTED: usize = 16;

fn key_of(op: &Operation) -> Key {
    op.key.as_deref().map_or("null".into(), Value::to_string)
}

/// A read's siblings as canonical JSON strings.
fn siblings(op: &Operation) -> Option<Vec<String>> {
    op.value
        .as_array()
        .map(|l| l.iter().map(Value::to_string).collect())
}

/// One key's writes in invocation order (`pos`) and their causal edges:
/// `seen[w]` the positions of the values `w`'s context read (all
/// earlier). `covers(w)` is what these edges reach; it is asked of a few
/// pairs per read, not tabulated (a writes² bit matrix took 450 MB for
/// 60,000 writes of one key).
struct KeyWrites<'o> {
    pos: HashMap<String, u32>,
    ops: Vec<&'o Operation>,
    seen: Vec<Vec<u32>>,
    /// DFS scratch: `mark[w] == stamp` when visited in the current walk.
    mark: Vec<u32>,
    stamp: u32,
    /// (b, a) → is a in covers(b): reads repeat the same sibling sets.
    memo: HashMap<(u32, u32), bool>,
}

impl KeyWrites<'_> {
    /// Is the write at `a` in the causal past of the write at `b`? A walk
    /// back from `b` that never goes below `a` (edges only go to earlier
    /// writes). `None` if the deadline passed.
    fn covers(&mut self, b: u32, a: u32, deadline: &Deadline) -> Option<bool> {
        if a >= b {
            return Some(false);
        }
        if let Some(&r) = self.memo.get(&(b, a)) {
            return Some(r);
        }
        self.stamp += 1;
        let mut stack = vec![b];
        self.mark[b as usize] = self.stamp;
        let mut found = false;
        'walk: while let Some(w) = stack.pop() {
            for &x in &self.seen[w as usize] {
                if deadline.tick() {
                    return None;
                }
                if x == a {
                    found = true;
                    break 'walk;
                }
                if x > a && self.mark[x as usize] != self.stamp {
                    self.mark[x as usize] = self.stamp;
                    stack.push(x);
                }
            }
        }
        self.memo.insert((b, a), found);
        Some(found)
    }

    /// Marks everything the writes at `from` cover (not `from` themselves,
    /// unless one covers another); returns the stamp marking them.
    fn cover_all(&mut self, from: &[u32], deadline: &Deadline) -> Option<u32> {
        self.stamp += 1;
        let st = self.stamp;
        let mut stack: Vec<u32> = from.to_vec();
        while let Some(w) = stack.pop() {
            for i in 0..self.seen[w as usize].len() {
                if deadline.tick() {
                    return None;
                }
                let x = self.seen[w as usize][i];
                if self.mark[x as usize] != st {
                    self.mark[x as usize] = st;
                    stack.push(x);
                }
            }
        }
        Some(st)
    }
}

/// Checks a `siblings` history (see the module docs).
pub fn check(history: &History) -> Result<WorkloadResult, HistoryError> {
    check_paired(history, &history.pair()?, &Deadline::none())
}

/// [`check`] of an already paired history within `deadline` (see
/// [`crate::Deadline`]): cut short, `unknown` (or `invalid` if an anomaly
/// was already found). Causal pasts are walked per query, memoised, each
/// walk bounded below by the write asked about.
pub fn check_paired(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
) -> Result<WorkloadResult, HistoryError> {
    let mut done = (0usize, 0usize);
    let r = check_inner(history, paired, deadline, &mut done)?;
    Ok(within(r, deadline, || {
        format!("{} of {} ok reads judged", done.0, done.1)
    }))
}

fn check_inner(
    history: &History,
    paired: &Paired,
    deadline: &Deadline,
    done: &mut (usize, usize),
) -> Result<WorkloadResult, HistoryError> {
    let ops = &paired.operations;
    let model = "siblings (no acknowledged write lost after heal and quiescence; \
                 no superseded sibling; no value never written)";
    let mut unknown: Option<String> = None;
    // key → value → the write op (the later one of a repeated value)
    let mut writes: BTreeMap<Key, HashMap<String, &Operation>> = BTreeMap::new();
    // Nothing is judged before these indexes are complete: past the
    // deadline here, `unknown` at once.
    let indexing = "indexing the writes and reads";
    for o in ops.iter().filter(|o| o.f == "write") {
        if deadline.tick() {
            return Ok(crate::cut_short(model, deadline, indexing));
        }
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
    let mut reads_of: HashMap<(&Process, Key), Vec<&Operation>> = HashMap::new();
    for r in ops
        .iter()
        .filter(|r| r.f == "read" && r.outcome == Outcome::Ok)
    {
        if deadline.tick() {
            return Ok(crate::cut_short(model, deadline, indexing));
        }
        reads_of.entry((&r.process, key_of(r))).or_default().push(r);
    }
    for list in reads_of.values_mut() {
        list.sort_by_key(|r| r.ret());
    }
    let mut index: BTreeMap<Key, KeyWrites> = BTreeMap::new();
    for (key, m) in &writes {
        if deadline.expired() {
            return Ok(crate::cut_short(model, deadline, indexing));
        }
        let mut order: Vec<(&String, &Operation)> = m.iter().map(|(v, o)| (v, *o)).collect();
        order.sort_by_key(|(_, w)| w.invoke);
        let pos: HashMap<String, u32> = order
            .iter()
            .enumerate()
            .map(|(i, (v, _))| ((*v).clone(), i as u32))
            .collect();
        let mut seen = Vec::with_capacity(order.len());
        for (i, (_, w)) in order.iter().enumerate() {
            if deadline.tick() {
                return Ok(crate::cut_short(model, deadline, indexing));
            }
            let list = reads_of
                .get(&(&w.process, key.clone()))
                .map_or(&[][..], Vec::as_slice);
            let k = list.partition_point(|r| r.ret() < w.call());
            let edges: Vec<u32> = k
                .checked_sub(1)
                .and_then(|j| list[j].value.as_array())
                .into_iter()
                .flatten()
                .filter_map(|x| pos.get(&x.to_string()).copied())
                .filter(|&j| (j as usize) < i)
                .collect();
            seen.push(edges);
        }
        let n = order.len();
        index.insert(
            key.clone(),
            KeyWrites {
                pos,
                ops: order.into_iter().map(|(_, o)| o).collect(),
                seen,
                mark: vec![0; n],
                stamp: 0,
                memo: HashMap::new(),
            },
        );
    }
    let mut an = Anomalies::new(MAX_LISTED);
    let reads: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        .collect();
    done.1 = reads.len();
    let mut max_siblings = 0;
    let mut with_siblings = 0;
    'reads: for r in &reads {
        if deadline.tick() {
            break;
        }
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
                an.note("unexpected-value", || json!({
                    "explanation": format!("the read of key {key} ({}) returned {x}, which no write to that key had begun to write",
                                           op_where(history, r)),
                    "key": key, "value": x, "read": op_json(history, r),
                }));
            }
        }
        if sib.len() > 1
            && let Some(kw) = index.get_mut(&key)
        {
            let at: Vec<Option<u32>> = sib.iter().map(|x| kw.pos.get(x).copied()).collect();
            for (a, pa) in sib.iter().zip(&at) {
                for (b, pb) in sib.iter().zip(&at) {
                    let (Some(pa), Some(pb)) = (*pa, *pb) else {
                        continue;
                    };
                    if a == b {
                        continue;
                    }
                    let Some(c) = kw.covers(pb, pa, deadline) else {
                        break 'reads;
                    };
                    if c {
                        an.note("superseded-sibling", || json!({
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
        done.0 += 1;
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
    let mut last: BTreeMap<(crate::Sym, Key), usize> = BTreeMap::new();
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
    // Per key, the write positions in value order (as lost writes are listed).
    let mut by_value: HashMap<Key, Vec<(String, u32)>> = HashMap::new();
    'finals: for r in &finals {
        if deadline.ran_out() {
            break;
        }
        let key = key_of(r);
        final_keys.insert(key.clone());
        let sib: BTreeSet<String> = siblings(r).unwrap_or_default().into_iter().collect();
        let Some(kw) = index.get_mut(&key) else {
            continue;
        };
        let from: Vec<u32> = sib.iter().filter_map(|y| kw.pos.get(y).copied()).collect();
        let Some(st) = kw.cover_all(&from, deadline) else {
            break;
        };
        let order = by_value.entry(key.clone()).or_insert_with(|| {
            let mut v: Vec<(String, u32)> = kw.pos.iter().map(|(v, &p)| (v.clone(), p)).collect();
            v.sort_unstable();
            v
        });
        for (v, p) in order.iter() {
            if deadline.tick() {
                break 'finals;
            }
            let w = kw.ops[*p as usize];
            if w.outcome != Outcome::Ok || sib.contains(v) || kw.mark[*p as usize] == st {
                continue;
            }
            an.note("lost-write", || json!({
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
        "anomalies": an.counts.values().sum::<usize>(),
    });
    let verdict = if !an.is_empty() {
        Verdict::Invalid
    } else if unknown.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let counts: Vec<String> = an.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut text = format!("{verdict} ({model}");
    if !counts.is_empty() {
        text.push_str(&format!(": {}", counts.join(", ")));
    }
    if let (Some(r), Verdict::Unknown) = (&unknown, verdict) {
        text.push_str(&format!(": {r}"));
    }
    text.push_str(")\n");
    for list in an.listed.values() {
        for e in list.iter().take(10) {
            if let Some(s) = e["explanation"].as_str() {
                text.push_str(&format!("  {s}\n"));
            }
        }
    }
    let types: Vec<&str> = an.counts.keys().copied().collect();
    let mut json = json!({
        "valid": verdict.to_json(), "model": model, "anomaly_types": types,
        "anomalies": an.listed, "anomaly_counts": an.counts, "stats": stats,
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
                        index: Some(i as u64).into(),
                        line: i + 1,
                        key: (*f != "nemesis").then(|| Box::new(json!(key))),
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

    /// Issue #24: a key with more writes than the old index took (60,000,
    /// most of them `fail`s of a client looping against a killed node) lost
    /// its causal index, and every acknowledged write missing from the final
    /// read was then reported lost (thousands of false `lost-write` on a
    /// correct dynamo build). Causal pasts must not depend on the count.
    fn many_failed_writes(fin: Value) -> History {
        let mut evs = vec![
            (0, Invoke, "write", 0, json!(1)),
            (0, Ok, "write", 0, json!(1)),
            (0, Invoke, "read", 0, Value::Null),
            (0, Ok, "read", 0, json!([1])),
        ];
        for v in 10..60_011 {
            evs.push((1, Invoke, "write", 0, json!(v)));
            evs.push((1, Fail, "write", 0, json!(v)));
        }
        evs.extend([
            (0, Invoke, "write", 0, json!(2)),
            (0, Ok, "write", 0, json!(2)),
            (9, Info, "nemesis", 0, json!("heal")),
            (2, Invoke, "read", 0, Value::Null),
            (2, Ok, "read", 0, fin),
        ]);
        h(&evs)
    }

    #[test]
    fn issue_24_a_key_with_many_failed_writes_keeps_its_causal_pasts() {
        let r = check(&many_failed_writes(json!([2]))).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
        assert!(r.json["stats"]["writes_ok"] == 2, "{}", r.json["stats"]);
        // A write really dropped is still caught at that size.
        let r = check(&many_failed_writes(json!([1]))).unwrap();
        assert_eq!(r.json["anomaly_types"], json!(["lost-write"]), "{}", r.text);
        assert!(r.text.contains("write of 2 to key 0"), "{}", r.text);
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
                key: Some(Box::new(json!(0))),
                ..Event::new(Process::Client(5), Invoke, "read", Value::Null)
            },
        );
        evs.insert(
            9,
            Event {
                key: Some(Box::new(json!(0))),
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
