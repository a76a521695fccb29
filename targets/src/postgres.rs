//! PostgreSQL through tokio-postgres (`NoTls`): the client side of the
//! `postgres` target. Deploying the server is [`crate::postgres_db`].
//!
//! Tables, as in Jepsen's PostgreSQL and Elle tests (created by
//! [`Client::setup`]; the data dir is new for every run):
//!
//! - list-append: `la (k bigint primary key, v bigint[])`; an append is
//!   `INSERT … ON CONFLICT (k) DO UPDATE SET v = la.v || $2`, a read
//!   `SELECT v FROM la WHERE k = $1` (no row: `null`, an absent key).
//! - rw-register: `rw (k bigint primary key, v bigint)`, written by upsert.
//! - register: `reg (k bigint primary key, v bigint)`; read, write (upsert)
//!   and cas (`UPDATE … WHERE k = $1 AND v = $2`, no row changed: `fail`),
//!   each one autocommitted statement.
//!
//! A transaction is `BEGIN ISOLATION LEVEL <level>`, one statement per
//! micro-op, in order, then `COMMIT`: real interactive transactions, so
//! PostgreSQL's own isolation is what the checker sees.
//!
//! Classification. PostgreSQL rolls back a transaction whose session ends
//! before `COMMIT`, so every error before `COMMIT` was sent (a refused
//! connection, a timeout, a broken connection, SQLSTATE 40001
//! serialization_failure or 40P01 deadlock_detected) is `fail`. At
//! `COMMIT` an `ERROR` reply means the commit was refused (40001 from SSI),
//! so `fail`; a broken connection, a timeout or a `FATAL`/`PANIC` there
//! leaves the outcome unknown: `info` (for a read-only transaction,
//! `fail`: it changed nothing either way). Autocommitted register writes
//! follow the same rule.
//!
//! Replicas: every client writes to the primary. With `replica_reads`, a
//! client opened on a replica's node runs its read-only transactions and
//! register reads on that replica (a hot standby, asynchronous streaming):
//! such reads may be stale, which the checker reports as realtime
//! anomalies. A standby refuses `SERIALIZABLE`, so it reads at
//! `REPEATABLE READ` (a snapshot).
//!
//! ```
//! use faultline_targets::postgres::{Isolation, PgConfig, PgTarget};
//! let cfg = PgConfig::new("n1", [("n1", "10.77.0.11"), ("n2", "10.77.0.12")]);
//! assert_eq!(cfg.isolation, Isolation::Serializable);
//! let target = PgTarget::new(cfg);
//! ```

use crate::{BoxFuture, Client, ClientOpts, Target, TargetError};
use faultline_workloads::{Completion, Op, Value, Workload};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::error::{Severity, SqlState};
use tokio_postgres::{NoTls, Statement};

/// The port every node's server listens on.
pub const PORT: u16 = 5432;

/// The workloads the client implements.
pub const WORKLOADS: [Workload; 3] = [
    Workload::ListAppend,
    Workload::RwRegister,
    Workload::Register,
];

/// The transaction isolation level (`--isolation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Each statement sees a fresh snapshot (PostgreSQL's default).
    ReadCommitted,
    /// One snapshot per transaction: snapshot isolation.
    RepeatableRead,
    /// Serializable snapshot isolation (SSI).
    #[default]
    Serializable,
}

impl Isolation {
    pub const ALL: [Isolation; 3] = [
        Isolation::ReadCommitted,
        Isolation::RepeatableRead,
        Isolation::Serializable,
    ];

    /// The SQL of `BEGIN ISOLATION LEVEL …`.
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read-committed",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::Serializable => "serializable",
        }
    }
}

impl FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Isolation, String> {
        Isolation::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown isolation level `{s}` (expected read-committed, repeatable-read or \
                     serializable)"
                )
            })
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the servers are and how to use them.
#[derive(Clone, Debug, PartialEq)]
pub struct PgConfig {
    /// node name → address, for every node of the test.
    pub nodes: BTreeMap<String, String>,
    /// The node that runs the primary.
    pub primary: String,
    /// Nodes that run a streaming replica.
    pub replicas: Vec<String>,
    pub isolation: Isolation,
    /// Read-only work of clients on a replica's node goes to that replica.
    pub replica_reads: bool,
    pub port: u16,
}

impl PgConfig {
    /// A primary on `primary` and no replica.
    pub fn new<N: Into<String>, A: Into<String>>(
        primary: &str,
        nodes: impl IntoIterator<Item = (N, A)>,
    ) -> PgConfig {
        PgConfig {
            nodes: nodes
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
            primary: primary.to_string(),
            replicas: Vec::new(),
            isolation: Isolation::default(),
            replica_reads: false,
            port: PORT,
        }
    }
}

/// The postgres target (client side).
pub struct PgTarget {
    cfg: PgConfig,
}

impl PgTarget {
    pub fn new(cfg: PgConfig) -> PgTarget {
        PgTarget { cfg }
    }
}

impl Target for PgTarget {
    fn name(&self) -> &str {
        "postgres"
    }

    fn workloads(&self) -> &[Workload] {
        &WORKLOADS
    }

    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            self.check_supports(opts.workload.workload)?;
            if !self.cfg.nodes.contains_key(node) {
                return Err(TargetError::UnknownNode(node.to_string()));
            }
            let primary = self
                .cfg
                .nodes
                .get(&self.cfg.primary)
                .ok_or_else(|| TargetError::UnknownNode(self.cfg.primary.clone()))?
                .clone();
            let replica = (self.cfg.replica_reads && self.cfg.replicas.iter().any(|r| r == node))
                .then(|| self.cfg.nodes[node].clone());
            // Give up a little before the runner does, so the client (which
            // knows whether COMMIT was sent) classifies the timeout.
            let timeout = opts.timeout.mul_f64(0.9).max(Duration::from_millis(10));
            // Connecting is lazy: opening changes nothing and contacts no one.
            Ok(Box::new(PgClient {
                primary,
                replica,
                port: self.cfg.port,
                isolation: self.cfg.isolation,
                workload: opts.workload.workload,
                timeout,
                conn: None,
                read_conn: None,
            }) as Box<dyn Client>)
        })
    }
}

/// One session: the client, its connection task, and prepared statements.
struct Conn {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
    /// Per workload: read, write (append / upsert), and cas.
    read: Statement,
    write: Statement,
    cas: Option<Statement>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the session; the server rolls back any open transaction.
        self.task.abort();
    }
}

/// How an operation went wrong.
#[derive(Debug)]
enum PgError {
    /// It certainly had no effect.
    Aborted(String),
    /// It may have taken effect (COMMIT sent, no clear answer).
    Unknown(String),
}

/// `SQLSTATE code: message` of a server error, or the client's text.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.code().code(), db.severity(), db.message()),
        None => format!("{e}"),
    }
}

/// A server `ERROR` reply (not FATAL/PANIC, not a broken connection): the
/// statement, and with it the transaction, did not take effect.
fn is_error_reply(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.parsed_severity() == Some(Severity::Error))
}

/// Serialization failure or deadlock: PostgreSQL aborted the transaction.
pub fn is_conflict(code: &SqlState) -> bool {
    *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// The table of a workload.
fn table(w: Workload) -> &'static str {
    match w {
        Workload::ListAppend => "la",
        Workload::RwRegister => "rw",
        _ => "reg",
    }
}

/// Creates the workload's table (idempotent).
fn create_sql(w: Workload) -> String {
    let ty = if w == Workload::ListAppend {
        "bigint[]"
    } else {
        "bigint"
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} (k bigint PRIMARY KEY, v {ty})",
        table(w)
    )
}

async fn connect(addr: &str, port: u16, w: Workload, timeout: Duration) -> Result<Conn, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(addr)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .application_name("faultline")
        .connect_timeout(timeout.min(Duration::from_secs(2)));
    let (client, connection) = tokio::time::timeout(timeout, cfg.connect(NoTls))
        .await
        .map_err(|_| format!("connecting to {addr}: timeout"))?
        .map_err(|e| format!("connecting to {addr}: {}", describe(&e)))?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let t = table(w);
    let (read, write, cas) = match w {
        Workload::ListAppend => (
            format!("SELECT v FROM {t} WHERE k = $1"),
            format!(
                "INSERT INTO {t} AS t (k, v) VALUES ($1, ARRAY[$2::bigint]) \
                 ON CONFLICT (k) DO UPDATE SET v = t.v || $2::bigint"
            ),
            None,
        ),
        _ => (
            format!("SELECT v FROM {t} WHERE k = $1"),
            format!(
                "INSERT INTO {t} AS t (k, v) VALUES ($1, $2) \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v"
            ),
            (w == Workload::Register)
                .then(|| format!("UPDATE {t} SET v = $3 WHERE k = $1 AND v = $2")),
        ),
    };
    let prepare = async {
        let read = client.prepare(&read).await?;
        let write = client.prepare(&write).await?;
        let cas = match cas {
            Some(c) => Some(client.prepare(&c).await?),
            None => None,
        };
        Ok::<_, tokio_postgres::Error>((read, write, cas))
    };
    match tokio::time::timeout(timeout, prepare).await {
        Ok(Ok((read, write, cas))) => Ok(Conn {
            client,
            task,
            read,
            write,
            cas,
        }),
        Ok(Err(e)) => {
            task.abort();
            Err(format!("preparing statements on {addr}: {}", describe(&e)))
        }
        Err(_) => {
            task.abort();
            Err(format!("preparing statements on {addr}: timeout"))
        }
    }
}

struct PgClient {
    primary: String,
    /// The replica read-only work goes to (`replica_reads` on its node).
    replica: Option<String>,
    port: u16,
    isolation: Isolation,
    workload: Workload,
    timeout: Duration,
    conn: Option<Conn>,
    read_conn: Option<Conn>,
}

/// A micro-op, parsed.
enum Mop {
    Read(i64),
    Write(i64, i64),
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().and_then(|u| i64::try_from(u).ok()))
}

fn parse_mops(op: &Op) -> Result<Vec<Mop>, String> {
    let mops = op
        .value
        .as_array()
        .ok_or("txn value must be a list of micro-ops")?;
    mops.iter()
        .map(|m| {
            let k = m.get(1).and_then(int);
            match (m.get(0).and_then(Value::as_str), k) {
                (Some("r"), Some(k)) => Ok(Mop::Read(k)),
                (Some("append" | "w"), Some(k)) => match m.get(2).and_then(int) {
                    Some(v) => Ok(Mop::Write(k, v)),
                    None => Err(format!("micro-op {m}: the value must be an integer")),
                },
                _ => Err(format!(
                    "bad micro-op {m} (keys and values must be integers)"
                )),
            }
        })
        .collect()
}

impl PgClient {
    /// The session to use (opened when missing): the replica's for
    /// read-only work when configured, else the primary's.
    async fn session(&mut self, read_only: bool) -> Result<&mut Conn, String> {
        let (slot, addr) = match (&self.replica, read_only) {
            (Some(r), true) => (&mut self.read_conn, r.as_str()),
            _ => (&mut self.conn, self.primary.as_str()),
        };
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(connect(addr, self.port, self.workload, self.timeout).await?);
        }
        Ok(slot.as_mut().expect("just set"))
    }

    fn drop_session(&mut self, read_only: bool) {
        match (&self.replica, read_only) {
            (Some(_), true) => self.read_conn = None,
            _ => self.conn = None,
        }
    }

    /// The isolation of a transaction: a standby refuses SERIALIZABLE.
    fn level(&self, read_only: bool) -> Isolation {
        if read_only && self.replica.is_some() && self.isolation == Isolation::Serializable {
            Isolation::RepeatableRead
        } else {
            self.isolation
        }
    }

    async fn txn(&mut self, op: &Op) -> Completion {
        let mops = match parse_mops(op) {
            Ok(m) => m,
            Err(e) => return Completion::fail(e),
        };
        let read_only = mops.iter().all(|m| matches!(m, Mop::Read(_)));
        let level = self.level(read_only);
        let append = self.workload == Workload::ListAppend;
        let timeout = self.timeout;
        let conn = match self.session(read_only).await {
            Ok(c) => c,
            Err(e) => return not_sent(e).await,
        };
        let mut committing = false;
        let run = run_txn(conn, level, &mops, append, &mut committing);
        let (res, timed_out) = match tokio::time::timeout(timeout, run).await {
            Ok(r) => (r, false),
            Err(_) if committing => (Err(PgError::Unknown("timeout in COMMIT".into())), true),
            Err(_) => (Err(PgError::Aborted("timeout before COMMIT".into())), true),
        };
        match res {
            Ok(out) => Completion::ok(Value::Array(
                mops.iter()
                    .zip(out)
                    .zip(op.value.as_array().into_iter().flatten())
                    .map(|((m, r), orig)| match m {
                        Mop::Read(k) => json!(["r", k, r]),
                        Mop::Write(..) => orig.clone(),
                    })
                    .collect(),
            )),
            Err(e) => {
                // A session in an unknown state is not reused.
                // A session in an unknown state, or still busy with the
                // statement that timed out, is not reused.
                let keep = match &e {
                    PgError::Aborted(_) if !timed_out => self.rollback(read_only).await,
                    _ => false,
                };
                if !keep {
                    self.drop_session(read_only);
                }
                match e {
                    PgError::Aborted(m) => Completion::fail(m),
                    PgError::Unknown(m) if read_only => Completion::fail(m),
                    PgError::Unknown(m) => Completion::info(m),
                }
            }
        }
    }

    /// Ends a failed transaction; false when the session is unusable.
    async fn rollback(&mut self, read_only: bool) -> bool {
        let Ok(conn) = self.session(read_only).await else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                Duration::from_secs(1),
                conn.client.batch_execute("ROLLBACK")
            )
            .await,
            Ok(Ok(()))
        )
    }

    async fn register(&mut self, op: &Op) -> Completion {
        let Some(k) = op.key.as_ref().and_then(int) else {
            return Completion::fail("register keys must be integers");
        };
        let read_only = op.f == "read";
        let timeout = self.timeout;
        let conn = match self.session(read_only).await {
            Ok(c) => c,
            Err(e) => return not_sent(e).await,
        };
        let res = tokio::time::timeout(timeout, async {
            match op.f.as_str() {
                "read" => {
                    let row = conn.client.query_opt(&conn.read, &[&k]).await?;
                    Ok(Completion::ok(json!(
                        row.and_then(|r| r.get::<_, Option<i64>>(0))
                    )))
                }
                "write" => match int(&op.value) {
                    Some(v) => {
                        conn.client.execute(&conn.write, &[&k, &v]).await?;
                        Ok(Completion::ok(op.value.clone()))
                    }
                    None => Ok(Completion::fail("register values must be integers")),
                },
                "cas" => {
                    let (Some(old), Some(new)) =
                        (op.value.get(0).and_then(int), op.value.get(1).and_then(int))
                    else {
                        return Ok(Completion::fail("cas value must be [old, new] integers"));
                    };
                    let Some(cas) = &conn.cas else {
                        return Ok(Completion::fail("no cas statement"));
                    };
                    let n = conn.client.execute(cas, &[&k, &old, &new]).await?;
                    Ok(if n == 1 {
                        Completion::ok(op.value.clone())
                    } else {
                        Completion::fail("cas mismatch")
                    })
                }
                f => Ok(Completion::fail(format!(
                    "postgres: `{f}` is not an operation of register"
                ))),
            }
        })
        .await;
        match res {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let certain = read_only || is_error_reply(&e);
                if !is_error_reply(&e) {
                    self.drop_session(read_only);
                }
                if certain {
                    Completion::fail(describe(&e))
                } else {
                    Completion::info(describe(&e))
                }
            }
            Err(_) => {
                self.drop_session(read_only);
                if read_only {
                    Completion::fail("timeout")
                } else {
                    Completion::info("timeout")
                }
            }
        }
    }
}

/// Nothing was sent: `fail`, after a short jittered pause so a worker does
/// not spin on a server that is down.
async fn not_sent(e: String) -> Completion {
    let ms = rand::random_range(50..=100u64);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Completion::fail(e)
}

/// BEGIN, the micro-ops, COMMIT. Returns each micro-op's read (`null` for
/// writes). `committing` is set just before COMMIT is sent.
async fn run_txn(
    conn: &Conn,
    level: Isolation,
    mops: &[Mop],
    append: bool,
    committing: &mut bool,
) -> Result<Vec<Value>, PgError> {
    let aborted = |e: tokio_postgres::Error| PgError::Aborted(describe(&e));
    conn.client
        .batch_execute(&format!("BEGIN ISOLATION LEVEL {}", level.sql()))
        .await
        .map_err(aborted)?;
    let mut out = Vec::with_capacity(mops.len());
    for m in mops {
        match *m {
            Mop::Read(k) => {
                let row = conn
                    .client
                    .query_opt(&conn.read, &[&k])
                    .await
                    .map_err(aborted)?;
                out.push(match row {
                    None => Value::Null,
                    Some(r) if append => json!(
                        r.try_get::<_, Option<Vec<i64>>>(0)
                            .map_err(|e| PgError::Aborted(format!("reading a list: {e}")))?
                    ),
                    Some(r) => json!(
                        r.try_get::<_, Option<i64>>(0)
                            .map_err(|e| PgError::Aborted(format!("reading a value: {e}")))?
                    ),
                });
            }
            Mop::Write(k, v) => {
                conn.client
                    .execute(&conn.write, &[&k, &v])
                    .await
                    .map_err(aborted)?;
                out.push(Value::Null);
            }
        }
    }
    *committing = true;
    match conn.client.batch_execute("COMMIT").await {
        Ok(()) => Ok(out),
        // The server refused to commit (e.g. 40001 from SSI at commit time).
        Err(e) if is_error_reply(&e) => Err(PgError::Aborted(describe(&e))),
        Err(e) => Err(PgError::Unknown(format!("COMMIT: {}", describe(&e)))),
    }
}

impl Client for PgClient {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // Tables first: statements are prepared when a session opens.
            let mut cfg = tokio_postgres::Config::new();
            cfg.host(&self.primary)
                .port(self.port)
                .user("postgres")
                .dbname("postgres")
                .connect_timeout(Duration::from_secs(2));
            let (client, connection) = cfg
                .connect(NoTls)
                .await
                .map_err(|e| format!("connecting to {}: {}", self.primary, describe(&e)))?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            let r = client.batch_execute(&create_sql(self.workload)).await;
            task.abort();
            r.map_err(|e| format!("creating the table: {}", describe(&e)))
        })
    }

    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            match (self.workload, op.f.as_str()) {
                (Workload::ListAppend | Workload::RwRegister, "txn") => self.txn(op).await,
                (Workload::Register, _) => self.register(op).await,
                (w, f) => Completion::fail(format!("postgres: `{f}` is not an operation of {w}")),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.conn = None;
            self.read_conn = None;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_names_round_trip() {
        for i in Isolation::ALL {
            assert_eq!(i.name().parse::<Isolation>().unwrap(), i);
        }
        assert!("snapshot".parse::<Isolation>().is_err());
        assert_eq!(Isolation::default().sql(), "SERIALIZABLE");
    }

    #[test]
    fn micro_ops_parse_and_bad_ones_are_refused() {
        let op = Op::new("txn", None, json!([["r", 1, null], ["append", 2, 3]]));
        let m = parse_mops(&op).unwrap();
        assert!(matches!(m[0], Mop::Read(1)) && matches!(m[1], Mop::Write(2, 3)));
        let bad = Op::new("txn", None, json!([["r", "x", null]]));
        assert!(parse_mops(&bad).is_err());
        assert!(parse_mops(&Op::new("txn", None, json!(3))).is_err());
    }

    #[test]
    fn conflicts_are_40001_and_40p01() {
        assert!(is_conflict(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(is_conflict(&SqlState::T_R_DEADLOCK_DETECTED));
        assert!(!is_conflict(&SqlState::UNIQUE_VIOLATION));
        assert!(create_sql(Workload::ListAppend).contains("bigint[]"));
    }

    #[test]
    fn opening_a_client_contacts_no_one() {
        // 192.0.2.0/24 is TEST-NET-1: nothing is ever there, and opening
        // must not try.
        let cfg = PgConfig::new("n1", [("n1", "192.0.2.1")]);
        let t = PgTarget::new(cfg);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = ClientOpts::new(faultline_workloads::WorkloadOptions::new(
            Workload::ListAppend,
        ));
        rt.block_on(async {
            assert!(t.client("n1", &opts).await.is_ok());
            assert!(matches!(
                t.client("n9", &opts).await,
                Err(TargetError::UnknownNode(_))
            ));
        });
    }
}
