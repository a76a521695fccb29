//! Sagas end to end: `faultline test --target saga --workload saga`
//! against a real 3-node `faultline-node saga` cluster (reserve-credit on
//! n2, book-stock on n3, ship and the orchestrator on n1) in its own lab
//! (bridge flbr25, 10.77.25.0/24):
//! (a) orchestrated, under issue #24's fault mix (partition, kill, pause,
//!     clock and the leader-targeted kill, isolate and pause; a fault
//!     every 2 s) for 20 s: valid, exit 0, sagas committed and compensated,
//!     kills ran, and every saga step, ship included, completed in each
//!     10 s window (results.json's `steps`): restocks and top-ups keep
//!     stock and credit from running out, so the workload never goes idle;
//! (b) choreographed, under the partition nemesis: valid, exit 0;
//! (c) the seeded bug `refund-without-key` (the credit service refunds
//!     every compensation message it gets) under kills, which make the
//!     orchestrator re-send compensations: a double refund, invalid, exit
//!     1. At 5,000 ops/s (the re-sends need a loaded lab); up to three
//!     seeds run and one must be invalid;
//! (d) (own test, lab on flbr31) the seeded bug `send-before-log` (the orchestrator sends step 0
//!     before logging the saga): `kill-leader` kills the orchestrator
//!     (n1) while sagas are between step 0 and its answer — at 10 clients
//!     some always are — and an `--op-timeout` of 1 s, below the 2 s
//!     downtime, keeps the clients from retrying the order into the
//!     restarted orchestrator (which would run it again): a lost saga,
//!     invalid, exit 1. At 5,000 ops/s (paced clients leave too few
//!     sagas in flight); up to three seeds run and one must be invalid.
//!
//! Skips (a failure under CI=true) without root or sshd. Builds faultline-node first.

mod common;

use common::{Lab, TmpStore, faultline, node_binary, read_json, text};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

struct Run<'a> {
    lab: &'a Lab,
    bin: &'a str,
    store: &'a str,
}

impl Run<'_> {
    fn go(&self, nemesis: &str, mode: &str, seed: &str, bug: Option<&str>) -> std::process::Output {
        self.go_with(nemesis, mode, seed, bug, &[])
    }

    fn go_with(
        &self,
        nemesis: &str,
        mode: &str,
        seed: &str,
        bug: Option<&str>,
        more: &[&str],
    ) -> std::process::Output {
        self.go_for(nemesis, "2", "15", mode, seed, bug, more)
    }

    #[allow(clippy::too_many_arguments)]
    fn go_for(
        &self,
        nemesis: &str,
        interval: &str,
        secs: &str,
        mode: &str,
        seed: &str,
        bug: Option<&str>,
        more: &[&str],
    ) -> std::process::Output {
        let m = format!("mode={mode}");
        let mut args = vec![
            "test",
            "--target",
            "saga",
            "--workload",
            "saga",
            "--db-option",
            &m,
            "--nemesis",
            nemesis,
            "--nemesis-interval",
            interval,
            "--concurrency",
            "10",
            "--time-limit",
            secs,
            "--seed",
            seed,
            "--node-binary",
            self.bin,
            "--lab-dir",
            &self.lab.dir,
            "--store",
            self.store,
        ];
        if let Some(b) = bug {
            args.extend(["--bug", b]);
        }
        args.extend(more);
        let t0 = Instant::now();
        let o = faultline(&args);
        println!(
            "saga {mode} {nemesis} {bug:?} seed {seed}: {:.1} s\n{}",
            t0.elapsed().as_secs_f64(),
            text(&o)
        );
        o
    }
}

fn nemesis_events(latest: &Path, fault: &str) -> usize {
    let h = std::fs::read_to_string(latest.join("history.jsonl")).expect("history");
    h.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["process"] == "nemesis" && e["value"]["fault"] == fault)
        .count()
}

/// Every saga step (and restocks and top-ups) completed `ok` in each
/// 10 s window of the main phase (`secs` long); the counts per window are
/// printed, so a failure shows which step went idle when.
fn every_step_in_every_window(steps: &Value, secs: f64) {
    assert_eq!(steps["window_s"], 10, "{steps}");
    assert_eq!(steps["main_phase_s"].as_f64(), Some(secs), "{steps}");
    let windows = (secs / 10.0).ceil() as usize;
    for name in [
        "order",
        "reserve-credit",
        "book-stock",
        "ship",
        "restock",
        "top-up",
    ] {
        let row = steps["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == name))
            .unwrap_or_else(|| panic!("no row {name}: {steps}"));
        println!(
            "{name}: ok {} fail {} info {}",
            row["ok"], row["fail"], row["info"]
        );
        for w in 0..windows {
            let ok = row["ok"][w].as_u64().unwrap_or(0);
            assert!(
                ok > 0,
                "{name} had no ok in window {w} ({}–{} s): {row}",
                w * 10,
                w * 10 + 10
            );
        }
    }
}

#[test]
fn sagas_valid_under_kills_and_partitions_and_a_double_refund_caught() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("saga", 25, 3);
    let store = TmpStore::new("saga");
    let r = Run {
        lab: &lab,
        bin,
        store: store.s(),
    };
    let latest = store.0.join("saga-saga/latest");

    // (a) orchestrated, issue #24's mix: no step goes idle.
    let mix = "partition,kill,pause,clock,kill-leader,isolate-leader,pause-leader";
    let o = r.go_for(mix, "2", "20", "orchestrated", "3", None, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let results = read_json(&latest.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    let stats = &results["stats"];
    assert!(stats["committed"].as_u64() > Some(20), "{stats}");
    assert!(
        stats["compensated_after_effects"].as_u64() > Some(5),
        "{stats}"
    );
    assert!(stats["restocks_applied"].as_u64() > Some(0), "{stats}");
    assert!(stats["top_ups_applied"].as_u64() > Some(0), "{stats}");
    every_step_in_every_window(&results["steps"], 20.0);
    let kills = nemesis_events(&latest, "kill") + nemesis_events(&latest, "kill-leader");
    assert!(kills > 0, "no kill ran");
    let tj = read_json(&latest.join("test.json"));
    assert_eq!(tj["node"]["protocol"], "saga");
    let log = std::fs::read_to_string(latest.join("nodes/n1/node.log")).expect("n1's log");
    assert!(log.contains("saga: starting"), "{log}");

    // (b) choreographed, partitions.
    let o = r.go("partition", "choreographed", "4", None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let results = read_json(&latest.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    assert!(nemesis_events(&latest, "partition") > 0, "no partition ran");

    // (c) the double refund.
    let mut caught = None;
    // The double refund needs load: a refund is duplicated only when the
    // credit service answers slower than the orchestrator's 50 ms re-send.
    // Paced clients (issue #24) no longer load the lab by default, so this
    // run asks for 5,000 ops/s; seeds 1, 2 and 4 caught it here, 3 and 5
    // did not (2026-12-07).
    for seed in ["4", "1", "2"] {
        let o = r.go_with(
            "kill",
            "orchestrated",
            seed,
            Some("refund-without-key"),
            &["--rate", "5000"],
        );
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
        "refund-without-key was not caught in 3 runs"
    );
    let results = read_json(&latest.join("results.json"));
    assert_eq!(results["valid"], Value::Bool(false), "{results:#}");
    let types = results["anomaly_types"].to_string();
    assert!(types.contains("double-compensation"), "{types}");
}

/// (d) above, in its own lab (flbr31: issue #8's second session).
#[test]
fn saga_send_before_log_caught_by_killing_the_orchestrator() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("sagaw", 31, 3);
    let store = TmpStore::new("sagaw");
    let r = Run {
        lab: &lab,
        bin,
        store: store.s(),
    };
    let latest = store.0.join("saga-saga/latest");
    let mut caught = None;
    // Paced clients (issue #24) leave few sagas between step 0 and its
    // answer when the orchestrator dies: CI (2026-12-07) saw seeds 1 and 2
    // valid at the default 200 ops/s. At 5,000 ops/s some always are.
    let mut tried = 0;
    for seed in ["1", "2", "3"] {
        tried += 1;
        let more = ["--op-timeout", "1", "--rate", "5000"];
        let o = r.go_with(
            "kill-leader",
            "orchestrated",
            seed,
            Some("send-before-log"),
            &more,
        );
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
        "send-before-log was not caught in {tried} runs"
    );
    println!("send-before-log caught at seed {caught:?} ({tried} of 3 runs)");
    let results = read_json(&latest.join("results.json"));
    let types = results["anomaly_types"].to_string();
    assert!(types.contains("lost-saga"), "{types}");
    assert!(
        nemesis_events(&latest, "kill-leader") > 0,
        "no kill-leader ran"
    );
    // The control: the correct build on the catching seed, same schedule
    // and options, is valid — the lost saga is the bug's, not the load's.
    let seed = caught.unwrap_or("1");
    let o = r.go_with(
        "kill-leader",
        "orchestrated",
        seed,
        None,
        &["--op-timeout", "1", "--rate", "5000"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "correct build, seed {seed}: {}",
        text(&o)
    );
}
