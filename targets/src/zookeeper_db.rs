//! Deploying a ZooKeeper 3.8 ensemble (Debian's `zookeeper` package) on
//! nodes, as shell commands, and waiting until every server has a role.
//!
//! Layout on every node (the host's /var and /etc are shared by lab nodes,
//! LAB-NOTES §2 pitfall 4, so everything lives under the private /opt):
//! `/opt/zk/zoo.cfg`, `/opt/zk/data` (with `myid`), `/opt/zk/zk.log` (the
//! JVM's stdout and stderr; slf4j-simple logs to stderr), `/opt/zk/zk.pid`.
//!
//! The JVM runs `QuorumPeerMain` straight from Debian's jars (LAB-NOTES
//! §6): the package's own scripts and service would use the shared
//! /var/lib/zookeeper. The AdminServer (Jetty) is off: nothing here uses
//! it, and it costs a port, 30 MB and start-up CPU per server.
//!
//! Readiness: `srvr` on the client port must say `Mode: leader` or
//! `Mode: follower` (`standalone` for one node) on every server. `ruok`
//! answers `imok` before there is a quorum, so it is not used.
//!
//! Failure detection is `syncLimit × tickTime` (5 s by default): a server
//! cut off from the leader serves its local, possibly stale, copy until
//! then. `--db-option tick-ms=…,sync-limit=…` change it.
//!
//! Clock faults: outside the lab only ([`CLOCK_IN_LAB`] says why).
//!
//! ```
//! use faultline_targets::zookeeper_db::ZkDb;
//! let db = ZkDb::new([("n1", "10.77.0.11"), ("n2", "10.77.0.12"), ("n3", "10.77.0.13")]);
//! let cmd = db.start_command("n2").unwrap();
//! assert!(cmd.contains("echo 2 > /opt/zk/data/myid"));
//! assert!(cmd.contains("server.3=10.77.0.13:2888:3888"));
//! assert!(cmd.contains("org.apache.zookeeper.server.quorum.QuorumPeerMain /opt/zk/zoo.cfg"));
//! ```

use faultline_nemesis::NemesisKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, TargetInfo};
use crate::zookeeper::{ZkConfig, ZkTarget};
use crate::{BoxFuture, Target};

pub const DIR: &str = "/opt/zk";
pub const DATA_DIR: &str = "/opt/zk/data";
pub const CONFIG: &str = "/opt/zk/zoo.cfg";
pub const LOG_FILE: &str = "/opt/zk/zk.log";
pub const PID_FILE: &str = "/opt/zk/zk.pid";
pub const CLIENT_PORT: u16 = 2181;
/// Why clock faults are refused in the lab.
pub const CLOCK_IN_LAB: &str = "the lab fakes clocks with libfaketime, and a JVM under \
     libfaketime (re-reading its control file on every clock call) started about 7 times \
     slower here (127 s instead of 18 s to a quorum on a loaded 2-core box), too slow to \
     test; outside the lab the clock helper sets the real clock, which Java reads";
/// Debian's jars: the server, and an slf4j binding (without one the server
/// logs nothing at all).
pub const CLASSPATH: &str =
    "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// The options `--db-option` accepts.
pub const OPTIONS: [&str; 5] = [
    "sync-reads",
    "tick-ms",
    "sync-limit",
    "init-limit",
    "spare-sessions",
];

/// A ZooKeeper ensemble on a set of nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct ZkDb {
    /// node name → address; `myid` is the node's position (1-based) here.
    pub nodes: BTreeMap<String, String>,
    /// `tickTime`, ms (LAB-NOTES §6: 500).
    pub tick_ms: u32,
    /// `initLimit`, ticks (20: 10 s for a follower to sync at start-up).
    pub init_limit: u32,
    /// `syncLimit`, ticks (10: 5 s before a server cut off from the leader,
    /// or a leader cut off from its quorum, stops serving).
    pub sync_limit: u32,
    /// Clients `sync` before every read.
    pub sync_reads: bool,
    /// Established sessions kept ready per node for new clients.
    pub spare_sessions: usize,
}

impl ZkDb {
    pub fn new<N: Into<String>, A: Into<String>>(nodes: impl IntoIterator<Item = (N, A)>) -> ZkDb {
        ZkDb {
            nodes: nodes
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
            tick_ms: 500,
            init_limit: 20,
            sync_limit: 10,
            sync_reads: false,
            spare_sessions: 2,
        }
    }

    /// `IP:2181` of a node.
    pub fn client_addr(&self, node: &str) -> Option<String> {
        self.nodes.get(node).map(|a| format!("{a}:{CLIENT_PORT}"))
    }

    fn myid(&self, node: &str) -> Option<usize> {
        self.nodes.keys().position(|n| n == node).map(|i| i + 1)
    }

    /// The largest session timeout the servers grant (20 ticks).
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.tick_ms) * 20)
    }

    /// zoo.cfg of `node`, one line per element.
    pub fn config(&self, node: &str) -> Option<Vec<String>> {
        let addr = self.nodes.get(node)?;
        let mut c = vec![
            format!("tickTime={}", self.tick_ms),
            format!("initLimit={}", self.init_limit),
            format!("syncLimit={}", self.sync_limit),
            format!("dataDir={DATA_DIR}"),
            format!("clientPort={CLIENT_PORT}"),
            format!("clientPortAddress={addr}"),
            "4lw.commands.whitelist=*".into(),
            "admin.enableServer=false".into(),
        ];
        for (i, a) in self.nodes.values().enumerate() {
            c.push(format!("server.{}={a}:2888:3888", i + 1));
        }
        Some(c)
    }

    /// Succeeds when Java and the ZooKeeper jars are there; otherwise
    /// installs the Debian package (lab nodes share the host's /usr).
    pub fn install_command(&self) -> String {
        "{ command -v java >/dev/null 2>&1 && [ -f /usr/share/java/zookeeper.jar ] && \
         [ -f /usr/share/java/slf4j-simple.jar ]; } || { DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends zookeeper libslf4j-java \
         >/tmp/faultline-apt.log 2>&1 || { tail -5 /tmp/faultline-apt.log >&2; exit 1; }; }; \
         [ -f /usr/share/java/zookeeper.jar ] || { echo 'ZooKeeper is not installed and \
         apt-get did not install it (apt-get install zookeeper)' >&2; exit 1; }"
            .into()
    }

    /// Writes zoo.cfg and myid, then starts the server, fully detached,
    /// unless it already runs. The data dir survives, so the same command
    /// restarts a killed server. Prints the pid.
    pub fn start_command(&self, node: &str) -> Option<String> {
        let id = self.myid(node)?;
        let cfg: Vec<String> = self
            .config(node)?
            .iter()
            .map(|l| format!("'{l}'"))
            .collect();
        // Serial GC and C1 only: less CPU on small, shared machines.
        let java = format!(
            "java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
             -Dorg.slf4j.simpleLogger.showDateTime=true \
             -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS -cp {CLASSPATH} \
             org.apache.zookeeper.server.quorum.QuorumPeerMain {CONFIG}"
        );
        Some(format!(
            "mkdir -p {DATA_DIR}; printf '%s\\n' {} > {CONFIG}; echo {id} > {DATA_DIR}/myid; {}",
            cfg.join(" "),
            crate::pidfile::start_command(PID_FILE, DATA_DIR, DIR, &java, LOG_FILE)
        ))
    }

    /// Kills the server (resuming it first, in case it is paused) and
    /// removes every file it had.
    pub fn teardown_command(&self) -> String {
        crate::pidfile::teardown_command(PID_FILE, &format!("rm -rf {DIR}"))
    }

    /// The client side.
    pub fn zk_config(&self) -> ZkConfig {
        let mut c = ZkConfig::new(
            self.nodes
                .keys()
                .map(|n| (n.clone(), self.client_addr(n).unwrap_or_default())),
        );
        c.sync_reads = self.sync_reads;
        c.session_timeout = self.session_timeout();
        c.spare_sessions = self.spare_sessions;
        c
    }
}

/// The catalogue row.
pub fn info() -> TargetInfo {
    TargetInfo {
        name: "zookeeper",
        description: "ZooKeeper 3.8 (apt zookeeper) ensemble on the nodes, through the \
                      zookeeper-client crate; reads are local unless --zk-sync-reads \
                      (--db-option sync-reads, tick-ms, sync-limit, init-limit, spare-sessions)"
            .into(),
        workloads: crate::zookeeper::WORKLOADS.to_vec(),
        faults: vec![
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::Crash,
            NemesisKind::Bandwidth,
            NemesisKind::Loss,
            NemesisKind::Latency,
        ],
        clock: Clock::OutsideLab(CLOCK_IN_LAB),
        bugs: Vec::new(),
        needs_node_binary: false,
        kind: Kind::Deployed(build),
    }
}

fn number<T>(options: &BTreeMap<String, String>, key: &str, min: T) -> Result<Option<T>, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(v) = options.get(key) else {
        return Ok(None);
    };
    match v.parse::<T>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(format!(
            "--db-option {key}={v}: expected a whole number of at least {min}"
        )),
    }
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    let o = &ctx.options;
    crate::db::check_options("zookeeper", o, &OPTIONS)?;
    let mut db = ZkDb::new(ctx.nodes.iter().cloned());
    if let Some(v) = o.get("sync-reads") {
        db.sync_reads = match v.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(format!(
                    "--db-option sync-reads={v}: expected true or false"
                ));
            }
        };
    }
    if let Some(n) = number(o, "tick-ms", 10u32)? {
        db.tick_ms = n;
    }
    if let Some(n) = number(o, "sync-limit", 1u32)? {
        db.sync_limit = n;
    }
    if let Some(n) = number(o, "init-limit", 1u32)? {
        db.init_limit = n;
    }
    if let Some(n) = number(o, "spare-sessions", 0usize)? {
        db.spare_sessions = n;
    }
    Ok(Box::new(db))
}

impl Db for ZkDb {
    fn what(&self) -> &str {
        "zookeeper"
    }
    fn addresses(&self) -> &BTreeMap<String, String> {
        &self.nodes
    }
    fn install_command(&self) -> String {
        ZkDb::install_command(self)
    }
    fn teardown_command(&self) -> String {
        ZkDb::teardown_command(self)
    }
    fn start_command(&self, node: &str) -> Option<String> {
        ZkDb::start_command(self, node)
    }
    fn pidfile(&self) -> &str {
        PID_FILE
    }
    fn log_file(&self) -> &str {
        LOG_FILE
    }
    fn json(&self) -> (&'static str, serde_json::Value) {
        (
            "zookeeper",
            serde_json::json!({
                "tick_ms": self.tick_ms, "init_limit": self.init_limit,
                "sync_limit": self.sync_limit, "sync_reads": self.sync_reads,
                "spare_sessions": self.spare_sessions,
                "session_timeout_ms": self.session_timeout().as_millis() as u64,
            }),
        )
    }
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(wait_roles(self, deadline, cancelled))
    }
    fn target(&self) -> Arc<dyn Target> {
        Arc::new(ZkTarget::new(self.zk_config()))
    }
}

/// Sends a four-letter command and returns the whole answer.
pub async fn four_letter(addr: &str, cmd: &str) -> Result<String, String> {
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(cmd.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(2), talk)
        .await
        .map_err(|_| "no answer within 2 s".to_string())?
}

/// The `Mode:` line of a `srvr` answer (`leader`, `follower`, …).
pub fn mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(str::trim)
}

/// Polls `srvr` on every server until each has a role, or fails naming
/// those that have none.
async fn wait_roles(db: &ZkDb, deadline: Duration, cancelled: Cancelled<'_>) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        let mut last = Vec::new();
        for n in db.nodes.keys() {
            let Some(addr) = db.client_addr(n) else {
                continue;
            };
            let why = match four_letter(&addr, "srvr").await {
                Ok(out) => match mode(&out) {
                    Some("leader" | "follower" | "standalone") => continue,
                    Some(m) => format!("mode {m}"),
                    None => format!("no Mode in `{}`", out.trim()),
                },
                Err(e) => e,
            };
            last.push(format!("{n} ({addr}: {why})"));
        }
        if last.is_empty() {
            return Ok(());
        }
        if cancelled() {
            return Err("interrupted while waiting for ZooKeeper to form a quorum".into());
        }
        if t0.elapsed() > deadline {
            return Err(format!(
                "ZooKeeper did not form a quorum within {} s: {}",
                deadline.as_secs(),
                last.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> ZkDb {
        ZkDb::new([
            ("n1", "10.77.0.11"),
            ("n2", "10.77.0.12"),
            ("n3", "10.77.0.13"),
        ])
    }

    #[test]
    fn start_writes_config_then_starts_detached() {
        let c = db().start_command("n1").unwrap();
        assert!(c.starts_with("mkdir -p /opt/zk/data; printf '%s\\n' 'tickTime=500'"));
        for l in [
            "'syncLimit=10'",
            "'initLimit=20'",
            "'clientPortAddress=10.77.0.11'",
            "'4lw.commands.whitelist=*'",
            "'server.1=10.77.0.11:2888:3888'",
            "'server.3=10.77.0.13:2888:3888'",
        ] {
            assert!(c.contains(l), "{l} missing: {c}");
        }
        assert!(c.contains("echo 1 > /opt/zk/data/myid"));
        assert!(c.contains("setsid nohup java -Xms64m -Xmx256m -XX:+UseSerialGC"));
        assert!(c.contains("</dev/null >>/opt/zk/zk.log 2>&1 & echo $! > /opt/zk/zk.pid"));
        assert!(db().start_command("n9").is_none());
        assert!(!c.contains("LD_PRELOAD"));
    }

    #[test]
    fn options_are_validated() {
        let ctx = |kv: &[(&str, &str)]| DbContext {
            nodes: vec![("n1".into(), "10.0.0.1".into())],
            options: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DbContext::default()
        };
        assert!(
            build(
                "zookeeper",
                &ctx(&[("sync-reads", "true"), ("sync-limit", "20")])
            )
            .is_ok()
        );
        let e = build("zookeeper", &ctx(&[("sync-limit", "0")]))
            .err()
            .unwrap();
        assert!(e.contains("sync-limit=0"), "{e}");
        let e = build("zookeeper", &ctx(&[("sync-reads", "maybe")]))
            .err()
            .unwrap();
        assert!(e.contains("true or false"), "{e}");
        let e = build("zookeeper", &ctx(&[("read-mode", "x")]))
            .err()
            .unwrap();
        assert!(e.contains("knows sync-reads"), "{e}");
    }

    #[test]
    fn srvr_mode_and_teardown() {
        let out = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(mode(out), Some("follower"));
        assert_eq!(mode("imok"), None);
        assert!(db().teardown_command().ends_with("rm -rf /opt/zk"));
        assert_eq!(db().session_timeout(), Duration::from_secs(10));
        assert_eq!(db().zk_config().endpoints["n2"], "10.77.0.12:2181");
    }
}
