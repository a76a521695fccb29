//! The etcd client against a real, single-member etcd on loopback.
//!
//! Needs the `etcd` binary (`apt-get install etcd-server etcd-client`, see
//! scripts/etcd-packages.txt); without it the test prints
//! "skipping: etcd not installed" and passes. Only 127.0.0.1 is used.

use faultline_targets::etcd::{EtcdConfig, EtcdTarget, ReadMode};
use faultline_targets::{ClientOpts, Target};
use faultline_workloads::{Client, Op, Outcome, Value, Workload, WorkloadOptions};
use serde_json::json;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps etcd when the test ends, even on panic.
struct Etcd {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("local addr").port()
}

fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn start_etcd() -> Etcd {
    let dir = std::env::temp_dir().join(format!(
        "faultline-etcd-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cp, pp) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let child = Command::new("etcd")
        .arg("--data-dir")
        .arg(dir.join("data"))
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
        .args(["--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcd");
    let etcd = Etcd {
        child,
        url: url.clone(),
        _dir: TempDir(dir),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["health"] == "true"
        {
            return etcd;
        }
        assert!(Instant::now() < deadline, "etcd did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn client(etcd: &Etcd, w: Workload, mode: ReadMode, prefix: &str) -> Box<dyn Client> {
    let t = EtcdTarget::new(
        EtcdConfig::new([("n1", etcd.url.as_str())])
            .with_read_mode(mode)
            .with_prefix(prefix),
    );
    let opts = ClientOpts::new(WorkloadOptions::new(w));
    t.client("n1", &opts).await.expect("open client")
}

fn op(f: &str, key: Option<Value>, value: Value) -> Op {
    Op::new(f, key, value)
}

#[tokio::test]
async fn etcd_workloads_on_loopback() {
    if !etcd_installed() {
        println!("skipping: etcd not installed");
        return;
    }
    let etcd = start_etcd().await;

    // register: read of a missing key, write, linearizable read after
    // write, CAS success and failure.
    let mut c = client(&etcd, Workload::Register, ReadMode::Linearizable, "t1/").await;
    let k = Some(json!(7));
    let missing = c.invoke(&op("read", k.clone(), Value::Null)).await;
    assert_eq!((missing.outcome, missing.value), (Outcome::Ok, Value::Null));
    let w = c.invoke(&op("write", k.clone(), json!(3))).await;
    assert_eq!(w.outcome, Outcome::Ok, "{w:?}");
    let r = c.invoke(&op("read", k.clone(), Value::Null)).await;
    assert_eq!((r.outcome, r.value), (Outcome::Ok, json!(3)));
    let cas = c.invoke(&op("cas", k.clone(), json!([3, 4]))).await;
    assert_eq!(cas.outcome, Outcome::Ok, "{cas:?}");
    let bad = c.invoke(&op("cas", k.clone(), json!([3, 5]))).await;
    assert_eq!(bad.outcome, Outcome::Fail, "{bad:?}");
    // A read through another client (serializable mode) sees the CAS on a
    // single member.
    let mut s = client(&etcd, Workload::Register, ReadMode::Serializable, "t1/").await;
    let r = s.invoke(&op("read", k.clone(), Value::Null)).await;
    assert_eq!((r.outcome, r.value), (Outcome::Ok, json!(4)));

    // list-append: appends visible to later txns and within the same txn.
    let mut c = client(&etcd, Workload::ListAppend, ReadMode::Linearizable, "t2/").await;
    let t1 = c
        .invoke(&op(
            "txn",
            None,
            json!([["append", 1, 1], ["append", 2, 2], ["r", 1, null]]),
        ))
        .await;
    assert_eq!(t1.outcome, Outcome::Ok, "{t1:?}");
    assert_eq!(
        t1.value,
        json!([["append", 1, 1], ["append", 2, 2], ["r", 1, [1]]])
    );
    let t2 = c
        .invoke(&op(
            "txn",
            None,
            json!([
                ["r", 1, null],
                ["append", 1, 3],
                ["r", 1, null],
                ["r", 3, null]
            ]),
        ))
        .await;
    assert_eq!(
        t2.value,
        json!([
            ["r", 1, [1]],
            ["append", 1, 3],
            ["r", 1, [1, 3]],
            ["r", 3, null]
        ])
    );
    let t3 = c
        .invoke(&op("txn", None, json!([["r", 1, null], ["r", 2, null]])))
        .await;
    assert_eq!(t3.value, json!([["r", 1, [1, 3]], ["r", 2, [2]]]));

    // rw-register.
    let mut c = client(&etcd, Workload::RwRegister, ReadMode::Linearizable, "t3/").await;
    let t = c
        .invoke(&op(
            "txn",
            None,
            json!([["w", 1, 10], ["r", 1, null], ["r", 2, null]]),
        ))
        .await;
    assert_eq!(t.value, json!([["w", 1, 10], ["r", 1, 10], ["r", 2, null]]));

    // set: adds, then a read of all elements.
    let mut c = client(&etcd, Workload::Set, ReadMode::Linearizable, "t4/").await;
    for v in [3, 1, 2, 10] {
        let a = c.invoke(&op("add", None, json!(v))).await;
        assert_eq!(a.outcome, Outcome::Ok, "{a:?}");
    }
    let r = c.invoke(&op("read", None, Value::Null)).await;
    assert_eq!((r.outcome, r.value), (Outcome::Ok, json!([1, 2, 3, 10])));

    // An operation the workload does not have fails (certainly no effect).
    let u = c.invoke(&op("cas", None, json!([1, 2]))).await;
    assert_eq!(u.outcome, Outcome::Fail);

    // The single member is the leader.
    let t = EtcdTarget::new(EtcdConfig::new([("n1", etcd.url.as_str())]));
    let primaries = t.primaries().expect("etcd knows its leader");
    let found = primaries
        .primaries(&["n1".to_string()])
        .await
        .expect("status");
    assert_eq!(found, ["n1"]);

    // Once etcd is gone, a write from a fresh client (no pooled connection)
    // fails: refused before it was sent.
    let url = etcd.url.clone();
    drop(etcd);
    let t = EtcdTarget::new(EtcdConfig::new([("n1", url)]));
    let opts = ClientOpts::new(WorkloadOptions::new(Workload::Set));
    let mut c = t.client("n1", &opts).await.expect("open client");
    let w = c.invoke(&op("add", None, json!(99))).await;
    assert_eq!(w.outcome, Outcome::Fail, "{w:?}");
}
