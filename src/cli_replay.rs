//! `faultline replay RUN_DIR [-- TEST FLAGS]`: runs a stored test again
//! from the plan its `test.json` holds, in this process, and compares the
//! verdicts.
//!
//! Everything in the plan is replayed (docs/plan.md): target, workload,
//! seeded bugs, target options (`db_options`: PostgreSQL's isolation,
//! etcd's read mode, …), nemesis kinds and interval, nodes with their SSH
//! settings (a run on your own machines replays on them), concurrency,
//! rate, time limits, lab and store directories and the seed — so the
//! generator draws the same operations — and the run's
//! `nemesis-schedule.json`: each fault starts and stops at its recorded
//! time on its recorded nodes, a leader-aimed fault on the node that led
//! then. A run recorded without a schedule replays with the seed only (and
//! says so). Test flags after `--` replace the values they name, as flags
//! given with `test --plan` do; the replay is one run (`test_count` 1).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;

use crate::cli_test::{Plan, TestArgs};
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
  faultline replay store/etcd-register/20261126T005011.123Z -- --seed 8")]
pub struct ReplayArgs {
    /// The run to replay (a run directory, or `<store>/<test>/latest`)
    pub run_dir: PathBuf,

    /// Store for the new run (default: the one test.json names)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Print the plan the replay would run (JSON, as `test --plan` reads
    /// it) and exit
    #[arg(long)]
    pub dry_run: bool,

    /// Draw faults afresh from the seed instead of following the run's
    /// recorded nemesis-schedule.json
    #[arg(long)]
    pub fresh_nemesis: bool,

    /// More `faultline test` flags (after `--`); each replaces the
    /// recorded value it names
    #[arg(last = true, value_name = "TEST FLAGS")]
    pub extra: Vec<String>,
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

/// The plan a replay of `run` runs: its test.json's, as one run, with the
/// recorded schedule to follow (unless `--fresh-nemesis`, or the flags
/// after `--` name one), then those flags in place of what they name.
pub fn replay_plan(run: &RunDir, a: &ReplayArgs) -> Result<Plan> {
    let tj = run.read_test_json().map_err(|e| usage(e.to_string()))?;
    let what = run.file(faultline_results::store::TEST_JSON);
    let mut plan = Plan::from_json(&tj, &what.display().to_string())?;
    plan.test_count = 1;
    // The schedule the run itself followed is in its own recorded file.
    plan.nemesis_schedule = None;
    if let Some(s) = &a.store {
        plan.store.clone_from(s);
    }
    let extra = parse_test_flags(&a.extra)?;
    plan.apply(&extra)?;
    if extra.nemesis_schedule.is_none() {
        plan.nemesis_schedule = recorded_schedule(run, &tj, &plan, a.fresh_nemesis)?;
    }
    Ok(plan)
}

/// The `faultline test` flags after `--`.
pub(crate) fn parse_test_flags(extra: &[String]) -> Result<TestArgs> {
    use clap::{Args as _, FromArgMatches as _};
    let cmd = TestArgs::augment_args(clap::Command::new("faultline test").no_binary_name(true));
    let m = cmd
        .try_get_matches_from(extra)
        .map_err(|e| usage(format!("the test flags after `--`: {}", e.render()).trim_end()))?;
    let a = TestArgs::from_arg_matches(&m).map_err(|e| usage(e.to_string()))?;
    if a.plan.is_some() {
        return Err(usage(
            "--plan cannot be given to replay: the run's test.json is the plan",
        ));
    }
    Ok(a)
}

/// The run's `nemesis-schedule.json`, checked against the plan's kinds
/// and nodes; `None` (with the reason on stderr) when there is none to
/// follow.
fn recorded_schedule(
    run: &RunDir,
    tj: &Value,
    plan: &Plan,
    fresh: bool,
) -> Result<Option<PathBuf>> {
    if plan.nemesis.is_empty() {
        return Ok(None);
    }
    if fresh {
        errln!("faultline: --fresh-nemesis: faults are drawn afresh from the seed");
        return Ok(None);
    }
    let file = run.file(SCHEDULE_JSON);
    if !file.exists() {
        errln!(
            "faultline: {} has no {SCHEDULE_JSON}: replaying with the same options and seed \
             only; fault times follow this run's clock and leader-aimed faults hit the current \
             leader",
            run.path().display()
        );
        return Ok(None);
    }
    let s = Schedule::load(&file).map_err(|e| usage(e.to_string()))?;
    s.check_kinds(&plan.nemesis)
        .map_err(|e| usage(e.to_string()))?;
    // The nodes' names: the plan's entries, else (the lab's first
    // node_count nodes) the names the run recorded.
    let names: Vec<String> = if plan.nodes.is_empty() {
        tj.get("node_names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    } else {
        plan.nodes
            .iter()
            .map(|e| crate::nodes::parse_entry(e).map(|p| p.name))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| usage(format!("--nodes: {e}")))?
    };
    if !names.is_empty() {
        s.check_nodes(&names).map_err(|e| usage(e.to_string()))?;
    }
    Ok(Some(file))
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let run = RunDir::open(&a.run_dir).map_err(|e| usage(e.to_string()))?;
    let plan = replay_plan(&run, &a)?;
    if a.dry_run {
        outln!(
            "{}",
            serde_json::to_string_pretty(&plan).context("serialising the plan")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let original = run.read_results().ok();
    errln!(
        "faultline: replaying {} (seed {}): same plan and seed{}",
        run.path().display(),
        plan.seed.map_or("from the clock".into(), |s| s.to_string()),
        if plan.nemesis_schedule.is_some() {
            format!(", faults from its {SCHEDULE_JSON}")
        } else {
            String::new()
        }
    );
    let done = crate::cli_test::run_plan(&plan)?;
    let new_results = done
        .runs
        .last()
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
    Ok(ExitCode::from(done.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use faultline_results::store::Store;
    use std::path::Path;

    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let d = std::env::temp_dir().join(format!(
                "faultline-replay-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("temp dir");
            Tmp(d)
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The plan of `faultline test ARGS`, parsed by the real command line.
    fn plan_of(args: &[&str]) -> Plan {
        let argv = ["faultline", "test"]
            .into_iter()
            .chain(args.iter().copied());
        match crate::Cli::try_parse_from(argv) {
            Ok(crate::Cli {
                command: crate::Command::Test(a),
            }) => Plan::from_args(&a).unwrap_or_else(|e| panic!("{e:#}")),
            other => panic!("{other:?}"),
        }
    }

    /// A stored run of `plan` on `nodes` (name, address): its test.json as a
    /// real run writes it, and a nemesis-schedule.json when given.
    fn stored_run(
        tmp: &Tmp,
        plan: &Plan,
        nodes: &[(&str, &str)],
        schedule: Option<&str>,
    ) -> RunDir {
        let tj = crate::cli_test::test_json_on(plan, nodes).unwrap_or_else(|e| panic!("{e:#}"));
        let run = Store::new(tmp.0.join("store"))
            .create_run(&plan.name(), &tj)
            .expect("run dir");
        if let Some(s) = schedule {
            std::fs::write(run.file(SCHEDULE_JSON), s).expect("schedule");
        }
        run
    }

    fn replay(run: &RunDir, fresh: bool, extra: &[&str]) -> Result<Plan> {
        replay_plan(
            run,
            &ReplayArgs {
                run_dir: run.path().to_path_buf(),
                store: None,
                dry_run: false,
                fresh_nemesis: fresh,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    const MACHINES: &[(&str, &str)] = &[
        ("db1", "10.0.0.5"),
        ("db2", "10.0.0.6"),
        ("db3", "10.0.0.7"),
    ];

    /// A PostgreSQL run at repeatable read on your own machines replays at
    /// repeatable read, on the same machines with the same SSH settings.
    #[test]
    fn replay_keeps_postgres_isolation_nodes_and_ssh_settings() {
        let tmp = Tmp::new("pg");
        let store = tmp.0.join("store");
        let p = plan_of(&[
            "--target",
            "postgres",
            "--workload",
            "list-append",
            "--isolation",
            "repeatable-read",
            "--db-option",
            "replicas=1",
            "--nodes",
            "db1=admin@10.0.0.5,db2=admin@10.0.0.6:2222,db3=admin@10.0.0.7",
            "--ssh-key",
            "/keys/nightly",
            "--known-hosts",
            "/keys/known_hosts",
            "--sudo",
            "--nemesis",
            "partition,kill",
            "--concurrency",
            "10",
            "--time-limit",
            "30",
            "--seed",
            "17",
            "--store",
            store.to_str().expect("utf-8"),
        ]);
        assert_eq!(p.db_options["isolation"], "repeatable-read");
        let run = stored_run(&tmp, &p, MACHINES, None);
        let tj = run.read_test_json().expect("test.json");
        assert_eq!(tj["postgres"]["isolation"], "repeatable-read", "{tj:#}");
        let r = replay(&run, false, &[]).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(r, p);
        assert_eq!(r.nodes[1], "db2=admin@10.0.0.6:2222");
        assert_eq!(r.ssh_key.as_deref(), Some(Path::new("/keys/nightly")));
        assert!(r.sudo);
    }

    /// An etcd run with serializable reads replays with serializable reads
    /// (the lab's first three nodes, as the original).
    #[test]
    fn replay_keeps_etcd_serializable_reads() {
        let tmp = Tmp::new("etcd");
        let store = tmp.0.join("store");
        let p = plan_of(&[
            "--target",
            "etcd",
            "--workload",
            "register",
            "--etcd-read-mode",
            "serializable",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "3",
            "--seed",
            "5",
            "--lab-dir",
            "/srv/other-lab",
            "--store",
            store.to_str().expect("utf-8"),
        ]);
        let lab = &[
            ("n1", "10.77.0.11"),
            ("n2", "10.77.0.12"),
            ("n3", "10.77.0.13"),
        ];
        let run = stored_run(&tmp, &p, lab, None);
        let r = replay(&run, false, &[]).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(r, p);
        assert_eq!(r.db_options["read-mode"], "serializable");
        assert!(r.nodes.is_empty() && r.node_count == 3);
        assert_eq!(r.lab_dir, Path::new("/srv/other-lab"));
    }

    /// The recorded schedule is followed (on the recorded node names); flags
    /// after `--` replace only what they name; --fresh-nemesis drops the
    /// schedule; a schedule naming another node is refused.
    #[test]
    fn replay_follows_the_schedule_and_flags_override_only_what_they_name() {
        let tmp = Tmp::new("sched");
        let store = tmp.0.join("store");
        let p = plan_of(&[
            "--target",
            "postgres",
            "--workload",
            "list-append",
            "--isolation",
            "repeatable-read",
            "--nodes",
            "db1=10.0.0.5,db2=10.0.0.6,db3=10.0.0.7",
            "--nemesis",
            "kill",
            "--seed",
            "17",
            "--store",
            store.to_str().expect("utf-8"),
        ]);
        let sched = r#"{"version": 1, "faults": [
            {"start_ms": 2100, "stop_ms": 4100, "fault": "kill", "node": "db2"}]}"#;
        let run = stored_run(&tmp, &p, MACHINES, Some(sched));
        let r = replay(&run, false, &["--seed", "9", "--time-limit", "5"])
            .unwrap_or_else(|e| panic!("{e:#}"));
        let want = Plan {
            seed: Some(9),
            time_limit_s: 5.0,
            nemesis_schedule: Some(run.file(SCHEDULE_JSON)),
            ..p.clone()
        };
        assert_eq!(r, want);
        let r = replay(&run, true, &[]).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(r, p);
        let e = replay(&run, false, &["--plan", "x.json"]).unwrap_err();
        assert!(format!("{e:#}").contains("--plan cannot be given"), "{e:#}");
        let e = replay(&run, false, &["--tme-limit", "5"]).unwrap_err();
        assert!(format!("{e:#}").contains("--tme-limit"), "{e:#}");
        std::fs::write(run.file(SCHEDULE_JSON), sched.replace("db2", "n2")).expect("write");
        let e = replay(&run, false, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("unknown node `n2`"), "{e:#}");
    }
}
