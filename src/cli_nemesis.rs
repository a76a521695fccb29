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
use crate::nemesis_ctl::{self, ACTIVE, Active, Cluster, Controller};
use crate::nodes::NodeArgs;
use faultline_nemesis::fault::CLOCK_HELPER;
use faultline_nemesis::{Fault, ProcTarget, grudge};

/// Which nodes: the lab (default, or lab names in --nodes, which then also
/// pick the fault's nodes) or machines given by address.
#[derive(Args, Debug, Clone)]
pub struct Where {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    nodes: NodeArgs,
    /// Nemesis state dir for nodes outside the lab (default:
    /// $FAULTLINE_STATE_DIR, /var/lib/faultline as root, else
    /// ~/.local/state/faultline).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

impl Where {
    fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(nemesis_ctl::default_state_dir)
    }

    /// The cluster, and for the lab the nodes `--nodes` named (the fault's
    /// nodes, as before nodes outside the lab existed).
    fn cluster(&self) -> Result<(Cluster, Vec<String>)> {
        let r = self.nodes.resolve(&self.dir.dir, Duration::from_secs(5))?;
        match r.lab.clone() {
            Some(lab) => {
                let selected = if self.nodes.given() {
                    r.names()
                } else {
                    Vec::new()
                };
                Ok((Cluster::lab(lab)?, selected))
            }
            None => Ok((
                Cluster {
                    specs: r.specs,
                    lab: None,
                    state_dir: self.state_dir(),
                },
                Vec::new(),
            )),
        }
    }
}

// Parsed once per process: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum NemesisCommand {
    /// Start one fault and leave it active (recorded in the state file).
    Start {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        fault: FaultArgs,
        /// Append history events (JSON Lines) to this file.
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Heal active faults (`--all`: everything, even after a crash).
    /// Without --nodes: the lab's and those recorded in the state dir.
    Heal {
        #[command(flatten)]
        at: Where,
        /// Heal every recorded fault and run the catch-all heal on every node.
        #[arg(long, required = true)]
        all: bool,
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Start faults, hold them, and heal them on exit, error, SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        at: Where,
        /// A fault, as `start` takes it: --fault "partition --grudge isolate:n1". Repeatable.
        #[arg(long = "fault", required = true)]
        faults: Vec<String>,
        /// Seconds to hold the faults (default: until interrupted).
        #[arg(long)]
        duration: Option<f64>,
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// List the active faults recorded (lab dir and state dir).
    Status {
        #[command(flatten)]
        at: Where,
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
    /// Nodes to hit, by name (default: the lab nodes --nodes named, else
    /// every node; not for partitions; crash needs them).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    on: Vec<String>,
    /// Loss probability, 0 < p <= 1.
    #[arg(long)]
    probability: Option<f64>,
    /// Bandwidth rate, e.g. 1mbit.
    #[arg(long)]
    rate: Option<String>,
    /// Bandwidth: limit only traffic to these nodes (a link; htb filter),
    /// not the whole interface (tbf).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    to: Vec<String>,
    /// Bandwidth: interface, or auto (the one routing to the peer).
    #[arg(long, default_value = "auto")]
    dev: String,
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

/// Parses a `--fault` string of `run` with the same flags as `start`
/// (where `--nodes` names the fault's nodes, like `--on`).
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct FaultLine {
    #[command(flatten)]
    fault: FaultArgs,
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
}

fn need<T: Clone>(v: &Option<T>, flag: &str, kind: &str) -> Result<T> {
    v.clone()
        .ok_or_else(|| crate::usage(format!("{kind} needs --{flag}")))
}

/// Crashing every node by default would take the whole cluster down,
/// which is rarely what was meant: the nodes must be named.
fn need_nodes(nodes: &[String], kind: &str) -> Result<Vec<String>> {
    if nodes.is_empty() {
        return Err(crate::usage(format!("{kind} needs --nodes (or --on)")));
    }
    Ok(nodes.to_vec())
}

impl FaultArgs {
    /// Resolves the arguments against the cluster into a concrete fault;
    /// `selected` are the lab nodes `--nodes` named.
    fn to_fault(&self, cluster: &Cluster, selected: &[String]) -> Result<Fault> {
        let names = cluster.names();
        let chosen = if self.on.is_empty() {
            selected.to_vec()
        } else {
            self.on.clone()
        };
        let nodes = if chosen.is_empty() {
            names.clone()
        } else {
            chosen.clone()
        };
        let lab = cluster.lab.is_some();
        // Lab nodes share this machine's clock: libfaketime there, the
        // helper that sets the real clock elsewhere.
        let helper = (!lab).then(|| CLOCK_HELPER.to_string());
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
                dev: self.dev.clone(),
                to: self.to.clone(),
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
                helper,
            },
            FaultKind::ClockStrobe => Fault::ClockStrobe {
                nodes,
                delta: need(&self.delta, "delta", "clock-strobe")?,
                period_ms: self.period_ms,
                duration_s: self.strobe_secs,
                helper,
            },
            FaultKind::Crash if !lab => {
                return Err(crate::usage(
                    "crash needs lab nodes (the node is killed from the lab host); \
                     on other nodes use kill",
                ));
            }
            FaultKind::Crash => Fault::Crash {
                nodes: need_nodes(&chosen, "crash")?,
                restart: None,
            },
            FaultKind::Latency if !lab => {
                return Err(crate::usage(
                    "latency on nodes outside the lab is not supported yet: it runs the \
                     faultline binary on the node",
                ));
            }
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
pub(crate) fn node_visible_exe() -> Result<String> {
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

fn parse_fault_line(s: &str, cluster: &Cluster, selected: &[String]) -> Result<Fault> {
    let words = s.split_whitespace();
    let mut line = FaultLine::try_parse_from(words)
        .map_err(|e| crate::usage(format!("--fault {s:?}: {}", e.render())))?;
    line.fault.on.append(&mut line.nodes);
    line.fault.to_fault(cluster, selected)
}

/// Every cluster with recorded faults: the given nodes (plus those the
/// state file recorded), or, with no --nodes, the state dir's nodes and the
/// lab.
fn clusters_to_heal(at: &Where) -> Result<Vec<Cluster>> {
    let state_dir = at.state_dir();
    let saved = Active::load(&state_dir.join(ACTIVE))?;
    let merge = |mut specs: Vec<crate::remote::NodeSpec>| {
        for s in &saved.nodes {
            if !specs.iter().any(|x| x.name == s.name) {
                specs.push(s.clone());
            }
        }
        specs
    };
    if at.nodes.given() {
        let (mut c, _) = at.cluster()?;
        if c.lab.is_none() {
            c.specs = merge(c.specs);
        }
        return Ok(vec![c]);
    }
    let mut out = Vec::new();
    if !saved.nodes.is_empty() {
        out.push(Cluster {
            specs: merge(Vec::new()),
            lab: None,
            state_dir: state_dir.clone(),
        });
    }
    match LabState::load(&at.dir.dir) {
        Ok(lab) => out.push(Cluster::lab(lab)?),
        Err(e) if out.is_empty() => {
            return Err(e.context(format!(
                "nothing to heal: no nemesis state in {} either",
                state_dir.display()
            )));
        }
        Err(_) => {}
    }
    Ok(out)
}

pub fn run(cmd: NemesisCommand) -> Result<ExitCode> {
    match cmd {
        NemesisCommand::Start { at, fault, history } => {
            let (cluster, selected) = at.cluster()?;
            let fault = fault.to_fault(&cluster, &selected)?;
            let mut c = Controller::connect(cluster, history, true, true)?;
            c.start(fault)?;
        }
        NemesisCommand::Heal { at, history, .. } => {
            let mut errors = Vec::new();
            for cluster in clusters_to_heal(&at)? {
                let r = Controller::connect(cluster, history.clone(), true, false)
                    .and_then(|mut c| c.heal_all());
                if let Err(e) = r {
                    errors.push(format!("{e:#}"));
                }
            }
            if !errors.is_empty() {
                anyhow::bail!("{}", errors.join("; "));
            }
        }
        NemesisCommand::Status { at } => {
            let mut files = vec![at.state_dir().join(ACTIVE)];
            if let Ok(lab) = LabState::load(&at.dir.dir) {
                files.push(lab.dir.join(ACTIVE));
            }
            let mut faults = Vec::new();
            let mut nodes = Vec::new();
            for f in files {
                let a = Active::load(&f)?;
                faults.extend(a.faults);
                nodes.extend(a.nodes.into_iter().map(|n| n.name));
            }
            let v = serde_json::json!({"faults": faults, "nodes": nodes});
            let mut out = crate::out::stdout();
            writeln!(out, "{v}")?;
        }
        NemesisCommand::Run {
            at,
            faults,
            duration,
            history,
        } => return run_faults(&at, &faults, duration, history),
        NemesisCommand::Delayer { queue, delay_ms } => {
            return crate::delayer::run(queue, Duration::from_millis(delay_ms));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status after SIGINT/SIGTERM, the shell convention for SIGINT.
const INTERRUPTED: u8 = 130;

fn run_faults(
    at: &Where,
    specs: &[String],
    duration: Option<f64>,
    history: Option<PathBuf>,
) -> Result<ExitCode> {
    let (cluster, selected) = at.cluster()?;
    // Parse everything before touching a node.
    let faults = specs
        .iter()
        .map(|s| parse_fault_line(s, &cluster, &selected))
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

    let mut c = Controller::connect(cluster, history, true, true)?;
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
