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
//! Skips (a failure under CI=true) without root or sshd. Builds faultline-node first.

mod common;

use common::{Lab, TmpStore, faultline, node_binary, read_json, text};
use serde_json::{Value, json};
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

/// `faultline test --target twopc` for 15 s with extra arguments (the
/// nemesis, the clients).
fn run_with(lab: &Lab, bin: &str, store: &str, seed: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec![
        "test",
        "--target",
        "twopc",
        "--workload",
        "bank",
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
    args.extend(more);
    let t0 = Instant::now();
    let o = faultline(&args);
    println!(
        "twopc bank {more:?}: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    o
}

/// Issue #8, "2PC's blocking window is measured and shown in the report"
/// and "a 3-participant transfer workload conserves the bank total in
/// every correct run" (lab on flbr35):
/// (a) `kill-leader` kills the coordinator (n1: its status says `leader`)
///     for 2 s, four times: valid; results.json's `blocking` has the
///     participants' prepared periods from their logs, and one prepared
///     when a kill struck lasts about the kill (the participants can
///     neither commit nor abort meanwhile); report.html draws them;
/// (b) the three shards (n1 also coordinates) under partition, kill,
///     pause and clock faults: valid, transfers and reads succeeded — the
///     bank checker found the total conserved in every read.
/// A coordinator fault's downtime and the longest period of a participant
/// prepared when it struck (ms).
fn down_and_max_caught(k: &Value) -> (u64, u64) {
    (
        k["down_ms"].as_u64().unwrap_or(0),
        k["max_caught_ms"].as_u64().unwrap_or(0),
    )
}

/// Some participant prepared at the fault waited at least half of it.
fn waited_out(k: &Value) -> bool {
    let (down, max) = down_and_max_caught(k);
    max >= down / 2
}

#[test]
fn twopc_blocking_window_and_bank_under_every_fault() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("twopcw", 35, 3);
    let store = TmpStore::new("twopcw");
    let _ = std::fs::remove_dir_all(&store.0);
    let s = store.0.to_str().expect("utf-8 path");
    let latest = store.0.join("twopc-bank/latest");

    // (a) Kills of the coordinator at about 2, 6, 10 and 14 s, each
    // healed 2 s later. A kill finds some participant prepared about every
    // other time (20 clients keep transfers in flight, each prepared for
    // ~10 ms), so a second seed runs if none of the first's kills left one
    // waiting.
    let mut caught = Vec::new();
    for seed in ["1", "2"] {
        let o = run_with(
            &lab,
            bin,
            s,
            seed,
            &[
                "--nemesis",
                "kill-leader",
                "--nemesis-interval",
                "2",
                "--concurrency",
                "20",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let r = read_json(&latest.join("results.json"));
        assert_eq!(r["valid"], Value::Bool(true), "{r:#}");
        let b = r["blocking"].clone();
        println!(
            "blocking: {:#}",
            json!({"coordinator_faults": b["coordinator_faults"],
            "periods": b["periods"], "median_ms": b["median_ms"], "p99_ms": b["p99_ms"],
            "max_ms": b["max_ms"]})
        );
        assert!(b["periods"].as_u64() > Some(20), "{b:#}");
        let kills = b["coordinator_faults"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(kills.len() >= 3, "kills of n1: {b:#}");
        assert!(kills.iter().all(|k| k["fault"] == "kill-leader"), "{b:#}");
        assert!(
            b["median_ms"].as_u64() < Some(500),
            "most periods are short: {b:#}"
        );
        caught = kills
            .into_iter()
            .filter(|k| k["caught"].as_u64() > Some(0))
            .collect();
        if caught.iter().any(waited_out) {
            break;
        }
    }
    assert!(!caught.is_empty(), "no kill found a participant prepared");
    // A participant prepared when the coordinator died stays blocked until
    // it is back: at most the downtime plus 3 s (restart, recovery,
    // reconnecting, the next inquiry: 1.2 s seen after the last kill,
    // healed after the main phase), and in some kill at least half the
    // downtime (the kill lands some time after the `start` is recorded).
    // Not in every kill: a decision the coordinator wrote to its socket
    // just before SIGKILL is still delivered by the kernel, so a
    // participant prepared at the kill can finish 16 ms later (seen on a
    // CI runner: the kernel outlives the process, the protocol did
    // nothing wrong).
    for k in &caught {
        let (down, max) = down_and_max_caught(k);
        assert!(max <= down + 3000, "{k}");
    }
    assert!(
        caught.iter().any(waited_out),
        "no caught participant waited out the coordinator's downtime: {caught:?}"
    );
    let report = std::fs::read_to_string(latest.join("report.html")).expect("report");
    assert!(report.contains("2PC blocking window"), "no section");
    assert!(report.contains("class=\"coord-fault\""), "no fault lane");
    assert!(report.contains("class=\"blocked\""), "no blocked bars");

    // (b) every fault kind.
    let o = run_with(
        &lab,
        bin,
        s,
        "2",
        &[
            "--nemesis",
            "partition,kill,pause,clock",
            "--nemesis-interval",
            "2",
            "--concurrency",
            "10",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = read_json(&latest.join("results.json"));
    assert_eq!(r["valid"], Value::Bool(true), "{r:#}");
    let h = common::history_lines(&latest.join("history.jsonl"));
    let ok = |f: &str| {
        h.iter()
            .filter(|e| e["type"] == "ok" && e["f"] == f)
            .count()
    };
    assert!(ok("transfer") > 20, "{} ok transfers", ok("transfer"));
    assert!(ok("read") > 10, "{} ok reads", ok("read"));
    let kinds: std::collections::BTreeSet<&str> = h
        .iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == "start")
        .filter_map(|e| e["value"]["fault"].as_str())
        .collect();
    assert!(kinds.len() >= 3, "fault kinds that ran: {kinds:?}");
}
