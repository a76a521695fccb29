//! The runner against a real single-member etcd on loopback, list-append
//! with heavy contention: the history pairs, guarded commits that lose a
//! race are `fail`, and every key's reads are prefixes of one another (what
//! any serializable list store must show).
//!
//! Skips (a failure under `CI=true`, see tests/common/skip.rs) when there
//! is no `etcd`.

#[path = "common/skip.rs"]
mod skip;

use faultline::runner::{MemorySink, RunConfig, RunControl, run_test};
use faultline_checker::{History, Outcome, Value};
use faultline_targets::etcd::{EtcdConfig, EtcdTarget};
use faultline_workloads::{Workload, WorkloadOptions};
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("addr").port()
}

/// Starts etcd on loopback ports.
fn start_etcd() -> (Etcd, String) {
    let (cp, pp) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let dir =
        std::env::temp_dir().join(format!("faultline-etcd-runner-{}-{cp}", std::process::id()));
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
        .expect("spawning etcd");
    (Etcd { child, dir }, url)
}

async fn wait_healthy(url: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["health"] == "true"
        {
            return;
        }
        assert!(Instant::now() < deadline, "etcd did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_on_etcd() {
    if skip::skip_without_tools(&[("etcd", "etcd-server")]) {
        return;
    }
    let (_etcd, url) = start_etcd();
    wait_healthy(&url).await;
    let mut w = WorkloadOptions::new(Workload::ListAppend);
    w.active_keys = 2;
    let mut cfg = RunConfig::new(w, vec!["n1".into()]);
    cfg.concurrency = 5;
    cfg.time_limit = Duration::from_secs(2);
    cfg.recovery = Duration::ZERO;
    let target = EtcdTarget::new(EtcdConfig::new([("n1", url)]).with_prefix("runner-la/"));
    let sink = MemorySink::new();
    let out = run_test(cfg, Arc::new(target), sink.clone(), RunControl::default())
        .await
        .expect("run");
    println!("{out:?}");
    assert!(out.ok > 20, "{out:?}");
    let h = History {
        events: sink.events(),
    };
    let paired = h.pair().expect("pairs");
    let fails = paired
        .operations
        .iter()
        .filter(|o| o.outcome == Outcome::Fail)
        .count();
    assert!(
        fails > 0,
        "five writers on two keys must conflict sometimes: {out:?}"
    );

    // Every ok read of a key is a prefix of the longest read of that key.
    let mut reads: HashMap<String, Vec<Vec<Value>>> = HashMap::new();
    for op in paired
        .operations
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
    {
        for m in op.value.as_array().into_iter().flatten() {
            if m[0] == "r"
                && let Some(l) = m[2].as_array()
            {
                reads.entry(m[1].to_string()).or_default().push(l.clone());
            }
        }
    }
    assert!(!reads.is_empty());
    for (k, rs) in &reads {
        let longest = rs.iter().max_by_key(|l| l.len()).expect("non-empty");
        for r in rs {
            assert_eq!(
                &longest[..r.len()],
                &r[..],
                "key {k}: {r:?} is not a prefix of {longest:?}"
            );
        }
    }
}
