//! The runner's entry points: a recorded history checked as `faultline
//! check` would, with the data the run report's viewers draw.

use super::*;

/// Like [`analyze`] for the [`WORKLOAD_MODELS`], with the test's initial
/// state (the bank's balances), as `faultline check --model MODEL
/// --initial INITIAL` would check it.
pub(crate) fn analyze_workload(
    history: &History,
    model: &str,
    name: &str,
    initial: Option<&serde_json::Value>,
    time_limit: Option<Duration>,
) -> anyhow::Result<FileOutcome> {
    let paired = format::check_pairs(history, Some(name)).map_err(|e| usage(e.to_string()))?;
    if paired.operations.is_empty() {
        return Ok(nothing_to_check(Path::new(name), model));
    }
    let deadline = faultline_checker::Deadline::after(time_limit);
    check_workload(name, history, &paired, model, initial, &deadline, None)
}

/// Checks a recorded history against `model` (one of [`LIN_MODELS`],
/// [`TXN_MODELS`] or [`SESSION_MODELS`]) exactly as `faultline check --model MODEL --nil-reads
/// absent` would (faultline's own recorder writes an absent key as `null`),
/// with an optional search time limit. `name` labels the result (`file`).
/// Returns the verdict, the JSON result, the text summary and what the
/// report's failure viewer and cycle diagrams draw.
pub(crate) fn analyze(
    history: &History,
    model: &str,
    name: &str,
    time_limit: Option<Duration>,
) -> anyhow::Result<FileOutcome> {
    analyze_with(history, model, name, time_limit, None)
}

/// [`analyze`] with the detector's false-positive-rate bound
/// (`--max-false-positive-rate`).
pub(crate) fn analyze_with(
    history: &History,
    model: &str,
    name: &str,
    time_limit: Option<Duration>,
    max_false_positive_rate: Option<f64>,
) -> anyhow::Result<FileOutcome> {
    let args = CheckArgs {
        model: Some(model.to_string()),
        initial: None,
        format: "jsonl".into(),
        time_limit: time_limit.map(|t| t.as_secs_f64().to_string()),
        memory_limit: 1024,
        nil_reads: Some("absent".into()),
        no_split: false,
        consistency_models: Vec::new(),
        linearizable_keys: false,
        anomalies: Vec::new(),
        sequential_keys: false,
        no_wfr_keys: false,
        max_false_positive_rate,
        spectrum: false,
        json: true,
        html: None,
        report: false,
        files: Vec::new(),
    };
    let mut plan = plan(&args)?;
    // The run report draws the failure viewer and cycle diagrams.
    plan.views = true;
    let file = Path::new(name);
    let paired = format::check_pairs(history, Some(name)).map_err(|e| usage(e.to_string()))?;
    let outcome = if paired.operations.is_empty() {
        nothing_to_check(file, model)
    } else if WORKLOAD_MODELS.contains(&model) {
        check_workload(
            name,
            history,
            &paired,
            model,
            None,
            &faultline_checker::Deadline::after(time_limit),
            max_false_positive_rate,
        )?
    } else if TXN_MODELS.contains(&model) {
        check_txn(file, &args, &plan, history, model)?
    } else if SESSION_MODELS.contains(&model) {
        check_session(file, &args, history, model)?
    } else {
        check_lin(
            file,
            &args,
            &plan,
            history,
            &paired.operations,
            Some(Format::Jsonl),
            model,
        )?
    };
    Ok(outcome)
}
