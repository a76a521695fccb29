//! List-append analysis. Each key holds a list; transactions append unique
//! values and read whole lists, so every read reveals a prefix of the key's
//! version order. The longest read is taken as the order; every other read
//! must be a prefix of it (else `incompatible-order`). From the order:
//! ww (consecutive appends), wr (the writer of a read's last element),
//! rw (a read, to the writer of the next element it did not see).

use super::explain::{EdgeKind, Explanation};
use super::graph::{EdgeBuf, RW, WR, WW};
use super::{Anomaly, Deadline, Found, FxMap, MopF, NIL, Prepared, TxnState};
use serde_json::Value;

/// Appends by `(key, value)`: for each, the first transaction (in history
/// order) that appended it, and whether any such append was intermediate
/// (followed by another append to the key in the same transaction). Kept
/// as per-key sorted runs, found by binary search: a million-transaction
/// history makes millions of look-ups, and a hash map's cache misses
/// dominated them.
#[derive(Default)]
pub struct Appends {
    /// Per key, its run in `vals` / `txns` / `intermediate`.
    start: Vec<u32>,
    vals: Vec<u32>,
    txns: Vec<u32>,
    intermediate: Vec<bool>,
    /// `(key, value, first txn, later txn)` for each append of a value the
    /// key already had appended (list-append needs unique appends).
    pub(crate) duplicates: Vec<(u32, u32, u32, u32)>,
}

impl Appends {
    /// From `(key, value, txn, intermediate)` in history order.
    pub(crate) fn build(nkeys: usize, entries: &[(u32, u32, u32, bool)]) -> Appends {
        // Counting sort by key (stable: history order within a key) ...
        let mut start = vec![0u32; nkeys + 1];
        for e in entries {
            start[e.0 as usize + 1] += 1;
        }
        for k in 0..nkeys {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut sorted = vec![(0u32, 0u32, false); entries.len()];
        for &(k, v, t, i) in entries {
            let slot = &mut fill[k as usize];
            sorted[*slot as usize] = (v, t, i);
            *slot += 1;
        }
        // ... then by value within each key (stable: the first writer
        // first), keeping one entry per value.
        let mut a = Appends {
            start: Vec::with_capacity(nkeys + 1),
            vals: Vec::with_capacity(entries.len()),
            txns: Vec::with_capacity(entries.len()),
            intermediate: Vec::with_capacity(entries.len()),
            duplicates: Vec::new(),
        };
        a.start.push(0);
        for k in 0..nkeys {
            let run = &mut sorted[start[k] as usize..start[k + 1] as usize];
            run.sort_by_key(|e| e.0);
            let first = a.vals.len();
            for &(v, t, i) in run.iter() {
                if a.vals.len() > first && a.vals.last() == Some(&v) {
                    if let Some(last) = a.intermediate.last_mut() {
                        *last |= i;
                    }
                    if let Some(&w) = a.txns.last() {
                        a.duplicates.push((k as u32, v, w, t));
                    }
                } else {
                    a.vals.push(v);
                    a.txns.push(t);
                    a.intermediate.push(i);
                }
            }
            a.start.push(a.vals.len() as u32);
        }
        a
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    #[inline]
    fn find(&self, key: u32, v: u32) -> Option<usize> {
        let k = key as usize;
        let (s, e) = (*self.start.get(k)? as usize, self.start[k + 1] as usize);
        self.vals[s..e].binary_search(&v).ok().map(|i| s + i)
    }

    /// The first transaction that appended `v` to `key`.
    #[inline]
    pub fn writer(&self, key: u32, v: u32) -> Option<u32> {
        self.find(key, v).map(|i| self.txns[i])
    }

    pub(crate) fn is_intermediate(&self, key: u32, v: u32) -> bool {
        self.find(key, v).is_some_and(|i| self.intermediate[i])
    }
}

/// What the edges were inferred from, kept to explain them.
pub struct Analysis {
    /// Per key, the micro-op index of its longest read, or `u32::MAX`.
    pub order: Vec<u32>,
    /// `(key, value)` → the ok or info transaction that appended it.
    pub writer: Appends,
    /// Keys whose longest read lists an element twice: the order without
    /// the repeats (Elle's `append-index` takes `distinct`), so no ww edge
    /// rests on a duplicate. Empty in a sound history.
    pub distinct: FxMap<u32, Vec<u32>>,
}

impl Analysis {
    fn order_of<'a>(&'a self, p: &'a Prepared, key: u32) -> &'a [u32] {
        if !self.distinct.is_empty()
            && let Some(d) = self.distinct.get(&key)
        {
            return d;
        }
        match self.order.get(key as usize) {
            Some(&m) if m != u32::MAX => p.list(&p.mops[m as usize]),
            _ => &[],
        }
    }

    fn writer_of(&self, key: u32, v: u32) -> Option<u32> {
        self.writer.writer(key, v)
    }

    /// An append of `key` by `t` that is not in the key's observed order.
    fn unread_append(&self, p: &Prepared, t: u32, key: u32) -> Option<u32> {
        let ord = self.order_of(p, key);
        p.mops_of(t)
            .iter()
            .find(|m| m.f == MopF::Append && m.key == key && !ord.contains(&m.val))
            .map(|m| m.val)
    }

    /// Key and values behind edge `a → b` of `kind`.
    pub fn explain(
        &self,
        p: &Prepared,
        a: u32,
        b: u32,
        kind: EdgeKind,
    ) -> (Option<Value>, Option<Value>, Option<Value>) {
        let kv =
            |k: u32, v: u32, o: Option<Value>| (Some(p.keys.value(k)), Some(p.vals.value(v)), o);
        match kind {
            EdgeKind::Ww => {
                for m in p.mops_of(a).iter().filter(|m| m.f == MopF::Append) {
                    let ord = self.order_of(p, m.key);
                    let Some(i) = ord.iter().position(|&x| x == m.val) else {
                        continue;
                    };
                    if let Some(&y) = ord.get(i + 1)
                        && self.writer_of(m.key, y) == Some(b)
                    {
                        return kv(m.key, m.val, Some(p.vals.value(y)));
                    }
                    // b's append that no read observed follows the last observed one.
                    if i + 1 == ord.len()
                        && let Some(y) = self.unread_append(p, b, m.key)
                    {
                        return kv(m.key, m.val, Some(p.vals.value(y)));
                    }
                }
            }
            EdgeKind::Wr => {
                for m in ext_reads(p, b) {
                    if let Some(&last) = read_list(p, m).last()
                        && self.writer_of(m.key, last) == Some(a)
                    {
                        return kv(m.key, last, None);
                    }
                }
            }
            EdgeKind::Rw => {
                for m in ext_reads(p, a) {
                    let l = read_list(p, m);
                    let last = l.last().map_or(Value::Null, |&x| p.vals.value(x));
                    let ord = self.order_of(p, m.key);
                    if let Some(&next) = ord.get(l.len())
                        && self.writer_of(m.key, next) == Some(b)
                    {
                        return kv(m.key, next, Some(last));
                    }
                    if l.len() == ord.len()
                        && let Some(y) = self.unread_append(p, b, m.key)
                    {
                        return kv(m.key, y, Some(last));
                    }
                }
            }
            _ => {}
        }
        (None, None, None)
    }
}

/// The first element `l` repeats, if any; `stamp` (all below the next
/// `read_no`) marks elements seen.
fn has_duplicates(l: &[u32], stamp: &mut [u32], read_no: &mut u32) -> Option<u32> {
    *read_no += 1;
    for &x in l {
        if stamp[x as usize] == *read_no {
            return Some(x);
        }
        stamp[x as usize] = *read_no;
    }
    None
}

/// `l` without repeats, each element where it first appears.
fn distinct(l: &[u32]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::with_capacity(l.len());
    l.iter().copied().filter(|x| seen.insert(*x)).collect()
}

/// `m`'s list as its analysis used it: without repeats.
fn read_list<'a>(p: &'a Prepared, m: &super::Mop) -> std::borrow::Cow<'a, [u32]> {
    let l = p.list(m);
    if distinct(l).len() == l.len() {
        std::borrow::Cow::Borrowed(l)
    } else {
        std::borrow::Cow::Owned(distinct(l))
    }
}

/// External reads of `t`: reads with a known list that come before any other
/// micro-op on their key in the transaction.
fn ext_reads<'a>(p: &'a Prepared, t: u32) -> impl Iterator<Item = &'a super::Mop> + 'a {
    let mops = p.mops_of(t);
    mops.iter().enumerate().filter_map(move |(i, m)| {
        (m.f == MopF::Read && m.val != NIL && !mops[..i].iter().any(|o| o.key == m.key))
            .then_some(m)
    })
}

fn op_anomaly(
    p: &Prepared,
    t: u32,
    key: u32,
    value: Value,
    expected: Option<Value>,
    writer: Option<u32>,
    message: String,
) -> Explanation {
    Explanation::Op {
        op: p.txn_ref(t),
        key: p.keys.value(key),
        value,
        expected,
        writer: writer.map(|w| p.txn_ref(w)),
        message,
    }
}

fn list_value(p: &Prepared, l: &[u32]) -> Value {
    Value::Array(l.iter().map(|&x| p.vals.value(x)).collect())
}

/// Infers the version orders, the non-cycle anomalies and the ww / wr / rw
/// edges; `None` if `deadline` passed first.
pub fn analyze(
    p: &Prepared,
    buf: &mut EdgeBuf,
    found: &mut Found,
    deadline: &mut Deadline,
) -> Option<Analysis> {
    let nkeys = p.keys.len();
    let mut appends: Vec<(u32, u32, u32, bool)> = Vec::with_capacity(p.mops.len() / 2);
    let mut failed_appends: Vec<(u32, u32, u32, bool)> = Vec::new();
    let mut order = vec![u32::MAX; nkeys];
    // The length of each key's longest read so far.
    let mut order_len = vec![0u32; nkeys];
    for (t, tx) in p.txns.iter().enumerate() {
        if deadline.passed() {
            return None;
        }
        let mops = p.mops_of(t as u32);
        for (i, m) in mops.iter().enumerate() {
            match m.f {
                MopF::Append => {
                    if tx.state == TxnState::Fail {
                        failed_appends.push((m.key, m.val, t as u32, false));
                    } else {
                        // Superseded by the transaction's own later append?
                        let inter = mops[i + 1..]
                            .iter()
                            .any(|o| o.f == MopF::Append && o.key == m.key);
                        appends.push((m.key, m.val, t as u32, inter));
                    }
                }
                MopF::Read if tx.state == TxnState::Ok && m.val != NIL => {
                    let k = m.key as usize;
                    if order[k] == u32::MAX || order_len[k] < m.list.1 {
                        order[k] = (tx.mops.0 as usize + i) as u32;
                        order_len[k] = m.list.1;
                    }
                }
                _ => {}
            }
        }
    }
    let writer = Appends::build(nkeys, &appends);
    drop(appends);
    let failed = Appends::build(nkeys, &failed_appends);
    // Elle's `verify-unique-appends`: every invoked append, whatever its
    // outcome, must be of a value new to its key. Otherwise a read cannot
    // say which append it saw, and the history is refused unchecked.
    let mut dups = writer.duplicates.clone();
    dups.extend(failed.duplicates.iter().copied());
    for &(k, v, t, _) in &failed_appends {
        if let Some(w) = writer.writer(k, v) {
            dups.push((k, v, w.min(t), w.max(t)));
        }
    }
    drop(failed_appends);
    let mut a = Analysis {
        order,
        writer,
        distinct: FxMap::default(),
    };
    let mut stamp: Vec<u32> = vec![u32::MAX; p.vals.len()];
    let mut read_no = 0u32;
    for k in 0..nkeys as u32 {
        let ord = a.order_of(p, k);
        if ord.len() > 1 && has_duplicates(ord, &mut stamp, &mut read_no).is_some() {
            let d = distinct(ord);
            a.distinct.insert(k, d);
        }
    }
    if !dups.is_empty() {
        dups.sort_unstable();
        for (k, v, first, later) in dups {
            found.add(Anomaly::DuplicateAppends, || {
                Explanation::DuplicateAppends {
                    key: p.keys.value(k),
                    value: p.vals.value(v),
                    txns: if first == later {
                        vec![p.txn_ref(first)]
                    } else {
                        vec![p.txn_ref(first), p.txn_ref(later)]
                    },
                }
            });
        }
        return Some(a);
    }

    let mut incompatible = vec![false; nkeys];
    let mut lost: FxMap<(u32, u32), (u32, Vec<u32>)> = FxMap::default();
    // Reads that saw a key's whole known order, as (key, reader).
    let mut full_readers: Vec<(u32, u32)> = Vec::new();
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
            if m.f != MopF::Read || m.val == NIL {
                // An append after an external read of the key: lost-update candidate.
                if m.f == MopF::Append
                    && !mops[..i]
                        .iter()
                        .any(|o| o.key == m.key && o.f == MopF::Append)
                    && let Some(r) = mops[..i]
                        .iter()
                        .find(|o| o.key == m.key && o.f == MopF::Read && o.val != NIL)
                {
                    let last = p.list(r).last().copied().unwrap_or(NIL);
                    let e = lost.entry((m.key, last)).or_insert((t, Vec::new()));
                    if e.0 != t {
                        e.1.push(t);
                    }
                }
                continue;
            }
            let k = m.key;
            let l = p.list(m);
            // duplicate-elements
            let mut repeats = false;
            if l.len() > 1 {
                let dup = has_duplicates(l, &mut stamp, &mut read_no);
                repeats = dup.is_some();
                if let Some(x) = dup {
                    found.add(Anomaly::DuplicateElements, || {
                        let msg = format!(
                            "read of key {} contains {} more than once",
                            p.keys.value(k),
                            p.vals.value(x)
                        );
                        op_anomaly(p, t, k, list_value(p, l), None, None, msg)
                    });
                }
            }
            // G1a: an element appended by a failed transaction.
            if !failed.is_empty() {
                for &x in l {
                    if let Some(w) = failed.writer(k, x) {
                        found.add(Anomaly::G1a, || {
                            let msg = format!(
                                "read key {} and observed {}, appended by a failed transaction",
                                p.keys.value(k),
                                p.vals.value(x)
                            );
                            op_anomaly(p, t, k, list_value(p, l), None, Some(w), msg)
                        });
                        break;
                    }
                }
            }
            // G1b: the last element is another transaction's intermediate append.
            if let Some(&last) = l.last()
                && a.writer.is_intermediate(k, last)
                && let Some(w) = a.writer_of(k, last)
                && w != t
            {
                found.add(Anomaly::G1b, || {
                    let msg = format!(
                        "read key {} ending in {}, an intermediate append of another transaction",
                        p.keys.value(k),
                        p.vals.value(last)
                    );
                    op_anomaly(p, t, k, list_value(p, l), None, Some(w), msg)
                });
            }
            // future-read: the read shows a value this transaction appends later.
            if let Some(x) = mops[i + 1..]
                .iter()
                .find(|o| o.f == MopF::Append && o.key == k && l.contains(&o.val))
            {
                found.add(Anomaly::FutureRead, || {
                    let msg = format!(
                        "read key {} and observed {}, which this transaction appends only later",
                        p.keys.value(k),
                        p.vals.value(x.val)
                    );
                    op_anomaly(p, t, k, list_value(p, l), None, None, msg)
                });
            }
            let prior: Vec<&super::Mop> = mops[..i].iter().filter(|o| o.key == k).collect();
            if !prior.is_empty() {
                internal(p, t, k, l, &prior, found);
                continue;
            }
            // External read: check against the order and add wr / rw edges,
            // as the read would be without its repeats.
            let own;
            let l = if repeats {
                own = distinct(l);
                &own[..]
            } else {
                l
            };
            let ord = a.order_of(p, k);
            if ord.len() < l.len() || ord[..l.len()] != *l {
                if !incompatible[k as usize] {
                    incompatible[k as usize] = true;
                    found.add(Anomaly::IncompatibleOrder, || {
                        Explanation::IncompatibleOrder {
                            key: p.keys.value(k),
                            values: vec![list_value(p, ord), list_value(p, l)],
                        }
                    });
                }
                continue;
            }
            if let Some(&last) = l.last()
                && let Some(w) = a.writer_of(k, last)
            {
                buf.push(w, t, WR);
            }
            if let Some(&next) = ord.get(l.len())
                && let Some(w) = a.writer_of(k, next)
            {
                buf.push(t, w, RW);
            }
            if l.len() == ord.len() {
                full_readers.push((k, t));
            }
        }
    }
    for ((k, v), (first, rest)) in lost {
        if deadline.passed() {
            return None;
        }
        if !rest.is_empty() {
            found.add(Anomaly::LostUpdate, || {
                let mut txns = vec![p.txn_ref(first)];
                txns.extend(rest.iter().map(|&t| p.txn_ref(t)));
                Explanation::LostUpdate {
                    key: p.keys.value(k),
                    value: p.vals.value(v),
                    txns,
                }
            });
        }
    }
    // Committed appends no read observed must follow every version that
    // was observed (Elle): ww from the last observed version's writer, rw
    // from every read that saw the whole known order.
    let mut unread: Vec<(u32, u32, u32)> = Vec::new();
    for (t, tx) in p.txns.iter().enumerate() {
        if deadline.passed() {
            return None;
        }
        if tx.state == TxnState::Ok {
            for m in p.mops_of(t as u32).iter().filter(|m| m.f == MopF::Append) {
                unread.push((m.key, m.val, t as u32));
            }
        }
    }
    unread.sort_unstable();
    full_readers.sort_unstable();
    let mut mark: Vec<u32> = vec![u32::MAX; p.vals.len()];
    let (mut ui, mut ri) = (0, 0);
    while ui < unread.len() {
        if deadline.passed() {
            return None;
        }
        let k = unread[ui].0;
        let ord = a.order_of(p, k);
        for &x in ord {
            mark[x as usize] = k;
        }
        let last_writer = ord.last().and_then(|&x| a.writer_of(k, x));
        while ri < full_readers.len() && full_readers[ri].0 < k {
            ri += 1;
        }
        let readers_end = full_readers[ri..]
            .iter()
            .position(|r| r.0 != k)
            .map_or(full_readers.len(), |n| ri + n);
        while ui < unread.len() && unread[ui].0 == k {
            let (_, x, w) = unread[ui];
            ui += 1;
            if mark[x as usize] == k {
                continue;
            }
            if let Some(lw) = last_writer {
                buf.push(lw, w, WW);
            }
            for &(_, r) in &full_readers[ri..readers_end] {
                buf.push(r, w, RW);
            }
        }
    }
    // ww edges, and dirty updates (a failed append followed by a committed one).
    for k in 0..nkeys as u32 {
        if deadline.passed() {
            return None;
        }
        let ord = a.order_of(p, k);
        let mut prev: Option<u32> = None;
        let mut aborted: Option<(u32, u32)> = None;
        for &x in ord {
            let w = a.writer_of(k, x);
            if let (Some(pw), Some(w)) = (prev, w) {
                buf.push(pw, w, WW);
            }
            if let Some(fw) = failed.writer(k, x) {
                aborted.get_or_insert((x, fw));
            } else if let (Some((fx, fw)), Some(w)) = (aborted.take(), w) {
                found.add(Anomaly::DirtyUpdate, || {
                    let msg = format!(
                        "key {}: appended {} after {}, which a failed transaction appended",
                        p.keys.value(k),
                        p.vals.value(x),
                        p.vals.value(fx)
                    );
                    op_anomaly(p, w, k, list_value(p, ord), None, Some(fw), msg)
                });
            }
            prev = w;
        }
    }
    Some(a)
}

/// A read after earlier micro-ops on its key in the same transaction must
/// show exactly what those imply: the earlier read plus appends since, or
/// (with no earlier read) end with the appends so far.
fn internal(p: &Prepared, t: u32, k: u32, l: &[u32], prior: &[&super::Mop], found: &mut Found) {
    let last_read = prior
        .iter()
        .rposition(|o| o.f == MopF::Read && o.val != NIL);
    let (mut expected, from, exact): (Vec<u32>, usize, bool) = match last_read {
        Some(r) => (p.list(prior[r]).to_vec(), r + 1, true),
        None => (Vec::new(), 0, false),
    };
    expected.extend(
        prior[from..]
            .iter()
            .filter(|o| o.f == MopF::Append)
            .map(|o| o.val),
    );
    let ok = if exact {
        expected == l
    } else {
        l.ends_with(&expected)
    };
    if !ok {
        found.add(Anomaly::Internal, || {
            let msg = format!(
                "read key {} = {} but earlier micro-ops in the same transaction imply {}{}",
                p.keys.value(k),
                list_value(p, l),
                if exact { "" } else { "a list ending in " },
                list_value(p, &expected)
            );
            op_anomaly(
                p,
                t,
                k,
                list_value(p, l),
                Some(list_value(p, &expected)),
                None,
                msg,
            )
        });
    }
}
