//! `faultline check` for transactional histories (list-append,
//! rw-register): the JSON Lines fast path, the time budget, and the
//! Elle-style analysis with its text and HTML explanations.

use super::*;

/// Transactional JSON Lines histories (list-append, rw-register) go straight
/// into the transactional checker's compact form, without a `History`
/// (`format::txn_fast`); `None` when the file or model is anything else,
/// or the fast path cannot represent it exactly: the generic path decides.
pub(super) fn check_txn_fast(
    file: &Path,
    args: &CheckArgs,
    plan: &Plan,
    model: Option<&str>,
) -> anyhow::Result<Option<FileOutcome>> {
    use faultline_checker::txn::{self, Workload};
    let workload = match model {
        None => None,
        Some("list-append") => Some(Workload::ListAppend),
        Some("rw-register") => Some(Workload::RwRegister),
        Some(_) => return Ok(None),
    };
    if !matches!(plan.format, None | Some(Format::Jsonl)) {
        return Ok(None);
    }
    let stream = plan.streams.get(file);
    let detected = || match stream {
        Some(data) => format::detect_bytes(data),
        None => format::detect_path(file),
    };
    if plan.format.is_none() && detected() != Some(Format::Jsonl) {
        return Ok(None);
    }
    let t0 = std::time::Instant::now();
    if let Some(data) = stream {
        // Read already (stdin, a pipe): prepared from memory.
        let text = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        let Some((p, w)) = format::txn_fast::prepare(text, workload) else {
            return Ok(None);
        };
        let prepare_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let model = match w {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        };
        return check_txn_with(file, args, plan, t0, model, |opts| {
            txn::check_prepared(&p, opts, prepare_ms)
        })
        .map(Some);
    }
    let deadline = txn_deadline(t0, plan);
    let (p, w) = match format::txn_fast::prepare_file_by(file, workload, deadline) {
        format::txn_fast::FileOutcome::Prepared(p, w) => (p, w),
        format::txn_fast::FileOutcome::Declined => return Ok(None),
        format::txn_fast::FileOutcome::TimedOut => {
            let model = match workload {
                Some(Workload::RwRegister) => "rw-register",
                _ => "list-append",
            };
            return check_txn_with(file, args, plan, t0, model, |opts| {
                txn::unfinished(opts, "reading the history")
            })
            .map(Some);
        }
    };
    let prepare_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let model = match w {
        Workload::ListAppend => "list-append",
        Workload::RwRegister => "rw-register",
    };
    check_txn_with(file, args, plan, t0, model, |opts| {
        txn::check_prepared(&p, opts, prepare_ms)
    })
    .map(Some)
}

/// When the transactional checker must stop so that the whole command for
/// one file (reading, checking, explaining, printing) ends within
/// `--time-limit` of `start`: a tenth of the limit (at most a second) is
/// kept back for turning the result into JSON or text and printing it,
/// which the explanation caps keep small, and for steps that run late on
/// a loaded machine.
pub(super) fn txn_deadline(start: std::time::Instant, plan: &Plan) -> Option<std::time::Instant> {
    plan.time_limit
        .map(|t| start + t - (t / 10).min(Duration::from_secs(1)))
}

/// Explanations shown per anomaly type, and steps per cycle, in text
/// output (`--json` has up to [`faultline_checker::txn::MAX_EXPLANATIONS`]
/// of each type, every cycle whole).
const TEXT_EXPLANATIONS: usize = 10;
const TEXT_CYCLE_STEPS: usize = 50;
/// Anomalies of each type drawn by `--html`.
const HTML_EXPLANATIONS: usize = 5;

/// Transactional anomalies (Elle-style) of one file.
pub(super) fn check_txn(
    file: &Path,
    args: &CheckArgs,
    plan: &Plan,
    history: &History,
    model: &str,
) -> anyhow::Result<FileOutcome> {
    check_txn_with(file, args, plan, std::time::Instant::now(), model, |opts| {
        faultline_checker::txn::check(history, opts)
    })
}

pub(super) fn check_txn_with(
    file: &Path,
    args: &CheckArgs,
    plan: &Plan,
    start: std::time::Instant,
    model: &str,
    run: impl FnOnce(
        &faultline_checker::txn::TxnOptions,
    ) -> Result<faultline_checker::txn::TxnResult, faultline_checker::txn::TxnError>,
) -> anyhow::Result<FileOutcome> {
    use faultline_checker::txn::{self, TxnOptions, Workload};
    let workload = if model == "list-append" {
        Workload::ListAppend
    } else {
        Workload::RwRegister
    };
    let mut opts = TxnOptions::new(workload);
    if !args.consistency_models.is_empty() {
        opts.consistency_models = args.consistency_models.clone();
    } else if !args.anomalies.is_empty() {
        // `--anomalies` alone: check for exactly these (Elle's
        // `{:consistency-models nil, :anomalies [...]}`).
        opts.consistency_models.clear();
    }
    for a in &args.anomalies {
        txn::Anomaly::parse(a).map_err(|e| {
            let known: Vec<&str> = txn::Anomaly::ALL
                .iter()
                .filter(|a| !a.is_unknown())
                .map(|a| a.name())
                .collect();
            usage(format!("--anomalies: {e}; known: {}", known.join(", ")))
        })?;
    }
    opts.anomalies = args.anomalies.clone();
    opts.sequential_keys = args.sequential_keys;
    opts.wfr_keys = !args.no_wfr_keys;
    if plan.time_limit.is_some() {
        opts.time_limit = plan.time_limit;
        opts.deadline = txn_deadline(start, plan);
    }
    opts.linearizable_keys = args.linearizable_keys;
    let name = file.display().to_string();
    let result = run(&opts).map_err(|e| usage(format!("{name}:{e}")))?;
    let mut json = serde_json::to_value(&result)?;
    annotate(
        &mut json,
        &name,
        Some(model),
        Some(&opts.consistency_models),
    );
    if !opts.anomalies.is_empty() {
        json["checked_anomalies"] = serde_json::Value::from(opts.anomalies.clone());
    }
    let mut wanted = opts.consistency_models.clone();
    if !opts.anomalies.is_empty() {
        wanted.push(format!("anomalies {}", opts.anomalies.join(", ")));
    }
    let mut text = format!(
        "{name}: {} ({model} for {}, {} txns)\n",
        result.verdict,
        wanted.join(", "),
        result.stats.txns
    );
    if !result.anomaly_types.is_empty() {
        text.push_str(&format!(
            "  anomalies: {}\n",
            result.anomaly_types.join(", ")
        ));
    }
    // The prose repeats the verdict line; the header above already said it.
    let prose = txn::explain::render_result_capped(&result, TEXT_EXPLANATIONS, TEXT_CYCLE_STEPS);
    for line in prose.lines().filter(|l| !l.starts_with("valid:")) {
        text.push_str(&format!("  {line}\n"));
    }
    let mut views = faultline_results::AnomalyViews::default();
    if plan.views {
        // Cycles first (they have diagrams), then the rest; a few of each
        // type, as the text output caps them.
        for (kind, list) in &result.anomalies {
            for e in list.iter().take(HTML_EXPLANATIONS) {
                views.txn.push((kind.clone(), e.clone()));
            }
        }
        views
            .txn
            .sort_by_key(|(_, e)| !matches!(e, txn::explain::Explanation::Cycle { .. }));
        views.txn_total = result
            .anomaly_counts
            .values()
            .sum::<usize>()
            .max(views.txn.len());
        views.cause = views
            .txn
            .first()
            .map(|(k, e)| faultline_results::cycle::cause_sentence(k, e));
    }
    Ok(FileOutcome {
        verdict: result.verdict,
        json,
        text,
        views,
    })
}
