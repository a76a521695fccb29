//! Issue #22 through the real binary: `faultline check --spectrum` places
//! histories on the spectrum (text and JSON), skipping models implied by
//! one that holds, on hand-made litmus files and on the Porcupine corpus.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

fn spectrum(file: &str, model: &str) -> (Option<i32>, Value) {
    let o = faultline(&["check", "--spectrum", "--json", "--model", model, file]);
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{file}: {e}: {out} {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

fn rung<'a>(v: &'a Value, model: &str) -> &'a Value {
    v["spectrum"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["model"] == model))
        .unwrap_or_else(|| panic!("no {model} in {v}"))
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

/// Dekker's store buffer (Lamport 1979): each key alone is sequential, the
/// whole is not; no read observed a write, so it is causal.
#[test]
fn store_buffer_is_causal_not_sequential() {
    let (code, v) = spectrum(&data("sc-store-buffer.jsonl"), "register");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["strongest"], "causal", "{v}");
    let sc = rung(&v, "sequential");
    assert_eq!(sc["valid"], false);
    assert_eq!(sc["witness"].as_array().map(Vec::len), Some(4), "{sc}");
    assert_eq!(rung(&v, "causal")["implied_by"], Value::Null);
    assert_eq!(rung(&v, "PRAM")["implied_by"], "causal");
    assert_eq!(rung(&v, "PRAM")["valid"], true);
}

/// A stale read by another process: sequential, not linearizable; the
/// weaker models are implied, not checked.
#[test]
fn stale_read_is_sequential() {
    let (code, v) = spectrum(&data("sc-stale-read.jsonl"), "register");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["strongest"], "sequential", "{v}");
    assert_eq!(rung(&v, "linearizable")["valid"], false);
    assert_eq!(rung(&v, "causal")["implied_by"], "sequential");
    // Two replicas were not named: convergence is not judged.
    assert_eq!(rung(&v, "eventual")["valid"], "unknown");
}

/// Reading a value and then the older initial value: monotonic reads (and
/// so PRAM, causal, sequential) violated, the other guarantees hold.
#[test]
fn going_back_in_time_breaks_monotonic_reads() {
    let (_, v) = spectrum(&data("sc-monotonic-reads-bad.jsonl"), "register");
    for m in ["sequential", "causal", "PRAM", "monotonic-reads"] {
        assert_eq!(rung(&v, m)["valid"], false, "{m}: {v}");
    }
    for m in [
        "read-your-writes",
        "monotonic-writes",
        "writes-follow-reads",
    ] {
        assert_eq!(rung(&v, m)["valid"], true, "{m}: {v}");
    }
    assert_eq!(v["strongest"], "writes-follow-reads");
}

/// Porcupine's etcd logs: 002 is linearizable (everything implied); 000 is
/// not linearizable (as Porcupine says) but sequential: its anomalies are
/// stale reads.
#[test]
fn porcupine_etcd_corpus() {
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/porcupine/test_data/jepsen");
    let f = |n: &str| corpus.join(n).display().to_string();
    let (code, v) = spectrum(&f("etcd_002.log"), "cas-register");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["strongest"], "linearizable");
    assert_eq!(rung(&v, "sequential")["implied_by"], "linearizable");
    let (code, v) = spectrum(&f("etcd_000.log"), "cas-register");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["strongest"], "sequential", "{v}");
    assert_eq!(rung(&v, "sequential")["implied_by"], Value::Null);

    let o = faultline(&["check", "--spectrum", &f("etcd_000.log")]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("strongest model that holds: sequential"),
        "{text}"
    );
}
