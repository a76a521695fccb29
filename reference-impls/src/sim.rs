//! An in-process network for testing cores without sockets: seeded, so a
//! failing schedule replays from its seed.
//!
//! Messages sit in one in-flight pool; each [`Sim::step_random`] either
//! ticks a node, or delivers, drops or duplicates a random in-flight message
//! (which reorders them). Partitions (`cut`, `isolate`, `heal`) drop
//! messages across the cut; `crash` loses a node's volatile state and
//! `restart` rebuilds it from its durable records, exactly as the shell
//! does. After every step the sim checks the generic safety properties:
//!
//! - **election safety**: at most one leader per term;
//! - **state-machine safety**: no two nodes ever apply different commands
//!   at the same position, and each node applies positions in increasing
//!   order.
//!
//! Opt-in (`check_total_order`), for protocols whose nodes apply every
//! chosen position (no snapshot installs): **total order** — no node skips a
//! position that any node applied (Zab's agreement and primary order).

use crate::core::{Config, Core, Input, NodeId, Ready, Reply};
use crate::kv::{Command, RequestId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// Probabilities of network misbehaviour per delivery.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
    };
}

pub struct Sim<C: Core> {
    configs: BTreeMap<NodeId, Config>,
    /// `None` while crashed.
    pub nodes: BTreeMap<NodeId, Option<C>>,
    disks: BTreeMap<NodeId, Vec<C::Record>>,
    in_flight: Vec<(NodeId, NodeId, C::Message)>,
    cut: BTreeSet<(NodeId, NodeId)>,
    pub rng: StdRng,
    pub faults: Faults,
    /// Per node wall clock in ms, advanced by ticks; skew it to test leases.
    pub clock_ms: BTreeMap<NodeId, u64>,
    /// Every reply any node gave, in order.
    pub replies: Vec<(NodeId, RequestId, Reply)>,
    /// position → the command applied there (first node to apply it wins;
    /// any disagreement panics with the seed).
    pub chosen: BTreeMap<u64, Command>,
    last_applied: BTreeMap<NodeId, u64>,
    /// Check total order too (see the module docs).
    pub check_total_order: bool,
    /// (node, from, to): a node applied `to` right after `from`, with
    /// `to > from + 1`; no position in between may ever be chosen.
    skips: Vec<(NodeId, u64, u64)>,
    leaders: BTreeMap<u64, NodeId>,
    pub seed: u64,
    pub steps: u64,
    /// When set, a tick action ticks every live node once, so all clocks
    /// advance at the same rate (bounded drift, which lease reads assume).
    /// Off by default: each tick goes to one random node, i.e. unbounded
    /// relative drift.
    pub lockstep_ticks: bool,
}

impl<C: Core> Sim<C> {
    /// `n` nodes `1..=n`; `configure` may change each node's config (bugs,
    /// timeouts) before it starts.
    pub fn new(n: u64, seed: u64, configure: impl Fn(&mut Config)) -> Sim<C> {
        let peers: Vec<NodeId> = (1..=n).collect();
        let mut sim = Sim {
            configs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            rng: StdRng::seed_from_u64(seed),
            faults: Faults::NONE,
            clock_ms: BTreeMap::new(),
            replies: Vec::new(),
            chosen: BTreeMap::new(),
            last_applied: BTreeMap::new(),
            check_total_order: false,
            skips: Vec::new(),
            leaders: BTreeMap::new(),
            seed,
            steps: 0,
            lockstep_ticks: false,
        };
        for &id in &peers {
            let mut c = Config::new(id, peers.clone());
            c.seed = seed.wrapping_mul(1_000_003).wrapping_add(id);
            configure(&mut c);
            sim.configs.insert(id, c.clone());
            sim.disks.insert(id, Vec::new());
            sim.clock_ms.insert(id, 0);
            sim.nodes.insert(id, Some(C::recover(c, Vec::new())));
        }
        sim
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.configs.keys().copied().collect()
    }

    /// Feeds one input to a live node and processes its Ready batch.
    pub fn input(&mut self, id: NodeId, input: Input<C::Message>) {
        let Some(Some(node)) = self.nodes.get_mut(&id) else {
            return;
        };
        node.step(input);
        let ready = node.ready();
        self.process(id, ready);
    }

    pub fn tick(&mut self, id: NodeId) {
        let now = self.clock_ms.entry(id).or_default();
        *now += 10;
        let now_ms = *now;
        self.input(id, Input::Tick { now_ms });
    }

    pub fn request(&mut self, id: NodeId, cmd: Command) {
        self.input(id, Input::Request(cmd));
    }

    /// Calls `f` on a live node (for protocol-specific calls outside the
    /// `Core` trait, e.g. a membership change) and processes its Ready
    /// batch; false if the node is down.
    pub fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut C)) -> bool {
        let Some(Some(node)) = self.nodes.get_mut(&id) else {
            return false;
        };
        f(node);
        let ready = node.ready();
        self.process(id, ready);
        true
    }

    fn process(&mut self, id: NodeId, ready: Ready<C::Message, C::Record>) {
        let disk = self.disks.entry(id).or_default();
        if let Some(rewrite) = ready.rewrite {
            *disk = rewrite;
        }
        disk.extend(ready.records);
        for (to, msg) in ready.messages {
            self.in_flight.push((id, to, msg));
        }
        for (rid, reply) in ready.replies {
            self.replies.push((id, rid, reply));
        }
        for (pos, cmd) in ready.applied {
            let last = self.last_applied.entry(id).or_default();
            assert!(
                pos > *last,
                "seed {}: node {id} applied position {pos} after {last}",
                self.seed
            );
            let prev = std::mem::replace(last, pos);
            if self.check_total_order {
                self.check_no_skip(id, prev, pos);
            }
            match self.chosen.get(&pos) {
                Some(c) => assert_eq!(
                    c, &cmd,
                    "seed {}: state-machine safety: node {id} applied a different command at {pos}",
                    self.seed
                ),
                None => {
                    self.chosen.insert(pos, cmd);
                }
            }
        }
        if let Some(Some(node)) = self.nodes.get(&id) {
            let st = node.status();
            if st.is_leader() {
                let prev = *self.leaders.entry(st.term).or_insert(id);
                assert_eq!(
                    prev, id,
                    "seed {}: election safety: two leaders in term {}",
                    self.seed, st.term
                );
            }
        }
    }

    fn check_no_skip(&mut self, id: NodeId, prev: u64, pos: u64) {
        if let Some((&k, _)) = self.chosen.range(prev + 1..pos).next() {
            panic!(
                "seed {}: total order: node {id} applied {pos} after {prev}, skipping {k}",
                self.seed
            );
        }
        if !self.chosen.contains_key(&pos) {
            for &(n, a, b) in &self.skips {
                assert!(
                    !(a < pos && pos < b),
                    "seed {}: total order: node {n} applied {b} after {a}, skipping {pos} (applied by node {id})",
                    self.seed
                );
            }
        }
        if pos > prev + 1 {
            self.skips.push((id, prev, pos));
        }
    }

    /// Delivers (or drops/duplicates) the in-flight message at `i`.
    fn deliver(&mut self, i: usize) {
        let (from, to, msg) = self.in_flight.swap_remove(i);
        if self.cut.contains(&(from, to)) || self.rng.random_bool(self.faults.drop) {
            return;
        }
        if self.rng.random_bool(self.faults.duplicate) {
            self.in_flight.push((from, to, msg.clone()));
        }
        self.input(to, Input::Message { from, msg });
    }

    /// One random action: a tick (1 in 4) or a delivery.
    pub fn step_random(&mut self) {
        self.steps += 1;
        let ids = self.ids();
        if self.in_flight.is_empty() || self.rng.random_range(0..4) == 0 {
            if self.lockstep_ticks {
                for id in ids {
                    self.tick(id);
                }
            } else {
                let id = ids[self.rng.random_range(0..ids.len())];
                self.tick(id);
            }
        } else {
            let i = self.rng.random_range(0..self.in_flight.len());
            self.deliver(i);
        }
    }

    pub fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.step_random();
        }
    }

    /// Delivers everything in flight, in order, until quiet (no ticks).
    pub fn stabilize(&mut self) {
        let mut budget = 100_000;
        while !self.in_flight.is_empty() && budget > 0 {
            self.deliver(0);
            budget -= 1;
        }
    }

    /// Drops messages both ways between `a` and `b` until healed.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    pub fn isolate(&mut self, a: NodeId) {
        for b in self.ids() {
            if b != a {
                self.cut(a, b);
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Loses the node's volatile state and every message addressed to it.
    pub fn crash(&mut self, id: NodeId) {
        self.nodes.insert(id, None);
        self.in_flight.retain(|(_, to, _)| *to != id);
        // Applied positions restart with the new incarnation.
        self.last_applied.remove(&id);
    }

    /// Rebuilds a crashed node from its durable records.
    pub fn restart(&mut self, id: NodeId) {
        let config = self.configs[&id].clone();
        let records = self.disks[&id].clone();
        self.nodes.insert(id, Some(C::recover(config, records)));
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.as_ref().map(|n| (id, n.status())))
            .filter(|(_, s)| s.is_leader())
            .max_by_key(|(_, s)| s.term)
            .map(|(id, _)| *id)
    }

    /// Replies to one request, in order.
    pub fn replies_to(&self, rid: RequestId) -> Vec<&Reply> {
        self.replies
            .iter()
            .filter(|(_, r, _)| *r == rid)
            .map(|(_, _, reply)| reply)
            .collect()
    }
}
