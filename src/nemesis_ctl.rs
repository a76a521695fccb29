//! Applies and heals faults on nodes over SSH, with the heal guarantee: the
//! active faults are written to a state file *before* they are applied, so
//! `faultline nemesis heal --all` can undo them after a controller crash.
//!
//! The state file is `nemesis-active.json` in the lab dir for lab nodes,
//! and in the state dir (`--state-dir`) for nodes outside the lab; there it
//! also records the nodes and how to reach them, so a later `heal --all`
//! needs no `--nodes`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::lab::{self, LabState};
use crate::remote::{self, NodeSpec, Remote, SshRemote};
use faultline_nemesis::fault::{CLOCK_HELPER, heal_everything_command};
use faultline_nemesis::{Fault, NemesisEvent, NodeAddrs};

pub const ACTIVE: &str = "nemesis-active.json";
const CMD_TIMEOUT: Duration = Duration::from_secs(15);

/// The state file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Active {
    /// Nodes outside the lab, with how to reach them (empty for the lab).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSpec>,
    /// Node → address the other nodes see it at (nodes outside the lab).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addrs: NodeAddrs,
    pub faults: Vec<Fault>,
}

impl Active {
    /// Reads a state file; a missing file is an empty state.
    pub fn load(p: &std::path::Path) -> Result<Active> {
        match fs::read_to_string(p) {
            Ok(s) => serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Active::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }
}

/// The nodes a controller acts on, and where its state file lives.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub specs: Vec<NodeSpec>,
    /// Set when the nodes are the lab's: crash and libfaketime need it.
    pub lab: Option<LabState>,
    /// Directory of the state file (the lab dir for the lab).
    pub state_dir: PathBuf,
}

impl Cluster {
    /// Every node of a lab.
    pub fn lab(lab: LabState) -> Result<Cluster> {
        Ok(Cluster {
            specs: lab.node_specs(&[], Duration::from_secs(5))?,
            state_dir: lab.dir.clone(),
            lab: Some(lab),
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.specs.iter().map(|s| s.name.clone()).collect()
    }
}

/// The default state dir for nodes outside the lab.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FAULTLINE_STATE_DIR") {
        return PathBuf::from(d);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/faultline");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/state/faultline"))
        .unwrap_or_else(|| PathBuf::from(".faultline-state"))
}

/// The local clock helper binary uploaded to nodes outside the lab:
/// `$FAULTLINE_CLOCK_HELPER`, else `faultline-clock` next to this binary.
fn local_clock_helper() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_CLOCK_HELPER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    let p = exe.with_file_name("faultline-clock");
    if !p.exists() {
        bail!(
            "clock faults on nodes outside the lab need the helper {} (build it with \
             `cargo build --bin faultline-clock`, or set FAULTLINE_CLOCK_HELPER)",
            p.display()
        );
    }
    Ok(p)
}

pub struct Controller {
    pub cluster: Cluster,
    /// Node → address the other nodes see it at.
    pub addrs: NodeAddrs,
    /// The controller's address(es) as the nodes see it, comma-separated:
    /// never dropped by a fault.
    pub controller: String,
    /// Nodes the clock helper was checked and installed on.
    clock_ready: std::collections::BTreeSet<String>,
    remotes: Vec<SshRemote>,
    /// Nodes that could not be reached: name → error (names the node).
    unreachable: BTreeMap<String, String>,
    history: Option<File>,
    echo: bool,
    t0: Instant,
    index: u64,
}

impl Controller {
    /// Connects to every node. With `require_all`, fails naming each
    /// unreachable node; otherwise (healing) goes on with the others, and
    /// commands for unreachable nodes count as failures.
    pub fn connect(
        cluster: Cluster,
        history: Option<PathBuf>,
        echo: bool,
        require_all: bool,
    ) -> Result<Self> {
        let specs = &cluster.specs;
        let mut remotes = Vec::new();
        let mut unreachable = BTreeMap::new();
        for (r, spec) in remote::connect_all(specs).into_iter().zip(specs) {
            match r {
                Ok(r) => remotes.push(r),
                Err(e) => {
                    unreachable.insert(spec.name.clone(), format!("{e:#}"));
                }
            }
        }
        let (addrs, controller) = match &cluster.lab {
            Some(lab) => (lab.addrs(), lab.controller.clone()),
            None => {
                // Each node says which address it is reached at and which
                // the controller comes from; a recorded state fills in for
                // nodes that are down.
                let saved = Active::load(&cluster.state_dir.join(ACTIVE))
                    .map(|a| a.addrs)
                    .unwrap_or_default();
                let mut addrs = NodeAddrs::new();
                let mut ctl = std::collections::BTreeSet::new();
                let probed = remote::fan_out(remotes.iter_mut(), |r| r.connection_addrs());
                for (node, r) in probed {
                    match r {
                        Ok((c, a)) => {
                            ctl.insert(c);
                            addrs.insert(node, a);
                        }
                        Err(e) => {
                            unreachable.insert(node, format!("{e:#}"));
                        }
                    }
                }
                remotes.retain(|r| !unreachable.contains_key(r.name()));
                for s in specs {
                    if !addrs.contains_key(&s.name) {
                        let a = saved
                            .get(&s.name)
                            .cloned()
                            .unwrap_or_else(|| s.host.clone());
                        addrs.insert(s.name.clone(), a);
                    }
                }
                (addrs, ctl.into_iter().collect::<Vec<_>>().join(","))
            }
        };
        if require_all && !unreachable.is_empty() {
            let errs: Vec<String> = unreachable.into_values().collect();
            bail!("cannot reach nodes: {}", errs.join("; "));
        }
        for e in unreachable.values() {
            errln!("faultline: warning: {e}");
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
            cluster,
            addrs,
            controller,
            clock_ready: Default::default(),
            remotes,
            unreachable,
            history,
            echo,
            t0: Instant::now(),
            index: 0,
        })
    }

    fn active_path(&self) -> PathBuf {
        self.cluster.state_dir.join(ACTIVE)
    }

    fn load_active(&self) -> Result<Active> {
        Active::load(&self.active_path())
    }

    /// Writes and fsyncs via rename: the file is either old or new, never
    /// torn. Outside the lab it also records the nodes and their addresses
    /// (merged with those already recorded).
    fn save_active(&self, a: &Active) -> Result<()> {
        let p = self.active_path();
        let mut a = Active {
            nodes: a.nodes.clone(),
            addrs: a.addrs.clone(),
            faults: a.faults.clone(),
        };
        if self.cluster.lab.is_none() {
            for s in &self.cluster.specs {
                a.nodes.retain(|x| x.name != s.name);
                a.nodes.push(s.clone());
            }
            a.addrs.extend(self.addrs.clone());
        }
        if !a.faults.is_empty() {
            fs::create_dir_all(&self.cluster.state_dir).with_context(|| {
                format!(
                    "creating the state dir {}",
                    self.cluster.state_dir.display()
                )
            })?;
        }
        if a.faults.is_empty() {
            return match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        let tmp = p.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(&a)?.as_bytes())?;
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
            let mut out = crate::out::stdout();
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
            } else if !self.remotes.iter().any(|r| r.name() == node) {
                let e = format!("{node}: not among the nodes given");
                errors.push(e.clone());
                outcome.insert(node.clone(), json!({ "error": e }));
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
            .start_commands(&self.addrs, &self.controller)
            .map_err(|e| crate::usage(e.to_string()))?;
        if fault.is_lab_local() && self.cluster.lab.is_none() {
            return Err(crate::usage(format!(
                "the {} fault needs lab nodes (it is done from the lab host); \
                 on other nodes use kill",
                fault.name()
            )));
        }
        if let Fault::ClockBump {
            nodes,
            helper: Some(_),
            ..
        }
        | Fault::ClockStrobe {
            nodes,
            helper: Some(_),
            ..
        } = &fault
        {
            self.prepare_clock_helper(nodes)?;
        }
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

    /// Checks that setting the real clock of `nodes` cannot touch this
    /// machine's clock (a node on this kernel, like a lab node, would), then
    /// installs the clock helper on them.
    fn prepare_clock_helper(&mut self, nodes: &[String]) -> Result<()> {
        let todo: BTreeMap<String, String> = nodes
            .iter()
            .filter(|n| !self.clock_ready.contains(*n))
            .map(|n| (n.clone(), "cat /proc/sys/kernel/random/boot_id".to_string()))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let ours = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .context("reading this machine's boot_id")?;
        let (out, errors) = self.run_cmds(&todo);
        if !errors.is_empty() {
            bail!(
                "checking the nodes' kernels failed on {}",
                errors.join("; ")
            );
        }
        for n in todo.keys() {
            if out[n]["stdout"].as_str() == Some(ours.trim()) {
                bail!(
                    "{n}: refusing a clock fault: the node runs on this machine's kernel \
                     (same boot_id), so setting its clock would set the controller's clock \
                     too. Lab nodes get clock faults through libfaketime: name them as lab \
                     nodes (--nodes n1,…) instead of by address"
                );
            }
        }
        let local = local_clock_helper()?;
        let staging = "/tmp/faultline-clock.upload";
        let dir = std::path::Path::new(CLOCK_HELPER)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "/opt/faultline".into());
        let install = format!(
            "mkdir -p {dir} && install -m 0755 {staging} {CLOCK_HELPER} && rm -f {staging}"
        );
        let targets = self
            .remotes
            .iter_mut()
            .filter(|r| todo.contains_key(r.name()));
        let results = remote::fan_out(targets, |r| {
            r.upload(&local, staging)?;
            let o = r.exec(&install, CMD_TIMEOUT)?;
            if o.exit != 0 {
                bail!(
                    "{}: installing {CLOCK_HELPER}: {}",
                    r.name(),
                    o.stderr.trim()
                );
            }
            Ok(())
        });
        let mut errors = Vec::new();
        for (n, r) in results {
            match r {
                Ok(()) => {
                    self.clock_ready.insert(n);
                }
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if !errors.is_empty() {
            bail!("installing the clock helper failed: {}", errors.join("; "));
        }
        Ok(())
    }

    /// Crashes nodes from the lab host (the crash fault): per-node outcome
    /// as JSON, and the failures (each naming its node).
    fn crash(&mut self, nodes: &[String]) -> (Value, Vec<String>) {
        let mut outcome = serde_json::Map::new();
        let mut errors = Vec::new();
        let Some(lab) = &self.cluster.lab else {
            return (outcome.into(), vec!["crash needs lab nodes".into()]);
        };
        for n in nodes {
            match lab::crash_node(lab, n) {
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
            let r = match self.cluster.lab.as_mut() {
                Some(lab) => lab::restart_node(lab, n),
                None => Err(anyhow::anyhow!("{n}: restarting a node needs the lab")),
            };
            let r = r.and_then(|v| {
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
            .cluster
            .specs
            .iter()
            .find(|s| s.name == node)
            .cloned()
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
        let down: Vec<String> = match &self.cluster.lab {
            Some(lab) => lab
                .names()
                .into_iter()
                .filter(|n| lab::node_down(lab, n).unwrap_or(false))
                .collect(),
            None => Vec::new(),
        };
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
            .cluster
            .names()
            .into_iter()
            .map(|n| (n, heal_everything_command()))
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
