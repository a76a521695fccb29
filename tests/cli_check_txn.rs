//! `faultline check` on transactional histories with Elle's options
//! (issue #16): `--anomalies`, `--sequential-keys`, `--no-wfr-keys`, and
//! the verdicts the issue pinned (repeatable read, duplicate appends).
//! Fixtures: checker/tests/data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("checker/tests/data")
        .join(name)
}

/// Runs `faultline check --json ARGS FILE`: exit code and the JSON line.
fn check(args: &[&str], file: &str) -> (i32, serde_json::Value, Output) {
    let f = data(file);
    let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .arg("--json")
        .args(args)
        .arg(&f)
        .output()
        .expect("run faultline");
    let code = o.status.code().expect("exit code");
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (code, v, o)
}

fn types(v: &serde_json::Value) -> Vec<&str> {
    v["anomaly_types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect()
}

#[test]
fn anomalies_flag_checks_exactly_those() {
    let la = ["--model", "list-append"];
    let (code, v, o) = check(
        &[&la[..], &["--anomalies", "G0,G1c"]].concat(),
        "g-single-item.jsonl",
    );
    assert_eq!(code, 0, "{v} {o:?}");
    // G-single-item implies G2-item, so asking for G2-item catches it.
    let (code, v, _) = check(
        &[&la[..], &["--anomalies", "G2-item"]].concat(),
        "g-single-item.jsonl",
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(types(&v), ["G-single-item"]);
    assert_eq!(v["checked_anomalies"], serde_json::json!(["G2-item"]));
    let (code, _, o) = check(
        &[&la[..], &["--anomalies", "G3"]].concat(),
        "g-single-item.jsonl",
    );
    assert_eq!(code, 64);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--anomalies") && err.contains("G3"), "{err}");
}

#[test]
fn issue16_repeatable_read_fails_on_g_single_item() {
    let args = [
        "--model",
        "list-append",
        "--consistency-models",
        "repeatable-read",
    ];
    let (code, v, _) = check(&args, "g-single-item.jsonl");
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        v["not"],
        serde_json::json!(["consistent-view", "repeatable-read"])
    );
}

#[test]
fn issue16_duplicate_appends_are_unknown() {
    let (code, v, _) = check(&["--model", "list-append"], "duplicate-appends.jsonl");
    assert_eq!(code, 2, "{v}");
    assert_eq!(types(&v), ["duplicate-appends"]);
}

#[test]
fn no_wfr_keys_flag() {
    let rw = [
        "--model",
        "rw-register",
        "--consistency-models",
        "serializable",
    ];
    let (code, v, _) = check(&rw, "rw-wfr.jsonl");
    assert_eq!((code, types(&v)), (1, vec!["G-single-item"]), "{v}");
    let (code, v, _) = check(&[&rw[..], &["--no-wfr-keys"]].concat(), "rw-wfr.jsonl");
    assert_eq!(code, 0, "{v}");
}

#[test]
fn sequential_keys_flag() {
    let rw = [
        "--model",
        "rw-register",
        "--consistency-models",
        "serializable",
    ];
    let (code, v, _) = check(&rw, "rw-sequential-keys.jsonl");
    assert_eq!(code, 0, "{v}");
    let (code, v, _) = check(
        &[&rw[..], &["--sequential-keys"]].concat(),
        "rw-sequential-keys.jsonl",
    );
    assert_eq!((code, types(&v)), (1, vec!["G-single-item"]), "{v}");
}
