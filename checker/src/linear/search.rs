//! The Wing & Gong / Lowe (WGL) search, as in Porcupine: a doubly linked
//! list of call and return entries; linearizing an op *lifts* its entries
//! out of the list, backtracking *unlifts* them; a memo of (linearized
//! bitset, model state) prunes configurations already explored.
//!
//! Unknown (`info`) operations return "at infinity". They live in a second
//! list holding only their calls, and the search succeeds as soon as every
//! `ok` operation is linearized (the remaining unknown ones never took
//! effect).
//!
//! At each configuration the candidates are the calls that precede the
//! first pending return. They are tried in order of return, the op that
//! must be linearized soonest first (Lowe's just-in-time linearization),
//! then the unknown ops, so an unknown op is linearized only when nothing
//! else works, i.e. when something needs its effect.

use super::cache::{Cache, FxHasher, hash_of, mix};
use crate::model::{CompiledOp, Model};
use crate::verdict::Verdict;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
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
    /// Set when any key runs out of time (1) or, unless exhaustive, is not
    /// linearizable (2): the others stop promptly.
    pub cancel: &'a AtomicU8,
    pub exhaustive: bool,
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
    /// Call -> position of its return (MAX for unknown ops).
    rpos: usize,
    prev: u32,
    next: u32,
}

/// One level of the depth-first search: the configuration reached by
/// linearizing `node`, and its candidates `cands[start..end]`.
struct Level<S> {
    node: u32,
    /// State before `node` was linearized.
    old: S,
    start: usize,
    next: usize,
    end: usize,
    /// The first pending return (the op that can't be passed), or NIL.
    bound: u32,
    /// Next unknown op to try once the ok candidates are exhausted; unknown
    /// ops are walked lazily, since thousands of them may be pending.
    info: u32,
    /// Unknown ops are candidates while their call precedes this.
    limit: usize,
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

/// Entries of the list at `head` positioned before `limit`.
fn walk(nodes: &[Node], head: u32, limit: usize) -> impl Iterator<Item = u32> + '_ {
    let first = Some(nodes[head as usize].next).filter(|&x| x != NIL);
    std::iter::successors(first, move |&x| {
        Some(nodes[x as usize].next).filter(|&n| n != NIL)
    })
    .take_while(move |&x| nodes[x as usize].pos < limit)
}

fn splitmix(i: u64) -> u64 {
    mix(i
        .wrapping_add(0x9e3779b97f4a7c15)
        .wrapping_mul(0x9e3779b97f4a7c15))
}

pub(crate) fn search<M: Model>(
    model: &mut M,
    init: M::State,
    ops: &[CompiledOp<M::Op>],
    budget: &Budget,
) -> SearchOut {
    let n = ops.len();
    let mut out = SearchOut::default();
    // Bit index of each op within its own bitset (ok or info).
    let mut bit = vec![0usize; n];
    let (mut n_ok, mut n_info) = (0usize, 0usize);
    for (i, o) in ops.iter().enumerate() {
        if o.ok {
            bit[i] = n_ok;
            n_ok += 1;
        } else {
            bit[i] = n_info;
            n_info += 1;
        }
    }
    if n_ok == 0 {
        out.verdict = Some(Verdict::Valid);
        return out;
    }

    // Build the two entry lists, each sorted by event position; calls sort
    // before returns at equal positions so such ops count as concurrent.
    let blank = Node {
        op: NIL,
        is_call: false,
        pos: 0,
        ret: NIL,
        rpos: usize::MAX,
        prev: NIL,
        next: NIL,
    };
    let mut nodes: Vec<Node> = vec![blank; 2];
    nodes.reserve(2 * n);
    let mut ok_entries: Vec<(usize, bool, u32)> = Vec::with_capacity(2 * n_ok);
    let mut info_entries: Vec<(usize, u32)> = Vec::with_capacity(n_info);
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
            prev: last,
            ..blank
        });
        nodes[last as usize].next = id;
        last = id;
        if is_ret {
            let c = call_node[op as usize] as usize;
            nodes[c].ret = id;
            nodes[c].rpos = pos;
        } else {
            call_node[op as usize] = id;
        }
    }
    // Unknown ops with equal compiled ops differ only in when they were
    // invoked, so the earliest-invoked unused one can stand in for any
    // other (it may take effect wherever a later one may, and neither has
    // to). Only that one is a candidate: the used ops of a class are always
    // its earliest, which turns 2^k subsets of k equal writes into k + 1.
    let mut class_of = vec![0u32; n];
    let mut members: Vec<Vec<u32>> = Vec::new();
    {
        let mut ids: HashMap<&M::Op, u32, BuildHasherDefault<FxHasher>> = HashMap::default();
        for &(_, op) in &info_entries {
            let next = members.len() as u32;
            let cl = *ids.entry(&ops[op as usize].op).or_insert(next);
            if cl == next {
                members.push(Vec::new());
            }
            members[cl as usize].push(op);
            class_of[op as usize] = cl;
        }
    }
    let mut used = vec![0usize; members.len()];
    let mut last = HEAD_INFO;
    for &(pos, op) in &info_entries {
        let id = nodes.len() as u32;
        nodes.push(Node {
            op,
            is_call: true,
            pos,
            prev: last,
            ..blank
        });
        nodes[last as usize].next = id;
        last = id;
    }

    // Zobrist keys: the ok bitset's hash is updated in O(1) per lift.
    let zob: Vec<u64> = (0..n as u64).map(splitmix).collect();
    let mut ok_bits = vec![0u64; n_ok.div_ceil(64)];
    let mut info_bits = vec![0u64; n_info.div_ceil(64)];
    let mut zh = 0u64;
    let mut cache: Cache<M::State> = Cache::new(ok_bits.len(), info_bits.len());
    let mut mem_reported = 0usize;
    let mut state = init;
    let mut ok_left = n_ok;
    let mut steps = 0u64;
    let mut best_len = 0usize;
    let mut have_best = false;
    let mut cands: Vec<u32> = Vec::new();
    let mut levels: Vec<Level<M::State>> = Vec::new();

    // The ok candidates of the current configuration, pushed onto `cands`;
    // returns the first pending return (NIL if none).
    let candidates = |nodes: &[Node], cands: &mut Vec<u32>| -> u32 {
        let start = cands.len();
        let mut x = nodes[HEAD_OK as usize].next;
        while x != NIL && nodes[x as usize].is_call {
            cands.push(x);
            x = nodes[x as usize].next;
        }
        cands[start..].sort_unstable_by_key(|&c| nodes[c as usize].rpos);
        x
    };
    let limit_of = |nodes: &[Node], bound: u32| {
        if bound == NIL {
            usize::MAX
        } else {
            nodes[bound as usize].pos
        }
    };
    cache.insert(mix(hash_of(&state)), &ok_bits, &info_bits, &state, 0);
    let bound = candidates(&nodes, &mut cands);
    levels.push(Level {
        node: NIL,
        old: state.clone(),
        start: 0,
        next: 0,
        end: cands.len(),
        bound,
        info: nodes[HEAD_INFO as usize].next,
        limit: limit_of(&nodes, bound),
    });
    let stop = |out: &mut SearchOut, reason: String| {
        out.verdict = Some(Verdict::Unknown);
        out.reason = Some(reason);
    };

    loop {
        steps += 1;
        if steps.is_multiple_of(CHECK_EVERY) {
            let bytes = cache.bytes()
                + levels.capacity() * std::mem::size_of::<Level<M::State>>()
                + cands.capacity() * 4;
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
            match budget.cancel.load(Ordering::Relaxed) {
                0 => {}
                1 => {
                    stop(
                        &mut out,
                        format!("cancelled after {states} states: the time limit ran out"),
                    );
                    break;
                }
                _ => {
                    stop(
                        &mut out,
                        format!("cancelled after {states} states: another key is not linearizable"),
                    );
                    break;
                }
            }
            if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                budget.cancel.store(1, Ordering::Relaxed);
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

        let Some(lv) = levels.last_mut() else {
            out.verdict = Some(Verdict::Invalid);
            break;
        };
        let pick = if lv.next < lv.end {
            lv.next += 1;
            Some(cands[lv.next - 1])
        } else if lv.info != NIL && nodes[lv.info as usize].pos < lv.limit {
            let c = lv.info;
            lv.info = nodes[c as usize].next;
            let oi = nodes[c as usize].op;
            let cl = class_of[oi as usize] as usize;
            if members[cl][used[cl]] != oi {
                // A class-mate invoked earlier is still unused.
                continue;
            }
            Some(c)
        } else {
            None
        };
        if let Some(c) = pick {
            let oi = nodes[c as usize].op as usize;
            let ok = ops[oi].ok;
            let Some(next_state) = model.step(&state, &ops[oi].op) else {
                continue;
            };
            let (bits, b) = if ok {
                (&mut ok_bits, bit[oi])
            } else {
                (&mut info_bits, bit[oi])
            };
            bits[b / 64] |= 1 << (b % 64);
            let zh_next = if ok { zh ^ zob[oi] } else { zh };
            let h = mix(zh_next ^ hash_of(&next_state));
            if !cache.insert(
                h,
                &ok_bits,
                &info_bits,
                &next_state,
                M::heap_bytes(&next_state),
            ) {
                let bits = if ok { &mut ok_bits } else { &mut info_bits };
                bits[b / 64] &= !(1 << (b % 64));
                continue;
            }
            zh = zh_next;
            let old = std::mem::replace(&mut state, next_state);
            unlink(&mut nodes, c);
            if !ok {
                used[class_of[oi] as usize] += 1;
            }
            if ok {
                let r = nodes[c as usize].ret;
                unlink(&mut nodes, r);
                ok_left -= 1;
                if ok_left == 0 {
                    out.verdict = Some(Verdict::Valid);
                    break;
                }
            }
            let start = cands.len();
            let bound = candidates(&nodes, &mut cands);
            // The op returning first must go before anything after its
            // return: if no mix of the candidates can make it legal, this
            // configuration is a dead end.
            // `only`: this level tries exactly cands[start..end], no
            // unknown ops (pruned, or committed to an observer).
            let mut only = false;
            let limit = limit_of(&nodes, bound);
            let end = if bound != NIL
                && !model.may_reach(
                    &state,
                    &ops[nodes[bound as usize].op as usize].op,
                    cands[start..]
                        .iter()
                        .copied()
                        .chain(walk(&nodes, HEAD_INFO, limit))
                        .filter(|&x| x != bound)
                        .map(|x| &ops[nodes[x as usize].op as usize].op),
                ) {
                only = true;
                start
            } else {
                // Observers: a legal one goes now, with no alternatives (see
                // `is_pure`); an illegal one that no op called before its
                // return can make legal dooms this configuration.
                let mut end = cands.len();
                for i in start..cands.len() {
                    let x = cands[i];
                    let o = &ops[nodes[x as usize].op as usize];
                    if !o.ok || !model.is_pure(&o.op) {
                        continue;
                    }
                    if model.step(&state, &o.op).is_some() {
                        cands.truncate(start);
                        cands.push(x);
                        end = cands.len();
                        only = true;
                        break;
                    }
                    let limit = nodes[x as usize].rpos;
                    let others = walk(&nodes, HEAD_OK, limit)
                        .chain(walk(&nodes, HEAD_INFO, limit))
                        .filter(|&y| y != x && nodes[y as usize].is_call)
                        .map(|y| &ops[nodes[y as usize].op as usize].op);
                    if !model.may_reach(&state, &o.op, others) {
                        end = start;
                        only = true;
                        break;
                    }
                }
                end
            };
            levels.push(Level {
                node: c,
                old,
                start,
                next: start,
                end,
                bound,
                info: if only {
                    NIL
                } else {
                    nodes[HEAD_INFO as usize].next
                },
                limit,
            });
            continue;
        }

        // Dead end: every candidate is illegal or leads to explored states.
        let depth = levels.len() - 1;
        if !have_best || depth > best_len {
            have_best = true;
            best_len = depth;
            out.longest = levels[1..]
                .iter()
                .map(|l| ops[nodes[l.node as usize].op as usize].id)
                .collect();
            out.final_state = Some(model.describe(&state));
            let lv = &levels[depth];
            out.failing = (lv.bound != NIL).then(|| ops[nodes[lv.bound as usize].op as usize].id);
            out.tried = cands[lv.start..]
                .iter()
                .copied()
                .chain(walk(&nodes, HEAD_INFO, lv.limit))
                .map(|c| ops[nodes[c as usize].op as usize].id)
                .collect();
        }
        let Some(lv) = levels.pop() else { break };
        cands.truncate(lv.start);
        if lv.node == NIL {
            out.verdict = Some(Verdict::Invalid);
            break;
        }
        let c = lv.node;
        let oi = nodes[c as usize].op as usize;
        let b = bit[oi];
        if ops[oi].ok {
            let r = nodes[c as usize].ret;
            relink(&mut nodes, r);
            ok_left += 1;
            ok_bits[b / 64] &= !(1 << (b % 64));
            zh ^= zob[oi];
        } else {
            info_bits[b / 64] &= !(1 << (b % 64));
            used[class_of[oi] as usize] -= 1;
        }
        relink(&mut nodes, c);
        state = lv.old;
    }
    if out.verdict == Some(Verdict::Invalid) && !budget.exhaustive {
        let _ = budget
            .cancel
            .compare_exchange(0, 2, Ordering::Relaxed, Ordering::Relaxed);
    }
    budget.mem_used.fetch_sub(mem_reported, Ordering::Relaxed);
    out.states = cache.len() as u64;
    out
}
