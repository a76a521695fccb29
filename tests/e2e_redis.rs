//! Redis end to end (docs/redis.md), in a dedicated lab (bridge flbr14,
//! 10.77.14.0/24) of two nodes: n1 the primary, n2 its replica.
//!
//! (a) Without WAIT, with `failover=true`, under partitions: the
//! partitioned primary keeps acknowledging adds that never reach the
//! replica; before the heal the replica is promoted and the old primary is
//! made its replica, so it drops them. The set checker must name those
//! lost elements, each acknowledged while a partition was in force.
//! With two nodes every partition shape but one-way cuts the primary off
//! its replica, so over four partitions a failover is all but certain.
//! (b) The same with `--redis-wait 1`: the adds the replica never got are
//! `info`, not acknowledged, so nothing acknowledged is lost: valid.
//!
//! Skips (a failure under CI=true) without root, sshd or redis-server.

mod common;

use common::{Lab, TmpStore, faultline, history_lines, read_json, text};
use serde_json::Value;
use std::time::Instant;

fn run(lab: &Lab, store: &TmpStore, label: &str, extra: &[&str]) -> (i32, Value, Vec<Value>) {
    let mut args = vec![
        "test",
        "--target",
        "redis",
        "--node-count",
        "2",
        "--workload",
        "set",
        "--db-option",
        "failover=true",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "4",
        "--time-limit",
        "18",
        "--rate",
        "200",
        "--op-timeout",
        "2",
        "--seed",
        "14",
        "--lab-dir",
        &lab.dir,
        "--store",
        store.s(),
    ];
    args.extend(extra);
    let t0 = Instant::now();
    let o = faultline(&args);
    println!("{label}: {:.1} s\n{}", t0.elapsed().as_secs_f64(), text(&o));
    let latest = store.0.join("redis-set/latest");
    let results = read_json(&latest.join("results.json"));
    println!("{label}: stats {} run {}", results["stats"], results["run"]);
    let h = history_lines(&latest.join("history.jsonl"));
    (o.status.code().unwrap_or(-1), results, h)
}

/// Nemesis heals that promoted a replica.
fn failovers(h: &[Value]) -> Vec<&Value> {
    h.iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == "heal")
        .filter(|e| e["value"]["failover"].is_object())
        .collect()
}

#[test]
fn redis_failover_loses_acknowledged_writes_unless_wait() {
    if common::skip_lab(&[("redis-server", "redis-server")]) {
        return;
    }
    let t_all = Instant::now();
    let lab = Lab::up("redis", 14, 2);
    let store = TmpStore::new("redis");

    // (a) no WAIT: acknowledged adds lost, named by the set checker.
    let (code, results, h) = run(&lab, &store, "(a) no WAIT", &[]);
    let promoted = failovers(&h);
    assert!(
        !promoted.is_empty(),
        "no failover happened: no partition cut the primary off"
    );
    println!("failovers: {promoted:?}");
    assert_eq!(code, 1, "{results:#}");
    assert_eq!(results["valid"], Value::Bool(false));
    assert!(
        results["anomaly_types"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t == "lost")),
        "{results:#}"
    );
    let lost = results["anomalies"]["lost"][0]["elements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!lost.is_empty(), "{results:#}");
    assert!(
        results["anomalies"]["lost"][0]["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("acknowledged add")),
        "{results:#}"
    );
    // Each lost element was acknowledged (an ok add, not info) while a
    // fault was in force: between a nemesis start and the heal after it.
    let mut fault_on = false;
    let mut acked_in_fault = std::collections::BTreeSet::new();
    for e in &h {
        if e["process"] == "nemesis" && e["value"].is_object() {
            fault_on = e["f"] == "start";
        } else if e["f"] == "add" && e["type"] == "ok" && fault_on {
            acked_in_fault.insert(e["value"].to_string());
        }
    }
    for l in &lost {
        // The checker names elements as text.
        let key = l
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| l.to_string());
        assert!(
            acked_in_fault.contains(&key),
            "lost element {key} was not acknowledged during a fault"
        );
    }
    println!(
        "(a) {} lost of {} acknowledged adds",
        results["stats"]["lost"], results["stats"]["ok_adds"]
    );

    // (b) WAIT 1: what the replica never got is info: nothing acknowledged
    // is lost.
    let (code, results, h) = run(&lab, &store, "(b) WAIT 1", &["--redis-wait", "1"]);
    assert!(!failovers(&h).is_empty(), "no failover happened");
    assert_eq!(code, 0, "{results:#}");
    assert_eq!(results["stats"]["lost"], 0, "{results:#}");
    assert!(
        h.iter()
            .any(|e| e["type"] == "info"
                && e["error"].as_str().is_some_and(|s| s.contains("WAIT 1"))),
        "no add was left unknown by WAIT"
    );
    // Torn down.
    lab.assert_no_process("", "redis-server");
    println!("e2e_redis: {:.1} s in all", t_all.elapsed().as_secs_f64());
}
