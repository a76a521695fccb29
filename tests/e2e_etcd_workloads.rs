//! The lock and bank workloads against a real 3-member etcd cluster in a
//! dedicated lab (bridge flbr7, 10.77.7.0/24), short and fault-free, so the
//! verdict must be valid: (a) lock via leases: mutual exclusion holds and
//! every grant carries a fencing token (the key's create_revision) that the
//! checker verified; (b) bank: every read sums to the money the test put
//! in. Each stored run re-checks to the same verdict.
//!
//! Skips (a failure under CI=true) without root, sshd or etcd. The lab is torn down by
//! a Drop guard.

mod common;

use common::{Lab, TmpStore, faultline, read_json, text};
use serde_json::Value;
use std::time::Instant;

/// Runs one short fault-free test and returns its results.json, after
/// checking the exit code and that `faultline check RUN_DIR` agrees.
fn run(lab: &Lab, store: &TmpStore, workload: &str) -> Value {
    let t0 = Instant::now();
    let o = faultline(&[
        "test",
        "--target",
        "etcd",
        "--workload",
        workload,
        "--nemesis",
        "none",
        "--time-limit",
        "6",
        "--rate",
        "100",
        "--seed",
        "7",
        "--lab-dir",
        &lab.dir,
        "--store",
        store.0.to_str().expect("utf-8 path"),
    ]);
    println!(
        "{workload}: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = store.0.join(format!("etcd-{workload}/latest"));
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    assert_eq!(results["model"], workload, "{results:#}");
    let c = faultline(&["check", "--json", dir.to_str().expect("path")]);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    results
}

#[test]
fn etcd_lock_and_bank_are_valid() {
    if common::skip_lab(&[("etcd", "etcd-server")]) {
        return;
    }
    let t_all = Instant::now();
    let lab = Lab::up("e2e-wl", 7, 3);
    let store = TmpStore::new("wl");
    let _ = std::fs::remove_dir_all(&store.0);

    // (a) lock: grants happened, each with a token the checker verified.
    let r = run(&lab, &store, "lock");
    let granted = r["stats"]["acquired"].as_u64().unwrap_or(0);
    assert!(granted >= 5, "only {granted} grants: {r:#}");
    assert_eq!(r["stats"]["tokens"], r["stats"]["acquired"], "{r:#}");
    assert_eq!(r["fencing"], "checked", "{r:#}");
    assert_eq!(r["linearizability"]["valid"], Value::Bool(true), "{r:#}");

    // (b) bank: judged against the balances setup wrote, not a guess.
    let r = run(&lab, &store, "bank");
    assert_eq!(r["total_source"], "given", "{r:#}");
    assert_eq!(r["total"], 100, "{r:#}");
    let reads = r["stats"]["ok_reads"].as_u64().unwrap_or(0);
    let transfers = r["stats"]["transfers_ok"].as_u64().unwrap_or(0);
    assert!(reads >= 20 && transfers >= 20, "{r:#}");
    println!("e2e workloads total {:.1} s", t_all.elapsed().as_secs_f64());
}
