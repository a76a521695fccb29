//! `faultline serve`: the pure half of the results browser.
//!
//! The binary's HTTP shell (`src/cli_serve.rs`) asks this module what to do
//! with a request path ([`route`]), which file it names ([`resolve`]: no
//! `..`, nothing outside the store), what the index says ([`index`],
//! [`html::render_index`]) and how a run becomes a zip ([`zip`]). Nothing
//! here opens a socket.
//!
//! # URLs
//!
//! | path | answer |
//! |---|---|
//! | `/` | the index: every run, filters, per-test trends (self-contained HTML) |
//! | `/index.json` | the same runs as JSON ([`RunInfo`]) |
//! | `/runs/<test>/<time>/<file>` | a file of a run (`report.html`, `nodes/n1/etcd.log`, …); a directory lists its files |
//! | `/zip/<test>/<time>.zip` | the whole run directory as a zip (stored, no compression) |
//!
//! The index takes its filters from the query string too
//! (`/?target=etcd&workload=register&verdict=invalid&q=G1c`), so a filtered
//! view can be bookmarked.

pub mod html;
pub mod zip;

use crate::store::{self, Store, StoreError};
use faultline_checker::format::{Format, parse_file};
use faultline_checker::{EventType, Verdict};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// The store directory holding `faultline matrix` summaries, not runs.
pub const MATRIX_DIR: &str = "matrix";

/// Histories larger than this are not read for the latency trend (the index
/// must stay fast on a store of long runs).
pub const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// One run as the index shows it: read from `test.json` and `results.json`
/// (never judged here), plus two numbers for the trend lines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunInfo {
    pub test: String,
    /// The run directory's name, e.g. `20261126T005011.123Z`.
    pub time: String,
    /// `<test>/<time>`, the run's path under `/runs/` and `/zip/`.
    pub path: String,
    pub target: String,
    pub workload: String,
    /// Fault kinds (`test.json` `nemesis`); empty for none.
    pub nemesis: Vec<String>,
    pub seed: Option<u64>,
    pub bugs: Vec<String>,
    /// The verdict, named and valued as in `results.json`: `valid` is
    /// `true`, `false` or `"unknown"`; `null` (`None`) when the run has no
    /// readable verdict (still running, or killed before the check).
    /// [`RunInfo::verdict_word`] names it for people and filters.
    #[serde(rename = "valid")]
    pub verdict: Option<Verdict>,
    pub anomaly_types: Vec<String>,
    /// Why the verdict is unknown, or what failed (`reason`/`error`).
    pub reason: Option<String>,
    /// Completed client operations per second of the main phase.
    pub ops_per_sec: Option<f64>,
    /// Median latency of `ok` operations, in milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub has_report: bool,
}

impl RunInfo {
    /// `valid`, `invalid`, `unknown`, or `incomplete` (no verdict): the
    /// index's badge and its `?verdict=` filter.
    pub fn verdict_word(&self) -> &'static str {
        match self.verdict {
            Some(Verdict::Valid) => "valid",
            Some(Verdict::Invalid) => "invalid",
            Some(Verdict::Unknown) => "unknown",
            None => "incomplete",
        }
    }
}

/// One `faultline matrix` run, as listed on the index.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatrixInfo {
    pub time: String,
    /// `matrix/<time>`, under `/runs/`.
    pub path: String,
    /// `summary.json`'s `worst` and `counts`, when readable.
    pub worst: Option<String>,
    pub runs: Option<u64>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) if !s.is_empty() && s != "none" => {
            s.split(',').map(|p| p.trim().to_string()).collect()
        }
        _ => Vec::new(),
    }
}

/// What the index knows about one run directory. Reads `test.json`,
/// `results.json` and (when small enough) `history.jsonl`; a missing or
/// broken file leaves its fields empty rather than failing the listing.
pub fn run_info(test: &str, time: &str, dir: &Path) -> RunInfo {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    };
    let tj = read(store::TEST_JSON).unwrap_or(Value::Null);
    let results = read(store::RESULTS_JSON);
    let verdict = results.as_ref().and_then(store::verdict_of);
    let r = results.as_ref().unwrap_or(&Value::Null);
    let mut anomaly_types = strings(
        r.get("anomaly_types")
            .or_else(|| r.get("anomaly-types"))
            .unwrap_or(&Value::Null),
    );
    if anomaly_types.is_empty()
        && let Some(Value::Object(m)) = r.get("anomalies")
    {
        anomaly_types = m.keys().cloned().collect();
    }
    let reason = r
        .get("reason")
        .or_else(|| r.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let s = |k: &str| tj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let run = r.get("run").unwrap_or(&Value::Null);
    let ops_per_sec = {
        let n = ["ok", "fail", "info"]
            .iter()
            .filter_map(|k| run.get(*k).and_then(Value::as_f64))
            .sum::<f64>();
        run.get("main_phase_s")
            .and_then(Value::as_f64)
            .filter(|s| *s > 0.0)
            .map(|s| n / s)
    };
    RunInfo {
        test: test.to_string(),
        time: time.to_string(),
        path: format!("{test}/{time}"),
        target: s("target"),
        workload: s("workload"),
        nemesis: strings(tj.get("nemesis").unwrap_or(&Value::Null)),
        seed: tj
            .get("seed")
            .and_then(Value::as_u64)
            .or_else(|| run.get("seed").and_then(Value::as_u64)),
        bugs: strings(tj.get("bugs").unwrap_or(&Value::Null)),
        verdict,
        anomaly_types,
        reason,
        ops_per_sec,
        latency_p50_ms: latency_p50_ms(&dir.join(store::HISTORY_JSONL)),
        has_report: dir.join(store::REPORT_HTML).is_file(),
    }
}

/// Median latency of `ok` client operations in a history, in milliseconds.
fn latency_p50_ms(path: &Path) -> Option<f64> {
    let len = std::fs::metadata(path).ok()?.len();
    if len == 0 || len > MAX_HISTORY_BYTES {
        return None;
    }
    let h = parse_file(path, Some(Format::Jsonl)).ok()?;
    let mut lat: Vec<u64> = crate::ops::spans(&h)
        .iter()
        .filter_map(|s| {
            let c = &h.events[s.complete?];
            let i = &h.events[s.invoke];
            (c.kind == EventType::Ok).then_some(c.time?.checked_sub(i.time?)?)
        })
        .collect();
    if lat.is_empty() {
        return None;
    }
    let mid = lat.len() / 2;
    let (_, m, _) = lat.select_nth_unstable(mid);
    Some(*m as f64 / 1e6)
}

/// Every run in the store, newest first, plus the matrix summaries.
/// `cache` keeps what was read per run directory until its `results.json`
/// or `test.json` changes, so reloading the index of a large store is cheap.
pub fn index(store: &Store, cache: &mut IndexCache) -> Result<Index, StoreError> {
    let mut runs = Vec::new();
    for r in store.runs()? {
        if r.test == MATRIX_DIR {
            continue;
        }
        runs.push(cache.get(&r.test, &r.time, &r.dir));
    }
    runs.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.test.cmp(&b.test)));
    let mut matrices = Vec::new();
    if let Ok(rd) = std::fs::read_dir(store.root().join(MATRIX_DIR)) {
        for e in rd.flatten() {
            let time = e.file_name().to_string_lossy().into_owned();
            if store::validate_name("matrix", &time).is_err() {
                continue;
            }
            let summary = std::fs::read_to_string(e.path().join("summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok());
            let s = summary.as_ref();
            matrices.push(MatrixInfo {
                path: format!("{MATRIX_DIR}/{time}"),
                time,
                worst: s.and_then(|s| s.get("worst")?.as_str().map(str::to_string)),
                runs: s.and_then(|s| s.get("runs")?.as_array().map(|a| a.len() as u64)),
            });
        }
    }
    matrices.sort_by(|a, b| b.time.cmp(&a.time));
    Ok(Index { runs, matrices })
}

/// What the index page shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Index {
    /// Newest first.
    pub runs: Vec<RunInfo>,
    pub matrices: Vec<MatrixInfo>,
}

/// Per-run-directory memo for [`index`].
#[derive(Debug, Default)]
pub struct IndexCache {
    entries: HashMap<PathBuf, (Vec<Option<SystemTime>>, RunInfo)>,
}

impl IndexCache {
    fn get(&mut self, test: &str, time: &str, dir: &Path) -> RunInfo {
        let stamp: Vec<Option<SystemTime>> = [store::TEST_JSON, store::RESULTS_JSON, "report.html"]
            .iter()
            .map(|f| {
                std::fs::metadata(dir.join(f))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .collect();
        if let Some((s, info)) = self.entries.get(dir)
            && *s == stamp
        {
            return info.clone();
        }
        let info = run_info(test, time, dir);
        self.entries
            .insert(dir.to_path_buf(), (stamp, info.clone()));
        info
    }
}

/// What a request path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Index,
    IndexJson,
    /// A file or directory under the store, as a relative path (checked).
    File(PathBuf),
    /// A run directory to zip, as a relative path `<test>/<time>` (checked).
    Zip(PathBuf),
    NotFound,
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("bad percent-encoding in the path")]
    BadEncoding,
    #[error("the path climbs out of the store (`..`)")]
    Traversal,
    #[error("the path has a hidden, empty or invalid component")]
    BadComponent,
    #[error("not found")]
    NotFound,
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+` in a path).
pub fn percent_decode(s: &str) -> Result<String, PathError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEncoding)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

/// A decoded relative path, component by component: `..` is refused (not
/// normalised away), as are `.`, hidden names (`.results.json.tmp`),
/// backslashes, NUL and control characters. Empty components (`a//b`, a
/// trailing `/`) are skipped.
pub fn safe_relative(decoded: &str) -> Result<PathBuf, PathError> {
    let mut out = PathBuf::new();
    for c in decoded.split('/') {
        if c.is_empty() {
            continue;
        }
        if c == ".." {
            return Err(PathError::Traversal);
        }
        if c.starts_with('.') || c.contains('\\') || c.chars().any(char::is_control) {
            return Err(PathError::BadComponent);
        }
        out.push(c);
    }
    // Belt and braces: nothing but plain names may remain.
    if out.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(PathError::Traversal);
    }
    Ok(out)
}

/// Maps a request target (path and optional query) to a [`Route`].
pub fn route(target: &str) -> Result<Route, PathError> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/" || path == "/index.html" || path.is_empty() {
        return Ok(Route::Index);
    }
    if path == "/index.json" {
        return Ok(Route::IndexJson);
    }
    if let Some(rest) = path.strip_prefix("/runs/") {
        return Ok(Route::File(safe_relative(&percent_decode(rest)?)?));
    }
    if let Some(rest) = path.strip_prefix("/zip/") {
        let rel = safe_relative(&percent_decode(rest)?)?;
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".zip"))
            .ok_or(PathError::NotFound)?;
        let rel = rel.with_file_name(name);
        if rel.components().count() != 2 {
            return Err(PathError::NotFound);
        }
        return Ok(Route::Zip(rel));
    }
    Ok(Route::NotFound)
}

/// The file a checked relative path names under `root`, after following
/// symlinks (`latest`): it must still be inside the store.
pub fn resolve(root: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    let root = std::fs::canonicalize(root).map_err(|_| PathError::NotFound)?;
    let p = std::fs::canonicalize(root.join(rel)).map_err(|_| PathError::NotFound)?;
    if !p.starts_with(&root) {
        return Err(PathError::Traversal);
    }
    Ok(p)
}

/// The Content-Type of a file served from a run.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "css" => "text/css",
        "js" => "text/javascript",
        "zip" => "application/zip",
        "xml" => "application/xml",
        // history.jsonl, logs, edn: shown as text in the browser.
        _ => "text/plain; charset=utf-8",
    }
}

/// `20261126T005011.123Z` → `2026-11-26 00:50:11Z` (the input when it is
/// not a run name).
pub fn display_time(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() >= 19 && b[8] == b'T' {
        format!(
            "{}-{}-{} {}:{}:{}Z{}",
            &name[0..4],
            &name[4..6],
            &name[6..8],
            &name[9..11],
            &name[11..13],
            &name[13..15],
            name.get(20..).unwrap_or("")
        )
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    /// A store with runs the way `faultline test` leaves them.
    fn fixture(root: &Path) -> Store {
        let store = Store::new(root);
        let mk = |test: &str, target: &str, wl: &str, nem: &[&str], results: Option<Value>| {
            let run = store
                .create_run(
                    test,
                    &json!({"name": test, "target": target, "workload": wl,
                            "nemesis": nem, "seed": 7, "bugs": []}),
                )
                .expect("create_run");
            let mut w = run.history_writer().expect("history");
            use faultline_checker::{Event, Process};
            let mut ev = |kind, t: u64| {
                let mut e = Event::new(Process::Client(0), kind, "read", json!(null));
                e.time = Some(t);
                w.write(&e).expect("write");
            };
            ev(EventType::Invoke, 0);
            ev(EventType::Ok, 2_000_000);
            ev(EventType::Invoke, 3_000_000);
            ev(EventType::Ok, 7_000_000);
            ev(EventType::Invoke, 8_000_000);
            ev(EventType::Ok, 14_000_000);
            w.close().expect("close");
            if let Some(r) = results {
                run.write_results(&r).expect("results");
                std::fs::write(run.file(store::REPORT_HTML), "<html>report</html>")
                    .expect("report");
            }
            // Distinct timestamps (the store's names have millisecond
            // resolution).
            std::thread::sleep(std::time::Duration::from_millis(3));
            run
        };
        mk(
            "etcd-register",
            "etcd",
            "register",
            &["partition", "kill"],
            Some(
                json!({"valid": true, "run": {"ok": 30, "fail": 0, "info": 0, "main_phase_s": 10.0}}),
            ),
        );
        mk(
            "raft-list-append",
            "raft",
            "list-append",
            &[],
            Some(json!({"valid": false, "anomaly_types": ["G1c", "G-single"],
                        "run": {"ok": 10, "fail": 5, "info": 5, "main_phase_s": 4.0}})),
        );
        mk(
            "raft-list-append",
            "raft",
            "list-append",
            &["pause"],
            Some(json!({"valid": "unknown", "reason": "the run failed: SSH"})),
        );
        mk("etcd-register", "etcd", "register", &[], None);
        store
    }

    #[test]
    fn index_reads_every_run_newest_first() {
        let d = tmp();
        let store = fixture(d.path());
        // A matrix summary is listed apart, not as a run.
        let m = d.path().join("matrix/20261126T010000.000Z");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(
            m.join("summary.json"),
            r#"{"worst":"invalid","runs":[{},{}]}"#,
        )
        .unwrap();
        let mut cache = IndexCache::default();
        let idx = index(&store, &mut cache).unwrap();
        assert_eq!(idx.runs.len(), 4);
        let times: Vec<&str> = idx.runs.iter().map(|r| r.time.as_str()).collect();
        let mut sorted = times.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(times, sorted, "newest first");
        let newest = &idx.runs[0];
        assert_eq!(newest.verdict_word(), "incomplete");
        assert!(!newest.has_report);
        let bad = idx
            .runs
            .iter()
            .find(|r| r.verdict_word() == "invalid")
            .unwrap();
        assert_eq!(bad.anomaly_types, vec!["G1c", "G-single"]);
        assert_eq!(bad.target, "raft");
        assert_eq!(bad.ops_per_sec, Some(5.0));
        assert_eq!(bad.nemesis, Vec::<String>::new());
        // latencies 2, 4, 6 ms → median 4
        assert_eq!(bad.latency_p50_ms, Some(4.0));
        let unk = idx
            .runs
            .iter()
            .find(|r| r.verdict_word() == "unknown")
            .unwrap();
        assert_eq!(unk.reason.as_deref(), Some("the run failed: SSH"));
        let ok = idx
            .runs
            .iter()
            .find(|r| r.verdict_word() == "valid")
            .unwrap();
        assert_eq!(ok.nemesis, vec!["partition", "kill"]);
        assert_eq!(ok.seed, Some(7));
        assert_eq!(ok.ops_per_sec, Some(3.0));
        assert!(ok.path.starts_with("etcd-register/"));
        assert_eq!(idx.matrices.len(), 1);
        assert_eq!(idx.matrices[0].worst.as_deref(), Some("invalid"));
        assert_eq!(idx.matrices[0].runs, Some(2));

        // The cache notices a run that finished since.
        let dir = d.path().join(&newest.path);
        std::fs::write(dir.join("results.json"), r#"{"valid": false}"#).unwrap();
        let again = index(&store, &mut cache).unwrap();
        let r = again.runs.iter().find(|r| r.path == newest.path).unwrap();
        assert_eq!(r.verdict, Some(Verdict::Invalid));
    }

    #[test]
    fn an_empty_or_missing_store_is_an_empty_index() {
        let d = tmp();
        let idx = index(
            &Store::new(d.path().join("nope")),
            &mut IndexCache::default(),
        )
        .unwrap();
        assert!(idx.runs.is_empty() && idx.matrices.is_empty());
        let page = html::render_index(&idx, "store");
        assert!(page.contains("No runs"), "{page}");
    }

    #[test]
    fn routes_and_traversal() {
        assert_eq!(route("/").unwrap(), Route::Index);
        assert_eq!(route("/?target=etcd").unwrap(), Route::Index);
        assert_eq!(route("/index.json").unwrap(), Route::IndexJson);
        assert_eq!(
            route("/runs/etcd-register/20261126T005011.123Z/report.html").unwrap(),
            Route::File("etcd-register/20261126T005011.123Z/report.html".into())
        );
        assert_eq!(
            route("/runs/a%20b/x.html?y=1").unwrap(),
            Route::File("a b/x.html".into())
        );
        assert_eq!(
            route("/zip/etcd-register/20261126T005011.123Z.zip").unwrap(),
            Route::Zip("etcd-register/20261126T005011.123Z".into())
        );
        assert_eq!(route("/zip/a.zip"), Err(PathError::NotFound));
        assert_eq!(route("/zip/a/b/c.zip"), Err(PathError::NotFound));
        assert_eq!(route("/elsewhere").unwrap(), Route::NotFound);
        for bad in [
            "/runs/../etc/passwd",
            "/runs/a/../../etc/passwd",
            "/runs/%2e%2e/etc/passwd",
            "/runs/a/%2E%2E/%2e%2e/x",
            "/zip/../x.zip",
        ] {
            assert_eq!(route(bad), Err(PathError::Traversal), "{bad}");
        }
        for bad in [
            "/runs/.hidden",
            "/runs/a/./b",
            "/runs/a\\..\\b",
            "/runs/a%00b",
        ] {
            assert_eq!(route(bad), Err(PathError::BadComponent), "{bad}");
        }
        assert_eq!(route("/runs/%zz"), Err(PathError::BadEncoding));
        assert_eq!(route("/runs/%e2%28"), Err(PathError::BadEncoding));
        assert_eq!(route("/runs/%4"), Err(PathError::BadEncoding));
    }

    #[test]
    fn resolve_stays_inside_the_store() {
        let d = tmp();
        let root = d.path().join("store");
        let store = fixture(&root);
        let runs = store.runs().unwrap();
        let rel = PathBuf::from(&runs[0].test).join(&runs[0].time);
        let p = resolve(&root, &rel.join("test.json")).unwrap();
        assert!(p.ends_with("test.json"));
        // `latest` is a symlink inside the store: followed.
        assert!(resolve(&root, Path::new("etcd-register/latest/test.json")).is_ok());
        // A symlink pointing out of the store is refused.
        std::fs::write(d.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("escape")).unwrap();
        assert_eq!(
            resolve(&root, Path::new("escape")),
            Err(PathError::Traversal)
        );
        assert_eq!(
            resolve(&root, Path::new("no/such/file")),
            Err(PathError::NotFound)
        );
    }

    #[test]
    fn times_display() {
        assert_eq!(display_time("20261126T005011.123Z"), "2026-11-26 00:50:11Z");
        assert_eq!(
            display_time("20261126T005011.123Z-2"),
            "2026-11-26 00:50:11Z-2"
        );
        assert_eq!(display_time("latest"), "latest");
    }
}
