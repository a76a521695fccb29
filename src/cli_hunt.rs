//! `faultline hunt --target T [--bug B] --budget 10m`: looks for a bug
//! without being told where. Short tests (`--run-time`, 10 s) one after
//! another on the same lab, each under a set of fault kinds the policy
//! picks ([`policy`]: by the new behaviour earlier runs showed, or
//! uniformly at random); each run's history is abstracted into behaviour
//! states ([`observe`]) whose novelty is the reward. It stops at the first
//! invalid run, which it then shrinks (`faultline shrink`), or at the
//! budget with "nothing found" and the coverage reached. `hunt.json` (the
//! runs, coverage over time, the minimal schedule) is written after every
//! run, in `<store>/hunt-<target>/<unix time>/`.

mod observe;
mod policy;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli_hunt_shrink::{self, Report};
use crate::cli_test::{Plan, run_plan};
use crate::usage;
use faultline_nemesis::NemesisKind;
use policy::{Policy, Strategy};

pub const HUNT_JSON: &str = "hunt.json";

#[derive(Args, Debug, Clone)]
#[command(after_long_help = "\
Exit code: 1 a run was invalid (a bug found; its shrunk schedule is in the
run directory), 0 every run valid until the budget ran out (nothing found:
no proof of correctness), 2 nothing found but some run was unknown or
failed, 64 bad arguments.

Faults come from the target's standard mix (`faultline test --help`), or
from `--nemesis` among the test flags after `--`.

Example:
  faultline hunt --target raft --bug read-without-quorum --budget 3m
  faultline hunt --target etcd --budget 10m -- --db-option read-mode=serializable")]
pub struct HuntArgs {
    /// System under test (`faultline targets`)
    #[arg(long)]
    pub target: String,

    /// A seeded bug to enable (repeatable)
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,

    /// Workload (default: the target's)
    #[arg(long)]
    pub workload: Option<String>,

    /// How long to look: 90s, 10m, 1h (or seconds)
    #[arg(long, value_parser = parse_budget, default_value = "10m")]
    pub budget: Duration,

    /// How the next run's faults are chosen
    #[arg(long, value_enum, default_value_t = Strategy::Feedback)]
    pub strategy: Strategy,

    /// Seed of the policy and of the runs (run i uses SEED + i; default:
    /// from the clock)
    #[arg(long)]
    pub seed: Option<u64>,

    /// Seconds each run drives clients
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub run_time: f64,

    /// Replays of the shrunk schedule, to count how often it fails
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub replays: u32,

    /// At most this many candidate replays while shrinking
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub shrink_tries: usize,

    /// Do not shrink the invalid run
    #[arg(long)]
    pub no_shrink: bool,

    /// More `faultline test` flags (after `--`): --node-binary, --lab-dir,
    /// --store, --db-option, --nemesis, --concurrency, …
    #[arg(last = true, value_name = "TEST FLAGS")]
    pub extra: Vec<String>,
}

/// `90s`, `10m`, `1h`, or seconds.
fn parse_budget(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let mult = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{s}`: expected a number with s, m or h (10m, 90s)"
            ));
        }
    };
    num.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .map(|x| Duration::from_secs_f64(x * mult))
        .ok_or_else(|| format!("`{s}`: expected a positive number with s, m or h (10m, 90s)"))
}

/// One run of the hunt, as `hunt.json` lists it.
#[derive(Serialize, Debug, Clone)]
struct RunEntry {
    index: u32,
    kinds: Vec<NemesisKind>,
    interval_s: f64,
    seed: u64,
    /// The run's exit code (0 valid, 1 invalid, 2 unknown, 3 failed).
    code: u8,
    dir: Option<PathBuf>,
    /// Behaviour states and transitions not seen before.
    new_items: usize,
    /// All seen so far.
    coverage: usize,
    /// Seconds since the hunt started, at the run's end.
    elapsed_s: f64,
}

#[derive(Serialize, Debug)]
struct HuntFile<'a> {
    target: &'a str,
    bugs: &'a [String],
    workload: String,
    strategy: Strategy,
    seed: u64,
    budget_s: f64,
    run_time_s: f64,
    kinds: &'a [NemesisKind],
    /// Seconds to the first invalid run; `None`: nothing found.
    found_after_s: Option<f64>,
    runs: &'a [RunEntry],
    /// Every behaviour state and transition seen.
    coverage: &'a BTreeSet<String>,
    shrink: Option<&'a Report>,
}

fn write_json(path: &std::path::Path, f: &HuntFile) {
    let r = serde_json::to_vec_pretty(f)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(path, b));
    if let Err(e) = r {
        errln!("faultline: warning: writing {}: {e}", path.display());
    }
}

/// The base plan: the test flags after `--` with the hunt's own.
fn base_plan(a: &HuntArgs) -> Result<Plan> {
    let mut t = crate::cli_replay::parse_test_flags(&a.extra)?;
    t.target = Some(a.target.clone());
    if !a.bugs.is_empty() {
        t.bugs.clone_from(&a.bugs);
    }
    if a.workload.is_some() {
        t.workload.clone_from(&a.workload);
    }
    Plan::from_args(&t)
}

fn fmt_secs(d: f64) -> String {
    let s = d.round() as u64;
    format!("{}m{:02}s", s / 60, s % 60)
}

pub fn run(a: HuntArgs) -> Result<ExitCode> {
    if !(a.run_time.is_finite() && a.run_time > 0.0) {
        return Err(usage("--run-time must be a positive number of seconds"));
    }
    let base = base_plan(&a)?;
    let kinds = base.nemesis.clone();
    if kinds.is_empty() {
        return Err(usage(format!(
            "hunt: no faults to choose from (the {} target takes none, or --nemesis none)",
            a.target
        )));
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            % 1_000_000
    });
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let out_dir = base
        .store
        .join(format!("hunt-{}", a.target))
        .join(stamp.to_string());
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = out_dir.join(HUNT_JSON);
    errln!(
        "faultline: hunt: {} {}{} under {} ({:?}, seed {seed}), budget {}; {}",
        a.target,
        base.workload,
        if a.bugs.is_empty() {
            String::new()
        } else {
            format!(" --bug {}", a.bugs.join(","))
        },
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        a.strategy,
        fmt_secs(a.budget.as_secs_f64()),
        out.display()
    );
    let mut policy = Policy::new(a.strategy, kinds.clone(), seed);
    let mut coverage: BTreeSet<String> = BTreeSet::new();
    let mut runs: Vec<RunEntry> = Vec::new();
    let mut found: Option<(PathBuf, f64)> = None;
    let mut failed_in_a_row = 0;
    let t0 = Instant::now();
    let file = |runs: &[RunEntry],
                coverage: &BTreeSet<String>,
                found: Option<f64>,
                shrink: Option<&Report>| {
        write_json(
            &out,
            &HuntFile {
                target: &a.target,
                bugs: &a.bugs,
                workload: base.workload.to_string(),
                strategy: a.strategy,
                seed,
                budget_s: a.budget.as_secs_f64(),
                run_time_s: a.run_time,
                kinds: &kinds,
                found_after_s: found,
                runs,
                coverage,
                shrink,
            },
        );
    };
    for i in 0u32.. {
        if t0.elapsed() >= a.budget || crate::cli_test::interrupted() {
            break;
        }
        let action = policy.next();
        let mut p = base.clone();
        p.nemesis.clone_from(&action.kinds);
        p.nemesis_interval_s = action.interval_s;
        p.time_limit_s = a.run_time;
        p.seed = Some(seed.wrapping_add(u64::from(i)));
        p.test_count = 1;
        p.nemesis_schedule = None;
        let done = run_plan(&p)?;
        let dir = done.runs.last().cloned();
        let history = dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("history.jsonl")).ok())
            .unwrap_or_default();
        let behaviour = observe::behaviour(&history);
        let (per_kind, new_items) = novelty(&behaviour, &mut coverage);
        policy.reward(&action, &per_kind, new_items as f64);
        let elapsed = t0.elapsed().as_secs_f64();
        runs.push(RunEntry {
            index: i,
            kinds: action.kinds.clone(),
            interval_s: action.interval_s,
            seed: p.seed.unwrap_or(seed),
            code: done.code,
            dir: dir.clone(),
            new_items,
            coverage: coverage.len(),
            elapsed_s: elapsed,
        });
        errln!(
            "hunt: run {} [{}] exit {} · coverage {} (+{new_items}) · best reward {:.1} · {} / {}",
            i + 1,
            action
                .kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
            done.code,
            coverage.len(),
            policy.best_value(),
            fmt_secs(elapsed),
            fmt_secs(a.budget.as_secs_f64())
        );
        file(&runs, &coverage, None, None);
        if done.code == 3 {
            failed_in_a_row += 1;
            if failed_in_a_row >= 3 {
                anyhow::bail!("hunt: three runs in a row failed (see above); stopping");
            }
        } else {
            failed_in_a_row = 0;
        }
        if done.code == 1
            && let Some(d) = dir
        {
            found = Some((d, elapsed));
            break;
        }
    }
    let Some((dir, after)) = found else {
        let clean = runs.iter().all(|r| r.code == 0);
        outln!(
            "hunt: nothing found in {} runs ({}); behaviour coverage {} states and transitions; \
             {}",
            runs.len(),
            fmt_secs(t0.elapsed().as_secs_f64()),
            coverage.len(),
            out.display()
        );
        return Ok(ExitCode::from(if clean { 0 } else { 2 }));
    };
    outln!(
        "hunt: invalid run after {} (run {}): {}",
        fmt_secs(after),
        runs.len(),
        dir.display()
    );
    file(&runs, &coverage, Some(after), None);
    if !a.no_shrink {
        let r = cli_hunt_shrink::shrink_run(&dir, a.replays, a.shrink_tries)?;
        cli_hunt_shrink::print(&r);
        file(&runs, &coverage, Some(after), Some(&r));
    }
    outln!("hunt: {}", out.display());
    Ok(ExitCode::from(1))
}

/// Adds a run's behaviour to `coverage`; returns each new item's credit by
/// the fault kind whose window showed it (a transition is the later
/// window's), and how many were new.
fn novelty(
    b: &observe::Behaviour,
    coverage: &mut BTreeSet<String>,
) -> (Vec<(NemesisKind, f64)>, usize) {
    let mut per_kind = Vec::new();
    let mut new = 0;
    let mut prev: Option<String> = None;
    for w in &b.windows {
        let key = w.key();
        let mut n = 0;
        if coverage.insert(key.clone()) {
            n += 1;
        }
        if let Some(p) = prev
            && coverage.insert(format!("{p} -> {key}"))
        {
            n += 1;
        }
        if let Some(k) = fault_kind(&w.fault) {
            per_kind.push((k, f64::from(n)));
        }
        new += n as usize;
        prev = Some(key);
    }
    (per_kind, new)
}

/// A history's `fault` name (a choice's serde tag) as its kind: the
/// clock choices are `clock-bump` and `clock-strobe`; `none` (before the
/// first fault) and `healed` are no kind.
fn fault_kind(name: &str) -> Option<NemesisKind> {
    match name {
        "clock-bump" | "clock-strobe" => Some(NemesisKind::Clock),
        _ => name.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_budget("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_budget("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_budget("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_budget("45"), Ok(Duration::from_secs(45)));
        assert!(parse_budget("0m").is_err());
        assert!(parse_budget("10 days").is_err());
    }

    /// Novelty credits each kind with what its own windows showed first.
    #[test]
    fn novelty_credits_the_window_that_showed_it() {
        let f = |fault: &str, availability| observe::Features {
            fault: fault.into(),
            availability,
            unknown: 0,
            slowdown: 0,
            answering: 1,
            errors: vec![],
            nemesis_error: false,
        };
        let b = observe::Behaviour {
            windows: vec![f("none", 3), f("kill", 0), f("clock-bump", 3)],
        };
        let mut cov = BTreeSet::new();
        let (per, n) = novelty(&b, &mut cov);
        assert_eq!(n, 5);
        assert_eq!(
            per,
            [(NemesisKind::Kill, 2.0), (NemesisKind::Clock, 2.0)],
            "the `none` window credits no kind"
        );
        let (per, n) = novelty(&b, &mut cov);
        assert_eq!(n, 0);
        assert!(per.iter().all(|(_, r)| *r == 0.0));
    }
}
