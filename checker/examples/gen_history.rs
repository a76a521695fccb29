//! Writes a synthetic linearizable cas-register history as JSON Lines.
//!
//! `cargo run --release -p faultline-checker --example gen_history -- \
//!     OUT.jsonl [--ops N] [--keys K] [--concurrency C] [--info RATE] [--seed S]`
//!
//! Check it with model `cas-register`, nil read = absent, split by key.

use faultline_checker::linear::generator::{GenConfig, generate, to_jsonl};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = GenConfig {
        ops: 1_000_000,
        keys: 1000,
        concurrency: 15,
        info_rate: 0.05,
        seed: 1,
    };
    let mut out = None;
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).map(String::as_str).unwrap_or("");
        let ok = match args[i].as_str() {
            "--ops" => v.parse().map(|x| cfg.ops = x).is_ok(),
            "--keys" => v.parse().map(|x| cfg.keys = x).is_ok(),
            "--concurrency" => v.parse().map(|x| cfg.concurrency = x).is_ok(),
            "--info" => v.parse().map(|x| cfg.info_rate = x).is_ok(),
            "--seed" => v.parse().map(|x| cfg.seed = x).is_ok(),
            p => {
                out = Some(p.to_string());
                i += 1;
                continue;
            }
        };
        if !ok {
            eprintln!("gen_history: bad value {v:?} for {}", args[i]);
            return ExitCode::from(64);
        }
        i += 2;
    }
    let Some(out) = out else {
        eprintln!(
            "usage: gen_history OUT.jsonl [--ops N] [--keys K] [--concurrency C] [--info RATE] [--seed S]"
        );
        return ExitCode::from(64);
    };
    let h = generate(&cfg);
    if let Err(e) = std::fs::write(&out, to_jsonl(&h)) {
        eprintln!("gen_history: {out}: {e}");
        return ExitCode::from(3);
    }
    eprintln!("wrote {} events to {out}", h.events.len());
    ExitCode::SUCCESS
}
