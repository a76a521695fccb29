//! SWIM membership end to end: `faultline test --target swim --workload
//! membership` against a real 3-node `faultline-node swim` cluster in one
//! lab (bridge flbr34, 10.77.34.0/24). Each client polls its own node's
//! view; the `detector` checker times each kill's detection and counts
//! false suspicions.
//!
//! - the correct build, with one node killed for 5 s twice under 5%
//!   background loss (`--loss-prob`), detects each kill within 3 s and
//!   leaves no live node dead: valid, exit 0;
//! - `no-incarnation` (a restarted member rejoins with the incarnation it
//!   was declared dead at, which never overrides the death) leaves the
//!   killed node dead after the heal: `false-dead`, exit 1. The restart
//!   happens at every kill's heal, so every run catches it.
//!
//! Skips (printing why) without root or sshd. Builds faultline-node first.

mod common;

use common::{Lab, TmpStore, faultline, node_binary, read_json, text};
use serde_json::Value;
use std::time::Instant;

/// One run; returns (exit code, results.json).
fn run(lab: &Lab, store: &TmpStore, bug: Option<&str>) -> (i32, Value) {
    let bin = node_binary();
    let mut args = vec![
        "test",
        "--target",
        "swim",
        "--workload",
        "membership",
        "--nemesis",
        "kill",
        "--loss-prob",
        "0.05",
        "--nemesis-interval",
        "5",
        "--time-limit",
        "21",
        "--concurrency",
        "3",
        // 10 polls per second per node: detection resolved to ~100 ms.
        "--rate",
        "30",
        "--seed",
        "2",
        "--node-binary",
        bin.to_str().expect("utf-8 path"),
        "--lab-dir",
        &lab.dir,
        "--store",
        store.s(),
    ];
    if let Some(b) = bug {
        args.extend(["--bug", b]);
    }
    let t0 = Instant::now();
    let o = faultline(&args);
    println!(
        "swim bug {bug:?}: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    let results = read_json(&store.0.join("swim-membership/latest/results.json"));
    (o.status.code().unwrap_or(-1), results)
}

#[test]
fn kills_are_detected_and_the_seeded_bug_is_caught() {
    if common::skip() {
        return;
    }
    let lab = Lab::up("swim", 34, 3);
    let store = TmpStore::new("swim");

    let (code, r) = run(&lab, &store, None);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["valid"], Value::Bool(true), "{r:#}");
    let st = &r["stats"];
    // Kills at 5 s and 15 s, each healed 5 s later.
    assert!(st["failures"].as_u64().unwrap_or(0) >= 2, "{r:#}");
    assert!(st["detections"].as_u64().unwrap_or(0) >= 4, "{r:#}");
    let max = st["detection_max_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(max < 3000, "detection took {max} ms: {r:#}");
    assert_eq!(st["nodes"], 3, "{r:#}");
    let tj = read_json(&store.0.join("swim-membership/latest/test.json"));
    assert_eq!(tj["checker"], "detector");
    let h = std::fs::read_to_string(store.0.join("swim-membership/latest/history.jsonl"))
        .expect("history");
    assert!(h.contains("\"loss\":0.05"), "no background loss recorded");

    let (code, r) = run(&lab, &store, Some("no-incarnation"));
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["valid"], Value::Bool(false), "{r:#}");
    assert!(
        r["anomaly_types"].to_string().contains("false-dead"),
        "{r:#}"
    );
}
