//! The skip policy (tests/common/skip.rs) run for real: this binary runs
//! one of its own tests again in a child process, which skips the way a lab
//! test does. Under `CI=true` the child must fail, naming the test and what
//! was missing; without it the child passes and its skip is appended to
//! `$FAULTLINE_SKIP_LOG`, which scripts/test.sh counts.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Set in the child: which skip to take.
const CHILD: &str = "FAULTLINE_SKIP_POLICY_CHILD";
const TOOL: &str = "faultline-no-such-tool";

/// The child's body; the parent's test name, so `--exact` finds it.
fn child(mode: &str) {
    let skipped = match mode {
        "tool" => common::skip_without_tools(&[("etcd", "etcd-server"), (TOOL, "no-such-package")]),
        "lab" => common::skip(),
        _ => panic!("unknown {CHILD} {mode:?}"),
    };
    assert!(skipped, "the child ran instead of skipping");
}

/// Runs `test` of `exe` alone as a child taking skip `mode`.
fn run_child(exe: &Path, test: &str, mode: &str, ci: Option<&str>, log: &Path) -> Output {
    let mut c = Command::new(exe);
    c.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD, mode)
        .env(common::SKIP_LOG, log)
        .env_remove("CI");
    if let Some(v) = ci {
        c.env("CI", v);
    }
    c.output().expect("running the test binary")
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fl-skip-policy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

#[test]
fn a_missing_tool_fails_under_ci_and_is_counted_elsewhere() {
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode);
    }
    let exe = std::env::current_exe().expect("current exe");
    let test = "a_missing_tool_fails_under_ci_and_is_counted_elsewhere";
    let dir = tmp("tool");
    let log = dir.join("skips");

    let o = run_child(&exe, test, "tool", Some("true"), &log);
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(101), "CI=true must fail a skip: {t}");
    assert!(
        t.contains(&format!("skip_policy::{test} cannot run here"))
            && t.contains(&format!(
                "{TOOL} not in PATH (apt-get install no-such-package)"
            ))
            && t.contains("CI=true"),
        "{t}"
    );
    assert!(!log.exists(), "a failed skip is not logged as a skip");

    // Outside CI: passes, and the skip is on record, once.
    let o = run_child(&exe, test, "tool", None, &log);
    assert!(o.status.success(), "{}", common::text(&o));
    let lines = std::fs::read_to_string(&log).expect("skip log");
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(
        lines.starts_with(&format!("skip_policy::{test}: "))
            && lines.contains(&format!("{TOOL} not in PATH")),
        "{lines}"
    );
    // etcd is found when installed; only what is missing is named.
    if common::which(&["etcd"]).is_some() {
        assert!(!lines.contains("etcd not in PATH"), "{lines}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lab test run by a non-root user (setpriv, as lab_basic does): under
/// CI it fails saying so.
#[test]
fn a_lab_test_without_root_fails_under_ci() {
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && common::skipped("setpriv to another user needs root") {
        return;
    }
    // A copy nobody can run: the target dir may not be theirs to enter.
    let dir = tmp("lab");
    let exe = dir.join("skip_policy");
    std::fs::copy(std::env::current_exe().expect("current exe"), &exe).expect("copy");
    for p in [&dir, &exe] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let test = "a_lab_test_without_root_fails_under_ci";
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, "lab")
        .env("CI", "true")
        .env_remove(common::SKIP_LOG)
        .output()
        .expect("setpriv");
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(101), "{t}");
    assert!(
        t.contains(&format!("skip_policy::{test} cannot run here: not root")),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
