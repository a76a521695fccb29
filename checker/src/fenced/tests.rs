//! The fenced checker's tests, and the pairwise check it replaced, kept as
//! the specification the sweeps are compared against.

use super::*;
use std::collections::BTreeMap;

/// The pairwise check this module replaced, kept as the specification
/// the sweeps are compared against.
pub(super) fn check_quadratic(history: &History) -> Result<WorkloadResult, HistoryError> {
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
        let key = key_of(o.key.as_deref());
        let release = ops[i + 1..]
            .iter()
            .find(|r| r.process == o.process && r.f == "release" && key_of(r.key.as_deref()) == key)
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
        let key = key_of(b.key.as_deref());
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
                .entry(key_of(g.key.as_deref()))
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
            Some(((key_of(o.key.as_deref()), v), *o))
        })
        .collect();
    // The token a process held for a key when it invoked `w`: its last ok
    // acquire or renew of that key invoked before.
    let held_token = |w: &Operation| -> Option<u64> {
        let key = key_of(w.key.as_deref());
        ops.iter()
            .filter(|o| {
                o.process == w.process
                    && matches!(o.f.as_str(), "acquire" | "renew")
                    && o.outcome == Outcome::Ok
                    && o.call() < w.call()
                    && key_of(o.key.as_deref()) == key
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

    let has_log = log.is_some();
    Result::Ok(report(Tally {
        model,
        ops: &ops,
        grants: grants.len(),
        accepted,
        unfenced,
        has_log,
        timed,
        an: Anomalies {
            listed: anomalies,
            counts,
            max_listed: MAX_LISTED,
        },
        stop_reason: None,
    }))
}

use crate::history::EventType::{self, *};
use crate::history::{Event, History};

/// `(process, type, f, key, value, time in ms)`.
fn h(evs: &[(u64, EventType, &str, u64, Value, u64)]) -> History {
    History {
        events: evs
            .iter()
            .enumerate()
            .map(|(i, (p, k, f, key, v, t))| Event {
                index: Some(i as u64).into(),
                line: i + 1,
                time: Some(t * 1_000_000),
                key: Some(Box::new(json!(key))),
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
        e.index = Some(i as u64).into();
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

/// The sweeps against the pairwise scan they replaced, on random small
/// histories: same JSON (verdict, listed anomalies in order, counts).
#[cfg(test)]
mod brute {
    use super::super::*;
    use super::check_quadratic;
    use crate::history::{Event, EventType};
    use std::collections::BTreeMap;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Up to 4 processes (new id after an `info`), 2 keys, overlapping
    /// ops with random tokens and lease lengths, a final storage read of
    /// random accepted writes in random order.
    fn random_history(rng: &mut Rng) -> History {
        let mut evs: Vec<Event> = Vec::new();
        let mut open: Vec<Option<(u64, &str, u64, Value)>> = vec![None; 4];
        let mut pid = [0u64, 1, 2, 3];
        let mut t = 0u64;
        let mut written: Vec<(u64, i64)> = Vec::new();
        let steps = 4 + rng.below(30);
        for _ in 0..steps {
            t += rng.below(400) * 1_000_000;
            let s = rng.below(4) as usize;
            let ev = match open[s].take() {
                None => {
                    let key = rng.below(2);
                    let f = ["acquire", "acquire", "renew", "release", "write", "write"]
                        [rng.below(6) as usize];
                    let v = match f {
                        "write" => json!(evs.len() as i64),
                        "release" => Value::Null,
                        _ => json!({"lease_ms": 200 * (1 + rng.below(5))}),
                    };
                    open[s] = Some((key, f, pid[s], v.clone()));
                    (pid[s], EventType::Invoke, f, key, v)
                }
                Some((key, f, p, v)) => {
                    let kind = [
                        EventType::Ok,
                        EventType::Ok,
                        EventType::Fail,
                        EventType::Info,
                    ][rng.below(4) as usize];
                    let out = match (f, kind) {
                        ("acquire" | "renew", EventType::Ok) => {
                            json!({"token": 1 + rng.below(6), "lease_ms": v["lease_ms"]})
                        }
                        ("write", EventType::Ok | EventType::Info) => {
                            let tok = (rng.below(3) > 0).then(|| 1 + rng.below(6));
                            if kind == EventType::Ok || rng.below(2) == 0 {
                                written.push((key, v.as_i64().unwrap()));
                            }
                            json!({"value": v, "token": tok})
                        }
                        _ => v,
                    };
                    if kind == EventType::Info {
                        pid[s] += 4;
                    }
                    (p, kind, f, key, out)
                }
            };
            evs.push(Event {
                index: Some(evs.len() as u64).into(),
                line: evs.len() + 1,
                time: Some(t),
                key: Some(Box::new(json!(ev.3))),
                ..Event::new(Process::Client(ev.0), ev.1, ev.2, ev.4)
            });
        }
        // Close what is open, then read the storage.
        for (s, o) in open.iter_mut().enumerate() {
            if let Some((key, f, p, v)) = o.take() {
                t += 1_000_000;
                let _ = s;
                evs.push(Event {
                    index: Some(evs.len() as u64).into(),
                    line: evs.len() + 1,
                    time: Some(t),
                    key: Some(Box::new(json!(key))),
                    ..Event::new(Process::Client(p), EventType::Info, f, v)
                });
            }
        }
        // Shuffle the accepted writes (Fisher–Yates).
        for i in (1..written.len()).rev() {
            written.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut log: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (k, v) in written {
            let tok = (rng.below(3) > 0).then(|| 1 + rng.below(6));
            log.entry(k.to_string())
                .or_default()
                .push(json!({"value": v, "token": tok}));
        }
        if rng.below(8) > 0 {
            for (kind, v) in [
                (EventType::Invoke, Value::Null),
                (EventType::Ok, json!(log)),
            ] {
                t += 1_000_000;
                evs.push(Event {
                    index: Some(evs.len() as u64).into(),
                    line: evs.len() + 1,
                    time: Some(t),
                    ..Event::new(Process::Client(99), kind, "read", v)
                });
            }
        }
        History { events: evs }
    }

    #[test]
    fn the_sweeps_answer_as_the_pairwise_scan() {
        let mut rng = Rng(0x5eed_f00d);
        let mut invalid = 0;
        let mut kinds = std::collections::BTreeSet::new();
        for n in 0..20_000 {
            let h = random_history(&mut rng);
            let want = check_quadratic(&h).unwrap();
            let got = check(&h).unwrap();
            assert_eq!(got.json, want.json, "history {n}: {:#?}", h.events);
            assert_eq!(got.text, want.text);
            invalid += usize::from(got.verdict == Verdict::Invalid);
            if let Some(m) = got.json["anomaly_counts"].as_object() {
                kinds.extend(m.keys().cloned());
            }
        }
        // The random histories exercise every anomaly kind, not only valid.
        assert!(invalid > 1000, "{invalid}");
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }
}
