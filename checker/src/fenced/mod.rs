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

use crate::history::{
    FxHashMap, History, HistoryError, Operation, Outcome, Paired, Process, Value,
};
use crate::verdict::Verdict;
use crate::{Anomalies, Deadline, WorkloadResult, op_json, op_where};
use serde_json::json;
use std::collections::HashMap;

/// At most this many anomalies of one kind are listed (all are counted,
/// in `anomaly_counts`).
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

/// For each query `q`, how many points `p` have `p.0 < q.0` and
/// `p.1 < q.1` (strict dominance; callers encode `<=` and `>` by scaling
/// coordinates). One sweep over `x` with a Fenwick tree over the ranks
/// of `y`: O((P + Q) log P). `None` if the deadline passed.
fn dominance(points: &[(i128, i128)], queries: &[(i128, i128)], dl: &Deadline) -> Option<Vec<u64>> {
    let mut ys: Vec<i128> = points.iter().map(|p| p.1).collect();
    ys.sort_unstable();
    ys.dedup();
    let mut pts: Vec<(i128, usize)> = points
        .iter()
        .map(|p| (p.0, ys.partition_point(|&y| y < p.1)))
        .collect();
    pts.sort_unstable();
    let mut order: Vec<usize> = (0..queries.len()).collect();
    order.sort_unstable_by_key(|&i| queries[i].0);
    let mut tree = vec![0u64; ys.len() + 1];
    let mut out = vec![0u64; queries.len()];
    let mut next = 0;
    for i in order {
        if dl.tick() {
            return None;
        }
        let (qx, qy) = queries[i];
        while next < pts.len() && pts[next].0 < qx {
            let mut j = pts[next].1 + 1;
            while j < tree.len() {
                tree[j] += 1;
                j += j & j.wrapping_neg();
            }
            next += 1;
        }
        // Points with rank < (number of ys below qy).
        let mut j = ys.partition_point(|&y| y < qy);
        let mut n = 0;
        while j > 0 {
            n += tree[j];
            j &= j - 1;
        }
        out[i] = n;
    }
    Some(out)
}

/// Checks a fenced-lease history (see the module docs).
pub fn check(history: &History) -> Result<WorkloadResult, HistoryError> {
    Ok(check_paired(history, &history.pair()?, &Deadline::none()))
}

/// [`check`] of an already paired history, within `deadline`: past it the
/// verdict is `unknown` (`invalid` if an anomaly was already found).
///
/// Near-linear: leases, releases and held tokens come from one pass each
/// over the operations (indexed by interned key and process); the two
/// pairwise conditions (a grant inside another's hold, a later grant with
/// a token not larger) are counted by dominance sweeps, and only the first
/// [`MAX_LISTED`] of each kind are looked up again to be explained, in
/// the order a pairwise scan would list them.
pub fn check_paired(history: &History, paired: &Paired, deadline: &Deadline) -> WorkloadResult {
    let ops: Vec<&Operation> = paired
        .operations
        .iter()
        .filter(|o| matches!(o.process, Process::Client(_) | Process::Named(_)))
        .collect();
    let time = |pos: usize| history.events.get(pos).and_then(|e| e.time);
    let model = "fenced (lease holders exclusive; no stale-token write accepted)";
    let mut an = Anomalies::new(MAX_LISTED);
    // Where the deadline stopped the check, if it did.
    let mut stopped: Option<&str> = None;

    // Interned keys and processes: one string per distinct key. Nothing
    // can be found before these indexes are complete: past the deadline
    // here, the answer is `unknown` at once.
    let indexing = "indexing the history";
    let mut key_ids: HashMap<String, usize> = HashMap::new();
    // Integer keys (the usual) are found without formatting them.
    let mut int_key_ids: FxHashMap<u64, usize> = FxHashMap::default();
    let mut key_names: Vec<String> = Vec::new();
    let mut proc_ids: FxHashMap<&Process, usize> = FxHashMap::default();
    let mut kid: Vec<usize> = Vec::with_capacity(ops.len());
    let mut pid: Vec<usize> = Vec::with_capacity(ops.len());
    let mut grants: Vec<usize> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        if deadline.tick() {
            return crate::cut_short(model, deadline, indexing);
        }
        let int_key = o.key.as_deref().and_then(Value::as_u64);
        if let Some(&id) = int_key.and_then(|u| int_key_ids.get(&u)) {
            kid.push(id);
        } else {
            let k = key_of(o.key.as_deref());
            let n = key_ids.len();
            let id = *key_ids.entry(k.clone()).or_insert_with(|| {
                key_names.push(k);
                n
            });
            if let Some(u) = int_key {
                int_key_ids.insert(u, id);
            }
            kid.push(id);
        }
        let n = proc_ids.len();
        pid.push(*proc_ids.entry(&o.process).or_insert(n));
        if o.f == "acquire" && o.outcome == Outcome::Ok && token(&o.value).is_some() {
            grants.push(i);
        }
    }
    let mut timed = true;

    // The call time of each op's process's next release of its key (the
    // first later in invocation order), from one backward pass.
    let mut next_release: Vec<Option<Option<u64>>> = vec![None; ops.len()];
    {
        let mut later: FxHashMap<(usize, usize), Option<u64>> = FxHashMap::default();
        for i in (0..ops.len()).rev() {
            if deadline.tick() {
                return crate::cut_short(model, deadline, indexing);
            }
            next_release[i] = later.get(&(pid[i], kid[i])).copied();
            if ops[i].f == "release" {
                later.insert((pid[i], kid[i]), time(ops[i].call()));
            }
        }
    }
    // Certain holds, per key, in invocation order.
    let mut holds: Vec<Vec<Hold>> = (0..key_names.len()).map(|_| Vec::new()).collect();
    for (i, o) in ops.iter().enumerate() {
        if deadline.tick() {
            stopped.get_or_insert("finding the leases that certainly held");
            break;
        }
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
        let release = next_release[i].flatten().unwrap_or(u64::MAX);
        let until = call
            .saturating_add(lease.saturating_mul(1_000_000))
            .min(release);
        if ret < until {
            holds[kid[i]].push(Hold {
                op: o,
                token: t,
                from: ret,
                until,
            });
        }
    }

    // overlapping-leases: grant b inside hold h of another token, i.e.
    // h.from <= call(b) and ret(b) < h.until. Counted per key, minus the
    // same count per (key, token).
    let timed_grants: Vec<(usize, u64, u64, u64)> = grants
        .iter()
        .filter_map(|&i| {
            let b = ops[i];
            Some((
                i,
                token(&b.value)?,
                time(b.call())?,
                b.complete.and_then(time)?,
            ))
        })
        .collect();
    let point = |h: &Hold| (2 * h.from as i128, -2 * h.until as i128);
    let query = |call: u64, ret: u64| (2 * call as i128 + 1, -2 * ret as i128);
    let mut overlaps: Vec<u64> = vec![0; timed_grants.len()];
    if stopped.is_none() {
        let mut by_key: Vec<Vec<usize>> = vec![Vec::new(); key_names.len()];
        let mut by_token: HashMap<(usize, u64), (Vec<usize>, Vec<usize>)> = HashMap::new();
        for (gi, &(i, tb, _, _)) in timed_grants.iter().enumerate() {
            by_key[kid[i]].push(gi);
            by_token.entry((kid[i], tb)).or_default().1.push(gi);
        }
        for (k, hs) in holds.iter().enumerate() {
            for (hi, h) in hs.iter().enumerate() {
                if let Some(e) = by_token.get_mut(&(k, h.token)) {
                    e.0.push(hi);
                }
            }
        }
        'count: for (k, gs) in by_key.iter().enumerate() {
            if gs.is_empty() || holds[k].is_empty() {
                continue;
            }
            let pts: Vec<_> = holds[k].iter().map(point).collect();
            let qs: Vec<_> = gs
                .iter()
                .map(|&g| query(timed_grants[g].2, timed_grants[g].3))
                .collect();
            let Some(n) = dominance(&pts, &qs, deadline) else {
                stopped = Some("looking for overlapping leases");
                break 'count;
            };
            for (&g, n) in gs.iter().zip(n) {
                overlaps[g] += n;
            }
        }
        if stopped.is_none() {
            for ((k, _), (hs, gs)) in &by_token {
                if hs.is_empty() {
                    continue;
                }
                let pts: Vec<_> = hs.iter().map(|&h| point(&holds[*k][h])).collect();
                let qs: Vec<_> = gs
                    .iter()
                    .map(|&g| query(timed_grants[g].2, timed_grants[g].3))
                    .collect();
                let Some(n) = dominance(&pts, &qs, deadline) else {
                    stopped = Some("looking for overlapping leases");
                    break;
                };
                for (&g, n) in gs.iter().zip(n) {
                    overlaps[g] -= n;
                }
            }
        }
    }
    if stopped.is_none() {
        for (gi, &(i, tb, call, ret)) in timed_grants.iter().enumerate() {
            if overlaps[gi] == 0 {
                continue;
            }
            let b = ops[i];
            let key = &key_names[kid[i]];
            if an.counts.get("overlapping-leases").copied().unwrap_or(0) >= MAX_LISTED {
                an.count_many("overlapping-leases", overlaps[gi] as usize);
                continue;
            }
            // Few grants get here: list their holds as the pairwise scan did.
            let mut left = overlaps[gi] as usize;
            for h in &holds[kid[i]] {
                if !(h.token != tb && h.from <= call && ret < h.until) {
                    continue;
                }
                left -= 1;
                an.note("overlapping-leases", || {
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
                    })
                });
                if left == 0 {
                    break;
                }
            }
        }
    }

    // Tokens grow in real time (per key): a grant `a`, then a grant `b`
    // invoked after `a` completed with a token not larger. Counted per `a`
    // (how many such `b`), listed in (a, b) order.
    let mut grants_by_key: Vec<Vec<(usize, u64)>> = vec![Vec::new(); key_names.len()];
    for &i in &grants {
        if let Some(t) = token(&ops[i].value) {
            grants_by_key[kid[i]].push((i, t));
        }
    }
    if stopped.is_none() {
        // Keys in name order, as the pairwise scan listed them.
        let mut names: Vec<usize> = (0..key_names.len()).collect();
        names.sort_by(|&a, &b| key_names[a].cmp(&key_names[b]));
        'keys: for k in names {
            let gs = &grants_by_key[k];
            // b precedes-after a: ret(a) < call(b) and tb <= ta.
            let pts: Vec<(i128, i128)> = gs
                .iter()
                .map(|&(b, tb)| (-2 * ops[b].call() as i128, 2 * tb as i128))
                .collect();
            let qs: Vec<(i128, i128)> = gs
                .iter()
                .map(|&(a, ta)| (-2 * ops[a].ret() as i128, 2 * ta as i128 + 1))
                .collect();
            let Some(n) = dominance(&pts, &qs, deadline) else {
                stopped = Some("looking for non-monotonic tokens");
                break;
            };
            let key = &key_names[k];
            for (&(a, ta), n) in gs.iter().zip(n) {
                if n == 0 {
                    continue;
                }
                if an.counts.get("non-monotonic-token").copied().unwrap_or(0) >= MAX_LISTED {
                    an.count_many("non-monotonic-token", n as usize);
                    continue;
                }
                let a = ops[a];
                let mut left = n as usize;
                for &(b, tb) in gs {
                    if deadline.tick() {
                        stopped = Some("looking for non-monotonic tokens");
                        break 'keys;
                    }
                    let b = ops[b];
                    if !(a.precedes(b) && tb <= ta) {
                        continue;
                    }
                    left -= 1;
                    an.note("non-monotonic-token", || {
                        json!({
                            "explanation": format!(
                                "lock {key}: the acquire at {} got token {tb}, but the acquire at {} \
                                 completed before it was invoked with token {ta}",
                                op_where(history, b), op_where(history, a)),
                            "earlier": op_json(history, a),
                            "op": op_json(history, b),
                        })
                    });
                    if left == 0 {
                        break;
                    }
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
    // (key, written value) → the write, and the token its process held
    // for the key when it invoked it: its last ok acquire or renew of that
    // key invoked before (one forward pass).
    let mut writes: FxHashMap<(usize, i64), (&Operation, usize, Option<u64>)> =
        FxHashMap::default();
    {
        let mut held: FxHashMap<(usize, usize), u64> = FxHashMap::default();
        for (i, o) in ops.iter().enumerate() {
            if deadline.tick() {
                stopped.get_or_insert("indexing the writes");
                break;
            }
            match o.f.as_str() {
                "acquire" | "renew" if o.outcome == Outcome::Ok => {
                    if let Some(t) = token(&o.value) {
                        held.insert((pid[i], kid[i]), t);
                    }
                }
                "write" => {
                    if let Some(v) = o.invoke_value.as_i64() {
                        let h = held.get(&(pid[i], kid[i])).copied();
                        writes.insert((kid[i], v), (o, pid[i], h));
                    }
                }
                _ => {}
            }
        }
    }
    // Per key, grants by completion: prefix maxima of the token, with the
    // best token of a different process, to ask "was a higher token
    // granted to someone else before this write was invoked?".
    struct Prefix {
        ret: Vec<usize>,
        best: Vec<(u64, usize)>,
        other: Vec<Option<u64>>,
    }
    let prefixes: Vec<Prefix> = grants_by_key
        .iter()
        .map(|gs| {
            let mut by_ret: Vec<(usize, u64, usize)> =
                gs.iter().map(|&(g, t)| (ops[g].ret(), t, pid[g])).collect();
            by_ret.sort_unstable();
            let mut p = Prefix {
                ret: Vec::with_capacity(by_ret.len()),
                best: Vec::with_capacity(by_ret.len()),
                other: Vec::with_capacity(by_ret.len()),
            };
            let (mut best, mut other): (Option<(u64, usize)>, Option<u64>) = (None, None);
            for (r, t, pr) in by_ret {
                match best {
                    None => best = Some((t, pr)),
                    Some((bt, bp)) if bp == pr => best = Some((bt.max(t), bp)),
                    // The old best is another process's: it becomes the
                    // best of processes other than the new best's.
                    Some((bt, _)) if t > bt => {
                        other = Some(bt);
                        best = Some((t, pr));
                    }
                    Some(_) => other = Some(t.max(other.unwrap_or(0))),
                }
                p.ret.push(r);
                p.best.push(best.unwrap_or_default());
                p.other.push(other);
            }
            p
        })
        .collect();
    let superseded = |k: usize, w: &Operation, wp: usize, t: u64| -> bool {
        let p = &prefixes[k];
        let n = p.ret.partition_point(|&r| r < w.call());
        n > 0
            && ((p.best[n - 1].0 > t && p.best[n - 1].1 != wp)
                || p.other[n - 1].is_some_and(|o| o > t))
    };
    let mut accepted = 0usize;
    let mut unfenced = 0usize;
    if let (None, Some(Value::Object(keys))) = (stopped, log) {
        'log: for (key, entries) in keys {
            let Some(entries) = entries.as_array() else {
                continue;
            };
            let k = key_ids.get(key).copied();
            let mut best: Option<(u64, &Value)> = None;
            for e in entries {
                if deadline.tick() {
                    stopped = Some("reading the storage's log");
                    break 'log;
                }
                accepted += 1;
                let op = e
                    .get("value")
                    .and_then(Value::as_i64)
                    .zip(k)
                    .and_then(|(v, k)| writes.get(&(k, v)).copied());
                let recorded = token(e);
                if recorded.is_none() {
                    unfenced += 1;
                }
                let Some(t) = recorded.or_else(|| op.and_then(|o| o.2)) else {
                    continue;
                };
                if let Some((tb, eb)) = best
                    && t < tb
                {
                    an.note("stale-write-accepted", || {
                        json!({
                            "explanation": format!(
                                "storage key {key}: the write of {} (token {t}{}{}) was accepted \
                                 after the write of {} with token {tb}",
                                e["value"],
                                if recorded.is_none() { ", held but not sent" } else { "" },
                                op.map_or(String::new(), |o| format!(", {}", op_where(history, o.0))),
                                eb["value"]),
                            "write": e, "after": eb,
                            "op": op.map(|o| op_json(history, o.0)),
                        })
                    });
                }
                if best.is_none_or(|(tb, _)| t > tb) {
                    best = Some((t, e));
                }
                // Superseded: a higher grant had completed before the write.
                let (Some((w, wp, _)), Some(k)) = (op, k) else {
                    continue;
                };
                if !superseded(k, w, wp, t) {
                    continue;
                }
                if an.count("superseded-write") {
                    let g = grants_by_key[k]
                        .iter()
                        .map(|&(g, tg)| (ops[g], tg))
                        .find(|(g, tg)| *tg > t && g.precedes(w) && g.process != w.process);
                    if let Some(g) = g {
                        an.push(
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
    }

    let stop_reason = stopped.map(|s| {
        format!(
            "{} (of {} operations, {} grants, {accepted} storage entries read)",
            deadline.reason(s),
            ops.len(),
            grants.len()
        )
    });
    let has_log = log.is_some();
    report(Tally {
        model,
        ops: &ops,
        grants: grants.len(),
        accepted,
        unfenced,
        has_log,
        timed,
        an,
        stop_reason,
    })
}

/// What [`report`] needs of a finished (or stopped) check.
struct Tally<'a, 'o> {
    model: &'a str,
    ops: &'a [&'o Operation],
    grants: usize,
    accepted: usize,
    unfenced: usize,
    has_log: bool,
    timed: bool,
    an: Anomalies,
    stop_reason: Option<String>,
}

/// The verdict, text and JSON of a check: one printer for the sweeps and
/// for the pairwise specification they are tested against.
fn report(t: Tally) -> WorkloadResult {
    let Tally {
        model,
        ops,
        grants,
        accepted,
        unfenced,
        has_log,
        timed,
        an,
        stop_reason,
    } = t;
    let anomaly_types: Vec<&str> = an.counts.keys().copied().collect();
    let reason = if !an.is_empty() {
        None
    } else if let Some(r) = &stop_reason {
        Some(r.as_str())
    } else if grants == 0 {
        Some("no acquire succeeded: nothing to check")
    } else if !has_log {
        Some("the storage was never read: stale-token writes could not be checked")
    } else if !timed {
        Some("some operations have no time: leases could not be checked")
    } else {
        None
    };
    let verdict = if !an.is_empty() {
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
        grants,
        if anomaly_types.is_empty() {
            String::new()
        } else {
            format!("; anomalies: {}", anomaly_types.join(", "))
        }
    );
    if let Some(r) = reason {
        text.push_str(&format!("  {r}\n"));
    }
    for list in an.listed.values() {
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
        "anomalies": an.listed,
        "anomaly_counts": an.counts,
        "stats": {"grants": grants, "writes_ok": writes_ok, "writes_failed": rejected,
                  "storage_accepted": accepted, "storage_unfenced": unfenced},
    });
    if let Some(r) = reason {
        out["reason"] = json!(r);
    }
    if let Some(r) = stop_reason {
        out["stopped"] = json!(r);
    }
    WorkloadResult {
        verdict,
        json: out,
        text,
    }
}

#[cfg(test)]
mod tests;
