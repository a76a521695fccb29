//! `faultline check`: read histories, check them, print verdicts and
//! explanations, exit with the worst verdict.

use crate::{EXIT_USAGE, UsageError};
use anyhow::Context;
use clap::Args;
use faultline_checker::format::{self, Format};
use faultline_checker::{History, Operation, Verdict};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Model names `--model` accepts.
pub const LIN_MODELS: &[&str] = &[
    "register",
    "cas-register",
    "kv",
    "mutex",
    "set",
    "unordered-queue",
    "fifo-queue",
    "multi-register",
];
pub const TXN_MODELS: &[&str] = &["list-append", "rw-register"];

#[derive(Args, Debug)]
#[command(after_long_help = "\
Exit codes: 0 valid, 1 invalid, 2 unknown (a budget ran out; never reported as valid),
64 bad arguments or input. With several files the worst verdict wins.

Examples:
  faultline check history.jsonl
  faultline check --model cas-register --initial 0 history.edn
  faultline check --model list-append --consistency-models snapshot-isolation h.edn
  faultline check --json --html why.html c10-bad.txt")]
pub struct CheckArgs {
    /// Consistency model to check against; inferred from the operations when
    /// omitted. Linearizability: register, cas-register, kv, mutex, set,
    /// unordered-queue, fifo-queue, multi-register. Transactions (Elle-style):
    /// list-append, rw-register
    #[arg(long, short, value_name = "MODEL")]
    pub model: Option<String>,

    /// The model's initial state as JSON, e.g. `0` or `{"x":0,"y":0}`.
    /// Default: registers start absent (distinct from every value), sets and
    /// queues empty, the mutex unlocked
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,

    /// History format: auto, jsonl, edn, porcupine-etcd, porcupine-kv
    #[arg(long, short, default_value = "auto", value_name = "FORMAT")]
    pub format: String,

    /// Seconds the search may take per file before it answers `unknown`
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<String>,

    /// Memory the linearizability search may use, in MiB, before it answers
    /// `unknown` for the key it is on
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory_limit: usize,

    /// Check the whole history as one object instead of splitting it by key
    /// (P-compositionality); mostly for measuring what splitting buys
    #[arg(long)]
    pub no_split: bool,

    /// For list-append and rw-register: the models to check, comma-separated
    /// (e.g. serializable,snapshot-isolation). Default strict-serializable
    #[arg(long, value_delimiter = ',', value_name = "MODELS")]
    pub consistency_models: Vec<String>,

    /// Print one JSON object per file per line instead of text
    #[arg(long)]
    pub json: bool,

    /// Write an HTML explanation (a timeline of each failing key, or the
    /// anomaly cycles) to this file; it opens with no server
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,

    /// History files to check
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Validated options shared by every file.
struct Plan {
    model: Option<String>,
    initial: Option<serde_json::Value>,
    format: Option<Format>,
    time_limit: Option<Duration>,
}

fn plan(args: &CheckArgs) -> anyhow::Result<Plan> {
    if let Some(m) = &args.model {
        if !LIN_MODELS.contains(&m.as_str()) && !TXN_MODELS.contains(&m.as_str()) {
            return Err(usage(format!(
                "unknown --model `{m}`; expected one of {}, {}",
                LIN_MODELS.join(", "),
                TXN_MODELS.join(", ")
            )));
        }
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
                "unknown --format `{}`; expected auto, jsonl, edn, porcupine-etcd or porcupine-kv",
                args.format
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
    })
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(&args)?;
    let mut worst = Verdict::Valid;
    let mut html_sections = Vec::new();
    for file in &args.files {
        let outcome = check_file(file, &args, &plan)?;
        worst = worst.worst(outcome.verdict);
        if args.json {
            println!("{}", outcome.json);
        } else {
            print!("{}", outcome.text);
        }
        html_sections.extend(outcome.html);
    }
    if let Some(out) = &args.html {
        let title = if args.files.len() == 1 {
            format!("faultline check {}", args.files[0].display())
        } else {
            format!("faultline check ({} files)", args.files.len())
        };
        let page = faultline_results::timeline::render_html(&title, &html_sections);
        std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
        if !args.json {
            println!("explanation written to {}", out.display());
        }
    }
    Ok(ExitCode::from(worst.exit_code()))
}

struct FileOutcome {
    verdict: Verdict,
    json: serde_json::Value,
    text: String,
    html: Vec<faultline_results::timeline::Timeline>,
}

fn read_history(file: &Path, plan: &Plan) -> anyhow::Result<(History, Format)> {
    let fmt = match plan.format {
        Some(f) => f,
        None => format::detect_file(file).map_err(|e| usage(e.to_string()))?,
    };
    let history = format::parse_file(file, Some(fmt)).map_err(|e| usage(e.to_string()))?;
    Ok((history, fmt))
}

fn check_file(file: &Path, args: &CheckArgs, plan: &Plan) -> anyhow::Result<FileOutcome> {
    let (history, fmt) = read_history(file, plan)?;
    let paired = history
        .pair()
        .map_err(|e| usage(format!("{}:{}: {}", file.display(), e.line, e.message)))?;
    let model = match &plan.model {
        Some(m) => m.clone(),
        None => infer_model(fmt, &paired.operations).to_string(),
    };
    if TXN_MODELS.contains(&model.as_str()) {
        check_txn(file, args, plan, &history, &model)
    } else {
        check_lin(file, args, plan, &history, &paired.operations, fmt, &model)
    }
}

/// Picks the model a history's operations imply, as a person would: Porcupine
/// etcd logs are a cas register, Porcupine kv files a kv store; otherwise the
/// operation names decide.
pub fn infer_model(fmt: Format, ops: &[Operation]) -> &'static str {
    match fmt {
        Format::PorcupineEtcd => return "cas-register",
        Format::PorcupineKv => return "kv",
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
        "mutex"
    } else if has("enqueue") || has("dequeue") {
        "unordered-queue"
    } else if has("add") {
        "set"
    } else if has("get") || has("put") || has("append") || ops.iter().any(|o| o.key.is_some()) {
        "kv"
    } else {
        "cas-register"
    }
}

#[allow(dead_code)]
const _: u8 = EXIT_USAGE;
