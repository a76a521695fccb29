//! Writes a synthetic history of one workload, with planted anomalies, as
//! JSON Lines (for the "workload checkers at scale" figures in
//! BENCHMARKS.md), or checks one in-process and prints the time.
//!
//! ```text
//! cargo run --release -p faultline-checker --example gen_workload -- \
//!     --model fenced --ops 10000000 --anomalies 3 [--seed 1] > h.jsonl
//! faultline check --model fenced h.jsonl
//! ```
//!
//! `--check` instead of writing: generate, pair and check in-process,
//! printing the verdict, anomaly counts and the check's time (`--time-limit
//! SECONDS` to bound it). Models: fenced, siblings, detector, or-set,
//! crdt-convergence, lww-register, bank, counter, queue, unique-ids,
//! election, lock. Each history is valid as generated plus `--anomalies`
//! planted faults (the checker may count more: one planted fault can break
//! several later checks); `tests/common/workloads.rs` says what each
//! plants.

#[path = "../tests/common/workloads.rs"]
mod workloads;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut model, mut ops, mut anomalies, mut seed) = (None, 1_000_000usize, 0usize, 1u64);
    let (mut check, mut limit) = (false, None);
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).map(String::as_str).unwrap_or("");
        let ok = match args[i].as_str() {
            "--model" => {
                model = Some(v.to_string());
                true
            }
            "--ops" => v.parse().map(|x| ops = x).is_ok(),
            "--anomalies" => v.parse().map(|x| anomalies = x).is_ok(),
            "--seed" => v.parse().map(|x| seed = x).is_ok(),
            "--time-limit" => v
                .parse::<f64>()
                .map(|x| limit = Some(Duration::from_secs_f64(x)))
                .is_ok(),
            "--check" => {
                check = true;
                i += 1;
                continue;
            }
            other => {
                eprintln!("gen_workload: unknown argument {other:?}");
                return ExitCode::from(64);
            }
        };
        if !ok {
            eprintln!("gen_workload: bad value {v:?} for {}", args[i]);
            return ExitCode::from(64);
        }
        i += 2;
    }
    let Some(model) = model else {
        eprintln!(
            "gen_workload: --model is required ({})",
            workloads::MODELS.join(", ")
        );
        return ExitCode::from(64);
    };
    let Some(mut h) = workloads::generate(&model, ops, anomalies, seed) else {
        eprintln!(
            "gen_workload: unknown model {model:?} ({})",
            workloads::MODELS.join(", ")
        );
        return ExitCode::from(64);
    };
    if check {
        let start = Instant::now();
        let deadline = faultline_checker::Deadline::after(limit);
        let paired = match h.take_pairs(&deadline) {
            Ok(Some(p)) => p,
            Ok(None) => {
                println!("{model}: unknown: the time limit ran out while pairing");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("gen_workload: {e}");
                return ExitCode::from(3);
            }
        };
        let paired_in = start.elapsed();
        let r = workloads::check(&model, &h, &paired, &deadline);
        println!(
            "{model}: {} events, {} in {:.3} s (pairing {:.3} s); anomaly_counts {}; reason {}",
            h.events.len(),
            r.verdict,
            start.elapsed().as_secs_f64(),
            paired_in.as_secs_f64(),
            r.json["anomaly_counts"],
            r.json["reason"]
        );
        return ExitCode::SUCCESS;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in &h.events {
        if writeln!(out, "{}", workloads::to_json_line(e)).is_err() {
            return ExitCode::SUCCESS; // a closed pipe: quietly done
        }
    }
    if out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    ExitCode::SUCCESS
}
