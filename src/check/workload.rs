//! `faultline check` for the workload models (bank, counter, queue,
//! unique-ids, lock, the replicated-object and membership checks): one
//! dispatch to each checker with its options.

use super::*;

/// The initial balances a `faultline test` run of the bank workload set up,
/// from its `test.json` (`workload_options`); `None` for runs that did not
/// record them.
pub(super) fn bank_initial_of_run(test_json: &serde_json::Value) -> Option<serde_json::Value> {
    let opts: faultline_workloads::WorkloadOptions =
        serde_json::from_value(test_json.get("workload_options")?.clone()).ok()?;
    Some(serde_json::json!(opts.initial_balances()))
}

/// Pairs `history` and checks it against `model` (one of the
/// [`WORKLOAD_MODELS`]), all within `deadline` (started before parsing, so
/// `--time-limit` bounds the whole check). Pairing moves the client
/// events' values into the operations (a workload check needs them only
/// once): `history` keeps its events' positions, times, nodes and lines.
/// Past the deadline while pairing the answer is `unknown`, saying so.
pub(super) fn pair_and_check_workload(
    name: &str,
    history: &mut History,
    model: &str,
    initial: Option<&serde_json::Value>,
    deadline: &faultline_checker::Deadline,
    max_false_positive_rate: Option<f64>,
) -> anyhow::Result<FileOutcome> {
    let Some(paired) = history
        .take_pairs(deadline)
        .map_err(|e| usage(format::InputError::from(e).in_file(name).to_string()))?
    else {
        let why = format!(
            "{} ({} events paired)",
            deadline.reason("pairing the history's events"),
            deadline.ticks()
        );
        return Ok(out_of_time(name, model, why));
    };
    if paired.operations.is_empty() {
        return Ok(nothing_to_check(Path::new(name), model));
    }
    check_workload(
        name,
        history,
        &paired,
        model,
        initial,
        deadline,
        max_false_positive_rate,
    )
}

/// One of the [`WORKLOAD_MODELS`] checks of one history, paired once by
/// the caller. `initial`: the bank's total or balances, the counter's
/// initial value. `deadline` binds every checker: past it the answer is
/// `unknown` with what was checked, or `invalid` if an anomaly was
/// already found.
pub(super) fn check_workload(
    name: &str,
    history: &History,
    paired: &faultline_checker::history::Paired,
    model: &str,
    initial: Option<&serde_json::Value>,
    deadline: &faultline_checker::Deadline,
    max_false_positive_rate: Option<f64>,
) -> anyhow::Result<FileOutcome> {
    use faultline_checker::{bank, counter, lock, queue, unique_ids};
    let bad = |e: faultline_checker::history::HistoryError| {
        usage(format::InputError::from(e).in_file(name).to_string())
    };
    let (history, dl) = (history, deadline);
    let r = match model {
        "bank" => {
            let opts = match initial {
                Some(v) => bank::BankOptions::from_initial(v)
                    .map_err(|e| usage(format!("--initial: {e}")))?,
                None => bank::BankOptions::default(),
            };
            bank::check_paired(history, paired, &opts, dl).map_err(bad)?
        }
        "counter" => {
            let init =
                counter::initial_from(initial).map_err(|e| usage(format!("--initial: {e}")))?;
            counter::check_paired(history, paired, init, dl).map_err(bad)?
        }
        "queue" => queue::check_paired(history, paired, &queue::QueueOptions::default(), dl)
            .map_err(bad)?,
        "unique-ids" => unique_ids::check_paired(history, paired, dl).map_err(bad)?,
        "crdt-convergence" => {
            faultline_checker::crdt::convergence_paired(history, paired, None, dl).map_err(bad)?
        }
        "or-set" => faultline_checker::crdt::or_set_paired(history, paired, dl).map_err(bad)?,
        "lww-register" => faultline_checker::lww::check_paired(history, paired, dl).map_err(bad)?,
        "saga" => faultline_checker::saga::check_paired(history, paired, dl).map_err(bad)?,
        "fenced" => faultline_checker::fenced::check_paired(history, paired, dl),
        "siblings" => {
            faultline_checker::siblings::check_paired(history, paired, dl).map_err(bad)?
        }
        "election" => {
            faultline_checker::election::check_paired(history, paired, dl).map_err(bad)?
        }
        "detector" => faultline_checker::detector::check_paired(
            history,
            paired,
            &faultline_checker::detector::DetectorOptions {
                max_false_positive_rate,
                ..Default::default()
            },
            dl,
        ),
        "lock" => {
            let opts = lock::LockOptions {
                time_limit: dl.remaining(),
                ..lock::LockOptions::default()
            };
            lock::check_paired(history, paired, &opts, dl).map_err(bad)?
        }
        other => return Err(usage(format!("unknown workload model `{other}`"))),
    };
    Ok(outcome(name, model, r))
}

/// A workload checker's result as one file's outcome.
/// `unknown`: the time limit ran out before any checker ran (`why` says
/// while doing what, and how far it got).
pub(super) fn out_of_time(name: &str, model: &str, why: String) -> FileOutcome {
    let r = faultline_checker::WorkloadResult {
        verdict: Verdict::Unknown,
        json: serde_json::json!({"valid": Verdict::Unknown.to_json(), "model": model,
            "anomaly_types": [], "anomalies": {}, "anomaly_counts": {},
            "stats": {}, "reason": why, "stopped": why}),
        text: format!("unknown ({model}): {why}\n"),
    };
    outcome(name, model, r)
}

fn outcome(name: &str, model: &str, r: faultline_checker::WorkloadResult) -> FileOutcome {
    let mut json = r.json;
    // The workload name, as `--model` takes it; the checker's longer
    // description stays under `checker`.
    if let Some(o) = json.as_object_mut()
        && let Some(desc) = o.remove("model")
    {
        o.insert("checker".into(), desc);
    }
    annotate(&mut json, name, Some(model), None);
    FileOutcome {
        verdict: r.verdict,
        json,
        text: format!("{name}: {}", r.text),
        views: faultline_results::AnomalyViews::default(),
    }
}
