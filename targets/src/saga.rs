//! Sagas (`faultline-node saga`) as a target: the same server binary,
//! deployment ([`NodeDb`]) and client ([`crate::node::NodeTarget`]) as the
//! replication protocols, but only the saga workload — three services
//! (reserve-credit on node 2, book-stock on node 3, ship on node 1), an
//! order is one saga over them, orchestrated by node 1 or choreographed
//! (`--db-option mode=choreographed`); see `faultline_node::saga` and
//! docs/saga.md.
//!
//! ```
//! let t = faultline_targets::saga::info();
//! assert_eq!(t.name, "saga");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "refund-without-key"));
//! ```

use crate::db::{Db, DbContext, TargetInfo};
use crate::node::NodeDb;

pub const PROTOCOL: &str = "saga";

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &["mode"])?;
    if let Some(m) = ctx.options.get("mode")
        && m != "orchestrated"
        && m != "choreographed"
    {
        return Err(format!(
            "--db-option mode={m}: the saga target's modes are orchestrated and choreographed"
        ));
    }
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_saga_cluster_and_refuses_what_it_lacks() {
        let mut ctx = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.25.11".into()),
                ("n2".into(), "10.77.25.12".into()),
            ],
            bugs: vec!["send-before-log".into()],
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        ctx.options.insert("mode".into(), "choreographed".into());
        let db = build(PROTOCOL, &ctx).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node saga --id 2"), "{cmd}");
        assert!(cmd.contains("--bug send-before-log"), "{cmd}");
        assert!(cmd.contains("--option mode=choreographed"), "{cmd}");
        ctx.options.insert("mode".into(), "telepathic".into());
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(e.contains("telepathic"), "{e}");
        ctx.options.clear();
        ctx.bugs = vec!["stale-read".into()];
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(e.contains("refund-without-key"), "{e}");
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    /// A real saga cluster on loopback (shell threads in this process), in
    /// both modes, and the node client running the saga workload through
    /// it: setup, a committed order, a compensated one (no route), and the
    /// final read that the checker judges valid.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orders_through_a_loopback_cluster() {
        use crate::node::{NodeConfig, NodeTarget};
        use crate::{ClientOpts, Target};
        use faultline_checker::history::{Event, EventType, History, Process};
        use faultline_workloads::{Completion, Op, Outcome, Workload, WorkloadOptions};
        use serde_json::json;
        for mode in ["orchestrated", "choreographed"] {
            let cluster = crate::loopback::start::<faultline_node::saga::Saga>(
                PROTOCOL,
                &format!("saga-{mode}"),
                3,
                (50, 5),
                &[format!("mode={mode}")],
            );
            let target = NodeTarget::new(NodeConfig {
                protocol: PROTOCOL.into(),
                members: cluster.members.clone(),
            });
            let opts = ClientOpts::new(WorkloadOptions::new(Workload::Saga));
            // The client follows the hint to the entry.
            let mut c = target.client("n3", &opts).await.unwrap();
            c.setup().await.unwrap();
            let good =
                json!({"saga": 1, "customer": 0, "item": 1, "qty": 2, "amount": 10, "dest": 3});
            let bad =
                json!({"saga": 2, "customer": 1, "item": 1, "qty": 1, "amount": 5, "dest": 0});
            let mut events = Vec::new();
            let mut record = |f: &str, v: serde_json::Value, done: &Completion| {
                let p = Process::Client(0);
                events.push(Event::new(p.clone(), EventType::Invoke, f, v.clone()));
                let t = match done.outcome {
                    Outcome::Ok => EventType::Ok,
                    Outcome::Fail => EventType::Fail,
                    Outcome::Info => EventType::Info,
                };
                let v = if done.outcome == Outcome::Ok {
                    done.value.clone()
                } else {
                    v
                };
                events.push(Event::new(p, t, f, v));
            };
            let r1 = c.invoke(&Op::new("order", None, good.clone())).await;
            assert_eq!(r1, Completion::ok(good.clone()), "{mode}");
            record("order", good, &r1);
            let r2 = c.invoke(&Op::new("order", None, bad.clone())).await;
            assert_eq!(r2.outcome, Outcome::Fail, "{mode}: {r2:?}");
            assert!(format!("{r2:?}").contains("no route"), "{mode}: {r2:?}");
            record("order", bad, &r2);
            let rd = c
                .invoke(&Op::new("read", None, serde_json::Value::Null))
                .await;
            assert_eq!(rd.outcome, Outcome::Ok, "{mode}: {rd:?}");
            assert_eq!(rd.value["mode"], mode);
            assert_eq!(
                rd.value["sagas"],
                json!({"1": "committed", "2": "compensated"})
            );
            record("read", serde_json::Value::Null, &rd);
            let h = History { events };
            let v = faultline_checker::saga::check(&h).unwrap();
            assert_eq!(v.verdict, faultline_checker::Verdict::Valid, "{}", v.json);
            let _ = std::fs::remove_dir_all(&cluster.base);
        }
    }
}
