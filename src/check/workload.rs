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

/// One of the [`WORKLOAD_MODELS`] checks of one history. `initial`: the
/// bank's total or balances, the counter's initial value. `time_limit`
/// binds every checker (pairing included): past it the answer is `unknown`
/// with what was checked, or `invalid` if an anomaly was already found.
pub(super) fn check_workload(
    name: &str,
    history: &History,
    model: &str,
    initial: Option<&serde_json::Value>,
    time_limit: Option<Duration>,
    max_false_positive_rate: Option<f64>,
) -> anyhow::Result<FileOutcome> {
    use faultline_checker::{Deadline, bank, counter, lock, queue, unique_ids};
    let bad = |e: faultline_checker::history::HistoryError| {
        usage(format::InputError::from(e).in_file(name).to_string())
    };
    let deadline = Deadline::after(time_limit);
    // Paired once here, for whichever checker runs.
    let paired = history.pair().map_err(bad)?;
    let (history, paired, dl) = (history, &paired, &deadline);
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
                time_limit,
                ..lock::LockOptions::default()
            };
            lock::check_paired(history, paired, &opts, dl).map_err(bad)?
        }
        other => return Err(usage(format!("unknown workload model `{other}`"))),
    };
    let mut json = r.json;
    // The workload name, as `--model` takes it; the checker's longer
    // description stays under `checker`.
    if let Some(o) = json.as_object_mut()
        && let Some(desc) = o.remove("model")
    {
        o.insert("checker".into(), desc);
    }
    annotate(&mut json, name, Some(model), None);
    Ok(FileOutcome {
        verdict: r.verdict,
        json,
        text: format!("{name}: {}", r.text),
        html: HtmlParts::default(),
    })
}
