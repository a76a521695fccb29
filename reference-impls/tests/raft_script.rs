//! Golden script tests for the pure Raft core (STYLE.md, "Test without a
//! network"; after etcd raft's `rafttest/interaction_env` and its
//! `testdata/*.txt`).
//!
//! Each file in `reference-impls/testdata/raft/` is a script: a command
//! line, `----`, and the output the command must produce, up to a blank
//! line; `#` lines are comments. The cores run in-process: messages wait in
//! one queue until `deliver`/`stabilize` hands them over, so every
//! interleaving is spelled out and replays exactly (seeded cores, no
//! clocks). When the core changes on purpose, regenerate and review the
//! diff:
//!
//! ```text
//! FAULTLINE_REWRITE=1 cargo test -p faultline-node --test raft_script
//! git diff reference-impls/testdata/raft/
//! ```
//!
//! Commands (node ids are 1..=n; `all` is every node):
//! - `cluster n=N [election=T] [heartbeat=T] [options=a,b=1]`: a fresh
//!   cluster (seed = node id);
//! - `tick IDS [n=K]`: K ticks (10 ms of the shared clock each);
//! - `campaign ID`: tick ID alone until it leaves the follower role;
//! - `propose ID write K V | read K | cas K FROM TO`: a client request;
//! - `deliver [from=ID] [to=ID]`: hand over the messages queued now;
//! - `drop [from=ID] [to=ID]`: lose them instead;
//! - `stabilize`: deliver until no message is left;
//! - `cut A B`, `isolate ID`, `heal`: partitions (messages across a cut are
//!   dropped when delivered);
//! - `crash ID`, `restart ID`: lose volatile state, recover from the
//!   records made durable so far;
//! - `status`, `log [IDS]`: each node's role, term, leader, commit; its log.
//!
//! Every command's output lists, in order, the messages delivered or
//! dropped, the role changes, the entries applied and the client replies.

use faultline_node::core::{Config, Core, Input, NodeId, Reply};
use faultline_node::kv::{Command, Op, RequestId};
use faultline_node::raft::{Entry, EntryData, Message, Raft, Record};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const TICK_MS: u64 = 10;

struct Node {
    core: Option<Raft>,
    durable: Vec<Record>,
    config: Config,
}

#[derive(Default)]
struct Env {
    nodes: BTreeMap<NodeId, Node>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    cut: BTreeSet<(NodeId, NodeId)>,
    now_ms: u64,
    seq: u64,
}

fn entry(e: &Entry) -> String {
    let data = match &e.data {
        EntryData::Noop => "noop".to_string(),
        EntryData::Command(c) => op(&c.op),
        EntryData::AddServer(n) => format!("add {n}"),
        EntryData::RemoveServer(n) => format!("remove {n}"),
    };
    format!("{}/{} {data}", e.index, e.term)
}

fn op(o: &Op) -> String {
    match o {
        Op::Read { key } => format!("read {key}"),
        Op::Write { key, value } => format!("write {key}={value}"),
        Op::Cas { key, from, to } => format!("cas {key} {from}->{to}"),
        other => format!("{other:?}"),
    }
}

fn message(m: &Message) -> String {
    let yes = |g: bool| if g { "granted" } else { "rejected" };
    match m {
        Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
        } => format!("RequestVote term={term} last={last_log_index}/{last_log_term}"),
        Message::RequestVoteResponse { term, vote_granted } => {
            format!("RequestVoteResponse term={term} {}", yes(*vote_granted))
        }
        Message::PreVote {
            term,
            last_log_index,
            last_log_term,
        } => format!("PreVote term={term} last={last_log_index}/{last_log_term}"),
        Message::PreVoteResponse { term, vote_granted } => {
            format!("PreVoteResponse term={term} {}", yes(*vote_granted))
        }
        Message::AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_seq,
        } => format!(
            "AppendEntries term={term} prev={prev_log_index}/{prev_log_term} commit={leader_commit} read={read_seq} [{}]",
            entries.iter().map(entry).collect::<Vec<_>>().join(", ")
        ),
        Message::AppendEntriesResponse {
            term,
            success,
            match_index,
            rejected,
            hint,
            read_seq,
        } => {
            if *success {
                format!("AppendEntriesResponse term={term} ok match={match_index} read={read_seq}")
            } else {
                format!(
                    "AppendEntriesResponse term={term} reject at={rejected} hint={hint} read={read_seq}"
                )
            }
        }
        Message::Heartbeat {
            term,
            leader_commit,
            read_seq,
        } => format!("Heartbeat term={term} commit={leader_commit} read={read_seq}"),
        Message::HeartbeatResponse { term, read_seq } => {
            format!("HeartbeatResponse term={term} read={read_seq}")
        }
        Message::InstallSnapshot { term, snapshot, .. } => format!(
            "InstallSnapshot term={term} last={}/{}",
            snapshot.last_included_index, snapshot.last_included_term
        ),
    }
}

fn reply(r: &Reply) -> String {
    match r {
        Reply::Done(Ok(v)) => format!("ok {v}"),
        Reply::Done(Err(e)) => format!("fail {e}"),
        Reply::NotLeader { leader } => match leader {
            Some(l) => format!("not-leader (try {l})"),
            None => "not-leader".into(),
        },
        Reply::Unknown(why) => format!("unknown ({why})"),
    }
}

fn view(r: &Raft) -> (String, u64, Option<NodeId>) {
    let s = r.status();
    (s.role.to_string(), s.term, s.leader)
}

/// `key=value` arguments and the rest, in order.
fn args(words: &[&str]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut kv = BTreeMap::new();
    let mut rest = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => {
                kv.insert(k.to_string(), v.to_string());
            }
            None => rest.push(w.to_string()),
        }
    }
    (kv, rest)
}

fn num(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("`{s}` is not a number"))
}

impl Env {
    fn ids(&self, words: &[String]) -> Result<Vec<NodeId>, String> {
        if words.iter().any(|w| w == "all") || words.is_empty() {
            return Ok(self.nodes.keys().copied().collect());
        }
        words.iter().map(|w| num(w)).collect()
    }

    fn node(&mut self, id: NodeId) -> Result<&mut Node, String> {
        self.nodes.get_mut(&id).ok_or(format!("no node {id}"))
    }

    /// Feeds `input` to `id`, then handles its Ready the way the shell
    /// does: records durable first, then messages queued, replies shown.
    fn step(&mut self, id: NodeId, input: Input<Message>, out: &mut String) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(core) = node.core.as_mut() else {
            return;
        };
        let before = view(core);
        core.step(input);
        let ready = core.ready();
        let after = view(core);
        if before != after {
            let (role, term, leader) = &after;
            let leader = leader.map_or("none".into(), |l| l.to_string());
            let _ = writeln!(out, "n{id} is {role} term={term} leader={leader}");
        }
        if let Some(all) = ready.rewrite {
            node.durable = all;
        }
        node.durable.extend(ready.records);
        for (i, cmd) in &ready.applied {
            let _ = writeln!(out, "n{id} applied {i} {}", op(&cmd.op));
        }
        for (rid, r) in &ready.replies {
            let _ = writeln!(
                out,
                "n{id} replied c{}.{}: {}",
                rid.client,
                rid.seq,
                reply(r)
            );
        }
        for (to, m) in ready.messages {
            self.queue.push_back((id, to, m));
        }
    }

    fn tick(&mut self, id: NodeId, out: &mut String) {
        let now_ms = self.now_ms;
        self.step(id, Input::Tick { now_ms }, out);
    }

    /// Delivers (or drops) the messages queued now that match; messages
    /// they cause wait for the next round.
    fn deliver(&mut self, from: Option<NodeId>, to: Option<NodeId>, drop: bool, out: &mut String) {
        let round: Vec<_> = self.queue.drain(..).collect();
        for (f, t, m) in round {
            if from.is_some_and(|x| x != f) || to.is_some_and(|x| x != t) {
                self.queue.push_back((f, t, m));
                continue;
            }
            let down = self.nodes.get(&t).is_none_or(|n| n.core.is_none());
            let why = if drop {
                Some("dropped")
            } else if self.cut.contains(&(f, t)) {
                Some("dropped (cut)")
            } else if down {
                Some("dropped (down)")
            } else {
                None
            };
            match why {
                Some(why) => {
                    let _ = writeln!(out, "{f}->{t} {why} {}", message(&m));
                }
                None => {
                    let _ = writeln!(out, "{f}->{t} {}", message(&m));
                    self.step(t, Input::Message { from: f, msg: m }, out);
                }
            }
        }
    }

    fn run(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (kv, rest) = args(&words[1..]);
        let mut out = String::new();
        let opt = |k: &str| kv.get(k).map(|v| num(v)).transpose();
        match words[0] {
            "cluster" => {
                let n = opt("n")?.unwrap_or(3);
                *self = Env::default();
                for id in 1..=n {
                    let mut c = Config::new(id, (1..=n).collect());
                    c.election_ticks = opt("election")?.unwrap_or(10);
                    c.heartbeat_ticks = opt("heartbeat")?.unwrap_or(2);
                    for o in kv.get("options").into_iter().flat_map(|o| o.split(',')) {
                        let (k, v) = o.split_once('=').unwrap_or((o, ""));
                        c.options.insert(k.into(), v.into());
                    }
                    let core = Raft::recover(c.clone(), Vec::new());
                    self.nodes.insert(
                        id,
                        Node {
                            core: Some(core),
                            durable: Vec::new(),
                            config: c,
                        },
                    );
                }
                let _ = writeln!(out, "{n} nodes, all followers at term 0");
            }
            "tick" => {
                let k = opt("n")?.unwrap_or(1);
                let ids = self.ids(&rest)?;
                for _ in 0..k {
                    self.now_ms += TICK_MS;
                    for &id in &ids {
                        self.tick(id, &mut out);
                    }
                }
            }
            "campaign" => {
                let id = num(rest.first().ok_or("campaign ID")?)?;
                for i in 1..=1000 {
                    self.now_ms += TICK_MS;
                    self.tick(id, &mut out);
                    let role = self.node(id)?.core.as_ref().map(|c| c.status().role);
                    if role != Some("follower") {
                        let _ = writeln!(out, "(n{id} campaigned after {i} ticks)");
                        break;
                    }
                }
            }
            "propose" => {
                let id = num(rest.first().ok_or("propose ID OP …")?)?;
                let a: Vec<&str> = rest[1..].iter().map(String::as_str).collect();
                let o = match a.as_slice() {
                    ["write", k, v] => Op::Write {
                        key: num(k)?,
                        value: num(v)? as i64,
                    },
                    ["read", k] => Op::Read { key: num(k)? },
                    ["cas", k, f, t] => Op::Cas {
                        key: num(k)?,
                        from: num(f)? as i64,
                        to: num(t)? as i64,
                    },
                    _ => return Err(format!("propose: cannot parse `{}`", a.join(" "))),
                };
                self.seq += 1;
                let cmd = Command {
                    id: RequestId {
                        client: 1,
                        seq: self.seq,
                    },
                    op: o,
                };
                let _ = writeln!(out, "c1.{} -> n{id}: {}", self.seq, op(&cmd.op));
                self.step(id, Input::Request(cmd), &mut out);
            }
            "deliver" | "drop" => {
                let from = opt("from")?;
                let to = opt("to")?;
                self.deliver(from, to, words[0] == "drop", &mut out);
            }
            "stabilize" => {
                let mut rounds = 0;
                while !self.queue.is_empty() {
                    rounds += 1;
                    if rounds > 100 {
                        return Err("stabilize: still busy after 100 rounds".into());
                    }
                    self.deliver(None, None, false, &mut out);
                }
            }
            "cut" => {
                let [a, b] = [rest.first(), rest.get(1)].map(|x| x.map(|x| num(x)));
                let (a, b) = (a.ok_or("cut A B")??, b.ok_or("cut A B")??);
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
            "isolate" => {
                let a = num(rest.first().ok_or("isolate ID")?)?;
                for &b in self.nodes.keys() {
                    if b != a {
                        self.cut.insert((a, b));
                        self.cut.insert((b, a));
                    }
                }
            }
            "heal" => self.cut.clear(),
            "crash" => {
                let id = num(rest.first().ok_or("crash ID")?)?;
                self.node(id)?.core = None;
            }
            "restart" => {
                let id = num(rest.first().ok_or("restart ID")?)?;
                let n = self.node(id)?;
                n.core = Some(Raft::recover(n.config.clone(), n.durable.clone()));
                let r = n.core.as_ref().map(view);
                if let Some((role, term, _)) = r {
                    let _ = writeln!(out, "n{id} recovered: {role} term={term}");
                }
            }
            "status" => {
                for (id, n) in &self.nodes {
                    let Some(c) = &n.core else {
                        let _ = writeln!(out, "n{id} down");
                        continue;
                    };
                    let s = c.status();
                    let leader = s.leader.map_or("none".into(), |l| l.to_string());
                    let _ = writeln!(
                        out,
                        "n{id} {} term={} leader={leader} commit={} last={}/{}",
                        s.role,
                        s.term,
                        s.commit,
                        c.log().last_index(),
                        c.log().last_term()
                    );
                }
            }
            "log" => {
                for id in self.ids(&rest)? {
                    let Some(c) = &self.node(id)?.core else {
                        let _ = writeln!(out, "n{id} down");
                        continue;
                    };
                    let log = c.log();
                    let es: Vec<String> = (log.snapshot_index() + 1..=log.last_index())
                        .filter_map(|i| log.entry(i).map(entry))
                        .collect();
                    let _ = writeln!(out, "n{id}: [{}]", es.join(", "));
                }
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        if out.is_empty() {
            out.push_str("ok\n");
        }
        Ok(out)
    }
}

/// One script's blocks: comments and blank lines kept as they are, and
/// each command with its expected output.
enum Block {
    Text(String),
    Command { line: String, expected: String },
}

fn parse(text: &str, path: &Path) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().peekable();
    let mut n = 0;
    while let Some(line) = lines.next() {
        n += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            blocks.push(Block::Text(line.to_string()));
            continue;
        }
        let sep = lines.next();
        n += 1;
        assert_eq!(
            sep,
            Some("----"),
            "{}:{n}: expected ---- after the command `{line}`",
            path.display()
        );
        let mut expected = String::new();
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            expected.push_str(l);
            expected.push('\n');
            lines.next();
            n += 1;
        }
        blocks.push(Block::Command {
            line: line.to_string(),
            expected,
        });
    }
    blocks
}

fn run_script(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rewrite = std::env::var_os("FAULTLINE_REWRITE").is_some();
    let mut env = Env::default();
    let mut out = String::new();
    let mut failures = Vec::new();
    for b in parse(&text, path) {
        match b {
            Block::Text(t) => {
                out.push_str(&t);
                out.push('\n');
            }
            Block::Command { line, expected } => {
                let got = env.run(&line).unwrap_or_else(|e| format!("error: {e}\n"));
                if got != expected {
                    failures.push(format!(
                        "{}: `{line}`\n--- expected\n{expected}--- got\n{got}",
                        path.display()
                    ));
                }
                out.push_str(&line);
                out.push_str("\n----\n");
                out.push_str(&got);
            }
        }
    }
    if rewrite {
        std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    match failures.into_iter().next() {
        None => Ok(()),
        Some(f) => Err(format!(
            "{f}\n(if the change is intended: FAULTLINE_REWRITE=1 cargo test -p faultline-node --test raft_script, then review git diff)"
        )),
    }
}

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/raft");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    v
}

#[test]
fn golden_scripts() {
    let all = scripts();
    // The five STYLE.md promised, at least (see the module docs).
    assert!(
        all.len() >= 5,
        "only {} scripts in testdata/raft",
        all.len()
    );
    let errors: Vec<String> = all.iter().filter_map(|p| run_script(p).err()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

/// A script that expects the wrong thing fails: the comparison is real.
#[test]
fn a_wrong_expectation_fails() {
    let dir = std::env::temp_dir().join(format!("raft-script-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("wrong.txt");
    std::fs::write(&p, "cluster n=3\n----\n3 nodes, all leaders at term 9\n").unwrap();
    if std::env::var_os("FAULTLINE_REWRITE").is_none() {
        let e = run_script(&p).unwrap_err();
        assert!(e.contains("all followers at term 0"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
