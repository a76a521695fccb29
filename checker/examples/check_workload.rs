//! Parses a JSON Lines history and runs one workload checker on it the way
//! `faultline check --model MODEL` does (deadline started before parsing,
//! pairing once by moving values, then the checker), printing the parse,
//! pairing and check times and `size_of` the history's structures: the
//! checker without the CLI around it, for BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p faultline-checker --example check_workload -- \
//!     MODEL h.jsonl [--time-limit SECONDS]
//! ```
//!
//! MODEL: see `gen_workload` (fenced, siblings, detector, or-set,
//! crdt-convergence, lww-register, bank, counter, queue, unique-ids,
//! election, lock).

#[path = "../tests/common/workloads.rs"]
mod workloads;

use faultline_checker::format::{self, Parsed};
use faultline_checker::{Deadline, Event, Operation};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().collect();
    let (Some(model), Some(path)) = (a.get(1), a.get(2)) else {
        eprintln!("usage: check_workload MODEL HISTORY.jsonl [--time-limit SECONDS]");
        return ExitCode::from(64);
    };
    if !workloads::MODELS.contains(&model.as_str()) {
        eprintln!(
            "check_workload: unknown model {model:?} ({})",
            workloads::MODELS.join(", ")
        );
        return ExitCode::from(64);
    }
    let limit = match (a.get(3).map(String::as_str), a.get(4)) {
        (None, _) => None,
        (Some("--time-limit"), Some(s)) => match s.parse::<f64>() {
            Ok(x) if x >= 0.0 => Some(Duration::from_secs_f64(x)),
            _ => {
                eprintln!("check_workload: bad --time-limit {s:?}");
                return ExitCode::from(64);
            }
        },
        (Some(other), _) => {
            eprintln!("check_workload: unknown argument {other:?}");
            return ExitCode::from(64);
        }
    };
    let t0 = Instant::now();
    let deadline = Deadline::after(limit);
    let mut h = match format::parse_file_within(path.as_ref(), None, &deadline) {
        Ok(Parsed::Done(h, _)) => h,
        Ok(Parsed::OutOfTime { lines }) => {
            println!("{model}: unknown: out of time parsing ({lines} lines read)");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("check_workload: {e}");
            return ExitCode::from(64);
        }
    };
    let t1 = Instant::now();
    let paired = match h.take_pairs(&deadline) {
        Ok(Some(p)) => p,
        Ok(None) => {
            println!("{model}: unknown: out of time pairing");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("check_workload: {path}: {e}");
            return ExitCode::from(64);
        }
    };
    let t2 = Instant::now();
    let r = workloads::check(model, &h, &paired, &deadline);
    let t3 = Instant::now();
    println!(
        "{model}: {} events ({} B each), {} ops ({} B each); parse {:.2} s, pair {:.2} s, \
         check {:.2} s; {}; anomaly_counts {}",
        h.events.len(),
        std::mem::size_of::<Event>(),
        paired.operations.len(),
        std::mem::size_of::<Operation>(),
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        r.verdict,
        r.json["anomaly_counts"]
    );
    ExitCode::from(r.verdict.exit_code())
}
