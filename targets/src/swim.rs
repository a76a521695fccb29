//! SWIM membership (`faultline-node swim`, docs/swim.md) as a target.
//!
//! Deployment is the node target's ([`NodeDb`]); the cluster is ready when
//! every member answers its status. The one workload is `membership`:
//! each client polls **its own node's** view (`members` → the client API's
//! `{"admin":{"members":true}}`), so the history's `node` names the
//! observer; the final poll runs on every node after the heal
//! ([`Target::final_reads_per_node`]). The `detector` checker judges the
//! views against the nemesis' failures (checker/src/detector.rs).
//!
//! The view's member ids become node names (`1` → `n1`: ids are 1.. in
//! name order, as [`NodeDb`] numbers them). A poll that cannot connect or
//! gets no answer is `fail`: it is a read.
//!
//! ```
//! let t = faultline_targets::swim::info();
//! assert_eq!(t.name, "swim");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "no-incarnation"));
//! ```

use crate::db::{Cancelled, Db, DbContext, TargetInfo};
use crate::line_client::LineClient;
use crate::node::{LOG_FILE, NodeDb, NodeHooks};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Target, TargetError};
use faultline_node::shell::api::{ClientReply, ClientRequest};
use faultline_workloads::{Completion, Op, Value, Workload};
use std::sync::Arc;
use std::time::Duration;

pub const PROTOCOL: &str = "swim";
pub const WORKLOADS: [Workload; 1] = [Workload::Membership];
/// The checker of the membership workload.
pub const CHECKER: &str = "detector";

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &faultline_node::swim::OPTIONS)?;
    let mut c = faultline_node::core::Config::new(1, vec![1]);
    for (k, v) in &ctx.options {
        c.options.insert(k.clone(), v.clone());
    }
    faultline_node::swim::Params::from_config(&c)
        .map_err(|e| e.replace("--option", "--db-option"))?;
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d.with_hooks(SwimHooks)))
}

/// A SWIM cluster: [`NodeDb`] with these hooks (every member answers: no
/// leader to wait for).
pub struct SwimHooks;

impl NodeHooks for SwimHooks {
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
            crate::line_client::wait_all_answer("swim members", &members, deadline, cancelled).await
        })
    }
    fn target(&self, db: &NodeDb) -> Arc<dyn Target> {
        Arc::new(SwimTarget::new(db.members()))
    }
    fn checker(&self, workload: Workload) -> Option<&'static str> {
        WORKLOADS.contains(&workload).then_some(CHECKER)
    }
}

/// Clients of a SWIM cluster; each bound to one member.
pub struct SwimTarget {
    /// (node, client address), in id order.
    members: Vec<(String, String)>,
}

impl SwimTarget {
    pub fn new(members: Vec<(String, String)>) -> SwimTarget {
        SwimTarget { members }
    }
}

impl Target for SwimTarget {
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
            Ok(Box::new(SwimClient {
                node: node.to_string(),
                names: self.members.iter().map(|(n, _)| n.clone()).collect(),
                conn: LineClient::new(node, addr, opts.timeout.mul_f64(0.9)),
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

impl LogFiles for SwimTarget {
    fn log_files(&self, _node: &str) -> Vec<String> {
        vec![LOG_FILE.to_string()]
    }
}

struct SwimClient {
    node: String,
    /// Node names by id - 1.
    names: Vec<String>,
    conn: LineClient,
}

/// The member's answer as the workload's view: node name → state and
/// incarnation.
pub fn view_of(answer: &Value, names: &[String]) -> Result<Value, String> {
    let members = answer
        .get("members")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no members in {answer}"))?;
    let mut out = serde_json::Map::new();
    for (id, v) in members {
        let name = id
            .parse::<usize>()
            .ok()
            .and_then(|i| names.get(i.wrapping_sub(1)))
            .cloned()
            .unwrap_or_else(|| format!("id{id}"));
        out.insert(name, v.clone());
    }
    Ok(Value::Object(out))
}

impl SwimClient {
    async fn members(&mut self) -> Result<Value, String> {
        let req = ClientRequest::Admin(serde_json::json!({"members": true}));
        let answer = match self.conn.request(&req).await {
            Ok(ClientReply::Admin(v)) => view_of(&v, &self.names),
            Ok(other) => Err(format!("{}: unexpected reply {other:?}", self.node)),
            Err((_, e)) => Err(e),
        };
        if answer.is_err() {
            // An answer may still be on its way: never pair it with the next poll.
            self.conn.close();
        }
        answer
    }
}

impl Client for SwimClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            if op.f != "members" {
                return Completion::fail(format!(
                    "`{}` is not an operation of the membership workload",
                    op.f
                ));
            }
            // A read: whatever went wrong, it changed nothing.
            match self.members().await {
                Ok(v) => Completion::ok(v),
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
    use serde_json::json;

    #[test]
    fn builds_a_swim_cluster_and_refuses_bad_options() {
        let mut ctx = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.34.11".into()),
                ("n2".into(), "10.77.34.12".into()),
            ],
            bugs: vec!["no-incarnation".into()],
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        ctx.options.insert("detector".into(), "phi".into());
        let db = build(PROTOCOL, &ctx).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node swim --id 2"), "{cmd}");
        assert!(cmd.contains("--bug no-incarnation"), "{cmd}");
        assert!(cmd.contains("--option detector=phi"), "{cmd}");
        assert_eq!(db.checker(Workload::Membership), Some(CHECKER));
        assert_eq!(db.checker(Workload::Register), None);
        ctx.options.insert("detector".into(), "gossip".into());
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(e.contains("--db-option detector=gossip"), "{e}");
        ctx.options.clear();
        ctx.options.insert("fanout".into(), "2".into());
        assert!(
            build(PROTOCOL, &ctx)
                .err()
                .unwrap()
                .contains("period-ticks")
        );
        ctx.options.clear();
        ctx.bugs = vec!["stale-read".into()];
        assert!(
            build(PROTOCOL, &ctx)
                .err()
                .unwrap()
                .contains("no-suspicion")
        );
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    #[test]
    fn ids_become_node_names() {
        let names = vec!["n1".to_string(), "n2".to_string()];
        let v = view_of(
            &json!({"members": {"1": {"state": "alive"}, "2": {"state": "dead"}, "9": {}}}),
            &names,
        )
        .unwrap();
        assert_eq!(v["n2"]["state"], "dead");
        assert!(v.get("id9").is_some());
        assert!(view_of(&json!({}), &names).is_err());
    }

    /// A real 3-member cluster on loopback (shell threads in this
    /// process): every member sees every other alive; a dead address's
    /// poll fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn views_through_a_loopback_cluster() {
        let cluster =
            crate::loopback::start::<faultline_node::swim::Swim>(PROTOCOL, "swim", 3, (50, 2), &[]);
        let target = SwimTarget::new(cluster.members.clone());
        let opts = ClientOpts::new(WorkloadOptions::new(Workload::Membership));
        let poll = Op::new("members", None, Value::Null);
        let t0 = std::time::Instant::now();
        let mut c = target.client("n2", &opts).await.unwrap();
        loop {
            let r = c.invoke(&poll).await;
            if r.outcome == Outcome::Ok
                && ["n1", "n2", "n3"]
                    .iter()
                    .all(|n| r.value[*n]["state"] == "alive")
            {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "{r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let bad = c.invoke(&Op::new("read", None, Value::Null)).await;
        assert_eq!(bad.outcome, Outcome::Fail);
        let dead = SwimTarget::new(vec![(
            "n1".into(),
            format!("127.0.0.1:{}", crate::loopback::free_port()),
        )]);
        let mut d = dead.client("n1", &opts).await.unwrap();
        assert_eq!(d.invoke(&poll).await.outcome, Outcome::Fail);
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
