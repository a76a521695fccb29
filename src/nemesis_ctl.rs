//! Applies and heals faults on the lab's nodes over SSH, with the heal
//! guarantee: the active faults are written to a state file in the lab dir
//! *before* they are applied, so `faultline nemesis heal --all` can undo
//! them after a controller crash.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::lab::{self, LabState};
use crate::remote::{self, Remote, SshRemote};
use faultline_nemesis::fault::heal_everything_command;
use faultline_nemesis::{Fault, NemesisEvent};

const ACTIVE: &str = "nemesis-active.json";
const CMD_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Active {
    faults: Vec<Fault>,
}

pub struct Controller {
    pub lab: LabState,
    remotes: Vec<SshRemote>,
    /// Nodes that could not be reached: name → error (names the node).
    unreachable: BTreeMap<String, String>,
    history: Option<File>,
    echo: bool,
    t0: Instant,
    index: u64,
}

impl Controller {
    /// Connects to every lab node. With `require_all`, fails naming each
    /// unreachable node; otherwise (healing) goes on with the others, and
    /// commands for unreachable nodes count as failures.
    pub fn connect(
        lab: LabState,
        history: Option<PathBuf>,
        echo: bool,
        require_all: bool,
    ) -> Result<Self> {
        let specs = lab.node_specs(&[], Duration::from_secs(5))?;
        let mut remotes = Vec::new();
        let mut unreachable = BTreeMap::new();
        for (r, spec) in remote::connect_all(&specs).into_iter().zip(&specs) {
            match r {
                Ok(r) => remotes.push(r),
                Err(e) => {
                    unreachable.insert(spec.name.clone(), format!("{e:#}"));
                }
            }
        }
        if require_all && !unreachable.is_empty() {
            let errs: Vec<String> = unreachable.into_values().collect();
            bail!("cannot reach nodes: {}", errs.join("; "));
        }
        for e in unreachable.values() {
            eprintln!("faultline: warning: {e}");
        }
        let history = history
            .map(|p| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .with_context(|| format!("opening history {}", p.display()))
            })
            .transpose()?;
        Ok(Controller {
            lab,
            remotes,
            unreachable,
            history,
            echo,
            t0: Instant::now(),
            index: 0,
        })
    }

    fn active_path(&self) -> PathBuf {
        self.lab.dir.join(ACTIVE)
    }

    fn load_active(&self) -> Result<Active> {
        let p = self.active_path();
        match fs::read_to_string(&p) {
            Ok(s) => serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Active::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Writes and fsyncs via rename: the file is either old or new, never torn.
    fn save_active(&self, a: &Active) -> Result<()> {
        let p = self.active_path();
        if a.faults.is_empty() {
            return match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        let tmp = p.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(a)?.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
    }

    pub fn active(&self) -> Result<Vec<Fault>> {
        Ok(self.load_active()?.faults)
    }

    fn record(&mut self, mut ev: NemesisEvent) -> Result<()> {
        ev.index = Some(self.index);
        ev.time = Some(self.t0.elapsed().as_nanos() as u64);
        self.index += 1;
        let line = serde_json::to_string(&ev)?;
        if let Some(h) = &mut self.history {
            // Flushed per event: a killed controller leaves a checkable prefix.
            writeln!(h, "{line}")?;
            h.flush()?;
        }
        if self.echo {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// Runs per-node commands in parallel. Returns the per-node outcomes as
    /// JSON and the failures (each naming its node).
    fn run_cmds(&mut self, cmds: &BTreeMap<String, String>) -> (Value, Vec<String>) {
        let targets = self
            .remotes
            .iter_mut()
            .filter(|r| cmds.contains_key(r.name()));
        let results = remote::fan_out(targets, |r| {
            let cmd = cmds.get(r.name()).map(String::as_str).unwrap_or("true");
            r.exec(cmd, CMD_TIMEOUT)
        });
        let mut outcome = serde_json::Map::new();
        let mut errors = Vec::new();
        for node in cmds.keys() {
            if let Some(e) = self.unreachable.get(node) {
                errors.push(format!("unreachable: {e}"));
                outcome.insert(node.clone(), json!({"error": format!("unreachable: {e}")}));
            }
        }
        for (node, r) in results {
            match r {
                Ok(o) => {
                    if o.exit != 0 {
                        errors.push(format!("{node}: exit {}: {}", o.exit, o.stderr.trim()));
                    }
                    outcome.insert(
                        node,
                        json!({"exit": o.exit, "stdout": o.stdout.trim(), "stderr": o.stderr.trim()}),
                    );
                }
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    outcome.insert(node, json!({"error": format!("{e:#}")}));
                }
            }
        }
        (Value::Object(outcome), errors)
    }

    /// Starts a fault. It is recorded as active before any node is touched;
    /// if any node fails, the fault is healed again and an error returned.
    /// Returns what each node said (pids signalled, rules set).
    pub fn start(&mut self, fault: Fault) -> Result<Value> {
        let cmds = fault
            .start_commands(&self.lab.addrs(), &self.lab.controller)
            .map_err(|e| crate::usage(e.to_string()))?;
        let mut active = self.load_active()?;
        active.faults.push(fault.clone());
        self.save_active(&active)?;
        let (outcome, errors) = match &fault {
            Fault::Crash { nodes, .. } => self.crash(nodes),
            _ => self.run_cmds(&cmds),
        };
        self.record(NemesisEvent::start(&fault, outcome.clone()))?;
        if !errors.is_empty() {
            let heal = self.heal(&fault);
            bail!(
                "starting {} failed on {}{}",
                fault.name(),
                errors.join("; "),
                heal.err()
                    .map(|e| format!(" (and healing failed: {e:#})"))
                    .unwrap_or_default()
            );
        }
        Ok(outcome)
    }

    /// Crashes nodes from the lab host (the crash fault): per-node outcome
    /// as JSON, and the failures (each naming its node).
    fn crash(&mut self, nodes: &[String]) -> (Value, Vec<String>) {
        let mut outcome = serde_json::Map::new();
        let mut errors = Vec::new();
        for n in nodes {
            match lab::crash_node(&self.lab, n) {
                Ok(v) => {
                    outcome.insert(n.clone(), json!({"crashed": v}));
                }
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    outcome.insert(n.clone(), json!({"error": format!("{e:#}")}));
                }
            }
        }
        (Value::Object(outcome), errors)
    }

    /// Restarts crashed nodes and reconnects to them, so the heal commands
    /// (the target's restart) can run there next.
    fn restart_nodes(&mut self, nodes: &[String]) -> (serde_json::Map<String, Value>, Vec<String>) {
        let mut outcome = serde_json::Map::new();
        let mut errors = Vec::new();
        for n in nodes {
            let r = lab::restart_node(&mut self.lab, n).and_then(|v| {
                self.reconnect(n)?;
                Ok(v)
            });
            match r {
                Ok(v) => {
                    outcome.insert(n.clone(), json!({"restarted": v}));
                }
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    outcome.insert(n.clone(), json!({"error": format!("{e:#}")}));
                }
            }
        }
        (outcome, errors)
    }

    /// Replaces the SSH session to a node that was restarted.
    fn reconnect(&mut self, node: &str) -> Result<()> {
        let spec = self
            .lab
            .node_specs(&[node.to_string()], Duration::from_secs(5))?
            .into_iter()
            .next()
            .with_context(|| format!("no node {node:?}"))?;
        let r = SshRemote::connect(spec)?;
        self.remotes.retain(|x| x.name() != node);
        self.remotes.push(r);
        self.unreachable.remove(node);
        Ok(())
    }

    /// Heals one fault and drops it from the state file once every node
    /// confirmed.
    pub fn heal(&mut self, fault: &Fault) -> Result<()> {
        let (outcome, errors) = if let Fault::Crash { nodes, .. } = fault {
            let (mut outcome, mut errors) = self.restart_nodes(nodes);
            // The target's restart, on the nodes that came back.
            let cmds: BTreeMap<String, String> = fault
                .heal_commands()
                .into_iter()
                .filter(|(n, _)| outcome.get(n).is_none_or(|v| v.get("error").is_none()))
                .collect();
            let (o, e) = self.run_cmds(&cmds);
            if let Value::Object(o) = o {
                for (n, v) in o {
                    if let Some(Value::Object(m)) = outcome.get_mut(&n) {
                        m.insert("restart".into(), v);
                    }
                }
            }
            errors.extend(e);
            (Value::Object(outcome), errors)
        } else {
            self.run_cmds(&fault.heal_commands())
        };
        self.record(NemesisEvent::heal(fault, outcome))?;
        if !errors.is_empty() {
            bail!("healing {} failed on {}", fault.name(), errors.join("; "));
        }
        let mut active = self.load_active()?;
        if let Some(i) = active.faults.iter().position(|f| f == fault) {
            active.faults.remove(i);
        }
        self.save_active(&active)
    }

    /// Heals every recorded fault (crashed nodes first, since the other
    /// heals need them up; then newest first), restarts any other node that
    /// is down, then runs the catch-all heal on every node. Tries
    /// everything before reporting errors.
    pub fn heal_all(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        let faults = self.active()?;
        let (crashes, others): (Vec<&Fault>, Vec<&Fault>) =
            faults.iter().rev().partition(|f| f.is_lab_local());
        for f in crashes.into_iter().chain(others) {
            if let Err(e) = self.heal(f) {
                errors.push(format!("{e:#}"));
            }
        }
        // A crash the state file does not know of (e.g. a node killed by
        // hand) would fail the catch-all below.
        let down: Vec<String> = self
            .lab
            .names()
            .into_iter()
            .filter(|n| lab::node_down(&self.lab, n).unwrap_or(false))
            .collect();
        if !down.is_empty() {
            let (outcome, errs) = self.restart_nodes(&down);
            errors.extend(errs);
            self.record(NemesisEvent::heal(
                &Fault::Crash {
                    nodes: down,
                    restart: None,
                },
                Value::Object(outcome),
            ))?;
        }
        let all: BTreeMap<String, String> = self
            .lab
            .names()
            .into_iter()
            .map(|n| (n, heal_everything_command("eth0")))
            .collect();
        let (_, errs) = self.run_cmds(&all);
        errors.extend(errs);
        if errors.is_empty() {
            self.save_active(&Active::default())?;
            Ok(())
        } else {
            bail!("heal failed: {}", errors.join("; "))
        }
    }
}
