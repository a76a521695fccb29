//! The bundled protocols (`faultline-node raft|paxos|zab|single`) as a
//! target: how to deploy the server on nodes ([`NodeDb`], shell commands
//! only, run by the `faultline` binary over SSH like [`crate::etcd_db`]),
//! and a client for every workload ([`NodeTarget`]).
//!
//! Layout on every node (under the node's private /opt, LAB-NOTES §2
//! pitfall 4): `/opt/faultline-node/faultline-node` (the binary, uploaded
//! by the controller), `data/` (the write-ahead log), `node.log` (stderr,
//! appended across restarts), `node.pid`.
//!
//! Clock faults: the server reads its wall clock through libc
//! (`clock_gettime`), so when the lab has libfaketime, [`NodeDb`] starts it
//! under `LD_PRELOAD` with the lab's per-node control file and clock faults
//! reach it (monotonic clocks stay real; ticks are scheduled on them).
//!
//! ```
//! use faultline_targets::node::NodeDb;
//! let db = NodeDb::new("raft", [("n1", "10.77.9.11"), ("n2", "10.77.9.12"), ("n3", "10.77.9.13")]);
//! let cmd = db.start_command("n2").unwrap();
//! assert!(cmd.contains("faultline-node raft --id 2"));
//! assert!(cmd.contains("--peers 1=10.77.9.11:7001,2=10.77.9.12:7001,3=10.77.9.13:7001"));
//! assert_eq!(db.client_addr("n3").unwrap(), "10.77.9.13:7000");
//! ```
//!
//! # Client
//!
//! One TCP connection at a time, newline JSON (`faultline_node::shell::api`).
//! Every operation becomes one [`faultline_node::kv::Op`] with a request id
//! `(client, seq)`; the servers apply a request id at most once, so the
//! client may resend the same request to another node. It starts at its own
//! node, follows `not_leader` hints, and classifies (the [`Client`]
//! contract):
//! - `ok` → ok; `fail` (the state machine refused: CAS mismatch, empty
//!   queue, insufficient funds) → fail;
//! - only `not_leader` answers and refused connections until the deadline →
//!   fail (nothing was ever accepted);
//! - `unknown`, a lost connection or a timeout after the request was sent →
//!   retried with the same id while time remains, else info (fail for
//!   read-only operations, which cannot have had an effect).

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, Step, TargetInfo};
use crate::line_conn::{LineConn, ReadError};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Primaries, Target, TargetError};
use faultline_nemesis::NemesisKind;
use faultline_node::kv::{Command, Micro, Op as KvOp, RequestId};
use faultline_node::shell::api::{ClientReply, ClientRequest, NodeStatus};
use faultline_workloads::{Completion, Op, Value, Workload, WorkloadOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub const DIR: &str = "/opt/faultline-node";
pub const BINARY: &str = "/opt/faultline-node/faultline-node";
pub const DATA_DIR: &str = "/opt/faultline-node/data";
pub const LOG_FILE: &str = "/opt/faultline-node/node.log";
pub const PID_FILE: &str = "/opt/faultline-node/node.pid";
pub const CLIENT_PORT: u16 = 7000;
pub const PEER_PORT: u16 = 7001;
/// The lab's per-node libfaketime control file (faultline-nemesis'
/// `FAKETIME_FILE`).
pub const FAKETIME_FILE: &str = "/tmp/faultline-faketime.rc";

/// The protocols this target runs, and what each is.
pub fn protocols() -> &'static [(&'static str, &'static str)] {
    faultline_node::shell::PROTOCOLS
}

/// Checks `--bug` names against the protocol's seeded bugs; the error
/// lists the known ones.
pub fn validate_bugs(protocol: &str, names: &[String]) -> Result<(), String> {
    faultline_node::bugs::validate(protocol, names)
}

/// A protocol's seeded bugs: (name, one-line description).
pub fn bugs_of(protocol: &str) -> Vec<(&'static str, &'static str)> {
    faultline_node::bugs::of(protocol)
        .map(|b| (b.name, b.description))
        .collect()
}

/// The workloads every replication protocol runs (on [`faultline_node::kv::Store`]);
/// the client also speaks `saga` to `faultline-node saga` (see [`crate::saga`])
/// and the lease ops of `faultline-node lock` (see [`crate::lock`]).
pub const WORKLOADS: [Workload; 9] = [
    Workload::Register,
    Workload::ListAppend,
    Workload::RwRegister,
    Workload::Set,
    Workload::Bank,
    Workload::Counter,
    Workload::Queue,
    Workload::UniqueIds,
    Workload::Lock,
];

/// A faultline-node cluster on a set of nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDb {
    pub protocol: String,
    /// node name → address; node ids are 1.. in name order.
    pub nodes: BTreeMap<String, String>,
    pub bugs: Vec<String>,
    pub tick_ms: u64,
    pub election_ticks: u64,
    pub heartbeat_ticks: u64,
    /// libfaketime.so to preload (empty: no clock control).
    pub libfaketime: String,
    /// `--option NAME[=VALUE]` passed to every member.
    pub options: BTreeMap<String, String>,
    /// The local faultline-node binary uploaded to every node.
    pub binary: std::path::PathBuf,
}

impl NodeDb {
    pub fn new<N: Into<String>, A: Into<String>>(
        protocol: &str,
        nodes: impl IntoIterator<Item = (N, A)>,
    ) -> NodeDb {
        NodeDb {
            protocol: protocol.to_string(),
            nodes: nodes
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
            bugs: Vec::new(),
            // 10 ms ticks, elections after 500–1000 ms, heartbeats every
            // 50 ms: the lab's two cores are shared and loaded, so shorter
            // timeouts only make spurious elections.
            tick_ms: 10,
            election_ticks: 50,
            heartbeat_ticks: 5,
            libfaketime: String::new(),
            options: BTreeMap::new(),
            binary: "faultline-node".into(),
        }
    }

    /// The node's id in the cluster (1-based, in name order).
    pub fn id(&self, node: &str) -> Option<u64> {
        self.nodes
            .keys()
            .position(|n| n == node)
            .map(|i| i as u64 + 1)
    }

    pub fn client_addr(&self, node: &str) -> Option<String> {
        self.nodes.get(node).map(|a| format!("{a}:{CLIENT_PORT}"))
    }

    /// `1=ADDR:7001,2=…`.
    pub fn peers_arg(&self) -> String {
        self.nodes
            .values()
            .enumerate()
            .map(|(i, a)| format!("{}={a}:{PEER_PORT}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Run after the binary was uploaded to `{BINARY}.new`: makes it
    /// executable and moves it in place (a running binary is not
    /// overwritten in place: "text file busy").
    pub fn install_command(&self) -> String {
        format!(
            "chmod 755 {BINARY}.new && mv -f {BINARY}.new {BINARY} && {BINARY} --version >/dev/null"
        )
    }

    /// Starts the member, detached, unless it already runs; prints the pid.
    /// The data dir survives, so the same command restarts a killed member.
    pub fn start_command(&self, node: &str) -> Option<String> {
        let id = self.id(node)?;
        let env = if self.libfaketime.is_empty() {
            String::new()
        } else {
            // Monotonic stays real: the shell schedules ticks on it.
            format!(
                "env LD_PRELOAD={} FAKETIME_TIMESTAMP_FILE={FAKETIME_FILE} FAKETIME_NO_CACHE=1 \
                 FAKETIME_DONT_FAKE_MONOTONIC=1 ",
                self.libfaketime
            )
        };
        let mut bugs: String = self.bugs.iter().map(|b| format!(" --bug {b}")).collect();
        for (k, v) in &self.options {
            // A bare option (`lease-read`) has the value `true`.
            if v == "true" {
                bugs.push_str(&format!(" --option {k}"));
            } else {
                bugs.push_str(&format!(" --option {k}={v}"));
            }
        }
        let cmd = format!(
            "{env}{BINARY} {p} --id {id} --peers {peers} --client-port {CLIENT_PORT} \
             --data-dir {DATA_DIR} --tick-ms {t} --election-ticks {e} --heartbeat-ticks {h}{bugs}",
            p = self.protocol,
            peers = self.peers_arg(),
            t = self.tick_ms,
            e = self.election_ticks,
            h = self.heartbeat_ticks,
        );
        Some(crate::pidfile::start_command(
            PID_FILE, DATA_DIR, DIR, &cmd, LOG_FILE,
        ))
    }

    /// The heal of a kill: starts the member only if it is not running.
    pub fn restart_command(&self, node: &str) -> Option<String> {
        self.start_command(node)
    }

    pub fn kill_command(&self) -> String {
        crate::pidfile::kill_command(PID_FILE)
    }

    pub fn pause_command(&self) -> String {
        crate::pidfile::pause_command(PID_FILE)
    }

    pub fn resume_command(&self) -> String {
        crate::pidfile::resume_command(PID_FILE)
    }

    /// Kills the member (resuming it first) and removes all its files.
    pub fn teardown_command(&self) -> String {
        crate::pidfile::teardown_command(PID_FILE, &format!("rm -rf {DIR}; mkdir -p {DIR}"))
    }

    pub fn log_files(&self) -> Vec<String> {
        vec![LOG_FILE.to_string()]
    }

    /// The client-side view of the cluster.
    /// `(node, client address)` of every member, in id order.
    pub fn members(&self) -> Vec<(String, String)> {
        self.client_config().members.into_iter().collect()
    }

    pub fn client_config(&self) -> NodeConfig {
        NodeConfig {
            protocol: self.protocol.clone(),
            members: self
                .nodes
                .iter()
                .map(|(n, a)| (n.clone(), format!("{a}:{CLIENT_PORT}")))
                .collect(),
        }
    }
}

/// The faults every faultline-node target takes (its processes run under
/// libfaketime in the lab, so clock faults too; every node answers
/// `status` with its role, so the leader kinds find the leader, or a
/// random node in a leaderless protocol).
pub const NODE_FAULTS: [NemesisKind; 14] = [
    NemesisKind::Partition,
    NemesisKind::Kill,
    NemesisKind::KillAll,
    NemesisKind::Pause,
    NemesisKind::Crash,
    NemesisKind::Bandwidth,
    NemesisKind::Loss,
    NemesisKind::Latency,
    NemesisKind::Clock,
    NemesisKind::KillLeader,
    NemesisKind::PauseLeader,
    NemesisKind::IsolateLeader,
    NemesisKind::SkewLeader,
    NemesisKind::LeaderChurn,
];

/// The catalogue row of a faultline-node protocol: `about` is its one-line
/// description, `build` makes its [`Db`] from the run's context.
pub fn node_info(
    protocol: &'static str,
    about: &str,
    workloads: Vec<Workload>,
    build: crate::db::Builder,
) -> TargetInfo {
    TargetInfo {
        name: protocol,
        description: format!("faultline-node {protocol}: {about}"),
        workloads,
        faults: NODE_FAULTS.to_vec(),
        clock: Clock::Everywhere,
        bugs: bugs_of(protocol),
        needs_node_binary: true,
        kind: Kind::Deployed(build),
    }
}

/// The catalogue rows, one per protocol.
pub fn infos() -> Vec<TargetInfo> {
    protocols()
        .iter()
        .map(|(p, what)| node_info(p, what, WORKLOADS.to_vec(), build))
        .collect()
}

/// Builds a cluster of `protocol`.
fn build(protocol: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    validate_bugs(protocol, &ctx.bugs)?;
    if protocol == "pb" {
        crate::db::check_options("pb", &ctx.options, &["mode", "failover"])?;
        if let Some(m) = ctx.options.get("mode") {
            faultline_node::pb::Mode::parse(m).map_err(|e| format!("--db-option {e}"))?;
        }
        if let Some(f) = ctx.options.get("failover")
            && f != "heal"
            && f != "monitor"
        {
            return Err(format!(
                "--db-option failover={f}: expected heal (at the nemesis' heals only) or \
                 monitor (also every second, as Sentinel would)"
            ));
        }
    }
    Ok(Box::new(NodeDb::from_ctx(protocol, ctx)?))
}

impl NodeDb {
    /// A cluster of `protocol` on the run's nodes, with its seeded bugs
    /// (checked), options, libfaketime and uploaded binary. Options are
    /// the caller's to check: each protocol knows its own.
    pub fn from_ctx(protocol: &str, ctx: &DbContext) -> Result<NodeDb, String> {
        validate_bugs(protocol, &ctx.bugs)?;
        let mut d = NodeDb::new(protocol, ctx.nodes.iter().cloned());
        d.bugs = ctx.bugs.clone();
        d.libfaketime = ctx.libfaketime.clone();
        d.options = ctx.options.clone();
        d.binary = ctx
            .binary
            .clone()
            .ok_or("the faultline-node binary was not given")?;
        Ok(d)
    }
}

/// The [`Db`] methods a wrapper of a [`NodeDb`] (its field `.0`) takes
/// unchanged — commands, addresses, files, settings — so that a wrapper
/// (crdt, dynamo, elect, swim) writes only what differs: readiness, its
/// target, its checker.
macro_rules! node_db_commands {
    () => {
        fn what(&self) -> &str {
            $crate::db::Db::what(&self.0)
        }
        fn addresses(&self) -> &std::collections::BTreeMap<String, String> {
            &self.0.nodes
        }
        fn setup(&self) -> Vec<$crate::db::Step<'_>> {
            $crate::db::Db::setup(&self.0)
        }
        fn install_command(&self) -> String {
            self.0.install_command()
        }
        fn teardown_command(&self) -> String {
            self.0.teardown_command()
        }
        fn start_command(&self, node: &str) -> Option<String> {
            self.0.start_command(node)
        }
        fn pidfile(&self) -> &str {
            $crate::db::Db::pidfile(&self.0)
        }
        fn log_file(&self) -> &str {
            $crate::db::Db::log_file(&self.0)
        }
        fn json(&self) -> (&'static str, serde_json::Value) {
            $crate::db::Db::json(&self.0)
        }
    };
}
pub(crate) use node_db_commands;

impl Db for NodeDb {
    fn what(&self) -> &str {
        &self.protocol
    }
    fn addresses(&self) -> &BTreeMap<String, String> {
        &self.nodes
    }
    /// Cleanup first: it empties the directory the binary goes to.
    fn setup(&self) -> Vec<Step<'_>> {
        let w = &self.protocol;
        vec![
            Step::all(format!("{w} cleanup"), NodeDb::teardown_command(self)),
            Step::Upload {
                local: self.binary.clone(),
                remote: format!("{BINARY}.new"),
            },
            Step::all(format!("{w} install check"), NodeDb::install_command(self)),
            Step::Each {
                what: format!("{w} start"),
                cmd: Box::new(move |n| NodeDb::start_command(self, n)),
            },
            Step::Ready,
        ]
    }
    fn install_command(&self) -> String {
        NodeDb::install_command(self)
    }
    fn teardown_command(&self) -> String {
        NodeDb::teardown_command(self)
    }
    fn start_command(&self, node: &str) -> Option<String> {
        NodeDb::start_command(self, node)
    }
    fn pidfile(&self) -> &str {
        PID_FILE
    }
    fn log_file(&self) -> &str {
        LOG_FILE
    }
    fn json(&self) -> (&'static str, serde_json::Value) {
        (
            "node",
            serde_json::json!({
                "protocol": self.protocol, "bugs": self.bugs, "tick_ms": self.tick_ms,
                "election_ticks": self.election_ticks, "heartbeat_ticks": self.heartbeat_ticks,
                "libfaketime": self.libfaketime, "binary": self.binary, "options": self.options,
            }),
        )
    }
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(wait_leader(self, deadline, cancelled))
    }
    fn target(&self) -> Arc<dyn Target> {
        let mut t = NodeTarget::new(self.client_config());
        t.pb.monitor = self.protocol == "pb"
            && self.options.get("failover").map(String::as_str) == Some("monitor");
        Arc::new(t)
    }
}

/// Waits until every member answers on its client API and all of them
/// name the same leader, or fails naming those that do not.
async fn wait_leader(
    db: &NodeDb,
    deadline: Duration,
    cancelled: Cancelled<'_>,
) -> Result<(), String> {
    let target = NodeTarget::new(db.client_config());
    let t0 = Instant::now();
    loop {
        let all = target.statuses(Duration::from_secs(1)).await;
        let leaders: std::collections::BTreeSet<_> = all
            .iter()
            .map(|(_, s)| s.as_ref().and_then(|s| s.leader))
            .collect();
        let silent: Vec<String> = all
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|(n, _)| {
                format!(
                    "{n} (no answer on {})",
                    db.client_addr(n).unwrap_or_default()
                )
            })
            .collect();
        if silent.is_empty() && leaders.len() == 1 && !leaders.contains(&None) {
            return Ok(());
        }
        if cancelled() {
            return Err(format!(
                "interrupted while waiting for {} to elect a leader",
                db.protocol
            ));
        }
        if t0.elapsed() > deadline {
            let views: Vec<String> = all
                .iter()
                .filter_map(|(n, s)| {
                    s.as_ref()
                        .map(|s| format!("{n} ({} term {} leader {:?})", s.role, s.term, s.leader))
                })
                .collect();
            return Err(format!(
                "{} did not agree on a leader within {} s: {}",
                db.protocol,
                deadline.as_secs(),
                silent
                    .into_iter()
                    .chain(views)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the members' client APIs are: in id order (id = index + 1).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    pub protocol: String,
    pub members: Vec<(String, String)>,
}

/// The target: clients for every workload, leader discovery, log files.
pub struct NodeTarget {
    cfg: Arc<NodeConfig>,
    /// Primary-backup's failover ([`crate::pb`]); unused by the others.
    pb: crate::pb::PbFailover,
    /// Chain replication's master ([`crate::chain`]); unused by the others.
    chain: crate::chain::ChainMaster,
}

impl NodeTarget {
    pub fn new(cfg: NodeConfig) -> NodeTarget {
        NodeTarget {
            cfg: Arc::new(cfg),
            pb: Default::default(),
            chain: Default::default(),
        }
    }

    pub fn config(&self) -> NodeConfig {
        (*self.cfg).clone()
    }

    pub fn pb_failover(&self) -> &crate::pb::PbFailover {
        &self.pb
    }

    pub fn chain_master(&self) -> &crate::chain::ChainMaster {
        &self.chain
    }

    /// Asks one member for its status (None when it does not answer in time).
    pub async fn status(&self, node: &str, timeout: Duration) -> Option<NodeStatus> {
        let addr = self.cfg.members.iter().find(|(n, _)| n == node)?.1.clone();
        let line = LineConn::once(&addr, &ClientRequest::Status.to_line(), timeout).await?;
        match serde_json::from_str(&line).ok()? {
            ClientReply::Status(s) => Some(s),
            _ => None,
        }
    }

    /// Every member's (name, client address), in id order.
    pub fn members(&self) -> &[(String, String)] {
        &self.cfg.members
    }

    /// Every member's status, `None` for those that did not answer.
    pub async fn statuses(&self, timeout: Duration) -> Vec<(String, Option<NodeStatus>)> {
        let futs = self
            .cfg
            .members
            .iter()
            .map(|(n, _)| async move { (n.clone(), self.status(n, timeout).await) });
        let mut out = Vec::new();
        for f in futs {
            out.push(f.await);
        }
        out
    }
}

impl Target for NodeTarget {
    fn name(&self) -> &str {
        &self.cfg.protocol
    }

    fn workloads(&self) -> &[Workload] {
        &Workload::ALL
    }

    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            self.check_supports(opts.workload.workload)?;
            crate::pb::start_monitor(self);
            crate::chain::start_master(self);
            let at = self
                .cfg
                .members
                .iter()
                .position(|(n, _)| n == node)
                .ok_or_else(|| TargetError::UnknownNode(node.to_string()))?;
            // Ids must be unique across every client of every run against
            // this cluster (the servers remember each client's last request).
            let client_id = rand::random::<u64>() >> 1;
            Ok(Box::new(NodeClient {
                cfg: Arc::clone(&self.cfg),
                workload: opts.workload.clone(),
                at,
                conn: LineConn::default(),
                client_id,
                seq: 0,
                // Give up before the runner does, so this client classifies.
                budget: opts.timeout.mul_f64(0.9),
            }) as Box<dyn Client>)
        })
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }

    /// Primary-backup fails over from the nemesis' heal ([`crate::pb`]),
    /// chain replication's master reconfigures there too ([`crate::chain`]).
    fn failover(&self) -> Option<&dyn crate::Failover> {
        matches!(self.cfg.protocol.as_str(), "pb" | "chain").then_some(self as &dyn crate::Failover)
    }

    fn log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }
}

impl Primaries for NodeTarget {
    fn primaries<'a>(
        &'a self,
        nodes: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async move {
            let all = self.statuses(Duration::from_secs(1)).await;
            // Leaders of the newest term only: a deposed leader that has
            // not heard of the new term yet still says `leader`.
            let top = all
                .iter()
                .filter_map(|(_, s)| s.as_ref().filter(|s| s.role == "leader").map(|s| s.term))
                .max();
            Ok(all
                .into_iter()
                .filter(|(n, s)| {
                    nodes.contains(n)
                        && s.as_ref()
                            .is_some_and(|s| s.role == "leader" && Some(s.term) == top)
                })
                .map(|(n, _)| n)
                .collect())
        })
    }
}

impl LogFiles for NodeTarget {
    fn log_files(&self, _node: &str) -> Vec<String> {
        vec![LOG_FILE.to_string()]
    }
}

pub(crate) struct NodeClient {
    cfg: Arc<NodeConfig>,
    workload: WorkloadOptions,
    /// Index of the member talked to.
    at: usize,
    conn: LineConn,
    pub(crate) client_id: u64,
    seq: u64,
    budget: Duration,
}

/// How a request ended without a definite answer.
pub(crate) enum Fate {
    /// Nothing was ever accepted anywhere: certainly no effect.
    NoEffect(String),
    /// Sent, and its fate is unknown.
    Unknown(String),
}

impl NodeClient {
    /// A client of the cluster `cfg` starting at member `at`, with a fresh
    /// random id, giving up on a request after `budget`.
    pub(crate) fn new(
        cfg: Arc<NodeConfig>,
        workload: WorkloadOptions,
        at: usize,
        budget: Duration,
    ) -> NodeClient {
        NodeClient {
            cfg,
            workload,
            at,
            conn: LineConn::default(),
            client_id: rand::random::<u64>() >> 1,
            seq: 0,
            budget,
        }
    }

    /// Sends `op` until a definite answer or the deadline.
    pub(crate) async fn call(&mut self, op: KvOp) -> Result<Result<Value, String>, Fate> {
        self.seq += 1;
        let cmd = Command {
            id: RequestId {
                client: self.client_id,
                seq: self.seq,
            },
            op,
        };
        let line = ClientRequest::Command(cmd.clone()).to_line();
        let deadline = Instant::now() + self.budget;
        let n = self.cfg.members.len().max(1);
        let mut uncertain: Option<String> = None;
        let mut last = String::from("no member answered");
        let mut misses = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(match uncertain {
                    Some(e) => Fate::Unknown(e),
                    None => Fate::NoEffect(format!("timed out: {last}")),
                });
            }
            if misses >= n {
                // A full round without a leader: elections take time.
                tokio::time::sleep(Duration::from_millis(50).min(left)).await;
                misses = 0;
            }
            let (name, addr) = self.cfg.members[self.at].clone();
            let connect = left.min(Duration::from_secs(1));
            if let Err(e) = self.conn.open(&addr, connect).await {
                last = format!("{name}: {e}");
                self.at = (self.at + 1) % n;
                misses += 1;
                continue;
            }
            if let Err(e) = self.conn.send(&line).await {
                // Part of the line may have gone out.
                uncertain = Some(format!("{name}: sending: {e}"));
                self.at = (self.at + 1) % n;
                misses += 1;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let buf = match self.conn.read_line(left).await {
                Ok(buf) => buf,
                Err(ReadError::Timeout) => {
                    return Err(Fate::Unknown(format!("{name}: no reply in time")));
                }
                Err(ReadError::Lost) => {
                    uncertain = Some(format!("{name}: connection lost after sending"));
                    self.at = (self.at + 1) % n;
                    misses += 1;
                    continue;
                }
            };
            let reply = serde_json::from_str::<ClientReply>(&buf);
            match reply {
                Ok(ClientReply::Ok { id, value }) if id == cmd.id => return Ok(Ok(value)),
                Ok(ClientReply::Fail { id, error }) if id == cmd.id => return Ok(Err(error)),
                Ok(ClientReply::NotLeader { id, leader }) if id == cmd.id => {
                    last = format!("{name}: not the leader");
                    match leader
                        .and_then(|l| usize::try_from(l).ok())
                        .filter(|l| (1..=n).contains(l))
                    {
                        Some(l) if l - 1 != self.at => self.at = l - 1,
                        _ => {
                            self.at = (self.at + 1) % n;
                            misses += 1;
                        }
                    }
                    self.conn.close();
                }
                Ok(ClientReply::Unknown { id, error }) if id == cmd.id => {
                    // Resending the same id is safe: it applies at most once.
                    uncertain = Some(format!("{name}: {error}"));
                    last = uncertain.clone().unwrap_or_default();
                    misses += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(other) => {
                    self.conn.close();
                    return Err(Fate::Unknown(format!("{name}: unexpected reply {other:?}")));
                }
                Err(e) => {
                    self.conn.close();
                    return Err(Fate::Unknown(format!("{name}: bad reply {buf:?}: {e}")));
                }
            }
        }
    }
}

/// A workload operation as a state-machine op, or why it is malformed.
fn to_kv(w: Workload, op: &Op, client: u64) -> Result<KvOp, String> {
    let key = || {
        op.key
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{} needs an integer key", op.f))
    };
    let int = |v: &Value| v.as_i64().ok_or_else(|| format!("{v} is not an integer"));
    Ok(match (w, op.f.as_str()) {
        (Workload::Register, "read") => KvOp::Read { key: key()? },
        (Workload::Register, "write") => KvOp::Write {
            key: key()?,
            value: int(&op.value)?,
        },
        (Workload::Register, "cas") => {
            let (Some(from), Some(to)) = (op.value.get(0), op.value.get(1)) else {
                return Err("cas value must be [old, new]".into());
            };
            KvOp::Cas {
                key: key()?,
                from: int(from)?,
                to: int(to)?,
            }
        }
        (Workload::ListAppend | Workload::RwRegister, "txn") => {
            let mops = op.value.as_array().ok_or("txn value must be a list")?;
            let mut out = Vec::with_capacity(mops.len());
            for m in mops {
                let k = m
                    .get(1)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("bad micro-op {m}"))?;
                out.push(match (m.get(0).and_then(Value::as_str), w) {
                    (Some("append"), Workload::ListAppend) => Micro::Append {
                        key: k,
                        value: int(m.get(2).unwrap_or(&Value::Null))?,
                    },
                    (Some("w"), Workload::RwRegister) => Micro::Write {
                        key: k,
                        value: int(m.get(2).unwrap_or(&Value::Null))?,
                    },
                    (Some("r"), Workload::ListAppend) => Micro::ReadList { key: k },
                    (Some("r"), _) => Micro::Read { key: k },
                    _ => return Err(format!("bad micro-op {m}")),
                });
            }
            KvOp::Txn(out)
        }
        (Workload::Set, "add") => KvOp::SetAdd {
            value: int(&op.value)?,
        },
        (Workload::Set, "read") => KvOp::SetRead,
        (Workload::Counter, "add") => KvOp::CounterAdd {
            delta: int(&op.value)?,
        },
        (Workload::Counter, "read") => KvOp::CounterRead,
        (Workload::Bank, "transfer") => {
            let f = |k: &str| op.value.get(k).and_then(Value::as_i64);
            let (Some(from), Some(to), Some(amount)) = (f("from"), f("to"), f("amount")) else {
                return Err("transfer needs from, to, amount".into());
            };
            KvOp::BankTransfer {
                from: from as u32,
                to: to as u32,
                amount,
            }
        }
        (Workload::Bank, "read") => KvOp::BankRead,
        (Workload::Queue, "enqueue") => KvOp::Enqueue {
            value: int(&op.value)?,
        },
        (Workload::Queue, "dequeue") => KvOp::Dequeue,
        (Workload::Queue, "drain") => KvOp::Drain,
        (Workload::UniqueIds, "generate") => KvOp::GenerateId,
        (Workload::Lock, "acquire") => KvOp::Acquire { owner: client },
        (Workload::Lock, "release") => KvOp::Release { owner: client },
        (Workload::Saga, "order") => KvOp::SagaOrder(
            serde_json::from_value(op.value.clone())
                .map_err(|e| format!("order {}: {e}", op.value))?,
        ),
        (Workload::Saga, "restock") => KvOp::SagaRestock(
            serde_json::from_value(op.value.clone())
                .map_err(|e| format!("restock {}: {e}", op.value))?,
        ),
        (Workload::Saga, "top-up") => KvOp::SagaTopUp(
            serde_json::from_value(op.value.clone())
                .map_err(|e| format!("top-up {}: {e}", op.value))?,
        ),
        (Workload::Saga, "read") => KvOp::SagaRead,
        (w, f) => return Err(format!("`{f}` is not an operation of {w}")),
    })
}

/// The history value of a successful op, from the state machine's output.
fn completion_value(w: Workload, op: &Op, out: Value) -> Value {
    match (w, op.f.as_str()) {
        (Workload::Register, "write" | "cas") | (Workload::Set | Workload::Counter, "add") => {
            op.value.clone()
        }
        (Workload::Bank, "transfer") => op.value.clone(),
        // Balances by account, as an object with string keys (like noop).
        (Workload::Bank, "read") => match out {
            Value::Array(b) => Value::Object(
                b.into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v))
                    .collect(),
            ),
            other => other,
        },
        (Workload::Queue, "enqueue") | (Workload::Saga, "order" | "restock" | "top-up") => {
            op.value.clone()
        }
        (Workload::Lock, _) => Value::Null,
        _ => out,
    }
}

impl Client for NodeClient {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let init = match self.workload.workload {
                Workload::Bank => KvOp::BankInit {
                    balances: self.workload.initial_balances(),
                },
                Workload::Saga => faultline_node::saga::initial(),
                _ => return Ok(()),
            };
            match self.call(init).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("{} setup: {e}", self.workload.workload)),
                Err(Fate::NoEffect(e) | Fate::Unknown(e)) => {
                    Err(format!("{} setup: {e}", self.workload.workload))
                }
            }
        })
    }

    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let w = self.workload.workload;
            let kop = match to_kv(w, op, self.client_id) {
                Ok(k) => k,
                Err(e) => return Completion::fail(e),
            };
            let read_only = kop.is_read_only();
            match self.call(kop).await {
                Ok(Ok(v)) => Completion::ok(completion_value(w, op, v)),
                Ok(Err(e)) => Completion::fail(e),
                Err(Fate::NoEffect(e)) => Completion::fail(e),
                Err(Fate::Unknown(e)) if read_only => Completion::fail(e),
                Err(Fate::Unknown(e)) => Completion::info(e),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.conn.close();
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> NodeDb {
        let mut d = NodeDb::new(
            "raft",
            [
                ("n1", "10.77.9.11"),
                ("n2", "10.77.9.12"),
                ("n3", "10.77.9.13"),
            ],
        );
        d.bugs = vec!["stale-read".into()];
        d.libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into();
        d
    }

    #[test]
    fn start_is_detached_under_faketime_with_bugs() {
        let c = db().start_command("n3").unwrap();
        assert!(c.starts_with("if [ -f /opt/faultline-node/node.pid ] && kill -0"));
        assert!(c.contains("setsid nohup env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME_TIMESTAMP_FILE=/tmp/faultline-faketime.rc"));
        assert!(c.contains("FAKETIME_DONT_FAKE_MONOTONIC=1"));
        assert!(c.contains("raft --id 3 --peers 1=10.77.9.11:7001"));
        assert!(c.contains("--bug stale-read </dev/null >>/opt/faultline-node/node.log 2>&1 & echo $! > /opt/faultline-node/node.pid"));
        assert!(!c.contains("&& cd"));
        assert!(db().start_command("n9").is_none());
        let mut plain = db();
        plain.libfaketime.clear();
        assert!(!plain.start_command("n1").unwrap().contains("LD_PRELOAD"));
    }

    #[test]
    fn ops_map_onto_the_state_machine() {
        let r = |f: &str, k: Option<Value>, v: Value| Op::new(f, k, v);
        assert_eq!(
            to_kv(
                Workload::Register,
                &r("cas", Some(json!(3)), json!([1, 2])),
                9
            )
            .unwrap(),
            KvOp::Cas {
                key: 3,
                from: 1,
                to: 2
            }
        );
        assert_eq!(
            to_kv(
                Workload::ListAppend,
                &r("txn", None, json!([["append", 1, 5], ["r", 1, null]])),
                9
            )
            .unwrap(),
            KvOp::Txn(vec![
                Micro::Append { key: 1, value: 5 },
                Micro::ReadList { key: 1 }
            ])
        );
        assert_eq!(
            to_kv(
                Workload::RwRegister,
                &r("txn", None, json!([["r", 2, null]])),
                9
            )
            .unwrap(),
            KvOp::Txn(vec![Micro::Read { key: 2 }])
        );
        assert_eq!(
            to_kv(Workload::Lock, &r("acquire", None, Value::Null), 9).unwrap(),
            KvOp::Acquire { owner: 9 }
        );
        assert!(to_kv(Workload::Register, &r("read", None, Value::Null), 9).is_err());
        assert!(
            to_kv(
                Workload::ListAppend,
                &r("txn", None, json!([["w", 1, 2]])),
                9
            )
            .is_err()
        );
        assert_eq!(
            completion_value(Workload::Bank, &r("read", None, Value::Null), json!([3, 4])),
            json!({"0": 3, "1": 4})
        );
    }

    /// A real `single` cluster on loopback (threads in this process), and
    /// the client following the not-leader hint from a backup.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_follows_the_leader_hint_and_classifies() {
        use faultline_node::shell::{self};
        let cluster =
            crate::loopback::start::<shell::single::Single>("single", "node", 3, (10, 2), &[]);
        let target = NodeTarget::new(NodeConfig {
            protocol: "single".into(),
            members: cluster.members.clone(),
        });
        let opts = ClientOpts::new(WorkloadOptions::new(Workload::Register));
        let mut c = target.client("n3", &opts).await.unwrap();
        let k = Some(json!(1));
        let w = c.invoke(&Op::new("write", k.clone(), json!(4))).await;
        assert_eq!(w, Completion::ok(json!(4)));
        let bad = c.invoke(&Op::new("cas", k.clone(), json!([1, 2]))).await;
        assert_eq!(bad.outcome, faultline_workloads::Outcome::Fail);
        let rd = c.invoke(&Op::new("read", k.clone(), Value::Null)).await;
        assert_eq!(rd, Completion::ok(json!(4)));
        let p = Primaries::primaries(&target, &["n1".into(), "n2".into(), "n3".into()])
            .await
            .unwrap();
        assert_eq!(p, ["n1"]);
        // A cluster with nobody listening: refused before sending → fail.
        let dead = NodeTarget::new(NodeConfig {
            protocol: "single".into(),
            members: vec![(
                "n1".into(),
                format!("127.0.0.1:{}", crate::loopback::free_port()),
            )],
        });
        let mut o = ClientOpts::new(WorkloadOptions::new(Workload::Register));
        o.timeout = Duration::from_millis(300);
        let mut c = dead.client("n1", &o).await.unwrap();
        let w = c.invoke(&Op::new("write", k, json!(1))).await;
        assert_eq!(w.outcome, faultline_workloads::Outcome::Fail, "{w:?}");
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
