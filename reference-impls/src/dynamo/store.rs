//! `faultline-node dynamo`: one node of the Dynamo-style store as a
//! [`Core`], run by the shell (TCP, write-ahead log, client API).
//!
//! **Coordinator.** Any node coordinates a client's request for any key.
//! A put (`DynPut`) gets a fresh dot from the coordinator's own versions of
//! the key (`seq` = its highest seq for the key + 1, so dots of one
//! coordinator and key are contiguous), is merged into the coordinator's
//! versions and the whole sibling set is sent to the targets; `ok` after
//! `w` targets stored it. Shipping whole sets keeps the invariant that
//! makes version-vector contexts exact: whoever holds a node's dot `s` for
//! a key holds (or supersedes) its dots `1..s` too. A get (`DynGet`) asks
//! the targets, answers the merge of the first `r` replies, and when all
//! targets replied (or time ran out) sends the merge to every replier that
//! lacked part of it (read repair).
//!
//! **Targets.** The key's preference list: the first `n` distinct nodes
//! clockwise on the ring. With `sloppy` (the default) a node not heard from
//! for `down_ticks` is replaced by the next healthy node after the list,
//! which stores the write with a hint naming the node it stands in for and
//! hands the key off when that node answers again (every `handoff_ticks`).
//! Liveness is every message heard; pings go out every `ping_ticks`.
//!
//! **Anti-entropy.** Every `anti-entropy-ticks` a node sends a random
//! healthy peer the root of the Merkle tree of the keys both replicate;
//! differing roots → leaves → the keys of the differing buckets, both ways.
//!
//! **Durability.** Every change to a key's versions or hints is a record,
//! fsynced before any ack or reply that depends on it (the Ready contract);
//! the log is rewritten as a snapshot every [`SNAPSHOT_RECORDS`] records.
//! Pending requests are volatile: a coordinator crash leaves them `info`.
//!
//! Options (`--option`, also comma-joined `n=3,r=2,w=2`): `n`, `r`, `w`
//! (defaults 3, 2, 2, at most the cluster size), `vnodes` (8), `sloppy`
//! (`true`/`false`), `anti-entropy-ticks` (4 × heartbeat ticks).

use super::{Bugs, Entry, Siblings, Version, merkle};
use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::crdt::{Dot, VersionVector};
use crate::kv::{Command, Key, Op, RequestId};
use crate::ring::{Ring, hash_u64};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// One line about the protocol, for `faultline-node --list`.
pub const ABOUT: &str = "Dynamo-style store: consistent hashing, N/R/W quorums (sloppy, hinted handoff), dotted version vectors with siblings, read repair, Merkle anti-entropy";

/// Records between two snapshots (log rewrites).
pub const SNAPSHOT_RECORDS: u64 = 4096;
/// The option names a node understands.
pub const OPTIONS: [&str; 6] = ["n", "r", "w", "vnodes", "sloppy", "anti-entropy-ticks"];
/// Every node must build the same ring and hash keys alike.
const RING_SEED: u64 = 0x6479_6e61_6d6f;

/// Quorum sizes and timing, from the options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub vnodes: u32,
    pub sloppy: bool,
    pub ping_ticks: u64,
    pub down_ticks: u64,
    pub request_ticks: u64,
    pub handoff_ticks: u64,
    pub anti_entropy_ticks: u64,
}

impl Params {
    /// From the config's options; errors name the option.
    pub fn from_config(c: &Config) -> Result<Params, String> {
        // `--option n=3,r=2,w=2` arrives as n → "3,r=2,w=2".
        let mut opts: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &c.options {
            let mut parts = v.split(',');
            opts.insert(k.clone(), parts.next().unwrap_or("").trim().to_string());
            for p in parts {
                let (k2, v2) = p.split_once('=').unwrap_or((p, ""));
                opts.insert(k2.trim().to_string(), v2.trim().to_string());
            }
        }
        let num = |name: &str, default: u64| -> Result<u64, String> {
            match opts.get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|x| *x > 0)
                    .ok_or(format!("--option {name}={v}: expected a positive integer")),
            }
        };
        let members = c.peers.len().max(1);
        let n = num("n", 3.min(members as u64))? as usize;
        if n > members {
            return Err(format!(
                "--option n={n}: more replicas than the {members} member(s)"
            ));
        }
        let r = num("r", (n / 2 + 1) as u64)? as usize;
        let w = num("w", (n / 2 + 1) as u64)? as usize;
        for (name, x) in [("r", r), ("w", w)] {
            if x > n {
                return Err(format!("--option {name}={x}: larger than n={n}"));
            }
        }
        let sloppy = match opts.get("sloppy").map(String::as_str) {
            None | Some("") | Some("true") => true,
            Some("false") => false,
            Some(v) => return Err(format!("--option sloppy={v}: expected true or false")),
        };
        let hb = c.heartbeat_ticks.max(1);
        Ok(Params {
            n,
            r,
            w,
            vnodes: num("vnodes", 8)?.min(1024) as u32,
            sloppy,
            ping_ticks: hb,
            down_ticks: c.election_ticks.max(2 * hb),
            request_ticks: 2 * c.election_ticks.max(2 * hb),
            handoff_ticks: 4 * hb,
            anti_entropy_ticks: num("anti-entropy-ticks", 4 * hb)?,
        })
    }
}

/// `key`'s preference list in a cluster of `peers` (every member's id):
/// the ring each member builds, so the nemesis can cut one list off.
pub fn preference_list_of(peers: &[NodeId], params: &Params, key: Key) -> Vec<NodeId> {
    Ring::with_nodes(peers.iter().copied(), params.vnodes, RING_SEED)
        .preference_list(hash_u64(key, RING_SEED), params.n)
}

/// Between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Store these versions of `key` (the coordinator's whole set after the
    /// put), standing in for `hint` if set.
    Put {
        req: u64,
        key: Key,
        siblings: Siblings,
        dot: Dot,
        hint: Option<NodeId>,
    },
    PutAck {
        req: u64,
        key: Key,
        dot: Dot,
    },
    Get {
        req: u64,
        key: Key,
    },
    GetReply {
        req: u64,
        key: Key,
        siblings: Siblings,
    },
    /// Read repair: merge these.
    Repair {
        key: Key,
        siblings: Siblings,
    },
    /// Hinted handoff of keys stored on the receiver's behalf.
    Handoff {
        entries: Vec<Entry>,
    },
    /// The handed-off keys, with the context each stored.
    HandoffAck {
        entries: Vec<(Key, VersionVector)>,
    },
    Ping,
    Pong,
    /// Anti-entropy: my root over the keys we both replicate.
    AeRoot {
        root: u64,
    },
    AeLeaves {
        leaves: Vec<u64>,
    },
    /// My keys in `buckets`; `reply`: send me yours in those buckets.
    AeData {
        buckets: Vec<usize>,
        entries: Vec<Entry>,
        reply: bool,
    },
}

/// A durable change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    /// A key's versions are now these.
    Key { key: Key, siblings: Siblings },
    /// Hinted versions of `key` for `node` (`None`: handed off).
    Hint {
        node: NodeId,
        key: Key,
        siblings: Option<Siblings>,
    },
    /// Everything (the log's first record after a rewrite).
    Snapshot {
        data: Vec<Entry>,
        hints: Vec<(NodeId, Entry)>,
    },
}

struct PendingPut {
    client: RequestId,
    key: Key,
    value: i64,
    dot: Dot,
    acks: BTreeSet<NodeId>,
    started: u64,
}

struct PendingGet {
    client: RequestId,
    key: Key,
    targets: Vec<NodeId>,
    replies: BTreeMap<NodeId, Siblings>,
    answered: bool,
    started: u64,
}

/// One node of the store.
pub struct DynamoStore {
    id: NodeId,
    others: Vec<NodeId>,
    params: Params,
    bugs: Bugs,
    ring: Ring,
    data: BTreeMap<Key, Siblings>,
    hints: BTreeMap<(NodeId, Key), Siblings>,
    ticks: u64,
    now_ms: u64,
    last_heard: BTreeMap<NodeId, u64>,
    next_req: u64,
    puts: BTreeMap<u64, PendingPut>,
    gets: BTreeMap<u64, PendingGet>,
    rng: StdRng,
    records_since_snapshot: u64,
    coordinated: u64,
    out: Ready<Message, Record>,
}

impl DynamoStore {
    /// This node's versions of `key` (tests).
    pub fn siblings(&self, key: Key) -> Siblings {
        self.data.get(&key).cloned().unwrap_or_default()
    }

    /// Hinted keys held for other nodes (tests).
    pub fn hint_count(&self) -> usize {
        self.hints.len()
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// The key's preference list: its first `n` distinct nodes on the ring.
    pub fn preference_list(&self, key: Key) -> Vec<NodeId> {
        self.ring
            .preference_list(hash_u64(key, RING_SEED), self.params.n)
    }

    fn up(&self, p: NodeId) -> bool {
        p == self.id
            || self.ticks <= self.last_heard.get(&p).copied().unwrap_or(0) + self.params.down_ticks
    }

    /// Where a request for `key` goes: `(node, the node it stands in for)`.
    fn targets(&self, key: Key) -> Vec<(NodeId, Option<NodeId>)> {
        let all = self
            .ring
            .preference_list(hash_u64(key, RING_SEED), self.others.len() + 1);
        let n = self.params.n.min(all.len());
        if !self.params.sloppy {
            return all[..n].iter().map(|&p| (p, None)).collect();
        }
        let mut spare = all[n..].iter().copied().filter(|&p| self.up(p));
        let mut out = Vec::with_capacity(n);
        for &p in &all[..n] {
            if self.up(p) {
                out.push((p, None));
            } else if let Some(s) = spare.next() {
                out.push((s, Some(p)));
            }
        }
        out
    }

    fn record(&mut self, r: Record) {
        self.out.records.push(r);
        self.records_since_snapshot += 1;
        if self.records_since_snapshot >= SNAPSHOT_RECORDS {
            self.out.rewrite = Some(vec![self.snapshot()]);
            self.records_since_snapshot = 0;
        }
    }

    fn snapshot(&self) -> Record {
        Record::Snapshot {
            data: self.data.iter().map(|(k, s)| (*k, s.clone())).collect(),
            hints: self
                .hints
                .iter()
                .map(|((n, k), s)| (*n, (*k, s.clone())))
                .collect(),
        }
    }

    /// Merges `incoming` into the key's versions (replaces them with
    /// `overwrite`); records a change. True if anything changed.
    fn store(&mut self, key: Key, incoming: &Siblings, overwrite: bool) -> bool {
        let lww = self.bugs.lww_wall_clock;
        let cur = self.data.entry(key).or_default();
        let before = cur.clone();
        if overwrite {
            *cur = incoming.clone();
        } else {
            cur.merge(incoming, lww);
        }
        if *cur == before {
            return false;
        }
        let siblings = cur.clone();
        self.record(Record::Key { key, siblings });
        true
    }

    fn hint(&mut self, node: NodeId, key: Key, incoming: &Siblings) {
        let lww = self.bugs.lww_wall_clock;
        let h = self.hints.entry((node, key)).or_default();
        let before = h.clone();
        h.merge(incoming, lww);
        if *h != before {
            let siblings = Some(h.clone());
            self.record(Record::Hint {
                node,
                key,
                siblings,
            });
        }
    }

    fn send(&mut self, to: NodeId, m: Message) {
        self.out.messages.push((to, m));
    }

    fn reply(&mut self, id: RequestId, r: Reply) {
        self.out.replies.push((id, r));
    }

    fn request(&mut self, cmd: Command) {
        match cmd.op {
            Op::DynPut {
                key,
                value,
                context,
            } => self.put(cmd.id, key, value, context),
            Op::DynGet { key } => self.get(cmd.id, key),
            other => self.reply(
                cmd.id,
                Reply::Done(Err(format!(
                    "the Dynamo store has no {other:?} (DynGet, DynPut)"
                ))),
            ),
        }
    }

    fn put(&mut self, client: RequestId, key: Key, value: i64, context: VersionVector) {
        let mine = self.siblings(key);
        let seq = mine.context().get(self.id) + 1;
        let dot = Dot { node: self.id, seq };
        let version = Version {
            dot,
            context,
            value,
            ts: self.now_ms,
        };
        let mut set = mine;
        set.insert(version, self.bugs.lww_wall_clock);
        self.store(key, &set, true);
        self.coordinated += 1;
        let req = self.next_req();
        let targets = self.targets(key);
        let mut p = PendingPut {
            client,
            key,
            value,
            dot,
            acks: BTreeSet::new(),
            started: self.ticks,
        };
        for (t, hint) in targets {
            if t == self.id {
                if let Some(h) = hint {
                    self.hint(h, key, &set);
                }
                p.acks.insert(t);
            } else {
                self.send(
                    t,
                    Message::Put {
                        req,
                        key,
                        siblings: set.clone(),
                        dot,
                        hint,
                    },
                );
            }
        }
        self.puts.insert(req, p);
        self.finish_put(req);
    }

    fn finish_put(&mut self, req: u64) {
        let Some(p) = self.puts.get(&req) else { return };
        if p.acks.len() >= self.params.w {
            let out = json!({"value": p.value, "dot": [p.dot.node, p.dot.seq]});
            let client = p.client;
            self.puts.remove(&req);
            self.reply(client, Reply::Done(Ok(out)));
        }
    }

    fn get(&mut self, client: RequestId, key: Key) {
        let req = self.next_req();
        let targets: Vec<NodeId> = self.targets(key).into_iter().map(|(t, _)| t).collect();
        let mut g = PendingGet {
            client,
            key,
            targets: targets.clone(),
            replies: BTreeMap::new(),
            answered: false,
            started: self.ticks,
        };
        for t in targets {
            if t == self.id {
                g.replies.insert(t, self.siblings(key));
            } else {
                self.send(t, Message::Get { req, key });
            }
        }
        self.gets.insert(req, g);
        self.progress_get(req, false);
    }

    /// Answers the client at `r` replies; read-repairs when every target
    /// replied or `expired`.
    fn progress_get(&mut self, req: u64, expired: bool) {
        let Some(g) = self.gets.get_mut(&req) else {
            return;
        };
        let lww = self.bugs.lww_wall_clock;
        let mut merged = Siblings::default();
        for s in g.replies.values() {
            merged.merge(s, lww);
        }
        if !g.answered && g.replies.len() >= self.params.r {
            g.answered = true;
            let out = json!({"siblings": merged.values(), "context": merged.context()});
            let client = g.client;
            self.reply(client, Reply::Done(Ok(out)));
        }
        let Some(g) = self.gets.get(&req) else { return };
        if !(expired || g.replies.len() == g.targets.len()) {
            return;
        }
        let Some(g) = self.gets.remove(&req) else {
            return;
        };
        if !g.answered {
            self.reply(
                g.client,
                Reply::Unknown(format!(
                    "only {} of r={} replicas answered in time",
                    g.replies.len(),
                    self.params.r
                )),
            );
        }
        let overwrite = self.bugs.read_repair_overwrite;
        // The bug writes the read's result back to every target, replacing.
        let empty = Siblings::default();
        for t in &g.targets {
            let s = g.replies.get(t).unwrap_or(&empty);
            if !overwrite && (*s == merged || !g.replies.contains_key(t)) {
                continue;
            }
            if *t == self.id {
                self.store(g.key, &merged, overwrite);
            } else {
                self.send(
                    *t,
                    Message::Repair {
                        key: g.key,
                        siblings: merged.clone(),
                    },
                );
            }
        }
    }

    fn next_req(&mut self) -> u64 {
        self.next_req += 1;
        self.next_req
    }

    fn receive(&mut self, from: NodeId, msg: Message) {
        self.last_heard.insert(from, self.ticks);
        match msg {
            Message::Put {
                req,
                key,
                siblings,
                dot,
                hint,
            } => {
                self.store(key, &siblings, false);
                if let Some(h) = hint {
                    self.hint(h, key, &siblings);
                }
                self.send(from, Message::PutAck { req, key, dot });
            }
            Message::PutAck { req, key, dot } => {
                if let Some(p) = self.puts.get_mut(&req)
                    && p.key == key
                    && p.dot == dot
                {
                    p.acks.insert(from);
                    self.finish_put(req);
                }
            }
            Message::Get { req, key } => {
                let siblings = self.siblings(key);
                self.send(from, Message::GetReply { req, key, siblings });
            }
            Message::GetReply { req, key, siblings } => {
                if let Some(g) = self.gets.get_mut(&req)
                    && g.key == key
                    && g.targets.contains(&from)
                {
                    g.replies.insert(from, siblings);
                    self.progress_get(req, false);
                }
            }
            Message::Repair { key, siblings } => {
                let overwrite = self.bugs.read_repair_overwrite;
                self.store(key, &siblings, overwrite);
            }
            Message::Handoff { entries } => {
                let mut acks = Vec::with_capacity(entries.len());
                for (key, s) in entries {
                    self.store(key, &s, false);
                    acks.push((key, s.context()));
                }
                self.send(from, Message::HandoffAck { entries: acks });
            }
            Message::HandoffAck { entries } => {
                for (key, ctx) in entries {
                    let done = self
                        .hints
                        .get(&(from, key))
                        .is_some_and(|h| h.context().le(&ctx));
                    if done {
                        self.hints.remove(&(from, key));
                        self.record(Record::Hint {
                            node: from,
                            key,
                            siblings: None,
                        });
                    }
                }
            }
            Message::Ping => self.send(from, Message::Pong),
            Message::Pong => {}
            Message::AeRoot { root } => {
                let tree = self.tree_with(from);
                if tree.root != root {
                    self.send(
                        from,
                        Message::AeLeaves {
                            leaves: tree.leaves,
                        },
                    );
                }
            }
            Message::AeLeaves { leaves } => {
                let buckets = self.tree_with(from).diff(&leaves);
                let entries = self.entries_with(from, &buckets);
                self.send(
                    from,
                    Message::AeData {
                        buckets,
                        entries,
                        reply: true,
                    },
                );
            }
            Message::AeData {
                buckets,
                entries,
                reply,
            } => {
                for (key, s) in &entries {
                    // Only keys both replicate: a peer's stale view of the
                    // ring must not plant keys here.
                    if self.shared_with(*key, from) {
                        self.store(*key, s, false);
                    }
                }
                if reply {
                    let buckets: Vec<usize> = buckets
                        .into_iter()
                        .filter(|b| *b < merkle::LEAVES)
                        .collect();
                    let entries = self.entries_with(from, &buckets);
                    self.send(
                        from,
                        Message::AeData {
                            buckets,
                            entries,
                            reply: false,
                        },
                    );
                }
            }
        }
    }

    fn shared_with(&self, key: Key, peer: NodeId) -> bool {
        let pl = self.preference_list(key);
        pl.contains(&self.id) && pl.contains(&peer)
    }

    /// The Merkle tree of the keys this node and `peer` both replicate.
    fn tree_with(&self, peer: NodeId) -> merkle::Tree {
        merkle::Tree::build(
            self.data
                .iter()
                .filter(|(k, _)| self.shared_with(**k, peer)),
        )
    }

    fn entries_with(&self, peer: NodeId, buckets: &[usize]) -> Vec<Entry> {
        self.data
            .iter()
            .filter(|(k, s)| {
                !s.is_empty()
                    && buckets.contains(&merkle::bucket(**k))
                    && self.shared_with(**k, peer)
            })
            .map(|(k, s)| (*k, s.clone()))
            .collect()
    }

    fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.ticks += 1;
        let p = self.params;
        if self.ticks.is_multiple_of(p.ping_ticks) {
            for o in self.others.clone() {
                self.send(o, Message::Ping);
            }
        }
        // Requests out of time: puts may still land (info), gets repair
        // with what they have.
        let late: Vec<u64> = self
            .puts
            .iter()
            .filter(|(_, x)| self.ticks > x.started + p.request_ticks)
            .map(|(r, _)| *r)
            .collect();
        for req in late {
            if let Some(x) = self.puts.remove(&req) {
                let msg = format!(
                    "only {} of w={} replicas acknowledged in time",
                    x.acks.len(),
                    p.w
                );
                self.reply(x.client, Reply::Unknown(msg));
            }
        }
        let late: Vec<u64> = self
            .gets
            .iter()
            .filter(|(_, g)| self.ticks > g.started + p.request_ticks)
            .map(|(r, _)| *r)
            .collect();
        for req in late {
            self.progress_get(req, true);
        }
        if self.ticks.is_multiple_of(p.handoff_ticks) && !self.bugs.no_hinted_handoff {
            let mut batches: BTreeMap<NodeId, Vec<Entry>> = BTreeMap::new();
            for ((n, k), s) in &self.hints {
                if self.up(*n) {
                    batches.entry(*n).or_default().push((*k, s.clone()));
                }
            }
            for (n, entries) in batches {
                self.send(n, Message::Handoff { entries });
            }
        }
        if self.ticks.is_multiple_of(p.anti_entropy_ticks) {
            let ups: Vec<NodeId> = self
                .others
                .iter()
                .copied()
                .filter(|&o| self.up(o))
                .collect();
            if !ups.is_empty() {
                let peer = ups[self.rng.random_range(0..ups.len())];
                let root = self.tree_with(peer).root;
                self.send(peer, Message::AeRoot { root });
            }
        }
    }

    fn replay(&mut self, r: Record) {
        match r {
            Record::Key { key, siblings } => {
                self.data.insert(key, siblings);
            }
            Record::Hint {
                node,
                key,
                siblings: Some(s),
            } => {
                self.hints.insert((node, key), s);
            }
            Record::Hint {
                node,
                key,
                siblings: None,
            } => {
                self.hints.remove(&(node, key));
            }
            Record::Snapshot { data, hints } => {
                self.data = data.into_iter().collect();
                self.hints = hints.into_iter().map(|(n, (k, s))| ((n, k), s)).collect();
            }
        }
    }
}

impl Core for DynamoStore {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> DynamoStore {
        let bugs = Bugs::from_config(&config);
        // The binary validates options before starting; a core built
        // directly (tests) falls back to the defaults.
        let params = Params::from_config(&config).unwrap_or_else(|_| {
            let mut c = config.clone();
            c.options.clear();
            Params::from_config(&c).unwrap_or(Params {
                n: 1,
                r: 1,
                w: 1,
                vnodes: 8,
                sloppy: true,
                ping_ticks: 1,
                down_ticks: 10,
                request_ticks: 20,
                handoff_ticks: 4,
                anti_entropy_ticks: 4,
            })
        });
        let mut s = DynamoStore {
            id: config.id,
            others: config
                .peers
                .iter()
                .copied()
                .filter(|p| *p != config.id)
                .collect(),
            params,
            bugs,
            ring: Ring::with_nodes(config.peers.iter().copied(), params.vnodes, RING_SEED),
            data: BTreeMap::new(),
            hints: BTreeMap::new(),
            ticks: 0,
            now_ms: 0,
            last_heard: BTreeMap::new(),
            next_req: 0,
            puts: BTreeMap::new(),
            gets: BTreeMap::new(),
            rng: StdRng::seed_from_u64(config.seed),
            records_since_snapshot: 0,
            coordinated: 0,
            out: Ready::default(),
        };
        for r in records {
            s.records_since_snapshot += 1;
            s.replay(r);
        }
        s
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { now_ms } => self.tick(now_ms),
            Input::Message { from, msg } => self.receive(from, msg),
            Input::Request(cmd) => self.request(cmd),
        }
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        Status {
            role: "replica",
            term: 0,
            leader: None,
            commit: self.coordinated,
        }
    }
}
