//! `faultline matrix FILE.toml`: a nightly run. The file is axes
//! (targets × workloads × nemesis sets × seeds) and defaults (time limit,
//! nodes, …); each combination is a test plan (the defaults' plan with the
//! cell's axes), written to `plans/NNN-….json` and run in sequence as its
//! own `faultline test --plan` process (this binary: a crash or a leaked
//! fault in one run cannot take the others down, and `test` stays the one
//! place that knows how to run a test). The file's `args` are flags given
//! with the plan. One progress line covers the whole matrix; the results
//! land in `<store>/matrix/<timestamp>/`:
//!
//! - `summary.json`: every run (verdict, exit code, anomalies, report);
//! - `summary.html`: the same as a page, linking each report;
//! - `junit.xml`: one testcase per run; `invalid` is a failure carrying the
//!   anomaly types and the report's path, `unknown` and failed runs are
//!   errors with the reason;
//! - `logs/NNN-….log`: each run's stdout and stderr;
//! - `plans/NNN-….json`: each run's plan.
//!
//! Exit code: the worst run's, ordered invalid (1) > run failed (3) >
//! unknown (2) > valid (0), as `faultline test --test-count`. The file's
//! format is in docs/nightly.md.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use serde::Deserialize;

use crate::cli_test::Plan;
use crate::usage;
use faultline_results::matrix::{Cell, CellResult, Status, Summary, junit_xml, summary_html};
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

/// The plan every cell starts from: the file's defaults (time limit,
/// nodes, …) over `faultline test`'s.
fn base_plan(m: &MatrixFile, base: &Path, store: &Path) -> Result<Plan> {
    let mut p = Plan {
        store: store.to_path_buf(),
        ..Plan::default()
    };
    fn set<T: Clone>(field: &mut T, v: &Option<T>) {
        if let Some(v) = v {
            *field = v.clone();
        }
    }
    set(&mut p.time_limit_s, &m.time_limit);
    set(&mut p.nemesis_interval_s, &m.nemesis_interval);
    set(&mut p.concurrency, &m.concurrency);
    p.rate = m.rate;
    set(&mut p.op_timeout_s, &m.op_timeout);
    set(&mut p.check_time_limit_s, &m.check_time_limit);
    set(&mut p.node_count, &m.node_count);
    if let Some(d) = &m.lab_dir {
        p.lab_dir = rel_to(base, d);
    }
    p.node_binary = m.node_binary.as_ref().map(|b| rel_to(base, b));
    let nodes = match (nodes_toml(m, base), &m.nodes_file) {
        (Some(t), _) => Some(
            crate::nodes::parse_inventory(&t, base).map_err(|e| usage(format!("`nodes`: {e}")))?,
        ),
        (None, Some(f)) => {
            let mut file = crate::nodes::read_nodes_file(&rel_to(base, f))?;
            // The matrix's own SSH settings win over the file's.
            if let Some(k) = &m.key {
                file.key = Some(rel_to(base, k));
            }
            if let Some(k) = &m.known_hosts {
                file.known_hosts = Some(rel_to(base, k));
            }
            file.sudo |= m.sudo == Some(true);
            file.accept_new_host_keys |= m.accept_new_host_keys == Some(true);
            Some(file)
        }
        (None, None) => None,
    };
    if let Some(f) = nodes {
        p.node_count = f.entries.len();
        p.nodes = f.entries;
        p.ssh_key = f.key;
        p.known_hosts = f.known_hosts;
        p.sudo = f.sudo;
        p.accept_new_host_keys = f.accept_new_host_keys;
    }
    Ok(p)
}

/// One cell's plan: the base plan with the cell's axes and its target's bugs.
fn cell_plan(m: &MatrixFile, base: &Plan, c: &Cell) -> Result<Plan> {
    Ok(Plan {
        target: c.target.clone(),
        workload: c
            .workload
            .parse()
            .map_err(|e| usage(format!("workloads: {e}")))?,
        nemesis: crate::nemesis_driver::parse_list(&c.nemesis)
            .map_err(|e| usage(format!("nemeses: {e}")))?,
        seed: Some(c.seed),
        bugs: m.bugs.get(&c.target).cloned().unwrap_or_default(),
        ..base.clone()
    })
}

/// The inline `nodes` (with user, port, key, …) as a TOML inventory, read
/// by the same code as a `--nodes-file` (user and port fill the entries).
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
    // Every plan before any run: a bad name in the file is exit 64 now.
    let bad = |e: anyhow::Error| usage(format!("{}: {e:#}", a.file.display()));
    let base_plan = base_plan(&m, &base, &store).map_err(bad)?;
    let plans = cells
        .iter()
        .map(|c| cell_plan(&m, &base_plan, c))
        .collect::<Result<Vec<Plan>>>()
        .map_err(bad)?;
    if a.dry_run {
        print_dry_run(&m, &cells, &plans)?;
        return Ok(ExitCode::SUCCESS);
    }

    let (started, dir) = matrix_dir(&store)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    std::fs::create_dir_all(dir.join("plans"))?;
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    let cancel = Arc::new(AtomicBool::new(false));
    on_interrupt(Arc::clone(&cancel))?;
    let grace = Duration::from_secs_f64(m.run_grace.unwrap_or(600.0).max(1.0));
    let run_limit = Duration::from_secs_f64(base_plan.time_limit_s.max(0.0)) + grace;
    errln!(
        "faultline: matrix {name}: {} runs, results in {}",
        cells.len(),
        dir.display()
    );

    let bar = progress_bar(cells.len());

    let t0 = Instant::now();
    let mut results: Vec<CellResult> = Vec::new();
    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        let stem = format!(
            "{:03}-{}-{}-{}-s{}",
            i + 1,
            slug(&c.target),
            slug(&c.workload),
            slug(&c.nemesis),
            c.seed
        );
        let log_rel = format!("logs/{stem}.log");
        if cancel.load(Ordering::SeqCst) {
            results.push(not_run(c, log_rel));
            continue;
        }
        let so_far: Vec<String> = tally.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let msg = format!("{} · {}", c.label(), so_far.join(", "));
        match &bar {
            Some(pb) => pb.set_message(msg),
            None => errln!("[{}/{}] {}", i + 1, cells.len(), c.label()),
        }
        // The cell's plan, then the file's `args` as flags given with it.
        let plan_file = dir.join(format!("plans/{stem}.json"));
        let mut plan_json = serde_json::to_string_pretty(&plans[i])?;
        plan_json.push('\n');
        store::write_atomic(&plan_file, plan_json.as_bytes())?;
        let mut args = vec!["--plan".to_string(), plan_file.display().to_string()];
        args.extend(m.args.iter().cloned());
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
            None => errln!("{line}"),
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

/// `--dry-run`: each cell's plan, and the flags given with it.
fn print_dry_run(m: &MatrixFile, cells: &[Cell], plans: &[Plan]) -> Result<()> {
    for (i, (c, p)) in cells.iter().zip(plans).enumerate() {
        outln!(
            "{:>3}. {}: {}{}",
            i + 1,
            c.label(),
            serde_json::to_string(p)?,
            if m.args.is_empty() {
                String::new()
            } else {
                format!(" then flags {}", m.args.join(" "))
            }
        );
    }
    Ok(())
}

/// The progress bar, on a terminal only (`TERM=dumb` and `NO_COLOR` honoured).
fn progress_bar(cells: usize) -> Option<indicatif::ProgressBar> {
    let tty =
        std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    tty.then(|| {
        let pb = indicatif::ProgressBar::new(cells as u64);
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
    })
}

/// SIGINT/SIGTERM: stop the current run and skip the rest.
fn on_interrupt(cancel: Arc<AtomicBool>) -> Result<()> {
    ctrlc::set_handler(move || {
        if !cancel.swap(true, Ordering::SeqCst) {
            errln!("\nfaultline: interrupted: stopping the current run, skipping the rest");
        }
    })
    .context("installing the SIGINT/SIGTERM handler")
}

/// A cell the matrix did not reach because it was interrupted.
fn not_run(c: &Cell, log: String) -> CellResult {
    CellResult {
        cell: c.clone(),
        status: Status::NotRun,
        exit_code: None,
        anomaly_types: vec![],
        reason: Some("not run: the matrix was interrupted".into()),
        run_dir: None,
        run_path: None,
        report: None,
        log,
        duration_s: 0.0,
    }
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

#[cfg(test)]
mod tests;
