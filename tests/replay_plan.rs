//! `faultline test --plan` and `faultline replay -- FLAGS` end to end, on the
//! in-process noop target (no lab, no root): a plan file runs, a run's
//! test.json is itself a plan that runs again, a flag given with a plan (or
//! after `replay --`) wins and everything else is kept, and a plan of
//! another version is refused with exit 64.

mod common;

use common::{TmpStore, read_json, text};
use std::path::{Path, PathBuf};

/// The run `latest` points at now (it moves with the next run).
fn latest(store: &Path, test: &str) -> PathBuf {
    std::fs::canonicalize(store.join(test).join("latest")).expect("latest")
}

#[test]
fn plans_run_and_flags_given_with_them_win() {
    let store = TmpStore::new("plan");
    std::fs::create_dir_all(&store.0).expect("store");
    let plan = store.0.join("p.json");
    std::fs::write(
        &plan,
        serde_json::json!({
            "plan_version": 1, "target": "noop", "workload": "set",
            "concurrency": 2, "rate": 100, "time_limit_s": 1, "seed": 31,
            "store": store.s(),
        })
        .to_string(),
    )
    .expect("plan");
    let p = plan.to_str().expect("utf-8");

    // The file's values, and --seed in place of its seed.
    let o = common::faultline(&["test", "--plan", p, "--seed", "32"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let first = latest(&store.0, "noop-set");
    let tj = read_json(&first.join("test.json"));
    assert_eq!(tj["plan_version"], 1, "{tj:#}");
    assert_eq!(tj["seed"], 32, "{tj:#}");
    assert_eq!(tj["concurrency"], 2, "{tj:#}");
    assert_eq!(tj["rate"], 100.0, "{tj:#}");
    assert_eq!(tj["time_limit_s"], 1.0, "{tj:#}");

    // A run's test.json is a plan: it runs again, with --concurrency named.
    let stored = first.join("test.json");
    let o = common::faultline(&[
        "test",
        "--plan",
        stored.to_str().expect("utf-8"),
        "--concurrency",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let second = latest(&store.0, "noop-set");
    assert_ne!(first, second);
    let tj2 = read_json(&second.join("test.json"));
    assert_eq!(tj2["concurrency"], 4, "{tj2:#}");
    for k in ["seed", "rate", "time_limit_s", "workload", "store"] {
        assert_eq!(tj2[k], tj[k], "{k}");
    }

    // replay -- FLAGS: only what the flags name changes (--dry-run prints
    // the plan it would run; tests/matrix.rs runs a noop replay).
    let o = common::faultline(&[
        "replay",
        "--dry-run",
        first.to_str().expect("utf-8"),
        "--",
        "--rate",
        "150",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let replayed: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(replayed["rate"], 150.0, "{replayed:#}");
    for k in ["seed", "concurrency", "time_limit_s", "workload", "store"] {
        assert_eq!(replayed[k], tj[k], "{k}");
    }
}

#[test]
fn plans_of_another_version_or_shape_are_refused() {
    let store = TmpStore::new("plan-bad");
    std::fs::create_dir_all(&store.0).expect("store");
    for (i, (body, msg)) in [
        (
            r#"{"plan_version": 2, "target": "noop"}"#,
            "plan_version 2 is not one this faultline reads",
        ),
        (r#"{"target": "noop"}"#, "has no `plan_version`"),
        (
            r#"{"plan_version": 1, "workload": "flood"}"#,
            "unknown variant `flood`",
        ),
        (r#"{"plan_version": 1,"#, "EOF while parsing"),
    ]
    .into_iter()
    .enumerate()
    {
        let f = store.0.join(format!("p{i}.json"));
        std::fs::write(&f, body).expect("plan");
        let o = common::faultline(&["test", "--plan", f.to_str().expect("utf-8")]);
        assert_eq!(o.status.code(), Some(64), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(msg) && err.contains(&format!("p{i}.json")),
            "{}",
            text(&o)
        );
    }
}
