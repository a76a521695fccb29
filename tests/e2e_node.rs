//! faultline's own protocols end to end: `faultline test --target raft`
//! against a real 3-node cluster of the `faultline-node` binary (uploaded
//! over SSH) in a dedicated lab (bridge flbr9, 10.77.9.0/24):
//! (a) raft, register under partition + kill: valid, exit 0, the store
//!     has the nodes' logs with elections in them, and teardown leaves no
//!     server behind;
//! (b) paxos with the seeded bug `minority-quorum` (a value is chosen by a
//!     minority): the checker flags it, exit 1. It was caught in 2 of 2
//!     15 s runs while tuning (zab `commit-before-quorum` too); raft's
//!     bugs need longer runs or luckier schedules.
//!
//! Skips (a failure under CI=true) without root or sshd. Runs the debug binaries;
//! builds faultline-node first (a no-op when it is up to date).

mod common;

use common::{Lab, TmpStore, faultline, history_lines, node_binary, read_json, text};
use serde_json::Value;
use std::time::Instant;

#[test]
fn unknown_bug_is_a_usage_error_listing_the_known_ones() {
    let bin = node_binary();
    let o = faultline(&[
        "test",
        "--target",
        "raft",
        "--bug",
        "no-such-bug",
        "--node-binary",
        bin.to_str().expect("path"),
        "--lab-dir",
        "/nonexistent-faultline-lab",
    ]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no-such-bug") && err.contains("ack-before-commit"),
        "{err}"
    );
}

#[test]
fn raft_valid_and_a_seeded_paxos_bug_caught() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("node", 9, 3);
    let store = TmpStore::new("node");
    let _ = std::fs::remove_dir_all(&store.0);
    let s = store.0.to_str().expect("utf-8 path");

    // (a) raft, register, partition + kill.
    let t0 = Instant::now();
    let o = faultline(&[
        "test",
        "--target",
        "raft",
        "--workload",
        "register",
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "15",
        "--seed",
        "7",
        "--node-binary",
        bin,
        "--lab-dir",
        &lab.dir,
        "--store",
        s,
    ]);
    println!(
        "(a) raft register: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("raft-register: valid"));
    let run = store.0.join("raft-register/latest");
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    assert!(
        results["run"]["ok"].as_u64().unwrap_or(0) > 200,
        "{results:#}"
    );
    let tj = read_json(&run.join("test.json"));
    assert_eq!(tj["target"], "raft");
    assert_eq!(tj["node"]["protocol"], "raft");
    let h = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let kills = h
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["process"] == "nemesis" && e["value"]["fault"] == "kill")
        .count();
    assert!(kills > 0, "no kill ran");
    let mut elected = false;
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(run.join(format!("nodes/{n}/node.log")))
            .unwrap_or_else(|e| panic!("{n}'s log: {e}"));
        assert!(
            log.contains("n") && log.contains("raft: starting"),
            "{n}: {log}"
        );
        elected |= log.contains("-> leader");
    }
    assert!(elected, "no node logged becoming leader");
    // Torn down: nothing left running, nothing left on disk.
    lab.assert_no_process("", "faultline-node");
    for (n, (code, out)) in lab.exec("", "ls -A /opt/faultline-node") {
        assert!(
            code == 0 && out.trim().is_empty(),
            "{n}: left behind: {out}"
        );
    }

    // (b) a seeded bug the checker must flag. A 15 s run with random faults
    // missed it once on a loaded CI runner, so up to three seeds, with the
    // leader-aimed isolation that the campaign found exposes it fastest.
    let mut caught = None;
    for seed in ["1", "2", "3"] {
        let t0 = Instant::now();
        let o = faultline(&[
            "test",
            "--target",
            "paxos",
            "--bug",
            "minority-quorum",
            "--workload",
            "register",
            "--nemesis",
            "partition,isolate-leader,kill",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "15",
            "--seed",
            seed,
            "--node-binary",
            bin,
            "--lab-dir",
            &lab.dir,
            "--store",
            s,
        ]);
        println!(
            "(b) paxos minority-quorum, seed {seed}: {:.1} s\n{}",
            t0.elapsed().as_secs_f64(),
            text(&o)
        );
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        if o.status.code() == Some(1) {
            caught = Some(seed);
            break;
        }
    }
    assert!(caught.is_some(), "minority-quorum not caught by seeds 1-3");
    let results = read_json(&store.0.join("paxos-register/latest/results.json"));
    assert_eq!(results["valid"], Value::Bool(false), "{results:#}");
    let tj = read_json(&store.0.join("paxos-register/latest/test.json"));
    assert_eq!(tj["bugs"], serde_json::json!(["minority-quorum"]));
}

/// `--nemesis loss,latency` in a run: both faults reach the nodes (the
/// history records them), raft stays linearizable through them, and the
/// heal leaves no loss chain, delay chain or delayer behind.
#[test]
fn raft_valid_under_packet_loss_and_latency_and_both_are_healed() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("node-net", 28, 3);
    let store = TmpStore::new("node-net");
    let t0 = Instant::now();
    let o = faultline(&[
        "test",
        "--target",
        "raft",
        "--workload",
        "register",
        "--nemesis",
        "loss,latency",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "14",
        "--seed",
        "3",
        "--node-binary",
        bin,
        "--lab-dir",
        &lab.dir,
        "--store",
        store.s(),
    ]);
    println!(
        "raft under loss+latency: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run = store.0.join("raft-register/latest");
    let faults: Vec<Value> = history_lines(&run.join("history.jsonl"))
        .into_iter()
        .filter(|e| e["process"] == "nemesis" && e["type"] == "info")
        .map(|e| e["value"].clone())
        .collect();
    let loss = faults.iter().find(|v| v["fault"] == "loss");
    let latency = faults.iter().find(|v| v["fault"] == "latency");
    assert!(loss.is_some() && latency.is_some(), "{faults:#?}");
    let p = loss.and_then(|v| v["probability"].as_f64()).unwrap_or(0.0);
    assert!((0.05..=0.3).contains(&p), "{loss:?}");
    assert!(latency.and_then(|v| v["delay_ms"].as_u64()).unwrap_or(0) >= 20);
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    // Every start and heal went through (a failed start is still logged).
    assert_eq!(results["run"]["nemesis_errors"], 0, "{results:#}");
    for (n, out) in lab.exec_ok(
        "",
        "iptables -S | grep -c 'FAULTLINE-LOSS\\|FAULTLINE-DELAY' || true; \
         test -f /tmp/faultline-delayer.pid && echo delayer-left || true",
    ) {
        assert_eq!(out.trim(), "0", "{n}: a fault was not healed: {out}");
    }
}
