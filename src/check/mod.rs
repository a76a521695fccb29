//! `faultline check`: read histories, check them, print verdicts and
//! explanations, exit with the worst verdict.

use crate::usage;
use clap::Args;
use faultline_checker::format::{self, Format};
use faultline_checker::{History, Operation, Verdict};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod analyze;
mod page;
mod progress;
mod rerender;
mod spectrum;
#[cfg(test)]
mod tests;
mod txn;
mod workload;

pub(crate) use analyze::{analyze, analyze_with, analyze_workload};
use page::{all_anomalies, page_of};
use txn::{check_txn, check_txn_fast};
use workload::{bank_initial_of_run, check_workload, out_of_time, pair_and_check_workload};

/// Every model `--model` accepts, grouped as `--help` lists them.
pub fn model_groups() -> [(&'static str, &'static [&'static str]); 4] {
    [
        ("Linearizability", LIN_MODELS),
        ("Transactions (Elle-style)", TXN_MODELS),
        (
            "Session guarantees and causal consistency of registers and sets",
            SESSION_MODELS,
        ),
        (
            "Workloads (Jepsen's checkers) and replicated objects (CRDTs)",
            WORKLOAD_MODELS,
        ),
    ]
}

/// Model names `--model` accepts.
pub const LIN_MODELS: &[&str] = &faultline_checker::model::ModelKind::NAMES;
pub const TXN_MODELS: &[&str] = &["list-append", "rw-register"];
/// Session guarantees and causal consistency of read/write registers.
pub const SESSION_MODELS: &[&str] = &["causal-register"];
/// The checks of the workloads of the same names (Jepsen's bank, counter,
/// total-queue, unique-ids checkers; lock = mutual exclusion + fencing),
/// and the convergence checks of replicated objects (CRDTs).
pub const WORKLOAD_MODELS: &[&str] = &[
    "bank",
    "counter",
    "queue",
    "unique-ids",
    "lock",
    "fenced",
    "election",
    "crdt-convergence",
    "or-set",
    "lww-register",
    "saga",
    "siblings",
    "detector",
];

#[derive(Args, Debug)]
#[command(after_long_help = "\
Exit codes: 0 valid, 1 invalid, 2 unknown (a budget ran out; never reported as valid),
64 bad arguments or input. With several files the worst verdict wins.

Examples:
  faultline check history.jsonl
  faultline check --model cas-register --initial 0 history.edn
  faultline check --model list-append --consistency-models snapshot-isolation h.edn
  faultline check --model causal-register --consistency-models read-your-writes,monotonic-reads h.jsonl
  faultline check --model bank --initial '[20,20,20,20,20]' bank.jsonl
  faultline check --model lock locks.jsonl
  faultline check --model crdt-convergence counter-after-heal.jsonl
  faultline check --json --html why.html c10-bad.txt")]
pub struct CheckArgs {
    /// Consistency model to check against; inferred from the operations when
    /// omitted
    #[arg(long, short, value_name = "MODEL")]
    pub model: Option<String>,

    /// The model's initial state as JSON, e.g. `0` or `{"x":0,"y":0}`.
    /// Default: registers start absent (distinct from every value), sets and
    /// queues empty, the mutex unlocked, the counter 0. For bank: the total,
    /// or the initial balances (a list, or an object of account -> balance);
    /// default: the most common total among the reads
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,

    /// History format (auto: detected from the first lines)
    #[arg(long, short, default_value = "auto", value_name = "FORMAT")]
    pub format: String,

    /// Seconds the search may take per file before it answers `unknown`.
    /// For list-append and rw-register it bounds the whole check of the file:
    /// reading, analysis, cycle search, explanations and printing
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<String>,

    /// Memory the linearizability search may use, in MiB, before it answers
    /// `unknown` for the key it is on
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory_limit: usize,

    /// How an `ok` read of null is judged: `absent` (the key did not exist;
    /// Porcupine and faultline's own recorder) or `unknown` (constrains
    /// nothing; Knossos). Default: unknown for EDN, absent otherwise
    #[arg(long, value_name = "absent|unknown")]
    pub nil_reads: Option<String>,

    /// Check the whole history as one object instead of splitting it by key
    /// (P-compositionality); mostly for measuring what splitting buys
    #[arg(long)]
    pub no_split: bool,

    /// For list-append and rw-register: the models to check, comma-separated
    /// (e.g. serializable,snapshot-isolation). Default strict-serializable.
    /// For causal-register: causal (default), PRAM, read-your-writes,
    /// monotonic-reads, monotonic-writes, writes-follow-reads
    #[arg(long, value_delimiter = ',', value_name = "MODELS")]
    pub consistency_models: Vec<String>,

    /// For rw-register: assume each key is linearizable, so the realtime
    /// order of writes to a key orders its versions (Elle's linearizable-keys?)
    #[arg(long)]
    pub linearizable_keys: bool,

    /// For list-append and rw-register: anomalies that fail the check, with
    /// every anomaly implying one (Elle's :anomalies), e.g. G0,G1c,G2-item.
    /// Without --consistency-models, exactly these are checked
    #[arg(long, value_delimiter = ',', value_name = "ANOMALIES")]
    pub anomalies: Vec<String>,

    /// For rw-register: assume each key is sequentially consistent, so each
    /// process's order of operations on a key orders its versions (Elle's
    /// sequential-keys?)
    #[arg(long)]
    pub sequential_keys: bool,

    /// For rw-register: do not infer that a transaction's write of a key
    /// follows the version it read (Elle's wfr-keys? false, Elle's default)
    #[arg(long)]
    pub no_wfr_keys: bool,

    /// For detector (the membership workload): a false-positive rate (the
    /// share of observations of up, reachable members that showed them
    /// suspect or dead) above R is invalid. Default: measured, not judged
    #[arg(long, value_name = "R", value_parser = crate::nemesis_driver::parse_loss_prob)]
    pub max_false_positive_rate: Option<f64>,

    /// Place the history on the consistency spectrum: linearizable,
    /// sequential, causal, PRAM, the session guarantees and eventual
    /// convergence, each holds / violated / unknown, and the strongest that
    /// holds (docs/spectrum.md). The exit code is linearizability's
    #[arg(long)]
    pub spectrum: bool,

    /// Print one JSON object per file per line instead of text
    #[arg(long)]
    pub json: bool,

    /// Write an HTML explanation (a timeline of each failing key, or the
    /// anomaly cycles) to this file; it opens with no server
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,

    /// For run directories: rewrite the run's results.json and report.html
    /// (with the failure viewer or cycle diagrams) from this re-check, for a
    /// run stored before a checker or report change
    #[arg(long)]
    pub report: bool,

    /// History files to check (`-` reads stdin), or run directories of
    /// `faultline test` (`store/<test>/latest`), which are re-checked from
    /// their history.jsonl
    #[arg(required = true, value_name = "FILE|RUN_DIR")]
    pub files: Vec<PathBuf>,
}

/// Validated options shared by every file.
#[derive(Clone)]
struct Plan {
    model: Option<String>,
    initial: Option<serde_json::Value>,
    format: Option<Format>,
    time_limit: Option<Duration>,
    max_false_positive_rate: Option<f64>,
    /// The inputs that can be read only once, read whole: see
    /// [`read_streams`].
    streams: Arc<HashMap<PathBuf, Vec<u8>>>,
    /// Build the failure viewer's and cycle diagrams' data
    /// ([`FileOutcome::views`]): for `--html` and for a run's report.
    views: bool,
}

fn plan(args: &CheckArgs) -> anyhow::Result<Plan> {
    if let Some(m) = &args.model
        && !LIN_MODELS.contains(&m.as_str())
        && !TXN_MODELS.contains(&m.as_str())
        && !SESSION_MODELS.contains(&m.as_str())
        && !WORKLOAD_MODELS.contains(&m.as_str())
    {
        return Err(usage(format!(
            "unknown --model `{m}`; expected one of {}, {}, {}, {}",
            LIN_MODELS.join(", "),
            TXN_MODELS.join(", "),
            SESSION_MODELS.join(", "),
            WORKLOAD_MODELS.join(", ")
        )));
    }
    let initial = match &args.initial {
        None => None,
        Some(s) => Some(
            serde_json::from_str(s)
                .map_err(|e| usage(format!("--initial `{s}` is not JSON: {e}")))?,
        ),
    };
    let format = if args.format == "auto" {
        None
    } else {
        Some(args.format.parse::<Format>().map_err(|_| {
            usage(format!(
                "unknown --format `{}`; expected auto, {}",
                args.format,
                Format::ALL.map(Format::name).join(", ")
            ))
        })?)
    };
    let time_limit = match &args.time_limit {
        None => None,
        Some(s) => {
            let secs: f64 = s
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0)
                .ok_or_else(|| {
                    usage(format!(
                        "--time-limit `{s}` is not a positive number of seconds"
                    ))
                })?;
            Some(Duration::from_secs_f64(secs))
        }
    };
    Ok(Plan {
        model: args.model.clone(),
        initial,
        format,
        time_limit,
        max_false_positive_rate: args.max_false_positive_rate,
        streams: Arc::default(),
        views: args.html.is_some() || args.report,
    })
}

/// Reads the inputs that can be read only once into memory before anything
/// looks at them: `-` (stdin) and any path that is neither a file nor a
/// directory (`/dev/stdin` on a pipe, a FIFO, `<(…)`). Sniffing the format
/// and the transactional fast path each open a file afresh, which would
/// find such a stream already drained.
fn read_streams(files: &[PathBuf]) -> anyhow::Result<HashMap<PathBuf, Vec<u8>>> {
    use std::io::Read;
    let mut streams = HashMap::new();
    for file in files {
        let data = if file.as_os_str() == "-" {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() {
                errln!("faultline: reading a history from the terminal; end it with Ctrl-D");
            }
            let mut data = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut data)
                .map_err(|e| usage(format!("-: cannot read stdin: {e}")))?;
            data
        } else if std::fs::metadata(file).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            std::fs::read(file)
                .map_err(|e| usage(format!("{}:0: cannot read: {e}", file.display())))?
        } else {
            continue;
        };
        if streams.insert(file.clone(), data).is_some() {
            return Err(usage(format!(
                "{} is given twice; it is a stream, which can be read only once",
                file.display()
            )));
        }
    }
    Ok(streams)
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if args.report
        && let Some(f) = args.files.iter().find(|f| !f.is_dir())
    {
        return Err(usage(format!(
            "--report rewrites a run directory's report; {} is not a directory",
            f.display()
        )));
    }
    let mut plan = plan(&args)?;
    plan.streams = Arc::new(read_streams(&args.files)?);
    let mut worst = Verdict::Valid;
    let mut pages = Vec::new();
    for (i, file) in args.files.iter().enumerate() {
        let spinner = progress::Spinner::start(args.json);
        let data = if file.is_dir() {
            file.join(faultline_results::store::HISTORY_JSONL)
        } else {
            file.clone()
        };
        let size = std::fs::metadata(data).map(|m| m.len()).unwrap_or(0);
        spinner.set(format!(
            "checking {} ({} of {}{})",
            file.display(),
            i + 1,
            args.files.len(),
            if size > 0 {
                format!(", {:.1} MB", size as f64 / 1e6)
            } else {
                String::new()
            }
        ));
        let outcome = check_file(file, &args, &plan);
        drop(spinner);
        let outcome = outcome?;
        if args.report {
            rerender::rewrite(file, &outcome)?;
        }
        worst = worst.worst(outcome.verdict);
        if args.json {
            outln!("{}", outcome.json);
        } else {
            out!("{}", outcome.text);
            if args.report {
                outln!(
                    "report rewritten: {}",
                    file.join(faultline_results::store::REPORT_HTML).display()
                );
            }
        }
        if args.html.is_some() {
            pages.push(page_of(file, outcome));
        }
    }
    if let Some(out) = &args.html {
        let title = if args.files.len() == 1 {
            format!("faultline check {}", args.files[0].display())
        } else {
            format!("faultline check ({} files)", args.files.len())
        };
        let page = faultline_results::timeline::render_check_page(&title, &pages);
        // The verdict is the answer and its exit code is what nightly jobs
        // read: a report that cannot be written is said, not made exit 3.
        match std::fs::write(out, page) {
            Ok(()) if !args.json => outln!("explanation written to {}", out.display()),
            Ok(()) => {}
            Err(e) => errln!("faultline: cannot write {}: {e}", out.display()),
        }
    }
    Ok(ExitCode::from(worst.exit_code()))
}

/// One file's check: its verdict, JSON, text and (when asked for, see
/// [`Plan::views`]) what the failure viewer and cycle diagrams draw.
pub(crate) struct FileOutcome {
    pub verdict: Verdict,
    pub json: serde_json::Value,
    pub text: String,
    pub views: faultline_results::AnomalyViews,
}

impl FileOutcome {
    pub(crate) fn into_parts(
        self,
    ) -> (
        Verdict,
        serde_json::Value,
        String,
        faultline_results::AnomalyViews,
    ) {
        (self.verdict, self.json, self.text, self.views)
    }
}

/// Reads one history; `None` as the format means an empty file.
fn read_history(file: &Path, plan: &Plan) -> anyhow::Result<(History, Option<Format>)> {
    let name = file.display().to_string();
    match plan.streams.get(file) {
        Some(data) => format::parse_bytes_detected(data, plan.format),
        None => format::parse_file_detected(file, plan.format),
    }
    .map_err(|e| usage(e.in_file(name).to_string()))
}

/// [`read_history`] within `deadline`: `Err(outcome)` is the `unknown`
/// answer when the time limit ran out while parsing.
fn read_history_within(
    file: &Path,
    plan: &Plan,
    model: &str,
    deadline: &faultline_checker::Deadline,
) -> anyhow::Result<Result<History, FileOutcome>> {
    let name = file.display().to_string();
    let parsed = match plan.streams.get(file) {
        Some(data) => format::parse_reader_within(&data[..], plan.format, deadline),
        None => format::parse_file_within(file, plan.format, deadline),
    }
    .map_err(|e| usage(e.in_file(name.as_str()).to_string()))?;
    Ok(match parsed {
        format::Parsed::Done(h, _) => Ok(h),
        format::Parsed::OutOfTime { lines } => {
            let why = format!(
                "{} ({lines} lines read)",
                deadline.reason("parsing the history")
            );
            Err(out_of_time(&name, model, why))
        }
    })
}

fn check_file(file: &Path, args: &CheckArgs, plan: &Plan) -> anyhow::Result<FileOutcome> {
    if file.is_dir() {
        return check_run_dir(file, args, plan);
    }
    check_history_file(file, args, plan, plan.model.clone())
}

/// Re-checks a stored run (`store/<test>/<time>/` or its `latest`) with the
/// current checker: its `history.jsonl`, with the model its workload implies
/// (as `faultline test` chose it) unless `--model` says otherwise. Nothing
/// in the run directory is changed.
fn check_run_dir(dir: &Path, args: &CheckArgs, plan: &Plan) -> anyhow::Result<FileOutcome> {
    let history = dir.join(faultline_results::store::HISTORY_JSONL);
    if !history.is_file() {
        return Err(usage(format!(
            "{} is a directory but not a faultline run: it has no {}",
            dir.display(),
            faultline_results::store::HISTORY_JSONL
        )));
    }
    let test_json = std::fs::read_to_string(dir.join(faultline_results::store::TEST_JSON))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    let workload = test_json
        .as_ref()
        .and_then(|t| t["workload"].as_str().map(str::to_string));
    // The checker the target asked for (`Db::checker`), e.g. crdt-convergence.
    if plan.model.is_none()
        && let Some(m) = test_json.as_ref().and_then(|t| t["checker"].as_str())
    {
        // The run's own detector bound, unless the command line gives one.
        let mut plan = plan.clone();
        plan.max_false_positive_rate = plan
            .max_false_positive_rate
            .or_else(|| test_json.as_ref()?["max_false_positive_rate"].as_f64());
        return check_history_file(&history, args, &plan, Some(m.to_string()));
    }
    if plan.model.is_none() && workload.as_deref() == Some("set") {
        // The set workload has its own check (lost and never-added elements).
        let (h, _) = read_history(&history, plan)?;
        let name = history.display().to_string();
        let r = faultline_checker::set_full::check(&h).map_err(|e| {
            usage(
                format::InputError::from(e)
                    .in_file(name.as_str())
                    .to_string(),
            )
        })?;
        let (verdict, mut json, text) = (r.verdict, r.json, r.text);
        annotate(&mut json, &name, None, None);
        let text = format!("{}: {text}", history.display());
        return Ok(FileOutcome {
            verdict,
            json,
            text,
            views: faultline_results::AnomalyViews::default(),
        });
    }
    let model = plan.model.clone().or(match workload.as_deref() {
        Some("register") => Some("cas-register".to_string()),
        Some(w) if TXN_MODELS.contains(&w) || WORKLOAD_MODELS.contains(&w) => Some(w.to_string()),
        _ => None,
    });
    if plan.initial.is_none()
        && model.as_deref() == Some("bank")
        && let Some(initial) = test_json.as_ref().and_then(bank_initial_of_run)
    {
        // The run's own balances, so a wrong total is judged against the
        // money the test put in, not against what most reads saw.
        let deadline = faultline_checker::Deadline::after(plan.time_limit);
        let mut h = match read_history_within(&history, plan, "bank", &deadline)? {
            Ok(h) => h,
            Err(unknown) => return Ok(unknown),
        };
        let name = history.display().to_string();
        return pair_and_check_workload(&name, &mut h, "bank", Some(&initial), &deadline, None);
    }
    check_history_file(&history, args, plan, model)
}

fn check_history_file(
    file: &Path,
    args: &CheckArgs,
    plan: &Plan,
    model: Option<String>,
) -> anyhow::Result<FileOutcome> {
    if let Some(outcome) = check_txn_fast(file, args, plan, model.as_deref())? {
        return Ok(outcome);
    }
    if let Some(m) = model.as_deref()
        && WORKLOAD_MODELS.contains(&m)
        && !args.spectrum
    {
        // Started before parsing: --time-limit bounds the whole check.
        let deadline = faultline_checker::Deadline::after(plan.time_limit);
        let mut history = match read_history_within(file, plan, m, &deadline)? {
            Ok(h) => h,
            Err(unknown) => return Ok(unknown),
        };
        return pair_and_check_workload(
            &file.display().to_string(),
            &mut history,
            m,
            plan.initial.as_ref(),
            &deadline,
            plan.max_false_positive_rate,
        );
    }
    let (history, fmt) = read_history(file, plan)?;
    let name = file.display().to_string();
    let paired = format::check_pairs(&history, Some(&name)).map_err(|e| usage(e.to_string()))?;
    let model = match model {
        Some(m) => m,
        None => infer_model(fmt, &paired.operations).to_string(),
    };
    // Linearizability answers an empty history itself: valid, vacuously,
    // with the `no-completed-ops` warning (as Knossos and Porcupine).
    if paired.operations.is_empty() && !LIN_MODELS.contains(&model.as_str()) {
        return Ok(nothing_to_check(file, &model));
    }
    if args.spectrum {
        let (spec, opts) = lin_spec(args, plan, fmt, &model).map_err(|e| {
            usage(format!(
                "--spectrum places register, kv, set and queue histories: {e:#}"
            ))
        })?;
        return spectrum::check_spectrum(file, &history, &spec, &opts);
    }
    if WORKLOAD_MODELS.contains(&model.as_str()) {
        let name = file.display().to_string();
        check_workload(
            &name,
            &history,
            &paired,
            &model,
            plan.initial.as_ref(),
            &faultline_checker::Deadline::after(plan.time_limit),
            plan.max_false_positive_rate,
        )
    } else if TXN_MODELS.contains(&model.as_str()) {
        check_txn(file, args, plan, &history, &model)
    } else if SESSION_MODELS.contains(&model.as_str()) {
        check_session(file, args, &history, &model)
    } else {
        check_lin(file, args, plan, &history, &paired.operations, fmt, &model)
    }
}

/// Adds the fields every per-file JSON result carries beside the checker's
/// own: which file, and (where the checker doesn't say) which model and
/// consistency models were checked.
fn annotate(
    json: &mut serde_json::Value,
    file: &str,
    model: Option<&str>,
    models: Option<&[String]>,
) {
    if let Some(o) = json.as_object_mut() {
        o.insert("file".into(), serde_json::Value::from(file));
        if let Some(m) = model {
            o.insert("model".into(), serde_json::Value::from(m));
        }
        if let Some(ms) = models {
            o.insert(
                "consistency_models".into(),
                serde_json::Value::from(ms.to_vec()),
            );
        }
    }
}

/// A history with no client operations proves nothing: `unknown`, never
/// `valid` (a run whose cluster never started leaves such a file).
fn nothing_to_check(file: &Path, model: &str) -> FileOutcome {
    let name = file.display().to_string();
    let reason = "the history has no client operations: nothing to check";
    FileOutcome {
        verdict: Verdict::Unknown,
        json: serde_json::json!({
            "file": name,
            "valid": Verdict::Unknown.to_json(),
            "model": model,
            "reason": reason,
            "keys": {},
            "anomaly_types": [],
            "anomalies": {},
            "stats": {"ops": 0},
        }),
        text: format!("{name}: unknown ({model}): {reason}\n"),
        views: faultline_results::AnomalyViews::default(),
    }
}

/// Picks the model a history's operations imply, as a person would: Porcupine
/// etcd logs are a cas register, Porcupine kv files a kv store; otherwise the
/// operation names decide.
pub fn infer_model(fmt: Option<Format>, ops: &[Operation]) -> &'static str {
    match fmt {
        Some(Format::PorcupineEtcd) => return "cas-register",
        Some(Format::PorcupineKv) => return "kv",
        _ => {}
    }
    let has = |name: &str| ops.iter().any(|o| o.f == name);
    if has("txn") {
        let micro = ops
            .iter()
            .filter(|o| o.f == "txn")
            .flat_map(|o| o.value.as_array().into_iter().flatten())
            .filter_map(|m| m.get(0).and_then(|f| f.as_str()));
        let mut seen_rw = false;
        for f in micro {
            match f {
                "append" => return "list-append",
                "w" | "r" => seen_rw = true,
                _ => {}
            }
        }
        return if seen_rw {
            "rw-register"
        } else {
            "multi-register"
        };
    }
    if has("acquire") || has("release") {
        // The lock check runs the mutex model's linearizability and more.
        "lock"
    } else if has("transfer") {
        "bank"
    } else if has("generate") {
        "unique-ids"
    } else if has("drain") {
        // The final drain is the total-queue workload's; the queue models
        // of the linearizability checker have no such operation.
        "queue"
    } else if has("enqueue") || has("dequeue") {
        "unordered-queue"
    } else if has("add")
        && ops.iter().any(|o| {
            o.f == "read" && o.outcome == faultline_checker::Outcome::Ok && o.value.is_i64()
        })
    {
        // Reads of a number: a counter; reads of a collection: a set.
        "counter"
    } else if has("add") {
        "set"
    } else if has("get")
        || has("put")
        || has("append")
        || (ops.iter().any(|o| o.key.is_some()) && !(has("read") || has("write") || has("cas")))
    {
        "kv"
    } else {
        // read/write/cas, keyed or not: a cas register (per key, as
        // `faultline test --workload register` records them; an absent key
        // reads null, which the kv model's "" initial state would reject).
        "cas-register"
    }
}

/// The linearizability model and budgets the flags name (`--spectrum`
/// uses the same).
fn lin_spec(
    args: &CheckArgs,
    plan: &Plan,
    fmt: Option<Format>,
    model: &str,
) -> anyhow::Result<(
    faultline_checker::model::ModelSpec,
    faultline_checker::linear::Options,
)> {
    use faultline_checker::model::{ModelKind, ModelSpec};
    let kind = ModelKind::parse(model).ok_or_else(|| usage(format!("unknown model `{model}`")))?;
    let mut spec = ModelSpec::new(kind);
    // Knossos reads an ok read of nil as "value unknown"; Porcupine and our
    // own recorder mean "the key was absent". EDN is Knossos's format.
    spec.nil_read_is_absent = match args.nil_reads.as_deref() {
        Some("absent") => true,
        Some("unknown") => false,
        Some(other) => {
            return Err(usage(format!(
                "unknown --nil-reads `{other}`; expected absent or unknown"
            )));
        }
        None => fmt != Some(Format::Edn),
    };
    spec.initial = plan.initial.clone();
    let opts = faultline_checker::linear::Options {
        time_limit: plan.time_limit,
        memory_limit_bytes: args.memory_limit.saturating_mul(1 << 20),
        split_by_key: !args.no_split,
        ..Default::default()
    };
    Ok((spec, opts))
}

/// Linearizability of one file's operations.
fn check_lin(
    file: &Path,
    args: &CheckArgs,
    plan: &Plan,
    history: &History,
    ops: &[Operation],
    fmt: Option<Format>,
    model: &str,
) -> anyhow::Result<FileOutcome> {
    use faultline_checker::linear;

    let (spec, opts) = lin_spec(args, plan, fmt, model)?;
    let name = file.display().to_string();
    let result = linear::check(ops, Some(history), &spec, &opts)
        .map_err(|e| usage(format!("{name}:{e}")))?;
    let mut json = result.to_json(ops, history);
    annotate(&mut json, &name, None, None);

    let mut text = String::new();
    let invalid_keys = result
        .keys
        .values()
        .filter(|k| k.verdict == Verdict::Invalid)
        .count();
    let unknown_keys = result
        .keys
        .values()
        .filter(|k| k.verdict == Verdict::Unknown)
        .count();
    text.push_str(&format!(
        "{name}: {} ({model}, {} ops, {} key(s){}{}; {:.1} ms)\n",
        result.verdict,
        result.stats.ops,
        result.keys.len(),
        if invalid_keys > 0 {
            format!(", {invalid_keys} not linearizable")
        } else {
            String::new()
        },
        if unknown_keys > 0 {
            format!(", {unknown_keys} unknown")
        } else {
            String::new()
        },
        result.stats.elapsed_ms
    ));
    // Lead with the minimal counterexample; the search's own witness (the
    // longest prefix) follows as detail.
    for a in all_anomalies(&json) {
        if let Some(e) = a["minimal_explanation"].as_str() {
            text.push_str(&format!("  {e}\n"));
        }
        if let Some(e) = a["explanation"].as_str() {
            text.push_str(&format!("  Search detail: {e}\n"));
        }
    }
    if result.warnings.iter().any(|w| w == "no-completed-ops") {
        text.push_str(
            "  warning: no operation completed (none at all, or every one failed or timed out): \
             linearizable only vacuously\n",
        );
    }
    for (key, kr) in &result.keys {
        if kr.verdict == Verdict::Unknown {
            let why = kr.reason.as_deref().unwrap_or("the search did not finish");
            text.push_str(&format!("  key {key:?}: unknown: {why}\n"));
        }
    }

    let views = if plan.views {
        let whole = !opts.split_by_key && LIN_SPLIT_OPTIONAL.contains(&model);
        page::lin_views(&result, &json, ops, history, &spec, whole)
    } else {
        faultline_results::AnomalyViews::default()
    };
    Ok(FileOutcome {
        verdict: result.verdict,
        json,
        text,
        views,
    })
}

/// The models `--no-split` checks as one map-valued object (the others'
/// keys are independent objects either way; see `linear::Options`).
const LIN_SPLIT_OPTIONAL: &[&str] = &["register", "cas-register", "kv"];

/// Session guarantees and causal consistency of one file's register
/// operations.
fn check_session(
    file: &Path,
    args: &CheckArgs,
    history: &History,
    model: &str,
) -> anyhow::Result<FileOutcome> {
    use faultline_checker::session::{self, SessionOptions};
    let mut opts = SessionOptions::default();
    if !args.consistency_models.is_empty() {
        opts.models = args.consistency_models.clone();
    }
    let name = file.display().to_string();
    let result = session::check(history, &opts).map_err(|e| usage(format!("{name}:{e}")))?;
    let mut json = serde_json::to_value(&result)?;
    annotate(&mut json, &name, Some(model), Some(&opts.models));
    let mut text = format!(
        "{name}: {} ({model} for {}, {} ops, {} reads checked)\n",
        result.verdict,
        result.guarantees.join(", "),
        result.stats.ops,
        result.stats.reads_checked
    );
    if !result.anomaly_types.is_empty() {
        text.push_str(&format!(
            "  anomalies: {}\n",
            result.anomaly_types.join(", ")
        ));
    }
    for line in result.prose().lines() {
        text.push_str(&format!("  {line}\n"));
    }
    Ok(FileOutcome {
        verdict: result.verdict,
        json,
        text,
        views: faultline_results::AnomalyViews::default(),
    })
}
