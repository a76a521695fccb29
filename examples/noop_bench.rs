//! Harness overhead: the runner against the in-process noop target, with no
//! rate limit, writing a JSONL history to a temp file. Prints recorded
//! operations per second and the controller's CPU use.
//!
//! ```sh
//! cargo run --release --example noop_bench -- [SECONDS] [CONCURRENCY] [multi|current] [RATE]
//! ```
//! Defaults: 10 s, concurrency 10, multi-thread runtime with 2 workers, no
//! rate limit (RATE is total ops/s, to measure CPU at a fixed load).

use faultline::runner::{JsonlSink, RunConfig, RunControl, run_test};
use faultline_targets::noop::NoopTarget;
use faultline_workloads::{Workload, WorkloadOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().map_or(Ok(10.0), |s| s.parse())?;
    let concurrency: usize = args.get(1).map_or(Ok(10), |s| s.parse())?;
    let flavor = args.get(2).map_or("multi", String::as_str);
    // No RATE: 1e9 ops/s, i.e. unpaced (the runner's default would pace
    // the workload at its own rate).
    let rate: f64 = args.get(3).map_or(Ok(1e9), |s| s.parse())?;
    let rt = match flavor {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        other => return Err(format!("runtime must be multi or current, not {other}").into()),
    };

    let path = std::env::temp_dir().join(format!("faultline-bench-{}.jsonl", std::process::id()));
    let mut cfg = RunConfig::new(
        WorkloadOptions::new(Workload::Register),
        vec!["n1".into(), "n2".into(), "n3".into()],
    );
    cfg.concurrency = concurrency;
    cfg.time_limit = Duration::from_secs_f64(secs);
    cfg.recovery = Duration::ZERO;
    cfg.rate = Some(rate);

    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    let out = rt.block_on(async {
        let sink = JsonlSink::create(&path)?;
        run_test(
            cfg,
            Arc::new(NoopTarget::new()),
            sink,
            RunControl::default(),
        )
        .await
        .map_err(Box::<dyn std::error::Error>::from)
    })?;
    let wall = wall0.elapsed();
    let cpu = cpu_time() - cpu0;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&path);

    let ops = out.ok + out.fail + out.info;
    let main = out.main_phase.as_secs_f64();
    println!(
        "runtime={flavor} concurrency={concurrency} rate={rate:?} ops={ops} events={} history={:.1} MB",
        out.events,
        bytes as f64 / 1e6
    );
    println!(
        "ops/s={:.0} cpu={:.2}s wall={:.2}s cores={:.2} cpu/op={:.1}us",
        ops as f64 / main,
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / ops.max(1) as f64
    );
    Ok(())
}
