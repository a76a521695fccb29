//! The transaction dependency graph: a compressed (CSR) adjacency over
//! transaction indices, each edge carrying a bit set of relationship kinds.
//! Vec-indexed and built in one pass from a flat edge buffer, so there is no
//! allocation per edge or per vertex.

use super::{Prepared, TxnState};
use std::time::Instant;

/// Relationship kinds, as bits so one edge can carry several.
pub const WW: u8 = 1;
pub const WR: u8 = 2;
pub const RW: u8 = 4;
pub const PROCESS: u8 = 8;
pub const REALTIME: u8 = 16;
pub const DATA: u8 = WW | WR | RW;
pub const ALL: u8 = DATA | PROCESS | REALTIME;

/// Edges gathered before building the graph.
#[derive(Default)]
pub struct EdgeBuf {
    pub edges: Vec<(u32, u32, u8)>,
}

impl EdgeBuf {
    /// Adds `a → b`; self-edges carry no ordering information and are dropped.
    #[inline]
    pub fn push(&mut self, a: u32, b: u32, kind: u8) {
        if a != b {
            self.edges.push((a, b, kind));
        }
    }
}

/// A directed graph in CSR form: out-edges of `v` are
/// `targets[offsets[v]..offsets[v+1]]`, with kinds in the parallel `kinds`.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub offsets: Vec<usize>,
    pub targets: Vec<u32>,
    pub kinds: Vec<u8>,
}

impl Graph {
    /// Builds from an edge buffer by counting sort; parallel edges are merged
    /// into one edge whose kind is the union.
    pub fn build(n: usize, buf: EdgeBuf) -> Graph {
        Graph::build_by(n, buf, None).unwrap_or_default()
    }

    /// As [`Graph::build`], or `None` if `deadline` passes first (checked
    /// every 16,384 vertices).
    pub fn build_by(n: usize, buf: EdgeBuf, deadline: Option<Instant>) -> Option<Graph> {
        let mut offsets = vec![0usize; n + 1];
        for &(a, _, _) in &buf.edges {
            offsets[a as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let m = buf.edges.len();
        let mut fill = offsets.clone();
        let mut packed = vec![0u64; m];
        for (a, b, k) in buf.edges {
            let slot = &mut fill[a as usize];
            packed[*slot] = ((b as u64) << 8) | k as u64;
            *slot += 1;
        }
        // Per-vertex sort and merge of duplicates (out-degrees are small).
        let mut targets = Vec::with_capacity(m);
        let mut kinds = Vec::with_capacity(m);
        let mut new_offsets = vec![0usize; n + 1];
        for v in 0..n {
            if v.is_multiple_of(16384) && passed(deadline) {
                return None;
            }
            let s = &mut packed[offsets[v]..offsets[v + 1]];
            s.sort_unstable();
            let start = targets.len();
            for &p in s.iter() {
                let b = (p >> 8) as u32;
                let k = (p & 0xff) as u8;
                if targets.len() > start && *targets.last().unwrap_or(&u32::MAX) == b {
                    if let Some(last) = kinds.last_mut() {
                        *last |= k;
                    }
                } else {
                    targets.push(b);
                    kinds.push(k);
                }
            }
            new_offsets[v + 1] = targets.len();
        }
        Some(Graph {
            offsets: new_offsets,
            targets,
            kinds,
        })
    }

    pub fn vertex_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// Out-edges of `v` as `(target, kinds)`.
    pub fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let r = self.offsets[v as usize]..self.offsets[v as usize + 1];
        self.targets[r.clone()]
            .iter()
            .copied()
            .zip(self.kinds[r].iter().copied())
    }

    /// The kinds of edge `a → b`, or 0.
    pub fn kinds_between(&self, a: u32, b: u32) -> u8 {
        self.out(a).find(|&(t, _)| t == b).map_or(0, |(_, k)| k)
    }

    /// The subgraph induced by `nodes`, keeping edges with a kind in `mask`
    /// (kinds are narrowed to `mask`). Vertices are renumbered `0..nodes.len()`;
    /// `local` is a scratch array of the parent's size, all `u32::MAX`, left so.
    pub fn induced(&self, nodes: &[u32], mask: u8, local: &mut [u32]) -> Graph {
        for (i, &v) in nodes.iter().enumerate() {
            local[v as usize] = i as u32;
        }
        let mut g = Graph {
            offsets: Vec::with_capacity(nodes.len() + 1),
            targets: Vec::new(),
            kinds: Vec::new(),
        };
        g.offsets.push(0);
        for &v in nodes {
            for (t, k) in self.out(v) {
                let lt = local[t as usize];
                if lt != u32::MAX && k & mask != 0 {
                    g.targets.push(lt);
                    g.kinds.push(k & mask);
                }
            }
            g.offsets.push(g.targets.len());
        }
        for &v in nodes {
            local[v as usize] = u32::MAX;
        }
        g
    }

    /// Strongly connected components with more than one vertex (there are no
    /// self-edges), by iterative Tarjan.
    pub fn sccs(&self) -> Vec<Vec<u32>> {
        tarjan(&self.offsets, &self.targets)
    }

    /// As [`Graph::sccs`], or `None` if `deadline` passes first.
    pub fn sccs_by(&self, deadline: Option<Instant>) -> Option<Vec<Vec<u32>>> {
        tarjan_by(&self.offsets, &self.targets, deadline)
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Iterative Tarjan over a CSR adjacency; returns components of size ≥ 2.
pub fn tarjan(offsets: &[usize], targets: &[u32]) -> Vec<Vec<u32>> {
    tarjan_by(offsets, targets, None).unwrap_or_default()
}

/// As [`tarjan`], or `None` if `deadline` passes first (checked every
/// 16,384 vertices visited).
pub fn tarjan_by(
    offsets: &[usize],
    targets: &[u32],
    deadline: Option<Instant>,
) -> Option<Vec<Vec<u32>>> {
    const NONE: u32 = u32::MAX;
    let n = offsets.len().saturating_sub(1);
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut call: Vec<(u32, usize)> = Vec::new();
    let mut next = 0u32;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        call.push((root as u32, offsets[root]));
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root as u32);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let vu = v as usize;
            if *pos < offsets[vu + 1] {
                let w = targets[*pos] as usize;
                *pos += 1;
                if index[w] == NONE {
                    if next.is_multiple_of(16384) && passed(deadline) {
                        return None;
                    }
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w as u32);
                    on_stack[w] = true;
                    call.push((w as u32, offsets[w]));
                } else if on_stack[w] {
                    low[vu] = low[vu].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    let p = parent as usize;
                    low[p] = low[p].min(low[vu]);
                }
                if low[vu] == index[vu] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort_unstable();
                        out.push(comp);
                    }
                }
            }
        }
    }
    Some(out)
}

/// Process edges: each client's transactions in invocation order, from a
/// completed transaction to its process's next one.
pub fn process_edges(p: &Prepared, buf: &mut EdgeBuf) {
    let mut last: Vec<u32> = vec![u32::MAX; p.process_count];
    for (i, t) in p.txns.iter().enumerate() {
        if t.state == TxnState::Fail {
            continue;
        }
        let slot = &mut last[t.process as usize];
        if *slot != u32::MAX && p.txns[*slot as usize].state == TxnState::Ok {
            buf.push(*slot, i as u32, PROCESS);
        }
        *slot = i as u32;
    }
}

/// Realtime edges as a transitive reduction, by Elle's sweep: keep a
/// frontier of completed transactions not yet known to precede another
/// completed one; each invocation gets an edge from every frontier member,
/// and a completion replaces its own predecessors in the frontier. Any
/// realtime order `a < b` is then implied by a path of these edges.
pub fn realtime_edges(p: &Prepared, buf: &mut EdgeBuf) {
    let n = p.txns.len();
    // Completions of ok transactions, by event position.
    let mut completions: Vec<(usize, u32)> = p
        .txns
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state == TxnState::Ok)
        .filter_map(|(i, t)| t.complete.map(|c| (c, i as u32)))
        .collect();
    completions.sort_unstable();
    // Transactions in invocation order (txns are already in that order).
    let mut frontier: Vec<u32> = Vec::new();
    // The frontier each open transaction saw when invoked, as ranges of `preds`.
    let mut pred_range: Vec<(u32, u32)> = vec![(0, 0); n];
    let mut preds: Vec<u32> = Vec::new();
    let mut mark: Vec<u32> = vec![u32::MAX; n];
    let mut ci = 0;
    for (i, t) in p.txns.iter().enumerate() {
        while ci < completions.len() && completions[ci].0 < t.invoke {
            complete(
                completions[ci].1,
                &mut frontier,
                &pred_range,
                &preds,
                &mut mark,
            );
            ci += 1;
        }
        if t.state == TxnState::Fail {
            continue;
        }
        let start = preds.len() as u32;
        for &f in &frontier {
            buf.push(f, i as u32, REALTIME);
            if t.state == TxnState::Ok {
                preds.push(f);
            }
        }
        pred_range[i] = (start, preds.len() as u32);
    }

    fn complete(
        t: u32,
        frontier: &mut Vec<u32>,
        pred_range: &[(u32, u32)],
        preds: &[u32],
        mark: &mut [u32],
    ) {
        let (s, e) = pred_range[t as usize];
        for &x in &preds[s as usize..e as usize] {
            mark[x as usize] = t;
        }
        frontier.retain(|&x| mark[x as usize] != t);
        frontier.push(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_merges_parallel_edges_and_finds_sccs() {
        let mut b = EdgeBuf::default();
        b.push(0, 1, WW);
        b.push(0, 1, REALTIME);
        b.push(1, 2, WR);
        b.push(2, 0, RW);
        b.push(3, 3, WW);
        b.push(2, 3, WW);
        let g = Graph::build(4, b);
        assert_eq!(g.edge_count(), 4);
        assert_eq!(g.kinds_between(0, 1), WW | REALTIME);
        assert_eq!(g.sccs(), vec![vec![0, 1, 2]]);
        let mut local = vec![u32::MAX; 4];
        let sub = g.induced(&[0, 1, 2], WW | WR, &mut local);
        assert!(sub.sccs().is_empty());
    }
}
