//! Chain replication (`faultline-node chain`) end to end on a 3-node lab
//! (bridge flbr32, 10.77.32.0/24), with the target's master reconfiguring
//! the chain every 500 ms and before each heal:
//! (a) the correct build stays linearizable (register) while the nemesis
//!     kills and isolates the head and partitions the cluster, and the
//!     master removed and re-added members (new epochs, in the history);
//! (b) the seeded bug `ack-at-head` under `isolate-leader` (list-append):
//!     the cut-off head acknowledges appends only it has, the master
//!     replaces it, and the checker reports the lost appends;
//!
//! (b) allows 3 runs (docs/chain.md has the measured rates; `no-fencing`
//! is not checked here: since the last core fix its lab exposure is
//! unmeasured, 0 of 2 runs).
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
    workload: &str,
    nemesis: &str,
    seed: &str,
    extra: &[&str],
) -> (i32, String) {
    let t0 = Instant::now();
    let mut args = vec!["test", "--target", "chain"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--workload",
        workload,
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        "3",
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
    ]);
    let o = faultline(&args);
    println!(
        "chain {workload} {nemesis} {extra:?} seed {seed}: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    (o.status.code().unwrap_or(-1), text(&o))
}

/// The reconfigurations the nemesis' heals report in the history.
fn reconfigurations(run: &Path) -> Vec<Value> {
    history_lines(&run.join("history.jsonl"))
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .filter_map(|e| e["value"].get("failover").cloned())
        .filter(|f| f["chain"].is_array())
        .collect()
}

/// Up to `tries` runs of a seeded bug; true once one is invalid.
fn caught(
    bin: &str,
    lab: &Lab,
    store: &str,
    bug: &str,
    (workload, nemesis): (&str, &str),
    tries: usize,
) -> bool {
    let latest = Path::new(store).join(format!("chain-{workload}/latest"));
    for seed in ["1", "2", "3"].iter().take(tries) {
        let (code, out) = run(bin, lab, store, workload, nemesis, seed, &["--bug", bug]);
        assert!(code == 0 || code == 1, "{out}");
        let results = read_json(&latest.join("results.json"));
        if results["valid"] == Value::Bool(false) {
            assert_eq!(code, 1, "{out}");
            return true;
        }
    }
    false
}

#[test]
fn correct_chain_is_linearizable_and_seeded_bugs_are_caught() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("chain", 32, 3);
    let store = TmpStore::new("chain");
    let latest = store.0.join("chain-register/latest");

    // (a) the correct build under head kills, head isolations, partitions.
    let (code, out) = run(
        bin,
        &lab,
        store.s(),
        "register",
        "kill-leader,isolate-leader,partition",
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
    let r = reconfigurations(&latest);
    assert!(
        r.iter().any(|f| f["epoch"].as_u64().unwrap_or(0) > 1),
        "no reconfiguration reported at a heal: {r:?}"
    );

    // (b): a seeded bug. list-append, not register: a lost append is missing
    // from every later read of its key, where a lost register write is
    // hidden by the next write (register caught it in 0 of 2 runs on the CI
    // runner, 1 to 5 keys per run here).
    assert!(
        caught(
            bin,
            &lab,
            store.s(),
            "ack-at-head",
            ("list-append", "isolate-leader"),
            3
        ),
        "ack-at-head was not caught in 3 runs"
    );
}
