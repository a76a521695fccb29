//! ZooKeeper 3.8 through the `zookeeper-client` crate (async, tokio).
//!
//! Only the client lives here; [`crate::zookeeper_db`] deploys the
//! ensemble. Each client talks to ONE server, its node's (the connect
//! string names only that server), so what a partitioned server answers is
//! what the history records.
//!
//! Workloads (znodes under `/reg`, `/set`, `/lock`, created by
//! [`Client::setup`]):
//!
//! - **register**: `read` = getData of `/reg/<key>` (a missing node reads
//!   `null`); `write` = unconditional setData (create when missing);
//!   `cas` = getData, compare, then setData guarded by the version read
//!   (`BadVersion`: `fail`, nothing written).
//! - **set**: `add` = create a persistent sequential `/set/e-` whose data
//!   is the element; `read` = getChildren of `/set` and getData of each.
//! - **lock**: the ephemeral-sequential recipe. `acquire` creates
//!   `/lock/lock-` (ephemeral, sequential), lists `/lock`, and holds the
//!   lock when its node is the lowest; otherwise it watches its
//!   predecessor, for at most half the operation's time, then deletes its
//!   node and fails. The fencing token is the node's sequence number
//!   (assigned in creation order, and grants follow that order).
//!   `release` deletes the node. The node lives as long as the session: a
//!   holder whose session expires loses the lock without knowing, and the
//!   lock checker reports the overlap.
//!
//! Reads are served by the client's server from its local copy, so they
//! are sequentially consistent but may be stale (ZooKeeper's documented
//! guarantee). With `sync_reads` every read is preceded by `sync(path)`,
//! which makes the server catch up with the leader first.
//!
//! Classification (the [`Client`] contract): definite answers (`NoNode`,
//! `BadVersion`, `NodeExists`, …) are `fail` (or `ok`, where they are the
//! answer); a lost connection, an expired session or a timeout after the
//! request was sent is `info` for writes and `fail` for reads. A session
//! that expired is replaced before the next operation (the lock held with
//! it is gone).
//!
//! Spare sessions: creating a session is a quorum write in ZooKeeper, so a
//! server cut off from the leader cannot open one, and a process that
//! replaces one whose write timed out (the runner opens a fresh client
//! after every `info`) would wait for the heal. The target keeps a few
//! established sessions per node ([`ZkConfig::spare_sessions`]) and hands
//! them to new clients: each process still has a session of its own that
//! no other process ever used.

use crate::{BoxFuture, Client, ClientOpts, Target, TargetError};
use faultline_workloads::{Completion, Op, Value, Workload};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use zookeeper_client as zk;

/// The workloads the ZooKeeper client implements.
pub const WORKLOADS: [Workload; 3] = [Workload::Register, Workload::Set, Workload::Lock];

/// Parent znodes of the workloads.
const REG: &str = "/reg";
const SET: &str = "/set";
const LOCK: &str = "/lock";

/// How long the spare-session filler waits for one session.
const FILL_CONNECT: Duration = Duration::from_secs(3);

/// Where ZooKeeper is and how to use it.
#[derive(Clone, Debug, PartialEq)]
pub struct ZkConfig {
    /// node name → `IP:2181`.
    pub endpoints: BTreeMap<String, String>,
    /// `sync(path)` before every read.
    pub sync_reads: bool,
    /// Requested session timeout (the server clamps it to 2–20 ticks).
    pub session_timeout: Duration,
    /// Established sessions kept ready per node (0: none).
    pub spare_sessions: usize,
}

impl ZkConfig {
    pub fn new<N: Into<String>, A: Into<String>>(
        endpoints: impl IntoIterator<Item = (N, A)>,
    ) -> ZkConfig {
        ZkConfig {
            endpoints: endpoints
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
            sync_reads: false,
            session_timeout: Duration::from_secs(10),
            spare_sessions: 2,
        }
    }
}

/// Established sessions to one server, ready for new clients.
struct Pool {
    addr: String,
    session_timeout: Duration,
    spares: usize,
    idle: Mutex<Vec<zk::Client>>,
    filling: AtomicBool,
}

impl Pool {
    async fn connect(&self, within: Duration) -> Result<zk::Client, String> {
        let c = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_server_version(3, 8, 0)
            .with_fail_eagerly();
        match tokio::time::timeout(within, c.connect(&self.addr)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(format!("{}: {e}", self.addr)),
            Err(_) => Err(format!(
                "{}: no session within {} ms",
                self.addr,
                within.as_millis()
            )),
        }
    }

    /// A connected spare, dropping spares whose session ended.
    fn take(&self) -> Option<zk::Client> {
        let mut idle = self.idle.lock().ok()?;
        idle.retain(|c| !c.state().is_terminated());
        let i = idle
            .iter()
            .position(|c| c.state() == zk::SessionState::SyncConnected)?;
        Some(idle.remove(i))
    }

    fn needs_more(&self) -> bool {
        self.idle.lock().is_ok_and(|mut idle| {
            idle.retain(|c| !c.state().is_terminated());
            idle.len() < self.spares
        })
    }

    /// A session: a spare when one is ready, else a new one.
    async fn session(self: &Arc<Self>, within: Duration) -> Result<zk::Client, String> {
        self.start_filler();
        match self.take() {
            Some(c) => Ok(c),
            None => self.connect(within).await,
        }
    }

    /// Keeps `spares` sessions ready, in the background, for as long as
    /// the target exists.
    fn start_filler(self: &Arc<Self>) {
        if self.spares == 0 || self.filling.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Pool> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(pool) = weak.upgrade() else {
                    return;
                };
                let pause = if pool.needs_more() {
                    match pool.connect(FILL_CONNECT).await {
                        Ok(c) => {
                            if let Ok(mut idle) = pool.idle.lock() {
                                idle.push(c);
                            }
                            Duration::ZERO
                        }
                        Err(_) => Duration::from_millis(200),
                    }
                } else {
                    Duration::from_millis(50)
                };
                drop(pool);
                tokio::time::sleep(pause).await;
            }
        });
    }
}

/// The ZooKeeper target (client side only).
pub struct ZkTarget {
    cfg: ZkConfig,
    pools: BTreeMap<String, Arc<Pool>>,
}

impl ZkTarget {
    pub fn new(cfg: ZkConfig) -> ZkTarget {
        let pools = cfg
            .endpoints
            .iter()
            .map(|(n, a)| {
                let pool = Pool {
                    addr: a.clone(),
                    session_timeout: cfg.session_timeout,
                    spares: cfg.spare_sessions,
                    idle: Mutex::new(Vec::new()),
                    filling: AtomicBool::new(false),
                };
                (n.clone(), Arc::new(pool))
            })
            .collect();
        ZkTarget { cfg, pools }
    }
}

impl Target for ZkTarget {
    fn name(&self) -> &str {
        "zookeeper"
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
            let pool = self
                .pools
                .get(node)
                .ok_or_else(|| TargetError::UnknownNode(node.to_string()))?
                .clone();
            // Give up a little before the runner does, so this client (which
            // knows reads from writes) classifies the timeout.
            let timeout = opts.timeout.mul_f64(0.9).max(Duration::from_millis(10));
            let zk = pool
                .session(timeout)
                .await
                .map_err(|message| TargetError::Open {
                    node: node.to_string(),
                    message,
                })?;
            Ok(Box::new(ZkClient {
                pool,
                zk: Some(zk),
                sync_reads: self.cfg.sync_reads,
                workload: opts.workload.workload,
                timeout,
                held: None,
            }) as Box<dyn Client>)
        })
    }
}

struct ZkClient {
    pool: Arc<Pool>,
    /// The process's session (`None` after it ended, until replaced).
    zk: Option<zk::Client>,
    sync_reads: bool,
    workload: Workload,
    /// The client's own deadline per operation (a little under the runner's).
    timeout: Duration,
    /// Lock: (our lock node's path, its sequence number) while held.
    held: Option<(String, i64)>,
}

/// The outcome of a request is unknown (sent, then no answer).
fn uncertain(e: &zk::Error) -> bool {
    !matches!(
        e,
        zk::Error::NoNode
            | zk::Error::NodeExists
            | zk::Error::BadVersion
            | zk::Error::NotEmpty
            | zk::Error::NoChildrenForEphemerals
            | zk::Error::InvalidAcl
            | zk::Error::NoAuth
            | zk::Error::BadArguments(_)
            | zk::Error::Throttled
            | zk::Error::Unimplemented
            | zk::Error::QuotaExceeded
            | zk::Error::NotReadOnly
            | zk::Error::MarshallingError
    )
}

fn decode(data: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(data).map_err(|e| format!("znode data is not JSON: {e}"))
}

fn key_path(k: Option<&Value>) -> String {
    // Strings keep their text; numbers and others their JSON.
    match k {
        Some(Value::String(s)) => format!("{REG}/{s}"),
        Some(v) => format!("{REG}/{v}"),
        None => format!("{REG}/null"),
    }
}

/// Sequence number of a `…-0000000012` node name.
fn sequence(name: &str) -> Option<i64> {
    name.rsplit('-').next()?.parse().ok()
}

/// Creates the workloads' parent znodes (idempotent).
async fn mkdirs(zk: &zk::Client) -> Result<(), zk::Error> {
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    for p in [REG, SET, LOCK] {
        match zk.create(p, b"", &opts).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl ZkClient {
    /// The session, replacing one that ended (nothing was sent yet).
    async fn session(&mut self) -> Result<zk::Client, String> {
        if let Some(z) = &self.zk
            && !z.state().is_terminated()
        {
            return Ok(z.clone());
        }
        // Ephemeral nodes die with their session.
        self.held = None;
        self.zk = None;
        let z = self.pool.session(self.timeout).await?;
        self.zk = Some(z.clone());
        Ok(z)
    }

    async fn sync(&self, zk: &zk::Client, path: &str) -> Result<(), zk::Error> {
        if self.sync_reads {
            zk.sync(path).await?;
        }
        Ok(())
    }

    async fn read(&self, zk: &zk::Client, op: &Op) -> Result<Completion, zk::Error> {
        let path = key_path(op.key.as_ref());
        self.sync(zk, &path).await?;
        Ok(match zk.get_data(&path).await {
            Ok((data, _)) => match decode(&data) {
                Ok(v) => Completion::ok(v),
                Err(e) => Completion::fail(e),
            },
            Err(zk::Error::NoNode) => Completion::ok(Value::Null),
            Err(e) => return Err(e),
        })
    }

    async fn write(&self, zk: &zk::Client, op: &Op) -> Result<Completion, zk::Error> {
        let path = key_path(op.key.as_ref());
        let data = op.value.to_string();
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        // Two tries: set, or create when missing; a create that lost a race
        // to another client's create is then a set.
        for _ in 0..2 {
            match zk.set_data(&path, data.as_bytes(), None).await {
                Ok(_) => return Ok(Completion::ok(op.value.clone())),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(e),
            }
            match zk.create(&path, data.as_bytes(), &opts).await {
                Ok(_) => return Ok(Completion::ok(op.value.clone())),
                Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        // Every step was a definite refusal: nothing was written.
        Ok(Completion::fail(
            "write: the key kept appearing and vanishing",
        ))
    }

    async fn cas(&self, zk: &zk::Client, op: &Op) -> Result<Completion, zk::Error> {
        let (Some(old), Some(new)) = (op.value.get(0), op.value.get(1)) else {
            return Ok(Completion::fail("cas value must be [old, new]"));
        };
        let path = key_path(op.key.as_ref());
        // A stale read here is harmless: its version is stale too, so the
        // guarded setData fails with BadVersion.
        let (data, stat) = match zk.get_data(&path).await {
            Ok(d) => d,
            Err(zk::Error::NoNode) => return Ok(Completion::fail("cas on a missing key")),
            Err(e) => return Err(e),
        };
        match decode(&data) {
            Ok(cur) if &cur == old => {}
            Ok(_) => return Ok(Completion::fail("cas mismatch")),
            Err(e) => return Ok(Completion::fail(e)),
        }
        Ok(
            match zk
                .set_data(&path, new.to_string().as_bytes(), Some(stat.version))
                .await
            {
                Ok(_) => Completion::ok(op.value.clone()),
                Err(zk::Error::BadVersion) => Completion::fail("cas: version changed"),
                Err(zk::Error::NoNode) => Completion::fail("cas on a missing key"),
                Err(e) => return Err(e),
            },
        )
    }

    async fn set_add(&self, zk: &zk::Client, op: &Op) -> Result<Completion, zk::Error> {
        let opts = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        let path = format!("{SET}/e-");
        zk.create(&path, op.value.to_string().as_bytes(), &opts)
            .await?;
        Ok(Completion::ok(op.value.clone()))
    }

    async fn set_read(&self, zk: &zk::Client) -> Result<Completion, zk::Error> {
        self.sync(zk, SET).await?;
        let children = zk.list_children(SET).await?;
        // Requests go out when each call is made, so creating every future
        // first pipelines the reads.
        let reads: Vec<_> = children
            .iter()
            .map(|c| zk.get_data(&format!("{SET}/{c}")))
            .collect();
        let mut out = Vec::with_capacity(reads.len());
        for r in reads {
            let (data, _) = r.await?;
            match decode(&data) {
                Ok(v) => out.push(v),
                Err(e) => return Ok(Completion::fail(e)),
            }
        }
        Ok(Completion::ok(Value::Array(out)))
    }

    async fn acquire(&mut self, zk: &zk::Client) -> Result<Completion, zk::Error> {
        if self.held.is_some() {
            return Ok(Completion::fail("already held by this client"));
        }
        let opts = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, seq) = zk.create(&format!("{LOCK}/lock-"), b"", &opts).await?;
        let token = seq.into_i64();
        let mine = format!("{LOCK}/lock-{seq}");
        let give_up = tokio::time::Instant::now() + self.timeout / 2;
        loop {
            let mut nodes: Vec<(i64, String)> = zk
                .list_children(LOCK)
                .await?
                .into_iter()
                .filter_map(|c| sequence(&c).map(|s| (s, c)))
                .collect();
            nodes.sort();
            // Our node is in the server's copy (it applied our create before
            // answering), so a lower node that is missing was deleted
            // everywhere: lowest here means lowest.
            let Some(at) = nodes.iter().position(|(s, _)| *s == token) else {
                // Gone: the session expired, so the lock was never ours.
                return Ok(Completion::fail("lock node vanished (session expired)"));
            };
            if at == 0 {
                self.held = Some((mine, token));
                return Ok(Completion::ok(json!({ "token": token })));
            }
            let pred = format!("{LOCK}/{}", nodes[at - 1].1);
            let left = give_up.saturating_duration_since(tokio::time::Instant::now());
            if !left.is_zero() {
                match zk.check_and_watch_stat(&pred).await? {
                    (None, _) => continue,
                    (Some(_), w) => {
                        if tokio::time::timeout(left, w.changed()).await.is_ok() {
                            continue;
                        }
                    }
                }
            }
            // Waited long enough: leave the queue, never having held it.
            return Ok(match zk.delete(&mine, None).await {
                Ok(()) | Err(zk::Error::NoNode) => Completion::fail("held by another client"),
                // Still queued: the runner closes this session (an `info`
                // retires the client), which deletes the node.
                Err(e) => Completion::info(format!("leaving the lock queue: {e}")),
            });
        }
    }

    async fn release(&mut self, zk: &zk::Client) -> Result<Completion, zk::Error> {
        let Some((path, _)) = self.held.take() else {
            return Ok(Completion::fail("not held by this client"));
        };
        Ok(match zk.delete(&path, None).await {
            Ok(()) => Completion::ok(Value::Null),
            Err(zk::Error::NoNode) => Completion::fail("lock lost: its session expired"),
            Err(e) => return Err(e),
        })
    }

    async fn dispatch(&mut self, zk: &zk::Client, op: &Op) -> Result<Completion, zk::Error> {
        match (self.workload, op.f.as_str()) {
            (Workload::Register, "read") => self.read(zk, op).await,
            (Workload::Register, "write") => self.write(zk, op).await,
            (Workload::Register, "cas") => self.cas(zk, op).await,
            (Workload::Set, "add") => self.set_add(zk, op).await,
            (Workload::Set, "read") => self.set_read(zk).await,
            (Workload::Lock, "acquire") => self.acquire(zk).await,
            (Workload::Lock, "release") => self.release(zk).await,
            (w, f) => Ok(Completion::fail(format!(
                "zookeeper: `{f}` is not an operation of {w}"
            ))),
        }
    }
}

impl Client for ZkClient {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let zk = self.session().await?;
            match tokio::time::timeout(self.timeout, mkdirs(&zk)).await {
                Ok(r) => r.map_err(|e| format!("creating {REG}, {SET}, {LOCK}: {e}")),
                Err(_) => Err(format!("creating {REG}, {SET}, {LOCK}: timed out")),
            }
        })
    }

    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let zk = match self.session().await {
                Ok(z) => z,
                // No session: nothing was sent.
                Err(e) => return Completion::fail(format!("no session: {e}")),
            };
            let read_only = op.is_read_only();
            match tokio::time::timeout(self.timeout, self.dispatch(&zk, op)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) if !uncertain(&e) || read_only => Completion::fail(e.to_string()),
                Ok(Err(e)) => Completion::info(e.to_string()),
                Err(_) if read_only => Completion::fail("timeout"),
                Err(_) => Completion::info("timeout"),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        // Dropping the last handle closes the session (and deletes its
        // ephemeral nodes) in the crate's background task.
        self.zk = None;
        self.held = None;
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_workloads::{Outcome, WorkloadOptions};

    #[test]
    fn paths_and_sequences() {
        assert_eq!(key_path(Some(&json!(3))), "/reg/3");
        assert_eq!(key_path(Some(&json!("a"))), "/reg/a");
        assert_eq!(sequence("lock-0000000012"), Some(12));
        assert_eq!(sequence("lock-x"), None);
        assert!(uncertain(&zk::Error::ConnectionLoss));
        assert!(uncertain(&zk::Error::SessionExpired));
        assert!(!uncertain(&zk::Error::BadVersion));
    }

    #[tokio::test]
    async fn unreachable_server_refuses_to_open_without_hanging() {
        // Port 1 on loopback: nothing listens.
        let mut cfg = ZkConfig::new([("n1", "127.0.0.1:1")]);
        cfg.spare_sessions = 0;
        let t = ZkTarget::new(cfg);
        let mut opts = ClientOpts::new(WorkloadOptions::new(Workload::Register));
        opts.timeout = Duration::from_millis(300);
        let t0 = std::time::Instant::now();
        assert!(t.client("n1", &opts).await.is_err());
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert!(t.client("n9", &opts).await.is_err());
        let bad = ClientOpts::new(WorkloadOptions::new(Workload::Bank));
        assert!(t.client("n1", &bad).await.is_err());
    }

    /// A loopback server that accepts connections, reads, never answers.
    async fn silent_server() -> String {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while sock.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_session_that_never_opens_is_an_open_error() {
        let addr = silent_server().await;
        let t = ZkTarget::new(ZkConfig::new([("n1", addr.as_str())]));
        let mut opts = ClientOpts::new(WorkloadOptions::new(Workload::Lock));
        opts.timeout = Duration::from_millis(300);
        let e = t.client("n1", &opts).await.err().expect("no session");
        assert!(e.to_string().contains("no session within"), "{e}");
        // And a client whose session ended answers fail, sending nothing.
        let mut c = ZkClient {
            pool: t.pools["n1"].clone(),
            zk: None,
            sync_reads: false,
            workload: Workload::Lock,
            timeout: Duration::from_millis(300),
            held: None,
        };
        let done = c.invoke(&Op::new("acquire", None, Value::Null)).await;
        assert_eq!(done.outcome, Outcome::Fail, "{done:?}");
    }
}
