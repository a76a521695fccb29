//! `faultline lab up|down|status`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::lab::{self, LabConfig, LabState};

#[derive(Args, Debug, Clone)]
pub struct DirArg {
    /// Lab state dir (root-owned; not under /tmp, sshd refuses that).
    #[arg(long, default_value = lab::DEFAULT_DIR)]
    pub dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Bring the lab up (idempotent: a healthy lab is kept).
    Up {
        #[command(flatten)]
        dir: DirArg,
        /// Number of nodes (n1..nN).
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Subnet, 10.77.N.0/24: bridge .1, nodes .11 and up.
        #[arg(long, default_value = lab::DEFAULT_SUBNET)]
        subnet: String,
        /// Bridge name (also prefixes namespace and veth names).
        #[arg(long, default_value = lab::DEFAULT_BRIDGE)]
        bridge: String,
    },
    /// Tear the lab down: no namespace, link, process or file is left.
    Down {
        #[command(flatten)]
        dir: DirArg,
        /// Bridge name, used when lab.json is missing.
        #[arg(long, default_value = lab::DEFAULT_BRIDGE)]
        bridge: String,
    },
    /// Show the nodes and whether each is up (exit 3 if any is not).
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// Print lab.json plus health as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: LabCommand) -> Result<ExitCode> {
    let mut out = crate::out::stdout();
    match cmd {
        LabCommand::Up {
            dir,
            nodes,
            subnet,
            bridge,
        } => {
            let prefix = lab::parse_subnet(&subnet).map_err(|e| crate::usage(format!("{e:#}")))?;
            lab::check_bridge(&bridge).map_err(|e| crate::usage(format!("{e:#}")))?;
            let t0 = Instant::now();
            let cfg = LabConfig {
                dir: dir.dir,
                nodes,
                prefix,
                bridge,
            };
            let (state, created) = lab::up(&cfg)?;
            let verb = if created { "up" } else { "already up" };
            writeln!(
                out,
                "lab {verb}: {} nodes on {} ({}) in {:.2} s; dir {}",
                state.nodes.len(),
                state.bridge,
                state.subnet,
                t0.elapsed().as_secs_f64(),
                state.dir.display()
            )?;
            print_nodes(&mut out, &state)?;
        }
        LabCommand::Down { dir, bridge } => {
            lab::check_bridge(&bridge).map_err(|e| crate::usage(format!("{e:#}")))?;
            let t0 = Instant::now();
            let did = lab::down(&dir.dir, Some(&bridge))?;
            if did {
                writeln!(out, "lab down in {:.2} s", t0.elapsed().as_secs_f64())?;
            } else {
                writeln!(out, "no lab at {}: nothing to do", dir.dir.display())?;
            }
        }
        LabCommand::Status { dir, json } => {
            let state = LabState::load(&dir.dir)?;
            let health = lab::health(&state);
            if json {
                let nodes: Vec<_> = health
                    .iter()
                    .map(|(n, alive, ssh)| serde_json::json!({"name": n, "alive": alive, "sshd": ssh}))
                    .collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"lab": state, "health": nodes})
                )?;
            } else {
                writeln!(
                    out,
                    "lab at {}: bridge {} ({})",
                    state.dir.display(),
                    state.bridge,
                    state.subnet
                )?;
                print_nodes(&mut out, &state)?;
            }
            let down: Vec<&str> = health
                .iter()
                .filter(|(_, a, b)| !(*a && *b))
                .map(|(n, _, _)| n.as_str())
                .collect();
            if !down.is_empty() {
                bail!("nodes not up: {}", down.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_nodes(out: &mut impl Write, state: &LabState) -> Result<()> {
    for ((n, alive, ssh), node) in lab::health(state).iter().zip(&state.nodes) {
        let st = match (alive, ssh) {
            (true, true) => "up",
            (true, false) => "sshd not answering",
            _ => "down",
        };
        writeln!(
            out,
            "  {n:<4} {:<12} pid {:<7} {st}",
            node.addr, node.init_pid
        )?;
    }
    Ok(())
}
