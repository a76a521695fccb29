//! Cycle search. Anomalies are specs for one search (after Elle's
//! `base-cycle-anomaly-specs`): which edge kinds a cycle may use and what it
//! must contain. `-process` / `-realtime` variants are derived from the base
//! specs by also allowing that kind and requiring at least one such edge
//! (Elle's `cycle-anomaly-spec-variant`).
//!
//! The search is a breadth-first search from each vertex of a component over
//! (vertex, state) pairs, where the state is what the spec needs to know
//! about the path so far (how many rw edges, whether the last was rw, …),
//! so the first cycle found through a vertex is a shortest one that matches.

use super::explain::{EdgeKind, Explanation, Step};
use super::graph::{ALL, DATA, Graph, PROCESS, REALTIME, RW, WR, WW, tarjan};
use super::{Analysis, Anomaly, Found, Prepared, Workload};
use crate::consistency;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Write cycles: ww only.
    G0,
    /// Circular information flow: ww and wr, at least one wr.
    G1c,
    /// Exactly one rw (anti-dependency) edge.
    GSingle,
    /// At least two rw edges, no two adjacent.
    GNonadjacent,
    /// At least two rw edges, some two adjacent (item anti-dependency cycle).
    G2Item,
}

/// A cycle anomaly as a search spec.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: Anomaly,
    pub base: Base,
    /// Edge kinds the cycle may use.
    pub allowed: u8,
    /// 0, or `PROCESS` / `REALTIME`: at least one edge must be of that kind
    /// (and not explainable by a data dependency).
    pub variant: u8,
}

/// The base specs, most severe first. Every anti-dependency our analyses
/// infer is on an item (there are no predicate reads), so the rw cycles
/// are Elle's item variants: `G-single-item`, `G-nonadjacent-item`,
/// `G2-item` (Elle reports `G-single` / `G-nonadjacent` / `G2` only for
/// cycles through a predicate edge).
pub fn base_specs() -> Vec<Spec> {
    let s = |name, base, allowed| Spec {
        name,
        base,
        allowed,
        variant: 0,
    };
    vec![
        s(Anomaly::G0, Base::G0, WW),
        s(Anomaly::G1c, Base::G1c, WW | WR),
        s(Anomaly::GSingleItem, Base::GSingle, WW | WR | RW),
        s(Anomaly::GNonadjacentItem, Base::GNonadjacent, WW | WR | RW),
        s(Anomaly::G2Item, Base::G2Item, WW | WR | RW),
    ]
}

/// The `-process` or `-realtime` variant of a spec (every base spec has
/// both: a unit test checks).
pub fn variant(spec: &Spec, kind: u8) -> Option<Spec> {
    let suffix = if kind == PROCESS {
        "process"
    } else {
        "realtime"
    };
    Some(Spec {
        name: spec.name.variant(suffix)?,
        base: spec.base,
        allowed: spec.allowed | kind,
        variant: kind,
    })
}

/// Every cycle spec: bases, then process variants, then realtime variants.
pub fn all_specs() -> Vec<Spec> {
    let base = base_specs();
    let mut out = base.clone();
    out.extend(base.iter().filter_map(|s| variant(s, PROCESS)));
    out.extend(base.iter().filter_map(|s| variant(s, REALTIME)));
    out
}

// Path state bits.
const RWC: u8 = 3; // rw count, saturating at 2
const LAST_RW: u8 = 4;
const FIRST_RW: u8 = 8;
const ADJ: u8 = 16;
const HAS_WR: u8 = 32;
const HAS_VAR: u8 = 64;
const STARTED: u8 = 128;
const NSTATES: usize = 256;

impl Spec {
    fn step(&self, st: u8, kind: u8) -> Option<u8> {
        let mut s = st | STARTED;
        if kind == RW {
            let rwc = st & RWC;
            match self.base {
                Base::G0 | Base::G1c => return None,
                Base::GSingle if rwc >= 1 => return None,
                Base::GNonadjacent if st & LAST_RW != 0 => return None,
                _ => {}
            }
            if st & LAST_RW != 0 {
                s |= ADJ;
            }
            if st & STARTED == 0 {
                s |= FIRST_RW;
            }
            s = (s & !RWC) | (rwc + 1).min(2) | LAST_RW;
        } else {
            s &= !LAST_RW;
        }
        if kind == WR {
            s |= HAS_WR;
        }
        if kind == self.variant {
            s |= HAS_VAR;
        }
        Some(s)
    }

    fn accepts(&self, s: u8) -> bool {
        if self.variant != 0 && s & HAS_VAR == 0 {
            return false;
        }
        let rwc = s & RWC;
        let wrap = s & LAST_RW != 0 && s & FIRST_RW != 0;
        match self.base {
            Base::G0 => true,
            Base::G1c => s & HAS_WR != 0,
            Base::GSingle => rwc == 1,
            Base::GNonadjacent => rwc >= 2 && !wrap,
            Base::G2Item => rwc >= 2 && (s & ADJ != 0 || wrap),
        }
    }
}

/// The path states one spec can reach, numbered densely, with their
/// transitions: the search's per-vertex arrays are `n × states.len()`
/// rather than `n × 256` (for a 100,000-transaction component, megabytes
/// instead of a quarter gigabyte per search). Bits a spec never reads are
/// masked off, which also keeps equivalent paths from being explored twice.
struct States {
    /// `next[c][i]`: the state after an edge of kind `KINDS[i]` from state
    /// `c`, or `NO_STATE` where the spec forbids it.
    next: Vec<[u8; 5]>,
    /// Whether a cycle closing in state `c` matches the spec.
    accepting: Vec<bool>,
}

const KINDS: [u8; 5] = [WW, WR, RW, PROCESS, REALTIME];
const NO_STATE: u8 = u8::MAX;

impl Spec {
    /// The state bits `step` and `accepts` read for this spec.
    fn relevant(&self) -> u8 {
        let base = match self.base {
            Base::G0 => 0,
            Base::G1c => HAS_WR,
            Base::GSingle => RWC,
            Base::GNonadjacent => RWC | LAST_RW | FIRST_RW | STARTED,
            Base::G2Item => RWC | LAST_RW | FIRST_RW | ADJ | STARTED,
        };
        if self.variant != 0 {
            base | HAS_VAR
        } else {
            base
        }
    }

    fn states(&self) -> States {
        let mask = self.relevant();
        let mut id = [NO_STATE; NSTATES];
        let mut list: Vec<u8> = vec![0];
        id[0] = 0;
        let mut next = Vec::new();
        let mut i = 0;
        while i < list.len() {
            let st = list[i];
            let mut row = [NO_STATE; 5];
            for (j, &kind) in KINDS.iter().enumerate() {
                if let Some(st2) = self.step(st, kind).map(|x| x & mask) {
                    if id[st2 as usize] == NO_STATE {
                        id[st2 as usize] = list.len() as u8;
                        list.push(st2);
                    }
                    row[j] = id[st2 as usize];
                }
            }
            next.push(row);
            i += 1;
        }
        States {
            next,
            accepting: list.iter().map(|&st| self.accepts(st)).collect(),
        }
    }
}

enum Outcome {
    Found(Vec<(u32, u32, u8)>),
    NotFound,
    Timeout,
}

/// Shortest cycle matching `spec` in `g` (whose kinds are already narrowed to
/// `spec.allowed`), by BFS over (vertex, state) from each start vertex.
fn find(g: &Graph, spec: &Spec, deadline: Option<Instant>) -> Outcome {
    let n = g.vertex_count();
    let States { next, accepting } = spec.states();
    let k = next.len();
    let mut stamp = vec![0u32; n * k];
    let mut parent = vec![0u32; n * k];
    let mut pkind = vec![0u8; n * k];
    let mut queue: Vec<u32> = Vec::new();
    let mut best: Option<Vec<(u32, u32, u8)>> = None;
    let mut pops = 0u64;
    let exhaustive = n <= 64;
    for s in 0..n as u32 {
        let gen_ = s + 1;
        let start = s * k as u32;
        queue.clear();
        queue.push(start);
        stamp[start as usize] = gen_;
        let mut head = 0;
        'bfs: while head < queue.len() {
            let cur = queue[head];
            head += 1;
            pops += 1;
            // Check the clock on the first pop and every 4096 after.
            if pops & 4095 == 1
                && let Some(d) = deadline
                && Instant::now() >= d
            {
                return match best {
                    Some(c) => Outcome::Found(c),
                    None => Outcome::Timeout,
                };
            }
            let (v, st) = (cur / k as u32, (cur % k as u32) as usize);
            for (w, kinds) in g.out(v) {
                // Prefer data explanations: a process/realtime edge counts
                // only where no data dependency explains the pair.
                let opts = if kinds & DATA != 0 {
                    kinds & DATA
                } else {
                    kinds
                };
                for (j, &bit) in KINDS.iter().enumerate() {
                    if opts & bit == 0 {
                        continue;
                    }
                    let st2 = next[st][j];
                    if st2 == NO_STATE {
                        continue;
                    }
                    if w == s {
                        if accepting[st2 as usize] {
                            let mut path = vec![(v, w, bit)];
                            let mut c = cur;
                            while c != start {
                                let p = parent[c as usize];
                                path.push((p / k as u32, c / k as u32, pkind[c as usize]));
                                c = p;
                            }
                            path.reverse();
                            // Paths over (vertex, state) may pass a vertex
                            // twice; an explanation names each transaction
                            // once, so keep only a simple cycle that still
                            // matches, else look on.
                            let Some(path) = simple(spec, path) else {
                                continue;
                            };
                            if best.as_ref().is_none_or(|b| path.len() < b.len()) {
                                best = Some(path);
                            }
                            break 'bfs;
                        }
                        continue;
                    }
                    let idx = w as usize * k + st2 as usize;
                    if stamp[idx] != gen_ {
                        stamp[idx] = gen_;
                        parent[idx] = cur;
                        pkind[idx] = bit;
                        queue.push(idx as u32);
                    }
                }
            }
        }
        if best.is_some() && !exhaustive {
            break;
        }
    }
    match best {
        Some(c) => Outcome::Found(c),
        None => Outcome::NotFound,
    }
}

/// Whether the closed walk with these edge kinds is an instance of `spec`
/// (what [`Spec::accepts`] decides for a path, read cyclically).
fn matches(spec: &Spec, kinds: &[u8]) -> bool {
    let n = kinds.len();
    let rw = kinds.iter().filter(|&&k| k == RW).count();
    let adjacent = (0..n).any(|i| kinds[i] == RW && kinds[(i + 1) % n] == RW);
    if n < 2
        || kinds.iter().any(|&k| k & spec.allowed == 0)
        || (spec.variant != 0 && !kinds.contains(&spec.variant))
    {
        return false;
    }
    match spec.base {
        Base::G0 => rw == 0,
        Base::G1c => rw == 0 && kinds.contains(&WR),
        Base::GSingle => rw == 1,
        Base::GNonadjacent => rw >= 2 && !adjacent,
        Base::G2Item => rw >= 2 && adjacent,
    }
}

/// A simple cycle matching `spec` within the closed walk `path` (edges
/// `(from, to, kind)`, each `to` the next `from`): the walk itself if no
/// vertex repeats, else, split at a repeated vertex into two shorter closed
/// walks, a simple one found in either half that matches. `None` if none
/// does.
fn simple(spec: &Spec, path: Vec<(u32, u32, u8)>) -> Option<Vec<(u32, u32, u8)>> {
    // Linear: a cycle through a giant component can be 100,000 long.
    let mut first: std::collections::HashMap<u32, usize> =
        std::collections::HashMap::with_capacity(path.len());
    let repeat = path
        .iter()
        .enumerate()
        .find_map(|(j, e)| first.insert(e.0, j).map(|i| (i, j)));
    let Some((i, j)) = repeat else {
        return Some(path);
    };
    let inner: Vec<_> = path[i..j].to_vec();
    let outer: Vec<_> = path[..i].iter().chain(&path[j..]).copied().collect();
    [inner, outer]
        .into_iter()
        .filter(|w| matches(spec, &w.iter().map(|e| e.2).collect::<Vec<_>>()))
        .filter_map(|w| simple(spec, w))
        .min_by_key(Vec::len)
}

/// Turns a cycle of global transaction ids into an explanation.
fn explain_cycle(
    p: &Prepared,
    a: &Analysis,
    name: Anomaly,
    cycle: &[(u32, u32, u8)],
) -> Explanation {
    let txns: Vec<u32> = cycle.iter().map(|e| e.0).collect();
    let pos = |t: u32| txns.iter().position(|&x| x == t).unwrap_or(0);
    let steps = cycle
        .iter()
        .map(|&(x, y, bit)| {
            let kind = EdgeKind::from_bit(bit);
            let (key, value, other) = match a {
                Analysis::ListAppend(la) => la.explain(p, x, y, kind),
                Analysis::RwRegister(rw) => rw.explain(p, x, y, kind),
            };
            Step {
                from: pos(x),
                to: pos(y),
                kind,
                key,
                value,
                other,
            }
        })
        .collect();
    Explanation::Cycle {
        r#type: name.to_string(),
        workload: match a {
            Analysis::ListAppend(_) => Workload::ListAppend,
            Analysis::RwRegister(_) => Workload::RwRegister,
        },
        txns: txns.iter().map(|&t| p.txn_ref(t)).collect(),
        steps,
    }
}

/// Cycle-existence checks, used as a fallback when a search timed out
/// (Elle's `cycle-exists-specs`): model, anomaly type, subgraph, and whether
/// the subgraph is extended by one rw hop (the SI family).
const CYCLE_EXISTS: &[(&str, Anomaly, u8, bool)] = &[
    ("read-uncommitted", Anomaly::Pl1CycleExists, WW, false),
    ("read-committed", Anomaly::Pl2CycleExists, WW | WR, false),
    (
        "snapshot-isolation",
        Anomaly::PlSiCycleExists,
        WW | WR,
        true,
    ),
    ("serializable", Anomaly::Pl3CycleExists, DATA, false),
    (
        "strong-session-read-uncommitted",
        Anomaly::StrongSessionPl1CycleExists,
        WW | PROCESS,
        false,
    ),
    (
        "strong-session-read-committed",
        Anomaly::StrongSessionPl2CycleExists,
        WW | WR | PROCESS,
        false,
    ),
    (
        "strong-session-snapshot-isolation",
        Anomaly::StrongSessionSiCycleExists,
        WW | WR | PROCESS,
        true,
    ),
    (
        "strong-session-serializable",
        Anomaly::StrongSessionSerializableCycleExists,
        DATA | PROCESS,
        false,
    ),
    (
        "strong-read-uncommitted",
        Anomaly::StrongPl1CycleExists,
        WW | REALTIME,
        false,
    ),
    (
        "strong-read-committed",
        Anomaly::StrongPl2CycleExists,
        WW | WR | REALTIME,
        false,
    ),
    (
        "strong-snapshot-isolation",
        Anomaly::StrongSiCycleExists,
        WW | WR | REALTIME,
        true,
    ),
    (
        "strict-serializable",
        Anomaly::PlSsCycleExists,
        DATA | REALTIME,
        false,
    ),
];

/// Size of the smallest cyclic component of `g` restricted to `mask`; with
/// `extend`, of `mask` extended by single rw hops (a cycle in which every rw
/// edge follows a `mask` edge), via the product graph (vertex, last-was-rw).
fn cycle_exists(g: &Graph, mask: u8, extend: bool) -> Option<usize> {
    let n = g.vertex_count();
    let (offsets, targets) = if !extend {
        let mut offsets = vec![0usize];
        let mut targets = Vec::new();
        for v in 0..n as u32 {
            targets.extend(g.out(v).filter(|&(_, k)| k & mask != 0).map(|(w, _)| w));
            offsets.push(targets.len());
        }
        (offsets, targets)
    } else {
        let mut offsets = vec![0usize];
        let mut targets = Vec::new();
        for v in 0..2 * n as u32 {
            let after_rw = v % 2 == 1;
            for (w, k) in g.out(v / 2) {
                if k & mask != 0 {
                    targets.push(2 * w);
                }
                if k & RW != 0 && !after_rw {
                    targets.push(2 * w + 1);
                }
            }
            offsets.push(targets.len());
        }
        (offsets, targets)
    };
    let sccs = tarjan(&offsets, &targets);
    sccs.iter()
        .map(|c| {
            let mut vs: Vec<u32> = c.iter().map(|&x| if extend { x / 2 } else { x }).collect();
            vs.dedup();
            vs.len()
        })
        .min()
}

/// How long the cycle search may take.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Per (component, anomaly) search.
    pub per_search: Option<Duration>,
    /// A deadline for the whole search.
    pub total: Option<Instant>,
}

/// Searches each component for each prohibited cycle anomaly, recording one
/// cycle per (component, anomaly), or a `cycle-search-timeout`.
/// `budget.per_search` bounds each (component, anomaly) search;
/// `budget.total` is a deadline for all of them, after which the remaining
/// components are recorded as timed out without searching.
///
/// Components are searched smallest first: small ones are cheap and show
/// most anomalies, so a giant one cannot starve them. Within a component
/// each search gets at most an equal share of the time left, so one
/// anomaly with no short cycle cannot starve the others; a tenth of the
/// total is kept back for the cycle-exists fallback.
pub fn search(
    p: &Prepared,
    analysis: &Analysis,
    g: &Graph,
    sccs: &[Vec<u32>],
    prohibited: &BTreeSet<String>,
    budget: Budget,
    found: &mut Found,
) {
    let specs: Vec<Spec> = all_specs()
        .into_iter()
        .filter(|s| prohibited.contains(s.name.name()))
        .collect();
    let began = Instant::now();
    let search_end = budget.total.map(|t| {
        let left = t.saturating_duration_since(began);
        began + left.mul_f64(0.9)
    });
    let mut order: Vec<&Vec<u32>> = sccs.iter().collect();
    order.sort_by_key(|c| c.len());
    let mut local = vec![u32::MAX; g.vertex_count()];
    let mut timed_out: Vec<&Vec<u32>> = Vec::new();
    for scc in order {
        let mut found_here: Vec<String> = Vec::new();
        let mut timeout = false;
        for (i, spec) in specs.iter().enumerate() {
            let now = Instant::now();
            let mut deadline = budget.per_search.map(|d| now + d);
            if let Some(end) = search_end {
                if now >= end {
                    // Out of time: recorded without building anything.
                    search_timeout(found, spec, &found_here, scc.len());
                    timeout = true;
                    break;
                }
                let share = (end - now).div_f64((specs.len() - i) as f64);
                deadline = Some(deadline.map_or(now + share, |d| d.min(now + share)));
            }
            let sub = g.induced(scc, spec.allowed, &mut local);
            let mut sub_local = vec![u32::MAX; sub.vertex_count()];
            let Some(comps) = sub.sccs_by(deadline) else {
                search_timeout(found, spec, &found_here, scc.len());
                timeout = true;
                break;
            };
            for comp in comps {
                let h = sub.induced(&comp, ALL, &mut sub_local);
                match find(&h, spec, deadline) {
                    Outcome::Found(c) => {
                        let global: Vec<(u32, u32, u8)> = c
                            .iter()
                            .map(|&(x, y, k)| {
                                (
                                    scc[comp[x as usize] as usize],
                                    scc[comp[y as usize] as usize],
                                    k,
                                )
                            })
                            .collect();
                        found.add(spec.name, || explain_cycle(p, analysis, spec.name, &global));
                        found_here.push(spec.name.name().to_string());
                        break;
                    }
                    Outcome::NotFound => {}
                    Outcome::Timeout => {
                        search_timeout(found, spec, &found_here, scc.len());
                        timeout = true;
                        break;
                    }
                }
            }
        }
        if timeout {
            timed_out.push(scc);
        }
    }
    if timed_out.is_empty() {
        return;
    }
    // Fallback: prove cycles exist where the search gave up, for models the
    // specific anomalies found do not already rule out. Each check is
    // linear in the component; past the deadline they are skipped (the
    // timeout already keeps the verdict from `valid`).
    let other: Vec<&str> = found
        .kinds()
        .filter(|k| !k.is_unknown())
        .map(Anomaly::name)
        .collect();
    let mut ruled_out = consistency::anomalies_to_impossible_models(&other);
    // Largest first: a giant component is likeliest to hold a cycle.
    timed_out.reverse();
    for scc in timed_out {
        if budget.total.is_some_and(|t| Instant::now() >= t) {
            return;
        }
        let sub = g.induced(scc, ALL, &mut local);
        for &(model, kind, mask, extend) in CYCLE_EXISTS {
            if ruled_out.contains(model) || !prohibited.contains(kind.name()) {
                continue;
            }
            if budget.total.is_some_and(|t| Instant::now() >= t) {
                return;
            }
            if let Some(size) = cycle_exists(&sub, mask, extend) {
                found.add(kind, || Explanation::CycleExists {
                    model: model.to_string(),
                    scc_size: size,
                });
                ruled_out.extend(consistency::anomalies_to_impossible_models(&[kind.name()]));
            }
        }
    }
}

/// Records that the search for `spec` in a component of `scc_size`
/// transactions ran out of time, having found `found_here` there.
fn search_timeout(found: &mut Found, spec: &Spec, found_here: &[String], scc_size: usize) {
    found.add(Anomaly::CycleSearchTimeout, || {
        Explanation::CycleSearchTimeout {
            anomaly_spec_type: spec.name.name().to_string(),
            does_not_contain: found_here.to_vec(),
            scc_size,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: Anomaly) -> Spec {
        all_specs()
            .into_iter()
            .find(|s| s.name == name)
            .expect("spec")
    }

    #[test]
    fn every_base_spec_has_both_variants() {
        assert_eq!(all_specs().len(), 3 * base_specs().len());
    }

    /// Issue #16: a walk through T2 twice is no explanation; the halves
    /// (each one rw) are not G2-item either, so nothing is kept.
    #[test]
    fn a_walk_repeating_a_vertex_is_split_or_dropped() {
        let walk = vec![(0, 1, REALTIME), (1, 2, REALTIME), (2, 1, RW), (1, 0, RW)];
        assert_eq!(simple(&spec(Anomaly::G2ItemRealtime), walk.clone()), None);
        // As a G-single-item-realtime both halves qualify; the first kept.
        let g = spec(Anomaly::GSingleItemRealtime);
        assert_eq!(simple(&g, walk), Some(vec![(1, 2, REALTIME), (2, 1, RW)]));
        let ok = vec![(0, 1, WW), (1, 2, RW), (2, 0, RW)];
        assert_eq!(simple(&spec(Anomaly::G2Item), ok.clone()), Some(ok));
    }
}
