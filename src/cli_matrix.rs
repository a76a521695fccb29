//! `faultline matrix FILE.toml`: a nightly run. Every combination of
//! targets × workloads × nemesis sets × seeds runs in sequence, each as its
//! own `faultline test` process (this binary: a crash or a leaked fault in
//! one run cannot take the others down, and `test` stays the one place
//! that knows how to run a test). One progress line covers the whole
//! matrix; the results land in `<store>/matrix/<timestamp>/`:
//!
//! - `summary.json`: every run (verdict, exit code, anomalies, report);
//! - `summary.html`: the same as a page, linking each report;
//! - `junit.xml`: one testcase per run; `invalid` is a failure carrying the
//!   anomaly types and the report's path, `unknown` and failed runs are
//!   errors with the reason;
//! - `logs/NNN-….log`: each run's stdout and stderr.
//!
//! Exit code: the worst run's, ordered invalid (1) > run failed (3) >
//! unknown (2) > valid (0), as `faultline test --test-count`. The file's
//! format is in docs/nightly.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::usage;
use faultline_results::store;

#[derive(Args, Debug, Clone)]
#[command(after_long_help = "\
Exit code: the worst run's: invalid 1 > run failed 3 > unknown 2 > valid 0.

Example file (docs/nightly.md has every key):
  targets   = [\"etcd\", \"raft\"]
  workloads = [\"register\", \"list-append\"]
  nemeses   = [\"none\", \"partition,kill\"]
  seeds     = [1, 2]
  time_limit = 60")]
pub struct MatrixArgs {
    /// The matrix: a TOML file of targets, workloads, nemesis sets, seeds
    /// and nodes (docs/nightly.md)
    pub file: PathBuf,

    /// Store directory (overrides the file's `store`; default: store)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Print the runs the matrix would make and exit
    #[arg(long)]
    pub dry_run: bool,
}

/// A nemesis set: `"partition,kill"` or `["partition", "kill"]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum NemesisSet {
    One(String),
    List(Vec<String>),
}

impl NemesisSet {
    fn flag(&self) -> String {
        let parts: Vec<String> = match self {
            NemesisSet::One(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
            NemesisSet::List(v) => v.iter().map(|p| p.trim().to_string()).collect(),
        };
        let parts: Vec<String> = parts
            .into_iter()
            .filter(|p| !p.is_empty() && p != "none")
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(",")
        }
    }
}

/// Leaves out the runs it matches (every key given must match).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
struct Exclude {
    target: Option<String>,
    workload: Option<String>,
    nemesis: Option<NemesisSet>,
}

/// The matrix file (docs/nightly.md).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    name: Option<String>,
    targets: Vec<String>,
    workloads: Vec<String>,
    #[serde(default)]
    nemeses: Vec<NemesisSet>,
    #[serde(default)]
    seeds: Vec<u64>,
    #[serde(default)]
    exclude: Vec<Exclude>,
    /// Seeded bugs per target: `bugs = { paxos = ["minority-quorum"] }`.
    #[serde(default)]
    bugs: BTreeMap<String, Vec<String>>,
    time_limit: Option<f64>,
    nemesis_interval: Option<f64>,
    concurrency: Option<usize>,
    rate: Option<f64>,
    op_timeout: Option<f64>,
    check_time_limit: Option<f64>,
    node_count: Option<usize>,
    store: Option<PathBuf>,
    lab_dir: Option<PathBuf>,
    node_binary: Option<PathBuf>,
    /// Nodes outside the lab, as for `--nodes`, with the SSH settings
    /// below; or a nodes file (line-based or TOML).
    nodes: Option<Vec<String>>,
    nodes_file: Option<PathBuf>,
    user: Option<String>,
    port: Option<u16>,
    key: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    sudo: Option<bool>,
    accept_new_host_keys: Option<bool>,
    /// More `faultline test` flags for every run.
    #[serde(default)]
    args: Vec<String>,
    /// Where `faultline serve` shows this store (e.g.
    /// `http://ci:8080`): junit links then point there.
    report_url: Option<String>,
    /// Seconds a run may take beyond its time limit before it is stopped
    /// (setup, check, logs). Default 600.
    run_grace: Option<f64>,
}

/// One combination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub target: String,
    pub workload: String,
    pub nemesis: String,
    pub seed: u64,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "{} {} nemesis={} seed={}",
            self.target, self.workload, self.nemesis, self.seed
        )
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Valid,
    Invalid,
    Unknown,
    /// Setup, SSH or the cluster failed, or `test` refused the options.
    Failed,
    /// Not started: the matrix was interrupted.
    NotRun,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Unknown => "unknown",
            Status::Failed => "failed",
            Status::NotRun => "not-run",
        }
    }
    /// invalid > failed > unknown (and not run) > valid.
    fn rank(self) -> u8 {
        match self {
            Status::Valid => 0,
            Status::Unknown | Status::NotRun => 1,
            Status::Failed => 2,
            Status::Invalid => 3,
        }
    }
    fn exit_code(self) -> u8 {
        match self {
            Status::Valid => 0,
            Status::Invalid => 1,
            Status::Unknown | Status::NotRun => 2,
            Status::Failed => 3,
        }
    }
    fn from_exit(code: Option<i32>) -> Status {
        match code {
            Some(0) => Status::Valid,
            Some(1) => Status::Invalid,
            Some(2) => Status::Unknown,
            _ => Status::Failed,
        }
    }
}

/// One run's outcome, as summary.json lists it.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub cell: Cell,
    pub status: Status,
    /// `faultline test`'s exit code (`None`: killed by a signal, or not run).
    pub exit_code: Option<i32>,
    pub anomaly_types: Vec<String>,
    /// Why it is unknown or failed.
    pub reason: Option<String>,
    /// The run directory in the store, and its path relative to the store.
    pub run_dir: Option<PathBuf>,
    pub run_path: Option<String>,
    pub report: Option<PathBuf>,
    /// The run's stdout+stderr, relative to the matrix directory.
    pub log: String,
    pub duration_s: f64,
}

/// The whole matrix, as summary.json holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub file: PathBuf,
    pub started: String,
    pub duration_s: f64,
    pub store: PathBuf,
    pub interrupted: bool,
    pub worst: Status,
    pub exit_code: u8,
    pub counts: BTreeMap<&'static str, usize>,
    pub report_url: Option<String>,
    pub runs: Vec<CellResult>,
}

fn load(path: &Path) -> Result<MatrixFile> {
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let m: MatrixFile =
        toml::from_str(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let bad = |msg: &str| usage(format!("{}: {msg}", path.display()));
    if m.targets.is_empty() {
        return Err(bad("`targets` is empty"));
    }
    if m.workloads.is_empty() {
        return Err(bad("`workloads` is empty"));
    }
    if m.nodes.is_some() && m.nodes_file.is_some() {
        return Err(bad("give `nodes` or `nodes_file`, not both"));
    }
    if (m.user.is_some() || m.port.is_some()) && m.nodes.is_none() {
        return Err(bad(
            "`user` and `port` apply to `nodes` (a nodes file carries its own)",
        ));
    }
    for t in m.bugs.keys() {
        if !m.targets.contains(t) {
            return Err(bad(&format!(
                "`bugs` names {t:?}, which is not in `targets`"
            )));
        }
    }
    Ok(m)
}

/// Every combination, in order: targets, then workloads, nemesis sets and
/// seeds; excluded ones left out.
fn cells(m: &MatrixFile, default_seed: u64) -> Vec<Cell> {
    let nemeses: Vec<String> = if m.nemeses.is_empty() {
        vec!["none".into()]
    } else {
        m.nemeses.iter().map(NemesisSet::flag).collect()
    };
    let seeds = if m.seeds.is_empty() {
        vec![default_seed]
    } else {
        m.seeds.clone()
    };
    let mut out = Vec::new();
    for t in &m.targets {
        for w in &m.workloads {
            for n in &nemeses {
                let skip = m.exclude.iter().any(|x| {
                    x.target.as_ref().is_none_or(|v| v == t)
                        && x.workload.as_ref().is_none_or(|v| v == w)
                        && x.nemesis.as_ref().is_none_or(|v| &v.flag() == n)
                });
                if skip {
                    continue;
                }
                for s in &seeds {
                    out.push(Cell {
                        target: t.clone(),
                        workload: w.clone(),
                        nemesis: n.clone(),
                        seed: *s,
                    });
                }
            }
        }
    }
    out
}

/// Paths in the file are relative to the file.
fn rel_to(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `faultline test` arguments for one cell (after `test`).
fn test_args(
    m: &MatrixFile,
    base: &Path,
    store: &Path,
    nodes_file: Option<&Path>,
    c: &Cell,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--target".into(),
        c.target.clone(),
        "--workload".into(),
        c.workload.clone(),
        "--nemesis".into(),
        c.nemesis.clone(),
        "--seed".into(),
        c.seed.to_string(),
        "--store".into(),
        store.display().to_string(),
    ];
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.into());
            a.push(v);
        }
    };
    opt("--time-limit", m.time_limit.map(|v| v.to_string()));
    opt(
        "--nemesis-interval",
        m.nemesis_interval.map(|v| v.to_string()),
    );
    opt("--concurrency", m.concurrency.map(|v| v.to_string()));
    opt("--rate", m.rate.map(|v| v.to_string()));
    opt("--op-timeout", m.op_timeout.map(|v| v.to_string()));
    opt(
        "--check-time-limit",
        m.check_time_limit.map(|v| v.to_string()),
    );
    opt("--node-count", m.node_count.map(|v| v.to_string()));
    opt(
        "--lab-dir",
        m.lab_dir
            .as_ref()
            .map(|p| rel_to(base, p).display().to_string()),
    );
    opt(
        "--node-binary",
        m.node_binary
            .as_ref()
            .map(|p| rel_to(base, p).display().to_string()),
    );
    opt("--nodes-file", nodes_file.map(|p| p.display().to_string()));
    if nodes_file.is_some() && m.nodes_file.is_some() {
        // A user's own nodes file gets the SSH settings from flags.
        opt(
            "--ssh-key",
            m.key
                .as_ref()
                .map(|p| rel_to(base, p).display().to_string()),
        );
        opt(
            "--known-hosts",
            m.known_hosts
                .as_ref()
                .map(|p| rel_to(base, p).display().to_string()),
        );
        if m.sudo == Some(true) {
            a.push("--sudo".into());
        }
        if m.accept_new_host_keys == Some(true) {
            a.push("--accept-new-host-keys".into());
        }
    }
    for b in m.bugs.get(&c.target).into_iter().flatten() {
        a.push("--bug".into());
        a.push(b.clone());
    }
    a.extend(m.args.iter().cloned());
    a
}

/// The inline `nodes` (with user, port, key, …) as a TOML nodes file for
/// `faultline test --nodes-file`.
fn nodes_toml(m: &MatrixFile, base: &Path) -> Option<String> {
    let nodes = m.nodes.as_ref()?;
    let mut t = toml::Table::new();
    t.insert(
        "nodes".into(),
        toml::Value::Array(
            nodes
                .iter()
                .map(|n| toml::Value::String(n.clone()))
                .collect(),
        ),
    );
    if let Some(u) = &m.user {
        t.insert("user".into(), toml::Value::String(u.clone()));
    }
    if let Some(p) = m.port {
        t.insert("port".into(), toml::Value::Integer(i64::from(p)));
    }
    if let Some(k) = &m.key {
        t.insert(
            "key".into(),
            toml::Value::String(rel_to(base, k).display().to_string()),
        );
    }
    if let Some(k) = &m.known_hosts {
        t.insert(
            "known_hosts".into(),
            toml::Value::String(rel_to(base, k).display().to_string()),
        );
    }
    if let Some(s) = m.sudo {
        t.insert("sudo".into(), toml::Value::Boolean(s));
    }
    if let Some(s) = m.accept_new_host_keys {
        t.insert("accept_new_host_keys".into(), toml::Value::Boolean(s));
    }
    Some(toml::to_string(&t).unwrap_or_default())
}

/// Creates `<store>/matrix/<timestamp>[-N]/`.
fn matrix_dir(store: &Path) -> Result<(String, PathBuf)> {
    let parent = store.join(faultline_results::serve::MATRIX_DIR);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let base = store::utc_timestamp(SystemTime::now());
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let p = parent.join(&name);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok((name, p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(anyhow!("creating {}: {e}", p.display())),
        }
    }
    Err(anyhow!(
        "cannot create a matrix directory in {}",
        parent.display()
    ))
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn run(a: MatrixArgs) -> Result<ExitCode> {
    let m = load(&a.file)?;
    let base = a
        .file
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let default_seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(0);
    let cells = cells(&m, default_seed);
    if cells.is_empty() {
        return Err(usage(format!(
            "{}: every combination is excluded",
            a.file.display()
        )));
    }
    let store = a
        .store
        .clone()
        .or_else(|| m.store.as_ref().map(|s| rel_to(&base, s)))
        .unwrap_or_else(|| PathBuf::from("store"));
    let name = m.name.clone().unwrap_or_else(|| {
        a.file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "matrix".into())
    });
    if a.dry_run {
        for (i, c) in cells.iter().enumerate() {
            let args = test_args(&m, &base, &store, None, c);
            outln!("{:>3}. faultline test {}", i + 1, args.join(" "));
        }
        return Ok(ExitCode::SUCCESS);
    }

    let (started, dir) = matrix_dir(&store)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let nodes_file = match (nodes_toml(&m, &base), &m.nodes_file) {
        (Some(t), _) => {
            let p = dir.join("nodes.toml");
            std::fs::write(&p, t).with_context(|| format!("writing {}", p.display()))?;
            Some(p)
        }
        (None, Some(f)) => Some(rel_to(&base, f)),
        (None, None) => None,
    };
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = Arc::clone(&cancel);
        ctrlc::set_handler(move || {
            if !c.swap(true, Ordering::SeqCst) {
                eprintln!("\nfaultline: interrupted: stopping the current run, skipping the rest");
            }
        })
        .context("installing the SIGINT/SIGTERM handler")?;
    }
    let grace = Duration::from_secs_f64(m.run_grace.unwrap_or(600.0).max(1.0));
    let run_limit = Duration::from_secs_f64(m.time_limit.unwrap_or(60.0).max(0.0)) + grace;
    eprintln!(
        "faultline: matrix {name}: {} runs, results in {}",
        cells.len(),
        dir.display()
    );

    let tty =
        std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let bar = tty.then(|| {
        let pb = indicatif::ProgressBar::new(cells.len() as u64);
        let tpl = if std::env::var_os("NO_COLOR").is_some() {
            "[{bar:20}] {pos}/{len} {elapsed_precise} {msg}"
        } else {
            "[{bar:20.cyan/blue}] {pos}/{len} {elapsed_precise} {msg}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(tpl) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.enable_steady_tick(Duration::from_millis(500));
        pb
    });

    let t0 = Instant::now();
    let mut results: Vec<CellResult> = Vec::new();
    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        let log_rel = format!(
            "logs/{:03}-{}-{}-{}-s{}.log",
            i + 1,
            slug(&c.target),
            slug(&c.workload),
            slug(&c.nemesis),
            c.seed
        );
        if cancel.load(Ordering::SeqCst) {
            results.push(CellResult {
                cell: c.clone(),
                status: Status::NotRun,
                exit_code: None,
                anomaly_types: vec![],
                reason: Some("not run: the matrix was interrupted".into()),
                run_dir: None,
                run_path: None,
                report: None,
                log: log_rel,
                duration_s: 0.0,
            });
            continue;
        }
        let so_far: Vec<String> = tally.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let msg = format!("{} · {}", c.label(), so_far.join(", "));
        match &bar {
            Some(pb) => pb.set_message(msg),
            None => eprintln!("[{}/{}] {}", i + 1, cells.len(), c.label()),
        }
        let args = test_args(&m, &base, &store, nodes_file.as_deref(), c);
        let r = run_cell(&exe, &args, c, &dir, &log_rel, &store, run_limit, &cancel);
        let line = format!(
            "[{}/{}] {}: {}{} ({:.1} s)",
            i + 1,
            cells.len(),
            c.label(),
            r.status.name(),
            if r.anomaly_types.is_empty() {
                String::new()
            } else {
                format!(" {}", r.anomaly_types.join(","))
            },
            r.duration_s
        );
        match &bar {
            Some(pb) => {
                pb.println(line);
                pb.inc(1);
            }
            None => eprintln!("{line}"),
        }
        *tally.entry(r.status.name()).or_default() += 1;
        results.push(r);
        // Write as we go: a killed matrix keeps what it finished.
        let partial = summarize(&name, &a.file, &started, t0, &store, &m, &results, true);
        let _ = write_outputs(&dir, &partial);
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let interrupted = cancel.load(Ordering::SeqCst);
    let summary = summarize(
        &name,
        &a.file,
        &started,
        t0,
        &store,
        &m,
        &results,
        interrupted,
    );
    write_outputs(&dir, &summary)?;
    let counts: Vec<String> = summary
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    outln!(
        "matrix {name}: {} runs: {}; worst {} (exit {})",
        summary.runs.len(),
        counts.join(", "),
        summary.worst.name(),
        summary.exit_code
    );
    outln!("summary: {}", dir.join("summary.html").display());
    outln!("junit: {}", dir.join("junit.xml").display());
    Ok(ExitCode::from(summary.exit_code))
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    name: &str,
    file: &Path,
    started: &str,
    t0: Instant,
    store: &Path,
    m: &MatrixFile,
    results: &[CellResult],
    interrupted: bool,
) -> Summary {
    let worst = results
        .iter()
        .map(|r| r.status)
        .max_by_key(|s| s.rank())
        .unwrap_or(Status::Valid);
    let mut counts: BTreeMap<&'static str, usize> =
        ["valid", "invalid", "unknown", "failed", "not-run"]
            .into_iter()
            .map(|k| (k, 0))
            .collect();
    for r in results {
        *counts.entry(r.status.name()).or_default() += 1;
    }
    let worst = if interrupted && worst.rank() < Status::Unknown.rank() {
        Status::Unknown
    } else {
        worst
    };
    Summary {
        name: name.to_string(),
        file: file.to_path_buf(),
        started: started.to_string(),
        duration_s: t0.elapsed().as_secs_f64(),
        store: store.to_path_buf(),
        interrupted,
        worst,
        exit_code: worst.exit_code(),
        counts,
        report_url: m.report_url.clone(),
        runs: results.to_vec(),
    }
}

fn write_outputs(dir: &Path, s: &Summary) -> Result<()> {
    let mut json = serde_json::to_string_pretty(s)?;
    json.push('\n');
    store::write_atomic(&dir.join("summary.json"), json.as_bytes())?;
    store::write_atomic(&dir.join("junit.xml"), junit_xml(s).as_bytes())?;
    store::write_atomic(&dir.join("summary.html"), summary_html(s).as_bytes())?;
    Ok(())
}

/// Runs one `faultline test`, stopping it (SIGTERM, then SIGKILL 30 s
/// later) when the matrix is interrupted or the run overruns `limit`.
#[allow(clippy::too_many_arguments)]
fn run_cell(
    exe: &Path,
    args: &[String],
    c: &Cell,
    dir: &Path,
    log_rel: &str,
    store_dir: &Path,
    limit: Duration,
    cancel: &AtomicBool,
) -> CellResult {
    let t0 = Instant::now();
    let log_path = dir.join(log_rel);
    let mut result = CellResult {
        cell: c.clone(),
        status: Status::Failed,
        exit_code: None,
        anomaly_types: vec![],
        reason: None,
        run_dir: None,
        run_path: None,
        report: None,
        log: log_rel.to_string(),
        duration_s: 0.0,
    };
    let spawned = std::fs::File::create(&log_path)
        .and_then(|f| Ok((f.try_clone()?, f)))
        .and_then(|(out, err)| {
            let mut log = out.try_clone()?;
            let _ = writeln!(log, "$ faultline test {}", args.join(" "));
            use std::os::unix::process::CommandExt;
            Command::new(exe)
                .arg("test")
                .args(args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                // Its own process group: a terminal's Ctrl-C reaches only the
                // matrix, which sends one SIGTERM (a second signal would make
                // `test` exit without healing).
                .process_group(0)
                .spawn()
        });
    let mut child = match spawned {
        Ok(ch) => ch,
        Err(e) => {
            result.reason = Some(format!("starting {}: {e}", exe.display()));
            return result;
        }
    };
    let mut stopped_at: Option<Instant> = None;
    let mut why_stopped = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(e) => {
                result.reason = Some(format!("waiting for the run: {e}"));
                break None;
            }
        }
        let overrun = t0.elapsed() > limit;
        if stopped_at.is_none() && (cancel.load(Ordering::SeqCst) || overrun) {
            why_stopped = Some(if overrun {
                format!(
                    "stopped after {:.0} s (time limit + run_grace)",
                    limit.as_secs_f64()
                )
            } else {
                "interrupted".to_string()
            });
            // SIGTERM lets `test` heal faults, tear down and write its report.
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    result.duration_s = t0.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    result.exit_code = status.and_then(|s| s.code());
    result.status = Status::from_exit(result.exit_code);
    if status.is_some() && result.exit_code.is_none() {
        result.reason = Some("killed by a signal".into());
    }
    // `test` prints `report: <run dir>/report.html` once the run is stored.
    let report = log
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("report: "))
        .map(PathBuf::from);
    if let Some(rep) = report {
        let run_dir = rep.parent().map(Path::to_path_buf);
        if let Some(d) = &run_dir {
            let info = faultline_results::serve::run_info(
                &d.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                &d.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                d,
            );
            result.anomaly_types = info.anomaly_types;
            if result.status != Status::Valid {
                result.reason = result.reason.take().or(info.reason);
            }
            result.run_path = d
                .strip_prefix(store_dir)
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
                .or(Some(info.path));
        }
        result.run_dir = run_dir;
        result.report = Some(rep);
    }
    if result.exit_code == Some(64) {
        result.reason = Some(format!(
            "faultline test refused this combination: {}",
            last_error(&log).unwrap_or_else(|| "see the log".into())
        ));
    } else if result.status == Status::Failed && result.reason.is_none() {
        result.reason = last_error(&log);
    }
    if let Some(w) = why_stopped {
        result.reason = Some(match result.reason.take() {
            Some(r) => format!("{w}: {r}"),
            None => w,
        });
        if result.status == Status::Valid {
            result.status = Status::Unknown;
        }
    }
    result
}

/// The last `faultline: …` error line of a log.
fn last_error(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .find(|l| l.starts_with("faultline: ") && !l.starts_with("faultline: warning"))
        .map(|l| l.trim_start_matches("faultline: ").to_string())
}

/// Text safe inside XML: escaped, and without characters XML 1.0 forbids
/// (terminal escapes from a log would make the file unreadable).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Where a run's report is linked from the matrix directory's files:
/// `report_url` when set, else relative (`../../<test>/<time>/report.html`,
/// the store layout), else the absolute path.
fn report_link(s: &Summary, r: &CellResult) -> Option<String> {
    let rp = r.run_path.as_ref()?;
    Some(match &s.report_url {
        Some(u) => format!("{}/runs/{rp}/report.html", u.trim_end_matches('/')),
        None => format!("../../{rp}/report.html"),
    })
}

/// `junit.xml`: one testsuite, one testcase per run.
pub fn junit_xml(s: &Summary) -> String {
    let count = |st: &[Status]| s.runs.iter().filter(|r| st.contains(&r.status)).count();
    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        x,
        "<testsuites name=\"faultline matrix {n}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" \
         skipped=\"{k}\" time=\"{d:.3}\">",
        n = xml(&s.name),
        t = s.runs.len(),
        f = count(&[Status::Invalid]),
        e = count(&[Status::Unknown, Status::Failed]),
        k = count(&[Status::NotRun]),
        d = s.duration_s
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{n}\" timestamp=\"{ts}\" tests=\"{t}\" failures=\"{f}\" \
         errors=\"{e}\" skipped=\"{k}\" time=\"{d:.3}\">",
        n = xml(&s.name),
        ts = xml(&s.started),
        t = s.runs.len(),
        f = count(&[Status::Invalid]),
        e = count(&[Status::Unknown, Status::Failed]),
        k = count(&[Status::NotRun]),
        d = s.duration_s
    );
    for r in &s.runs {
        let c = &r.cell;
        let _ = write!(
            x,
            "    <testcase classname=\"faultline.{t}.{w}\" name=\"nemesis={n} seed={seed}\" \
             time=\"{d:.3}\"",
            t = xml(&c.target),
            w = xml(&c.workload),
            n = xml(&c.nemesis),
            seed = c.seed,
            d = r.duration_s
        );
        let link = report_link(s, r);
        let mut detail = String::new();
        if let Some(rep) = &r.report {
            let _ = writeln!(detail, "report: {}", rep.display());
        }
        if let Some(l) = &link {
            let _ = writeln!(detail, "link: {l}");
        }
        let _ = writeln!(detail, "log: {}", r.log);
        let _ = writeln!(
            detail,
            "exit code: {}",
            r.exit_code.map_or("none".into(), |c| c.to_string())
        );
        let body = match r.status {
            Status::Valid => None,
            Status::Invalid => {
                let types = if r.anomaly_types.is_empty() {
                    "no anomaly types recorded (see the report)".to_string()
                } else {
                    r.anomaly_types.join(", ")
                };
                Some(format!(
                    "<failure type=\"invalid\" message=\"invalid: {}{}\">{}</failure>",
                    xml(&types),
                    link.as_ref()
                        .map(|l| format!(" — {}", xml(l)))
                        .unwrap_or_default(),
                    xml(&format!("anomalies: {types}\n{detail}"))
                ))
            }
            Status::Unknown | Status::Failed => Some(format!(
                "<error type=\"{}\" message=\"{}: {}\">{}</error>",
                r.status.name(),
                r.status.name(),
                xml(r.reason.as_deref().unwrap_or("see the log")),
                xml(&detail)
            )),
            Status::NotRun => Some(format!(
                "<skipped message=\"{}\"/>",
                xml(r.reason.as_deref().unwrap_or("not run"))
            )),
        };
        match body {
            None => {
                let _ = writeln!(
                    x,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml(&detail)
                );
            }
            Some(b) => {
                let _ = writeln!(x, ">\n      {b}\n    </testcase>");
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// `summary.html`: the matrix as a table, linking each report and log.
pub fn summary_html(s: &Summary) -> String {
    use faultline_results::timeline::escape;
    let colour = |st: Status| match st {
        Status::Valid => "#2e7d32",
        Status::Invalid => "#c62828",
        Status::Unknown => "#ef6c00",
        Status::Failed => "#6a1b9a",
        Status::NotRun => "#9e9e9e",
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>matrix {n} — {t}</title>\
         <style>body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
         td,th{{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}}\
         .b{{color:#fff;border-radius:3px;padding:1px 6px}}</style></head><body>\n\
         <h1>matrix {n}</h1>\n<p>started {t} · {runs} runs in {d:.0} s · worst \
         <span class=\"b\" style=\"background:{c}\">{w}</span> (exit {x}){i} · \
         <a href=\"summary.json\">summary.json</a> · <a href=\"junit.xml\">junit.xml</a></p>\n<p>",
        n = escape(&s.name),
        t = escape(&faultline_results::serve::display_time(&s.started)),
        runs = s.runs.len(),
        d = s.duration_s,
        c = colour(s.worst),
        w = s.worst.name(),
        x = s.exit_code,
        i = if s.interrupted { " · interrupted" } else { "" },
    );
    for (k, v) in &s.counts {
        let _ = write!(h, "{v} {k} · ");
    }
    h.push_str(
        "</p>\n<table><tr><th>#</th><th>target</th><th>workload</th><th>nemesis</th><th>seed</th>\
         <th>verdict</th><th>anomalies / reason</th><th>time</th><th>report</th><th>log</th></tr>\n",
    );
    for (i, r) in s.runs.iter().enumerate() {
        let c = &r.cell;
        let what = if r.anomaly_types.is_empty() {
            r.reason.clone().unwrap_or_default()
        } else {
            r.anomaly_types.join(", ")
        };
        let report = report_link(s, r)
            .map(|l| format!("<a href=\"{}\">report</a>", escape(&l)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"b\" \
             style=\"background:{}\">{}</span></td><td>{}</td><td>{:.1} s</td><td>{report}</td>\
             <td><a href=\"{}\">log</a></td></tr>",
            i + 1,
            escape(&c.target),
            escape(&c.workload),
            escape(&c.nemesis),
            c.seed,
            colour(r.status),
            r.status.name(),
            escape(&what),
            r.duration_s,
            escape(&r.log),
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// summary.json as a value (for tests and tools).
#[allow(dead_code)]
pub fn summary_value(s: &Summary) -> Value {
    json!(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> MatrixFile {
        toml::from_str(t).expect("parse")
    }

    #[test]
    fn cells_cover_the_product_minus_excludes() {
        let m = parse(
            r#"
            targets = ["etcd", "noop"]
            workloads = ["register", "list-append"]
            nemeses = ["none", ["partition", "kill"]]
            seeds = [1, 2]
            [[exclude]]
            target = "noop"
            nemesis = "partition,kill"
            "#,
        );
        let c = cells(&m, 9);
        // 2×2×2×2 = 16, minus noop × 2 workloads × partition,kill × 2 seeds
        assert_eq!(c.len(), 12);
        assert_eq!(c[0].label(), "etcd register nemesis=none seed=1");
        assert_eq!(c[3].nemesis, "partition,kill");
        assert!(!c.iter().any(|c| c.target == "noop" && c.nemesis != "none"));
        let m = parse("targets = [\"noop\"]\nworkloads = [\"set\"]\n");
        assert_eq!(
            cells(&m, 9),
            vec![Cell {
                target: "noop".into(),
                workload: "set".into(),
                nemesis: "none".into(),
                seed: 9
            }]
        );
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let d = tempfile_dir();
        let p = d.join("m.toml");
        std::fs::write(
            &p,
            "targets = [\"etcd\"]\nworkloads = [\"register\"]\ntime_limt = 5\n",
        )
        .unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(
            e.contains("m.toml") && e.contains("time_limt") && e.contains("line 3"),
            "{e}"
        );
        std::fs::write(&p, "targets = []\nworkloads = [\"register\"]\n").unwrap();
        assert!(format!("{:#}", load(&p).unwrap_err()).contains("`targets` is empty"));
        std::fs::write(
            &p,
            "targets = [\"raft\"]\nworkloads = [\"set\"]\nbugs = { paxos = [\"x\"] }\n",
        )
        .unwrap();
        assert!(format!("{:#}", load(&p).unwrap_err()).contains("not in `targets`"));
        let _ = std::fs::remove_dir_all(&d);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "faultline-matrix-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn args_and_inline_nodes() {
        let m = parse(
            r#"
            targets = ["paxos"]
            workloads = ["register"]
            time_limit = 5
            nemesis_interval = 2
            nodes = ["n1=10.0.0.5", "n2=10.0.0.6"]
            user = "admin"
            port = 2222
            key = "keys/id"
            sudo = true
            bugs = { paxos = ["minority-quorum"] }
            args = ["--concurrency", "3"]
            "#,
        );
        let c = &cells(&m, 1)[0];
        let a = test_args(
            &m,
            Path::new("/etc/nightly"),
            Path::new("/s"),
            Some(Path::new("/m/nodes.toml")),
            c,
        );
        let s = a.join(" ");
        assert!(
            s.starts_with("--target paxos --workload register --nemesis none --seed 1 --store /s"),
            "{s}"
        );
        assert!(s.contains("--time-limit 5 --nemesis-interval 2"), "{s}");
        assert!(s.contains("--nodes-file /m/nodes.toml"), "{s}");
        assert!(s.ends_with("--bug minority-quorum --concurrency 3"), "{s}");
        let t: toml::Table =
            toml::from_str(&nodes_toml(&m, Path::new("/etc/nightly")).unwrap()).unwrap();
        assert_eq!(t["user"].as_str(), Some("admin"));
        assert_eq!(t["port"].as_integer(), Some(2222));
        assert_eq!(t["key"].as_str(), Some("/etc/nightly/keys/id"));
        assert_eq!(t["nodes"].as_array().map(Vec::len), Some(2));
    }

    fn result(status: Status, types: &[&str], reason: Option<&str>) -> CellResult {
        CellResult {
            cell: Cell {
                target: "raft".into(),
                workload: "list-append".into(),
                nemesis: "partition,kill".into(),
                seed: 3,
            },
            status,
            exit_code: Some(status.exit_code().into()),
            anomaly_types: types.iter().map(|s| s.to_string()).collect(),
            reason: reason.map(str::to_string),
            run_dir: Some("/s/raft-list-append/20261126T000000.000Z".into()),
            run_path: Some("raft-list-append/20261126T000000.000Z".into()),
            report: Some("/s/raft-list-append/20261126T000000.000Z/report.html".into()),
            log: "logs/001.log".into(),
            duration_s: 1.5,
        }
    }

    #[test]
    fn junit_counts_and_worst() {
        let m = MatrixFile::default();
        let rs = vec![
            result(Status::Valid, &[], None),
            result(Status::Invalid, &["G1c", "G-single"], None),
            result(
                Status::Unknown,
                &[],
                Some("checker budget <spent> \u{1b}[0m"),
            ),
            result(Status::Failed, &[], Some("ssh: n2 unreachable")),
            result(Status::NotRun, &[], Some("interrupted")),
        ];
        let s = summarize(
            "nightly",
            Path::new("m.toml"),
            "20261126T000000.000Z",
            Instant::now(),
            Path::new("/s"),
            &m,
            &rs,
            true,
        );
        assert_eq!(s.worst, Status::Invalid);
        assert_eq!(s.exit_code, 1);
        assert_eq!(s.counts["invalid"], 1);
        assert_eq!(s.counts["not-run"], 1);
        let x = junit_xml(&s);
        assert!(
            x.contains("tests=\"5\" failures=\"1\" errors=\"2\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains(
            "<failure type=\"invalid\" message=\"invalid: G1c, G-single — ../../raft-list-append/20261126T000000.000Z/report.html\">"
        ), "{x}");
        assert!(x.contains("checker budget &lt;spent&gt; ?[0m"), "{x}");
        assert!(!x.contains('\u{1b}'));
        assert_eq!(x.matches("<testcase ").count(), 5);
        let h = summary_html(&s);
        assert_eq!(h.matches("<tr><td>").count(), 5);

        // Failed outranks unknown; all valid is exit 0.
        let s2 = summarize(
            "n",
            Path::new("m"),
            "t",
            Instant::now(),
            Path::new("/s"),
            &m,
            &[
                result(Status::Unknown, &[], None),
                result(Status::Failed, &[], None),
            ],
            false,
        );
        assert_eq!((s2.worst, s2.exit_code), (Status::Failed, 3));
        let s3 = summarize(
            "n",
            Path::new("m"),
            "t",
            Instant::now(),
            Path::new("/s"),
            &m,
            &[result(Status::Valid, &[], None)],
            false,
        );
        assert_eq!(s3.exit_code, 0);
        let m4 = MatrixFile {
            report_url: Some("http://ci:8080/".into()),
            ..MatrixFile::default()
        };
        let s4 = summarize(
            "n",
            Path::new("m"),
            "t",
            Instant::now(),
            Path::new("/s"),
            &m4,
            &[result(Status::Invalid, &["G0"], None)],
            false,
        );
        assert!(
            junit_xml(&s4)
                .contains("http://ci:8080/runs/raft-list-append/20261126T000000.000Z/report.html")
        );
    }
}
