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
//! - `piggyback-unbounded` (gossip updates never retired, oldest first) on
//!   its own 12-node lab (bridge flbr50, 10.77.50.0/24) with push-pull off:
//!   kills and pauses every 1.5 s fill every member's queue with stale
//!   updates, after which the last faults' suspicions and refutations
//!   never leave by gossip and a live member stays dead: `false-dead`.
//!   5 of 5 60 s runs in docs/swim.md; one 40 s run here, up to 2. Then
//!   the correct build on the catching seed, same schedule: valid, exit 0
//!   (so the schedule alone does not leave a member dead).
//!
//! Skips (a failure under CI=true) without root or sshd. Builds faultline-node first.

mod common;

use common::{Lab, TmpStore, faultline, node_binary, read_json, text};
use serde_json::Value;
use std::time::Instant;

/// One run; returns (exit code, results.json).
fn run(lab: &Lab, store: &TmpStore, bug: Option<&str>) -> (i32, Value) {
    let args = vec![
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
    ];
    run_with(lab, store, bug, &args)
}

/// One run with these nemesis/load arguments.
fn run_with(lab: &Lab, store: &TmpStore, bug: Option<&str>, extra: &[&str]) -> (i32, Value) {
    let bin = node_binary();
    let mut args = vec![
        "test",
        "--target",
        "swim",
        "--workload",
        "membership",
        "--node-binary",
        bin.to_str().expect("utf-8 path"),
        "--lab-dir",
        &lab.dir,
        "--store",
        store.s(),
    ];
    args.extend_from_slice(extra);
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

#[test]
fn piggyback_unbounded_leaves_a_live_member_dead() {
    if common::skip() {
        return;
    }
    let lab = Lab::up("swim-piggyback", 50, 12);
    let store = TmpStore::new("swim-piggyback");
    let schedule = |seed| {
        [
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "1.5",
            "--time-limit",
            "40",
            "--node-count",
            "12",
            "--concurrency",
            "12",
            "--rate",
            "50",
            "--db-option",
            "push-pull-ticks=1000000",
            "--seed",
            seed,
        ]
    };
    let mut verdicts = Vec::new();
    let mut caught = None;
    // Up to three seeds: since clients back off after failures (issue #24)
    // one session saw seeds 1 and 2 both valid (the first full run caught it).
    for seed in ["1", "2", "3"] {
        let (code, r) = run_with(&lab, &store, Some("piggyback-unbounded"), &schedule(seed));
        assert!(code == 0 || code == 1, "{r:#}");
        verdicts.push(r["valid"].clone());
        if r["valid"] == Value::Bool(false) {
            assert_eq!(code, 1, "{r:#}");
            assert!(
                r["anomaly_types"].to_string().contains("false-dead"),
                "{r:#}"
            );
            assert_eq!(r["stats"]["nodes"], 12, "{r:#}");
            caught = Some(seed);
            break;
        }
    }
    let Some(seed) = caught else {
        panic!("piggyback-unbounded not caught in 3 runs: {verdicts:?}");
    };
    let (code, r) = run_with(&lab, &store, None, &schedule(seed));
    assert_eq!(
        (code, &r["valid"]),
        (0, &Value::Bool(true)),
        "the correct build under the same schedule, seed {seed}: {r:#}"
    );
    assert_eq!(r["stats"]["nodes"], 12, "{r:#}");
}
