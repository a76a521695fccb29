//! Minimal counterexamples: shrinks a non-linearizable key to a 1-minimal
//! set of operations that is still not linearizable, and explains it.
//!
//! **What "removing" an operation means.** Deleting an `ok` write outright
//! would make the reads of its value look like reads of a value never
//! written, so shrinking would end at a single read and explain nothing.
//! Instead an operation outside the set is *relaxed*: it is treated as if
//! it had timed out (`info`), i.e. it may take effect at any point after its
//! invocation, or never. Observers (reads; `Model::is_pure`) are dropped,
//! which is the same thing for them. Relaxing only adds linearizations, so
//! the test is monotone, and a set is 1-minimal once relaxing any one of its
//! operations makes the history linearizable.
//!
//! **`info` operations** are relaxed already: they are never in the set and
//! always stay as they are (relaxing one changes nothing).
//!
//! **Strategy.** Windows of the ops invoked before the search's stuck op
//! returned, nearest first and smallest first, until one is not
//! linearizable; then (ddmin first when it has over 16 ops) one pass that
//! relaxes each kept op in turn and keeps the relaxation when the rest is
//! still not linearizable, which for a monotone test means 1-minimal. Each
//! probe is a linearizability check of the relaxed history with the same
//! WGL search. A probe
//! that runs out of time or memo budget counts as "linearizable" (the op is
//! kept): the set stays a proven counterexample, only its minimality is then
//! not guaranteed (`complete = false`).

use super::search::{self, Budget, SearchOut};
use crate::history::{History, Operation, Outcome, Value};
use crate::model::{CompiledOp, Model, ModelKind, ModelSpec, op_line};
use crate::verdict::Verdict;
use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::time::{Duration, Instant};

/// Shrink budget when the check itself has no time limit, so a pathological
/// key still answers promptly (with `complete = false`). Every corpus key
/// finishes well within it (the slowest, etcd_057, in about 0.2 s).
pub const DEFAULT_SHRINK_LIMIT: Duration = Duration::from_secs(1);

/// Memo budget of one probe. Relaxed ops that may go anywhere can make a
/// probe's search exponential (kv appends in every order); such a probe
/// answers unknown (the op is kept) rather than eat the whole budget.
const PROBE_MEM: usize = 1 << 20;
/// Memo budget of each probe of the final one-at-a-time pass.
const FINAL_PROBE_MEM: usize = 8 << 20;

/// A shrunk counterexample of one key.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Shrunk {
    /// `Operation::id`s of the kept operations, in the key's order.
    pub ids: Vec<usize>,
    /// True when the set is proven 1-minimal (every probe finished).
    pub complete: bool,
    /// Linearizability checks run while shrinking.
    pub probes: usize,
}

/// Shrinking limits.
pub(crate) struct ShrinkLimits {
    pub deadline: Option<Instant>,
    pub time_limit: Option<Duration>,
    pub mem_limit: usize,
}

/// Probes: linearizability checks of the key with only a set of its ops
/// kept as they are, the others relaxed.
struct Prober<'a, M: Model> {
    model: &'a mut M,
    init: &'a M::State,
    ops: &'a [CompiledOp<M::Op>],
    pure: Vec<bool>,
    keep: Vec<bool>,
    limits: &'a ShrinkLimits,
    probes: usize,
    /// Sets (sorted) already proven not linearizable / linearizable.
    /// "Not linearizable" is monotone in the kept set (relaxing an op only
    /// adds linearizations), so a superset of an invalid set is invalid
    /// and a subset of a valid one valid: ddmin and the one-at-a-time pass
    /// ask many such questions, and etcd_057 asked some twice.
    invalid: Vec<Vec<usize>>,
    valid: Vec<Vec<usize>>,
}

/// `a ⊆ b`, both sorted.
fn subset(a: &[usize], b: &[usize]) -> bool {
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j == b.len() || b[j] != x {
            return false;
        }
        j += 1;
    }
    true
}

impl<M: Model> Prober<'_, M> {
    fn expired(&self) -> bool {
        self.limits.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Some(true): not linearizable with only `set` (op indexes) kept,
    /// Some(false): linearizable, None: the probe ran out of its budget.
    fn probe(&mut self, set: &[usize], mem: usize) -> Option<bool> {
        let mut sorted = set.to_vec();
        sorted.sort_unstable();
        if self.invalid.iter().any(|i| subset(i, &sorted)) {
            return Some(true);
        }
        if self.valid.iter().any(|v| subset(&sorted, v)) {
            return Some(false);
        }
        let answer = self.search(set, mem);
        match answer {
            Some(true) => self.invalid.push(sorted),
            Some(false) => self.valid.push(sorted),
            None => {}
        }
        answer
    }

    /// [`Prober::probe`] without the known answers: one WGL search.
    fn search(&mut self, set: &[usize], mem: usize) -> Option<bool> {
        if self.expired() {
            return None;
        }
        self.probes += 1;
        self.keep.iter_mut().for_each(|k| *k = false);
        let mut last_ret = 0;
        for &i in set {
            self.keep[i] = true;
            last_ret = last_ret.max(self.ops[i].ret);
        }
        // Relaxed ops invoked after every kept op returned can only take
        // effect after all of them, when the search is already done: leave
        // them out (and `info` ops likewise).
        let sub: Vec<CompiledOp<M::Op>> = self
            .ops
            .iter()
            .zip(&self.keep)
            .zip(&self.pure)
            .filter_map(|((o, &k), &pure)| {
                if k {
                    Some(o.clone())
                } else if pure || o.call > last_ret {
                    None
                } else {
                    Some(CompiledOp {
                        ret: usize::MAX,
                        ok: false,
                        ..o.clone()
                    })
                }
            })
            .collect();
        let sub = prune_unobserved(self.model, sub);
        let cancel = AtomicU8::new(0);
        let mem_used = AtomicUsize::new(0);
        let budget = Budget {
            deadline: self.limits.deadline,
            time_limit: self.limits.time_limit,
            cancel: &cancel,
            exhaustive: true,
            mem_used: &mem_used,
            mem_limit: self.limits.mem_limit.min(mem),
        };
        let out = search::search(self.model, self.init.clone(), &sub, &budget);
        match out.verdict {
            Some(Verdict::Invalid) => Some(true),
            Some(Verdict::Valid) => Some(false),
            _ => None,
        }
    }
}

/// Window sizes tried around the stuck op: small ones densely (most
/// anomalies are 2–4 operations), then growing by half.
fn window_sizes(n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut k = 1;
    while k < n {
        out.push(k);
        k = if k < 4 { k + 1 } else { k + k / 2 };
    }
    out.push(n);
    out
}

/// A kept set up to this size goes straight to the one-at-a-time pass;
/// larger ones are cut by ddmin first.
const ONE_BY_ONE_MAX: usize = 16;

/// Shrinks the invalid key `ops` (compiled, as the search saw them);
/// `found` is the search's answer on them.
pub(crate) fn shrink<M: Model>(
    model: &mut M,
    init: &M::State,
    ops: &[CompiledOp<M::Op>],
    found: &SearchOut,
    limits: &ShrinkLimits,
) -> Shrunk {
    let pure: Vec<bool> = ops.iter().map(|o| model.is_pure(&o.op)).collect();
    let mut p = Prober {
        model,
        init,
        ops,
        keep: vec![false; ops.len()],
        pure,
        limits,
        probes: 0,
        invalid: Vec::new(),
        valid: Vec::new(),
    };
    // `info` ops are relaxed already: never candidates, always kept as-is.
    let all: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ok).collect();
    // Start from where the search got stuck: the op whose return it could
    // not pass. Windows of the ok ops invoked before that return, nearest
    // first (the stuck op, then by return, latest first), are probed from
    // the smallest; the first that is not linearizable is a proven
    // counterexample, usually of a few ops, so the shrinking after it costs
    // a few small probes instead of ddmin over the whole key.
    let stuck = found
        .failing
        .and_then(|f| ops.iter().position(|o| o.id == f))
        .filter(|&s| ops[s].ok);
    let mut near: Vec<usize> = match stuck {
        Some(s) => all
            .iter()
            .copied()
            .filter(|&i| ops[i].call < ops[s].ret)
            .collect(),
        None => all.clone(),
    };
    near.sort_by_key(|&i| (Some(i) != stuck, std::cmp::Reverse(ops[i].ret)));
    let mut start = None;
    for k in window_sizes(near.len()) {
        let mut w = near[..k].to_vec();
        w.sort_unstable();
        if p.probe(&w, PROBE_MEM) == Some(true) {
            start = Some(w);
            break;
        }
        if p.expired() {
            break;
        }
    }
    // No window proved anything (the budget ran out, or the conflict lies
    // after the stuck op): the whole key is the search's own proof.
    let start = start.unwrap_or(all);
    let mut kept = if start.len() > ONE_BY_ONE_MAX {
        let expired = || limits.deadline.is_some_and(|d| Instant::now() >= d);
        // ddmin with small probes: an unknown counts as valid (keep).
        ddmin(
            start,
            &mut |set| p.probe(set, PROBE_MEM) == Some(true),
            &expired,
        )
    } else {
        start
    };
    // The one-at-a-time pass that proves 1-minimality (monotone test: each
    // single relaxation linearizable), with a larger budget per probe so
    // that ddmin's unknowns get a definite answer. Observers go first (a
    // counterexample of writes reads as "the value was overwritten"), then
    // the ops farthest from the stuck op: the likeliest to be superfluous.
    let mut complete = true;
    let mut order = kept.clone();
    order.sort_by_key(|&i| (Some(i) == stuck, !p.pure[i], ops[i].ret));
    for x in order {
        if kept.len() <= 1 {
            break;
        }
        let without: Vec<usize> = kept.iter().copied().filter(|&y| y != x).collect();
        match p.probe(&without, FINAL_PROBE_MEM) {
            Some(true) => kept = without,
            Some(false) => {}
            None => {
                complete = false;
                if p.expired() {
                    break;
                }
            }
        }
    }
    Shrunk {
        ids: kept.iter().map(|&i| ops[i].id).collect(),
        complete,
        probes: p.probes,
    }
}

/// Drops optional (`info`) register writes and cas whose value no op of
/// `sub` can observe: in any linearization using one, the next op on the
/// register overwrites it (nothing reads it), so leaving it out changes no
/// verdict, and it spares the search every subset of such ops. Repeats
/// until stable (a dropped cas observed a value too). Appends observe the
/// current value, so any append disables this.
fn prune_unobserved<M: Model>(
    model: &M,
    mut sub: Vec<CompiledOp<M::Op>>,
) -> Vec<CompiledOp<M::Op>> {
    use crate::model::RegOp;
    use std::collections::HashSet;
    loop {
        let mut observed: HashSet<u32> = HashSet::new();
        for o in &sub {
            match model.as_register(&o.op) {
                Some(RegOp::Read(v)) | Some(RegOp::Cas(v, _)) => {
                    observed.insert(v);
                }
                Some(RegOp::Write(_)) => {}
                Some(RegOp::Append(_)) | None => return sub,
            }
        }
        let before = sub.len();
        sub.retain(|o| {
            o.ok || !matches!(
                model.as_register(&o.op),
                Some(RegOp::Write(n)) | Some(RegOp::Cas(_, n)) if !observed.contains(&n)
            )
        });
        if sub.len() == before {
            return sub;
        }
    }
}

/// Zeller's ddmin: the smallest subset of `c` (which `test` holds for) that
/// it finds by testing chunks and their complements.
/// Stops early, keeping what it has, once `expired` says the budget is
/// spent: past it every test answers "keep", and splitting a long key down
/// to single ops would cost O(len²) for nothing.
pub(crate) fn ddmin(
    mut c: Vec<usize>,
    test: &mut impl FnMut(&[usize]) -> bool,
    expired: &impl Fn() -> bool,
) -> Vec<usize> {
    let mut n = 2usize;
    while c.len() >= 2 && !expired() {
        let len = c.len();
        let chunk = len.div_ceil(n);
        let chunks: Vec<&[usize]> = c.chunks(chunk).collect();
        let mut next: Option<(Vec<usize>, usize)> = None;
        for ch in &chunks {
            if test(ch) {
                next = Some((ch.to_vec(), 2));
                break;
            }
        }
        if next.is_none() && chunks.len() > 2 {
            for i in 0..chunks.len() {
                if expired() {
                    break;
                }
                let comp: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .flat_map(|(_, ch)| ch.iter().copied())
                    .collect();
                if test(&comp) {
                    next = Some((comp, (n - 1).max(2)));
                    break;
                }
            }
        }
        match next {
            Some((nc, nn)) => {
                c = nc;
                n = nn.min(c.len().max(2));
            }
            None if n >= len => break,
            None => n = (2 * n).min(len),
        }
    }
    c
}

// ---------------------------------------------------------------------------
// Explanations.

/// How the explanation names an operation: `process 3's get → "x"`.
fn who(op: &Operation) -> String {
    format!("process {}'s {}", op.process, op.f)
}

/// Lines of the invocation and of the completion (if any).
fn lines(op: &Operation, h: Option<&History>) -> String {
    let l0 = op_line(op, h);
    match op.complete.and_then(|c| h?.events.get(c)) {
        Some(e) => format!("lines {l0}–{}", e.line),
        None => format!("line {l0}, never returned"),
    }
}

fn ret_line(op: &Operation, h: Option<&History>) -> usize {
    op.complete
        .and_then(|c| h?.events.get(c))
        .map_or(0, |e| e.line)
}

/// A value for prose: long strings keep their head and tail.
pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    let n = s.chars().count();
    if n <= 48 {
        return s;
    }
    let head: String = s.chars().take(20).collect();
    let tail: String = s.chars().skip(n - 20).collect();
    format!("{head}…{tail} ({n} chars)")
}

/// One op as a list item: `process 3's ok get → "x" (lines 510–519)`.
pub(crate) fn op_item<M: Model>(model: &M, op: &Operation, h: Option<&History>) -> String {
    let how = match op.outcome {
        Outcome::Ok => "ok",
        Outcome::Fail => "failed",
        Outcome::Info => "unknown-outcome",
    };
    format!(
        "process {}'s {how} {} ({})",
        op.process,
        model.describe_op(op),
        lines(op, h)
    )
}

fn is_read(f: &str) -> bool {
    matches!(f, "read" | "get" | "r")
}

fn is_write(f: &str) -> bool {
    matches!(f, "write" | "put" | "w")
}

/// The value an op leaves a register in, when it writes one.
fn written(op: &Operation) -> Option<&Value> {
    if is_write(&op.f) {
        Some(&op.value)
    } else if op.f == "cas" {
        op.value.as_array().and_then(|a| a.get(1))
    } else {
        None
    }
}

/// The value an op requires the register to hold (reads and cas).
fn observed(op: &Operation) -> Option<&Value> {
    if op.outcome != Outcome::Ok {
        return None;
    }
    if is_read(&op.f) {
        Some(&op.value)
    } else if op.f == "cas" {
        op.value.as_array().and_then(|a| a.first())
    } else {
        None
    }
}

/// How many of `appends` (the key's appended strings) occur in `v`.
fn appends_in(v: &Value, appends: &[&str]) -> usize {
    match v.as_str() {
        Some(s) => appends
            .iter()
            .filter(|a| !a.is_empty() && s.contains(*a))
            .count(),
        None => 0,
    }
}

/// Explains a shrunk key: the kept operations in real-time order, the
/// real-time facts between them, and why no order works, in the model's
/// terms where a specific pattern is recognised (generic otherwise).
/// Larger kept sets are not explained sentence by sentence.
const EXPLAIN_MAX_OPS: usize = 64;

/// `min` are the kept operations, `all` every operation of the key.
pub(crate) fn explain<M: Model>(
    model: &M,
    key: &str,
    min: &[&Operation],
    all: &[&Operation],
    complete: bool,
    h: Option<&History>,
) -> String {
    let mut min: Vec<&Operation> = min.to_vec();
    min.sort_by_key(|o| o.invoke);
    // A set this large means shrinking stopped early on a long key: the
    // sentences below pair operations (quadratic and more) and would be
    // unreadable anyway, so say so and leave the detail to the search.
    if min.len() > EXPLAIN_MAX_OPS {
        return format!(
            "Key {key:?}: shrinking ran out of its time or memory budget with {} operation(s) \
             left, too many to explain one by one; the search detail names the operation \
             that could not be linearized.",
            min.len()
        );
    }
    let in_min: std::collections::HashSet<_> = min.iter().map(|m| m.id).collect();
    let others = all
        .iter()
        .filter(|o| o.outcome != Outcome::Fail && !in_min.contains(&o.id))
        .count();
    let mut s = if complete {
        format!(
            "Key {key:?}: a minimal counterexample has {} operation(s)",
            min.len()
        )
    } else {
        format!(
            "Key {key:?}: shrinking ran out of its time or memory budget; this counterexample of {} operation(s) may not be minimal",
            min.len()
        )
    };
    if others > 0 {
        s.push_str(&format!(
            " (the key's other {others} operation(s) are treated as if they had timed out: each may take effect any time after its invocation, or never)"
        ));
    }
    s.push_str(": ");
    let items: Vec<String> = min
        .iter()
        .enumerate()
        .map(|(i, o)| format!("[{}] {}", i + 1, op_item(model, o, h)))
        .collect();
    s.push_str(&items.join("; "));
    s.push_str(". ");
    match model.explain(key, &min, all, h) {
        Some(w) => s.push_str(&w),
        None => {
            let order = realtime_facts(&min, h);
            if !order.is_empty() {
                s.push_str(&format!("In real time: {}. ", order.join("; ")));
            }
            s.push_str(&format!(
                "These {} operation(s) admit no order: every order that respects real time \
                 reaches an operation that is illegal in the {} state before it.",
                min.len(),
                model.name()
            ));
        }
    }
    s
}

/// "[1] returned (line 12) before [2] was invoked (line 14)" for each pair
/// in real-time order (immediate ones only, at most 8).
fn realtime_facts(min: &[&Operation], h: Option<&History>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in min.iter().enumerate() {
        for (j, b) in min.iter().enumerate() {
            if !a.precedes(b) {
                continue;
            }
            // Skip edges implied by a chain a < c < b.
            if min.iter().any(|c| a.precedes(c) && c.precedes(b)) {
                continue;
            }
            out.push(format!(
                "[{}] returned (line {}) before [{}] was invoked (line {})",
                i + 1,
                ret_line(a, h),
                j + 1,
                op_line(b, h)
            ));
        }
    }
    out.truncate(8);
    out
}

pub(crate) fn register_why(
    spec: &ModelSpec,
    key: &str,
    min: &[&Operation],
    all: &[&Operation],
    h: Option<&History>,
) -> Option<String> {
    let kv = spec.kind == ModelKind::Kv;
    if min.is_empty() {
        return None;
    }
    let key_opt = (key != "_").then_some(key);
    let init: Value = match spec.initial_for(key_opt) {
        Some(v) => v.clone(),
        None if kv => Value::from(""),
        None => Value::Null,
    };
    let init_s = if init.is_null() && spec.initial.is_none() && !kv {
        "absent".to_string()
    } else {
        short(&init)
    };
    let live: Vec<&&Operation> = all.iter().filter(|o| o.outcome != Outcome::Fail).collect();
    let appends: Vec<&str> = live
        .iter()
        .filter(|o| o.f == "append")
        .filter_map(|o| o.value.as_str())
        .collect();
    let has_overwrite = live.iter().any(|o| written(o).is_some());
    let idx = |o: &Operation| min.iter().position(|m| m.id == o.id).map_or(0, |p| p + 1);

    // Value never written: one op whose observed value nothing produces.
    if let [only] = min
        && let Some(v) = observed(only)
    {
        let what = if kv {
            "no sequence of this key's puts and appends invoked before it returned produces it"
        } else {
            "no operation of this key invoked before it returned writes it"
        };
        return Some(format!(
            "{} requires the value {}, but the {} starts at {init_s} and {what}: \
             the value read was never written.",
            who(only),
            short(v),
            spec.kind
        ));
    }

    // kv stale get: an earlier get saw more appends than a later one. The
    // patterns below claim "nothing can undo it", which the set's
    // invalidity proves only when the pattern is the whole set.
    if kv && min.len() == 2 {
        for a in min
            .iter()
            .filter(|o| is_read(&o.f) && o.outcome == Outcome::Ok)
        {
            for b in min
                .iter()
                .filter(|o| is_read(&o.f) && o.outcome == Outcome::Ok)
            {
                let (Some(va), Some(vb)) = (a.value.as_str(), b.value.as_str()) else {
                    continue;
                };
                if !a.precedes(b) || vb.starts_with(va) {
                    continue;
                }
                let (na, nb) = (
                    appends_in(&a.value, &appends),
                    appends_in(&b.value, &appends),
                );
                let count = |n: usize| {
                    if n > 0 {
                        format!(" (holding {n} appended value(s))")
                    } else {
                        String::new()
                    }
                };
                let relation = if va.starts_with(vb) {
                    "an older value, a prefix of what the first get saw"
                } else {
                    "a value that does not extend what the first get saw"
                };
                let tail = if has_overwrite {
                    "appends only extend a value, and no put or cas of this key invoked before the later get returned can take it back"
                } else {
                    "appends only extend a value, and this key has no put or cas that could overwrite it"
                };
                return Some(format!(
                    "Stale get: {} [{}] returned {}{} at line {} before {} [{}] was invoked at line {}; \
                     [{}] returned {}{}, {relation}: {tail}.",
                    who(a),
                    idx(a),
                    short(&a.value),
                    count(na),
                    ret_line(a, h),
                    who(b),
                    idx(b),
                    op_line(b, h),
                    idx(b),
                    short(&b.value),
                    count(nb),
                ));
            }
        }
    }

    // kv lost append: an append returned before a get was invoked, and the
    // get's value does not contain it.
    if kv
        && let [a, g] = min
        && a.f == "append"
        && is_read(&g.f)
        && g.outcome == Outcome::Ok
        && a.precedes(g)
        && let (Some(x), Some(v)) = (a.value.as_str(), g.value.as_str())
        && !v.contains(x)
    {
        return Some(format!(
            "Lost append: {} [1] of {} returned at line {} before {} [2] was invoked at line {}, \
             but [2] returned {}, which does not contain it, and nothing on this key invoked \
             before [2] returned can take it out.",
            who(a),
            short(&a.value),
            ret_line(a, h),
            who(g),
            op_line(g, h),
            short(&g.value)
        ));
    }

    // Overwritten value: a read of v after a write of u != v that began
    // after every kept write of v had returned.
    for r in min.iter() {
        let Some(v) = observed(r) else { continue };
        let sources: Vec<&&Operation> = min.iter().filter(|w| written(w) == Some(v)).collect();
        if min.len() != sources.len() + 2 {
            continue;
        }
        for w in min.iter() {
            let Some(u) = written(w) else { continue };
            if u == v || !w.precedes(r) || !sources.iter().all(|s| s.precedes(w)) {
                continue;
            }
            let from = if sources.is_empty() {
                format!("the initial value {init_s}")
            } else {
                let names: Vec<String> = sources
                    .iter()
                    .map(|s| format!("{} [{}]", who(s), idx(s)))
                    .collect();
                format!(
                    "written by {}, which returned before [{}] was invoked",
                    names.join(" and "),
                    idx(w)
                )
            };
            return Some(format!(
                "Stale read: {} [{}] requires {} ({from}), but {} [{}] set {} and returned at line {}, \
                 before [{}] was invoked at line {}; no other write of {} can be placed between them: \
                 the value read was overwritten.",
                who(r),
                idx(r),
                short(v),
                who(w),
                idx(w),
                short(u),
                ret_line(w, h),
                idx(r),
                op_line(r, h),
                short(v)
            ));
        }
    }
    None
}

pub(crate) fn coll_why(
    kind: ModelKind,
    min: &[&Operation],
    all: &[&Operation],
    _h: Option<&History>,
) -> Option<String> {
    let insert = if kind == ModelKind::Set {
        "add"
    } else {
        "enqueue"
    };
    if let [only] = min
        && only.outcome == Outcome::Ok
        && only.f == "dequeue"
        && !only.value.is_null()
    {
        let ever = all
            .iter()
            .any(|o| o.f == insert && o.outcome != Outcome::Fail && o.value == only.value);
        return Some(if ever {
            format!(
                "{} returned {}, which no {insert} of this key can supply at that point.",
                who(only),
                short(&only.value)
            )
        } else {
            format!(
                "{} returned {}, which was never enqueued.",
                who(only),
                short(&only.value)
            )
        });
    }
    None
}
