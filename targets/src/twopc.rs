//! Two-phase commit (`faultline-node twopc`) as a target: the same server
//! binary, deployment ([`NodeDb`]) and client ([`crate::node::NodeTarget`])
//! as the replication protocols, but only the bank workload — node 1
//! coordinates and every node holds a shard of the accounts, so a transfer
//! is a distributed transaction across one or two shards and a read is a
//! read-only transaction taking shared locks on every shard (see
//! `faultline_node::twopc` and docs/twopc.md).
//!
//! ```
//! let t = faultline_targets::twopc::info();
//! assert_eq!(t.name, "twopc");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "decide-before-log"));
//! ```

use crate::db::{Db, DbContext, TargetInfo};
use crate::node::NodeDb;
use faultline_workloads::Workload;

pub const PROTOCOL: &str = "twopc";

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(
        PROTOCOL,
        faultline_node::twopc::ABOUT,
        vec![Workload::Bank],
        build,
    )
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &[])?;
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_twopc_cluster_and_refuses_what_it_lacks() {
        let mut ctx = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.19.11".into()),
                ("n2".into(), "10.77.19.12".into()),
            ],
            bugs: vec!["vote-before-log".into()],
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        let db = build(PROTOCOL, &ctx).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node twopc --id 2"), "{cmd}");
        assert!(cmd.contains("--bug vote-before-log"), "{cmd}");
        ctx.bugs = vec!["stale-read".into()];
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(
            e.contains("stale-read") && e.contains("vote-before-log"),
            "{e}"
        );
        ctx.bugs.clear();
        ctx.options.insert("lease-read".into(), "true".into());
        assert!(build(PROTOCOL, &ctx).is_err());
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    /// A real twopc cluster on loopback (shell threads in this process) and
    /// the node client running the bank workload through it: setup, a
    /// transfer across two shards, an overdraft refused, a snapshot read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bank_through_a_loopback_cluster() {
        use crate::node::{NodeConfig, NodeTarget};
        use crate::{ClientOpts, Target};
        use faultline_workloads::{Completion, Op, Outcome, WorkloadOptions};
        use serde_json::json;
        let cluster = crate::loopback::start::<faultline_node::twopc::TwoPc>(
            PROTOCOL,
            "twopc",
            3,
            (50, 5),
            &[],
        );
        let target = NodeTarget::new(NodeConfig {
            protocol: PROTOCOL.into(),
            members: cluster.members.clone(),
        });
        let mut w = WorkloadOptions::new(Workload::Bank);
        w.accounts = 4;
        w.total_balance = 40;
        let opts = ClientOpts::new(w);
        // A participant's client follows the hint to the coordinator.
        let mut c = target.client("n3", &opts).await.unwrap();
        c.setup().await.unwrap();
        let t = json!({"from": 1, "to": 2, "amount": 3});
        assert_eq!(
            c.invoke(&Op::new("transfer", None, t.clone())).await,
            Completion::ok(t)
        );
        let over = json!({"from": 0, "to": 1, "amount": 11});
        let o = c.invoke(&Op::new("transfer", None, over)).await;
        assert_eq!(o.outcome, Outcome::Fail, "{o:?}");
        let r = c
            .invoke(&Op::new("read", None, serde_json::Value::Null))
            .await;
        assert_eq!(
            r,
            Completion::ok(json!({"0": 10, "1": 7, "2": 13, "3": 10}))
        );
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
