//! `faultline shrink RUN`: the smallest fault schedule that still makes a
//! stored invalid run fail. Each candidate (from
//! [`faultline_nemesis::shrink`]: fewer faults, then shorter ones, then a
//! shorter run) is replayed from the run's plan and seed through
//! `test --nemesis-schedule`, as `faultline replay` does; the minimal one
//! is then replayed `--replays` times and written as `shrunk-schedule.json`
//! (a schedule `test --nemesis-schedule` and `replay` accept) with
//! `shrink.json` (the counts and the schedule in words) beside the run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli_replay::{ReplayArgs, replay_plan};
use crate::cli_test::Plan;
use crate::nemesis_schedule::{self, Entry, SCHEDULE_JSON, Schedule};
use crate::usage;
use faultline_checker::Verdict;
use faultline_nemesis::shrink::{self, Candidate, Limits, Outcome};
use faultline_results::RunDir;
use faultline_results::store::verdict_of;

/// The minimal schedule, beside the run.
pub const SHRUNK_JSON: &str = "shrunk-schedule.json";
/// What the shrink found, beside the run.
pub const SHRINK_REPORT: &str = "shrink.json";

#[derive(Args, Debug, Clone)]
#[command(after_long_help = "\
Exit code: 0 when the minimal schedule failed in at least half of the
replays, 1 when it failed in fewer (a flaky bug: see shrink.json), 64 for a
run that is not invalid or has no nemesis-schedule.json.

Example:
  faultline shrink store/raft-register/latest --replays 5")]
pub struct ShrinkArgs {
    /// The invalid run to shrink (a run directory, or `<store>/<test>/latest`)
    pub run_dir: PathBuf,

    /// Replays of the minimal schedule, to count how often it fails
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub replays: u32,

    /// At most this many candidate replays (each is one run of the test)
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub max_tries: usize,
}

/// `shrink.json`.
#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub run: PathBuf,
    pub original_faults: usize,
    pub original_run_s: f64,
    /// The minimal schedule in words, one fault a line.
    pub minimal: Vec<String>,
    pub minimal_faults: usize,
    pub minimal_run_s: f64,
    /// Candidate replays made.
    pub tries: usize,
    /// Removing any one fault of `minimal` made the run pass.
    pub one_minimal: bool,
    pub replays: u32,
    /// How many of `replays` replays of the minimal schedule failed.
    pub replays_failed: u32,
    pub schedule: PathBuf,
}

/// A replay's verdict as the shrinker's oracle answer: only an invalid
/// run fails; unknown and a failed run are no evidence (they pass).
fn outcome(code: u8) -> Outcome {
    match code {
        1 => Outcome::Fails,
        0 => Outcome::Passes,
        _ => Outcome::Unknown,
    }
}

/// One replay of `plan` with `faults` over `run_ms`, its schedule written
/// to `file`.
fn replay_with(plan: &Plan, faults: &[Entry], run_ms: u64, file: &Path) -> Result<Outcome> {
    nemesis_schedule::write_file(file, faults)
        .with_context(|| format!("writing {}", file.display()))?;
    let mut p = plan.clone();
    p.nemesis_schedule = Some(file.to_path_buf());
    p.time_limit_s = run_ms as f64 / 1000.0;
    p.test_count = 1;
    let done = crate::cli_test::run_plan(&p)?;
    Ok(outcome(done.code))
}

/// Shrinks the stored invalid run `run_dir` (see the module docs).
pub fn shrink_run(run_dir: &Path, replays: u32, max_tries: usize) -> Result<Report> {
    let run = RunDir::open(run_dir).map_err(|e| usage(e.to_string()))?;
    let results = run.read_results().map_err(|e| usage(e.to_string()))?;
    if verdict_of(&results) != Some(Verdict::Invalid) {
        return Err(usage(format!(
            "{}: the run is not invalid: there is no failure to shrink",
            run_dir.display()
        )));
    }
    let work = run.path().join("shrink");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let plan = replay_plan(
        &run,
        &ReplayArgs {
            run_dir: run_dir.to_path_buf(),
            store: Some(work.join("store")),
            dry_run: false,
            fresh_nemesis: false,
            extra: Vec::new(),
        },
    )?;
    let Some(file) = plan.nemesis_schedule.clone() else {
        return Err(usage(format!(
            "{}: no {SCHEDULE_JSON} to shrink (a run without faults)",
            run_dir.display()
        )));
    };
    let schedule = Schedule::load(&file).map_err(|e| usage(e.to_string()))?;
    let run_ms = (plan.time_limit_s * 1000.0) as u64;
    let mut k = 0usize;
    let mut failure = None;
    let r = shrink::shrink(
        &schedule.faults,
        run_ms,
        Limits {
            max_tries,
            ..Limits::default()
        },
        |c: &Candidate<Entry>| {
            k += 1;
            if failure.is_some() {
                return Outcome::Unknown;
            }
            let f = work.join(format!("candidate-{k}.json"));
            errln!(
                "faultline: shrink: candidate {k}: {} fault(s), {:.1} s",
                c.faults.len(),
                c.run_ms as f64 / 1000.0
            );
            match replay_with(&plan, &c.faults, c.run_ms, &f) {
                Ok(o) => o,
                Err(e) => {
                    // A usage error will not go away with another candidate.
                    failure = Some(e);
                    Outcome::Unknown
                }
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let best = r.best;
    let out = run.path().join(SHRUNK_JSON);
    nemesis_schedule::write_file(&out, &best.faults)
        .with_context(|| format!("writing {}", out.display()))?;
    let mut failed = 0;
    for i in 0..replays {
        errln!(
            "faultline: shrink: replay {} of {replays} of the minimal schedule",
            i + 1
        );
        let f = work.join(format!("replay-{i}.json"));
        if replay_with(&plan, &best.faults, best.run_ms, &f)? == Outcome::Fails {
            failed += 1;
        }
    }
    let report = Report {
        run: run.path().to_path_buf(),
        original_faults: schedule.faults.len(),
        original_run_s: run_ms as f64 / 1000.0,
        minimal: best
            .faults
            .iter()
            .map(|e| shrink::describe(&e.choice, e.start_ms, e.stop_ms))
            .collect(),
        minimal_faults: best.faults.len(),
        minimal_run_s: best.run_ms as f64 / 1000.0,
        tries: r.tries,
        one_minimal: r.one_minimal,
        replays,
        replays_failed: failed,
        schedule: out,
    };
    let path = run.path().join(SHRINK_REPORT);
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(report)
}

/// The report in words, for stdout.
pub fn print(r: &Report) {
    outln!(
        "minimal schedule: {} of {} faults, {:.1} s of {:.1} s ({} candidate replays{}):",
        r.minimal_faults,
        r.original_faults,
        r.minimal_run_s,
        r.original_run_s,
        r.tries,
        if r.one_minimal {
            "; removing any one fault passes"
        } else {
            "; not shown 1-minimal: the try budget ran out"
        }
    );
    if r.minimal.is_empty() {
        outln!("  (no fault: the run fails without one)");
    }
    outln!("  {}", r.minimal.join("; "));
    outln!(
        "it failed in {} of {} replays; schedule: {} (faultline test --nemesis-schedule)",
        r.replays_failed,
        r.replays,
        r.schedule.display()
    );
}

pub fn run(a: ShrinkArgs) -> Result<ExitCode> {
    if a.max_tries == 0 {
        return Err(usage("--max-tries must be at least 1"));
    }
    let r = shrink_run(&a.run_dir, a.replays, a.max_tries)?;
    print(&r);
    Ok(ExitCode::from(u8::from(r.replays_failed * 2 < r.replays)))
}
