//! The run store on a real filesystem.

use faultline_checker::{Event, EventType, Process, Verdict};
use faultline_results::store::{self, RunDir, Store, StoreError};
use serde_json::{Value, json};
use std::fs;

fn ev(p: Process, kind: EventType, f: &str, value: Value, time: u64) -> Event {
    Event {
        index: Default::default(),
        time: Some(time),
        process: p,
        kind,
        f: f.into(),
        key: None,
        value,
        node: Some("n2".into()),
        error: None,
        line: 0,
    }
}

#[test]
fn layout_latest_and_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path().join("store"));
    assert!(store.runs().unwrap().is_empty(), "missing root is empty");

    let opts = json!({"seed": 42, "nodes": ["n1", "n2"], "time_limit_s": 30});
    let a = store.create_run("etcd-register", &opts).unwrap();
    let b = store.create_run("etcd-register", &opts).unwrap();
    assert_ne!(
        a.path(),
        b.path(),
        "two runs in one millisecond get two dirs"
    );
    assert_eq!(
        a.path().parent().unwrap(),
        tmp.path().join("store/etcd-register")
    );
    assert_eq!(a.read_test_json().unwrap(), opts);

    // latest points at the newest run, by a relative link
    let latest = tmp.path().join("store/etcd-register/latest");
    let target = fs::read_link(&latest).unwrap();
    assert!(target.is_relative());
    assert_eq!(target.to_str().unwrap(), b.time());
    assert_eq!(
        fs::canonicalize(&latest).unwrap(),
        fs::canonicalize(b.path()).unwrap()
    );
    // no temporary links left behind
    let leftovers: Vec<_> = fs::read_dir(tmp.path().join("store/etcd-register"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());

    a.write_results(&json!({"valid": false, "anomaly_types": ["G1c"]}))
        .unwrap();
    let node = a.node_dir("n1").unwrap();
    assert!(node.ends_with("nodes/n1") && node.is_dir());
    assert!(matches!(
        a.node_dir("../n1"),
        Err(StoreError::InvalidName { .. })
    ));

    let c = store.create_run("raft", &json!({})).unwrap();
    c.write_results(&json!({"valid": "unknown"})).unwrap();

    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].test, "etcd-register");
    assert_eq!(runs[0].time, a.time());
    assert_eq!(runs[0].verdict, Some(Verdict::Invalid));
    assert_eq!(runs[1].time, b.time());
    assert_eq!(runs[1].verdict, None, "no results.json yet");
    assert_eq!(runs[2].test, "raft");
    assert_eq!(runs[2].verdict, Some(Verdict::Unknown));

    // faultline check RUN_DIR, also through latest
    let opened = RunDir::open(&latest).unwrap();
    assert_eq!(opened.test_name(), "etcd-register");
    assert_eq!(opened.time(), b.time());
}

#[test]
fn bad_test_names_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path());
    for bad in ["../escape", "a/b", "..", "", "latest"] {
        match store.create_run(bad, &json!({})) {
            Err(StoreError::InvalidName { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn killed_writer_leaves_a_readable_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let run = Store::new(tmp.path()).create_run("t", &json!({})).unwrap();
    let mut w = run.history_writer().unwrap();
    w.write(&ev(
        Process::Client(3),
        EventType::Invoke,
        "write",
        json!(2),
        1_234_567,
    ))
    .unwrap();
    let mut done = ev(
        Process::Client(3),
        EventType::Ok,
        "write",
        json!(2),
        1_299_000,
    );
    done.key = Some(Box::new(json!("x")));
    w.write(&done).unwrap();
    let mut nem = ev(
        Process::Nemesis,
        EventType::Info,
        "start-partition",
        json!({"n1": ["n2"]}),
        1_300_000,
    );
    nem.node = None;
    nem.error = Some(Box::new(json!("partial")));
    w.write(&nem).unwrap();
    // Read while the writer is still open, then drop it without close(): as
    // if the controller were killed.
    let text = fs::read_to_string(run.file(store::HISTORY_JSONL)).unwrap();
    drop(w);
    assert_eq!(
        fs::read_to_string(run.file(store::HISTORY_JSONL)).unwrap(),
        text,
        "nothing was held back for close()"
    );

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        r#"{"index":0,"time":1234567,"process":3,"type":"invoke","f":"write","value":2,"node":"n2"}"#
    );
    let l1: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(l1["index"], 1);
    assert_eq!(l1["key"], "x");
    assert_eq!(l1["type"], "ok");
    let l2: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(l2["process"], "nemesis");
    assert_eq!(l2["error"], "partial");
    assert!(l2.get("node").is_none());
}
