//! The `fenced` workload's check: leases with fencing tokens, and a
//! storage that must reject stale tokens (Kleppmann, "How to do
//! distributed locking", 2016; Chubby's sequencers, Burrows 2006 §2.4).
//!
//! Operations, per `key` (one lock guarding the storage key of the same
//! name): `acquire` (ok value `{"token": t, "lease_ms": L}`), `renew`
//! (same), `release`, `write` (invoked with a unique integer value; ok
//! value `{"value": v, "token": t}`, `token` null when the client did not
//! send one), and a final `read` of the storage: per key, every accepted
//! write in the order the storage accepted it,
//! `{"0": [{"value": v, "token": t|null}, …], …}`.
//!
//! A lease certainly holds from the completion of the `ok` acquire or
//! renew until its invocation time plus `lease_ms` (the service times a
//! lease from when it received the request, on a clock that does not run
//! fast), or until the holder invokes `release` — whichever comes first.
//! Times are the history's `time` fields (the controller's monotonic
//! clock). Four anomalies:
//!
//! - `overlapping-leases` (mutual exclusion of lease holders): an acquire
//!   of another token was invoked and completed entirely inside a lease
//!   that certainly held;
//! - `non-monotonic-token`: a grant completed before another was invoked,
//!   and the later one's token is not larger;
//! - `stale-write-accepted`: the storage accepted a write whose token is
//!   lower than that of a write it had accepted before for the same key.
//!   A write's token is the one the storage recorded, or, for a write
//!   sent without one, the token its process held for the key when it
//!   invoked the write — so a client that skips fencing is judged by the
//!   lease it thought it had;
//! - `superseded-write`: the storage accepted a write that was invoked
//!   after a grant of a higher token for the key had completed — the
//!   writer's lease had certainly been given to someone else.
//!
//! The verdict is `unknown`, never `valid`, when nothing was granted or
//! the storage was never read (stale writes could not be checked).

use crate::history::{History, HistoryError, Operation, Outcome, Process, Value};
use crate::verdict::Verdict;
use crate::{WorkloadResult, op_json, op_where};
use serde_json::json;
use std::collections::BTreeMap;

/// At most this many anomalies of one kind are listed (all are counted).
const MAX_LISTED: usize = 20;

fn key_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "null".into(),
    }
}

fn token(v: &Value) -> Option<u64> {
    v.get("token").and_then(Value::as_u64)
}

/// A lease that certainly held: `[from, until)` in history ns.
struct Hold<'o> {
    op: &'o Operation,
    token: u64,
    from: u64,
    until: u64,
}

/// Checks a fenced-lease history (see the module docs).
pub fn check(history: &History) -> Result<WorkloadResult, HistoryError> {
    let paired = history.pair()?;
    let ops: Vec<&Operation> = paired
        .operations
        .iter()
        .filter(|o| matches!(o.process, Process::Client(_) | Process::Named(_)))
        .collect();
    let time = |pos: usize| history.events.get(pos).and_then(|e| e.time);
    let model = "fenced (lease holders exclusive; no stale-token write accepted)";
    let mut anomalies: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut note = |kind: &'static str, v: Value| {
        let n = counts.entry(kind).or_default();
        *n += 1;
        if *n <= MAX_LISTED {
            anomalies.entry(kind).or_default().push(v);
        }
    };

    let grants: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| o.f == "acquire" && o.outcome == Outcome::Ok && token(&o.value).is_some())
        .collect();
    let mut timed = true;

    // Certain holds, per key.
    let mut holds: BTreeMap<String, Vec<Hold>> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        if !(matches!(o.f.as_str(), "acquire" | "renew") && o.outcome == Outcome::Ok) {
            continue;
        }
        let (Some(t), Some(call), Some(ret)) =
            (token(&o.value), time(o.call()), o.complete.and_then(time))
        else {
            timed &= token(&o.value).is_none();
            continue;
        };
        let lease = o
            .value
            .get("lease_ms")
            .or_else(|| o.invoke_value.get("lease_ms"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let key = key_of(o.key.as_ref());
        let release = ops[i + 1..]
            .iter()
            .find(|r| r.process == o.process && r.f == "release" && key_of(r.key.as_ref()) == key)
            .and_then(|r| time(r.call()))
            .unwrap_or(u64::MAX);
        let until = call
            .saturating_add(lease.saturating_mul(1_000_000))
            .min(release);
        if ret < until {
            holds.entry(key).or_default().push(Hold {
                op: o,
                token: t,
                from: ret,
                until,
            });
        }
    }
    for b in &grants {
        let (Some(tb), Some(call), Some(ret)) =
            (token(&b.value), time(b.call()), b.complete.and_then(time))
        else {
            continue;
        };
        let key = key_of(b.key.as_ref());
        for h in holds.get(&key).map_or(&[][..], Vec::as_slice) {
            if h.token != tb && h.from <= call && ret < h.until {
                note(
                    "overlapping-leases",
                    json!({
                        "explanation": format!(
                            "lock {key}: token {tb} was granted by the acquire at {} while token {} \
                             certainly held: its {} at {} completed {:.3} s before, and its lease \
                             ran {:.3} s past the grant",
                            op_where(history, b),
                            h.token,
                            h.op.f,
                            op_where(history, h.op),
                            (call - h.from) as f64 / 1e9,
                            (h.until - ret) as f64 / 1e9,
                        ),
                        "holder": op_json(history, h.op),
                        "op": op_json(history, b),
                    }),
                );
            }
        }
    }

    // Tokens grow in real time (per key).
    let mut by_key: BTreeMap<String, Vec<(&Operation, u64)>> = BTreeMap::new();
    for g in &grants {
        if let Some(t) = token(&g.value) {
            by_key
                .entry(key_of(g.key.as_ref()))
                .or_default()
                .push((g, t));
        }
    }
    for (key, gs) in &by_key {
        for (a, ta) in gs {
            for (b, tb) in gs {
                if a.precedes(b) && tb <= ta {
                    note(
                        "non-monotonic-token",
                        json!({
                            "explanation": format!(
                                "lock {key}: the acquire at {} got token {tb}, but the acquire at {} \
                                 completed before it was invoked with token {ta}",
                                op_where(history, b), op_where(history, a)),
                            "earlier": op_json(history, a),
                            "op": op_json(history, b),
                        }),
                    );
                }
            }
        }
    }

    // The storage's log, from the last ok read.
    let log = ops
        .iter()
        .rev()
        .find(|o| o.f == "read" && o.outcome == Outcome::Ok)
        .map(|o| &o.value);
    let writes: BTreeMap<(String, i64), &Operation> = ops
        .iter()
        .filter(|o| o.f == "write")
        .filter_map(|o| {
            let v = o.invoke_value.as_i64()?;
            Some(((key_of(o.key.as_ref()), v), *o))
        })
        .collect();
    // The token a process held for a key when it invoked `w`: its last ok
    // acquire or renew of that key invoked before.
    let held_token = |w: &Operation| -> Option<u64> {
        let key = key_of(w.key.as_ref());
        ops.iter()
            .filter(|o| {
                o.process == w.process
                    && matches!(o.f.as_str(), "acquire" | "renew")
                    && o.outcome == Outcome::Ok
                    && o.call() < w.call()
                    && key_of(o.key.as_ref()) == key
            })
            .filter_map(|o| token(&o.value))
            .next_back()
    };
    let mut accepted = 0usize;
    let mut unfenced = 0usize;
    if let Some(Value::Object(keys)) = log {
        for (key, entries) in keys {
            let Some(entries) = entries.as_array() else {
                continue;
            };
            let mut best: Option<(u64, &Value)> = None;
            for e in entries {
                accepted += 1;
                let op = e
                    .get("value")
                    .and_then(Value::as_i64)
                    .and_then(|v| writes.get(&(key.clone(), v)).copied());
                let recorded = token(e);
                if recorded.is_none() {
                    unfenced += 1;
                }
                let Some(t) = recorded.or_else(|| op.and_then(held_token)) else {
                    continue;
                };
                if let Some((tb, eb)) = best
                    && t < tb
                {
                    note(
                        "stale-write-accepted",
                        json!({
                            "explanation": format!(
                                "storage key {key}: the write of {} (token {t}{}{}) was accepted \
                                 after the write of {} with token {tb}",
                                e["value"],
                                if recorded.is_none() { ", held but not sent" } else { "" },
                                op.map_or(String::new(), |o| format!(", {}", op_where(history, o))),
                                eb["value"]),
                            "write": e, "after": eb,
                            "op": op.map(|o| op_json(history, o)),
                        }),
                    );
                }
                if best.is_none_or(|(tb, _)| t > tb) {
                    best = Some((t, e));
                }
                // Superseded: a higher grant had completed before the write.
                let Some(w) = op else { continue };
                if let Some(g) = by_key.get(key).and_then(|gs| {
                    gs.iter()
                        .find(|(g, tg)| *tg > t && g.precedes(w) && g.process != w.process)
                }) {
                    note(
                        "superseded-write",
                        json!({
                            "explanation": format!(
                                "storage key {key}: the write at {} with token {t} was accepted, \
                                 but the acquire at {} had already been granted token {}",
                                op_where(history, w), op_where(history, g.0), g.1),
                            "op": op_json(history, w),
                            "grant": op_json(history, g.0),
                        }),
                    );
                }
            }
        }
    }

    let anomaly_types: Vec<&str> = anomalies.keys().copied().collect();
    let reason = if !anomalies.is_empty() {
        None
    } else if grants.is_empty() {
        Some("no acquire succeeded: nothing to check")
    } else if log.is_none() {
        Some("the storage was never read: stale-token writes could not be checked")
    } else if !timed {
        Some("some operations have no time: leases could not be checked")
    } else {
        None
    };
    let verdict = if !anomalies.is_empty() {
        Verdict::Invalid
    } else if reason.is_some() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let writes_ok = ops
        .iter()
        .filter(|o| o.f == "write" && o.outcome == Outcome::Ok)
        .count();
    let rejected = ops
        .iter()
        .filter(|o| o.f == "write" && o.outcome == Outcome::Fail)
        .count();
    let mut text = format!(
        "{verdict} (fenced: {} grants, {writes_ok} writes ok, {rejected} failed, {accepted} accepted \
         by the storage ({unfenced} without a token){})\n",
        grants.len(),
        if anomaly_types.is_empty() {
            String::new()
        } else {
            format!("; anomalies: {}", anomaly_types.join(", "))
        }
    );
    if let Some(r) = reason {
        text.push_str(&format!("  {r}\n"));
    }
    for list in anomalies.values() {
        for a in list.iter().take(5) {
            if let Some(e) = a["explanation"].as_str() {
                text.push_str(&format!("  {e}\n"));
            }
        }
    }
    let mut out = json!({
        "valid": verdict.to_json(),
        "model": model,
        "anomaly_types": anomaly_types,
        "anomalies": anomalies,
        "anomaly_counts": counts,
        "stats": {"grants": grants.len(), "writes_ok": writes_ok, "writes_failed": rejected,
                  "storage_accepted": accepted, "storage_unfenced": unfenced},
    });
    if let Some(r) = reason {
        out["reason"] = json!(r);
    }
    Ok(WorkloadResult {
        verdict,
        json: out,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType::{self, *};
    use crate::history::{Event, History};

    /// `(process, type, f, key, value, time in ms)`.
    fn h(evs: &[(u64, EventType, &str, u64, Value, u64)]) -> History {
        History {
            events: evs
                .iter()
                .enumerate()
                .map(|(i, (p, k, f, key, v, t))| Event {
                    index: Some(i as u64),
                    line: i + 1,
                    time: Some(t * 1_000_000),
                    key: Some(json!(key)),
                    ..Event::new(Process::Client(*p), *k, *f, v.clone())
                })
                .collect(),
        }
    }

    fn lease(t: u64) -> Value {
        json!({"token": t, "lease_ms": 1000})
    }

    fn ask() -> Value {
        json!({"lease_ms": 1000})
    }

    /// p0 acquires token 1 at 0 ms and writes 1; p1 acquires token 2 at
    /// `t2` ms and writes 2; the storage accepted `order` with `tokens`.
    fn two_holders(t2: u64, order: &[(i64, Option<u64>)]) -> History {
        let mut evs = vec![
            (0, Invoke, "acquire", 0, ask(), 0),
            (0, Ok, "acquire", 0, lease(1), 10),
            (0, Invoke, "write", 0, json!(1), 20),
            (0, Info, "write", 0, json!(1), 3000),
            (1, Invoke, "acquire", 0, ask(), t2),
            (1, Ok, "acquire", 0, lease(2), t2 + 10),
            (1, Invoke, "write", 0, json!(2), t2 + 20),
            (1, Ok, "write", 0, json!({"value": 2, "token": 2}), t2 + 30),
        ];
        evs.push((2, Invoke, "read", 0, Value::Null, 5000));
        let log: Vec<Value> = order
            .iter()
            .map(|(v, t)| json!({"value": v, "token": t}))
            .collect();
        evs.push((2, Ok, "read", 0, json!({"0": log}), 5010));
        h(&evs)
    }

    fn types(r: &WorkloadResult) -> Vec<String> {
        r.json["anomaly_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_fenced_handover_is_valid() {
        let r = check(&two_holders(1500, &[(1, Some(1)), (2, Some(2))])).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
        // The paused write was rejected: only the new holder's is there.
        let r = check(&two_holders(1500, &[(2, Some(2))])).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
    }

    #[test]
    fn a_late_unfenced_write_is_stale() {
        // Skip-fencing: p0's delayed write landed after p1's, without a token.
        let r = check(&two_holders(1500, &[(2, Some(2)), (1, None)])).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(types(&r), ["stale-write-accepted"], "{}", r.json);
        let e = r.json["anomalies"]["stale-write-accepted"][0]["explanation"]
            .as_str()
            .unwrap();
        assert!(e.contains("token 1, held but not sent"), "{e}");
        // The storage recorded the old token (storage-per-client).
        let r = check(&two_holders(1500, &[(2, Some(2)), (1, Some(1))])).unwrap();
        assert_eq!(types(&r), ["stale-write-accepted"], "{}", r.json);
    }

    #[test]
    fn a_grant_inside_a_lease_overlaps_and_a_later_write_is_superseded() {
        // p1 is granted at 500 ms, inside p0's lease (0..1000 ms).
        let r = check(&two_holders(500, &[(1, Some(1)), (2, Some(2))])).unwrap();
        assert_eq!(types(&r), ["overlapping-leases"], "{}", r.json);
        // A write by p0 invoked after p1's grant completed, accepted.
        let mut hs = two_holders(500, &[(2, Some(2)), (3, Some(1))]);
        let mut extra = h(&[
            (0, Invoke, "write", 0, json!(3), 600),
            (0, Ok, "write", 0, json!({"value": 3, "token": 1}), 610),
        ])
        .events;
        for e in &mut extra {
            e.process = Process::Client(3);
        }
        // p3 never acquired: attribute by the recorded token only.
        let read = hs.events.split_off(8);
        hs.events.extend(extra);
        hs.events.extend(read);
        for (i, e) in hs.events.iter_mut().enumerate() {
            e.index = Some(i as u64);
            e.line = i + 1;
        }
        let r = check(&hs).unwrap();
        let t = types(&r);
        assert!(t.contains(&"superseded-write".to_string()), "{}", r.json);
        assert!(
            t.contains(&"stale-write-accepted".to_string()),
            "{}",
            r.json
        );
    }

    #[test]
    fn a_release_ends_the_hold() {
        let evs = vec![
            (0, Invoke, "acquire", 0, ask(), 0),
            (0, Ok, "acquire", 0, lease(1), 10),
            (0, Invoke, "release", 0, Value::Null, 100),
            (0, Ok, "release", 0, json!({"token": 1}), 110),
            (1, Invoke, "acquire", 0, ask(), 200),
            (1, Ok, "acquire", 0, lease(2), 210),
            (2, Invoke, "read", 0, Value::Null, 300),
            (2, Ok, "read", 0, json!({}), 310),
        ];
        let r = check(&h(&evs)).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "{}", r.json);
    }

    #[test]
    fn without_a_storage_read_it_is_unknown() {
        let mut hs = two_holders(1500, &[]);
        hs.events.truncate(8);
        let r = check(&hs).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.json);
        assert!(r.json["reason"].as_str().unwrap().contains("never read"));
    }
}
