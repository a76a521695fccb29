//! Read-write register analysis. Writes are assumed unique per key. A read
//! names the version it saw, but not what came before it, so each key's
//! version order is a graph assembled from sources, in order:
//!
//! 1. initial state: `nil` precedes every version;
//! 2. `wfr_keys` (writes follow reads): a transaction that read `v1` then
//!    wrote `v2`;
//! 3. `sequential_keys`: each process's successive operations on a key;
//! 4. `linearizable_keys`: realtime order of operations on a key.
//!
//! A source whose edges would make a key's versions cyclic is dropped for
//! that key and reported as `cyclic-versions`. From each version edge
//! `v1 < v2`: ww (writer of v1 → writer of v2) and rw (each reader of v1 →
//! writer of v2); each read gives wr (writer → reader).

use super::explain::{EdgeKind, Explanation};
use super::graph::{EdgeBuf, RW, WR, WW};
use super::list_append::Appends;
use super::{Anomaly, Deadline, Found, FxMap, MopF, NIL, Prepared, TxnOptions, TxnState};
use serde_json::Value;

pub struct Analysis {
    /// `(key, value)` → the first ok or info transaction that wrote it
    /// (per-key sorted runs, as list-append's: at a million transactions
    /// hash-map probes were most of the analysis).
    pub writer: Appends,
    /// Per key, version-order edges `(v1, v2)`, sorted and deduplicated.
    pub versions: Vec<Vec<(u32, u32)>>,
}

/// External read of `k` in `t`: the first micro-op on `k` is a read.
fn ext_read(p: &Prepared, t: u32, k: u32) -> Option<u32> {
    let m = p.mops_of(t).iter().find(|m| m.key == k)?;
    (m.f == MopF::Read).then_some(m.val)
}

/// The first version of `k` a transaction saw or made, and the last.
fn first_last(p: &Prepared, t: u32, k: u32) -> Option<(u32, u32)> {
    let mops = p.mops_of(t);
    let first = mops.iter().find(|m| m.key == k)?.val;
    let last = mops
        .iter()
        .rev()
        .find(|m| m.key == k && m.f == MopF::Write)
        .map_or(first, |m| m.val);
    Some((first, last))
}

impl Analysis {
    pub fn explain(
        &self,
        p: &Prepared,
        a: u32,
        b: u32,
        kind: EdgeKind,
    ) -> (Option<Value>, Option<Value>, Option<Value>) {
        let w = |k: u32, v: u32| self.writer.writer(k, v);
        let kv = |k: u32, v: u32, o: Option<u32>| {
            (
                Some(p.keys.value(k)),
                Some(p.vals.value(v)),
                o.map(|o| p.vals.value(o)),
            )
        };
        match kind {
            EdgeKind::Ww => {
                for m in p.mops_of(a).iter().filter(|m| m.f == MopF::Write) {
                    for &(v1, v2) in self.versions.get(m.key as usize).into_iter().flatten() {
                        if v1 == m.val && w(m.key, v2) == Some(b) {
                            return kv(m.key, v1, Some(v2));
                        }
                    }
                }
            }
            EdgeKind::Wr => {
                for m in p
                    .mops_of(b)
                    .iter()
                    .filter(|m| m.f == MopF::Read && m.val != NIL)
                {
                    if ext_read(p, b, m.key) == Some(m.val) && w(m.key, m.val) == Some(a) {
                        return kv(m.key, m.val, None);
                    }
                }
            }
            EdgeKind::Rw => {
                for m in p.mops_of(a).iter().filter(|m| m.f == MopF::Read) {
                    if ext_read(p, a, m.key) != Some(m.val) {
                        continue;
                    }
                    for &(v1, v2) in self.versions.get(m.key as usize).into_iter().flatten() {
                        if v1 == m.val && w(m.key, v2) == Some(b) {
                            return kv(m.key, v2, Some(m.val));
                        }
                    }
                }
            }
            _ => {}
        }
        (None, None, None)
    }
}

/// Infers the version orders, the non-cycle anomalies and the ww / wr / rw
/// edges; `None` if `deadline` passed first.
pub fn analyze(
    p: &Prepared,
    opts: &TxnOptions,
    buf: &mut EdgeBuf,
    found: &mut Found,
    deadline: &mut Deadline,
) -> Option<Analysis> {
    let nkeys = p.keys.len();
    // (key, value, txn, intermediate) in history order.
    let mut writes: Vec<(u32, u32, u32, bool)> = Vec::with_capacity(p.mops.len() / 2);
    let mut failed_writes: Vec<(u32, u32, u32, bool)> = Vec::new();
    let mut values: Vec<Vec<u32>> = vec![Vec::new(); nkeys];
    for (t, tx) in p.txns.iter().enumerate() {
        if deadline.passed() {
            return None;
        }
        let mops = p.mops_of(t as u32);
        for (i, m) in mops.iter().enumerate() {
            if m.f != MopF::Write {
                continue;
            }
            if tx.state == TxnState::Fail {
                failed_writes.push((m.key, m.val, t as u32, false));
            } else {
                values[m.key as usize].push(m.val);
                let inter = mops[i + 1..]
                    .iter()
                    .any(|o| o.f == MopF::Write && o.key == m.key);
                writes.push((m.key, m.val, t as u32, inter));
            }
        }
    }

    // Reads: internal consistency, G1a, G1b, lost updates, wr edges.
    let writer = Appends::build(nkeys, &writes);
    drop(writes);
    let failed = Appends::build(nkeys, &failed_writes);
    drop(failed_writes);
    // External reads as (key, value, reader), sorted after the loop.
    let mut readers: Vec<(u32, u32, u32)> = Vec::new();
    let mut lost: FxMap<(u32, u32), Vec<u32>> = FxMap::default();
    let mut sources: [Vec<Vec<(u32, u32)>>; 4] = std::array::from_fn(|_| vec![Vec::new(); nkeys]);
    let op = |t: u32, k: u32, v: u32, writer: Option<u32>, expected: Option<u32>, msg: String| {
        Explanation::Op {
            op: p.txn_ref(t),
            key: p.keys.value(k),
            value: p.vals.value(v),
            expected: expected.map(|e| p.vals.value(e)),
            writer: writer.map(|w| p.txn_ref(w)),
            message: msg,
        }
    };
    for (t, tx) in p.txns.iter().enumerate() {
        if deadline.passed() {
            return None;
        }
        if tx.state != TxnState::Ok {
            continue;
        }
        let t = t as u32;
        let mops = p.mops_of(t);
        for (i, m) in mops.iter().enumerate() {
            let prior = mops[..i].iter().rev().find(|o| o.key == m.key);
            match (m.f, prior) {
                (MopF::Read, Some(prev)) if prev.val != m.val => {
                    found.add(Anomaly::Internal, || {
                        let msg = format!(
                            "read key {} = {} after this transaction's own {} {}",
                            p.keys.value(m.key),
                            p.vals.value(m.val),
                            if prev.f == MopF::Write {
                                "write of"
                            } else {
                                "read of"
                            },
                            p.vals.value(prev.val)
                        );
                        op(t, m.key, m.val, None, Some(prev.val), msg)
                    });
                }
                (MopF::Read, None) => {
                    readers.push((m.key, m.val, t));
                    if m.val != NIL {
                        values[m.key as usize].push(m.val);
                    }
                    if let Some(w) = failed.writer(m.key, m.val) {
                        found.add(Anomaly::G1a, || {
                            let msg = format!(
                                "read key {} = {}, written by a failed transaction",
                                p.keys.value(m.key),
                                p.vals.value(m.val)
                            );
                            op(t, m.key, m.val, Some(w), None, msg)
                        });
                    }
                    if let Some(w) = writer.writer(m.key, m.val) {
                        // Only a transaction's final write of a key is an
                        // external write (Elle's `ext-writes`): a read of
                        // an intermediate one is G1b, not a wr edge.
                        let intermediate = writer.is_intermediate(m.key, m.val);
                        if w != t && intermediate {
                            found.add(Anomaly::G1b, || {
                                let msg = format!(
                                    "read key {} = {}, an intermediate write of another transaction",
                                    p.keys.value(m.key),
                                    p.vals.value(m.val)
                                );
                                op(t, m.key, m.val, Some(w), None, msg)
                            });
                        }
                        if !intermediate {
                            buf.push(w, t, WR);
                        }
                    }
                }
                (MopF::Write, Some(prev))
                    if prev.f == MopF::Read
                        && !mops[..i]
                            .iter()
                            .any(|o| o.key == m.key && o.f == MopF::Write) =>
                {
                    // Writes follow reads within the transaction.
                    if opts.wfr_keys {
                        sources[1][m.key as usize].push((prev.val, m.val));
                    }
                    lost.entry((m.key, prev.val)).or_default().push(t);
                }
                _ => {}
            }
        }
        // Writes follow the read even with other writes in between.
        for m in mops.iter().filter(|m| opts.wfr_keys && m.f == MopF::Write) {
            if let Some(r) = ext_read(p, t, m.key)
                && r != m.val
            {
                sources[1][m.key as usize].push((r, m.val));
            }
        }
    }
    for ((k, v), txns) in &lost {
        if deadline.passed() {
            return None;
        }
        if txns.len() > 1 {
            found.add(Anomaly::LostUpdate, || Explanation::LostUpdate {
                key: p.keys.value(*k),
                value: p.vals.value(*v),
                txns: txns.iter().map(|&t| p.txn_ref(t)).collect(),
            });
        }
    }

    readers.sort_unstable();
    // Source 0: the initial state precedes every version.
    for (k, vs) in values.iter_mut().enumerate() {
        vs.sort_unstable();
        vs.dedup();
        sources[0][k] = vs.iter().map(|&v| (NIL, v)).collect();
    }
    if opts.sequential_keys {
        let mut last: FxMap<(u32, u32), u32> = FxMap::default();
        for (t, tx) in p.txns.iter().enumerate() {
            if deadline.passed() {
                return None;
            }
            if tx.state != TxnState::Ok {
                continue;
            }
            for m in p.mops_of(t as u32) {
                let Some((first, lst)) = first_last(p, t as u32, m.key) else {
                    continue;
                };
                if let Some(prev) = last.insert((tx.process, m.key), lst)
                    && prev != first
                {
                    sources[2][m.key as usize].push((prev, first));
                }
            }
        }
    }
    if opts.linearizable_keys {
        realtime_versions(p, &mut sources[3]);
    }
    if deadline.passed_now() {
        return None;
    }

    // Merge sources key by key, dropping any that would close a cycle.
    const NAMES: [&str; 4] = [
        "initial-state",
        "writes-follow-reads",
        "process",
        "realtime",
    ];
    let mut versions: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nkeys];
    for k in 0..nkeys {
        if deadline.passed() {
            return None;
        }
        for (s, name) in NAMES.iter().enumerate() {
            let add_edges = &sources[s][k];
            if add_edges.is_empty() {
                continue;
            }
            let mut trial = versions[k].clone();
            trial.extend(add_edges.iter().filter(|(a, b)| a != b));
            trial.sort_unstable();
            trial.dedup();
            // The initial state's edges alone are a star from nil: acyclic.
            let cycle = if s == 0 && versions[k].is_empty() {
                None
            } else {
                find_cycle(&trial)
            };
            match cycle {
                None => versions[k] = trial,
                Some(cycle) => found.add(Anomaly::CyclicVersions, || Explanation::CyclicVersions {
                    key: p.keys.value(k as u32),
                    source: name.to_string(),
                    cycle: cycle.iter().map(|&v| p.vals.value(v)).collect(),
                }),
            }
        }
    }

    // ww and rw edges from the version graph.
    for (k, es) in versions.iter().enumerate() {
        if deadline.passed() {
            return None;
        }
        let k = k as u32;
        for &(v1, v2) in es {
            let Some(w2) = writer.writer(k, v2) else {
                continue;
            };
            if let Some(w1) = writer.writer(k, v1) {
                buf.push(w1, w2, WW);
            }
            let from = readers.partition_point(|r| (r.0, r.1) < (k, v1));
            for &(_, _, r) in readers[from..].iter().take_while(|r| (r.0, r.1) == (k, v1)) {
                buf.push(r, w2, RW);
            }
        }
    }
    Some(Analysis { writer, versions })
}

/// Realtime order per key (Elle's frontier sweep, per key): each ok
/// transaction's first version on a key follows the last version of every
/// transaction on that key that completed before it was invoked and is not
/// already superseded.
fn realtime_versions(p: &Prepared, out: &mut [Vec<(u32, u32)>]) {
    let mut completions: Vec<(usize, u32)> = p
        .txns
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state == TxnState::Ok)
        .filter_map(|(i, t)| t.complete.map(|c| (c, i as u32)))
        .collect();
    completions.sort_unstable();
    let mut frontier: FxMap<u32, Vec<u32>> = FxMap::default();
    let mut open: FxMap<u32, Vec<(u32, Vec<u32>)>> = FxMap::default();
    let keys_of = |t: u32| {
        let mut ks: Vec<u32> = p.mops_of(t).iter().map(|m| m.key).collect();
        ks.sort_unstable();
        ks.dedup();
        ks
    };
    let mut ci = 0;
    let complete = |t: u32,
                    frontier: &mut FxMap<u32, Vec<u32>>,
                    open: &mut FxMap<u32, Vec<(u32, Vec<u32>)>>| {
        for (k, preds) in open.remove(&t).unwrap_or_default() {
            let f = frontier.entry(k).or_default();
            f.retain(|x| !preds.contains(x));
            f.push(t);
        }
    };
    for (i, tx) in p.txns.iter().enumerate() {
        while ci < completions.len() && completions[ci].0 < tx.invoke {
            complete(completions[ci].1, &mut frontier, &mut open);
            ci += 1;
        }
        if tx.state != TxnState::Ok {
            continue;
        }
        let t = i as u32;
        let mut mine = Vec::new();
        for k in keys_of(t) {
            let preds = frontier.get(&k).cloned().unwrap_or_default();
            if let Some((first, _)) = first_last(p, t, k) {
                for &q in &preds {
                    if let Some((_, last)) = first_last(p, q, k)
                        && last != first
                    {
                        out[k as usize].push((last, first));
                    }
                }
            }
            mine.push((k, preds));
        }
        open.insert(t, mine);
    }
    while ci < completions.len() {
        complete(completions[ci].1, &mut frontier, &mut open);
        ci += 1;
    }
}

/// A cycle in a small graph given as sorted edges, as its vertices in order.
fn find_cycle(edges: &[(u32, u32)]) -> Option<Vec<u32>> {
    let mut ids: FxMap<u32, usize> = FxMap::default();
    let mut names = Vec::new();
    for &(a, b) in edges {
        for v in [a, b] {
            ids.entry(v).or_insert_with(|| {
                names.push(v);
                names.len() - 1
            });
        }
    }
    let n = names.len();
    let mut indeg = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        let (a, b) = (ids[&a], ids[&b]);
        succ[a].push(b);
        pred[b].push(a);
        indeg[b] += 1;
    }
    let mut queue: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    let mut removed = vec![false; n];
    while let Some(v) = queue.pop() {
        removed[v] = true;
        for &w in &succ[v] {
            indeg[w] -= 1;
            if indeg[w] == 0 {
                queue.push(w);
            }
        }
    }
    // Every vertex left has a predecessor that is also left: walk back.
    let start = (0..n).find(|&v| !removed[v])?;
    let mut seen = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut v = start;
    while seen[v] == usize::MAX {
        seen[v] = path.len();
        path.push(v);
        v = *pred[v].iter().find(|&&u| !removed[u])?;
    }
    let mut cycle: Vec<u32> = path[seen[v]..].iter().map(|&i| names[i]).collect();
    cycle.reverse();
    Some(cycle)
}
