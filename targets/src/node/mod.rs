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

mod client;
mod hooks;
pub(crate) use client::{Fate, NodeClient};
pub use hooks::{Hooks, KvHooks, NodeHooks};

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, Step, TargetInfo};
use crate::line_conn::{LineConn, ReadError};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Primaries, Target, TargetError};
use faultline_nemesis::NemesisKind;
use faultline_node::kv::{Command, Micro, Op as KvOp, RequestId};
use faultline_node::registry::Protocol;
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
/// The node's message trace (`faultline_trace::MESSAGES_FILE` in the data
/// dir), fetched beside its log for `faultline trace`.
pub const TRACE_FILE: &str = "/opt/faultline-node/data/messages.jsonl";
pub const PID_FILE: &str = "/opt/faultline-node/node.pid";
pub const CLIENT_PORT: u16 = 7000;
pub const PEER_PORT: u16 = 7001;
/// The lab's per-node libfaketime control file (faultline-nemesis'
/// `FAKETIME_FILE`).
pub const FAKETIME_FILE: &str = "/tmp/faultline-faketime.rc";

/// The protocols this target runs (the registry's replicated logs).
pub fn protocols() -> impl Iterator<Item = &'static Protocol> {
    faultline_node::registry::PROTOCOLS
        .iter()
        .filter(|p| p.replicated_log)
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
    /// The protocol's clients, readiness and checker ([`KvHooks`] unless
    /// set with [`NodeDb::with_hooks`]).
    pub hooks: Hooks,
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
            hooks: Hooks(Arc::new(KvHooks)),
        }
    }

    /// The same cluster with a protocol's own hooks.
    pub fn with_hooks(mut self, hooks: impl NodeHooks + 'static) -> NodeDb {
        self.hooks = Hooks(Arc::new(hooks));
        self
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
        vec![LOG_FILE.to_string(), TRACE_FILE.to_string()]
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

/// The catalogue row of a faultline-node protocol, from its registry entry
/// (name, about, workloads, bugs); `build` makes its [`Db`] from the run's
/// context. A name missing from the registry is a row with no workloads,
/// which the catalogue test refuses.
pub fn node_info(protocol: &'static str, build: crate::db::Builder) -> TargetInfo {
    let p = faultline_node::registry::find(protocol);
    TargetInfo {
        name: protocol,
        description: format!("faultline-node {protocol}: {}", p.map_or("", |p| p.about)),
        workloads: p.map_or_else(Vec::new, workloads_of),
        faults: NODE_FAULTS.to_vec(),
        clock: Clock::Everywhere,
        bugs: bugs_of(protocol),
        needs_node_binary: true,
        kind: Kind::Deployed(build),
    }
}

/// The catalogue rows, one per protocol.
pub fn infos() -> Vec<TargetInfo> {
    protocols().map(|p| node_info(p.name, build)).collect()
}

/// A protocol's workloads, typed (the registry names them; the catalogue
/// test checks every name parses).
pub fn workloads_of(p: &Protocol) -> Vec<Workload> {
    p.workloads.iter().filter_map(|w| w.parse().ok()).collect()
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
    fn log_files(&self) -> Vec<String> {
        NodeDb::log_files(self)
    }
    fn json(&self) -> (&'static str, serde_json::Value) {
        let mut v = serde_json::json!({
            "protocol": self.protocol, "bugs": self.bugs, "tick_ms": self.tick_ms,
            "election_ticks": self.election_ticks, "heartbeat_ticks": self.heartbeat_ticks,
            "libfaketime": self.libfaketime, "binary": self.binary, "options": self.options,
        });
        self.hooks.0.json(self, &mut v);
        ("node", v)
    }
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.hooks.0.wait_ready(self, deadline, cancelled)
    }
    fn target(&self) -> Arc<dyn Target> {
        self.hooks.0.target(self)
    }
    fn checker(&self, workload: Workload) -> Option<&'static str> {
        self.hooks.0.checker(workload)
    }
    fn workload_options(&self, opts: &mut WorkloadOptions) {
        self.hooks.0.workload_options(opts)
    }
    fn lesson(&self, workload: Workload) -> Option<&'static str> {
        self.hooks.0.lesson(workload)
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
            // A random id (unique across every client of every run against
            // this cluster: the servers remember each client's last
            // request); giving up before the runner does, so this client
            // classifies.
            Ok(Box::new(NodeClient::new(
                Arc::clone(&self.cfg),
                opts.workload.clone(),
                at,
                opts.timeout.mul_f64(0.9),
            )) as Box<dyn Client>)
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

#[cfg(test)]
mod tests;
