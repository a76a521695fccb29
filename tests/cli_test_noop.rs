//! `faultline test --target noop`: the whole pipeline (store, history,
//! check, report, exit codes) without root, a lab or etcd.

mod common;

use common::{faultline, text};
use serde_json::Value;

fn store(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("faultline-test-noop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn noop_runs_land_in_the_store_and_are_valid() {
    for (workload, model) in [
        ("register", "cas-register"),
        ("list-append", "list-append"),
        ("set", ""),
    ] {
        let dir = store(workload);
        let o = faultline(&[
            "test",
            "--target",
            "noop",
            "--workload",
            workload,
            "--time-limit",
            "1",
            "--rate",
            "300",
            "--seed",
            "9",
            "--test-count",
            if workload == "register" { "2" } else { "1" },
            "--store",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{workload}: {}", text(&o));
        let run = dir.join(format!("noop-{workload}/latest"));
        for f in [
            "test.json",
            "history.jsonl",
            "results.json",
            "report.html",
            "timeline.html",
            "latency-raw.png",
            "latency-quantiles.png",
            "rate.png",
        ] {
            assert!(run.join(f).exists(), "{workload}: {f} missing");
        }
        let tj: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
        // The second of two tests runs with seed + 1.
        assert_eq!(tj["seed"], if workload == "register" { 10 } else { 9 });
        assert_eq!(tj["workload"], workload);
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(r["valid"], true, "{r:#}");
        if !model.is_empty() {
            let h = run.join("history.jsonl");
            // The model is inferred from the operations, as a user would run it.
            let c = faultline(&["check", h.to_str().unwrap()]);
            assert!(
                String::from_utf8_lossy(&c.stdout).contains(model),
                "{}",
                text(&c)
            );
            assert_eq!(c.status.code(), Some(0), "{}", text(&c));
        }
        // The stored run re-checks with the current checker, as DESIGN.md's
        // `faultline check DIR`, with the model its workload implies.
        let c = faultline(&["check", "--json", run.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(0), "{workload}: {}", text(&c));
        let again: Value = serde_json::from_str(String::from_utf8_lossy(&c.stdout).trim())
            .unwrap_or_else(|e| panic!("{workload}: {e}: {}", text(&c)));
        assert_eq!(again["valid"], true, "{again:#}");
        if !model.is_empty() {
            assert_eq!(again["model"], model, "{again:#}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn check_of_a_directory_that_is_not_a_run_exits_64() {
    let dir = store("not-a-run");
    std::fs::create_dir_all(&dir).unwrap();
    let o = faultline(&["check", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("not a faultline run"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_exit_64() {
    for args in [
        &["test", "--target", "noop", "--nemesis", "kill"][..],
        &["test", "--target", "etcd", "--nemesis", "clock"],
        &["test", "--target", "nope"],
        &["test", "--target", "noop", "--workload", "bogus"],
        &["test", "--target", "noop", "--nemesis", "partition,bogus"],
        &["test", "--target", "noop", "--time-limit", "0"],
        &["test", "--target", "etcd", "--etcd-read-mode", "stale"],
    ] {
        let o = faultline(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", text(&o));
    }
}

/// `faultline test --workload W` for workloads with their own checkers (bank:
/// initial balances from the test; queue: a final drain; lock: a
/// linearizability search inside): each run is checked by that checker (its name is `model` in
/// results.json), and `faultline check RUN_DIR` picks the same one.
#[test]
fn noop_workload_checkers_run_and_recheck() {
    for workload in ["bank", "queue", "lock"] {
        let dir = store(workload);
        let o = faultline(&[
            "test",
            "--target",
            "noop",
            "--workload",
            workload,
            "--time-limit",
            "1",
            "--rate",
            "300",
            "--seed",
            "5",
            "--store",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{workload}: {}", text(&o));
        let run = dir.join(format!("noop-{workload}/latest"));
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(r["valid"], true, "{r:#}");
        assert_eq!(r["model"], workload, "{r:#}");
        if workload == "bank" {
            // Judged against the balances the test put in.
            assert_eq!(r["total_source"], "given", "{r:#}");
        }
        let c = faultline(&["check", "--json", run.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(0), "{workload}: {}", text(&c));
        let again: Value = serde_json::from_str(String::from_utf8_lossy(&c.stdout).trim())
            .unwrap_or_else(|e| panic!("{workload}: {e}: {}", text(&c)));
        assert_eq!(again["model"], workload, "{again:#}");
        let stats = |v: &Value| {
            let mut s = v["stats"].clone();
            s.as_object_mut().map(|o| o.remove("elapsed_ms"));
            s
        };
        assert_eq!(
            stats(&again),
            stats(&r),
            "{workload}: same checker, same history"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
