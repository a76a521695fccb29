//! Issue #24's short CI version of the correct-builds campaign
//! (docs/campaign-correct-builds.md): every faultline-node target, run as a
//! new user would with no flags but the lab's (issue #18's defaults: the
//! target's own workload under its standard fault mix), for 6 s at a 1 s
//! nemesis interval, must be `valid` (exit 0). One 3-node lab on flbr90.
//! The long version (60 s, seeds 1–3, 3 and 5 nodes) is the documented
//! campaign, not a test.
//!
//! Skips (a failure under CI=true) without root or sshd.

mod common;

use common::{Lab, TmpStore, faultline, node_binary, read_json, text};
use std::time::Instant;

/// The bundled targets (faultline-node protocols); the external stores
/// have their own e2e tests under faults.
const TARGETS: [&str; 13] = [
    "raft", "paxos", "zab", "single", "pb", "chain", "twopc", "saga", "crdt", "dynamo", "lock",
    "elect", "swim",
];

#[test]
fn every_correct_build_is_valid_under_its_default_mix() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let bin = bin.to_str().expect("utf-8 path");
    let lab = Lab::up("mix", 90, 3);
    let store = TmpStore::new("mix");
    let mut bad = Vec::new();
    for target in TARGETS {
        let t0 = Instant::now();
        let o = faultline(&[
            "test",
            "--target",
            target,
            "--nemesis-interval",
            "1",
            "--time-limit",
            "6",
            "--seed",
            "1",
            "--node-binary",
            bin,
            "--lab-dir",
            &lab.dir,
            "--store",
            store.s(),
        ]);
        println!(
            "{target}: exit {:?} in {:.1} s\n{}",
            o.status.code(),
            t0.elapsed().as_secs_f64(),
            text(&o)
        );
        if o.status.code() != Some(0) {
            bad.push(format!("{target}: exit {:?}", o.status.code()));
            continue;
        }
        // The defaults really injected faults: the mix is not `none`.
        let runs = std::fs::read_dir(store.0.as_path())
            .expect("store")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{target}-"))
            })
            .map(|e| e.path().join("latest"))
            .collect::<Vec<_>>();
        let latest = runs.first().expect("a run dir");
        let tj = read_json(&latest.join("test.json"));
        let kinds = tj["nemesis"].as_array().map_or(0, Vec::len);
        assert!(kinds >= 5, "{target}: default mix {}", tj["nemesis"]);
    }
    assert!(bad.is_empty(), "not valid: {bad:?}");
}
