//! The exec target (bring-your-own client, docs/exec.md) end to end: etcd
//! deployed by the example hooks file (examples/exec/etcd.toml) and driven
//! by the example Python client (examples/exec/etcd_client.py), in a
//! dedicated lab (bridge flbr13, 10.77.13.0/24), against the built-in etcd
//! target on the same workload and seed:
//! (a) register without faults and (b) under partitions: valid for both;
//! (d) the shell+curl example client: valid.
//! (Serializable reads, `--serializable`, were not made invalid reliably in
//! a short run, by the built-in target either: not asserted here.)
//! Without a lab: flag errors exit 64 naming the flag, the file or the line.
//! The protocol's error paths (a client that dies, one that prints garbage,
//! one that is silent) are unit tests in targets/src/exec.rs.
//!
//! Skips (a failure under CI=true) without root, sshd, etcd, python3, curl or jq.

mod common;

use common::{Lab, TmpStore, faultline, read_json, text};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/exec");

/// One `faultline test` run; returns (exit code, results.json).
fn run(lab: &Lab, store: &TmpStore, label: &str, target: &[&str], extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["test"];
    args.extend(target);
    args.extend(["--workload", "register", "--seed", "13", "--rate", "100"]);
    args.extend(extra);
    args.extend(["--lab-dir", &lab.dir, "--store", store.s()]);
    let t0 = Instant::now();
    let o = faultline(&args);
    println!("{label}: {:.1} s\n{}", t0.elapsed().as_secs_f64(), text(&o));
    let name = if target.contains(&"exec") {
        "exec-register"
    } else {
        "etcd-register"
    };
    let results = read_json(&store.0.join(name).join("latest/results.json"));
    let run = &results["run"];
    println!(
        "{label}: valid={} ok={} fail={} info={} anomalies={}",
        results["valid"], run["ok"], run["fail"], run["info"], results["anomaly_types"]
    );
    (o.status.code().unwrap_or(-1), results)
}

#[test]
fn exec_target_agrees_with_the_builtin_etcd_target() {
    if common::skip_lab(&[
        ("etcd", "etcd-server"),
        ("python3", "python3"),
        ("curl", "curl"),
        ("jq", "jq"),
    ]) {
        return;
    }
    let t_all = Instant::now();
    let lab = Lab::up("exec", 13, 3);
    let store = TmpStore::new("exec");
    let hooks = format!("{EXAMPLES}/etcd.toml");
    // Not a version manager's shim (pyenv's costs a second per start on a
    // loaded box, and a client's start counts against its first op).
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let py = format!("{python} {EXAMPLES}/etcd_client.py");
    let sh = format!("sh {EXAMPLES}/etcd_client.sh");
    let exec = |cmd: &str| -> Vec<String> {
        [
            "--target",
            "exec",
            "--db-hooks",
            &hooks,
            "--client-cmd",
            cmd,
        ]
        .map(String::from)
        .to_vec()
    };
    let etcd = ["--target", "etcd"];
    let exec_py = exec(&py);
    let exec_py: Vec<&str> = exec_py.iter().map(String::as_str).collect();

    // (a) no faults, (b) partitions: valid for both.
    let calm = ["--nemesis", "none", "--time-limit", "6"];
    let parts = [
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "12",
    ];
    for (label, extra) in [("(a) calm", &calm[..]), ("(b) partition", &parts[..])] {
        let (b, rb) = run(&lab, &store, &format!("{label} etcd"), &etcd, extra);
        let (e, re) = run(&lab, &store, &format!("{label} exec"), &exec_py, extra);
        assert_eq!((b, e), (0, 0), "{label}: built-in {b}, exec {e}");
        assert_eq!(rb["valid"], re["valid"]);
        // The exec client did real work, not a run of failures.
        assert!(re["run"]["ok"].as_u64().unwrap_or(0) > 100, "{re:#}");
        let h = std::fs::read_to_string(store.0.join("exec-register/latest/history.jsonl"))
            .expect("history");
        assert!(h.contains(r#""f":"cas""#) && h.contains(r#""type":"ok""#));
        // The hooks' log file was fetched, and test.json records the hooks.
        let latest = store.0.join("exec-register/latest");
        assert!(latest.join("nodes/n1/etcd.log").exists());
        let tj = read_json(&latest.join("test.json"));
        assert_eq!(tj["exec"]["client_cmd"], py.as_str(), "{tj:#}");
        assert!(tj["exec"]["hooks"]["start"].is_string());
    }
    // Torn down by the stop hook: no etcd running, its directory gone.
    lab.assert_no_process("", "etcd");
    lab.assert_no_file("", "/opt/etcd");

    // (d) the shell client.
    let exec_sh = exec(&sh);
    let exec_sh: Vec<&str> = exec_sh.iter().map(String::as_str).collect();
    let (s, rs) = run(&lab, &store, "(d) shell", &exec_sh, &calm);
    assert_eq!(s, 0, "{rs:#}");
    // A shell client forks curl and jq several times per operation: on a
    // loaded 2-core runner it managed 13 in a 10 s run, so ask for a few.
    assert!(rs["run"]["ok"].as_u64().unwrap_or(0) >= 5, "{rs:#}");
    println!("e2e_exec: {:.1} s in all", t_all.elapsed().as_secs_f64());
}

#[test]
fn exec_flags_are_checked_before_any_node_is_touched() {
    let nolab = ["--lab-dir", "/nonexistent-faultline-lab"];
    let run = |args: &[&str]| {
        let mut v = vec!["test"];
        v.extend(args);
        v.extend(nolab);
        faultline(&v)
    };
    // A flag of the exec target on another target.
    let o = run(&["--target", "etcd", "--client-cmd", "x"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("--client-cmd is an option of the exec target"));
    // No client command.
    let o = run(&["--target", "exec"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("--client-cmd"), "{}", text(&o));
    // A hooks file with a typo names the file, the line and the key.
    let dir = std::env::temp_dir().join(format!("fl-exec-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nstrat = \"run\"\n").expect("write");
    let o = run(&[
        "--target",
        "exec",
        "--client-cmd",
        "true",
        "--db-hooks",
        bad.to_str().expect("utf-8"),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(64), "{t}");
    assert!(
        t.contains("bad.toml") && t.contains("line 2") && t.contains("strat"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
