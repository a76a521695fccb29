//! The sequential-consistency search: a depth-first walk over *frontiers*
//! (how far each process has got in its own program order) and the model
//! state of every object, memoising the (frontier, states) configurations
//! from which no completion exists.
//!
//! Lamport's definition (1979): the result is as if all operations ran in
//! some total order in which each process's operations appear in the order
//! it issued them. So a step is "let process `p` run its next operation";
//! there is no real-time constraint, and because processes span keys the
//! objects are searched together (sequential consistency is not local:
//! Herlihy & Wing 1990, §3.3).
//!
//! Three prunings, each sound (never loses a completion):
//! - **Memo** (as WGL's cache): a configuration already proved dead is
//!   not explored again. Exact keys, never hashes alone, so a collision
//!   cannot turn a live configuration into a false `invalid`.
//! - **Observers first**: when a process's next op is pure (a read) and
//!   legal now, it is the only move tried. Any completion that runs it
//!   later can run it now instead: it changes no state, and every op of
//!   its process before it has run.
//! - **Reads-from** (unique written values make it bite): after a step
//!   changes object `k`, every process's first pending `ok` op on `k` must
//!   still be reachable, i.e. [`Model::may_reach`] from the new state with
//!   the pending ops of the *other* processes on `k` (only they can run
//!   before it). A write that overwrites the value a pending read needs,
//!   when no pending write can restore it, is cut at once.

use super::{Flat, Outcome};
use crate::linear::FxHasher;
use crate::model::Model;
use crate::verdict::Verdict;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::time::Instant;

const NONE: u32 = u32::MAX;
/// The reads-from check walks every pending op of the object; above this
/// many it is skipped (skipping a pruning is always sound).
const REACH_SCAN_CAP: usize = 512;
/// Clock and memory are checked every this many steps.
const CHECK_EVERY: u64 = 1024;

/// Time and memory limits of one search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub deadline: Option<Instant>,
    pub mem_limit: usize,
}

type DeadSet<S> = HashSet<(Box<[u32]>, Box<[S]>), BuildHasherDefault<FxHasher>>;

/// A move: process `proc` ran (or, for an optional op, skipped) its next
/// op; `prev` is the object's state before, to undo.
struct Move<S> {
    proc: u32,
    prev: Option<S>,
}

struct Frame<S> {
    moved: Option<Move<S>>,
    cands: Vec<(u32, bool)>,
    next: usize,
}

/// Searches `flat` with the ops in `relaxed` made optional and free of
/// program order (each its own process): used to shrink a counterexample.
/// `None` in `relaxed` means no op is relaxed.
///
/// Long on purpose: one loop over an explicit stack (histories are deeper
/// than the thread's stack), whose move, undo and memo share ten pieces of
/// state that helpers would each have to take.
pub(crate) fn search<M: Model>(
    flat: &mut Flat<M>,
    relaxed: Option<&[bool]>,
    limits: Limits,
) -> Outcome {
    let Flat {
        models,
        inits,
        ops,
        procs: flat_procs,
        ..
    } = flat;
    let ops: &[super::FlatOp<M::Op>] = ops;
    let n = ops.len();
    let k_count = inits.len();
    let is_relaxed = |i: usize| relaxed.is_some_and(|r| r[i]);
    // Processes: program order minus relaxed ops; each relaxed op, and
    // each `info` op that is not its process's last, on its own.
    let mut procs: Vec<Vec<u32>> = Vec::new();
    let mut optional = vec![false; n];
    for p in flat_procs.iter() {
        let mut mine = Vec::new();
        let last = p.len().saturating_sub(1);
        for (pos, &i) in p.iter().enumerate() {
            let o = &ops[i as usize];
            if is_relaxed(i as usize) && models[o.key as usize].is_pure(&o.op) {
                // A relaxed observer may run or not and changes nothing:
                // leaving it out is the same (and saves a branch per step).
                optional[i as usize] = true;
            } else if is_relaxed(i as usize) || (!o.ok && pos != last) {
                optional[i as usize] = true;
                procs.push(vec![i]);
            } else {
                optional[i as usize] = !o.ok;
                mine.push(i);
            }
        }
        if !mine.is_empty() {
            procs.push(mine);
        }
    }
    let p_count = procs.len();
    // next_same[i]: the next op after i in its process on the same object.
    let mut next_same = vec![NONE; n];
    let mut first_on = vec![NONE; p_count * k_count];
    for (q, p) in procs.iter().enumerate() {
        for (pos, &i) in p.iter().enumerate().rev() {
            let k = ops[i as usize].key as usize;
            next_same[i as usize] = first_on[q * k_count + k];
            first_on[q * k_count + k] = i;
            let _ = pos;
        }
    }
    let mut left_ok = (0..n).filter(|&i| !optional[i]).count();
    let mut frontier = vec![0u32; p_count];
    let mut states: Vec<M::State> = inits.clone();
    let mut dead: DeadSet<M::State> = DeadSet::default();
    let mut mem = 0usize;
    let mut steps = 0u64;
    let cands = |models: &mut Vec<M>, states: &[M::State], frontier: &[u32]| {
        let mut c: Vec<(u32, bool)> = Vec::new();
        let mut heads: Vec<(usize, u32)> = Vec::new();
        for q in 0..p_count {
            if let Some(&i) = procs[q].get(frontier[q] as usize) {
                let o = &ops[i as usize];
                let m = &mut models[o.key as usize];
                if m.is_pure(&o.op) && m.step(&states[o.key as usize], &o.op).is_some() {
                    return vec![(q as u32, true)];
                }
                heads.push((o.call, q as u32));
            }
        }
        // Real-time order first: a linearizable history is found at once.
        heads.sort_unstable();
        for (_, q) in heads {
            c.push((q, true));
            if optional[procs[q as usize][frontier[q as usize] as usize] as usize] {
                c.push((q, false));
            }
        }
        c
    };

    let first = cands(models, &states, &frontier);
    let mut stack: Vec<Frame<M::State>> = vec![Frame {
        moved: None,
        cands: first,
        next: 0,
    }];
    let mut order: Vec<usize> = Vec::new();
    loop {
        if left_ok == 0 {
            return Outcome {
                verdict: Some(Verdict::Valid),
                reason: None,
                states: dead.len() as u64,
                order,
            };
        }
        steps += 1;
        if steps.is_multiple_of(CHECK_EVERY) {
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                return Outcome::unknown("time limit reached", dead.len());
            }
            if mem > limits.mem_limit {
                return Outcome::unknown("memory limit reached", dead.len());
            }
        }
        let Some(top) = stack.last_mut() else {
            return Outcome {
                verdict: Some(Verdict::Invalid),
                reason: None,
                states: dead.len() as u64,
                order,
            };
        };
        if top.next >= top.cands.len() {
            // Exhausted: this configuration is dead; undo the move into it.
            let f = stack.pop().map(|f| f.moved);
            let key = (frontier.clone().into_boxed_slice(), states.clone().into());
            mem += p_count * 4 + k_count * std::mem::size_of::<M::State>() + 64;
            mem += states.iter().map(M::heap_bytes).sum::<usize>();
            dead.insert(key);
            if let Some(Some(mv)) = f {
                let q = mv.proc as usize;
                frontier[q] -= 1;
                let i = procs[q][frontier[q] as usize] as usize;
                let k = ops[i].key as usize;
                first_on[q * k_count + k] = i as u32;
                if let Some(prev) = mv.prev {
                    states[k] = prev;
                    order.pop();
                }
                if !optional[i] {
                    left_ok += 1;
                }
            }
            continue;
        }
        let (q, apply) = top.cands[top.next];
        top.next += 1;
        let q = q as usize;
        let i = procs[q][frontier[q] as usize] as usize;
        let k = ops[i].key as usize;
        let prev = if apply {
            let Some(next) = models[k].step(&states[k], &ops[i].op) else {
                continue;
            };
            Some(std::mem::replace(&mut states[k], next))
        } else {
            None
        };
        frontier[q] += 1;
        first_on[q * k_count + k] = next_same[i];
        let undo = |frontier: &mut Vec<u32>,
                    first_on: &mut Vec<u32>,
                    states: &mut Vec<M::State>,
                    prev: Option<M::State>| {
            frontier[q] -= 1;
            first_on[q * k_count + k] = i as u32;
            if let Some(p) = prev {
                states[k] = p;
            }
        };
        let changed = prev.as_ref().is_some_and(|p| *p != states[k]);
        let pruned = changed
            && !reads_from_ok(
                models, ops, k_count, &procs, &optional, &first_on, &next_same, &states, k,
            );
        if pruned
            || dead.contains(&(
                frontier.clone().into_boxed_slice(),
                states.clone().into_boxed_slice(),
            ))
        {
            undo(&mut frontier, &mut first_on, &mut states, prev);
            continue;
        }
        if !optional[i] {
            left_ok -= 1;
        }
        if prev.is_some() {
            order.push(ops[i].id);
        }
        let c = cands(models, &states, &frontier);
        stack.push(Frame {
            moved: Some(Move {
                proc: q as u32,
                prev,
            }),
            cands: c,
            next: 0,
        });
    }
}

/// After object `k` changed: can every process's first pending required
/// op on `k` still become legal, given the other processes' pending ops
/// on `k`? (See the module docs; `true` when unsure.)
#[allow(clippy::too_many_arguments)]
fn reads_from_ok<M: Model>(
    models: &mut [M],
    ops: &[super::FlatOp<M::Op>],
    k_count: usize,
    procs: &[Vec<u32>],
    optional: &[bool],
    first_on: &[u32],
    next_same: &[u32],
    states: &[M::State],
    k: usize,
) -> bool {
    let mut pending: Vec<(u32, u32)> = Vec::new();
    for q in 0..procs.len() {
        let mut i = first_on[q * k_count + k];
        while i != NONE {
            pending.push((q as u32, i));
            if pending.len() > REACH_SCAN_CAP {
                return true;
            }
            i = next_same[i as usize];
        }
    }
    let m = &mut models[k];
    for q in 0..procs.len() {
        let t = first_on[q * k_count + k];
        if t == NONE || optional[t as usize] {
            continue;
        }
        let others = pending
            .iter()
            .filter(|(r, _)| *r as usize != q)
            .map(|&(_, j)| &ops[j as usize].op);
        if !m.may_reach(&states[k], &ops[t as usize].op, others) {
            return false;
        }
    }
    true
}
