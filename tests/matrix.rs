//! `faultline matrix` (issue #10, "Done when"): a small matrix in the lab —
//! 2 targets (etcd, raft) × 2 workloads (register, list-append) × 2
//! nemesis sets (none; partition,kill), 5 s runs, in a dedicated lab
//! (bridge flbr15, 10.77.15.0/24) — then junit.xml (well-formed per
//! xmllint, right counts), summary.json and the exit code. A second test
//! needs no lab: a noop matrix whose `partition` cells `test` refuses, so
//! the worst outcome is "run failed" (exit 3) and junit has errors.
//!
//! The lab test skips (printing why) without root, sshd or etcd.

mod common;

use common::{BIN, Lab, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

struct TmpDir(PathBuf);

impl TmpDir {
    fn new(tag: &str) -> TmpDir {
        let p = std::env::temp_dir().join(format!("faultline-matrix-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("tmp dir");
        TmpDir(p)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn matrix(file: &Path) -> Output {
    Command::new(BIN)
        .arg("matrix")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("running faultline matrix")
}

fn read_json(p: &Path) -> Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The one matrix directory under `<store>/matrix/`.
fn matrix_dir(store: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(store.join("matrix"))
        .expect("store/matrix")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// junit.xml must be well-formed XML: xmllint says so (libxml2-utils, in
/// scripts/browser-packages.txt). Without xmllint the test fails under
/// CI=true and otherwise says it did not check.
fn assert_well_formed(p: &Path) {
    match Command::new("xmllint").arg("--noout").arg(p).output() {
        Ok(o) => assert!(
            o.status.success(),
            "{} is not well-formed: {}",
            p.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "xmllint missing (apt-get install libxml2-utils)"
            );
            println!("note: xmllint missing; junit.xml well-formedness not checked");
        }
    }
}

/// The `name="value"` attribute of the first `<tag` element.
fn attr(xml: &str, tag: &str, name: &str) -> String {
    let el = xml
        .split(&format!("<{tag} "))
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    el.split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} on <{tag}>: {el}"))
        .to_string()
}

#[test]
fn noop_matrix_refused_cells_are_errors_and_exit_3() {
    let tmp = TmpDir::new("noop");
    let file = tmp.0.join("m.toml");
    std::fs::write(
        &file,
        "name = \"noop-small\"\n\
         targets = [\"noop\"]\n\
         workloads = [\"register\", \"set\"]\n\
         nemeses = [\"none\", \"partition\"]\n\
         seeds = [4]\n\
         time_limit = 1\n\
         rate = 200\n\
         store = \"store\"\n",
    )
    .unwrap();
    let o = matrix(&file);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let dir = matrix_dir(&tmp.0.join("store"));
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["exit_code"], 3, "{s:#}");
    assert_eq!(s["worst"], "failed");
    assert_eq!(s["counts"]["valid"], 2);
    assert_eq!(s["counts"]["failed"], 2);
    let runs = s["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4);
    for r in runs {
        if r["nemesis"] == "none" {
            assert_eq!(r["status"], "valid", "{r:#}");
            let rep = PathBuf::from(r["report"].as_str().expect("report"));
            assert!(rep.is_file(), "{}", rep.display());
        } else {
            assert_eq!(r["exit_code"], 64, "{r:#}");
            assert!(
                r["reason"]
                    .as_str()
                    .is_some_and(|m| m.contains("--nemesis none")),
                "{r:#}"
            );
        }
        assert!(dir.join(r["log"].as_str().expect("log")).is_file());
    }
    let junit = dir.join("junit.xml");
    assert_well_formed(&junit);
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(attr(&x, "testsuites", "tests"), "4");
    assert_eq!(attr(&x, "testsuites", "failures"), "0");
    assert_eq!(attr(&x, "testsuites", "errors"), "2");
    assert_eq!(x.matches("<testcase ").count(), 4);
    assert_eq!(x.matches("<error type=\"failed\"").count(), 2);
    assert!(dir.join("summary.html").is_file());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("2 failed") && out.contains("2 valid"), "{out}");

    // A typo in the file is a usage error naming the key, before any run.
    std::fs::write(
        &file,
        "targets = [\"noop\"]\nworkloads = [\"set\"]\nseed = [1]\n",
    )
    .unwrap();
    let o = matrix(&file);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("seed"),
        "{}",
        text(&o)
    );
}

/// Builds faultline-node (another package) next to `faultline`.
fn node_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "faultline-node", "--bin", "faultline-node"]);
    if BIN.contains("/release/") {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("cargo build").success());
    let p = Path::new(BIN).with_file_name("faultline-node");
    assert!(p.is_file(), "no {}", p.display());
    p
}

#[test]
fn lab_matrix_2x2x2_junit_summary_and_exit_code() {
    if common::skip_lab(&[("etcd", "etcd-server")]) {
        return;
    }
    let bin = node_binary();
    let tmp = TmpDir::new("lab");
    let lab = Lab::up("h10-matrix", 15, 3);
    let store = tmp.0.join("store");
    let file = tmp.0.join("nightly.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"ci-small\"\n\
             targets = [\"etcd\", \"raft\"]\n\
             workloads = [\"register\", \"list-append\"]\n\
             nemeses = [\"none\", [\"partition\", \"kill\"]]\n\
             seeds = [11]\n\
             time_limit = 5\n\
             nemesis_interval = 2\n\
             concurrency = 4\n\
             rate = 100\n\
             lab_dir = \"{}\"\n\
             node_binary = \"{}\"\n\
             store = \"{}\"\n",
            lab.dir,
            bin.display(),
            store.display()
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let o = matrix(&file);
    println!(
        "matrix of 8 runs took {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&o.stdout)
    );
    let dir = matrix_dir(&store);
    let s = read_json(&dir.join("summary.json"));
    let runs = s["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 8, "{s:#}");
    // Correct builds of etcd and raft: every run valid, so exit 0.
    for r in runs {
        assert_eq!(
            r["status"],
            "valid",
            "{r:#}\nlog:\n{}",
            std::fs::read_to_string(dir.join(r["log"].as_str().unwrap_or(""))).unwrap_or_default()
        );
        let run_dir = PathBuf::from(r["run_dir"].as_str().expect("run_dir"));
        let tj = read_json(&run_dir.join("test.json"));
        assert_eq!(tj["target"], r["target"]);
        assert_eq!(tj["workload"], r["workload"]);
        assert_eq!(tj["seed"], 11);
        let want: Vec<&str> = match r["nemesis"].as_str() {
            Some("none") => vec![],
            _ => vec!["partition", "kill"],
        };
        assert_eq!(tj["nemesis"], serde_json::json!(want), "{tj:#}");
        // The file's defaults reached each cell's plan.
        assert_eq!(tj["plan_version"], 1, "{tj:#}");
        assert_eq!(tj["concurrency"], 4, "{tj:#}");
        assert_eq!(tj["time_limit_s"], 5.0, "{tj:#}");
        assert_eq!(read_json(&run_dir.join("results.json"))["valid"], true);
    }
    let combos: std::collections::BTreeSet<String> = runs
        .iter()
        .map(|r| format!("{} {} {}", r["target"], r["workload"], r["nemesis"]))
        .collect();
    assert_eq!(combos.len(), 8, "{combos:?}");
    let plans = std::fs::read_dir(dir.join("plans")).expect("plans").count();
    assert_eq!(plans, 8);
    assert_eq!(s["counts"]["valid"], 8);
    assert_eq!(s["worst"], "valid");
    assert_eq!(s["exit_code"], 0);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let junit = dir.join("junit.xml");
    assert_well_formed(&junit);
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(attr(&x, "testsuites", "tests"), "8");
    assert_eq!(attr(&x, "testsuites", "failures"), "0");
    assert_eq!(attr(&x, "testsuites", "errors"), "0");
    assert_eq!(attr(&x, "testsuite", "tests"), "8");
    assert_eq!(x.matches("<testcase ").count(), 8);
    assert_eq!(
        x.matches("classname=\"faultline.raft.list-append\"")
            .count(),
        2
    );
    assert!(x.contains("name=\"nemesis=partition,kill seed=11\""));
    let html = std::fs::read_to_string(dir.join("summary.html")).unwrap();
    assert_eq!(html.matches(">report</a>").count(), 8);
    drop(lab);
}

#[test]
fn replay_reruns_a_noop_run_with_its_options_and_seed() {
    let tmp = TmpDir::new("replay");
    let store = tmp.0.join("store");
    let s = store.to_str().expect("utf-8");
    let o = common::faultline(&[
        "test",
        "--target",
        "noop",
        "--workload",
        "list-append",
        "--time-limit",
        "1",
        "--rate",
        "150",
        "--concurrency",
        "3",
        "--seed",
        "77",
        "--store",
        s,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let first = store.join("noop-list-append/latest");
    let first = std::fs::canonicalize(&first).expect("latest");
    let o = common::faultline(&["replay", first.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("replay: original valid; replay valid"),
        "{out}"
    );
    let second = std::fs::canonicalize(store.join("noop-list-append/latest")).expect("latest");
    assert_ne!(first, second, "the replay is a new run");
    let (a, b) = (
        read_json(&first.join("test.json")),
        read_json(&second.join("test.json")),
    );
    for k in [
        "target",
        "workload",
        "seed",
        "nemesis",
        "concurrency",
        "rate",
        "time_limit_s",
        "op_timeout_s",
        "node_count",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    // A run dir without test.json is a usage error.
    let o = common::faultline(&["replay", tmp.0.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
}

/// A run dir with a paxos test.json (nodes n1..n3, partition,kill) and,
/// when given, a nemesis-schedule.json.
fn fake_run(root: &Path, schedule: Option<&str>) -> PathBuf {
    let run = root.join("store/paxos-register/20261126T000000.000Z");
    std::fs::create_dir_all(&run).expect("run dir");
    let tj = serde_json::json!({
        "plan_version": 1,
        "target": "paxos", "workload": "register", "seed": 5,
        "nemesis": ["partition", "kill"], "nemesis_interval_s": 2.0,
        "nodes": ["n1", "n2", "n3"], "node_count": 3, "lab_dir": "/nonexistent",
    });
    std::fs::write(run.join("test.json"), tj.to_string()).expect("test.json");
    if let Some(s) = schedule {
        std::fs::write(run.join("nemesis-schedule.json"), s).expect("schedule");
    }
    run
}

/// `faultline replay` follows a run's nemesis-schedule.json, falls back to
/// the seed (saying so) without one, and refuses a bad one with exit 64,
/// naming the file and the entry. No lab: `--dry-run` and errors only.
#[test]
fn replay_follows_the_recorded_schedule_and_refuses_a_bad_one() {
    let tmp = TmpDir::new("replay-schedule");
    let good = r#"{"version": 1, "faults": [
        {"start_ms": 2100, "stop_ms": 4100, "fault": "kill", "node": "n2"},
        {"start_ms": 6100, "stop_ms": 8100, "fault": "partition",
         "grudge": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}, "one_way": false}]}"#;
    let dry = |run: &Path, extra: &[&str]| {
        let mut a = vec!["replay", "--dry-run"];
        a.extend_from_slice(extra);
        a.push(run.to_str().expect("utf-8"));
        common::faultline(&a)
    };
    // An old run dir: the seed only, and stderr says so.
    let old = fake_run(&tmp.0.join("old"), None);
    let o = dry(&old, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"nemesis_schedule\": null"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has no nemesis-schedule.json"),
        "{}",
        text(&o)
    );
    // A test.json from before plans were versioned: refused, saying why.
    let unversioned = fake_run(&tmp.0.join("unversioned"), None);
    let tj = unversioned.join("test.json");
    let mut v = read_json(&tj);
    v.as_object_mut().expect("object").remove("plan_version");
    std::fs::write(&tj, v.to_string()).expect("test.json");
    let o = dry(&unversioned, &[]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has no `plan_version`"),
        "{}",
        text(&o)
    );
    // A good schedule: the new test follows it; --fresh-nemesis opts out.
    let run = fake_run(&tmp.0.join("good"), Some(good));
    let o = dry(&run, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // --dry-run prints the plan the replay would run.
    let want = format!(
        "\"nemesis_schedule\": \"{}\"",
        run.join("nemesis-schedule.json").display()
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&want),
        "{}",
        text(&o)
    );
    let o = dry(&run, &["--fresh-nemesis"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"nemesis_schedule\": null"));
    // Bad schedules: exit 64, one line naming the file and the entry.
    for (i, (body, msg)) in [
        (&good[..90], "nemesis-schedule.json: EOF while parsing"),
        (
            &good.replace("\"n2\"}", "\"n9\"}")[..],
            "nemesis-schedule.json: faults[0]: unknown node `n9` (the test's nodes: n1, n2, n3)",
        ),
        (
            &good.replace("\"partition\"", "\"flood\"")[..],
            "nemesis-schedule.json: faults[1]: unknown variant `flood`",
        ),
        (
            &good.replace("\"kill\"", "\"pause\"")[..],
            "faults[0]: a pause fault, but the test's --nemesis is partition,kill",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let run = fake_run(&tmp.0.join(format!("bad{i}")), Some(body));
        let o = common::faultline(&["replay", run.to_str().expect("utf-8")]);
        assert_eq!(o.status.code(), Some(64), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(msg), "{}", text(&o));
        assert_eq!(err.trim().lines().count(), 1, "{}", text(&o));
    }
}

/// The anomaly classes of a results.json: its `anomaly_types`, or for the
/// register (linearizability) checker, which lists anomalies per key,
/// "not linearizable".
fn anomaly_classes(r: &Value) -> std::collections::BTreeSet<String> {
    if let Some(t) = r["anomaly_types"].as_array() {
        return t
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
    }
    r["anomalies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let e = a["explanation"].as_str().unwrap_or_default();
            if e.contains("is not linearizable") {
                "not linearizable".to_string()
            } else {
                a["type"].as_str().unwrap_or("other").to_string()
            }
        })
        .collect()
}

/// The faults of a run's nemesis-schedule.json.
fn schedule(run: &Path) -> Vec<Value> {
    read_json(&run.join("nemesis-schedule.json"))["faults"]
        .as_array()
        .expect("faults")
        .clone()
}

/// Issue #10: "a replayed run of a seeded-bug configuration reproduces its
/// anomaly". paxos `minority-quorum` under isolate-leader (every 3 s), then
/// `faultline replay` of that run: it follows the recorded schedule (the
/// same faults on the same nodes — the recorded leader, not whoever leads
/// now — at the same times) and is invalid again with the same anomaly
/// types. Lab on flbr20.
#[test]
fn lab_replay_of_a_seeded_bug_reproduces_the_anomaly() {
    if common::skip() {
        return;
    }
    let bin = node_binary();
    let tmp = TmpDir::new("replay-lab");
    let lab = Lab::up("h10r-replay", 20, 3);
    let store = tmp.0.join("store");
    let s = store.to_str().expect("utf-8");
    let o = common::faultline(&[
        "test",
        "--target",
        "paxos",
        "--bug",
        "minority-quorum",
        "--workload",
        "register",
        "--nemesis",
        "isolate-leader",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "15",
        "--seed",
        "1",
        "--node-binary",
        bin.to_str().expect("utf-8"),
        "--lab-dir",
        &lab.dir,
        "--store",
        s,
    ]);
    assert_eq!(o.status.code(), Some(1), "the original run: {}", text(&o));
    let first = std::fs::canonicalize(store.join("paxos-register/latest")).expect("latest");
    let recorded = schedule(&first);
    assert!(recorded.len() >= 2, "{recorded:?}");
    assert!(
        recorded.iter().any(|f| f["fault"] == "isolate-leader"),
        "{recorded:?}"
    );
    let t0 = Instant::now();
    let o = common::faultline(&["replay", first.to_str().expect("utf-8")]);
    println!(
        "replay took {:.1} s\n{}",
        t0.elapsed().as_secs_f64(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("replay: original invalid") && out.contains("; replay invalid"),
        "{out}"
    );
    let second = std::fs::canonicalize(store.join("paxos-register/latest")).expect("latest");
    assert_ne!(first, second);
    let tj = read_json(&second.join("test.json"));
    assert_eq!(tj["bugs"], serde_json::json!(["minority-quorum"]));
    assert_eq!(tj["seed"], 1);
    let (r1, r2) = (
        read_json(&first.join("results.json")),
        read_json(&second.join("results.json")),
    );
    assert_eq!(r2["valid"], false);
    let (c1, c2) = (anomaly_classes(&r1), anomaly_classes(&r2));
    assert!(!c1.is_empty(), "{r1}");
    assert_eq!(c1, c2);
    // The replay followed the schedule: the same faults on the same nodes
    // (a fresh draw would aim isolate-leader at whoever leads), started and
    // stopped within 0.5 s of the recorded times.
    let replayed = schedule(&second);
    assert_eq!(replayed.len(), recorded.len(), "{replayed:?}\n{recorded:?}");
    let ms = |v: &Value, k: &str| v[k].as_i64().unwrap_or(-1_000_000);
    for (i, (a, b)) in recorded.iter().zip(&replayed).enumerate() {
        let what = |v: &Value| {
            let mut v = v.clone();
            for k in ["start_ms", "stop_ms", "chosen", "error"] {
                v.as_object_mut().expect("entry").remove(k);
            }
            v
        };
        assert_eq!(what(a), what(b), "fault {i}");
        assert_eq!(b["chosen"], "recorded schedule", "fault {i}");
        assert!(
            (ms(a, "start_ms") - ms(b, "start_ms")).abs() <= 500,
            "fault {i}: {a} vs {b}"
        );
        // The last one's stop is the final heal, after the workers drain.
        if i + 1 < recorded.len() {
            assert!(
                (ms(a, "stop_ms") - ms(b, "stop_ms")).abs() <= 500,
                "fault {i}: {a} vs {b}"
            );
        }
    }
    drop(lab);
}
