//! `faultline ring`: consistent hashing analysed against theory (the ring
//! and the formulas live in `faultline_node::ring`).

use crate::usage;
use clap::Args;
use faultline_node::ring::{self, AnalysisOptions, Stat};
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_long_help = "\
Each trial builds a ring of N nodes (ids 1..N, V tokens each, a fresh token
seed), assigns K keys, then adds node N+1 and, separately, removes one node,
counting keys whose owner changed. Figures are means over the trials, with
min..max and what theory expects: moves 1/(N+1) and 1/N; load spread from a
node's share being Beta(V, (N-1)V); max/mean from the largest of N loads.
With --bounded-load C no node holds more than ceil(C*K/N) keys (Mirrokni,
Thorup, Zadimoghaddam 2018).

Examples:
  faultline ring --nodes 10 --vnodes 256 --keys 1000000
  faultline ring --nodes 10 --vnodes 1 --keys 1000000 --bounded-load 1.25
  faultline ring --nodes 20 --vnodes 100 --json")]
pub struct RingArgs {
    /// Nodes on the ring (at least 2)
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub nodes: usize,

    /// Virtual nodes (tokens) per node
    #[arg(long, default_value_t = 100, value_name = "V")]
    pub vnodes: u32,

    /// Keys to place
    #[arg(long, default_value_t = 1_000_000, value_name = "K")]
    pub keys: usize,

    /// Rings to average over (each with its own token seed)
    #[arg(long, default_value_t = 10, value_name = "T")]
    pub trials: usize,

    /// Cap each node at ceil(C * K / N) keys (C >= 1); overflow goes
    /// clockwise to the next node with room
    #[arg(long, value_name = "C")]
    pub bounded_load: Option<f64>,

    /// Seed of the key hashes and token seeds
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RingArgs) -> anyhow::Result<ExitCode> {
    if a.nodes < 2 {
        return Err(usage("--nodes must be at least 2 (one is removed)"));
    }
    if a.vnodes == 0 || a.keys == 0 || a.trials == 0 {
        return Err(usage("--vnodes, --keys and --trials must be at least 1"));
    }
    // Bounds that keep one run within seconds and a few hundred MB.
    if a.keys > 50_000_000 {
        return Err(usage("--keys is limited to 50000000"));
    }
    if (a.nodes as u64 + 1) * u64::from(a.vnodes) > 10_000_000 {
        return Err(usage(
            "(--nodes + 1) * --vnodes is limited to 10000000 tokens",
        ));
    }
    if let Some(c) = a.bounded_load
        && !(c.is_finite() && c >= 1.0)
    {
        return Err(usage(format!(
            "--bounded-load {c} must be a number >= 1 (total capacity must hold every key)"
        )));
    }
    let r = ring::analyze(&AnalysisOptions {
        nodes: a.nodes,
        vnodes: a.vnodes,
        keys: a.keys,
        trials: a.trials,
        bounded_load: a.bounded_load,
        seed: a.seed,
    });
    if a.json {
        outln!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let scheme = match r.bounded_load {
        Some(c) => format!("bounded loads, c = {c}"),
        None => "plain consistent hashing".to_string(),
    };
    outln!(
        "ring: {} nodes x {} vnodes, {} keys, {} trial(s), {scheme}",
        r.nodes,
        r.vnodes,
        r.keys,
        r.trials
    );
    outln!(
        "  {:<22} {:>9} {:>21} {:>9} {:>7}",
        "",
        "measured",
        "min..max",
        "expected",
        "error"
    );
    line("max/mean load", &r.max_over_mean, None);
    // Theory gives E[variance]: the error is the RMS's, not the mean sd's
    // (which is biased low).
    line("load stddev/mean", &r.relative_sd, Some(r.rms_relative_sd));
    if r.relative_sd.expected.is_some() {
        outln!(
            "  {:<22} {:>9.4}   (error above is the rms's)",
            "  rms over trials",
            r.rms_relative_sd
        );
    }
    line("moved on add", &r.moved_on_add, None);
    line("moved on remove", &r.moved_on_remove, None);
    outln!(
        "  ideal moves: 1/(N+1) = {:.4} on add, 1/N = {:.4} on remove",
        r.ideal_moved_on_add,
        r.ideal_moved_on_remove
    );
    outln!(
        "  keys moved between two nodes present before and after: {}",
        r.moved_between_others
    );
    if let Some(cap) = r.load_cap {
        outln!("  bounded loads guarantee max/mean <= ceil(cK/N)/(K/N) = {cap:.4}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One row; `against` is the figure compared with the expectation when it
/// is not the mean.
fn line(name: &str, s: &Stat, against: Option<f64>) {
    let exp = s.expected.map_or("—".to_string(), |e| format!("{e:.4}"));
    let err = s.expected.map_or(String::new(), |e| {
        format!("{:.1}%", (against.unwrap_or(s.mean) - e).abs() / e * 100.0)
    });
    let range = format!("{:.4}..{:.4}", s.min, s.max);
    outln!("  {name:<22} {:>9.4} {range:>21} {exp:>9} {err:>7}", s.mean);
}
