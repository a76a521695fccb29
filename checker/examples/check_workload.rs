//! Parses a JSON Lines history and runs one workload checker on it,
//! printing the parse and check times (for BENCHMARKS.md: the checker
//! without the CLI around it).
//!
//! `cargo run --release -p faultline-checker --example check_workload -- MODEL h.jsonl`
//!
//! MODEL: fenced, siblings, lww-register, or-set, crdt-convergence,
//! detector, bank, counter, queue, unique-ids, election, lock.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let (Some(model), Some(path)) = (a.get(1), a.get(2)) else {
        eprintln!("usage: check_workload MODEL HISTORY.jsonl");
        return ExitCode::from(64);
    };
    let t0 = Instant::now();
    let file = match std::fs::File::open(path) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => {
            eprintln!("check_workload: {path}: {e}");
            return ExitCode::from(64);
        }
    };
    let h = match faultline_checker::format::jsonl::parse(file) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("check_workload: {path}: {e}");
            return ExitCode::from(64);
        }
    };
    let t1 = Instant::now();
    use faultline_checker::*;
    let r = match model.as_str() {
        "fenced" => fenced::check(&h),
        "siblings" => siblings::check(&h),
        "lww-register" => lww::check(&h),
        "or-set" => crdt::check_or_set(&h),
        "crdt-convergence" => crdt::check_convergence(&h, None),
        "detector" => detector::check(&h, &Default::default()),
        "bank" => bank::check(&h, &Default::default()),
        "counter" => counter::check(&h, 0),
        "queue" => queue::check(&h, &Default::default()),
        "unique-ids" => unique_ids::check(&h),
        "election" => election::check(&h),
        "lock" => lock::check(&h, &Default::default()),
        m => {
            eprintln!("check_workload: unknown model {m:?}");
            return ExitCode::from(64);
        }
    };
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            eprintln!("check_workload: {path}: {e}");
            return ExitCode::from(64);
        }
    };
    let t2 = Instant::now();
    println!(
        "{model}: {} events; parse {:.2} s, check {:.2} s; {}; anomaly_counts {}",
        h.events.len(),
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        r.verdict,
        r.json["anomaly_counts"]
    );
    ExitCode::from(r.verdict.exit_code())
}
