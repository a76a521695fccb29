//! The one way a test skips itself (std only, so other crates' tests can
//! include it with `#[path = "../../tests/common/skip.rs"] mod skip;`).
//!
//! `cargo test` hides what a passing test prints, so a skipped test looks
//! like a passing one. Hence:
//! - under `CI=true` (CI installs every package and runs as root) a skip is
//!   a failure, naming the test and what was missing;
//! - elsewhere the test passes, and a line `test: why` is appended to the
//!   file `$FAULTLINE_SKIP_LOG` names, which `scripts/test.sh` counts and
//!   lists at the end.
#![allow(dead_code)] // each test file uses a different subset

use std::io::Write;
use std::path::{Path, PathBuf};

/// The env var naming the file skips are appended to.
pub const SKIP_LOG: &str = "FAULTLINE_SKIP_LOG";

/// True when running in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// `binary::test` for the calling test: libtest names each test's thread
/// after the test.
pub fn test_name() -> String {
    let bin = std::env::args()
        .next()
        .map(|a| {
            let stem = Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Test binaries are `name-<16 hex digits>`.
            match stem.rsplit_once('-') {
                Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => {
                    name.to_string()
                }
                _ => stem,
            }
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    format!("{bin}::{test}")
}

/// Skips the calling test because `why` (e.g. "etcd not in PATH (apt-get
/// install etcd-server)"): panics under CI, else records the skip and
/// returns true, for `if skipped(..) { return; }`.
pub fn skipped(why: &str) -> bool {
    let name = test_name();
    assert!(
        !in_ci(),
        "{name} cannot run here: {why} (CI=true: a skipped test fails the run)"
    );
    println!("skipping {name}: {why}");
    if let Some(log) = std::env::var_os(SKIP_LOG) {
        // One short write with O_APPEND: lines from parallel tests do not
        // interleave.
        let line = format!("{name}: {why}\n");
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = r {
            panic!("{name}: writing the skip log {log:?}: {e}");
        }
    }
    true
}

/// The first of `names` found in PATH.
pub fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// Skips (see [`skipped`]) unless every tool is in PATH; `tools` are
/// (executable, Debian package).
pub fn skip_without_tools(tools: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| which(&[t]).is_none())
        .map(|(t, pkg)| format!("{t} not in PATH (apt-get install {pkg})"))
        .collect();
    !missing.is_empty() && skipped(&missing.join("; "))
}

/// Skips (see [`skipped`]) unless `path` exists.
pub fn skip_without_file(path: &str, what: &str) -> bool {
    !Path::new(path).exists() && skipped(&format!("{path} missing ({what})"))
}
