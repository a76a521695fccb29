//! The on-disk store of runs.
//!
//! # Layout
//!
//! ```text
//! store/                                   Store::new(root)
//!   <test-name>/
//!     latest -> 20261126T005011.123Z       symlink to the newest run (Unix), replaced atomically
//!     20261126T005011.123Z/                one run: RunDir
//!       test.json            every option and the seed, as the runner gave them (pretty JSON)
//!       history.jsonl        one event per line, flushed per event (see below)
//!       results.json         the checker's result: the contract every renderer reads
//!       report.html          verdict, anomalies, nemesis schedule, counts, plots, links
//!       timeline.html        every operation per process over real time
//!       latency-raw.png      latency of each operation at its invocation time
//!       latency-quantiles.png
//!       rate.png             completions per second
//!       nodes/<node>/…       logs fetched from each node
//!     20261126T005011.123Z-2/              a second run started in the same millisecond
//! ```
//!
//! Run directory names are UTC timestamps `YYYYMMDDTHHMMSS.mmmZ`, so they sort
//! by time; a run that starts in the same millisecond as another gets the
//! suffix `-2`, `-3`, … (directory creation is the arbiter, so two processes
//! cannot both claim one name).
//!
//! # `history.jsonl`
//!
//! One JSON object per line, the faultline format (DESIGN.md "History"):
//!
//! ```json
//! {"index":0,"time":1234567,"process":3,"type":"invoke","f":"write","value":2,"node":"n2"}
//! {"index":1,"time":1299000,"process":3,"type":"ok","f":"write","value":2,"node":"n2"}
//! {"index":2,"time":1300000,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2","n3"]}}
//! ```
//!
//! `time` (nanoseconds since the test started) and `node` are omitted when
//! unknown; `key` and `error` appear only when present. [`HistoryWriter`]
//! hands each line to the OS as it is written, so a controller that is killed
//! leaves a checkable prefix.
//!
//! # `results.json`
//!
//! Written by the checker through [`RunDir::write_results`]; its schema is
//! documented on [`crate::report`], which renders it.

use faultline_checker::{Event, Verdict};
use serde::Serialize;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// File names inside a run directory.
pub const TEST_JSON: &str = "test.json";
pub const HISTORY_JSONL: &str = "history.jsonl";
pub const RESULTS_JSON: &str = "results.json";
pub const REPORT_HTML: &str = "report.html";
pub const TIMELINE_HTML: &str = "timeline.html";
pub const LATENCY_RAW_PNG: &str = "latency-raw.png";
pub const LATENCY_QUANTILES_PNG: &str = "latency-quantiles.png";
pub const RATE_PNG: &str = "rate.png";
pub const NODES_DIR: &str = "nodes";
pub const LATEST: &str = "latest";

/// What can go wrong with the store. Every I/O error names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: not a run directory (expected <store>/<test-name>/<timestamp>)", path.display())]
    NotARun { path: PathBuf },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that a test or node name is one safe path component: it becomes a
/// directory name, so it must not climb out of the store.
pub fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(StoreError::InvalidName {
            what,
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("contains a path separator");
    }
    if name.contains("..") {
        return bad("contains `..`");
    }
    if name == "." || name.starts_with('.') {
        return bad("starts with `.` (hidden or special)");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    if name == LATEST {
        return bad("`latest` is reserved");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    Ok(())
}

/// A store rooted at a directory (created on first run). The layout is in
/// the [module docs](self): `<root>/<test-name>/<timestamp>/` per run, plus
/// `<root>/<test-name>/latest`.
///
/// ```no_run
/// # fn main() -> Result<(), faultline_results::StoreError> {
/// use faultline_results::Store;
/// let store = Store::new("store");
/// let run = store.create_run("etcd-register", &serde_json::json!({"seed": 42}))?;
/// let mut history = run.history_writer()?; // history.jsonl, flushed per event
/// # let events: Vec<faultline_checker::Event> = vec![];
/// for ev in &events {
///     history.write(ev)?;
/// }
/// history.close()?;
/// run.write_results(&serde_json::json!({"valid": true}))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// One run's directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    test: String,
    name: String,
    path: PathBuf,
}

/// One run, as listed by [`Store::runs`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    pub test: String,
    /// The run directory's name, e.g. `20261126T005011.123Z`.
    pub time: String,
    pub dir: PathBuf,
    /// From `results.json`'s `valid` (`true`, `false`, `"unknown"`); `None`
    /// when there is no readable `results.json` yet (a run in progress, or
    /// one that was killed before the check).
    pub verdict: Option<Verdict>,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates `<root>/<test>/<timestamp>/` with `test.json` in it, and points
    /// `<root>/<test>/latest` at it.
    pub fn create_run(&self, test_name: &str, test_json: &serde_json::Value) -> Result<RunDir> {
        validate_name("test", test_name)?;
        let test_dir = self.root.join(test_name);
        fs::create_dir_all(&test_dir).map_err(io_err("creating", &test_dir))?;
        let base = utc_timestamp(SystemTime::now());
        let mut n = 1u32;
        let (name, path) = loop {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let path = test_dir.join(&name);
            // create_dir (not _all) fails if it exists: the atomic claim.
            match fs::create_dir(&path) {
                Ok(()) => break (name, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                Err(e) => return Err(io_err("creating", &path)(e)),
            }
        };
        let run = RunDir {
            test: test_name.to_string(),
            name,
            path,
        };
        write_json_atomic(&run.path.join(TEST_JSON), test_json)?;
        update_latest(&test_dir, &run.name)?;
        Ok(run)
    }

    /// Every run of every test, sorted by test name then time (oldest first).
    /// A missing store root is an empty list.
    pub fn runs(&self) -> Result<Vec<RunSummary>> {
        let mut out = Vec::new();
        let tests = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("listing", &self.root)(e)),
        };
        for t in tests {
            let t = t.map_err(io_err("listing", &self.root))?;
            let test = t.file_name().to_string_lossy().into_owned();
            // file_type does not follow symlinks: skip files and links.
            if validate_name("test", &test).is_err() || !t.file_type().is_ok_and(|ft| ft.is_dir()) {
                continue;
            }
            let tdir = t.path();
            for r in fs::read_dir(&tdir).map_err(io_err("listing", &tdir))? {
                let r = r.map_err(io_err("listing", &tdir))?;
                let name = r.file_name().to_string_lossy().into_owned();
                if parse_run_name(&name).is_none() || !r.file_type().is_ok_and(|ft| ft.is_dir()) {
                    continue;
                }
                let dir = r.path();
                let verdict = read_verdict(&dir.join(RESULTS_JSON));
                out.push(RunSummary {
                    test: test.clone(),
                    time: name,
                    dir,
                    verdict,
                });
            }
        }
        out.sort_by(|a, b| {
            a.test
                .cmp(&b.test)
                .then_with(|| parse_run_name(&a.time).cmp(&parse_run_name(&b.time)))
        });
        Ok(out)
    }
}

/// Reads a verdict from `results.json` without failing: a listing must not
/// stop at one broken run.
fn read_verdict(path: &Path) -> Option<Verdict> {
    let text = fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    verdict_of(&v)
}

/// The verdict `results.json` states in `valid` (`true`, `false` or
/// `"unknown"`); `None` when it states none. Reading, not judging.
pub fn verdict_of(results: &serde_json::Value) -> Option<Verdict> {
    let v = results.get("valid").or_else(|| results.get("valid?"))?;
    match v {
        serde_json::Value::Bool(true) => Some(Verdict::Valid),
        serde_json::Value::Bool(false) => Some(Verdict::Invalid),
        serde_json::Value::String(s) if s.trim_start_matches(':') == "unknown" => {
            Some(Verdict::Unknown)
        }
        _ => None,
    }
}

/// Splits `20261126T005011.123Z` or `…Z-3` into (timestamp, sequence).
fn parse_run_name(name: &str) -> Option<(&str, u32)> {
    let (ts, seq) = match name.split_once("Z-") {
        Some((ts, seq)) => (ts, seq.parse::<u32>().ok()?),
        None => (name.strip_suffix('Z')?, 1),
    };
    let b = ts.as_bytes();
    let ok = b.len() == 19
        && b[8] == b'T'
        && b[15] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || i == 15 || c.is_ascii_digit());
    ok.then_some((ts, seq))
}

/// Points `<test_dir>/latest` at `name`: a temporary symlink renamed over the
/// old one, so a reader never sees `latest` missing.
#[cfg(unix)]
fn update_latest(test_dir: &Path, name: &str) -> Result<()> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = test_dir.join(format!(".latest.{}.{nanos}", std::process::id()));
    // Relative target: the store can be moved or copied as a whole.
    std::os::unix::fs::symlink(name, &tmp).map_err(io_err("creating symlink", &tmp))?;
    let latest = test_dir.join(LATEST);
    fs::rename(&tmp, &latest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("replacing", &latest)(e)
    })
}

/// Without symlinks, `latest` is a file holding the run's directory name.
#[cfg(not(unix))]
fn update_latest(test_dir: &Path, name: &str) -> Result<()> {
    let tmp = test_dir.join(".latest.tmp");
    fs::write(&tmp, name).map_err(io_err("writing", &tmp))?;
    let latest = test_dir.join(LATEST);
    fs::rename(&tmp, &latest).map_err(io_err("replacing", &latest))
}

/// Writes pretty JSON to a temporary file and renames it into place, so a
/// reader (or `faultline serve`) never sees half a file.
fn write_json_atomic(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Writes bytes to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(io_err("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("renaming into", path)(e)
    })
}

/// `YYYYMMDDTHHMMSS.mmmZ` in UTC (computed here to avoid a date crate).
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{y:04}{m:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl RunDir {
    /// Opens an existing run directory (`faultline check RUN_DIR`). The test
    /// name is the parent directory's name; `latest` is resolved.
    pub fn open(path: impl AsRef<Path>) -> Result<RunDir> {
        let given = path.as_ref();
        let path = fs::canonicalize(given).map_err(io_err("opening", given))?;
        if !path.is_dir() {
            return Err(StoreError::NotARun { path });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| StoreError::NotARun { path: path.clone() })?;
        let test = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| StoreError::NotARun { path: path.clone() })?;
        Ok(RunDir { test, name, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn test_name(&self) -> &str {
        &self.test
    }

    /// The directory name, e.g. `20261126T005011.123Z`.
    pub fn time(&self) -> &str {
        &self.name
    }

    /// A file of this run, e.g. `run.file(store::REPORT_HTML)`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates `history.jsonl` (truncating any previous one).
    pub fn history_writer(&self) -> Result<HistoryWriter> {
        HistoryWriter::create(&self.file(HISTORY_JSONL))
    }

    /// Writes `results.json` atomically (pretty JSON).
    pub fn write_results(&self, results: &serde_json::Value) -> Result<()> {
        write_json_atomic(&self.file(RESULTS_JSON), results)
    }

    /// Reads `results.json`.
    pub fn read_results(&self) -> Result<serde_json::Value> {
        read_json(&self.file(RESULTS_JSON))
    }

    /// Reads `test.json`.
    pub fn read_test_json(&self) -> Result<serde_json::Value> {
        read_json(&self.file(TEST_JSON))
    }

    /// `nodes/<node>/`, created if needed; the node name is validated.
    pub fn node_dir(&self, node: &str) -> Result<PathBuf> {
        validate_name("node", node)?;
        let p = self.path.join(NODES_DIR).join(node);
        fs::create_dir_all(&p).map_err(io_err("creating", &p))?;
        Ok(p)
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = fs::read_to_string(path).map_err(io_err("reading", path))?;
    serde_json::from_str(&text).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Appends events to `history.jsonl`, one line each, handing every line to
/// the OS before returning (a killed controller loses nothing written; a
/// crashed machine may, since we do not fsync per event — that would cost a
/// disk round trip per operation).
#[derive(Debug)]
pub struct HistoryWriter {
    // Unbuffered on purpose: one write(2) per complete line, so a kill never
    // leaves a buffered tail behind and rarely a torn line.
    file: File,
    path: PathBuf,
    next_index: u64,
    line: Vec<u8>,
}

/// The on-disk shape of one event; field order is the documented one.
#[derive(Serialize)]
struct Line<'a> {
    index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
    process: serde_json::Value,
    #[serde(rename = "type")]
    kind: &'static str,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a serde_json::Value>,
    value: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a serde_json::Value>,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> Result<HistoryWriter> {
        let file = File::create(path).map_err(io_err("creating", path))?;
        Ok(HistoryWriter {
            file,
            path: path.to_path_buf(),
            next_index: 0,
            line: Vec::with_capacity(256),
        })
    }

    /// Writes one event. `index` is the event's own when set, otherwise the
    /// next number after the previous line's.
    pub fn write(&mut self, ev: &Event) -> Result<()> {
        let index = ev.index.unwrap_or(self.next_index);
        let line = Line {
            index,
            time: ev.time,
            process: ev.process.to_value(),
            kind: ev.kind.as_str(),
            f: &ev.f,
            key: ev.key.as_deref(),
            value: &ev.value,
            node: ev.node.as_deref(),
            error: ev.error.as_deref(),
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &line).map_err(|source| StoreError::Json {
            path: self.path.clone(),
            source,
        })?;
        self.line.push(b'\n');
        self.file
            .write_all(&self.line)
            .map_err(io_err("appending to", &self.path))?;
        self.next_index = index + 1;
        Ok(())
    }

    /// Ends the history: flushes to disk (fsync), reporting any error that
    /// dropping would swallow.
    pub fn close(self) -> Result<()> {
        self.file.sync_all().map_err(io_err("syncing", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_and_sortable() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_654_211_123);
        assert_eq!(utc_timestamp(t), "20261126T005011.123Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101T000000.000Z");
        // a leap day
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(t), "20000229T000000.000Z");
    }

    #[test]
    fn run_names_parse_and_order() {
        assert_eq!(
            parse_run_name("20261126T005011.123Z"),
            Some(("20261126T005011.123", 1))
        );
        assert_eq!(
            parse_run_name("20261126T005011.123Z-12"),
            Some(("20261126T005011.123", 12))
        );
        assert!(parse_run_name("latest").is_none());
        assert!(parse_run_name("2026112xT005011.123Z").is_none());
        assert!(
            parse_run_name("20261126T005011.123Z-2") < parse_run_name("20261126T005011.123Z-10")
        );
    }

    #[test]
    fn names_that_escape_are_rejected() {
        for bad in [
            "", "a/b", "..", "../x", "a..b", ".hidden", "latest", "a\\b", "a\nb",
        ] {
            assert!(validate_name("test", bad).is_err(), "{bad:?}");
        }
        for good in ["etcd-register", "raft_3nodes", "pg.serializable"] {
            assert!(validate_name("test", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn verdict_is_read_not_judged() {
        use serde_json::json;
        assert_eq!(verdict_of(&json!({"valid": true})), Some(Verdict::Valid));
        assert_eq!(verdict_of(&json!({"valid": false})), Some(Verdict::Invalid));
        assert_eq!(
            verdict_of(&json!({"valid": "unknown"})),
            Some(Verdict::Unknown)
        );
        assert_eq!(verdict_of(&json!({"anomalies": []})), None);
    }
}
