//! Deploying PostgreSQL 15 (Debian's `postgresql-15`) on nodes: a primary
//! on the first node and, with `--db-option replicas=N`, N streaming
//! replicas (hot standbys made with `pg_basebackup -R` from the primary)
//! on the next nodes. Other nodes run nothing; their clients use the
//! primary.
//!
//! Layout on a node (LAB-NOTES §7: the host's /var and /etc are shared by
//! lab nodes, so everything is under the private /opt and /tmp):
//! `/opt/pg/data` (the cluster), `/opt/pg/pg.log` (the server's stderr),
//! `/opt/pg/pg.pid` (the postmaster's pid, for kill and pause), the socket
//! in `/tmp`. The server runs as the `postgres` user, started with
//! `setpriv` so the postmaster is the pid the pidfile names; every shell
//! step `cd /tmp` first (the private /root is not the postgres user's).
//! `pg_hba.conf` trusts `samenet` (the lab's subnet, so the controller and
//! the other nodes), for queries and replication.
//!
//! Faults: `kill` SIGKILLs the postmaster; its backends exit as they see
//! it gone, and the restart (the start command) first SIGKILLs any that are
//! left (processes whose working directory is the data dir: they would
//! keep the old shared memory in use), then starts the server, which
//! runs crash recovery. `pause` SIGSTOPs the postmaster only: new
//! connections hang, open sessions go on. `partition` matters with a
//! replica (replication stops; the controller still reaches every node).
//!
//! ```
//! use faultline_targets::postgres_db::PgDb;
//! let db = PgDb::new([("n1", "10.77.0.11"), ("n2", "10.77.0.12")], 1);
//! assert!(db.start_command("n1").unwrap().contains("initdb"));
//! assert!(db.start_command("n2").unwrap().contains("pg_basebackup -h 10.77.0.11"));
//! ```

use faultline_nemesis::NemesisKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, Step, TargetInfo};
use crate::postgres::{Isolation, PORT, PgConfig, PgTarget};
use crate::{BoxFuture, Target};

pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
pub const DIR: &str = "/opt/pg";
pub const DATA_DIR: &str = "/opt/pg/data";
pub const LOG_FILE: &str = "/opt/pg/pg.log";
pub const PID_FILE: &str = "/opt/pg/pg.pid";
/// initdb's or pg_basebackup's output.
pub const INIT_LOG: &str = "/opt/pg/init.log";

/// Runs a command as the postgres user, exec'ing (no intermediate process).
const AS_POSTGRES: &str = "setpriv --reuid=postgres --regid=postgres --init-groups";

/// PostgreSQL on a set of nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct PgDb {
    /// node name → address, in the test's order (the first is the primary).
    pub nodes: BTreeMap<String, String>,
    pub primary: String,
    pub replicas: Vec<String>,
    pub isolation: Isolation,
    pub replica_reads: bool,
}

impl PgDb {
    /// The first node is the primary, the next `replicas` nodes replicas.
    pub fn new<N: Into<String>, A: Into<String>>(
        nodes: impl IntoIterator<Item = (N, A)>,
        replicas: usize,
    ) -> PgDb {
        let ordered: Vec<(String, String)> = nodes
            .into_iter()
            .map(|(n, a)| (n.into(), a.into()))
            .collect();
        PgDb {
            primary: ordered.first().map(|n| n.0.clone()).unwrap_or_default(),
            replicas: ordered
                .iter()
                .skip(1)
                .take(replicas)
                .map(|n| n.0.clone())
                .collect(),
            nodes: ordered.into_iter().collect(),
            isolation: Isolation::default(),
            replica_reads: false,
        }
    }

    /// The nodes that run a server: the primary, then the replicas.
    pub fn members(&self) -> Vec<String> {
        std::iter::once(self.primary.clone())
            .chain(self.replicas.iter().cloned())
            .collect()
    }

    fn addr(&self, node: &str) -> Option<&String> {
        self.nodes.get(node)
    }

    pub fn install_command(&self) -> String {
        format!(
            "[ -x {BIN_DIR}/postgres ] || {{ DEBIAN_FRONTEND=noninteractive apt-get install -y \
             postgresql-15 >/tmp/faultline-apt.log 2>&1 || {{ tail -5 /tmp/faultline-apt.log >&2; exit 1; }}; }}; \
             [ -x {BIN_DIR}/postgres ] || {{ echo 'postgresql-15 is not installed ({BIN_DIR}/postgres is missing) \
             and apt-get did not install it' >&2; exit 1; }}; \
             id postgres >/dev/null 2>&1 || {{ echo 'there is no postgres user' >&2; exit 1; }}; \
             command -v setpriv >/dev/null || {{ echo 'setpriv (util-linux) is missing' >&2; exit 1; }}"
        )
    }

    /// SIGKILLs every process whose working directory is the data dir (the
    /// postmaster and its children), and waits up to 5 s until they are gone.
    fn kill_leftovers() -> String {
        format!(
            "left() {{ for p in /proc/[0-9]*; do [ \"$(readlink $p/cwd 2>/dev/null)\" = {DATA_DIR} ] \
             && echo ${{p#/proc/}}; done; }}; \
             l=$(left); if [ -n \"$l\" ]; then kill -CONT $l 2>/dev/null; kill -9 $l 2>/dev/null; fi; \
             i=0; while [ -n \"$(left)\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done"
        )
    }

    /// Only creates the cluster when it is missing (`None` on nodes that
    /// run nothing).
    pub fn init_command(&self, node: &str) -> Option<String> {
        let init = self.init_part(node)?;
        Some(format!(
            "cd /tmp; mkdir -p {DIR}; chown postgres:postgres {DIR}; \
             if [ ! -f {DATA_DIR}/PG_VERSION ]; then rm -rf {DATA_DIR}; {init}; fi"
        ))
    }

    /// `node` is the primary (`primary`) or not (`!primary`).
    fn on_primary(&self, node: &str, primary: bool) -> bool {
        (node == self.primary) == primary
    }

    fn init_part(&self, node: &str) -> Option<String> {
        if node == self.primary {
            Some(format!(
                "{AS_POSTGRES} {BIN_DIR}/initdb --no-sync -A trust -U postgres -D {DATA_DIR} >{INIT_LOG} 2>&1 \
                 || {{ tail -5 {INIT_LOG} >&2; exit 1; }}; \
                 printf 'host all all samenet trust\\nhost replication all samenet trust\\n' \
                 >> {DATA_DIR}/pg_hba.conf"
            ))
        } else if self.replicas.iter().any(|r| r == node) {
            let p = self.addr(&self.primary)?;
            Some(format!(
                "i=0; until {BIN_DIR}/pg_isready -q -h {p} -p {PORT} -t 1; do i=$((i+1)); \
                 if [ $i -ge 30 ]; then echo 'the primary {p} is not accepting connections' >&2; exit 1; fi; \
                 sleep 1; done; \
                 {AS_POSTGRES} {BIN_DIR}/pg_basebackup -h {p} -p {PORT} -U postgres -D {DATA_DIR} -R -X stream -c fast \
                 >{INIT_LOG} 2>&1 || {{ tail -5 {INIT_LOG} >&2; exit 1; }}"
            ))
        } else {
            None
        }
    }

    /// Creates the cluster when it is missing (initdb on the primary,
    /// pg_basebackup from the primary on a replica), then starts the
    /// server detached unless it runs. The same command restarts a killed
    /// server (the data dir is kept). Prints the pid.
    pub fn start_command(&self, node: &str) -> Option<String> {
        let addr = self.addr(node)?;
        let init = self.init_part(node)?;
        Some(format!(
            "cd /tmp; if [ -f {PID_FILE} ] && kill -0 $(cat {PID_FILE}) 2>/dev/null; then cat {PID_FILE}; exit 0; fi; \
             mkdir -p {DIR}; chown postgres:postgres {DIR}; {leftovers}; \
             if [ ! -f {DATA_DIR}/PG_VERSION ]; then rm -rf {DATA_DIR}; {init}; fi; \
             setsid nohup {AS_POSTGRES} {BIN_DIR}/postgres -D {DATA_DIR} -c listen_addresses={addr} \
             -c port={PORT} -c unix_socket_directories=/tmp -c shared_buffers=32MB \
             -c deadlock_timeout=100ms \
             </dev/null >>{LOG_FILE} 2>&1 & echo $! > {PID_FILE}; cat {PID_FILE}",
            leftovers = Self::kill_leftovers(),
        ))
    }

    /// Kills the server (resuming it first, in case it is paused) and
    /// removes its files.
    pub fn teardown_command(&self) -> String {
        format!("cd /tmp; {}; rm -rf {DIR}", Self::kill_leftovers())
    }

    fn config(&self) -> PgConfig {
        let mut c = PgConfig::new(&self.primary, self.nodes.clone());
        c.replicas = self.replicas.clone();
        c.isolation = self.isolation;
        c.replica_reads = self.replica_reads;
        c
    }
}

/// The catalogue row.
pub fn info() -> TargetInfo {
    TargetInfo {
        name: "postgres",
        description: "PostgreSQL 15 (apt postgresql-15): a primary, plus streaming replicas with \
                      --db-option replicas=N; transactions at --isolation read-committed, \
                      repeatable-read or serializable (docs/postgres.md)"
            .into(),
        workloads: crate::postgres::WORKLOADS.to_vec(),
        faults: vec![
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::Partition,
            NemesisKind::Crash,
            NemesisKind::Bandwidth,
            NemesisKind::Loss,
            NemesisKind::Latency,
        ],
        clock: Clock::Never(
            "the postgres target does not run the server under libfaketime, and its \
             isolation rests on transaction ids, not on clocks",
        ),
        bugs: Vec::new(),
        needs_node_binary: false,
        kind: Kind::Deployed(build),
    }
}

/// Options: `isolation=LEVEL`, `replicas=N`, `replica-reads`.
fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(
        "postgres",
        &ctx.options,
        &["isolation", "replicas", "replica-reads"],
    )?;
    let replicas: usize = match ctx.options.get("replicas") {
        None => 0,
        Some(r) => r
            .parse()
            .map_err(|_| format!("--db-option replicas={r}: expected a number of replicas"))?,
    };
    // The catalogue is asked once with no nodes, to validate options.
    if !ctx.nodes.is_empty() && replicas >= ctx.nodes.len() {
        return Err(format!(
            "--db-option replicas={replicas} needs {} nodes (a primary and the replicas), \
             the test has {}",
            replicas + 1,
            ctx.nodes.len()
        ));
    }
    let mut db = PgDb::new(ctx.nodes.iter().cloned(), replicas);
    if let Some(i) = ctx.options.get("isolation") {
        db.isolation = i
            .parse()
            .map_err(|e| format!("--db-option isolation: {e}"))?;
    }
    db.replica_reads = match ctx.options.get("replica-reads").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(format!(
                "--db-option replica-reads={v}: expected true or false"
            ));
        }
    };
    if db.replica_reads && replicas == 0 {
        return Err("--db-option replica-reads needs replicas=N (N ≥ 1)".into());
    }
    Ok(Box::new(db))
}

impl Db for PgDb {
    fn what(&self) -> &str {
        "postgres"
    }
    fn addresses(&self) -> &BTreeMap<String, String> {
        &self.nodes
    }
    /// The primary is created and started before the replicas copy it;
    /// creating is a step of its own, so each SSH command stays short on a
    /// loaded machine.
    fn setup(&self) -> Vec<Step<'_>> {
        vec![
            Step::all("postgres install check", self.install_command()),
            Step::all("postgres cleanup", self.teardown_command()),
            Step::Each {
                what: "postgres initdb (primary)".into(),
                cmd: Box::new(move |n| {
                    self.on_primary(n, true)
                        .then(|| self.init_command(n))
                        .flatten()
                }),
            },
            Step::Each {
                what: "postgres start (primary)".into(),
                cmd: Box::new(move |n| {
                    self.on_primary(n, true)
                        .then(|| self.start_command(n))
                        .flatten()
                }),
            },
            Step::Each {
                what: "postgres pg_basebackup (replicas)".into(),
                cmd: Box::new(move |n| {
                    self.on_primary(n, false)
                        .then(|| self.init_command(n))
                        .flatten()
                }),
            },
            Step::Each {
                what: "postgres start (replicas)".into(),
                cmd: Box::new(move |n| {
                    self.on_primary(n, false)
                        .then(|| self.start_command(n))
                        .flatten()
                }),
            },
            Step::Ready,
        ]
    }
    fn install_command(&self) -> String {
        PgDb::install_command(self)
    }
    fn teardown_command(&self) -> String {
        PgDb::teardown_command(self)
    }
    fn start_command(&self, node: &str) -> Option<String> {
        PgDb::start_command(self, node)
    }
    fn pidfile(&self) -> &str {
        PID_FILE
    }
    fn log_file(&self) -> &str {
        LOG_FILE
    }
    fn log_files(&self) -> Vec<String> {
        vec![LOG_FILE.to_string(), INIT_LOG.to_string()]
    }
    fn json(&self) -> (&'static str, serde_json::Value) {
        (
            "postgres",
            serde_json::json!({
                "isolation": self.isolation.name(),
                "primary": self.primary,
                "replicas": self.replicas,
                "replica_reads": self.replica_reads,
                "bin_dir": BIN_DIR,
            }),
        )
    }
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(wait_ready(self, deadline, cancelled))
    }
    fn target(&self) -> Arc<dyn Target> {
        Arc::new(PgTarget::new(self.config()))
    }
}

/// Why `node` is not ready yet, or `None` when it is: the primary accepts
/// queries and streams to every replica; a replica is in recovery.
async fn not_ready(db: &PgDb, node: &str) -> Option<String> {
    let addr = db.addr(node)?;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(addr)
        .port(PORT)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2));
    let (client, conn) = match tokio::time::timeout(
        Duration::from_secs(3),
        cfg.connect(tokio_postgres::NoTls),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Some(format!("{addr}:{PORT}: {e}")),
        Err(_) => return Some(format!("{addr}:{PORT}: connect timeout")),
    };
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let primary = node == db.primary;
    let q = if primary {
        "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication \
         WHERE state = 'streaming')"
    } else {
        "SELECT pg_is_in_recovery(), 0::bigint"
    };
    let why = match tokio::time::timeout(Duration::from_secs(3), client.query_one(q, &[])).await {
        Ok(Ok(row)) => {
            let recovering: bool = row.get(0);
            let streaming: i64 = row.get(1);
            if primary && recovering {
                Some("still in recovery".to_string())
            } else if !primary && !recovering {
                Some("a replica that is not in recovery".to_string())
            } else if primary && streaming < db.replicas.len() as i64 {
                Some(format!(
                    "{streaming} of {} replicas streaming",
                    db.replicas.len()
                ))
            } else {
                None
            }
        }
        Ok(Err(e)) => Some(format!("{e}")),
        Err(_) => Some("query timeout".into()),
    };
    task.abort();
    why
}

async fn wait_ready(db: &PgDb, deadline: Duration, cancelled: Cancelled<'_>) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        let mut last = Vec::new();
        for n in db.members() {
            if let Some(why) = not_ready(db, &n).await {
                last.push(format!("{n} ({why})"));
            }
        }
        if last.is_empty() {
            return Ok(());
        }
        if cancelled() {
            return Err("interrupted while waiting for postgres to become ready".into());
        }
        if t0.elapsed() > deadline {
            return Err(format!(
                "postgres was not ready within {} s: {}",
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

    fn nodes() -> Vec<(String, String)> {
        (1..=3)
            .map(|i| (format!("n{i}"), format!("10.77.0.1{i}")))
            .collect()
    }

    fn ctx(opts: &[(&str, &str)]) -> DbContext {
        DbContext {
            nodes: nodes(),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DbContext::default()
        }
    }

    #[test]
    fn primary_initdb_replica_basebackup_others_nothing() {
        let db = PgDb::new(nodes(), 1);
        let p = db.start_command("n1").unwrap();
        assert!(p.starts_with("cd /tmp;"), "{p}");
        assert!(p.contains("initdb --no-sync -A trust -U postgres -D /opt/pg/data"));
        assert!(p.contains("host replication all samenet trust"));
        assert!(p.contains("-c listen_addresses=10.77.0.11"));
        assert!(p.contains("-c unix_socket_directories=/tmp"));
        assert!(p.contains("& echo $! > /opt/pg/pg.pid"));
        // Idempotent: a running server is left alone.
        assert!(p.contains("if [ -f /opt/pg/pg.pid ] && kill -0"));
        let r = db.start_command("n2").unwrap();
        assert!(r.contains("pg_basebackup -h 10.77.0.11 -p 5432 -U postgres -D /opt/pg/data -R"));
        assert!(r.contains("-c listen_addresses=10.77.0.12"));
        assert!(!r.contains("initdb"));
        assert!(db.start_command("n3").is_none());
        assert_eq!(db.members(), vec!["n1", "n2"]);
        assert!(db.teardown_command().ends_with("rm -rf /opt/pg"));
    }

    #[test]
    fn options_are_checked() {
        let b = |o: &[(&str, &str)]| build("postgres", &ctx(o)).map(|d| d.json().1);
        let j = b(&[("isolation", "read-committed"), ("replicas", "2")]).unwrap();
        assert_eq!(j["isolation"], "read-committed");
        assert_eq!(j["replicas"], serde_json::json!(["n2", "n3"]));
        assert_eq!(b(&[]).unwrap()["isolation"], "serializable");
        assert!(
            b(&[("replicas", "3")])
                .unwrap_err()
                .contains("needs 4 nodes")
        );
        assert!(b(&[("isolation", "snapshot")]).is_err());
        assert!(
            b(&[("replica-reads", "true")])
                .unwrap_err()
                .contains("replicas")
        );
        assert!(b(&[("replicas", "1"), ("replica-reads", "true")]).is_ok());
        assert!(b(&[("nope", "1")]).unwrap_err().contains("knows isolation"));
        // Validation with no nodes (as `faultline test` asks first).
        let mut c = ctx(&[("replicas", "5")]);
        c.nodes.clear();
        assert!(build("postgres", &c).is_ok());
    }
}
