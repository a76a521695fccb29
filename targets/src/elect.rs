//! The leader election service (`faultline-node elect`, docs/election.md)
//! as a target: bully, ring or Raft's election, chosen with
//! `--db-option algo=bully|ring|raft` (default bully).
//!
//! Deployment is the node target's ([`NodeDb`]); the cluster is ready
//! once every member names the same leader, and the leader-aimed faults
//! (`kill-leader`, `isolate-leader`, …) find it through the status API.
//!
//! The `election` workload's client talks to **its own node only** and
//! asks `leader?`; the ok value is the node's view
//! `{"node", "epoch", "leader", "am_leader"}` with the leader as a node
//! name. A view changes nothing, so every failure to get one is `fail`.
//!
//! ```
//! let t = faultline_targets::elect::info();
//! assert_eq!(t.name, "elect");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "no-quorum"));
//! ```

use crate::db::{Db, DbContext, TargetInfo};
use crate::line_client::LineClient;
use crate::node::{NodeConfig, NodeDb, NodeHooks, NodeTarget};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Primaries, Target, TargetError};
use faultline_node::elect::{Algo, validate_bugs};
use faultline_node::kv::Op as KvOp;
use faultline_node::shell::api::ClientReply;
use faultline_workloads::{Completion, Op, Value, Workload};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const PROTOCOL: &str = "elect";
pub const WORKLOADS: [Workload; 1] = [Workload::Election];
/// How long one `leader?` may take: a view is cheap, and a node that does
/// not answer quickly is paused or cut off.
const VIEW_TIMEOUT: Duration = Duration::from_millis(500);

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &["algo"])?;
    let algo = ctx.options.get("algo").map_or("bully", String::as_str);
    let algo = Algo::parse(algo).map_err(|e| format!("--db-option {e}"))?;
    validate_bugs(algo, &ctx.bugs).map_err(|e| format!("--bug: {e}"))?;
    let mut d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    // Recorded in test.json (and on every start command) even by default.
    d.options.insert("algo".into(), algo.name().into());
    Ok(Box::new(d.with_hooks(ElectHooks)))
}

/// An election service cluster: [`NodeDb`] with its own client (ready, as
/// the replicated logs are, when all members name one leader).
pub struct ElectHooks;

impl NodeHooks for ElectHooks {
    fn name(&self) -> &'static str {
        PROTOCOL
    }
    fn target(&self, db: &NodeDb) -> Arc<dyn Target> {
        Arc::new(ElectTarget::new(db.client_config()))
    }
}

/// Clients of an election service, each bound to one node.
pub struct ElectTarget {
    cfg: NodeConfig,
    nodes: NodeTarget,
}

impl ElectTarget {
    pub fn new(cfg: NodeConfig) -> ElectTarget {
        ElectTarget {
            nodes: NodeTarget::new(cfg.clone()),
            cfg,
        }
    }
}

impl Target for ElectTarget {
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
            let addr = crate::line_client::member_addr(&self.cfg.members, node)?;
            let budget = opts.timeout.mul_f64(0.9).min(VIEW_TIMEOUT);
            Ok(Box::new(ElectClient {
                node: node.to_string(),
                // Member ids are 1.. in this order.
                names: self.cfg.members.iter().map(|(n, _)| n.clone()).collect(),
                conn: LineClient::new(node, addr, budget),
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

struct ElectClient {
    node: String,
    names: Vec<String>,
    conn: LineClient,
}

impl ElectClient {
    /// The node's view, or why there is none.
    async fn ask(&mut self) -> Result<Value, String> {
        match self.conn.call(KvOp::Leader).await {
            Ok(ClientReply::Ok { value, .. }) => Ok(value),
            Ok(other) => Err(format!("{}: unexpected reply {other:?}", self.node)),
            Err((_, e)) => Err(e),
        }
    }

    /// The node's view with the leader's id as a node name.
    fn named(&self, v: &Value) -> Result<Value, String> {
        let epoch = v["epoch"]
            .as_u64()
            .ok_or_else(|| format!("{}: view without an epoch: {v}", self.node))?;
        let leader = match v["leader"].as_u64() {
            None => Value::Null,
            Some(id) => {
                let i = usize::try_from(id).ok().and_then(|i| i.checked_sub(1));
                match i.and_then(|i| self.names.get(i)) {
                    Some(n) => json!(n),
                    None => return Err(format!("{}: unknown leader id {id}", self.node)),
                }
            }
        };
        Ok(json!({"node": self.node, "epoch": epoch, "leader": leader,
                  "am_leader": v["am_leader"].as_bool().unwrap_or(false)}))
    }
}

impl Client for ElectClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            if !matches!(op.f.as_str(), "leader?" | "leader") {
                return Completion::fail(format!(
                    "`{}` is not an operation of the election service",
                    op.f
                ));
            }
            match self.ask().await.and_then(|v| self.named(&v)) {
                Ok(v) => Completion::ok(v),
                // A view changes nothing: no answer is a certain no-op.
                Err(e) => Completion::fail(e),
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
    use faultline_workloads::{Outcome, WorkloadOptions};

    fn ctx(algo: Option<&str>, bugs: &[&str]) -> DbContext {
        let mut c = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.30.11".into()),
                ("n2".into(), "10.77.30.12".into()),
            ],
            bugs: bugs.iter().map(|b| b.to_string()).collect(),
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        if let Some(a) = algo {
            c.options.insert("algo".into(), a.into());
        }
        c
    }

    #[test]
    fn builds_each_algorithm_and_refuses_mismatched_bugs() {
        let db = build(PROTOCOL, &ctx(None, &["no-quorum"])).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node elect --id 2"), "{cmd}");
        assert!(cmd.contains("--option algo=bully"), "{cmd}");
        assert!(cmd.contains("--bug no-quorum"), "{cmd}");
        let db = build(PROTOCOL, &ctx(Some("raft"), &["vote-twice"])).unwrap();
        assert!(db.start_command("n1").unwrap().contains("algo=raft"));
        let e = build(PROTOCOL, &ctx(Some("ring"), &["vote-twice"]))
            .err()
            .unwrap();
        assert!(e.contains("algo=raft only"), "{e}");
        let e = build(PROTOCOL, &ctx(Some("paxos"), &[])).err().unwrap();
        assert!(e.contains("bully, ring, raft"), "{e}");
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    /// A real 3-node bully cluster on loopback: every client sees the same
    /// leader (n3, the highest id) in the same epoch; a dead node's
    /// client fails cleanly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_node_names_the_bully_leader() {
        let cluster = crate::loopback::start::<faultline_node::elect::Elect>(
            PROTOCOL,
            "elect",
            3,
            (20, 2),
            &[],
        );
        let target = ElectTarget::new(NodeConfig {
            protocol: PROTOCOL.into(),
            members: cluster.members.clone(),
        });
        let opts = ClientOpts::new(WorkloadOptions::new(Workload::Election));
        let poll = Op::new("leader?", None, Value::Null);
        let t0 = std::time::Instant::now();
        loop {
            let mut views = Vec::new();
            for (n, _) in &cluster.members {
                let mut c = target.client(n, &opts).await.unwrap();
                views.push(c.invoke(&poll).await);
            }
            let agreed = views.iter().all(|v| {
                v.outcome == Outcome::Ok
                    && v.value["leader"] == json!("n3")
                    && v.value["epoch"] == views[0].value["epoch"]
            });
            if agreed {
                assert_eq!(views[2].value["am_leader"], json!(true), "{views:?}");
                assert_eq!(views[0].value["node"], json!("n1"), "{views:?}");
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "{views:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut c = target.client("n1", &opts).await.unwrap();
        let bad = c.invoke(&Op::new("write", None, json!(1))).await;
        assert_eq!(bad.outcome, Outcome::Fail);
        let dead = ElectTarget::new(NodeConfig {
            protocol: PROTOCOL.into(),
            members: vec![(
                "n1".into(),
                format!("127.0.0.1:{}", crate::loopback::free_port()),
            )],
        });
        let mut d = dead.client("n1", &opts).await.unwrap();
        assert_eq!(d.invoke(&poll).await.outcome, Outcome::Fail);
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
