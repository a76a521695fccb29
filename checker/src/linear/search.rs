//! The Wing & Gong / Lowe (WGL) search, as in Porcupine: a doubly linked
//! list of call and return entries; linearizing an op *lifts* its entries
//! out of the list, backtracking *unlifts* them; a memo of (linearized
//! bitset, model state) prunes configurations already explored.
//!
//! Unknown (`info`) operations return "at infinity". They live in a second
//! list holding only their calls, and the search succeeds as soon as every
//! `ok` operation is linearized (the remaining unknown ones never took
//! effect). At each configuration the candidates are the calls that precede
//! the first pending return; `ok` candidates are tried before unknown ones,
//! so an unknown op is linearized just in time, when something needs its
//! effect (Lowe's just-in-time linearization).

use super::cache::{Cache, hash_of, mix};
use crate::model::{CompiledOp, Model};
use crate::verdict::Verdict;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NIL: u32 = u32::MAX;
const HEAD_OK: u32 = 0;
const HEAD_INFO: u32 = 1;
/// Budget checks happen every this many search steps.
const CHECK_EVERY: u64 = 4096;

/// Limits shared by all keys of one check.
pub(crate) struct Budget<'a> {
    pub deadline: Option<Instant>,
    pub time_limit: Option<Duration>,
    /// Set when any key runs out of time: the others stop promptly.
    pub cancel: &'a AtomicBool,
    pub mem_used: &'a AtomicUsize,
    pub mem_limit: usize,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SearchOut {
    pub verdict: Option<Verdict>,
    pub reason: Option<String>,
    pub states: u64,
    pub longest: Vec<usize>,
    pub failing: Option<usize>,
    pub tried: Vec<usize>,
    pub final_state: Option<String>,
}

#[derive(Clone, Copy)]
struct Node {
    /// Index into the compiled ops (NIL for heads).
    op: u32,
    is_call: bool,
    pos: usize,
    /// Call -> its return entry (NIL for unknown ops).
    ret: u32,
    prev: u32,
    next: u32,
}

struct Frame<S> {
    node: u32,
    old: S,
    /// The first pending return when this op was linearized: unknown ops
    /// are candidates only while their call precedes it.
    bound: u32,
}

fn unlink(n: &mut [Node], x: u32) {
    let Node { prev, next, .. } = n[x as usize];
    n[prev as usize].next = next;
    if next != NIL {
        n[next as usize].prev = prev;
    }
}

fn relink(n: &mut [Node], x: u32) {
    let Node { prev, next, .. } = n[x as usize];
    n[prev as usize].next = x;
    if next != NIL {
        n[next as usize].prev = x;
    }
}

fn splitmix(i: u64) -> u64 {
    mix(i
        .wrapping_add(0x9e3779b97f4a7c15)
        .wrapping_mul(0x9e3779b97f4a7c15))
}

pub(crate) fn search<M: Model>(
    mut model: M,
    init: M::State,
    ops: &[CompiledOp<M::Op>],
    budget: &Budget,
) -> SearchOut {
    let n = ops.len();
    let n_ok = ops.iter().filter(|o| o.ok).count();
    let mut out = SearchOut::default();
    if n_ok == 0 {
        out.verdict = Some(Verdict::Valid);
        return out;
    }

    // Build the two entry lists, each sorted by event position; calls sort
    // before returns at equal positions so such ops count as concurrent.
    let mut nodes: Vec<Node> = Vec::with_capacity(2 * n + 2);
    for _ in 0..2 {
        nodes.push(Node {
            op: NIL,
            is_call: false,
            pos: 0,
            ret: NIL,
            prev: NIL,
            next: NIL,
        });
    }
    let mut ok_entries: Vec<(usize, bool, u32)> = Vec::with_capacity(2 * n_ok);
    let mut info_entries: Vec<(usize, u32)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        if o.ok {
            ok_entries.push((o.call, false, i as u32));
            ok_entries.push((o.ret, true, i as u32));
        } else {
            info_entries.push((o.call, i as u32));
        }
    }
    ok_entries.sort_unstable();
    info_entries.sort_unstable();
    let mut call_node = vec![NIL; n];
    let mut last = HEAD_OK;
    for &(pos, is_ret, op) in &ok_entries {
        let id = nodes.len() as u32;
        nodes.push(Node {
            op,
            is_call: !is_ret,
            pos,
            ret: NIL,
            prev: last,
            next: NIL,
        });
        nodes[last as usize].next = id;
        last = id;
        if is_ret {
            nodes[call_node[op as usize] as usize].ret = id;
        } else {
            call_node[op as usize] = id;
        }
    }
    let mut last = HEAD_INFO;
    for &(pos, op) in &info_entries {
        let id = nodes.len() as u32;
        nodes.push(Node {
            op,
            is_call: true,
            pos,
            ret: NIL,
            prev: last,
            next: NIL,
        });
        nodes[last as usize].next = id;
        last = id;
    }

    // Zobrist keys: the bitset's hash is updated in O(1) per lift.
    let zob: Vec<u64> = (0..n as u64).map(splitmix).collect();
    let words = n.div_ceil(64);
    let mut bits = vec![0u64; words];
    let mut zh = 0u64;
    let mut cache: Cache<M::State> = Cache::new(words);
    let mut mem_reported = 0usize;
    let mut state = init;
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut ok_left = n_ok;
    let mut steps = 0u64;
    let mut best_len = 0usize;
    let mut have_best = false;

    // Cursor: in the ok list (phase A) or the info list (phase B).
    let mut cur = nodes[HEAD_OK as usize].next;
    let mut in_info = false;
    let mut bound = NIL;
    let stop = |out: &mut SearchOut, reason: String| {
        out.verdict = Some(Verdict::Unknown);
        out.reason = Some(reason);
    };

    loop {
        steps += 1;
        if steps.is_multiple_of(CHECK_EVERY) {
            let bytes = cache.bytes() + stack.capacity() * std::mem::size_of::<Frame<M::State>>();
            if bytes > mem_reported {
                budget
                    .mem_used
                    .fetch_add(bytes - mem_reported, Ordering::Relaxed);
            } else {
                budget
                    .mem_used
                    .fetch_sub(mem_reported - bytes, Ordering::Relaxed);
            }
            mem_reported = bytes;
            let states = cache.len();
            if budget.cancel.load(Ordering::Relaxed) {
                stop(
                    &mut out,
                    format!(
                        "cancelled after {states} states: the time limit ran out on another key"
                    ),
                );
                break;
            }
            if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                budget.cancel.store(true, Ordering::Relaxed);
                let t = budget.time_limit.map_or(0.0, |t| t.as_secs_f64());
                stop(
                    &mut out,
                    format!("time limit {t} s reached after {states} states"),
                );
                break;
            }
            if budget.mem_used.load(Ordering::Relaxed) > budget.mem_limit {
                stop(
                    &mut out,
                    format!(
                        "memory limit {} MiB reached after {states} states",
                        budget.mem_limit >> 20
                    ),
                );
                break;
            }
        }

        // Find the next candidate, or decide to backtrack.
        let candidate = if !in_info {
            if cur != NIL && nodes[cur as usize].is_call {
                Some(cur)
            } else {
                // The first pending return: switch to unknown ops whose call
                // precedes it.
                bound = cur;
                in_info = true;
                cur = nodes[HEAD_INFO as usize].next;
                continue;
            }
        } else {
            let limit = if bound == NIL {
                usize::MAX
            } else {
                nodes[bound as usize].pos
            };
            if cur != NIL && nodes[cur as usize].pos < limit {
                Some(cur)
            } else {
                None
            }
        };

        if let Some(c) = candidate {
            let oi = nodes[c as usize].op as usize;
            if let Some(next_state) = model.step(&state, &ops[oi].op) {
                bits[oi / 64] |= 1 << (oi % 64);
                zh ^= zob[oi];
                let h = mix(zh ^ hash_of(&next_state));
                if cache.insert(h, &bits, &next_state, M::heap_bytes(&next_state)) {
                    let old = std::mem::replace(&mut state, next_state);
                    stack.push(Frame {
                        node: c,
                        old,
                        bound,
                    });
                    unlink(&mut nodes, c);
                    if ops[oi].ok {
                        let r = nodes[c as usize].ret;
                        unlink(&mut nodes, r);
                        ok_left -= 1;
                        if ok_left == 0 {
                            out.verdict = Some(Verdict::Valid);
                            break;
                        }
                    }
                    cur = nodes[HEAD_OK as usize].next;
                    in_info = false;
                    continue;
                }
                bits[oi / 64] &= !(1 << (oi % 64));
                zh ^= zob[oi];
            }
            cur = nodes[c as usize].next;
            continue;
        }

        // Dead end: every candidate is illegal or leads to explored states.
        if !have_best || stack.len() > best_len {
            have_best = true;
            best_len = stack.len();
            out.longest = stack
                .iter()
                .map(|f| ops[nodes[f.node as usize].op as usize].id)
                .collect();
            out.final_state = Some(model.describe(&state));
            let limit = if bound == NIL {
                usize::MAX
            } else {
                nodes[bound as usize].pos
            };
            out.failing = (bound != NIL).then(|| ops[nodes[bound as usize].op as usize].id);
            out.tried.clear();
            let mut x = nodes[HEAD_OK as usize].next;
            while x != NIL && nodes[x as usize].is_call {
                out.tried.push(ops[nodes[x as usize].op as usize].id);
                x = nodes[x as usize].next;
            }
            let mut x = nodes[HEAD_INFO as usize].next;
            while x != NIL && nodes[x as usize].pos < limit {
                out.tried.push(ops[nodes[x as usize].op as usize].id);
                x = nodes[x as usize].next;
            }
        }
        let Some(f) = stack.pop() else {
            out.verdict = Some(Verdict::Invalid);
            break;
        };
        let c = f.node;
        let oi = nodes[c as usize].op as usize;
        if ops[oi].ok {
            let r = nodes[c as usize].ret;
            relink(&mut nodes, r);
            ok_left += 1;
        }
        relink(&mut nodes, c);
        bits[oi / 64] &= !(1 << (oi % 64));
        zh ^= zob[oi];
        state = f.old;
        cur = nodes[c as usize].next;
        in_info = !ops[oi].ok;
        bound = f.bound;
    }
    budget.mem_used.fetch_sub(mem_reported, Ordering::Relaxed);
    out.states = cache.len() as u64;
    out
}
