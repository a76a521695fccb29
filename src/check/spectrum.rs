//! `faultline check --spectrum`: the history's place on the consistency
//! spectrum (`faultline_checker::spectrum`), as text or one JSON line.

use super::{FileOutcome, annotate};
use crate::usage;
use faultline_checker::History;
use faultline_checker::linear::Options;
use faultline_checker::model::ModelSpec;
use std::path::Path;

pub(super) fn check_spectrum(
    file: &Path,
    history: &History,
    spec: &ModelSpec,
    opts: &Options,
) -> anyhow::Result<FileOutcome> {
    let name = file.display().to_string();
    let r = faultline_checker::spectrum::check(history, spec, opts)
        .map_err(|e| usage(format!("{name}:{e}")))?;
    let mut json = serde_json::to_value(&r)?;
    annotate(&mut json, &name, None, None);
    one_shape(&mut json, history);
    let text = format!(
        "{name}: strongest model that holds: {} ({}; {:.1} ms)\n{}",
        r.strongest.as_deref().unwrap_or("none of them"),
        r.model,
        r.elapsed_ms,
        r.prose()
    );
    Ok(FileOutcome {
        verdict: r.verdict,
        json,
        text,
        views: faultline_results::AnomalyViews::default(),
    })
}

/// The one result shape (docs/results.md) beside the rungs: each model
/// found violated (not merely implied so) is an anomaly type
/// `not-<model>` with its explanation and its witness as `ops` named by
/// file line (the rungs' `witness` holds op ids); `stats` holds the time.
fn one_shape(json: &mut serde_json::Value, history: &History) {
    use serde_json::{Map, Value, json};
    let paired = history.pair().ok();
    let line = |i: usize| history.events.get(i).map(|e| e.line);
    let op_ref = |id: &Value| {
        let op = paired
            .as_ref()?
            .operations
            .get(usize::try_from(id.as_u64()?).ok()?)?;
        Some(json!({
            "line": line(op.invoke)?,
            "returned_line": op.complete.and_then(line),
            "f": op.f.to_string(),
        }))
    };
    let mut anomalies = Map::new();
    for row in json["spectrum"].as_array().into_iter().flatten() {
        if row["valid"] == Value::Bool(false) && row["implied_by"].is_null() {
            let model = row["model"].as_str().unwrap_or("?");
            anomalies.insert(
                format!("not-{model}"),
                json!([{
                    "explanation": row["explanation"],
                    "ops": row["witness"].as_array().into_iter().flatten()
                        .filter_map(&op_ref).collect::<Vec<_>>(),
                }]),
            );
        }
    }
    let types: Vec<String> = anomalies.keys().cloned().collect();
    let elapsed = json["elapsed_ms"].clone();
    if let Some(o) = json.as_object_mut() {
        o.insert("anomaly_types".into(), json!(types));
        o.insert("anomalies".into(), Value::Object(anomalies));
        o.insert("stats".into(), json!({ "elapsed_ms": elapsed }));
    }
}
