//! Generates a list-append or rw-register history from the simulated store
//! (`txn::sim`), as JSONL, and (with `--check`) times the transactional
//! checker on it in memory. Deterministic: the same arguments give the same
//! bytes.
//!
//! cargo run --release -p faultline-checker --example gen_txn -- \
//!     --txns 1000000 --keys 1000 --processes 20 --seed 1 --out /tmp/h.jsonl --check
//!
//! An invalid history whose dependency graph is one ~100,000-transaction
//! strongly connected component (reads from a lagging replica):
//!
//!     gen_txn --txns 100000 --isolation stale-reads --max-lag 2000 --out scc.jsonl

use faultline_checker::txn::sim::{Isolation, SimOptions, event_json, simulate};
use faultline_checker::txn::{self, TxnOptions, Workload};
use std::io::Write;
use std::time::Instant;

fn main() {
    let mut o = SimOptions::default();
    let mut out: Option<String> = None;
    let mut do_check = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = |i: usize| args.get(i + 1).cloned().unwrap_or_default();
        let num = |i: usize| val(i).parse::<usize>().unwrap_or_else(|_| usage(&args[i]));
        match args[i].as_str() {
            "--txns" => o.txns = num(i),
            "--keys" => o.keys = num(i),
            "--processes" => o.processes = num(i),
            "--seed" => o.seed = num(i) as u64,
            "--max-writes-per-key" => o.max_writes_per_key = num(i),
            "--isolation" => {
                o.isolation = match val(i).as_str() {
                    "serializable" => Isolation::Serializable,
                    "snapshot-isolation" => Isolation::SnapshotIsolation,
                    "read-committed" => Isolation::ReadCommitted,
                    "stale-reads" => Isolation::StaleReads,
                    _ => usage("--isolation"),
                }
            }
            "--max-lag" => o.max_lag = num(i),
            "--workload" => {
                o.workload = Workload::parse(&val(i)).unwrap_or_else(|| usage("--workload"))
            }
            "--out" => out = Some(val(i)),
            "--check" => {
                do_check = true;
                i += 1;
                continue;
            }
            other => usage(other),
        }
        i += 2;
    }
    let t = Instant::now();
    let h = simulate(&o);
    eprintln!(
        "generated {} events in {:.2}s",
        h.events.len(),
        t.elapsed().as_secs_f64()
    );
    if let Some(path) = out {
        let f = std::fs::File::create(&path).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(3)
        });
        let mut w = std::io::BufWriter::new(f);
        for e in &h.events {
            let _ = writeln!(w, "{}", event_json(e));
        }
        let _ = w.flush();
        eprintln!("wrote {path}");
    }
    if do_check {
        let t = Instant::now();
        let cpu0 = cpu_seconds();
        match txn::check(&h, &TxnOptions::new(o.workload)) {
            Ok(r) => {
                println!(
                    "check: wall {:.3}s cpu {:.3}s valid={} types={:?} stats={}",
                    t.elapsed().as_secs_f64(),
                    cpu_seconds() - cpu0,
                    r.verdict,
                    r.anomaly_types,
                    serde_json::to_string(&r.stats).unwrap_or_default()
                );
            }
            Err(e) => {
                eprintln!("check failed: {e}");
                std::process::exit(3)
            }
        }
    }
}

/// This process's user + system CPU time (Linux `/proc/self/stat`), so the
/// measurement is not skewed by other load on a shared machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the `)`; ticks of 1/100 s.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn usage(flag: &str) -> ! {
    eprintln!(
        "gen_txn: bad argument {flag}\nusage: gen_txn [--txns N] [--keys N] [--processes N] [--seed N] [--max-writes-per-key N] [--isolation serializable|snapshot-isolation|read-committed|stale-reads] [--max-lag N] [--workload list-append|rw-register] [--out FILE] [--check]"
    );
    std::process::exit(64)
}
