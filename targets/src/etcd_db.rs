//! Deploying etcd on nodes, as shell commands: install check, start, kill,
//! restart, pause, resume, teardown, and the log files to fetch.
//!
//! Pure command generation: nothing here runs anything. The `faultline`
//! binary executes the commands on each node over its `Remote` (SSH), in
//! parallel, and polls [`EtcdDb::health_url`] from the controller.
//!
//! Layout on every node (LAB-NOTES §2 pitfall 4: the host's /var is shared
//! by lab nodes, so everything lives under the node's private /opt):
//! `/opt/etcd/data` (data dir), `/opt/etcd/etcd.log` (stdout and stderr,
//! appended across restarts), `/opt/etcd/etcd.pid` (the in-node pid).
//!
//! ```
//! use faultline_targets::etcd_db::EtcdDb;
//! let db = EtcdDb::new([("n1", "10.77.0.11"), ("n2", "10.77.0.12"), ("n3", "10.77.0.13")]);
//! let cmd = db.start_command("n2").unwrap();
//! assert!(cmd.contains("--name n2"));
//! assert!(cmd.contains("n1=http://10.77.0.11:2380,n2=http://10.77.0.12:2380"));
//! assert_eq!(db.client_url("n3").unwrap(), "http://10.77.0.13:2379");
//! ```

use faultline_nemesis::NemesisKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, TargetInfo};
use crate::etcd::{EtcdConfig, EtcdTarget, ReadMode};
use crate::{BoxFuture, Target};

/// Where etcd lives on a node.
pub const DIR: &str = "/opt/etcd";
pub const DATA_DIR: &str = "/opt/etcd/data";
pub const LOG_FILE: &str = "/opt/etcd/etcd.log";
pub const PID_FILE: &str = "/opt/etcd/etcd.pid";
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

/// Why clock faults cannot reach etcd (`--nemesis clock` is refused).
pub const CLOCK_UNSUPPORTED: &str = "etcd is written in Go, and Go reads the clock through \
     the vDSO, not through libc, so libfaketime (the lab's per-node clock) cannot change \
     etcd's clock; the lab's nodes share one kernel clock, so there is no other way to skew \
     it here";

/// An etcd cluster on a set of nodes: member name → address.
#[derive(Clone, Debug, PartialEq)]
pub struct EtcdDb {
    /// node name → IP address or host name the members use for each other.
    pub nodes: BTreeMap<String, String>,
    /// `--heartbeat-interval`, ms. The default 200 is twice etcd's: the lab
    /// shares two loaded cores, and spurious elections only cost
    /// availability, but they make runs noisy.
    pub heartbeat_ms: u32,
    /// `--election-timeout`, ms (10 × heartbeat, etcd's advice).
    pub election_ms: u32,
    /// `--initial-cluster-token`.
    pub token: String,
    /// The etcd binary (looked up in PATH when not absolute).
    pub binary: String,
    /// How the clients read.
    pub read_mode: ReadMode,
}

impl EtcdDb {
    pub fn new<N: Into<String>, A: Into<String>>(
        nodes: impl IntoIterator<Item = (N, A)>,
    ) -> EtcdDb {
        EtcdDb {
            nodes: nodes
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
            heartbeat_ms: 200,
            election_ms: 2000,
            token: "faultline".into(),
            binary: "etcd".into(),
            read_mode: ReadMode::default(),
        }
    }

    /// `http://ADDR:2379` of a node.
    pub fn client_url(&self, node: &str) -> Option<String> {
        self.nodes
            .get(node)
            .map(|a| format!("http://{a}:{CLIENT_PORT}"))
    }

    /// `http://ADDR:2379/health` (a plain GET; `{"health":"true"}` when the
    /// member is up and the cluster has a leader).
    pub fn health_url(&self, node: &str) -> Option<String> {
        self.client_url(node).map(|u| format!("{u}/health"))
    }

    /// `n1=http://…:2380,n2=…`.
    pub fn initial_cluster(&self) -> String {
        self.nodes
            .iter()
            .map(|(n, a)| format!("{n}={}", peer_url(a)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Succeeds when etcd is installed; otherwise installs the Debian
    /// package (lab nodes share the host's /usr, so it is there when the
    /// host has it).
    pub fn install_command(&self) -> String {
        format!(
            "command -v {b} >/dev/null 2>&1 || {{ DEBIAN_FRONTEND=noninteractive apt-get install -y \
             etcd-server >/tmp/faultline-apt.log 2>&1 || {{ tail -5 /tmp/faultline-apt.log >&2; exit 1; }}; }}; \
             command -v {b} >/dev/null 2>&1 || {{ echo 'etcd is not installed and apt-get did not install it' >&2; exit 1; }}",
            b = self.binary
        )
    }

    /// Starts the member on `node`, fully detached (every fd redirected, a
    /// new session), unless it already runs. An existing data dir wins over
    /// the `--initial-cluster*` flags, so the same command restarts a
    /// killed member. Prints the pid.
    pub fn start_command(&self, node: &str) -> Option<String> {
        let addr = self.nodes.get(node)?;
        let peer = peer_url(addr);
        let client = format!("http://{addr}:{CLIENT_PORT}");
        let cmd = format!(
            "{bin} --name {node} --data-dir {DATA_DIR} \
             --listen-peer-urls {peer} --initial-advertise-peer-urls {peer} \
             --listen-client-urls {client} --advertise-client-urls {client} \
             --initial-cluster {cluster} --initial-cluster-state new \
             --initial-cluster-token {token} \
             --heartbeat-interval {hb} --election-timeout {el} \
             --logger zap --log-outputs stderr",
            bin = self.binary,
            cluster = self.initial_cluster(),
            token = self.token,
            hb = self.heartbeat_ms,
            el = self.election_ms,
        );
        Some(crate::pidfile::start_command(
            PID_FILE, DIR, DIR, &cmd, LOG_FILE,
        ))
    }

    /// Restarts the member only if its process is gone: the heal of a
    /// kill, safe to run at any time.
    pub fn restart_command(&self, node: &str) -> Option<String> {
        // start_command already checks the pidfile first.
        self.start_command(node)
    }

    /// SIGKILL by pidfile (nothing when it is not running).
    pub fn kill_command(&self) -> String {
        crate::pidfile::kill_command(PID_FILE)
    }

    /// SIGSTOP by pidfile.
    pub fn pause_command(&self) -> String {
        crate::pidfile::pause_command(PID_FILE)
    }

    /// SIGCONT by pidfile.
    pub fn resume_command(&self) -> String {
        crate::pidfile::resume_command(PID_FILE)
    }

    /// Kills the member (resuming it first, in case it is paused) and
    /// removes every file it had. Waits until the process is gone.
    pub fn teardown_command(&self) -> String {
        crate::pidfile::teardown_command(PID_FILE, &format!("rm -rf {DIR}"))
    }

    /// Files to fetch into the store's `nodes/<node>/` after a run.
    pub fn log_files(&self) -> Vec<String> {
        vec![LOG_FILE.to_string()]
    }
}

/// The catalogue row.
pub fn info() -> TargetInfo {
    TargetInfo {
        name: "etcd",
        description: "etcd 3.4 (apt etcd-server) deployed on the nodes, through its v3 JSON \
                      gateway (--db-option read-mode=serializable for local reads)"
            .into(),
        workloads: crate::etcd::WORKLOADS.to_vec(),
        faults: vec![
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::Crash,
            NemesisKind::Bandwidth,
            NemesisKind::Loss,
            NemesisKind::Latency,
        ],
        clock: Clock::OutsideLab(CLOCK_UNSUPPORTED),
        bugs: Vec::new(),
        needs_node_binary: false,
        kind: Kind::Deployed(build),
    }
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options("etcd", &ctx.options, &["read-mode"])?;
    let mut db = EtcdDb::new(ctx.nodes.iter().cloned());
    if let Some(m) = ctx.options.get("read-mode") {
        db.read_mode = m
            .parse()
            .map_err(|e| format!("--db-option read-mode: {e}"))?;
    }
    Ok(Box::new(db))
}

impl Db for EtcdDb {
    fn what(&self) -> &str {
        "etcd"
    }
    fn addresses(&self) -> &BTreeMap<String, String> {
        &self.nodes
    }
    fn install_command(&self) -> String {
        EtcdDb::install_command(self)
    }
    fn teardown_command(&self) -> String {
        EtcdDb::teardown_command(self)
    }
    fn start_command(&self, node: &str) -> Option<String> {
        EtcdDb::start_command(self, node)
    }
    fn pidfile(&self) -> &str {
        PID_FILE
    }
    fn log_file(&self) -> &str {
        LOG_FILE
    }
    fn json(&self) -> (&'static str, serde_json::Value) {
        (
            "etcd",
            serde_json::json!({"heartbeat_ms": self.heartbeat_ms, "election_ms": self.election_ms}),
        )
    }
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(wait_healthy(self, deadline, cancelled))
    }
    fn target(&self) -> Arc<dyn Target> {
        Arc::new(EtcdTarget::new(
            EtcdConfig::new(
                self.nodes
                    .keys()
                    .map(|n| (n.clone(), self.client_url(n).unwrap_or_default())),
            )
            .with_read_mode(self.read_mode),
        ))
    }
}

/// Polls every member's `/health` from the controller until all say
/// `"health":"true"`, or fails naming those that did not.
async fn wait_healthy(
    db: &EtcdDb,
    deadline: Duration,
    cancelled: Cancelled<'_>,
) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))?;
    let t0 = Instant::now();
    loop {
        let mut last = Vec::new();
        for n in db.nodes.keys() {
            let Some(url) = db.health_url(n) else {
                continue;
            };
            let why = match http.get(&url).send().await {
                Ok(r) => match r.json::<serde_json::Value>().await {
                    Ok(v) if v["health"] == "true" => continue,
                    Ok(v) => format!("unhealthy: {v}"),
                    Err(e) => format!("bad answer: {e}"),
                },
                Err(e) => format!("{e}"),
            };
            last.push(format!("{n} ({url}: {why})"));
        }
        if last.is_empty() {
            return Ok(());
        }
        if cancelled() {
            return Err("interrupted while waiting for etcd to become healthy".into());
        }
        if t0.elapsed() > deadline {
            return Err(format!(
                "etcd did not become healthy within {} s: {}",
                deadline.as_secs(),
                last.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn peer_url(addr: &str) -> String {
    format!("http://{addr}:{PEER_PORT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> EtcdDb {
        EtcdDb::new([
            ("n1", "10.77.0.11"),
            ("n2", "10.77.0.12"),
            ("n3", "10.77.0.13"),
        ])
    }

    #[test]
    fn start_is_detached_and_per_node() {
        let c = db().start_command("n1").unwrap();
        assert!(c.contains("</dev/null >>/opt/etcd/etcd.log 2>&1 & echo $! > /opt/etcd/etcd.pid"));
        assert!(c.contains("setsid nohup etcd --name n1 --data-dir /opt/etcd/data"));
        assert!(c.contains("--listen-client-urls http://10.77.0.11:2379"));
        assert!(c.contains("--heartbeat-interval 200 --election-timeout 2000"));
        // Idempotent: a running member is left alone.
        assert!(c.starts_with("if [ -f /opt/etcd/etcd.pid ] && kill -0"));
        // Never `mkdir … && … &`, which backgrounds the whole list.
        assert!(!c.contains("&& cd"));
        assert!(db().start_command("n9").is_none());
    }

    #[test]
    fn cluster_and_urls() {
        assert_eq!(
            db().initial_cluster(),
            "n1=http://10.77.0.11:2380,n2=http://10.77.0.12:2380,n3=http://10.77.0.13:2380"
        );
        assert_eq!(
            db().health_url("n2").unwrap(),
            "http://10.77.0.12:2379/health"
        );
    }

    #[test]
    fn teardown_removes_everything_under_opt() {
        let c = db().teardown_command();
        assert!(c.contains("kill -9"));
        assert!(c.ends_with("rm -rf /opt/etcd"));
        assert_eq!(db().log_files(), vec!["/opt/etcd/etcd.log"]);
        assert!(
            db().install_command()
                .contains("apt-get install -y etcd-server")
        );
    }
}
