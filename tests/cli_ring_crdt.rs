//! Issue #7 through the real binary: `faultline ring` and the CRDT checks
//! of `faultline check` (exit codes per DESIGN.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

fn show(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn ring_json_reports_moves_near_the_ideal_and_none_between_survivors() {
    let o = faultline(&[
        "ring", "--nodes", "8", "--vnodes", "64", "--keys", "50000", "--trials", "4", "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["moved_between_others"], 0, "{v}");
    let add = v["moved_on_add"]["mean"].as_f64().unwrap();
    assert!((add - 1.0 / 9.0).abs() < 0.03, "{v}");
    assert_eq!(v["moved_on_add"]["expected"].as_f64(), Some(1.0 / 9.0));
    let text = faultline(&["ring", "--nodes", "8", "--vnodes", "64", "--keys", "50000"]);
    assert!(show(&text).contains("moved on remove"), "{}", show(&text));
}

#[test]
fn ring_bounded_load_caps_the_maximum() {
    let o = faultline(&[
        "ring",
        "--nodes",
        "10",
        "--vnodes",
        "1",
        "--keys",
        "100000",
        "--trials",
        "3",
        "--bounded-load",
        "1.25",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["max_over_mean"]["max"].as_f64().unwrap() <= 1.25, "{v}");
    assert_eq!(v["load_cap"].as_f64(), Some(1.25));
}

#[test]
fn ring_bad_arguments_exit_64_with_the_flag_named() {
    for (args, flag) in [
        (&["ring", "--nodes", "1"][..], "--nodes"),
        (&["ring", "--bounded-load", "0.5"], "--bounded-load"),
        (&["ring", "--bounded-load", "NaN"], "--bounded-load"),
        (&["ring", "--vnodes", "0"], "--vnodes"),
        (&["ring", "--keys", "many"], "--keys"),
    ] {
        let o = faultline(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", show(&o));
        assert!(show(&o).contains(flag), "{args:?}: {}", show(&o));
    }
}

/// Each CRDT check: a minimal invalid history and its valid near-twin
/// (one read's value differs).
#[test]
fn crdt_models_valid_twin_and_invalid_history() {
    for (model, anomaly) in [("crdt-convergence", "divergent"), ("or-set", "lost")] {
        let ok = data(&format!("{model}-ok.jsonl"));
        let o = faultline(&["check", "--model", model, ok.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{model}: {}", show(&o));
        let bad = data(&format!("{model}-bad.jsonl"));
        let o = faultline(&["check", "--json", "--model", model, bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{model}: {}", show(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["model"], model, "{v}");
        assert_eq!(v["anomaly_types"][0], anomaly, "{v}");
        assert!(v["anomalies"][anomaly][0]["explanation"].is_string(), "{v}");
    }
}

#[test]
fn convergence_with_one_final_read_is_unknown() {
    // The or-set history has one final read, from n1 only.
    let f = data("or-set-ok.jsonl");
    let o = faultline(&["check", "--model", "crdt-convergence", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(show(&o).contains("1 node"), "{}", show(&o));
}
