//! Issue #16 through the real binary: a non-linearizable key is explained
//! by its minimal counterexample first (text, JSON, HTML), and a history
//! with no completed operation is valid with a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("run faultline")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn c10_bad() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/porcupine/test_data/kv/c10-bad.txt")
}

/// c10-bad key "5": the search's witness blames an append (legal in every
/// kv state); the real culprit is a stale get. Process 3's get returned at
/// line 519 having seen more appends than process 7's get, invoked at line
/// 524, returned.
#[test]
fn c10_bad_key_5_is_explained_by_the_stale_get() {
    let f = c10_bad();
    let f = f.to_str().unwrap();

    let o = faultline(&["check", f]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.contains("Key \"5\": a minimal counterexample"))
        .unwrap_or_else(|| panic!("no minimal counterexample for key 5: {text}"));
    assert!(line.contains("has 2 operation(s)"), "{line}");
    assert!(line.contains("Stale get"), "{line}");
    assert!(line.contains("process 3's get [1]"), "{line}");
    assert!(
        line.contains("at line 519 before process 7's get [2] was invoked at line 524"),
        "{line}"
    );
    // It leads: the minimal explanation comes before the search's detail.
    let min_at = text.find("Key \"5\": a minimal").unwrap();
    let detail_at = text.find("Search detail: Key \"5\"").unwrap();
    assert!(min_at < detail_at, "{text}");

    let o = faultline(&["check", "--json", f]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let a = v["anomalies"]["nonlinearizable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "5")
        .expect("key 5 anomaly");
    assert_eq!(a["minimal_complete"], serde_json::json!(true));
    let m = a["minimal"].as_array().unwrap();
    assert!(m.len() <= 4, "{m:?}");
    let named: Vec<(i64, &str, i64, i64)> = m
        .iter()
        .map(|o| {
            (
                o["process"].as_i64().unwrap(),
                o["f"].as_str().unwrap(),
                o["line"].as_i64().unwrap(),
                o["returned_line"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(named, vec![(3, "get", 512, 519), (7, "get", 524, 547)]);
    assert!(m.iter().all(|o| o["index"].is_u64()));
    assert!(
        a["minimal_explanation"]
            .as_str()
            .unwrap()
            .contains("Stale get")
    );

    let dir = std::env::temp_dir().join(format!("faultline-min-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("why.html");
    let o = faultline(&["check", "--html", out.to_str().unwrap(), f]);
    assert_eq!(o.status.code(), Some(1));
    let html = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // Key 5's tab of the failure viewer.
    let section = html
        .split("<div class=\"keyview\"")
        .find(|v| v.contains("Key &quot;5&quot;: a minimal counterexample"))
        .expect("key 5's tab");
    let why = section
        .find("Stale get")
        .expect("stale get in key 5's section");
    let prefix = section
        .find("is not linearizable. The longest")
        .expect("search witness");
    assert!(why < prefix, "minimal explanation leads");
    assert!(section.contains("class=\"op min"), "minimal ops drawn");
    assert!(
        section.contains(">[1] ") && section.contains(">[2] "),
        "numbered as the prose"
    );
}

/// Every op failed: before issue #16 this was `unknown`, exit 2.
#[test]
fn all_failed_history_is_valid_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("faultline-zero-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("all-failed.jsonl");
    std::fs::write(
        &f,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[1,2]}\n\
         {\"process\":0,\"type\":\"fail\",\"f\":\"cas\",\"value\":[1,2]}\n\
         {\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":3}\n\
         {\"process\":1,\"type\":\"fail\",\"f\":\"write\",\"value\":3}\n",
    )
    .unwrap();
    let f = f.to_str().unwrap();
    let o = faultline(&["check", "--model", "cas-register", f]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("warning: no operation completed"),
        "{}",
        stdout(&o)
    );
    let o = faultline(&["check", "--json", "--model", "cas-register", f]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["valid"], serde_json::json!(true));
    assert_eq!(v["warnings"], serde_json::json!(["no-completed-ops"]));
    let _ = std::fs::remove_dir_all(&dir);
}
