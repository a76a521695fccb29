//! The causal graph of a session check: its nodes (reads and writes that
//! may have happened), the searches for stale reads and cycles, and the
//! sentences that explain them.

use super::*;

/// A read or write that may have happened, as a node of the causal graph.
pub(super) struct Node {
    pub(super) op: usize,
    pub(super) proc: usize,
    /// Position in its process's session.
    pub(super) seq: u32,
    pub(super) key: usize,
    pub(super) write: bool,
    /// A set key (`add` / read of all elements) rather than a register.
    pub(super) set: bool,
    /// For a checked read: the writes (adds) it observed; none for a
    /// register's initial version or an empty set.
    pub(super) seen: Vec<usize>,
    /// A read matched to writes; unchecked when its value is ambiguous or
    /// garbage.
    pub(super) checked: bool,
}

pub(super) struct Graph<'a> {
    pub(super) ops: &'a [Operation],
    pub(super) history: &'a History,
    pub(super) nodes: Vec<Node>,
    /// Per process: its nodes in session order.
    pub(super) sessions: Vec<Vec<usize>>,
    /// (process, key) → its writes to the key, in session order.
    pub(super) writes_by: HashMap<(usize, usize), Vec<usize>>,
    /// (process, key) → its checked reads of the key, in session order.
    pub(super) reads_by: HashMap<(usize, usize), Vec<usize>>,
    /// key → processes that wrote it.
    pub(super) writers: Vec<BTreeSet<usize>>,
    pub(super) keys: Vec<Option<Value>>,
}

impl Graph<'_> {
    fn op(&self, n: usize) -> &Operation {
        &self.ops[self.nodes[n].op]
    }

    fn line(&self, n: usize) -> usize {
        line_of(self.history, self.op(n))
    }

    pub(super) fn op_ref(&self, n: usize) -> OpRef {
        let op = self.op(n);
        OpRef {
            op: op.id,
            process: op.process.to_value(),
            f: op.f.to_string(),
            key: op.key.as_deref().cloned(),
            value: op.value.clone(),
            line: self.line(n),
        }
    }

    /// "process 2 wrote 5 to key x (line 6)" / "process 2 read 5 from key x (line 6)".
    fn did(&self, n: usize) -> String {
        let op = self.op(n);
        let k = key_phrase(op.key.as_deref());
        if self.nodes[n].write && self.nodes[n].set {
            format!(
                "process {} added {} to {k} (line {})",
                op.process,
                op.value,
                self.line(n)
            )
        } else if self.nodes[n].write {
            format!(
                "process {} wrote {} to {k} (line {})",
                op.process,
                op.value,
                self.line(n)
            )
        } else {
            format!(
                "process {} read {} from {k} (line {})",
                op.process,
                op.value,
                self.line(n)
            )
        }
    }

    /// The causal predecessors of a node: session predecessor and the write
    /// it read from (at most two).
    fn preds(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        let node = &self.nodes[n];
        let prev = (node.seq > 0).then(|| self.sessions[node.proc][node.seq as usize - 1]);
        prev.into_iter().chain(node.seen.iter().copied())
    }

    /// Kahn's algorithm over session order ∪ reads-from; on a cycle, returns
    /// one (in causal order) and the nodes left unordered (on or after a
    /// cycle).
    pub(super) fn topological_order(&self) -> Result<Vec<usize>, (Vec<usize>, Vec<usize>)> {
        let n = self.nodes.len();
        let mut indegree = vec![0u32; n];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, d) in indegree.iter_mut().enumerate() {
            *d = self.preds(i).count() as u32;
            for &w in &self.nodes[i].seen {
                readers[w].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            let node = &self.nodes[i];
            let next = self.sessions[node.proc].get(node.seq as usize + 1).copied();
            for s in next.into_iter().chain(readers[i].iter().copied()) {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(s);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Every node left has a predecessor left: walk predecessors until
        // one repeats.
        let mut done = vec![false; n];
        for &i in &order {
            done[i] = true;
        }
        let Some(start) = (0..n).find(|&i| !done[i]) else {
            return Ok(order);
        };
        let mut pos: HashMap<usize, usize> = HashMap::new();
        let mut walk = vec![start];
        let mut cur = start;
        loop {
            pos.insert(cur, walk.len() - 1);
            let Some(p) = self.preds(cur).find(|&p| !done[p]) else {
                return Ok(order); // unreachable for a left-over node
            };
            if let Some(&at) = pos.get(&p) {
                let mut cycle = walk[at..].to_vec();
                cycle.reverse();
                return Err((cycle, (0..n).filter(|&i| !done[i]).collect()));
            }
            walk.push(p);
            cur = p;
        }
    }

    pub(super) fn explain_cycle(&self, cycle: &[usize]) -> Violation {
        let mut steps = String::new();
        for (i, &n) in cycle.iter().enumerate() {
            let next = cycle[(i + 1) % cycle.len()];
            let how = if self.nodes[next].seen.contains(&n) {
                "read by"
            } else {
                "then"
            };
            steps.push_str(&format!("{}, {how} ", self.did(n)));
        }
        let first = cycle.first().map(|&n| self.op(n));
        Violation {
            kind: "cyclic-causal-order".into(),
            process: first.map_or(Value::Null, |o| o.process.to_value()),
            key: None,
            ops: cycle.iter().map(|&n| self.op_ref(n)).collect(),
            explanation: format!(
                "{steps}the first again: a read observed a write from its own causal future: cyclic-causal-order"
            ),
        }
    }

    /// The last write to `key` by `proc` at a session position below `limit`.
    fn last_write_before(&self, proc: usize, key: usize, limit: u32) -> Option<usize> {
        let list = self.writes_by.get(&(proc, key))?;
        let i = list.partition_point(|&w| self.nodes[w].seq < limit);
        i.checked_sub(1).map(|i| list[i])
    }

    /// Finds reads whose key has a version, causally after the one read, in
    /// the read's causal past; names each after the guarantee it breaks.
    pub(super) fn stale_reads(
        &self,
        order: &[usize],
        wanted: &BTreeSet<&'static str>,
        found: &mut Vec<Violation>,
        deadline: &crate::Deadline,
    ) -> bool {
        // Clock entries only for processes that write: a reader's own
        // position is never asked (only writers' last writes and the
        // writer of a version read are), so readers (often most of the
        // processes an `info` spawns) cost nothing.
        let (col, cols) = self.writer_columns();
        // Each live process's clock, taken at its next node, dropped after
        // its last: memory for the processes in flight, not all of them.
        let mut current: HashMap<usize, Vec<u32>> = HashMap::new();
        let mut write_clock: HashMap<usize, Vec<u32>> = HashMap::new();
        for &n in order {
            if deadline.tick() {
                return false;
            }
            let node = &self.nodes[n];
            let mut vc = current.remove(&node.proc).unwrap_or_else(|| vec![0; cols]);
            for wc in node.seen.iter().filter_map(|w| write_clock.get(w)) {
                for (a, b) in vc.iter_mut().zip(wc) {
                    *a = (*a).max(*b);
                }
            }
            if let Some(c) = col[node.proc] {
                vc[c] = node.seq + 1;
            }
            let at = |q: usize| col[q].map_or(0, |c| vc[c]);
            if node.write {
                write_clock.insert(n, vc.clone());
            } else if node.checked {
                // Register: `w` is newer than the version read (not it, and
                // that version is in `w`'s causal past). Set: the read misses `w`.
                let newer = |w: usize| {
                    if node.set {
                        return node.seen.binary_search(&w).is_err();
                    }
                    match node.seen.first() {
                        None => true,
                        Some(&o) => {
                            // `o` is a write, so its process has a column.
                            w != o
                                && col[self.nodes[o].proc].is_some_and(|oc| {
                                    write_clock
                                        .get(&w)
                                        .is_some_and(|c| c[oc] > self.nodes[o].seq)
                                })
                        }
                    }
                };
                let witness = self.writers[node.key].iter().find_map(|&q| {
                    if node.set {
                        // Every add in the causal past must be seen.
                        let list = self.writes_by.get(&(q, node.key))?;
                        let upto = list.partition_point(|&w| self.nodes[w].seq < at(q));
                        list[..upto].iter().copied().find(|&w| newer(w))
                    } else {
                        self.last_write_before(q, node.key, at(q))
                            .filter(|&w| newer(w))
                    }
                });
                if let Some(w2) = witness {
                    found.push(self.classify(n, w2, &newer, wanted));
                }
            }
            if self.sessions[node.proc]
                .get(node.seq as usize + 1)
                .is_some()
            {
                current.insert(node.proc, vc);
            }
        }
        true
    }

    /// Process → its column in the vector clocks (writers only), and how
    /// many columns.
    pub(super) fn writer_columns(&self) -> (Vec<Option<usize>>, usize) {
        let mut col = vec![None; self.sessions.len()];
        let mut cols = 0;
        for node in self.nodes.iter().filter(|n| n.write) {
            if col[node.proc].is_none() {
                col[node.proc] = Some(cols);
                cols += 1;
            }
        }
        (col, cols)
    }

    /// Names a stale read `r` after the first requested guarantee with a
    /// direct witness, weakest first; `w2` is a newer version in its
    /// causal past, the witness of last resort (`causal-stale-read`).
    fn classify(
        &self,
        r: usize,
        w2: usize,
        newer: &dyn Fn(usize) -> bool,
        wanted: &BTreeSet<&'static str>,
    ) -> Violation {
        let s = StaleRead::new(self, r, newer);
        let when = |guarantee: &str, find: &dyn Fn() -> Option<Violation>| {
            wanted.contains(guarantee).then(find).flatten()
        };
        when("read-your-writes", &|| s.read_your_writes())
            .or_else(|| when("monotonic-reads", &|| s.monotonic_reads()))
            .or_else(|| when("monotonic-writes", &|| s.monotonic_writes()))
            .or_else(|| when("writes-follow-reads", &|| s.writes_follow_reads()))
            .unwrap_or_else(|| s.causal_stale_read(w2))
    }
}

/// A stale read being named: each session guarantee's witness search is
/// one method (Terry et al. 1994).
struct StaleRead<'g> {
    g: &'g Graph<'g>,
    r: usize,
    newer: &'g dyn Fn(usize) -> bool,
    /// "then read 3 (line 9)".
    then_read: String,
    read_what: String,
}

impl<'g> StaleRead<'g> {
    fn new(g: &'g Graph<'g>, r: usize, newer: &'g dyn Fn(usize) -> bool) -> StaleRead<'g> {
        let node = &g.nodes[r];
        let read_what = if !node.set && node.seen.is_empty() {
            "the initial value (null)".to_string()
        } else {
            g.op(r).value.to_string()
        };
        StaleRead {
            g,
            r,
            newer,
            then_read: format!("then read {read_what} (line {})", g.line(r)),
            read_what,
        }
    }

    fn node(&self) -> &Node {
        &self.g.nodes[self.r]
    }

    fn older(&self, w: usize) -> String {
        if self.node().set {
            format!("missing {}", self.g.op(w).value)
        } else {
            "an older version".to_string()
        }
    }

    fn older_than(&self, w: usize) -> String {
        if self.node().set {
            format!("missing {}", self.g.op(w).value)
        } else {
            format!("older than {}", self.g.op(w).value)
        }
    }

    /// Writes to the key by `q` before session position `limit`: the newest
    /// one newer than the version read.
    fn newer_write_before(&self, q: usize, limit: u32) -> Option<usize> {
        let g = self.g;
        g.writes_by.get(&(q, self.node().key)).and_then(|ws| {
            ws.iter()
                .rev()
                .copied()
                .filter(|&w| g.nodes[w].seq < limit)
                .find(|&w| (self.newer)(w))
        })
    }

    /// A version read by `x` newer than the one `r` read.
    fn newer_seen(&self, x: usize) -> Option<usize> {
        self.g.nodes[x]
            .seen
            .iter()
            .copied()
            .find(|&w| (self.newer)(w))
    }

    fn make(&self, kind: &str, witness: Vec<usize>, why: String) -> Violation {
        let op = self.g.op(self.r);
        Violation {
            kind: kind.into(),
            process: op.process.to_value(),
            key: op.key.as_deref().cloned(),
            ops: witness
                .iter()
                .chain([&self.r])
                .map(|&n| self.g.op_ref(n))
                .collect(),
            explanation: if kind == "causal-stale-read" {
                format!("{why}: causal consistency violated (stale read of an overwritten value)")
            } else {
                format!("{why}: {kind} violated")
            },
        }
    }

    /// The process's own earlier write is newer than what it read.
    fn read_your_writes(&self) -> Option<Violation> {
        let node = self.node();
        let w = self.newer_write_before(node.proc, node.seq)?;
        Some(self.make(
            "read-your-writes",
            vec![w],
            format!("{} {}, {}", self.g.did(w), self.then_read, self.older(w)),
        ))
    }

    /// The process's own earlier read of the key saw a newer version.
    fn monotonic_reads(&self) -> Option<Violation> {
        let g = self.g;
        let node = self.node();
        let (r1, w) = g.reads_by.get(&(node.proc, node.key)).and_then(|rs| {
            rs.iter()
                .rev()
                .filter(|&&x| g.nodes[x].seq < node.seq)
                .find_map(|&x| self.newer_seen(x).map(|w| (x, w)))
        })?;
        Some(self.make(
            "monotonic-reads",
            vec![r1],
            format!("{} {}, {}", g.did(r1), self.then_read, self.older(w)),
        ))
    }

    /// One hop through another session: the process's earlier reads `x`,
    /// newest first, each with a write `wb` it saw from another process.
    fn earlier_reads(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let g = self.g;
        let node = self.node();
        g.sessions[node.proc][..node.seq as usize]
            .iter()
            .rev()
            .flat_map(move |&x| {
                g.nodes[x]
                    .seen
                    .iter()
                    .filter(move |&&wb| g.nodes[wb].proc != node.proc)
                    .map(move |&wb| (x, wb))
            })
    }

    /// The process read a write `wb` whose writer had earlier written a
    /// newer version of the key.
    fn monotonic_writes(&self) -> Option<Violation> {
        let g = self.g;
        self.earlier_reads().find_map(|(x, wb)| {
            let w = self.newer_write_before(g.nodes[wb].proc, g.nodes[wb].seq)?;
            Some(self.make(
                "monotonic-writes",
                vec![w, wb, x],
                format!(
                    "{} and then {}; {} {}, {}",
                    g.did(w),
                    g.did(wb),
                    g.did(x),
                    self.then_read,
                    self.older_than(w)
                ),
            ))
        })
    }

    /// The process read a write `wb` whose writer had earlier read a newer
    /// version of the key.
    fn writes_follow_reads(&self) -> Option<Violation> {
        let g = self.g;
        let k = self.node().key;
        self.earlier_reads().find_map(|(x, wb)| {
            let (q, qseq) = (g.nodes[wb].proc, g.nodes[wb].seq);
            let (w, y) = g.reads_by.get(&(q, k)).and_then(|rs| {
                rs.iter()
                    .rev()
                    .filter(|&&y| g.nodes[y].seq < qseq)
                    .find_map(|&y| self.newer_seen(y).map(|w| (w, y)))
            })?;
            Some(self.make(
                "writes-follow-reads",
                vec![w, y, wb, x],
                format!(
                    "{} then {}; {} {}, {}",
                    g.did(y),
                    g.did(wb),
                    g.did(x),
                    self.then_read,
                    self.older_than(w)
                ),
            ))
        })
    }

    /// No single guarantee has a direct witness: `w2`, newer than the
    /// version read, is in the read's causal past.
    fn causal_stale_read(&self, w2: usize) -> Violation {
        let op = self.g.op(self.r);
        self.make(
            "causal-stale-read",
            vec![w2],
            format!(
                "process {} read {} from {} (line {}), but {} is in the read's causal past{}",
                op.process,
                self.read_what,
                key_phrase(op.key.as_deref()),
                self.g.line(self.r),
                self.g.did(w2),
                if self.node().set {
                    " and the read misses it"
                } else {
                    " and causally follows that version"
                }
            ),
        )
    }
}
