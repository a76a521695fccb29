//! Re-renders a stored run's `report.html`, `timeline.html` and plots from
//! its `history.jsonl` and `results.json` (e.g. after a renderer changed).
//!
//! `cargo run -p faultline-results --example render_run_dir -- RUN_DIR`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: render_run_dir RUN_DIR")?,
    );
    let (history, _) =
        faultline_checker::format::parse_file_detected(&dir.join("history.jsonl"), None)?;
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json"))?)?;
    faultline_results::render_run(&dir, &history, &results, &Default::default())?;
    println!("{}", dir.join("report.html").display());
    Ok(())
}
