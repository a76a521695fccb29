//! etcd 3.4 through its v3 JSON gateway (`POST /v3/kv/range|put|txn`).
//!
//! Only the client lives here; installing and starting etcd on nodes is the
//! lab's job. The target is parameterised by one endpoint URL per node:
//!
//! ```
//! use faultline_targets::etcd::{EtcdConfig, EtcdTarget, ReadMode};
//! let cfg = EtcdConfig::new([("n1", "http://10.77.0.11:2379")])
//!     .with_read_mode(ReadMode::Serializable);
//! let target = EtcdTarget::new(cfg);
//! ```
//!
//! Encodings: keys are `<prefix><workload>/<key>`; values are JSON text
//! (lists for list-append), both base64 on the wire. Gateway gotchas
//! (LAB-NOTES §5): int64 fields arrive as JSON strings; proto3 omits
//! defaults, so a failed txn has no `succeeded` and a missing key no `kvs`.
//!
//! Error classification (the [`Client`] contract): a request that certainly
//! was not sent (connection refused) is `fail`; a timeout, reset or gateway
//! error after sending is `info` for writes and `fail` for reads. After a
//! refused connection (a killed member) the client waits 50–100 ms
//! (jittered) before answering, so a worker does not spin on a dead member.
//!
//! Workloads beyond single keys:
//!
//! - **bank**: one key per account; a transfer reads both accounts and
//!   commits both new balances in a txn guarded by their `mod_revision`s
//!   (an overdraft or a changed account: `fail`, nothing written); a read is
//!   one range over all accounts, served at one revision (a snapshot).
//! - **counter**: one key; `add` is a compare-and-set loop on its
//!   `mod_revision` (a few retries, then `fail`).
//! - **unique-ids**: a `put`; the id is the revision etcd assigned to it,
//!   which is cluster-unique.
//! - **queue**: one key per element, ordered by the element; `dequeue`
//!   takes the first key and deletes it in a txn guarded by its
//!   `mod_revision`; the final `drain` does the same for every key left.
//! - **lock**: via leases. `acquire` grants a lease (`/v3/lease/grant`, TTL
//!   [`LOCK_TTL_S`]) and creates the lock key with it in a txn that succeeds
//!   only if the key does not exist (`create_revision == 0`); the fencing
//!   token is the key's `create_revision` (the txn's revision), so later
//!   grants get larger tokens. `release` deletes the key if it is still the
//!   one this client created, then revokes the lease. A lock whose lease
//!   expires (its holder stalled longer than the TTL) is released behind
//!   the holder's back: the lock checker reports that, as it should, since
//!   a lease is not a mutex.

mod ops;

use crate::{BoxFuture, Client, ClientOpts, Primaries, Target, TargetError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use faultline_workloads::{Completion, Op, Value, Workload};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How reads are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Through raft (etcd's default): linearizable.
    #[default]
    Linearizable,
    /// `"serializable": true`: served from the member's local state, may be
    /// stale. Useful to show what the checker finds when reads are stale.
    Serializable,
}

impl FromStr for ReadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ReadMode, String> {
        match s {
            "linearizable" => Ok(ReadMode::Linearizable),
            "serializable" => Ok(ReadMode::Serializable),
            _ => Err(format!(
                "unknown etcd read mode `{s}` (expected linearizable or serializable)"
            )),
        }
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadMode::Linearizable => "linearizable",
            ReadMode::Serializable => "serializable",
        })
    }
}

/// Where etcd is and how to use it.
#[derive(Clone, Debug, PartialEq)]
pub struct EtcdConfig {
    /// node name → client URL (`http://10.77.0.11:2379`).
    pub endpoints: BTreeMap<String, String>,
    pub read_mode: ReadMode,
    /// Prefix of every key, so tests do not see each other's data.
    pub prefix: String,
}

impl EtcdConfig {
    pub fn new<N: Into<String>, U: Into<String>>(
        endpoints: impl IntoIterator<Item = (N, U)>,
    ) -> EtcdConfig {
        EtcdConfig {
            endpoints: endpoints
                .into_iter()
                .map(|(n, u)| (n.into(), u.into().trim_end_matches('/').to_string()))
                .collect(),
            read_mode: ReadMode::Linearizable,
            prefix: "faultline/".to_string(),
        }
    }

    pub fn with_read_mode(mut self, mode: ReadMode) -> EtcdConfig {
        self.read_mode = mode;
        self
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> EtcdConfig {
        self.prefix = prefix.into();
        self
    }
}

/// The etcd target (client side only).
pub struct EtcdTarget {
    cfg: EtcdConfig,
}

impl EtcdTarget {
    pub fn new(cfg: EtcdConfig) -> EtcdTarget {
        EtcdTarget { cfg }
    }
}

impl Primaries for EtcdTarget {
    /// A node is a primary when its `/v3/maintenance/status` names itself
    /// as leader. Unreachable nodes are left out (they may be partitioned).
    fn primaries<'a>(
        &'a self,
        nodes: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| TargetError::Other(e.to_string()))?;
            let mut out = Vec::new();
            for node in nodes {
                let base = self
                    .cfg
                    .endpoints
                    .get(node)
                    .ok_or_else(|| TargetError::UnknownNode(node.clone()))?;
                let Ok(resp) = http
                    .post(format!("{base}/v3/maintenance/status"))
                    .json(&json!({}))
                    .send()
                    .await
                else {
                    continue;
                };
                let Ok(v) = resp.json::<Value>().await else {
                    continue;
                };
                let me = v.pointer("/header/member_id").and_then(Value::as_str);
                let leader = v.get("leader").and_then(Value::as_str);
                if me.is_some() && me == leader {
                    out.push(node.clone());
                }
            }
            Ok(out)
        })
    }
}

/// The workloads the etcd client implements.
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

/// Lease TTL of the lock workload, in seconds: longer than any operation
/// timeout, so only a holder that stalls (or was abandoned after an
/// unknown outcome) loses the lock.
pub const LOCK_TTL_S: u64 = 10;

/// Compare-and-set attempts of one counter `add` before it fails.
const COUNTER_RETRIES: usize = 10;

impl Target for EtcdTarget {
    fn name(&self) -> &str {
        "etcd"
    }

    fn workloads(&self) -> &[Workload] {
        &WORKLOADS
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }

    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            self.check_supports(opts.workload.workload)?;
            let base = self
                .cfg
                .endpoints
                .get(node)
                .ok_or_else(|| TargetError::UnknownNode(node.to_string()))?;
            // Give up a little before the runner does, so this client (which
            // knows reads from writes) classifies the timeout.
            let timeout = opts.timeout.mul_f64(0.9).max(Duration::from_millis(10));
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(1)))
                .pool_max_idle_per_host(1)
                .build()
                .map_err(|e| TargetError::Open {
                    node: node.to_string(),
                    message: e.to_string(),
                })?;
            // Connecting is lazy: opening changes nothing and contacts no one.
            Ok(Box::new(EtcdClient {
                http,
                base: base.clone(),
                serializable: self.cfg.read_mode == ReadMode::Serializable,
                prefix: self.cfg.prefix.clone(),
                workload: opts.workload.workload,
                balances: opts.workload.initial_balances(),
                held: None,
            }) as Box<dyn Client>)
        })
    }
}

/// Why a request did not produce a response.
#[derive(Debug)]
enum EtcdError {
    /// Certainly never reached etcd (connection refused, no route).
    NotSent(String),
    /// Sent; the outcome is unknown (timeout, reset, gateway/raft error).
    Indefinite(String),
}

struct EtcdClient {
    http: reqwest::Client,
    base: String,
    serializable: bool,
    prefix: String,
    workload: Workload,
    /// Bank: the initial balances `setup` writes.
    balances: Vec<i64>,
    /// Lock: (lease id, create_revision of the lock key) while this client
    /// holds the lock.
    held: Option<(String, i64)>,
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// int64 fields come back as strings; accept numbers too.
fn int(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
}

/// Decodes a base64 JSON-text value, e.g. `"Mw=="` → `3`.
fn decode_value(v: &Value) -> Result<Value, String> {
    let b = v.as_str().unwrap_or("");
    let bytes = B64
        .decode(b)
        .map_err(|e| format!("bad base64 value: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("value is not JSON: {e}"))
}

/// The revision a write response was committed at (`header.revision`).
fn revision(resp: &Value) -> Option<i64> {
    resp.pointer("/header/revision").and_then(int)
}

fn succeeded(resp: &Value) -> bool {
    resp.get("succeeded").and_then(Value::as_bool) == Some(true)
}

/// The first kv of a range response: (value, mod_revision), or None when
/// the key is missing (no `kvs` at all).
fn first_kv(range: &Value) -> Result<Option<(Value, i64)>, String> {
    match range.get("kvs").and_then(|k| k.get(0)) {
        None => Ok(None),
        Some(kv) => {
            let value = decode_value(kv.get("value").unwrap_or(&Value::Null))?;
            let rev = kv.get("mod_revision").and_then(int).unwrap_or(0);
            Ok(Some((value, rev)))
        }
    }
}

impl EtcdClient {
    fn key(&self, space: &str, k: &Value) -> String {
        // Strings keep their text; numbers and others their JSON.
        match k.as_str() {
            Some(s) => format!("{}{space}/{s}", self.prefix),
            None => format!("{}{space}/{k}", self.prefix),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(classify)?;
        if !status.is_success() || v.get("error").is_some() {
            // The gateway maps gRPC errors to HTTP statuses with a body
            // {"error","code","message"}; most (timeouts, leader changes)
            // leave a write's outcome unknown.
            let msg = v
                .get("message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            return Err(EtcdError::Indefinite(format!("HTTP {status}: {msg}")));
        }
        Ok(v)
    }

    fn range_req(&self, key: &str) -> Value {
        let mut r = json!({"key": b64(key)});
        if self.serializable {
            r["serializable"] = json!(true);
        }
        r
    }

    async fn read_register(&self, op: &Op) -> Result<Completion, EtcdError> {
        let key = self.key("reg", op.key.as_ref().unwrap_or(&Value::Null));
        let v = self.post("/v3/kv/range", &self.range_req(&key)).await?;
        Ok(match first_kv(&v) {
            Ok(Some((val, _))) => Completion::ok(val),
            Ok(None) => Completion::ok(Value::Null),
            Err(e) => Completion::fail(e),
        })
    }

    async fn write_register(&self, op: &Op) -> Result<Completion, EtcdError> {
        let key = self.key("reg", op.key.as_ref().unwrap_or(&Value::Null));
        let body = json!({"key": b64(&key), "value": b64(&op.value.to_string())});
        self.post("/v3/kv/put", &body).await?;
        Ok(Completion::ok(op.value.clone()))
    }

    async fn cas_register(&self, op: &Op) -> Result<Completion, EtcdError> {
        let (Some(old), Some(new)) = (op.value.get(0), op.value.get(1)) else {
            return Ok(Completion::fail("cas value must be [old, new]"));
        };
        let key = b64(&self.key("reg", op.key.as_ref().unwrap_or(&Value::Null)));
        let body = json!({
            "compare": [{"target": "VALUE", "result": "EQUAL", "key": key, "value": b64(&old.to_string())}],
            "success": [{"requestPut": {"key": key, "value": b64(&new.to_string())}}],
        });
        let v = self.post("/v3/kv/txn", &body).await?;
        // A failed compare has no `succeeded` field at all.
        Ok(
            if v.get("succeeded").and_then(Value::as_bool) == Some(true) {
                Completion::ok(op.value.clone())
            } else {
                Completion::fail("cas mismatch")
            },
        )
    }

    /// list-append / rw-register: read every key in one txn (a snapshot),
    /// compute the result locally, then commit the writes in a txn guarded
    /// by each key's mod_revision, so the whole txn takes effect at one
    /// revision or not at all.
    async fn txn(&self, op: &Op) -> Result<Completion, EtcdError> {
        let append = self.workload == Workload::ListAppend;
        let space = if append { "la" } else { "rw" };
        let Some(mops) = op.value.as_array() else {
            return Ok(Completion::fail("txn value must be a list of micro-ops"));
        };
        let mut parsed = Vec::with_capacity(mops.len());
        for m in mops {
            match (m.get(0).and_then(Value::as_str), m.get(1), m.get(2)) {
                (Some(f @ ("r" | "append" | "w")), Some(k), Some(v)) => {
                    parsed.push((f, k, v, self.key(space, k)))
                }
                _ => return Ok(Completion::fail(format!("bad micro-op {m}"))),
            }
        }
        let mut keys: Vec<&str> = parsed.iter().map(|p| p.3.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();

        let reads: Vec<Value> = keys
            .iter()
            .map(|k| json!({"requestRange": self.range_req(k)}))
            .collect();
        let snap = self.post("/v3/kv/txn", &json!({"success": reads})).await?;
        let empty = Vec::new();
        let responses = snap
            .get("responses")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if responses.len() != keys.len() {
            return Ok(Completion::fail(
                "read txn returned the wrong number of responses",
            ));
        }
        // key → (current value, mod_revision at the snapshot; 0 = missing)
        let mut state: BTreeMap<&str, (Value, i64)> = BTreeMap::new();
        for (k, r) in keys.iter().zip(responses) {
            let range = r.get("response_range").unwrap_or(&Value::Null);
            match first_kv(range) {
                Ok(Some(kv)) => state.insert(k, kv),
                Ok(None) => state.insert(k, (Value::Null, 0)),
                Err(e) => return Ok(Completion::fail(e)),
            };
        }

        let mut out = Vec::with_capacity(parsed.len());
        let mut written: Vec<&str> = Vec::new();
        for (f, k, v, key) in &parsed {
            let cur = &mut state.get_mut(key.as_str()).expect("every key was read").0;
            match *f {
                "r" => {
                    out.push(json!(["r", k, cur.clone()]));
                    continue;
                }
                "append" => match cur {
                    Value::Array(l) => l.push((*v).clone()),
                    Value::Null => *cur = json!([v]),
                    other => {
                        return Ok(Completion::fail(format!(
                            "key {k} holds {other}, not a list"
                        )));
                    }
                },
                _ => *cur = (*v).clone(),
            }
            written.push(key);
            out.push(json!([f, k, v]));
        }
        if written.is_empty() {
            // Read-only: the snapshot is the answer.
            return Ok(Completion::ok(Value::Array(out)));
        }
        written.sort_unstable();
        written.dedup();
        let compare: Vec<Value> = state
            .iter()
            .map(|(k, (_, rev))| {
                json!({"target": "MOD", "result": "EQUAL", "key": b64(k), "mod_revision": rev.to_string()})
            })
            .collect();
        let puts: Vec<Value> = written
            .iter()
            .map(|k| json!({"requestPut": {"key": b64(k), "value": b64(&state[k].0.to_string())}}))
            .collect();
        let v = self
            .post("/v3/kv/txn", &json!({"compare": compare, "success": puts}))
            .await?;
        Ok(
            if v.get("succeeded").and_then(Value::as_bool) == Some(true) {
                Completion::ok(Value::Array(out))
            } else {
                // The guard failed: nothing was written.
                Completion::fail("conflict: a key changed since it was read")
            },
        )
    }

    async fn set_add(&self, op: &Op) -> Result<Completion, EtcdError> {
        // One key per element: adds never contend with each other.
        let key = self.key("set", &op.value);
        self.post("/v3/kv/put", &json!({"key": b64(&key), "value": b64("1")}))
            .await?;
        Ok(Completion::ok(op.value.clone()))
    }

    async fn set_read(&self) -> Result<Completion, EtcdError> {
        let prefix = format!("{}set/", self.prefix);
        // range_end = prefix with its last byte + 1 ('/' + 1 = '0').
        let end = format!("{}set0", self.prefix);
        let mut req = self.range_req(&prefix);
        req["range_end"] = json!(b64(&end));
        req["keys_only"] = json!(true);
        let v = self.post("/v3/kv/range", &req).await?;
        let mut elems = Vec::new();
        for kv in v.get("kvs").and_then(Value::as_array).into_iter().flatten() {
            let raw = kv.get("key").and_then(Value::as_str).unwrap_or("");
            let Ok(bytes) = B64.decode(raw) else {
                return Ok(Completion::fail("bad base64 key"));
            };
            let key = String::from_utf8_lossy(&bytes);
            match key
                .strip_prefix(&prefix)
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(n) => elems.push(n),
                None => return Ok(Completion::fail(format!("unexpected key {key}"))),
            }
        }
        elems.sort_unstable();
        Ok(Completion::ok(json!(elems)))
    }
}

/// reqwest errors: connect failures happen before the request is sent.
fn classify(e: reqwest::Error) -> EtcdError {
    if e.is_connect() {
        EtcdError::NotSent(format!("{e:#}"))
    } else if e.is_timeout() {
        EtcdError::Indefinite("timeout".to_string())
    } else {
        EtcdError::Indefinite(format!("{e:#}"))
    }
}

impl Client for EtcdClient {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.workload {
                Workload::Bank => self.bank_setup().await,
                _ => Ok(()),
            }
        })
    }

    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let res = match (self.workload, op.f.as_str()) {
                (Workload::Register, "read") => self.read_register(op).await,
                (Workload::Register, "write") => self.write_register(op).await,
                (Workload::Register, "cas") => self.cas_register(op).await,
                (Workload::ListAppend | Workload::RwRegister, "txn") => self.txn(op).await,
                (Workload::Set, "add") => self.set_add(op).await,
                (Workload::Set, "read") => self.set_read().await,
                (Workload::Bank, "transfer") => self.bank_transfer(op).await,
                (Workload::Bank, "read") => self.bank_read().await,
                (Workload::Counter, "add") => self.counter_add(op).await,
                (Workload::Counter, "read") => self.counter_read().await,
                (Workload::UniqueIds, "generate") => self.generate_id().await,
                (Workload::Queue, "enqueue") => self.enqueue(op).await,
                (Workload::Queue, "dequeue") => self.dequeue().await,
                (Workload::Queue, "drain") => self.drain().await,
                (Workload::Lock, "acquire") => self.acquire().await,
                (Workload::Lock, "release") => self.release().await,
                (w, f) => {
                    return Completion::fail(format!("etcd: `{f}` is not an operation of {w}"));
                }
            };
            match res {
                Ok(c) => c,
                Err(EtcdError::NotSent(e)) => {
                    // A refused connection (a killed member) answers at once;
                    // without a pause the worker would spin on it.
                    let ms = rand::random_range(50..=100u64);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Completion::fail(e)
                }
                // A read changes nothing, so an unknown outcome is a failure.
                Err(EtcdError::Indefinite(e)) if op.is_read_only() => Completion::fail(e),
                Err(EtcdError::Indefinite(e)) => Completion::info(e),
            }
        })
    }
}

#[cfg(test)]
mod tests;
