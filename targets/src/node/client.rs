//! The client of every faultline-node protocol: one line-protocol
//! connection, request ids, `not_leader` hints and the classification
//! described in the parent module.

use super::*;

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
pub(super) fn to_kv(w: Workload, op: &Op, client: u64) -> Result<KvOp, String> {
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
pub(super) fn completion_value(w: Workload, op: &Op, out: Value) -> Value {
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
