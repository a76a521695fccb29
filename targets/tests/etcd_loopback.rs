//! The etcd client's bank, counter, unique-ids, queue and lock operations
//! against a real single-member etcd on loopback (no lab, no root). Skips,
//! saying why, when the `etcd` binary is not installed.

// The one skip path (a failure under CI=true): tests/common/skip.rs.
#[path = "../../tests/common/skip.rs"]
mod skip;

use faultline_targets::etcd::{EtcdConfig, EtcdTarget};
use faultline_targets::{Client, ClientOpts, Target};
use faultline_workloads::{Completion, Op, Outcome, Value, Workload, WorkloadOptions};
use serde_json::json;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A single-member etcd on two free loopback ports; killed on drop.
struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn etcd() -> Option<Etcd> {
    if Command::new("etcd").arg("--version").output().is_err() {
        skip::skipped("etcd not installed (apt-get install etcd-server)");
        return None;
    }
    let (c, p) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("faultline-etcd-loopback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("http://127.0.0.1:{c}");
    let peer = format!("http://127.0.0.1:{p}");
    let child = Command::new("etcd")
        .args(["--data-dir", dir.join("data").to_str().expect("utf-8")])
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("default={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning etcd");
    Some(Etcd { child, dir, url })
}

async fn client(url: &str, w: Workload) -> Box<dyn Client> {
    let t = EtcdTarget::new(EtcdConfig::new([("n1", url)]).with_prefix("loopback/"));
    let opts = ClientOpts::new(WorkloadOptions::new(w));
    t.client("n1", &opts).await.expect("client")
}

async fn call(c: &mut Box<dyn Client>, f: &str, v: Value) -> Completion {
    c.invoke(&Op::new(f, None, v)).await
}

#[tokio::test]
async fn etcd_workload_operations() {
    let Some(e) = etcd() else { return };
    // Wait for the member to serve.
    let t0 = Instant::now();
    let mut c = client(&e.url, Workload::Counter).await;
    while call(&mut c, "read", Value::Null).await.outcome != Outcome::Ok {
        assert!(t0.elapsed() < Duration::from_secs(20), "etcd did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // counter: adds accumulate.
    for d in [2, 3] {
        assert_eq!(call(&mut c, "add", json!(d)).await.outcome, Outcome::Ok);
    }
    assert_eq!(call(&mut c, "read", Value::Null).await.value, json!(5));

    // bank: setup writes the initial balances; transfers conserve them;
    // an overdraft fails.
    let mut b = client(&e.url, Workload::Bank).await;
    b.setup().await.expect("bank setup");
    let t = json!({"from": 0, "to": 1, "amount": 5});
    assert_eq!(call(&mut b, "transfer", t).await.outcome, Outcome::Ok);
    let over = json!({"from": 2, "to": 1, "amount": 500});
    assert_eq!(call(&mut b, "transfer", over).await.outcome, Outcome::Fail);
    let r = call(&mut b, "read", Value::Null).await;
    assert_eq!(
        r.value,
        json!({"0": 15, "1": 25, "2": 20, "3": 20, "4": 20}),
        "{r:?}"
    );

    // unique-ids: distinct revisions.
    let mut u = client(&e.url, Workload::UniqueIds).await;
    let a = call(&mut u, "generate", Value::Null).await.value;
    let b2 = call(&mut u, "generate", Value::Null).await.value;
    assert!(a.as_i64().is_some() && a != b2, "{a} {b2}");

    // queue: FIFO by element, dequeue of empty fails, drain takes the rest.
    let mut q = client(&e.url, Workload::Queue).await;
    for v in [1, 2, 3] {
        assert_eq!(call(&mut q, "enqueue", json!(v)).await.outcome, Outcome::Ok);
    }
    assert_eq!(call(&mut q, "dequeue", Value::Null).await.value, json!(1));
    assert_eq!(
        call(&mut q, "drain", Value::Null).await.value,
        json!([2, 3])
    );
    assert_eq!(
        call(&mut q, "dequeue", Value::Null).await.outcome,
        Outcome::Fail
    );

    // lock: one holder at a time; tokens grow; only the holder releases.
    let mut l1 = client(&e.url, Workload::Lock).await;
    let mut l2 = client(&e.url, Workload::Lock).await;
    let g1 = call(&mut l1, "acquire", Value::Null).await;
    assert_eq!(g1.outcome, Outcome::Ok, "{g1:?}");
    assert_eq!(
        call(&mut l2, "acquire", Value::Null).await.outcome,
        Outcome::Fail
    );
    assert_eq!(
        call(&mut l2, "release", Value::Null).await.outcome,
        Outcome::Fail
    );
    assert_eq!(
        call(&mut l1, "release", Value::Null).await.outcome,
        Outcome::Ok
    );
    let g2 = call(&mut l2, "acquire", Value::Null).await;
    assert_eq!(g2.outcome, Outcome::Ok, "{g2:?}");
    let (t1, t2) = (g1.value["token"].as_i64(), g2.value["token"].as_i64());
    assert!(t1.is_some() && t2 > t1, "{t1:?} {t2:?}");
    assert_eq!(
        call(&mut l2, "release", Value::Null).await.outcome,
        Outcome::Ok
    );
}
