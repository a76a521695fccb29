//! Redis 7: a primary and its replicas (`REPLICAOF`), the clients' side and
//! the failover. Deploying it is [`crate::redis_db`].
//!
//! Clients send every operation, reads included, to the **current primary**
//! (the target's view of it, changed only by a failover), over the `redis`
//! crate's multiplexed connection:
//!
//! - **register**: `GET`, `SET`, and compare-and-set as a Lua script
//!   (`EVAL`, atomic on the server) on `faultline:reg:<key>`; values are
//!   JSON text.
//! - **set**: `SADD faultline:set <n>`; the read is `SMEMBERS`.
//!
//! With `wait=N` (`--redis-wait N`) every write is followed by `WAIT N T`;
//! a write fewer than N replicas acknowledged within T is `info`: Redis
//! kept it on the primary and may still lose it.
//!
//! Classification (the [`Client`] contract): a connection that was never
//! made is `fail`, and so is a write refused with `READONLY` (a replica
//! refuses before doing anything); a timeout or a dropped connection after
//! sending is `info` for writes and `fail` for reads.
//!
//! # Failover
//!
//! Redis replication is asynchronous and nothing in Redis itself promotes
//! a replica (that is Sentinel's job). With `failover=true` the target
//! does what Sentinel would, when the nemesis asks ([`Failover`]) before it
//! heals a fault: if the primary is lost — unreachable from the
//! controller (killed, paused), or every reachable replica has lost its
//! link to it (partitioned) — the replica with the largest replication
//! offset is promoted (`REPLICAOF NO ONE`), every other node is pointed at
//! it (`REPLICAOF addr port`, the old primary included, which then drops
//! whatever it acknowledged that never reached the new primary), and
//! clients move to it. The control commands go over raw RESP with short
//! timeouts, so a paused node gets its `REPLICAOF` when it resumes.

use crate::{BoxFuture, Client, ClientOpts, Failover, Primaries, Target, TargetError};
use faultline_workloads::{Completion, Op, Value, Workload};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A node's `INFO replication` fields, or why it could not be read.
type ReplicationInfo = Result<BTreeMap<String, String>, String>;

pub const PORT: u16 = 6379;
/// Keys.
pub const SET_KEY: &str = "faultline:set";
/// How long a failover waits for each node.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(1);
/// A replica that heard nothing from its primary for this long has lost it
/// (the clients write all the time, so a live link is never this quiet).
const STALE_LINK_S: i64 = 2;

/// Compare-and-set on the server: `SET` only if the value is `ARGV[1]`.
const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                          redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

/// The workloads the Redis client implements.
pub const WORKLOADS: [Workload; 2] = [Workload::Register, Workload::Set];

/// Where Redis is and how to use it.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisConfig {
    /// (node, address) in order; the first is the initial primary.
    pub nodes: Vec<(String, String)>,
    pub port: u16,
    /// `WAIT N` after each write.
    pub wait: Option<u32>,
    /// Promote a replica when the primary is lost (see the module docs).
    pub failover: bool,
}

impl RedisConfig {
    pub fn new<N: Into<String>, A: Into<String>>(
        nodes: impl IntoIterator<Item = (N, A)>,
    ) -> RedisConfig {
        RedisConfig {
            nodes: nodes
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
            port: PORT,
            wait: None,
            failover: false,
        }
    }

    fn addr(&self, node: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, a)| format!("{a}:{}", self.port))
    }
}

struct Shared {
    cfg: RedisConfig,
    /// The node clients write to.
    primary: RwLock<String>,
}

impl Shared {
    fn primary(&self) -> String {
        self.primary
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// The Redis target (clients and failover).
pub struct RedisTarget {
    shared: Arc<Shared>,
}

impl RedisTarget {
    pub fn new(cfg: RedisConfig) -> RedisTarget {
        let first = cfg.nodes.first().map(|n| n.0.clone()).unwrap_or_default();
        RedisTarget {
            shared: Arc::new(Shared {
                cfg,
                primary: RwLock::new(first),
            }),
        }
    }

    /// The node clients currently write to.
    pub fn primary(&self) -> String {
        self.shared.primary()
    }
}

impl Target for RedisTarget {
    fn name(&self) -> &str {
        "redis"
    }

    fn workloads(&self) -> &[Workload] {
        &WORKLOADS
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }

    fn failover(&self) -> Option<&dyn Failover> {
        self.shared.cfg.failover.then_some(self as &dyn Failover)
    }

    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            self.check_supports(opts.workload.workload)?;
            if self.shared.cfg.addr(node).is_none() {
                return Err(TargetError::UnknownNode(node.to_string()));
            }
            // Connecting is lazy: opening changes nothing.
            Ok(Box::new(RedisClient {
                shared: Arc::clone(&self.shared),
                conn: None,
                workload: opts.workload.workload,
                timeout: opts.timeout.mul_f64(0.9).max(Duration::from_millis(10)),
            }) as Box<dyn Client>)
        })
    }
}

impl Primaries for RedisTarget {
    /// The primary clients write to (the target's view).
    fn primaries<'a>(
        &'a self,
        _nodes: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async move { Ok(vec![self.primary()]) })
    }
}

/// Why an operation has no answer.
enum RedisError {
    /// Certainly had no effect (never connected; refused by a replica).
    NotDone(String),
    /// Sent; the outcome is unknown.
    Indefinite(String),
}

fn classify(e: redis::RedisError) -> RedisError {
    if e.is_connection_refusal() {
        RedisError::NotDone(e.to_string())
    } else if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
        // A replica refuses a write before executing it.
        RedisError::NotDone(e.to_string())
    } else {
        RedisError::Indefinite(e.to_string())
    }
}

struct RedisClient {
    shared: Arc<Shared>,
    /// (node, connection) to the primary as it was when connecting.
    conn: Option<(String, MultiplexedConnection)>,
    workload: Workload,
    timeout: Duration,
}

fn reg_key(op: &Op) -> String {
    match op.key.as_ref() {
        Some(Value::String(s)) => format!("faultline:reg:{s}"),
        Some(k) => format!("faultline:reg:{k}"),
        None => "faultline:reg:null".into(),
    }
}

impl RedisClient {
    /// A connection to the current primary (a new one after a failover).
    async fn conn(&mut self) -> Result<MultiplexedConnection, RedisError> {
        let primary = self.shared.primary();
        if let Some((n, c)) = &self.conn
            && *n == primary
        {
            return Ok(c.clone());
        }
        let addr = self
            .shared
            .cfg
            .addr(&primary)
            .ok_or_else(|| RedisError::NotDone(format!("no address for {primary}")))?;
        let client = redis::Client::open(format!("redis://{addr}/"))
            .map_err(|e| RedisError::NotDone(e.to_string()))?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout.min(Duration::from_secs(1))))
            .set_response_timeout(Some(self.timeout));
        // Nothing of the operation was sent yet: any failure here is a
        // certain failure.
        let c = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| RedisError::NotDone(format!("connecting to {primary}: {e}")))?;
        self.conn = Some((primary, c.clone()));
        Ok(c)
    }

    /// `WAIT N T` after a write: fewer acknowledgements than N is unknown.
    async fn wait(
        &self,
        c: &mut MultiplexedConnection,
        done: Completion,
    ) -> Result<Completion, RedisError> {
        let Some(n) = self.shared.cfg.wait else {
            return Ok(done);
        };
        let ms = (self.timeout.as_millis() / 2).max(1) as u64;
        let acked: i64 = redis::cmd("WAIT")
            .arg(n)
            .arg(ms)
            .query_async(c)
            .await
            .map_err(classify)?;
        Ok(if acked >= i64::from(n) {
            done
        } else {
            Completion::info(format!(
                "WAIT {n} {ms}: only {acked} replica(s) acknowledged the write"
            ))
        })
    }

    async fn run(&mut self, op: &Op) -> Result<Completion, RedisError> {
        let mut c = self.conn().await?;
        match (self.workload, op.f.as_str()) {
            (Workload::Register, "read") => {
                let v: Option<String> = redis::cmd("GET")
                    .arg(reg_key(op))
                    .query_async(&mut c)
                    .await
                    .map_err(classify)?;
                Ok(match v.map(|s| serde_json::from_str::<Value>(&s)) {
                    None => Completion::ok(Value::Null),
                    Some(Ok(v)) => Completion::ok(v),
                    Some(Err(e)) => Completion::fail(format!("value is not JSON: {e}")),
                })
            }
            (Workload::Register, "write") => {
                let _: () = redis::cmd("SET")
                    .arg(reg_key(op))
                    .arg(op.value.to_string())
                    .query_async(&mut c)
                    .await
                    .map_err(classify)?;
                self.wait(&mut c, Completion::ok(op.value.clone())).await
            }
            (Workload::Register, "cas") => {
                let (Some(old), Some(new)) = (op.value.get(0), op.value.get(1)) else {
                    return Ok(Completion::fail("cas value must be [old, new]"));
                };
                let swapped: i64 = redis::cmd("EVAL")
                    .arg(CAS_SCRIPT)
                    .arg(1)
                    .arg(reg_key(op))
                    .arg(old.to_string())
                    .arg(new.to_string())
                    .query_async(&mut c)
                    .await
                    .map_err(classify)?;
                if swapped == 1 {
                    self.wait(&mut c, Completion::ok(op.value.clone())).await
                } else {
                    Ok(Completion::fail("compare failed"))
                }
            }
            (Workload::Set, "add") => {
                let _: i64 = redis::cmd("SADD")
                    .arg(SET_KEY)
                    .arg(op.value.to_string())
                    .query_async(&mut c)
                    .await
                    .map_err(classify)?;
                self.wait(&mut c, Completion::ok(op.value.clone())).await
            }
            (Workload::Set, "read") => {
                let members: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(SET_KEY)
                    .query_async(&mut c)
                    .await
                    .map_err(classify)?;
                let mut elems = Vec::with_capacity(members.len());
                for m in members {
                    match m.parse::<i64>() {
                        Ok(n) => elems.push(n),
                        Err(_) => return Ok(Completion::fail(format!("unexpected member {m}"))),
                    }
                }
                elems.sort_unstable();
                Ok(Completion::ok(json!(elems)))
            }
            (w, f) => Ok(Completion::fail(format!(
                "redis: `{f}` is not an operation of {w}"
            ))),
        }
    }
}

impl Client for RedisClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let r = match tokio::time::timeout(self.timeout, self.run(op)).await {
                Ok(r) => r,
                Err(_) => Err(RedisError::Indefinite("timeout".into())),
            };
            match r {
                Ok(c) => c,
                Err(RedisError::NotDone(e)) => {
                    self.conn = None;
                    // A killed primary refuses at once: do not spin on it.
                    let ms = rand::random_range(50..=100u64);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Completion::fail(e)
                }
                Err(RedisError::Indefinite(e)) => {
                    self.conn = None;
                    if op.is_read_only() {
                        Completion::fail(e)
                    } else {
                        Completion::info(e)
                    }
                }
            }
        })
    }
}

/// One command over raw RESP: the reply's text (a bulk string's contents,
/// a status, an integer), or the error. Short timeouts: a paused server
/// still gets the command (it waits in its socket) but answers later.
pub async fn control(addr: &str, args: &[&str], t: Duration) -> Result<String, String> {
    let mut s = tokio::time::timeout(t, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    let reply = async {
        s.write_all(req.as_bytes()).await?;
        let mut r = BufReader::new(&mut s);
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let body = line.get(1..).unwrap_or("").trim_end().to_string();
        Ok::<_, std::io::Error>(match line.as_bytes().first() {
            Some(b'+' | b':') => Ok(body),
            Some(b'-') => Err(body),
            Some(b'$') => match body.parse::<usize>() {
                Ok(n) => {
                    let mut buf = vec![0; n + 2];
                    r.read_exact(&mut buf).await?;
                    buf.truncate(n);
                    Ok(String::from_utf8_lossy(&buf).into_owned())
                }
                // $-1: nil
                Err(_) => Ok(String::new()),
            },
            _ => Err(format!("unexpected reply `{}`", line.trim_end())),
        })
    };
    match tokio::time::timeout(t, reply).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time (sent)".into()),
    }
}

/// `INFO replication` as key → value.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether a replica's `INFO replication` says it lost its primary.
pub fn link_lost(info: &BTreeMap<String, String>) -> bool {
    info.get("master_link_status").map(String::as_str) != Some("up")
        || info
            .get("master_last_io_seconds_ago")
            .and_then(|s| s.parse::<i64>().ok())
            .is_none_or(|s| s >= STALE_LINK_S)
}

impl Failover for RedisTarget {
    fn failover<'a>(&'a self) -> BoxFuture<'a, Result<Value, TargetError>> {
        Box::pin(async move {
            let cfg = &self.shared.cfg;
            let old = self.primary();
            // Everyone's view (one at a time: at most a second per node).
            let mut infos: Vec<(String, ReplicationInfo)> = Vec::new();
            for (n, _) in &cfg.nodes {
                let addr = cfg.addr(n).unwrap_or_default();
                let r = control(&addr, &["INFO", "replication"], CONTROL_TIMEOUT).await;
                infos.push((n.clone(), r.map(|t| parse_info(&t))));
            }
            let primary_reachable = infos.iter().any(|(n, r)| *n == old && r.is_ok());
            let replicas: Vec<(&String, &BTreeMap<String, String>)> = infos
                .iter()
                .filter(|(n, _)| *n != old)
                .filter_map(|(n, r)| r.as_ref().ok().map(|i| (n, i)))
                .filter(|(_, i)| i.get("role").map(String::as_str) == Some("slave"))
                .collect();
            let lost = !primary_reachable || replicas.iter().all(|(_, i)| link_lost(i));
            if !lost || replicas.is_empty() {
                return Ok(Value::Null);
            }
            let offset = |i: &BTreeMap<String, String>| {
                i.get("slave_repl_offset")
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(-1)
            };
            let Some((new, _)) = replicas
                .iter()
                .max_by_key(|(n, i)| (offset(i), std::cmp::Reverse(*n)))
            else {
                return Ok(Value::Null);
            };
            let new = (*new).clone();
            let offsets: BTreeMap<&String, i64> =
                replicas.iter().map(|(n, i)| (*n, offset(i))).collect();
            let new_addr = cfg.addr(&new).unwrap_or_default();
            control(&new_addr, &["REPLICAOF", "NO", "ONE"], CONTROL_TIMEOUT)
                .await
                .map_err(|e| TargetError::Other(format!("promoting {new}: {e}")))?;
            if let Ok(mut p) = self.shared.primary.write() {
                *p = new.clone();
            }
            let (host, port) = new_addr
                .rsplit_once(':')
                .map(|(h, p)| (h.to_string(), p.to_string()))
                .unwrap_or_default();
            let mut repointed = BTreeMap::new();
            for (n, _) in cfg.nodes.iter().filter(|(n, _)| *n != new) {
                let addr = cfg.addr(n).unwrap_or_default();
                let r = control(&addr, &["REPLICAOF", &host, &port], CONTROL_TIMEOUT).await;
                repointed.insert(n.clone(), r.unwrap_or_else(|e| e));
            }
            Ok(json!({
                "failover": {
                    "old_primary": old,
                    "old_primary_reachable": primary_reachable,
                    "promoted": new,
                    "replica_offsets": offsets,
                    "replicaof": repointed,
                }
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_info_says_when_the_link_is_lost() {
        let up = parse_info(
            "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:0\r\nslave_repl_offset:42\r\n",
        );
        assert_eq!(up["role"], "slave");
        assert!(!link_lost(&up));
        let quiet = parse_info("role:slave\nmaster_link_status:up\nmaster_last_io_seconds_ago:5\n");
        assert!(link_lost(&quiet));
        let down =
            parse_info("role:slave\nmaster_link_status:down\nmaster_last_io_seconds_ago:-1\n");
        assert!(link_lost(&down));
    }

    #[tokio::test]
    async fn control_speaks_resp() {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for reply in ["$11\r\nrole:master\r\n", "-ERR nope\r\n"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap();
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("*2\r\n$4\r\nINFO\r\n"));
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let t = Duration::from_secs(2);
        assert_eq!(
            control(&addr, &["INFO", "replication"], t).await.unwrap(),
            "role:master"
        );
        assert_eq!(
            control(&addr, &["INFO", "x"], t).await.unwrap_err(),
            "ERR nope"
        );
        // Nothing listens on port 1.
        assert!(control("127.0.0.1:1", &["PING"], t).await.is_err());
    }
}
