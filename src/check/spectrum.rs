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
    one_shape(&mut json);
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
/// `not-<model>` with its explanation and witness; `stats` holds the time.
fn one_shape(json: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};
    let mut anomalies = Map::new();
    for row in json["spectrum"].as_array().into_iter().flatten() {
        if row["valid"] == Value::Bool(false) && row["implied_by"].is_null() {
            let model = row["model"].as_str().unwrap_or("?");
            anomalies.insert(
                format!("not-{model}"),
                json!([{"explanation": row["explanation"], "witness": row["witness"]}]),
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
