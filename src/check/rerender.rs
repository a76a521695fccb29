//! `faultline check --report RUN_DIR`: re-check a stored run with the
//! current checker and rewrite its `results.json` and rendered files
//! (`report.html` with the failure viewer or cycle diagrams, the
//! timeline, the plots), for a run stored before a change to either.

use super::FileOutcome;
use faultline_checker::format::{self, Format};
use faultline_results::store::{self, RunDir};
use std::path::Path;

/// Rewrites `dir`'s `results.json` and report from `outcome` (the re-check
/// of its `history.jsonl`). What the runner added to the old
/// `results.json` and the checker does not produce (`run`, `steps`,
/// `lesson`, …) is kept, so the summary card still says what ran.
pub(super) fn rewrite(dir: &Path, outcome: &FileOutcome) -> anyhow::Result<()> {
    let run = RunDir::open(dir)?;
    let mut results = outcome.json.clone();
    if let (Ok(serde_json::Value::Object(old)), Some(new)) =
        (run.read_results(), results.as_object_mut())
    {
        for (k, v) in old {
            new.entry(k).or_insert(v);
        }
    }
    let history = format::parse_file(&run.file(store::HISTORY_JSONL), Some(Format::Jsonl))
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    run.write_results(&results)?;
    faultline_results::render_run(&run, &history, &results, &outcome.views)?;
    Ok(())
}
