//! The CRDT store (`faultline-node crdt`, docs/crdt.md) as a target.
//!
//! Deployment is the node target's ([`NodeDb`]: the uploaded binary under
//! `/opt/faultline-node`, its WAL, `node.log`, pidfile, libfaketime), but
//! there is no leader to wait for: the cluster is ready when every replica
//! answers its status.
//!
//! Workloads: `counter` (one PN-Counter: `add`, `read`) and `set` (one
//! OR-Set: `add`, `remove`, `read` over a small universe — the target turns
//! on the workload's `set_removes`), and `register` (LWW registers:
//! reads and blind writes of unique values over [`REGISTER_KEYS`] keys,
//! judged by `lww-register`: causal consistency plus per-key
//! convergence). The first two are judged by
//! `crdt-convergence`: after the heal and the quiet period every replica's
//! final read ([`Target::final_reads_per_node`]) must agree and hold every
//! acknowledged update (the counter within its bounds, the set add-wins).
//!
//! The client talks to **its own node only**: the history's `node` field
//! then names the replica that served each read, which is what the
//! convergence check compares. Classification ([`Client`] contract):
//! `ok` → ok; a refusal by the store → fail; no connection → fail (nothing
//! was sent); sent but no answer → info for updates (a replica may apply it
//! later), fail for reads. Requests are never resent: a CRDT update is not
//! idempotent by request id (a counter add would count twice).
//!
//! ```
//! let t = faultline_targets::crdt::info();
//! assert_eq!(t.name, "crdt");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "gcounter-merge-sum"));
//! ```

use crate::db::{Cancelled, Db, DbContext, TargetInfo};
use crate::line_client::LineClient;
use crate::node::{LOG_FILE, NodeDb, NodeHooks};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Target, TargetError};
use faultline_node::kv::Op as KvOp;
use faultline_node::shell::api::ClientReply;
use faultline_workloads::{Completion, Op, Value, Workload, WorkloadOptions};
use std::sync::Arc;
use std::time::Duration;

pub const PROTOCOL: &str = "crdt";
pub const WORKLOADS: [Workload; 3] = [Workload::Counter, Workload::Set, Workload::Register];
/// The checker the counter and set workloads are judged by.
pub const CHECKER: &str = "crdt-convergence";
/// The checker of the register workload (LWW registers).
pub const REGISTER_CHECKER: &str = faultline_checker::lww::MODEL;
/// Keys of the register workload: few, so writes from different replicas
/// meet.
pub const REGISTER_KEYS: u32 = 3;
/// `--db-option`s, passed to every replica as `--option`.
pub const OPTIONS: [&str; 2] = ["gossip-ticks", "fanout"];

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &OPTIONS)?;
    for (k, v) in &ctx.options {
        if v.parse::<u64>().map_or(true, |n| n == 0) {
            return Err(format!("--db-option {k}={v}: expected a positive integer"));
        }
    }
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d.with_hooks(CrdtHooks)))
}

/// A CRDT store cluster: [`NodeDb`] with these hooks (every replica
/// answers: no leader to wait for).
pub struct CrdtHooks;

impl NodeHooks for CrdtHooks {
    fn name(&self) -> &'static str {
        PROTOCOL
    }
    fn wait_ready<'a>(
        &'a self,
        db: &'a NodeDb,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let members = db.members();
            crate::line_client::wait_all_answer("crdt replicas", &members, deadline, cancelled)
                .await
        })
    }
    fn target(&self, db: &NodeDb) -> Arc<dyn Target> {
        Arc::new(CrdtTarget::new(db.members()))
    }
    fn checker(&self, workload: Workload) -> Option<&'static str> {
        match workload {
            Workload::Register => Some(REGISTER_CHECKER),
            w => WORKLOADS.contains(&w).then_some(CHECKER),
        }
    }
    fn workload_options(&self, opts: &mut WorkloadOptions) {
        opts.set_removes = true;
        if opts.workload == Workload::Register {
            opts.register_blind_writes = true;
            opts.active_keys = REGISTER_KEYS;
        }
    }
}

/// Clients of a CRDT store; each bound to one replica.
pub struct CrdtTarget {
    /// (node, client address), in id order.
    members: Vec<(String, String)>,
}

impl CrdtTarget {
    pub fn new(members: Vec<(String, String)>) -> CrdtTarget {
        CrdtTarget { members }
    }
}

impl Target for CrdtTarget {
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
            let addr = crate::line_client::member_addr(&self.members, node)?;
            Ok(Box::new(CrdtClient {
                conn: LineClient::new(node, addr, opts.timeout.mul_f64(0.9)),
                workload: opts.workload.workload,
            }) as Box<dyn Client>)
        })
    }

    fn log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }

    fn final_reads_per_node(&self) -> bool {
        true
    }
}

impl LogFiles for CrdtTarget {
    fn log_files(&self, _node: &str) -> Vec<String> {
        vec![LOG_FILE.to_string()]
    }
}

struct CrdtClient {
    conn: LineClient,
    workload: Workload,
}

/// A workload op as a store op.
fn to_kv(w: Workload, op: &Op) -> Result<KvOp, String> {
    let int = |v: &Value| v.as_i64().ok_or_else(|| format!("{v} is not an integer"));
    let key = |op: &Op| {
        op.key
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("register key {:?} is not a non-negative integer", op.key))
    };
    Ok(match (w, op.f.as_str()) {
        (Workload::Counter, "add") => KvOp::CounterAdd {
            delta: int(&op.value)?,
        },
        (Workload::Counter, "read") => KvOp::CounterRead,
        (Workload::Set, "add") => KvOp::SetAdd {
            value: int(&op.value)?,
        },
        (Workload::Set, "remove") => KvOp::SetRemove {
            value: int(&op.value)?,
        },
        (Workload::Set, "read") => KvOp::SetRead,
        (Workload::Register, "write") => KvOp::Write {
            key: key(op)?,
            value: int(&op.value)?,
        },
        (Workload::Register, "read") => KvOp::Read { key: key(op)? },
        (w, f) => return Err(format!("`{f}` is not an operation of {w} on a CRDT store")),
    })
}

impl Client for CrdtClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let kop = match to_kv(self.workload, op) {
                Ok(k) => k,
                Err(e) => return Completion::fail(e),
            };
            let read_only = kop.is_read_only();
            match self.conn.call(kop).await {
                Ok(ClientReply::Ok { value, .. }) => {
                    Completion::ok(if read_only { value } else { op.value.clone() })
                }
                Ok(ClientReply::Fail { error, .. }) => Completion::fail(error),
                Ok(other) if read_only => Completion::fail(format!("unexpected reply {other:?}")),
                Ok(other) => Completion::info(format!("unexpected reply {other:?}")),
                Err((false, e)) => Completion::fail(e),
                Err((true, e)) if read_only => Completion::fail(e),
                Err((true, e)) => Completion::info(e),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.conn.close();
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_a_crdt_cluster_and_refuses_what_it_lacks() {
        let mut ctx = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.21.11".into()),
                ("n2".into(), "10.77.21.12".into()),
            ],
            bugs: vec!["gcounter-merge-sum".into()],
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        ctx.options.insert("gossip-ticks".into(), "3".into());
        let db = build(PROTOCOL, &ctx).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node crdt --id 2"), "{cmd}");
        assert!(cmd.contains("--bug gcounter-merge-sum"), "{cmd}");
        assert!(cmd.contains("--option gossip-ticks=3"), "{cmd}");
        assert_eq!(db.checker(Workload::Set), Some(CHECKER));
        assert_eq!(db.checker(Workload::Register), Some("lww-register"));
        assert_eq!(db.checker(Workload::Bank), None);
        let mut w = WorkloadOptions::new(Workload::Set);
        db.workload_options(&mut w);
        assert!(w.set_removes);
        let mut w = WorkloadOptions::new(Workload::Register);
        db.workload_options(&mut w);
        assert!(w.register_blind_writes);
        assert_eq!(w.active_keys, REGISTER_KEYS);
        ctx.options.insert("gossip-ticks".into(), "0".into());
        assert!(build(PROTOCOL, &ctx).err().unwrap().contains("positive"));
        ctx.options.clear();
        ctx.options.insert("lease-read".into(), "true".into());
        assert!(
            build(PROTOCOL, &ctx)
                .err()
                .unwrap()
                .contains("gossip-ticks")
        );
        ctx.options.clear();
        ctx.bugs = vec!["stale-read".into()];
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(e.contains("orset-remove-without-tags"), "{e}");
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    /// A real 2-replica store on loopback (shell threads in this process):
    /// updates on either replica are acknowledged at once, gossip brings
    /// both to the same state, and a dead replica's client fails cleanly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counter_and_set_through_a_loopback_cluster() {
        use faultline_workloads::Outcome;
        let cluster = crate::loopback::start::<faultline_node::crdt::CrdtStore>(
            PROTOCOL,
            "crdt",
            2,
            (50, 2),
            &[],
        );
        let target = CrdtTarget::new(cluster.members.clone());
        let counter = ClientOpts::new(WorkloadOptions::new(Workload::Counter));
        let set = ClientOpts::new(WorkloadOptions::new(Workload::Set));
        let mut c1 = loop {
            let mut c = target.client("n1", &counter).await.unwrap();
            let r = c.invoke(&Op::new("add", None, json!(3))).await;
            if r.outcome == Outcome::Ok {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut c2 = target.client("n2", &counter).await.unwrap();
        assert_eq!(
            c2.invoke(&Op::new("add", None, json!(-1))).await,
            Completion::ok(json!(-1))
        );
        let mut s1 = target.client("n1", &set).await.unwrap();
        let mut s2 = target.client("n2", &set).await.unwrap();
        assert_eq!(
            s1.invoke(&Op::new("add", None, json!(5))).await.outcome,
            Outcome::Ok
        );
        assert_eq!(
            s2.invoke(&Op::new("add", None, json!(6))).await.outcome,
            Outcome::Ok
        );
        assert_eq!(
            s2.invoke(&Op::new("remove", None, json!(6))).await.outcome,
            Outcome::Ok
        );
        let bad = s1.invoke(&Op::new("write", None, json!(1))).await;
        assert_eq!(bad.outcome, Outcome::Fail, "{bad:?}");
        // Gossip every 2 ticks of 5 ms: converged well within 2 s.
        let t0 = std::time::Instant::now();
        loop {
            let a = c1.invoke(&Op::new("read", None, Value::Null)).await;
            let b = c2.invoke(&Op::new("read", None, Value::Null)).await;
            let x = s1.invoke(&Op::new("read", None, Value::Null)).await;
            let y = s2.invoke(&Op::new("read", None, Value::Null)).await;
            if a == Completion::ok(json!(2)) && b == a && x == Completion::ok(json!([5])) && y == x
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{a:?} {b:?} {x:?} {y:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dead = CrdtTarget::new(vec![(
            "n1".into(),
            format!("127.0.0.1:{}", crate::loopback::free_port()),
        )]);
        let mut d = dead.client("n1", &counter).await.unwrap();
        let w = d.invoke(&Op::new("add", None, json!(1))).await;
        assert_eq!(w.outcome, Outcome::Fail, "{w:?}");
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
