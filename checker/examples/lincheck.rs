//! Checks history files for linearizability and prints the verdict and
//! timings; a stand-in for `faultline check` when benchmarking.
//!
//! `cargo run --release -p faultline-checker --example lincheck -- \
//!     FILE... [--model NAME] [--initial JSON] [--nil-absent] [--no-split] \
//!     [--time-limit SECS] [--memory-mib N] [--threads N] [--exhaustive] [--json]
//!     [--repeat N]`
//!
//! Without `--model`, Porcupine etcd logs use the etcd cas-register and
//! Porcupine kv files the kv model; other files need `--model`.

use faultline_checker::format::{self, Format};
use faultline_checker::linear::{Options, check};
use faultline_checker::model::{ModelKind, ModelSpec};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lincheck: {e}");
            ExitCode::from(64)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut files = Vec::new();
    let mut model: Option<ModelKind> = None;
    let mut initial = None;
    let mut nil_absent = false;
    let mut opts = Options::default();
    let mut json = false;
    let mut repeat = 1usize;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let v = || args.get(i + 1).cloned().ok_or(format!("{a} needs a value"));
        match a {
            "--model" => {
                let s = v()?;
                model = Some(ModelKind::parse(&s).ok_or(format!("unknown model {s}"))?);
                i += 1;
            }
            "--initial" => {
                initial = Some(serde_json::from_str(&v()?).map_err(|e| e.to_string())?);
                i += 1;
            }
            "--time-limit" => {
                let s: f64 = v()?.parse().map_err(|_| "bad --time-limit")?;
                opts.time_limit = Some(Duration::from_secs_f64(s));
                i += 1;
            }
            "--memory-mib" => {
                let m: usize = v()?.parse().map_err(|_| "bad --memory-mib")?;
                opts.memory_limit_bytes = m << 20;
                i += 1;
            }
            "--threads" => {
                opts.threads = v()?.parse().map_err(|_| "bad --threads")?;
                i += 1;
            }
            "--repeat" => {
                repeat = v()?.parse().map_err(|_| "bad --repeat")?;
                i += 1;
            }
            "--nil-absent" => nil_absent = true,
            "--no-split" => opts.split_by_key = false,
            "--exhaustive" => opts.exhaustive = true,
            "--json" => json = true,
            f => files.push(f.to_string()),
        }
        i += 1;
    }
    let mut histories = Vec::new();
    let t0 = Instant::now();
    for f in &files {
        let (h, fmt) =
            format::parse_file_detected(Path::new(f), None).map_err(|e| e.to_string())?;
        let ops = h.pair().map_err(|e| format!("{f}: {e}"))?.operations;
        let mut spec = match (model, fmt) {
            (Some(k), _) => ModelSpec::new(k),
            (None, Some(Format::PorcupineKv)) => ModelSpec::porcupine_kv(),
            (None, _) => ModelSpec::porcupine_etcd(),
        };
        if initial.is_some() {
            spec.initial = initial.clone();
        }
        spec.nil_read_is_absent |= nil_absent;
        histories.push((f, h, ops, spec));
    }
    let parse = t0.elapsed();
    let mut worst = faultline_checker::Verdict::Valid;
    let mut runs = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let mut max_one = Duration::ZERO;
        for (f, h, ops, spec) in &histories {
            let t1 = Instant::now();
            let r = check(ops, Some(h), spec, &opts).map_err(|e| format!("{f}: {e}"))?;
            max_one = max_one.max(t1.elapsed());
            worst = worst.worst(r.verdict);
            if json {
                println!("{}", r.to_json(ops, h));
            } else if runs.is_empty() {
                let reasons: Vec<String> = r
                    .keys
                    .values()
                    .filter_map(|k| k.reason.clone())
                    .take(1)
                    .collect();
                println!(
                    "{f}\t{}\t{} ops\t{} keys\t{} states\t{:.2} ms {}",
                    r.verdict,
                    r.stats.ops,
                    r.stats.keys,
                    r.stats.states_explored,
                    t1.elapsed().as_secs_f64() * 1e3,
                    reasons.join("")
                );
            }
        }
        runs.push((t.elapsed(), max_one));
    }
    let mut totals: Vec<f64> = runs.iter().map(|r| r.0.as_secs_f64() * 1e3).collect();
    let mut maxes: Vec<f64> = runs.iter().map(|r| r.1.as_secs_f64() * 1e3).collect();
    totals.sort_by(f64::total_cmp);
    maxes.sort_by(f64::total_cmp);
    eprintln!(
        "files {} parse {:.1} ms; check total median {:.2} ms (min {:.2}), slowest file median {:.2} ms over {} runs",
        histories.len(),
        parse.as_secs_f64() * 1e3,
        totals[totals.len() / 2],
        totals[0],
        maxes[maxes.len() / 2],
        runs.len()
    );
    Ok(ExitCode::from(worst.exit_code()))
}
