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
