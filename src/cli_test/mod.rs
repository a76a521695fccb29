//! `faultline test`: the main job. Deploy the system on nodes, run
//! concurrent clients while a nemesis injects faults, record the history
//! into the store, check it, render the report, fetch node logs, tear down.
//!
//! What runs is a [`Plan`] (`plan.rs`, docs/plan.md): the flags, or a
//! `--plan` file with the flags given in place of its values.
//!
//! Store: `<store>/<target>-<workload>/<timestamp>/` with `test.json` (the
//! plan as it ran, seed included, and what the run learnt),
//! `history.jsonl` (flushed per event), `results.json`, `report.html`,
//! `timeline.html`, three PNGs and `nodes/<node>/etcd.log`.
//!
//! Exit codes: 0 valid · 1 invalid · 2 unknown (including an interrupted
//! run whose prefix showed no anomaly) · 3 the run failed (setup, SSH, etcd
//! never healthy) · 64 bad arguments. With `--test-count K` the worst wins,
//! in the order invalid > run failed > unknown > valid.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::lab::{self, LabConfig, LabState};
use crate::nemesis_ctl::{Cluster, Controller};
use crate::nemesis_driver::{self, DbProcess, LabNemesis, NemesisKind};
use crate::nemesis_schedule;
use crate::nodes::NodeArgs;
use crate::remote::{self, NodeSpec, Remote, SshRemote};
use crate::usage;
use faultline::runner::{
    Cancel, JsonlSink, NemesisDriver, NoNemesis, Progress, RunConfig, RunControl, RunOutcome,
    run_test,
};
use faultline_checker::{EventType, History, Verdict};
use faultline_results::store::{self, Store};
use faultline_targets::Target;
use faultline_targets::db::{self as dbs, Clock, Db, DbContext, Kind, Step, TargetInfo};
use faultline_workloads::{Workload, WorkloadOptions};

mod deploy;
mod nodes;
mod plan;
mod progress;

use deploy::*;
use nodes::*;
use plan::*;
pub use plan::{Plan, TestArgs};
use progress::*;

/// How one test ended, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Verdict(Verdict),
    Failed,
}

impl Ending {
    fn rank(self) -> u8 {
        match self {
            Ending::Verdict(Verdict::Valid) => 0,
            Ending::Verdict(Verdict::Unknown) => 1,
            Ending::Failed => 2,
            Ending::Verdict(Verdict::Invalid) => 3,
        }
    }

    fn code(self) -> u8 {
        match self {
            Ending::Verdict(v) => v.exit_code(),
            Ending::Failed => 3,
        }
    }
}

pub fn run(a: TestArgs) -> Result<ExitCode> {
    let plan = Plan::from_args(&a)?;
    Ok(ExitCode::from(run_plan(&plan)?.code))
}

/// What [`run_plan`] did: the exit code, and the run directories it made.
pub struct Done {
    pub code: u8,
    pub runs: Vec<PathBuf>,
}

/// Runs a plan `test_count` times (seeds SEED, SEED+1, …) in this
/// process; the worst ending gives the exit code. Installs the SIGINT and
/// SIGTERM handler (once per process).
pub fn run_plan(plan: &Plan) -> Result<Done> {
    let checked = check(plan)?;
    let cancel = Cancel::new();
    install_interrupt(cancel.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut worst = Ending::Verdict(Verdict::Valid);
    let mut runs = Vec::new();
    for i in 0..plan.test_count {
        if cancel.is_cancelled() {
            break;
        }
        let seed = checked.seed.wrapping_add(i as u64);
        let ending = match run_one(plan, &checked, &rt, &cancel, i, seed, &mut runs) {
            Ok(e) => e,
            Err(e) if e.chain().any(|c| c.is::<crate::UsageError>()) => return Err(e),
            Err(e) => {
                errln!("faultline: test {}: {e:#}", i + 1);
                Ending::Failed
            }
        };
        if ending.rank() > worst.rank() {
            worst = ending;
        }
    }
    if plan.test_count > 1 {
        outln!("worst of {} tests: exit {}", plan.test_count, worst.code());
    }
    Ok(Done {
        code: worst.code(),
        runs,
    })
}

/// The run the SIGINT/SIGTERM handler stops (the current one: `hunt` and
/// `shrink` call [`run_plan`] many times in one process, and a process
/// has one handler).
static CURRENT: Mutex<Option<Cancel>> = Mutex::new(None);
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Whether SIGINT/SIGTERM came (callers that loop over runs stop).
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// First SIGINT/SIGTERM: stop the main phase, heal, write what was
/// recorded. A second one exits at once (faults may stay: the message says
/// how to heal them). The handler is installed once per process; each
/// call makes `cancel` the one it stops.
fn install_interrupt(cancel: Cancel) -> Result<()> {
    let first = {
        let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        let first = cur.is_none();
        *cur = Some(cancel);
        first
    };
    if !first {
        return Ok(());
    }
    ctrlc::set_handler(move || {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) == 0 {
            errln!("\nfaultline: interrupted: stopping, healing faults and writing the report");
            if let Some(c) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                c.cancel();
            }
        } else {
            errln!(
                "faultline: interrupted twice: exiting now; run `faultline nemesis heal --all` \
                 to heal any fault left"
            );
            std::process::exit(130);
        }
    })
    .context("installing the SIGINT/SIGTERM handler")
}

/// `test.json` of run `index` of `plan`: the plan as this run ran it (its
/// seed and node binary) and what the run learnt.
fn test_json(
    plan: &Plan,
    checked: &Checked,
    nodes: &Nodes,
    db: Option<&dyn Db>,
    index: u32,
    seed: u64,
) -> Result<Value> {
    let ran = Plan {
        seed: Some(seed),
        node_binary: checked.node_binary.clone().or(plan.node_binary.clone()),
        ..plan.clone()
    };
    let record = RunRecord {
        plan: &ran,
        name: plan.name(),
        workload_options: workload_options(plan.workload, db),
        checker: db.and_then(|d| d.checker(plan.workload)),
        node_names: nodes.names.clone(),
        addresses: db.map(|d| json!(d.addresses())),
        test_index: index,
        faultline_version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect(),
        db: db.map(|d| d.json()).into_iter().collect(),
    };
    serde_json::to_value(&record).context("serialising test.json")
}

/// The workload's options, as the target wants them (`Db::workload_options`).
fn workload_options(w: Workload, db: Option<&dyn Db>) -> WorkloadOptions {
    let mut o = WorkloadOptions::new(w);
    if let Some(db) = db {
        db.workload_options(&mut o);
    }
    o
}

/// The deployed system on `nodes` (none for an in-process target).
fn build_db(
    plan: &Plan,
    checked: &Checked,
    nodes: &Nodes,
    libfaketime: String,
) -> Result<Option<Box<dyn Db>>> {
    if nodes.specs.is_empty() {
        return Ok(None);
    }
    let ctx = DbContext {
        nodes: nodes
            .names
            .iter()
            .map(|n| (n.clone(), nodes.addrs.get(n).cloned().unwrap_or_default()))
            .collect(),
        bugs: plan.bugs.clone(),
        libfaketime,
        binary: checked.node_binary.clone(),
        options: plan.db_options.clone(),
    };
    checked
        .info
        .build(&ctx)
        .transpose()
        .map_err(|e| usage(format!("--target {}: {e}", plan.target)))
}

/// The test.json a run of `plan` on machines `nodes` (name, address)
/// writes, by the code a real run uses, without touching them: for tests
/// of what reads it back (`replay`).
#[cfg(test)]
pub fn test_json_on(plan: &Plan, nodes: &[(&str, &str)]) -> Result<Value> {
    let checked = check(plan)?;
    let nodes = Nodes {
        names: nodes.iter().map(|(n, _)| n.to_string()).collect(),
        lab: None,
        specs: nodes
            .iter()
            .map(|(n, a)| NodeSpec {
                name: n.to_string(),
                host: a.to_string(),
                port: 22,
                user: "root".into(),
                key: PathBuf::new(),
                known_hosts: PathBuf::new(),
                accept_new_host_keys: false,
                sudo: false,
                connect_timeout: Duration::from_secs(1),
            })
            .collect(),
        addrs: nodes
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
    };
    let db = build_db(plan, &checked, &nodes, String::new())?;
    test_json(plan, &checked, &nodes, db.as_deref(), 0, checked.seed)
}

fn run_one(
    plan: &Plan,
    checked: &Checked,
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    index: u32,
    seed: u64,
    runs: &mut Vec<PathBuf>,
) -> Result<Ending> {
    let nodes = resolve_nodes(plan, checked)?;
    let (libfaketime, delayer) = fault_tools(plan, checked, &nodes)?;
    let db = build_db(plan, checked, &nodes, libfaketime)?;
    let name = plan.name();
    let store = Store::new(&plan.store);
    let run = store
        .create_run(
            &name,
            &test_json(plan, checked, &nodes, db.as_deref(), index, seed)?,
        )
        .with_context(|| format!("creating the run in {}", plan.store.display()))?;
    let run_path = run.path().to_path_buf();
    runs.push(run_path.clone());
    errln!(
        "faultline: test {}/{}: {name} on {} (seed {seed}), run dir {}",
        index + 1,
        plan.test_count,
        nodes.names.join(","),
        run_path.display()
    );
    let history_path = run.file(store::HISTORY_JSONL);
    let sink = JsonlSink::create(&history_path)
        .with_context(|| format!("creating {}", history_path.display()))?;

    // Connect and deploy.
    let t_setup = Instant::now();
    let (mut remotes, mut failure) = match &db {
        Some(db) => match deploy(&nodes.specs, db.as_ref(), &nodes.names, rt, cancel) {
            Ok(r) => (r.0, None),
            Err((r, e)) => (r, Some(e)),
        },
        None => (Vec::new(), None),
    };
    let mut outcome: Option<RunOutcome> = None;
    let setup_s = t_setup.elapsed().as_secs_f64();

    // The wall clock at the history's time 0 (node logs are stamped with it).
    let mut t0_unix_ms = 0u64;
    if failure.is_none() && !cancel.is_cancelled() {
        let (o, f, t0) = run_phase(
            plan,
            checked,
            db.as_deref(),
            &nodes,
            delayer,
            &run,
            sink,
            rt,
            cancel,
            seed,
        )?;
        (outcome, failure, t0_unix_ms) = (o, f, t0);
    }

    // Logs, then teardown (unless asked to leave etcd running).
    let log_errors = match &db {
        Some(db) => collect_and_teardown(
            plan,
            db.as_ref(),
            &nodes,
            &mut remotes,
            &run,
            failure.is_some(),
        ),
        None => Vec::new(),
    };

    // Check what was recorded, even after a failure or an interrupt.
    let history = read_back(&history_path, &mut failure);
    let interrupted = cancel.is_cancelled();
    let t_check = Instant::now();
    let (mut verdict, mut results, text, views) = judge(
        plan,
        checked,
        db.as_deref(),
        &history,
        &history_path,
        failure.as_ref(),
    )?;
    let check_s = t_check.elapsed().as_secs_f64();
    if interrupted && verdict == Verdict::Valid {
        verdict = interrupted_is_unknown(&mut results);
    }
    let counts = annotate(
        &mut results,
        plan,
        checked,
        &history,
        seed,
        interrupted,
        (setup_s, check_s, t0_unix_ms),
        outcome.as_ref(),
        log_errors,
    );
    // 2PC: the participants' blocked periods, from their fetched logs.
    if plan.target == faultline_targets::twopc::PROTOCOL
        && let (Some(o), Some(b)) = (
            results.as_object_mut(),
            faultline_targets::twopc::blocking_of_run(&run_path, &history, t0_unix_ms),
        )
    {
        o.insert("blocking".into(), b);
    }
    let lesson = db
        .as_ref()
        .and_then(|d| d.lesson(plan.workload))
        .filter(|_| verdict == Verdict::Invalid);
    if let (Some(l), Some(o)) = (lesson, results.as_object_mut()) {
        o.insert("lesson".into(), json!(l));
    }
    run.write_results(&results)?;
    if let Err(e) = faultline_results::render_run(&run, &history, &results, &views) {
        errln!("faultline: warning: rendering the report: {e}");
    }
    let report = run.file(store::REPORT_HTML);
    out!("{text}");
    if let Some(l) = lesson {
        out!("{l}");
    }
    outln!("report: {}", report.display());
    if let Some(n) = outcome
        .as_ref()
        .map(|o| o.nemesis_errors)
        .filter(|n| *n > 0)
    {
        errln!(
            "faultline: warning: {n} nemesis action(s) failed (see the `nemesis` events in \
             history.jsonl); fewer faults ran than asked for"
        );
    }
    Ok(ending(
        &name,
        failure.as_ref(),
        interrupted,
        verdict,
        counts,
        seed,
    ))
}

/// The history as recorded; a history that cannot be read back is the
/// run's failure (an empty history is checked instead).
fn read_back(history_path: &Path, failure: &mut Option<anyhow::Error>) -> History {
    let history = faultline_checker::format::parse_file(
        history_path,
        Some(faultline_checker::format::Format::Jsonl),
    )
    .map_err(|e| anyhow!("reading back {}: {e}", history_path.display()));
    match history {
        Ok(h) => h,
        Err(e) => {
            failure.get_or_insert(e);
            History { events: Vec::new() }
        }
    }
}

/// An interrupted run that looks valid is `unknown`: it did not run to
/// its end. Records why in `results`.
fn interrupted_is_unknown(results: &mut Value) -> Verdict {
    if let Some(o) = results.as_object_mut() {
        o.insert("valid".into(), Verdict::Unknown.to_json());
        o.insert(
            "reason".into(),
            json!(
                "interrupted (SIGINT/SIGTERM): the recorded prefix shows no anomaly, \
                   but the test did not run to its end"
            ),
        );
    }
    Verdict::Unknown
}

/// Plan checks that need the nodes: a schedule file names only them; the
/// lab's libfaketime for clock faults; this binary as the latency fault's
/// delayer (lab nodes only). Returns (libfaketime, delayer).
fn fault_tools(plan: &Plan, checked: &Checked, nodes: &Nodes) -> Result<(String, Option<String>)> {
    if let Some(s) = &checked.schedule {
        s.check_nodes(&nodes.names)
            .map_err(|e| usage(format!("--nemesis-schedule {e}")))?;
    }
    let libfaketime = nodes
        .lab
        .as_ref()
        .map(|lab| lab.libfaketime.clone())
        .unwrap_or_default();
    // In the lab clocks are faked per process; outside it the clock helper
    // sets the node's real clock.
    if plan.nemesis.iter().any(|k| k.uses_clock()) && nodes.lab.is_some() && libfaketime.is_empty()
    {
        return Err(usage(format!(
            "--nemesis clock: the lab at {} has no libfaketime (apt-get install libfaketime), \
             so node clocks cannot be changed",
            plan.lab_dir.display()
        )));
    }
    // The latency fault's delayer is this binary, run on the nodes: only lab
    // nodes see the host's filesystem.
    let delayer = match (plan.nemesis.contains(&NemesisKind::Latency), &nodes.lab) {
        (false, _) => None,
        (true, None) => {
            return Err(usage(
                "--nemesis latency needs lab nodes: it runs the faultline binary on the \
                 nodes as its delayer",
            ));
        }
        (true, Some(_)) => Some(
            crate::cli_nemesis::node_visible_exe()
                .map_err(|e| usage(format!("--nemesis latency: {e:#}")))?,
        ),
    };
    Ok((libfaketime, delayer))
}

/// Run: the clients and the nemesis against the deployed system (or an
/// in-process target), recording into `sink`. Returns the outcome or the
/// failure, and the wall clock at the history's time 0 (node logs are
/// stamped with it).
#[allow(clippy::too_many_arguments)]
fn run_phase(
    plan: &Plan,
    checked: &Checked,
    db: Option<&dyn Db>,
    nodes: &Nodes,
    delayer: Option<String>,
    run: &store::RunDir,
    sink: JsonlSink<std::fs::File>,
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    seed: u64,
) -> Result<(Option<RunOutcome>, Option<anyhow::Error>, u64)> {
    let mut active_fault = Arc::new(Mutex::new(None));
    let target: Arc<dyn Target> = match (db, checked.info.kind) {
        (Some(db), _) => db.target(),
        (None, Kind::InProcess(make)) => make(),
        (None, Kind::Deployed(_)) => bail!("{}: no nodes to deploy on", plan.target),
    };
    let cluster = match &nodes.lab {
        Some(lab) => Cluster::lab(lab.clone()),
        None => Ok(Cluster {
            specs: nodes.specs.clone(),
            lab: None,
            state_dir: plan
                .state_dir
                .clone()
                .unwrap_or_else(crate::nemesis_ctl::default_state_dir),
        }),
    };
    let nemesis: Result<Box<dyn NemesisDriver>> = match (db, plan.nemesis.is_empty()) {
        (Some(db), false) => cluster
            .and_then(|c| Controller::connect(c, None, false, true))
            .map(|ctl| {
                let mut n = LabNemesis::new(
                    ctl,
                    plan.nemesis.clone(),
                    nodes.names.clone(),
                    seed,
                    DbProcess {
                        pidfile: db.pidfile().to_string(),
                        restart: nodes
                            .names
                            .iter()
                            .filter_map(|n| db.restart_command(n).map(|c| (n.clone(), c)))
                            .collect(),
                    },
                    Arc::clone(&target),
                );
                // Outside the lab clock faults set the real clock.
                if nodes.lab.is_none() {
                    n.clock_helper = Some(faultline_nemesis::fault::CLOCK_HELPER.to_string());
                } else {
                    n.delayer = delayer.clone();
                }
                n.schedule = Some(nemesis_schedule::Log::new(
                    run.file(nemesis_schedule::SCHEDULE_JSON),
                    checked.schedule.clone(),
                ));
                n.loss_prob = plan.loss_prob;
                active_fault = Arc::clone(&n.active);
                Box::new(n) as Box<dyn NemesisDriver>
            }),
        _ => Ok(Box::new(NoNemesis)),
    };
    match nemesis {
        Err(e) => Ok((
            None,
            Some(e.context("connecting the nemesis to the lab")),
            0,
        )),
        Ok(nemesis) => {
            let w = workload_options(plan.workload, db);
            let mut cfg = RunConfig::new(w, nodes.names.clone());
            cfg.concurrency = plan.concurrency;
            cfg.time_limit = checked.time_limit;
            cfg.rate = plan.rate;
            cfg.op_timeout = checked.op_timeout;
            cfg.seed = seed;
            cfg.nemesis_interval = (!plan.nemesis.is_empty()).then_some(checked.nemesis_interval);
            let progress = Arc::new(Progress::default());
            let ctl = RunControl {
                cancel: cancel.clone(),
                progress: Arc::clone(&progress),
                nemesis,
            };
            let done = Arc::new(AtomicBool::new(false));
            let bar = spawn_progress(
                progress,
                Arc::clone(&active_fault),
                checked.time_limit,
                Arc::clone(&done),
            );
            let t0_unix_ms = faultline_node::shell::now_ms();
            let r = rt.block_on(run_test(cfg, target, sink, ctl));
            done.store(true, Ordering::SeqCst);
            let _ = bar.join();
            Ok(match r {
                Ok(o) => (Some(o), None, t0_unix_ms),
                Err(e) => (
                    None,
                    Some(anyhow!(e).context("running the test")),
                    t0_unix_ms,
                ),
            })
        }
    }
}

/// Collect: every node's logs into the run, then teardown (unless asked to
/// leave the system running). Returns the log fetches that failed.
fn collect_and_teardown(
    plan: &Plan,
    db: &dyn Db,
    nodes: &Nodes,
    remotes: &mut [SshRemote],
    run: &store::RunDir,
    failed: bool,
) -> Vec<String> {
    let mut log_errors = Vec::new();
    for (node, r) in fetch_logs(remotes, db, run) {
        if let Err(e) = r {
            errln!("faultline: warning: fetching {node}'s log: {e:#}");
            log_errors.push(format!("{node}: {e:#}"));
        }
    }
    if !plan.leave_db_running {
        let what = format!("{} teardown", db.what());
        if let Err(e) = on_all(remotes, &what, |_| db.teardown_command()) {
            errln!("faultline: warning: {e:#}");
        }
    } else if !failed {
        errln!(
            "faultline: {} left running on {}",
            db.what(),
            nodes.names.join(",")
        );
    }
    log_errors
}

/// Check: the verdict on what was recorded (unknown when the run failed),
/// by the target's own checker or the workload's.
fn judge(
    plan: &Plan,
    checked: &Checked,
    db: Option<&dyn Db>,
    history: &History,
    history_path: &Path,
    failure: Option<&anyhow::Error>,
) -> Result<(Verdict, Value, String, faultline_results::AnomalyViews)> {
    Ok(if failure.is_some() {
        let e = failure.map(|e| format!("{e:#}")).unwrap_or_default();
        (
            Verdict::Unknown,
            json!({"valid": Verdict::Unknown.to_json(), "error": e, "reason": format!("the run failed: {e}")}),
            String::new(),
            faultline_results::AnomalyViews::default(),
        )
    } else if let Some(model) = db.and_then(|d| d.checker(plan.workload)) {
        // The target's own promise (a CRDT store: convergence).
        let label = history_path.display().to_string();
        crate::check::analyze_with(
            history,
            model,
            &label,
            Some(checked.check_time_limit),
            plan.max_false_positive_rate,
        )?
        .into_parts()
    } else {
        let label = history_path.display().to_string();
        match plan.workload {
            Workload::Set => {
                let r = faultline_checker::set_full::check(history)
                    .map_err(|e| anyhow!("history does not pair: {e}"))?;
                (r.verdict, r.json, r.text, Default::default())
            }
            Workload::Register => crate::check::analyze(
                history,
                "cas-register",
                &label,
                Some(checked.check_time_limit),
            )?
            .into_parts(),
            Workload::Bank => crate::check::analyze_workload(
                history,
                "bank",
                &label,
                Some(&json!(
                    WorkloadOptions::new(Workload::Bank).initial_balances()
                )),
                Some(checked.check_time_limit),
            )?
            .into_parts(),
            w => crate::check::analyze(history, w.name(), &label, Some(checked.check_time_limit))?
                .into_parts(),
        }
    })
}

/// Adds the run's facts to `results`: step counts, and `run` (target,
/// seed, phase times, completion counts, pacing, failed log fetches).
/// Returns the (ok, fail, info, nemesis) counts.
#[allow(clippy::too_many_arguments)]
fn annotate(
    results: &mut Value,
    plan: &Plan,
    checked: &Checked,
    history: &History,
    seed: u64,
    interrupted: bool,
    (setup_s, check_s, t0_unix_ms): (f64, f64, u64),
    outcome: Option<&RunOutcome>,
    log_errors: Vec<String>,
) -> (usize, usize, usize, usize) {
    let counts = history_counts(history);
    if let Some(o) = results.as_object_mut() {
        let main_s = Some(checked.time_limit.as_secs_f64());
        o.insert(
            "steps".into(),
            faultline_results::steps::step_counts(history, main_s).to_json(),
        );
        o.insert(
            "run".into(),
            json!({
                "target": plan.target,
                "workload": plan.workload.name(),
                "seed": seed,
                "interrupted": interrupted,
                "setup_s": setup_s,
                "main_phase_s": outcome.map(|o| o.main_phase.as_secs_f64()),
                "check_s": check_s,
                "events": outcome.map(|o| o.events),
                "ok": counts.0, "fail": counts.1, "info": counts.2,
                "nemesis_events": counts.3,
                "nemesis_errors": outcome.map(|o| o.nemesis_errors),
                "final_reads_ok": outcome.and_then(|o| o.final_reads_ok),
                "pacing": outcome.map(|o| o.pacing.to_json()),
                "log_fetch_errors": log_errors,
                // The test's start on the wall clock: puts the nodes' traces
                // (`faultline trace`) and the history on one axis.
                "t0_unix_ms": t0_unix_ms,
            }),
        );
    }
    counts
}

/// How the run ends, said on stdout and stderr.
fn ending(
    name: &str,
    failure: Option<&anyhow::Error>,
    interrupted: bool,
    verdict: Verdict,
    counts: (usize, usize, usize, usize),
    seed: u64,
) -> Ending {
    match failure {
        Some(e) if interrupted => {
            errln!("faultline: interrupted before the test ran: {e:#}");
            outln!("{name}: unknown, interrupted during setup (exit 2)");
            Ending::Verdict(Verdict::Unknown)
        }
        Some(e) => {
            errln!("faultline: the run failed: {e:#}");
            outln!("{name}: run failed (exit 3)");
            Ending::Failed
        }
        None => {
            outln!(
                "{name}: {verdict}{} ({} ok, {} fail, {} info, {} nemesis events; seed {seed})",
                if interrupted { ", interrupted" } else { "" },
                counts.0,
                counts.1,
                counts.2,
                counts.3
            );
            Ending::Verdict(verdict)
        }
    }
}

/// (ok, fail, info, nemesis) completions in a history.
fn history_counts(h: &History) -> (usize, usize, usize, usize) {
    let mut c = (0, 0, 0, 0);
    for e in &h.events {
        if e.process.is_nemesis() {
            c.3 += 1;
            continue;
        }
        match e.kind {
            EventType::Ok => c.0 += 1,
            EventType::Fail => c.1 += 1,
            EventType::Info => c.2 += 1,
            EventType::Invoke => {}
        }
    }
    c
}
