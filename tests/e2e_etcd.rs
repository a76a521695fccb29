//! The main job end to end: `faultline test` against a real 3-member etcd
//! cluster in a dedicated lab (bridge flbr6, 10.77.6.0/24), with partitions,
//! kills and pauses, the store, the report and the exit codes:
//! (a) register under partition,kill,pause: valid, every store file;
//! (b) list-append: valid; (c) SIGINT mid-run: exit 2, healed, report;
//! (d) `--nemesis clock` refused (exit 64); (e) SIGKILLed controller: the
//! history is checkable and `nemesis heal --all` restarts the killed member.
//!
//! Skips (a failure under CI=true) without root, sshd or etcd. One lab serves every
//! step, run one after the other, so the 2-core box runs one cluster at a
//! time; the lab is torn down by a Drop guard.

mod common;

use common::{Lab, TmpStore, faultline, history_lines, read_json, text};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No FAULTLINE iptables chain on any node, no paused etcd, no state file.
fn assert_healed(lab: &Lab) {
    for (n, out) in lab.exec_ok("", "iptables -S") {
        assert!(!out.contains("FAULTLINE"), "{n} still has rules:\n{out}");
    }
    let status = lab.run_ok(&["nemesis", "status"]);
    let v: Value = serde_json::from_str(status.trim()).expect("status json");
    assert_eq!(v["faults"], serde_json::json!([]), "{status}");
}

#[test]
fn clock_nemesis_is_refused_for_etcd() {
    let o = faultline(&[
        "test",
        "--target",
        "etcd",
        "--workload",
        "register",
        "--nemesis",
        "partition,clock",
        "--lab-dir",
        "/nonexistent-faultline-lab",
    ]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Go") && err.contains("vDSO") && err.contains("libfaketime"),
        "{err}"
    );
}

#[test]
fn etcd_end_to_end() {
    if common::skip_lab(&[("etcd", "etcd-server")]) {
        return;
    }
    let t_all = Instant::now();
    let lab = Lab::up("e2e", 6, 3);
    let store = TmpStore::new("main");

    // (a) register under partition, kill, pause: valid, and every file.
    let t0 = Instant::now();
    let o = faultline(&[
        "test",
        "--target",
        "etcd",
        "--workload",
        "register",
        "--nemesis",
        "partition,kill,pause",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "20",
        "--rate",
        "100",
        "--seed",
        "42",
        "--lab-dir",
        &lab.dir,
        "--store",
        store.s(),
    ]);
    println!(
        "(a) register: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    let run = store.0.join("etcd-register/latest");
    let results = read_json(&run.join("results.json"));
    // Valid, not unknown: the point of the run is etcd's verdict.
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "test.json",
        "history.jsonl",
        "results.json",
        "report.html",
        "timeline.html",
        "latency-raw.png",
        "latency-quantiles.png",
        "rate.png",
        "nodes/n1/etcd.log",
        "nodes/n3/etcd.log",
    ] {
        assert!(run.join(f).exists(), "{f} missing in {}", run.display());
    }
    assert!(
        std::fs::symlink_metadata(store.0.join("etcd-register/latest"))
            .expect("latest")
            .file_type()
            .is_symlink()
    );
    let tj = read_json(&run.join("test.json"));
    assert_eq!(tj["seed"], 42);
    assert_eq!(
        tj["nemesis"],
        serde_json::json!(["partition", "kill", "pause"])
    );
    let h = history_lines(&run.join("history.jsonl"));
    let oks = h.iter().filter(|e| e["type"] == "ok").count();
    assert!(oks > 50, "only {oks} ok operations");
    let started: Vec<&Value> = h
        .iter()
        .filter(|e| {
            e["process"] == "nemesis" && e["f"] == "start" && e["value"]["fault"].is_string()
        })
        .collect();
    // Three starts (at 3, 9 and 15 s) from a shuffled bag: each kind once.
    let mut kinds: Vec<&str> = started
        .iter()
        .filter_map(|e| e["value"]["fault"].as_str())
        .collect();
    println!("faults: {kinds:?}");
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["kill", "partition", "pause"], "{started:?}");
    let hist = run.join("history.jsonl");
    // `faultline check` infers the model (cas-register per key) and agrees.
    let c = faultline(&["check", hist.to_str().expect("path")]);
    assert_eq!(c.status.code(), o.status.code(), "{}", text(&c));
    assert!(
        String::from_utf8_lossy(&c.stdout).contains("cas-register"),
        "{}",
        text(&c)
    );
    assert_healed(&lab);
    // Torn down: no etcd left on the nodes.
    lab.assert_no_process("", "etcd");

    // (b) list-append, short, no faults: valid.
    let t0 = Instant::now();
    let o = faultline(&[
        "test",
        "--target",
        "etcd",
        "--workload",
        "list-append",
        "--nemesis",
        "none",
        "--time-limit",
        "8",
        "--lab-dir",
        &lab.dir,
        "--store",
        store.s(),
    ]);
    println!(
        "(b) list-append: {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let results = read_json(&store.0.join("etcd-list-append/latest/results.json"));
    assert_eq!(results["valid"], Value::Bool(true));

    // (c) SIGINT mid-run: exit 2, healed, report written.
    let latest = store.0.join("etcd-register/latest");
    let prev = std::fs::read_link(&latest).ok();
    let t0 = Instant::now();
    let mut child = Command::new(common::BIN)
        .args([
            "test",
            "--target",
            "etcd",
            "--workload",
            "register",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "120",
            "--lab-dir",
            &lab.dir,
            "--store",
            store.s(),
            "--seed",
            "7",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let hist = latest.join("history.jsonl");
    // Wait for this run's first fault (and an ok operation).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new_run = std::fs::read_link(&latest).ok() != prev;
        let h = if new_run {
            history_lines(&hist)
        } else {
            Vec::new()
        };
        let started = h
            .iter()
            .filter(|e| e["process"] == "nemesis" && e["value"]["fault"].is_string())
            .count();
        if started >= 1 && h.iter().any(|e| e["type"] == "ok") {
            break;
        }
        assert!(Instant::now() < deadline, "no fault started within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = common::wait_timeout(&mut child, Duration::from_secs(90));
    let out = child.wait_with_output().expect("output");
    println!(
        "(c) SIGINT: {:.1} s\n{}\n{}",
        t0.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(2));
    assert!(store.0.join("etcd-register/latest/report.html").exists());
    let results = read_json(&store.0.join("etcd-register/latest/results.json"));
    assert_eq!(results["run"]["interrupted"], true);
    assert_healed(&lab);

    // (e) SIGKILL of the controller during a kill fault: the flushed history
    // is checkable, and `nemesis heal --all` restarts the killed member.
    let prev = std::fs::read_link(&latest).ok();
    let mut child = Command::new(common::BIN)
        .args([
            "test",
            "--target",
            "etcd",
            "--workload",
            "register",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "120",
            "--lab-dir",
            &lab.dir,
            "--store",
            store.s(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        let new_run = std::fs::read_link(&latest).ok() != prev;
        let h = if new_run {
            history_lines(&hist)
        } else {
            Vec::new()
        };
        if let Some(e) = h.iter().find(|e| e["value"]["fault"] == "kill") {
            break e["value"]["node"].as_str().expect("node").to_string();
        }
        assert!(Instant::now() < deadline, "no kill within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().expect("SIGKILL the controller");
    let _ = child.wait();
    let c = faultline(&[
        "check",
        "--model",
        "cas-register",
        hist.to_str().expect("path"),
    ]);
    assert!(matches!(c.status.code(), Some(0..=2)), "{}", text(&c));
    let o = lab.run(&["nemesis", "heal", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_healed(&lab);
    for (n, (code, out)) in lab.exec("", "pgrep -x etcd; ps -o stat= -C etcd") {
        assert_eq!(
            code, 0,
            "{n}: no etcd after heal --all (killed: {killed}): {out}"
        );
        assert!(!out.contains('T'), "{n}: etcd still stopped: {out}");
    }
    println!("(e) SIGKILL + heal --all: restarted {killed}");

    drop(lab);
    println!("e2e total {:.1} s", t_all.elapsed().as_secs_f64());
}
