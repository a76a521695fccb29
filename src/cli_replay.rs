//! `faultline replay RUN_DIR [-- TEST FLAGS]`: runs a stored test again
//! with the options and seed its `test.json` recorded, as a new
//! `faultline test` process, and compares the verdicts.
//!
//! What is replayed: target, workload, seeded bugs, nemesis kinds and
//! interval, concurrency, rate, time limits, read mode, node count, lab
//! directory and the seed — so the generator draws the same operations —
//! and the run's `nemesis-schedule.json` (through `faultline test
//! --nemesis-schedule`): each fault starts and stops at its recorded time
//! on its recorded nodes, a leader-aimed fault on the node that led then.
//! A run recorded before schedules existed replays with the seed only (and
//! says so). Nodes outside the lab are not in `test.json` with their SSH
//! addresses: pass `-- --nodes-file F` for those.
//!
//! The new run is a child process in its own process group, so a Ctrl-C
//! reaches it once, through this process: it stops, heals its faults and
//! writes its report, as `faultline test` does on SIGINT.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;

use crate::nemesis_driver::NemesisKind;
use crate::nemesis_schedule::{SCHEDULE_JSON, Schedule};
use crate::usage;
use faultline_results::RunDir;

#[derive(Args, Debug, Clone)]
#[command(after_long_help = "\
Exit code: the new run's (0 valid, 1 invalid, 2 unknown, 3 run failed).

The run's nemesis-schedule.json is followed: the same faults at the same
times on the same nodes (--fresh-nemesis draws them from the seed instead).

Example:
  faultline replay store/paxos-register/latest
  faultline replay store/etcd-register/20261126T005011.123Z -- --nodes-file cluster.toml")]
pub struct ReplayArgs {
    /// The run to replay (a run directory, or `<store>/<test>/latest`)
    pub run_dir: PathBuf,

    /// Store for the new run (default: the one test.json names)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Print the `faultline test` command and exit
    #[arg(long)]
    pub dry_run: bool,

    /// Draw faults afresh from the seed instead of following the run's
    /// recorded nemesis-schedule.json
    #[arg(long)]
    pub fresh_nemesis: bool,

    /// More `faultline test` flags (after `--`); they replace recorded ones
    #[arg(last = true, value_name = "TEST FLAGS")]
    pub extra: Vec<String>,
}

/// `faultline test` flags from a run's `test.json`. Flags named in
/// `extra` are left out (the caller's win).
pub fn test_args(tj: &Value, store: Option<&str>, extra: &[String]) -> Result<Vec<String>> {
    let missing = |k: &str| {
        usage(format!(
            "test.json has no `{k}`: not a `faultline test` run"
        ))
    };
    let s = |k: &str| tj.get(k).and_then(Value::as_str);
    let n = |k: &str| tj.get(k).and_then(Value::as_f64);
    let mut a: Vec<(String, Option<String>)> = vec![
        (
            "--target".into(),
            Some(s("target").ok_or_else(|| missing("target"))?.into()),
        ),
        (
            "--workload".into(),
            Some(s("workload").ok_or_else(|| missing("workload"))?.into()),
        ),
        (
            "--seed".into(),
            Some(
                tj.get("seed")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| missing("seed"))?
                    .to_string(),
            ),
        ),
    ];
    let nemesis: Vec<&str> = tj
        .get("nemesis")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    a.push((
        "--nemesis".into(),
        Some(if nemesis.is_empty() {
            "none".into()
        } else {
            nemesis.join(",")
        }),
    ));
    for (flag, key) in [
        ("--nemesis-interval", "nemesis_interval_s"),
        ("--time-limit", "time_limit_s"),
        ("--op-timeout", "op_timeout_s"),
        ("--check-time-limit", "check_time_limit_s"),
        ("--rate", "rate"),
        ("--loss-prob", "loss_prob"),
        ("--max-false-positive-rate", "max_false_positive_rate"),
    ] {
        if let Some(v) = n(key) {
            a.push((flag.into(), Some(v.to_string())));
        }
    }
    for (flag, key) in [
        ("--concurrency", "concurrency"),
        ("--node-count", "node_count"),
    ] {
        if let Some(v) = tj.get(key).and_then(Value::as_u64) {
            a.push((flag.into(), Some(v.to_string())));
        }
    }
    if let Some(m) = s("etcd_read_mode") {
        a.push(("--etcd-read-mode".into(), Some(m.into())));
    }
    if let Some(d) = s("lab_dir") {
        a.push(("--lab-dir".into(), Some(d.into())));
    }
    if let Some(b) = tj
        .get("node")
        .and_then(|n| n.get("binary"))
        .and_then(Value::as_str)
    {
        a.push(("--node-binary".into(), Some(b.into())));
    }
    if let Some(st) = store.or_else(|| s("store")) {
        a.push(("--store".into(), Some(st.into())));
    }
    for b in tj
        .get("bugs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        a.push(("--bug".into(), Some(b.into())));
    }
    if tj.get("leave_db_running") == Some(&Value::Bool(true)) {
        a.push(("--leave-db-running".into(), None));
    }
    let given = |flag: &str| {
        extra
            .iter()
            .any(|e| e == flag || e.starts_with(&format!("{flag}=")))
    };
    let mut out = Vec::new();
    for (flag, v) in a {
        if given(&flag) {
            continue;
        }
        out.push(flag);
        out.extend(v);
    }
    out.extend(extra.iter().cloned());
    Ok(out)
}

fn verdict_line(results: &Value) -> String {
    let v = match faultline_results::store::verdict_of(results) {
        Some(v) => v.to_string(),
        None => "no verdict".into(),
    };
    let types: Vec<&str> = results
        .get("anomaly_types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if types.is_empty() {
        v
    } else {
        format!("{v} ({})", types.join(", "))
    }
}

/// The `--nemesis-schedule` flag for a replay of `run`, checked against
/// its test.json; `None` (with the reason on stderr) when there is none to
/// follow.
fn schedule_flag(run: &RunDir, tj: &Value, a: &ReplayArgs) -> Result<Option<PathBuf>> {
    let kinds: Vec<NemesisKind> = tj
        .get("nemesis")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str()?.parse().ok())
        .collect();
    let given = a
        .extra
        .iter()
        .any(|e| e == "--nemesis-schedule" || e.starts_with("--nemesis-schedule="));
    if kinds.is_empty() || given {
        return Ok(None);
    }
    let file = run.file(SCHEDULE_JSON);
    if a.fresh_nemesis {
        eprintln!("faultline: --fresh-nemesis: faults are drawn afresh from the seed");
        return Ok(None);
    }
    if !file.exists() {
        eprintln!(
            "faultline: {} has no {SCHEDULE_JSON} (recorded before faultline kept \
             schedules): replaying with the same options and seed only; fault times follow \
             this run's clock and leader-aimed faults hit the current leader",
            run.path().display()
        );
        return Ok(None);
    }
    let s = Schedule::load(&file).map_err(|e| usage(e.to_string()))?;
    s.check_kinds(&kinds).map_err(|e| usage(e.to_string()))?;
    let nodes: Vec<String> = tj
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    if !nodes.is_empty() {
        s.check_nodes(&nodes).map_err(|e| usage(e.to_string()))?;
    }
    Ok(Some(file))
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let run = RunDir::open(&a.run_dir).map_err(|e| usage(e.to_string()))?;
    let tj = run.read_test_json().map_err(|e| usage(e.to_string()))?;
    let store = a.store.as_ref().map(|s| s.display().to_string());
    let schedule = schedule_flag(&run, &tj, &a)?;
    let mut args = test_args(&tj, store.as_deref(), &a.extra)?;
    if let Some(f) = &schedule {
        args.push("--nemesis-schedule".into());
        args.push(f.display().to_string());
    }
    if a.dry_run {
        outln!("faultline test {}", args.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let original = run.read_results().ok();
    eprintln!(
        "faultline: replaying {} (seed {}): same options and seed{}",
        run.path().display(),
        tj.get("seed").unwrap_or(&Value::Null),
        if schedule.is_some() {
            format!(", faults from its {SCHEDULE_JSON}")
        } else {
            String::new()
        }
    );
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    // Its own process group: a terminal's Ctrl-C reaches only this
    // process, which passes each signal on once (a second one makes the
    // child exit at once, as `faultline test` does).
    let mut child = Command::new(exe)
        .arg("test")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .context("running faultline test")?;
    let pid = child.id() as libc::pid_t;
    let reaped = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&reaped);
    ctrlc::set_handler(move || {
        // Never signal a reaped pid: the number may be reused.
        if !r.load(Ordering::SeqCst) {
            // SAFETY: kill(2) on the child this process spawned; no memory
            // is touched.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout)
            .context("reading faultline test's output")?;
    }
    let status = child.wait();
    reaped.store(true, Ordering::SeqCst);
    let status = status.context("waiting for faultline test")?;
    out!("{stdout}");
    let new_results = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("report: "))
        .and_then(|r| std::path::Path::new(r).parent().map(|p| p.to_path_buf()))
        .and_then(|d| RunDir::open(d).ok())
        .and_then(|d| d.read_results().ok());
    outln!(
        "replay: original {}; replay {}",
        original
            .as_ref()
            .map_or("no results.json".into(), verdict_line),
        new_results
            .as_ref()
            .map_or("no results.json".into(), verdict_line)
    );
    let code = status.code().unwrap_or(3);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(3)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recorded_options_become_flags_and_extras_win() {
        let tj = json!({
            "target": "paxos", "workload": "register", "seed": 42,
            "nemesis": ["partition", "kill"], "nemesis_interval_s": 3.0,
            "time_limit_s": 15.0, "op_timeout_s": 5.0, "check_time_limit_s": 120.0,
            "rate": null, "concurrency": 5, "node_count": 3, "bugs": ["minority-quorum"],
            "etcd_read_mode": "linearizable", "lab_dir": "/srv/lab", "store": "store",
            "node": {"binary": "/bin/faultline-node"}, "leave_db_running": false
        });
        let a = test_args(&tj, None, &[]).unwrap().join(" ");
        assert_eq!(
            a,
            "--target paxos --workload register --seed 42 --nemesis partition,kill \
             --nemesis-interval 3 --time-limit 15 --op-timeout 5 --check-time-limit 120 \
             --concurrency 5 --node-count 3 --etcd-read-mode linearizable --lab-dir /srv/lab \
             --node-binary /bin/faultline-node --store store --bug minority-quorum"
        );
        let extra = vec![
            "--time-limit".to_string(),
            "30".into(),
            "--nodes-file".into(),
            "c.toml".into(),
        ];
        let a = test_args(&tj, Some("/other"), &extra).unwrap().join(" ");
        assert!(
            !a.contains("--time-limit 15") && a.ends_with("--time-limit 30 --nodes-file c.toml"),
            "{a}"
        );
        assert!(a.contains("--store /other"), "{a}");
        let e = test_args(&json!({"target": "etcd"}), None, &[]).unwrap_err();
        assert!(format!("{e}").contains("workload"), "{e}");
    }
}
