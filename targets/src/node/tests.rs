use super::client::{completion_value, to_kv};
use super::*;
use serde_json::json;

fn db() -> NodeDb {
    let mut d = NodeDb::new(
        "raft",
        [
            ("n1", "10.77.9.11"),
            ("n2", "10.77.9.12"),
            ("n3", "10.77.9.13"),
        ],
    );
    d.bugs = vec!["stale-read".into()];
    d.libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into();
    d
}

#[test]
fn start_is_detached_under_faketime_with_bugs() {
    let c = db().start_command("n3").unwrap();
    assert!(c.starts_with("if [ -f /opt/faultline-node/node.pid ] && kill -0"));
    assert!(c.contains("setsid nohup env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME_TIMESTAMP_FILE=/tmp/faultline-faketime.rc"));
    assert!(c.contains("FAKETIME_DONT_FAKE_MONOTONIC=1"));
    assert!(c.contains("raft --id 3 --peers 1=10.77.9.11:7001"));
    assert!(c.contains("--bug stale-read </dev/null >>/opt/faultline-node/node.log 2>&1 & echo $! > /opt/faultline-node/node.pid"));
    assert!(!c.contains("&& cd"));
    assert!(db().start_command("n9").is_none());
    let mut plain = db();
    plain.libfaketime.clear();
    assert!(!plain.start_command("n1").unwrap().contains("LD_PRELOAD"));
}

#[test]
fn ops_map_onto_the_state_machine() {
    let r = |f: &str, k: Option<Value>, v: Value| Op::new(f, k, v);
    assert_eq!(
        to_kv(
            Workload::Register,
            &r("cas", Some(json!(3)), json!([1, 2])),
            9
        )
        .unwrap(),
        KvOp::Cas {
            key: 3,
            from: 1,
            to: 2
        }
    );
    assert_eq!(
        to_kv(
            Workload::ListAppend,
            &r("txn", None, json!([["append", 1, 5], ["r", 1, null]])),
            9
        )
        .unwrap(),
        KvOp::Txn(vec![
            Micro::Append { key: 1, value: 5 },
            Micro::ReadList { key: 1 }
        ])
    );
    assert_eq!(
        to_kv(
            Workload::RwRegister,
            &r("txn", None, json!([["r", 2, null]])),
            9
        )
        .unwrap(),
        KvOp::Txn(vec![Micro::Read { key: 2 }])
    );
    assert_eq!(
        to_kv(Workload::Lock, &r("acquire", None, Value::Null), 9).unwrap(),
        KvOp::Acquire { owner: 9 }
    );
    assert!(to_kv(Workload::Register, &r("read", None, Value::Null), 9).is_err());
    assert!(
        to_kv(
            Workload::ListAppend,
            &r("txn", None, json!([["w", 1, 2]])),
            9
        )
        .is_err()
    );
    assert_eq!(
        completion_value(Workload::Bank, &r("read", None, Value::Null), json!([3, 4])),
        json!({"0": 3, "1": 4})
    );
}

/// A real `single` cluster on loopback (threads in this process), and
/// the client following the not-leader hint from a backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_follows_the_leader_hint_and_classifies() {
    use faultline_node::shell::{self};
    let cluster =
        crate::loopback::start::<shell::single::Single>("single", "node", 3, (10, 2), &[]);
    let target = NodeTarget::new(NodeConfig {
        protocol: "single".into(),
        members: cluster.members.clone(),
    });
    let opts = ClientOpts::new(WorkloadOptions::new(Workload::Register));
    let mut c = target.client("n3", &opts).await.unwrap();
    let k = Some(json!(1));
    let w = c.invoke(&Op::new("write", k.clone(), json!(4))).await;
    assert_eq!(w, Completion::ok(json!(4)));
    let bad = c.invoke(&Op::new("cas", k.clone(), json!([1, 2]))).await;
    assert_eq!(bad.outcome, faultline_workloads::Outcome::Fail);
    let rd = c.invoke(&Op::new("read", k.clone(), Value::Null)).await;
    assert_eq!(rd, Completion::ok(json!(4)));
    let p = Primaries::primaries(&target, &["n1".into(), "n2".into(), "n3".into()])
        .await
        .unwrap();
    assert_eq!(p, ["n1"]);
    // A cluster with nobody listening: refused before sending → fail.
    let dead = NodeTarget::new(NodeConfig {
        protocol: "single".into(),
        members: vec![(
            "n1".into(),
            format!("127.0.0.1:{}", crate::loopback::free_port()),
        )],
    });
    let mut o = ClientOpts::new(WorkloadOptions::new(Workload::Register));
    o.timeout = Duration::from_millis(300);
    let mut c = dead.client("n1", &o).await.unwrap();
    let w = c.invoke(&Op::new("write", k, json!(1))).await;
    assert_eq!(w.outcome, faultline_workloads::Outcome::Fail, "{w:?}");
    let _ = std::fs::remove_dir_all(&cluster.base);
}
