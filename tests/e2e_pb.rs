//! Primary-backup (`faultline-node pb`) end to end on a 3-node lab (bridge
//! flbr29, 10.77.29.0/24), with the nemesis killing or isolating the
//! primary and the target's failover (fence + promote) running at each
//! heal:
//! (a) `mode=sync`: the register stays linearizable, and a failover
//!     promoted a backup;
//! (b) `mode=async` under `isolate-leader`: the cut-off primary keeps
//!     acknowledging writes on its own disk, the failover promotes a
//!     backup that never saw them, and the checker reports the lost
//!     writes (the mode's documented price). Up to 3 short runs; the
//!     first invalid one ends it (it was invalid in the first run in every
//!     try while writing this test);
//! (c) the seeded bug `no-fencing` in `mode=semi-sync` with
//!     `failover=monitor` (the target also fails over every second, so the
//!     new primary works while the old one is still cut off): invalid in
//!     one of up to 3 runs (3 of 5 in the measurements of docs/pb.md);
//! (d) the seeded bug `ack-before-fsync` in `mode=sync` (every node
//!     acknowledges before its once-a-second log write) under `kill-all`
//!     (every node killed at once): acknowledged writes vanish, invalid in
//!     one of up to 3 runs (5 of 5 in docs/pb.md).
//!
//! Skips (a failure under CI=true) without root or sshd.

mod common;

use common::{Lab, TmpStore, faultline, history_lines, node_binary, read_json, text};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

fn run(
    bin: &str,
    lab: &Lab,
    store: &str,
    mode: &str,
    nemesis: &str,
    seed: &str,
    extra: &[&str],
) -> (i32, String) {
    run_for(bin, lab, store, mode, nemesis, seed, extra, ("3", "15"))
}

/// `run` with a nemesis interval and time limit (seconds).
#[allow(clippy::too_many_arguments)]
fn run_for(
    bin: &str,
    lab: &Lab,
    store: &str,
    mode: &str,
    nemesis: &str,
    seed: &str,
    extra: &[&str],
    (interval, limit): (&str, &str),
) -> (i32, String) {
    let t0 = Instant::now();
    let mode_opt = format!("mode={mode}");
    let mut args = vec!["test", "--target", "pb", "--db-option", &mode_opt];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--workload",
        "register",
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        interval,
        "--time-limit",
        limit,
        "--seed",
        seed,
        "--node-binary",
        bin,
        "--lab-dir",
        &lab.dir,
        "--store",
        store,
    ]);
    let o = faultline(&args);
    println!(
        "pb {mode} {nemesis} {extra:?} seed {seed}: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    (o.status.code().unwrap_or(-1), text(&o))
}

/// Runs `one(seed)` for seeds 1, 2, 3 until one run is invalid (then
/// `on_invalid` checks that run's directory); fails naming `what` if none
/// was.
fn caught_within_3(
    latest: &Path,
    what: &str,
    mut one: impl FnMut(&str) -> (i32, String),
    on_invalid: impl Fn(i32, &str),
) {
    let mut verdicts = Vec::new();
    for seed in ["1", "2", "3"] {
        let (code, out) = one(seed);
        assert!(code == 0 || code == 1, "{out}");
        let results = read_json(&latest.join("results.json"));
        verdicts.push(results["valid"].clone());
        if results["valid"] == Value::Bool(false) {
            on_invalid(code, &out);
            return;
        }
    }
    panic!("{what} in 3 runs: {verdicts:?}");
}

/// The failovers the nemesis' heals report in the history.
fn promotions(run: &Path) -> Vec<Value> {
    history_lines(&run.join("history.jsonl"))
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .filter_map(|e| e["value"].get("failover").cloned())
        .filter(|f| f["promoted"].is_string())
        .collect()
}

#[test]
fn bad_mode_is_a_usage_error() {
    let bin = node_binary();
    let o = faultline(&[
        "test",
        "--target",
        "pb",
        "--db-option",
        "mode=eventual",
        "--node-binary",
        bin.to_str().expect("path"),
        "--lab-dir",
        "/nonexistent-faultline-lab",
    ]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("semi-sync"),
        "{}",
        text(&o)
    );
}

#[test]
fn sync_survives_primary_failover_and_async_loses_acknowledged_writes() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("pb", 29, 3);
    let store = TmpStore::new("pb");
    let latest = store.0.join("pb-register/latest");

    // (a) sync: kill and isolate the primary, fail over at each heal.
    let (code, out) = run(
        bin,
        &lab,
        store.s(),
        "sync",
        "kill-leader,isolate-leader",
        "5",
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let results = read_json(&latest.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    assert!(
        results["run"]["ok"].as_u64().unwrap_or(0) > 50,
        "{results:#}"
    );
    let p = promotions(&latest);
    assert!(!p.is_empty(), "no failover promoted a backup");
    let tj = read_json(&latest.join("test.json"));
    assert_eq!(tj["node"]["options"]["mode"], "sync", "{tj:#}");

    // (b) async: acknowledged writes are lost after a failover.
    caught_within_3(
        &latest,
        "async never lost an acknowledged write",
        |seed| run(bin, &lab, store.s(), "async", "isolate-leader", seed, &[]),
        |_, _| {
            assert!(
                !promotions(&latest).is_empty(),
                "invalid without a failover"
            )
        },
    );

    // (c) a seeded bug: backups that do not fence lose acknowledged writes.
    // Each isolate → monitor failover → heal cycle is one chance (the old
    // primary must reach a backup before the new primary reaches it), so
    // the runs are long enough for ~7 cycles: 15 s runs with 2 cycles were
    // caught in 3 of 5 on a loaded machine but 0 of 3 on a faster CI
    // runner; 30 s with a 2 s interval caught it in 3 of 3 (2–3 keys each).
    let extra = ["--bug", "no-fencing", "--db-option", "failover=monitor"];
    caught_within_3(
        &latest,
        "no-fencing was not caught",
        |seed| {
            run_for(
                bin,
                &lab,
                store.s(),
                "semi-sync",
                "isolate-leader",
                seed,
                &extra,
                ("2", "30"),
            )
        },
        |code, out| assert_eq!(code, 1, "{out}"),
    );

    // (d) a seeded bug: acknowledged, not yet written, lost by a crash of
    // every node. Each kill-all is one chance (it must land within a
    // second of acknowledged writes, which at this load it always does).
    caught_within_3(
        &latest,
        "ack-before-fsync was not caught",
        |seed| {
            run_for(
                bin,
                &lab,
                store.s(),
                "sync",
                "kill-all",
                seed,
                &["--bug", "ack-before-fsync"],
                ("2", "10"),
            )
        },
        |_, _| {
            let h = std::fs::read_to_string(latest.join("history.jsonl")).unwrap_or_default();
            assert!(h.contains("\"kill-all\""), "invalid without a kill-all");
        },
    );
}
