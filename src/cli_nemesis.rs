//! `faultline nemesis start|heal|run|status`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cli_lab::DirArg;
use crate::lab::LabState;
use crate::nemesis_ctl::Controller;
use faultline_nemesis::{Fault, ProcTarget, grudge};

#[derive(Subcommand, Debug)]
pub enum NemesisCommand {
    /// Start one fault and leave it active (recorded in the lab dir).
    Start {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        fault: FaultArgs,
        /// Append history events (JSON Lines) to this file.
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Heal active faults (`--all`: everything, even after a crash).
    Heal {
        #[command(flatten)]
        dir: DirArg,
        /// Heal every recorded fault and run the catch-all heal on every node.
        #[arg(long, required = true)]
        all: bool,
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Start faults, hold them, and heal them on exit, error, SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        dir: DirArg,
        /// A fault, as `start` takes it: --fault "partition --grudge isolate:n1". Repeatable.
        #[arg(long = "fault", required = true)]
        faults: Vec<String>,
        /// Seconds to hold the faults (default: until interrupted).
        #[arg(long)]
        duration: Option<f64>,
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// List the active faults recorded in the lab dir.
    Status {
        #[command(flatten)]
        dir: DirArg,
    },
    /// (Runs on a node) hold NFQUEUE packets for a delay: the latency fault.
    #[command(hide = true)]
    Delayer {
        #[arg(long, default_value_t = 0)]
        queue: u16,
        #[arg(long)]
        delay_ms: u64,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    Partition,
    Loss,
    Bandwidth,
    Kill,
    Pause,
    ClockBump,
    ClockStrobe,
    Latency,
    /// Crash whole lab nodes (heal restarts them; not the target's processes).
    Crash,
}

#[derive(Args, Debug, Clone)]
pub struct FaultArgs {
    /// Kind of fault.
    #[arg(value_enum)]
    kind: FaultKind,
    /// Partition shape: halves, random-halves[:SEED], isolate:N,
    /// majorities-ring, bridge, one-way:FROM:TO, components:A,B/C,D.
    #[arg(long)]
    grudge: Option<String>,
    /// Drop only new connections (conntrack NEW): TCP is cut one way.
    #[arg(long)]
    one_way: bool,
    /// Nodes to hit (default: all lab nodes; not for partitions; crash needs them).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Loss probability, 0 < p <= 1.
    #[arg(long)]
    probability: Option<f64>,
    /// Bandwidth rate for tc tbf, e.g. 1mbit.
    #[arg(long)]
    rate: Option<String>,
    /// Process name (exact) for kill/pause.
    #[arg(long)]
    process: Option<String>,
    /// Pidfile (path inside the node) for kill/pause.
    #[arg(long)]
    pidfile: Option<String>,
    /// Clock offset for clock-bump, a libfaketime spec like +5.250 or -2m.
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<String>,
    /// Offset the clock strobe alternates with +0.
    #[arg(long, allow_hyphen_values = true)]
    delta: Option<String>,
    /// Clock strobe half-period in ms.
    #[arg(long, default_value_t = 200)]
    period_ms: u64,
    /// Seconds the clock strobe runs.
    #[arg(long, default_value_t = 10)]
    strobe_secs: u64,
    /// Latency added to every packet a node sends, in ms.
    #[arg(long)]
    delay_ms: Option<u64>,
}

/// Parses a `--fault` string of `run` with the same flags as `start`.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct FaultLine {
    #[command(flatten)]
    fault: FaultArgs,
}

fn need<T: Clone>(v: &Option<T>, flag: &str, kind: &str) -> Result<T> {
    v.clone()
        .ok_or_else(|| crate::usage(format!("{kind} needs --{flag}")))
}

/// Crashing every node by default would take the whole cluster down,
/// which is rarely what was meant: the nodes must be named.
fn need_nodes(nodes: &[String], kind: &str) -> Result<Vec<String>> {
    if nodes.is_empty() {
        return Err(crate::usage(format!("{kind} needs --nodes")));
    }
    Ok(nodes.to_vec())
}

impl FaultArgs {
    /// Resolves the arguments against the lab's nodes into a concrete fault.
    pub fn to_fault(&self, lab: &LabState) -> Result<Fault> {
        let names = lab.names();
        let nodes = if self.nodes.is_empty() {
            names.clone()
        } else {
            self.nodes.clone()
        };
        let target = || -> Result<ProcTarget> {
            match (&self.process, &self.pidfile) {
                (Some(p), None) => Ok(ProcTarget::Name(p.clone())),
                (None, Some(f)) => Ok(ProcTarget::Pidfile(f.clone())),
                _ => Err(crate::usage("give exactly one of --process or --pidfile")),
            }
        };
        Ok(match self.kind {
            FaultKind::Partition => {
                let spec = need(&self.grudge, "grudge", "partition")?;
                let g = grudge::parse(&spec, &names).map_err(crate::usage)?;
                Fault::Partition {
                    grudge: g,
                    one_way: self.one_way || spec.starts_with("one-way"),
                }
            }
            FaultKind::Loss => Fault::Loss {
                nodes,
                probability: need(&self.probability, "probability", "loss")?,
            },
            FaultKind::Bandwidth => Fault::Bandwidth {
                nodes,
                rate: need(&self.rate, "rate", "bandwidth")?,
                dev: "eth0".into(),
            },
            FaultKind::Kill => Fault::Kill {
                nodes,
                target: target()?,
                restart: None,
            },
            FaultKind::Pause => Fault::Pause {
                nodes,
                target: target()?,
            },
            FaultKind::ClockBump => Fault::ClockBump {
                nodes,
                offset: need(&self.offset, "offset", "clock-bump")?,
            },
            FaultKind::ClockStrobe => Fault::ClockStrobe {
                nodes,
                delta: need(&self.delta, "delta", "clock-strobe")?,
                period_ms: self.period_ms,
                duration_s: self.strobe_secs,
            },
            FaultKind::Crash => Fault::Crash {
                nodes: need_nodes(&self.nodes, "crash")?,
                restart: None,
            },
            FaultKind::Latency => Fault::Latency {
                nodes,
                delay_ms: need(&self.delay_ms, "delay-ms", "latency")?,
                binary: node_visible_exe()?,
            },
        })
    }
}

/// This binary's path, which lab nodes can run: they share the host's
/// filesystem except their private /tmp, /opt and /root.
fn node_visible_exe() -> Result<String> {
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    let s = exe.to_string_lossy().into_owned();
    if ["/tmp/", "/opt/", "/root/"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        anyhow::bail!(
            "the latency fault runs {s} on the nodes, but nodes have a private {}: \
             install faultline elsewhere (e.g. /usr/local/bin)",
            &s[..s[1..].find('/').map_or(s.len(), |i| i + 1)]
        );
    }
    Ok(s)
}

fn parse_fault_line(s: &str, lab: &LabState) -> Result<Fault> {
    let words = s.split_whitespace();
    let line = FaultLine::try_parse_from(words)
        .map_err(|e| crate::usage(format!("--fault {s:?}: {}", e.render())))?;
    line.fault.to_fault(lab)
}

pub fn run(cmd: NemesisCommand) -> Result<ExitCode> {
    match cmd {
        NemesisCommand::Start {
            dir,
            fault,
            history,
        } => {
            let lab = LabState::load(&dir.dir)?;
            let fault = fault.to_fault(&lab)?;
            let mut c = Controller::connect(lab, history, true, true)?;
            c.start(fault)?;
        }
        NemesisCommand::Heal { dir, history, .. } => {
            let lab = LabState::load(&dir.dir)?;
            let mut c = Controller::connect(lab, history, true, false)?;
            c.heal_all()?;
        }
        NemesisCommand::Status { dir } => {
            let lab = LabState::load(&dir.dir)?;
            let p = lab.dir.join("nemesis-active.json");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|_| "{\"faults\":[]}".into());
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", text.trim())?;
        }
        NemesisCommand::Run {
            dir,
            faults,
            duration,
            history,
        } => return run_faults(&dir.dir, &faults, duration, history),
        NemesisCommand::Delayer { queue, delay_ms } => {
            return crate::delayer::run(queue, Duration::from_millis(delay_ms));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status after SIGINT/SIGTERM, the shell convention for SIGINT.
const INTERRUPTED: u8 = 130;

fn run_faults(
    dir: &std::path::Path,
    specs: &[String],
    duration: Option<f64>,
    history: Option<PathBuf>,
) -> Result<ExitCode> {
    let lab = LabState::load(dir)?;
    // Parse everything before touching a node.
    let faults = specs
        .iter()
        .map(|s| parse_fault_line(s, &lab))
        .collect::<Result<Vec<_>>>()?;
    let hold = duration
        .map(|d| {
            Duration::try_from_secs_f64(d)
                .map_err(|_| crate::usage("--duration must be a non-negative number of seconds"))
        })
        .transpose()?;
    // The handler only raises a flag; the loop below heals. Installed before
    // the first fault so no signal can slip between start and guard.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the SIGINT/SIGTERM handler")?;

    let mut c = Controller::connect(lab, history, true, true)?;
    let mut result = Ok(());
    for f in faults {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Err(e) = c.start(f).map(drop) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        let t0 = Instant::now();
        while !stop.load(Ordering::SeqCst) && hold.is_none_or(|h| t0.elapsed() < h) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Heal on every path: done, error, or signal.
    let healed = c.heal_all();
    result?;
    healed?;
    Ok(if stop.load(Ordering::SeqCst) {
        ExitCode::from(INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}
