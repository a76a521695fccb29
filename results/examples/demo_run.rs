//! Renders a synthetic run into a store and prints how long each part took.
//!
//! `cargo run --release -p faultline-results --example demo_run -- STORE_DIR [EVENTS]`
//! (100,000 events by default). Open `STORE_DIR/demo/latest/report.html`.

#[path = "../tests/common/mod.rs"]
mod common;

use faultline_results::{Store, plots, report, run_timeline, store};
use serde_json::json;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| "store".into());
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);

    let t = Instant::now();
    let h = common::synthetic(n);
    println!(
        "synthetic history: {} events in {:?}",
        h.events.len(),
        t.elapsed()
    );

    let run = Store::new(&root).create_run("demo", &json!({"seed": 7, "events": n}))?;
    let t = Instant::now();
    let mut w = run.history_writer()?;
    for e in &h.events {
        w.write(e)?;
    }
    w.close()?;
    println!("history.jsonl: {:?}", t.elapsed());
    let results = json!({"valid": false, "anomaly_types": ["G1c"],
        "anomalies": {"G1c": [{"explanations": [{"prose": [
            "T1 < T2 because T2 read T1's append of 3 to key 5",
            "T2 < T1 because T1 read T2's append of 4 to key 6"]}]}]},
        "not": ["read-committed"], "also_not": ["serializable"]});
    run.write_results(&results)?;

    let t = Instant::now();
    let data = plots::PlotData::new(&h, plots::fault_windows(&h));
    println!("plot data ({} ops): {:?}", data.len(), t.elapsed());
    for kind in plots::PlotKind::ALL {
        let t = Instant::now();
        plots::render_png(kind, &data, &run.file(kind.file_name()))?;
        println!("{}: {:?}", kind.file_name(), t.elapsed());
    }
    let t = Instant::now();
    let windows = plots::fault_windows(&h);
    let tl = run_timeline::render_run_timeline("demo timeline", &h, &windows);
    println!("timeline.html ({} bytes): {:?}", tl.len(), t.elapsed());
    let t = Instant::now();
    faultline_results::render_run(&run, &h, &results, &Default::default())?;
    println!("render_run (all of it): {:?}", t.elapsed());
    let _ = report::render_report; // the report is part of render_run
    println!("wrote {}", run.file(store::REPORT_HTML).display());
    Ok(())
}
