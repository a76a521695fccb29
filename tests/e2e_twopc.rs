//! Two-phase commit end to end: `faultline test --target twopc --workload
//! bank` against a real 3-node `faultline-node twopc` cluster (node 1
//! coordinates, every node holds a shard) in its own lab (bridge flbr19,
//! 10.77.19.0/24), under the kill nemesis (SIGKILL, restart on heal):
//! (a) the correct build: valid, exit 0, transfers and reads succeeded
//!     and kills ran;
//! (b) the seeded bug `unilateral-abort` (a participant blocked by a
//!     killed coordinator gives up after 500 ms and aborts, while the
//!     coordinator had committed): reads see a wrong total, invalid,
//!     exit 1. A kill exposes it in about 2 runs of 3, so up to three
//!     seeds run and one must be invalid; `vote-before-log` needs a kill in
//!     the few milliseconds between a participant's vote and the commit,
//!     and was missed in 2 of 2.
//!
//! Skips (printing why) without root or sshd. Builds faultline-node first.

mod common;

use common::{Lab, TmpStore, faultline, node_binary, read_json, text};
use serde_json::Value;
use std::time::Instant;

fn run(lab: &Lab, bin: &str, store: &str, seed: &str, bug: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "test",
        "--target",
        "twopc",
        "--workload",
        "bank",
        "--nemesis",
        "kill",
        "--nemesis-interval",
        "2",
        "--concurrency",
        "10",
        "--time-limit",
        "15",
        "--seed",
        seed,
        "--node-binary",
        bin,
        "--lab-dir",
        &lab.dir,
        "--store",
        store,
    ];
    if let Some(b) = bug {
        args.extend(["--bug", b]);
    }
    let t0 = Instant::now();
    let o = faultline(&args);
    println!(
        "twopc bank {bug:?}: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    o
}

#[test]
fn twopc_bank_valid_and_a_seeded_bug_caught_under_kills() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("twopc", 19, 3);
    let store = TmpStore::new("twopc");
    let _ = std::fs::remove_dir_all(&store.0);
    let s = store.0.to_str().expect("utf-8 path");

    // (a) correct build.
    let o = run(&lab, bin, s, "3", None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let latest = store.0.join("twopc-bank/latest");
    let results = read_json(&latest.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    let h = std::fs::read_to_string(latest.join("history.jsonl")).expect("history");
    let events: Vec<Value> = h
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ok = |f: &str| {
        events
            .iter()
            .filter(|e| e["type"] == "ok" && e["f"] == f)
            .count()
    };
    assert!(ok("transfer") > 20, "{} ok transfers", ok("transfer"));
    assert!(ok("read") > 20, "{} ok reads", ok("read"));
    let kills = events
        .iter()
        .filter(|e| e["process"] == "nemesis" && e["value"]["fault"] == "kill")
        .count();
    assert!(kills > 0, "no kill ran");
    let tj = read_json(&latest.join("test.json"));
    assert_eq!(tj["node"]["protocol"], "twopc");
    let log = std::fs::read_to_string(latest.join("nodes/n1/node.log")).expect("n1's log");
    assert!(log.contains("twopc: starting"), "{log}");

    // (b) a participant that stops waiting for the decision. Whether a
    // kill lands in a window that exposes it is luck (about 2 runs in 3
    // while tuning), so up to three seeds; the first invalid run ends it.
    let mut caught = None;
    for seed in ["3", "5", "4"] {
        let o = run(&lab, bin, s, seed, Some("unilateral-abort"));
        match o.status.code() {
            Some(1) => {
                caught = Some(seed);
                break;
            }
            Some(0) => {}
            _ => panic!("{}", text(&o)),
        }
    }
    assert!(
        caught.is_some(),
        "unilateral-abort was not caught in 3 runs"
    );
    let results = read_json(&latest.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(false), "{results:#}");
    let tj = read_json(&latest.join("test.json"));
    assert_eq!(tj["bugs"], serde_json::json!(["unilateral-abort"]));
}
