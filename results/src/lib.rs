//! faultline-results: what a person reads after a check or a run.
//!
//! - [`store`]: the on-disk store of runs (`store/<test>/<timestamp>/`), the
//!   flushed `history.jsonl` writer, `results.json`, and the run listing.
//! - [`matrix`]: `faultline matrix`'s `summary.json` and its printers,
//!   `junit.xml` and `summary.html`.
//! - [`plots`]: `latency-raw.png`, `latency-quantiles.png`, `rate.png`, with
//!   fault windows shaded (plotters, fonts compiled in).
//! - [`report`]: `report.html` — verdict, summary, plots, anomalies (with
//!   the failure viewer and cycle diagrams), nemesis schedule, counts and
//!   links; the `results.json` schema it reads.
//! - [`run_timeline`]: `timeline.html` — every operation of a run over time.
//! - [`steps`]: per-operation / per-saga-step outcomes per 10 s window
//!   (`results.json`'s `steps`) and the report's table of them.
//! - [`serve`]: `faultline serve`'s index of the store, path checks and
//!   zip archives (pure; the HTTP shell is in the binary).
//! - [`trace`], [`trace_svg`]: a run's message traces
//!   (`nodes/<node>/messages.jsonl`) read back, cut to a window, and drawn
//!   as a Lamport space-time diagram (`faultline trace`).
//! - [`timeline`]: the page `faultline check --html` writes: the verdict
//!   first, then [`lin_viewer`] (the linearizability failure viewer: each
//!   failing key's operations, minimal counterexample and a step control
//!   over the linearization) and [`cycle`] (each transactional anomaly's
//!   cycle diagram with its prose).
//!
//! - [`views`]: [`AnomalyViews`], what the failure viewer and cycle
//!   diagrams draw, built from the checker's typed result; `check --html`
//!   and the run report take the same value.
//!
//! [`render_run`] writes every rendered file of a run in one call. All
//! renderers only read `results.json`; none computes a verdict.

mod blocking;
pub mod cycle;
pub mod lin_viewer;
pub mod matrix;
mod ops;
pub mod plots;
pub mod report;
pub mod run_timeline;
pub mod serve;
pub mod steps;
pub mod store;
pub mod timeline;
pub mod trace;
pub mod trace_svg;
pub mod views;

pub use plots::{FaultWindow, PlotError};
pub use store::{HistoryWriter, RunDir, RunSummary, Store, StoreError};
pub use views::AnomalyViews;

use faultline_checker::History;
use std::path::Path;

/// What can go wrong while rendering a run.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

impl AsRef<Path> for RunDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// Writes `report.html`, `timeline.html`, `latency-raw.png`,
/// `latency-quantiles.png` and `rate.png` into a run directory, with fault
/// windows taken from the history's nemesis events.
///
/// `dir` is a [`RunDir`] or its path (`faultline check RUN_DIR`). The test
/// name shown is the parent directory's name; `test.json` and `nodes/` are
/// read when present. A plot that fails to draw is named in the report
/// and returned as an error after the HTML is written, so a report always
/// exists.
///
/// `views` are what the failure viewer and cycle diagrams draw, from the
/// checker's typed result (`faultline test` passes the check's); a run
/// re-rendered from its stored files alone passes
/// `&AnomalyViews::default()` and its anomalies show as prose.
pub fn render_run(
    dir: impl AsRef<Path>,
    history: &History,
    results: &serde_json::Value,
    views: &AnomalyViews,
) -> Result<(), RenderError> {
    render_run_with_windows(dir, history, results, views, &[])
}

/// [`render_run`] with extra fault windows from the caller (e.g. the runner's
/// own schedule) added to those found in the history.
pub fn render_run_with_windows(
    dir: impl AsRef<Path>,
    history: &History,
    results: &serde_json::Value,
    views: &AnomalyViews,
    extra_windows: &[FaultWindow],
) -> Result<(), RenderError> {
    let dir = dir.as_ref();
    let mut windows = plots::fault_windows(history);
    windows.extend_from_slice(extra_windows);
    windows.sort_by_key(|w| (w.start_ns, w.end_ns));
    windows.dedup();

    let data = plots::PlotData::new(history, windows.clone());
    let mut outcomes: Vec<(&str, Result<(), String>)> = Vec::new();
    let mut first_err: Option<PlotError> = None;
    for kind in plots::PlotKind::ALL {
        let r = plots::render_png(kind, &data, &dir.join(kind.file_name()));
        outcomes.push((
            kind.file_name(),
            r.as_ref().map_err(|e| e.to_string()).copied(),
        ));
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }

    let name = |p: Option<&Path>| {
        p.and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let run_time = name(Some(dir));
    let test_name = name(dir.parent());
    let test_json = std::fs::read_to_string(dir.join(store::TEST_JSON))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let mut nodes: Vec<String> = std::fs::read_dir(dir.join(store::NODES_DIR))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();

    let html = report::render_report(&report::ReportInput {
        test_name: &test_name,
        run_time: &run_time,
        history,
        results,
        views,
        windows: &windows,
        test_json: test_json.as_ref(),
        nodes: &nodes,
        plots: &outcomes,
    });
    store::write_atomic(&dir.join(store::REPORT_HTML), html.as_bytes())?;
    let tl = run_timeline::render_run_timeline(
        &format!("{test_name} — {run_time} — timeline"),
        history,
        &windows,
    );
    store::write_atomic(&dir.join(store::TIMELINE_HTML), tl.as_bytes())?;
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
