//! `faultline trace RUN`: the messages of a stored run of one of
//! faultline's own protocols, as a Lamport space-time diagram (`--svg`) or
//! counts per message type and node pair. Reading and drawing live in
//! `faultline_results::{trace, trace_svg}`; this is the thin shell.

use crate::usage;
use anyhow::Context;
use clap::Args;
use faultline_results::trace::{self, MAX_ARROWS, TraceData, TraceLoadError, TraceWindow};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_long_help = "\
Reads the run's nodes/<node>/messages.jsonl (written by faultline-node: each
message sent and received, with Lamport clocks, and role/term changes),
history.jsonl (client operations) and its fault windows.

Without --svg prints, per message type and node pair, how many were sent and
how many received: a gap is messages lost to a fault or a full queue.

Examples:
  faultline trace store/paxos-register/latest
  faultline trace store/paxos-register/latest --from 4 --to 6 \\
      --types Prepare,Promise,Accept --svg ballot.svg
  faultline trace RUN --nodes n1,n2 --svg two.svg")]
pub struct TraceArgs {
    /// The run (a run directory, or `<store>/<test>/latest`)
    pub run_dir: PathBuf,

    /// Start of the window, seconds since the test started
    #[arg(long, value_name = "T1")]
    pub from: Option<f64>,

    /// End of the window, seconds since the test started
    #[arg(long, value_name = "T2")]
    pub to: Option<f64>,

    /// Only messages between these nodes (comma-separated)
    #[arg(long, value_name = "N1,N2", value_delimiter = ',')]
    pub nodes: Vec<String>,

    /// Only these message types, as the protocol names them
    /// (comma-separated: Prepare,Promise)
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    pub types: Vec<String>,

    /// Write the space-time diagram to this SVG file
    #[arg(long, value_name = "OUT")]
    pub svg: Option<PathBuf>,

    /// Most arrows drawn; later messages are cut, with a note
    #[arg(long, value_name = "N", default_value_t = MAX_ARROWS)]
    pub max_arrows: usize,
}

pub fn run(a: TraceArgs) -> anyhow::Result<ExitCode> {
    if !a.run_dir.is_dir() {
        return Err(usage(format!(
            "{}: not a run directory",
            a.run_dir.display()
        )));
    }
    if a.max_arrows == 0 {
        return Err(usage("--max-arrows must be at least 1"));
    }
    let data = match trace::load_run(&a.run_dir) {
        Ok(d) => d,
        Err(e @ TraceLoadError::NoTrace(_)) => return Err(usage(e.to_string())),
        Err(e) => return Err(anyhow::Error::new(e).context("reading the trace")),
    };
    let window = window(&a, &data)?;
    if let Some(bad) = a
        .nodes
        .iter()
        .find(|n| !data.records.iter().any(|r| &r.node == *n))
    {
        let known: std::collections::BTreeSet<&str> =
            data.records.iter().map(|r| r.node.as_str()).collect();
        return Err(usage(format!(
            "--nodes: no node `{bad}` in this run (nodes: {})",
            known.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    match &a.svg {
        Some(path) => {
            let svg = faultline_results::trace_svg::trace_svg(&data, &window);
            std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
            let v = trace::select(&data, &window);
            outln!(
                "{}: {} messages drawn{}",
                path.display(),
                v.messages.len(),
                if v.cut() > 0 {
                    format!(
                        ", {} more cut (narrow with --from/--to, --nodes, --types)",
                        v.cut()
                    )
                } else {
                    String::new()
                }
            );
        }
        None => print_counts(&data, &window),
    }
    Ok(ExitCode::SUCCESS)
}

/// The window the flags ask for; times are seconds since the test started.
fn window(a: &TraceArgs, data: &TraceData) -> anyhow::Result<TraceWindow> {
    let at = |flag: &str, s: Option<f64>| -> anyhow::Result<Option<u64>> {
        let Some(s) = s else { return Ok(None) };
        if !s.is_finite() || s < 0.0 {
            return Err(usage(format!("--{flag} {s}: not a time since the start")));
        }
        let t0 = data.t0_ms.ok_or_else(|| {
            usage(format!(
                "--{flag}: this run has no start time (results.json run.t0_unix_ms); \
                 use --nodes/--types instead"
            ))
        })?;
        Ok(Some(t0 + (s * 1000.0) as u64))
    };
    let w = TraceWindow {
        from_ms: at("from", a.from)?,
        to_ms: at("to", a.to)?,
        nodes: a.nodes.clone(),
        types: a.types.clone(),
        max_arrows: a.max_arrows,
    };
    if let (Some(f), Some(t)) = (w.from_ms, w.to_ms)
        && f > t
    {
        return Err(usage("--from is after --to"));
    }
    Ok(w)
}

fn print_counts(data: &TraceData, w: &TraceWindow) {
    let counts = trace::counts(data, w);
    if counts.is_empty() {
        outln!("no messages in this window");
        return;
    }
    outln!(
        "{:<16} {:<6} {:<6} {:>9} {:>9} {:>7}",
        "type",
        "from",
        "to",
        "sent",
        "received",
        "lost"
    );
    for ((ty, from, to), (sent, recv)) in counts {
        outln!(
            "{ty:<16} {from:<6} {to:<6} {sent:>9} {recv:>9} {:>7}",
            sent - recv
        );
    }
}
