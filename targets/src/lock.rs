//! The lock service with leases and fencing tokens (`faultline-node
//! lock`) as a target: the same deployment ([`NodeDb`]) as the Raft
//! server, plus the fenced storage service every member runs on
//! [`STORAGE_PORT`] (node 1 holds the data, the others relay), and a client
//! for the `fenced` workload (see docs/lock.md).
//!
//! The client keeps, per lock, the token it holds and when it asked for
//! the lease (its own monotonic clock):
//! - `acquire` / `renew` / `release` go to the Raft cluster (following
//!   `not_leader` hints, like [`crate::node`]); ok values carry the token;
//! - `write` checks the lease on the client's clock (fails at once when it
//!   holds none or it ran out), then sends `write(key, value, token)` to
//!   the storage through its own node; `rejected` → fail (the storage
//!   refused a stale token), no answer → info. The seeded bug
//!   `skip-fencing` sends no token: the storage cannot check it;
//! - a `write` the generator marks [`Op::expect_refusal`] (a stale-token
//!   write on purpose: the fenced generator sends one now and then) skips the lease check and goes with
//!   the token of the client's last grant of the lock, which the storage
//!   must refuse; its `ok` value says `"stale": true`;
//! - the final `read` returns the storage's log of accepted writes.
//!
//! ```
//! let t = faultline_targets::lock::info();
//! assert_eq!(t.name, "lock");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "skip-fencing"));
//! ```

use crate::db::{Db, DbContext, TargetInfo};
use crate::node::{Fate, NodeClient, NodeConfig, NodeDb, NodeHooks, NodeTarget};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Primaries, Target, TargetError};
use faultline_node::kv::Op as KvOp;
use faultline_workloads::{Completion, Op, Value, Workload};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

pub const PROTOCOL: &str = "lock";
/// Where every member's storage service (or relay) listens.
pub const STORAGE_PORT: u16 = faultline_node::lock::storage::DEFAULT_PORT;
const WORKLOADS: [Workload; 1] = [Workload::Fenced];
/// How long a lease request may take.
const LEASE_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &["max-lease-ms"])?;
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d.with_hooks(LockHooks)))
}

/// A `faultline-node lock` cluster: [`NodeDb`] with these hooks (ready
/// when its Raft members name one leader).
pub struct LockHooks;

impl NodeHooks for LockHooks {
    fn name(&self) -> &'static str {
        PROTOCOL
    }
    fn json(&self, _db: &NodeDb, record: &mut Value) {
        record["storage_port"] = json!(STORAGE_PORT);
    }
    fn target(&self, db: &NodeDb) -> Arc<dyn Target> {
        // `skip-fencing` is the client's bug (the storage writes it makes
        // carry no token); the bug names were checked by `from_ctx`.
        let skip_fencing =
            faultline_node::lock::Bugs::from_names(&db.bugs).is_ok_and(|b| b.skip_fencing);
        Arc::new(LockTarget::new(
            db.client_config(),
            db.nodes
                .values()
                .map(|a| format!("{a}:{STORAGE_PORT}"))
                .collect(),
            skip_fencing,
        ))
    }
}

/// The client side: the Raft members and each member's storage port.
pub struct LockTarget {
    cfg: Arc<NodeConfig>,
    nodes: NodeTarget,
    storage: Vec<String>,
    skip_fencing: bool,
}

impl LockTarget {
    /// `storage[i]` is member `i`'s storage address.
    pub fn new(cfg: NodeConfig, storage: Vec<String>, skip_fencing: bool) -> LockTarget {
        LockTarget {
            nodes: NodeTarget::new(cfg.clone()),
            cfg: Arc::new(cfg),
            storage,
            skip_fencing,
        }
    }
}

impl Target for LockTarget {
    fn name(&self) -> &str {
        PROTOCOL
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
            let at = self
                .cfg
                .members
                .iter()
                .position(|(n, _)| n == node)
                .ok_or_else(|| TargetError::UnknownNode(node.to_string()))?;
            let budget = opts.timeout.mul_f64(0.9);
            // A lease request waits at most a second for a leader that
            // may be paused (then `info`, and the runner opens a fresh
            // client that finds the new leader): longer than any lease
            // would leave a failover untested.
            let raft_budget = budget.min(LEASE_REQUEST_TIMEOUT);
            Ok(Box::new(LockClient {
                raft: NodeClient::new(
                    Arc::clone(&self.cfg),
                    opts.workload.clone(),
                    at,
                    raft_budget,
                ),
                storage: self.storage.get(at).cloned().unwrap_or_default(),
                conn: None,
                held: BTreeMap::new(),
                last: BTreeMap::new(),
                skip_fencing: self.skip_fencing,
                budget,
            }) as Box<dyn Client>)
        })
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Target::primaries(&self.nodes)
    }

    fn log_files(&self) -> Option<&dyn LogFiles> {
        Target::log_files(&self.nodes)
    }
}

/// A lease this client holds, by its own clock.
struct Held {
    token: u64,
    since: Instant,
    lease: Duration,
}

struct LockClient {
    raft: NodeClient,
    storage: String,
    conn: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
    held: BTreeMap<u64, Held>,
    /// Per lock, the token of the last grant (acquire or renew `ok`),
    /// kept after the lease is gone: what a stale write sends.
    last: BTreeMap<u64, u64>,
    skip_fencing: bool,
    budget: Duration,
}

/// A storage request's fate when there was no answer.
enum StorageFate {
    NotSent(String),
    Unknown(String),
}

impl LockClient {
    /// One request line to the storage (through this client's node).
    async fn storage(&mut self, req: &Value) -> Result<Value, StorageFate> {
        let deadline = Instant::now() + self.budget;
        if self.conn.is_none() {
            let c = tokio::time::timeout(self.budget, TcpStream::connect(&self.storage)).await;
            match c {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    let (r, w) = s.into_split();
                    self.conn = Some((BufReader::new(r), w));
                }
                Ok(Err(e)) => return Err(StorageFate::NotSent(format!("{}: {e}", self.storage))),
                Err(_) => {
                    return Err(StorageFate::NotSent(format!(
                        "{}: connect timed out",
                        self.storage
                    )));
                }
            }
        }
        let Some((r, w)) = self.conn.as_mut() else {
            return Err(StorageFate::NotSent("no connection".into()));
        };
        let mut line = req.to_string();
        line.push('\n');
        if let Err(e) = w.write_all(line.as_bytes()).await {
            self.conn = None;
            return Err(StorageFate::Unknown(format!("sending: {e}")));
        }
        let mut buf = String::new();
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, r.read_line(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => serde_json::from_str(&buf).map_err(|e| {
                self.conn = None;
                StorageFate::Unknown(format!("bad reply {buf:?}: {e}"))
            }),
            Ok(_) => {
                self.conn = None;
                Err(StorageFate::Unknown("connection lost after sending".into()))
            }
            Err(_) => {
                self.conn = None;
                Err(StorageFate::Unknown("no reply in time".into()))
            }
        }
    }

    /// A lease op through Raft: ok value, fail or info.
    async fn lease(&mut self, op: KvOp) -> Result<Value, Completion> {
        match self.raft.call(op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) | Err(Fate::NoEffect(e)) => Err(Completion::fail(e)),
            Err(Fate::Unknown(e)) => Err(Completion::info(e)),
        }
    }

    async fn run(&mut self, op: &Op) -> Completion {
        let key = op.key.as_ref().and_then(Value::as_u64);
        let lease_ms = op.value.get("lease_ms").and_then(Value::as_u64);
        match (op.f.as_str(), key) {
            ("acquire", Some(lock)) => {
                let lease_ms = lease_ms.unwrap_or(1500);
                let since = Instant::now();
                let kop = KvOp::LeaseAcquire {
                    lock,
                    lease_ms,
                    preempt: None,
                };
                match self.lease(kop).await {
                    Ok(v) => {
                        let Some(token) = v["token"].as_u64() else {
                            return Completion::info(format!("no token in {v}"));
                        };
                        self.last.insert(lock, token);
                        self.held.insert(
                            lock,
                            Held {
                                token,
                                since,
                                lease: Duration::from_millis(lease_ms),
                            },
                        );
                        Completion::ok(json!({"token": token, "lease_ms": lease_ms}))
                    }
                    Err(c) => c,
                }
            }
            ("renew", Some(lock)) => {
                let Some(token) = self.held.get(&lock).map(|h| h.token) else {
                    return Completion::fail("renew: this client holds no lease on the lock");
                };
                let lease_ms = lease_ms.unwrap_or(1500);
                let since = Instant::now();
                let kop = KvOp::LeaseRenew {
                    lock,
                    token,
                    lease_ms,
                };
                match self.lease(kop).await {
                    Ok(_) => {
                        self.last.insert(lock, token);
                        if let Some(h) = self.held.get_mut(&lock) {
                            h.since = since;
                            h.lease = Duration::from_millis(lease_ms);
                        }
                        Completion::ok(json!({"token": token, "lease_ms": lease_ms}))
                    }
                    Err(c) => {
                        self.held.remove(&lock);
                        c
                    }
                }
            }
            ("release", Some(lock)) => {
                let Some(h) = self.held.remove(&lock) else {
                    return Completion::fail("release: this client holds no lease on the lock");
                };
                match self
                    .lease(KvOp::LeaseRelease {
                        lock,
                        token: h.token,
                    })
                    .await
                {
                    Ok(_) => Completion::ok(json!({"token": h.token})),
                    Err(c) => c,
                }
            }
            ("write", Some(key)) => {
                let Some(value) = op.value.as_i64() else {
                    return Completion::fail(format!("write: {} is not an integer", op.value));
                };
                let live = self.held.get(&key).filter(|h| h.since.elapsed() < h.lease);
                let stale = op.expect_refusal && live.is_none();
                let token = match (live, self.last.get(&key)) {
                    (Some(h), _) => h.token,
                    (None, Some(&t)) if stale => t,
                    (None, _) => {
                        let ran_out = self.held.remove(&key).is_some();
                        return Completion::fail(if ran_out {
                            "write: the lease ran out by the client's clock"
                        } else {
                            "write: this client holds no lease on the lock"
                        });
                    }
                };
                // BUG skip-fencing: the lease check above is all it does.
                let sent = (!self.skip_fencing).then_some(token);
                let client = self.raft.client_id;
                let req =
                    json!({"write": {"key": key, "value": value, "token": sent, "client": client}});
                match self.storage(&req).await {
                    Ok(r) if r.get("ok").is_some() => {
                        let mut v = json!({"value": value, "token": token, "sent": sent.is_some()});
                        if stale {
                            v["stale"] = json!(true);
                        }
                        Completion::ok(v)
                    }
                    Ok(r) if r.get("rejected").is_some() => {
                        self.held.remove(&key);
                        let why = if stale {
                            " (a stale token, sent on purpose)"
                        } else {
                            ""
                        };
                        Completion::fail(format!(
                            "write: the storage rejected token {token}{why}: {r}"
                        ))
                    }
                    // Not applied: a bad line, or a relay that did not forward it.
                    Ok(r) => Completion::fail(format!("write: {r}")),
                    Err(StorageFate::NotSent(e)) => Completion::fail(e),
                    Err(StorageFate::Unknown(e)) => Completion::info(e),
                }
            }
            ("read", _) => match self.storage(&json!({"read": true})).await {
                Ok(r) if r.get("log").is_some() => Completion::ok(r["log"].clone()),
                Ok(r) => Completion::fail(format!("read: {r}")),
                Err(StorageFate::NotSent(e) | StorageFate::Unknown(e)) => Completion::fail(e),
            },
            (f, None) if f != "read" => Completion::fail(format!("{f} needs an integer key")),
            (f, _) => Completion::fail(format!("`{f}` is not an operation of fenced")),
        }
    }
}

impl Client for LockClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.run(op))
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.conn = None;
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_workloads::{Outcome, WorkloadOptions};

    #[test]
    fn builds_a_lock_cluster_and_refuses_what_it_lacks() {
        let mut ctx = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.23.11".into()),
                ("n2".into(), "10.77.23.12".into()),
            ],
            bugs: vec!["skip-fencing".into()],
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        let db = build(PROTOCOL, &ctx).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node lock --id 2"), "{cmd}");
        assert_eq!(db.json().1["storage_port"], 7002);
        ctx.bugs = vec!["stale-read".into()];
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(
            e.contains("stale-read") && e.contains("skip-fencing"),
            "{e}"
        );
        ctx.bugs.clear();
        ctx.options.insert("lease-read".into(), "true".into());
        assert!(build(PROTOCOL, &ctx).is_err());
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    /// A real 3-node lock cluster on loopback (shell threads in this
    /// process, node 1's storage) and the client: a grant, a refused
    /// second acquire, a fenced write, a write after release refused by the
    /// client, a stale token refused by the storage, the final read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fenced_ops_through_a_loopback_cluster() {
        use faultline_node::lock::{LockService, storage};
        use faultline_node::shell::Log;
        let cluster = crate::loopback::start::<LockService>(
            PROTOCOL,
            "lock",
            3,
            (20, 4),
            &["tick-ms=5".into()],
        );
        let sp = crate::loopback::free_port();
        storage::serve(
            format!("127.0.0.1:{sp}").parse().unwrap(),
            None,
            &cluster.base,
            false,
            Log::new("test storage".into()),
        )
        .unwrap();
        let target = LockTarget::new(
            NodeConfig {
                protocol: PROTOCOL.into(),
                members: cluster.members.clone(),
            },
            vec![format!("127.0.0.1:{sp}"); 3],
            false,
        );
        let opts = ClientOpts::new(WorkloadOptions::new(Workload::Fenced));
        let mut a = target.client("n2", &opts).await.unwrap();
        let mut b = target.client("n3", &opts).await.unwrap();
        let acq = Op::new("acquire", Some(json!(0)), json!({"lease_ms": 300}));
        // A new leader waits out a lease first; retry until granted.
        let mut got = None;
        for _ in 0..100 {
            let c = a.invoke(&acq).await;
            if c.outcome == Outcome::Ok {
                got = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t1 = got.expect("granted").value["token"].as_u64().unwrap();
        let c = b.invoke(&acq).await;
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        let c = a.invoke(&Op::new("write", Some(json!(0)), json!(1))).await;
        assert_eq!(c.value, json!({"value": 1, "token": t1, "sent": true}));
        // The lease runs out; b preempts and writes; a's write is refused
        // by a's own clock.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let c = b.invoke(&acq).await;
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        let t2 = c.value["token"].as_u64().unwrap();
        assert!(t2 > t1);
        let c = b.invoke(&Op::new("write", Some(json!(0)), json!(2))).await;
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        let c = a.invoke(&Op::new("write", Some(json!(0)), json!(3))).await;
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        // The same write on purpose goes with a's last token, t1, and the
        // storage (which accepted t2) refuses it.
        let mut stale = Op::new("write", Some(json!(0)), json!(5));
        stale.expect_refusal = true;
        let c = a.invoke(&stale).await;
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        let e = c.error.unwrap_or_default();
        assert!(
            e.contains(&format!("rejected token {t1} (a stale token")),
            "{e}"
        );
        // A stale token straight to the storage is rejected.
        let mut raw = TcpStream::connect(format!("127.0.0.1:{sp}")).await.unwrap();
        raw.write_all(
            format!(
                "{}\n",
                json!({"write": {"key": 0, "value": 4, "token": t1, "client": 9}})
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut line = String::new();
        BufReader::new(raw).read_line(&mut line).await.unwrap();
        assert!(line.contains("rejected"), "{line}");
        let c = a.invoke(&Op::new("read", None, Value::Null)).await;
        let vals: Vec<i64> = c.value["0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].as_i64().unwrap())
            .collect();
        assert_eq!(vals, [1, 2]);
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
