//! The local lab: N nodes on one Linux bridge, each a network namespace with
//! its own PID, UTS and mount namespaces and sshd as its process 1, so the
//! same SSH code path runs locally and against real machines.
//!
//! Layout of the lab dir (root-owned, not under /tmp: sshd StrictModes):
//! `lab.json`, `.faultline-lab` (marker: only marked dirs are ever deleted),
//! `id_ed25519[.pub]`, `authorized_keys`, `known_hosts`, `node-init.sh`,
//! `nX/{sshd_config,ssh_host_ed25519_key,sshd.log,init.out,fs/{tmp,opt,root}}`.

pub mod prereq;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::remote::{NodeSpec, SshRemote};
use faultline_nemesis::NodeAddrs;

pub const DEFAULT_DIR: &str = "/srv/faultline-lab";
pub const DEFAULT_BRIDGE: &str = "flbr0";
pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";
const MARKER: &str = ".faultline-lab";
const STATE: &str = "lab.json";

/// What `lab up` is asked for.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub dir: PathBuf,
    pub nodes: usize,
    /// The first three octets of the /24, e.g. `10.77.0`.
    pub prefix: String,
    pub bridge: String,
}

/// Written to `lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub dir: PathBuf,
    pub bridge: String,
    pub subnet: String,
    /// The bridge address: the controller as the nodes see it.
    pub controller: String,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// libfaketime library to preload for processes under clock control.
    pub libfaketime: String,
    pub nodes: Vec<LabNode>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabNode {
    pub name: String,
    pub addr: String,
    pub netns: String,
    pub veth: String,
    /// Root-namespace pid of the `unshare` parent.
    pub unshare_pid: u32,
    /// Root-namespace pid of the node's process 1 (sshd).
    pub init_pid: u32,
}

/// Parses `10.77.N.0/24` into `10.77.N`. Only 10.77.0.0/16 /24s are allowed:
/// the lab must never take addresses that might be routed elsewhere.
pub fn parse_subnet(s: &str) -> Result<String> {
    let prefix = s
        .strip_suffix(".0/24")
        .filter(|p| p.starts_with("10.77."))
        .with_context(|| format!("subnet {s:?} must look like 10.77.N.0/24"))?;
    let third = &prefix["10.77.".len()..];
    match third.parse::<u8>() {
        Ok(_) if !third.starts_with('0') || third == "0" => Ok(prefix.to_string()),
        _ => bail!("subnet {s:?} must look like 10.77.N.0/24 with N in 0..=255"),
    }
}

/// Bridge names become veth names (`{bridge}v{i}`), which the kernel caps
/// at 15 bytes.
pub fn check_bridge(b: &str) -> Result<()> {
    if b.is_empty() || b.len() > 10 || !b.bytes().all(|c| c.is_ascii_alphanumeric()) {
        bail!("bridge name {b:?} must be 1-10 letters or digits");
    }
    Ok(())
}

impl LabState {
    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join(STATE);
        let text = fs::read_to_string(&p)
            .with_context(|| format!("no lab at {} (run `faultline lab up`)", dir.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }

    fn save(&self) -> Result<()> {
        let p = self.dir.join(STATE);
        let tmp = self.dir.join("lab.json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
    }

    /// SSH specs for the nodes (all when `names` is empty).
    pub fn node_specs(&self, names: &[String], connect_timeout: Duration) -> Result<Vec<NodeSpec>> {
        for n in names {
            if !self.nodes.iter().any(|x| &x.name == n) {
                bail!("no node {n:?} in the lab at {}", self.dir.display());
            }
        }
        Ok(self
            .nodes
            .iter()
            .filter(|n| names.is_empty() || names.contains(&n.name))
            .map(|n| NodeSpec {
                name: n.name.clone(),
                host: n.addr.clone(),
                port: 22,
                user: "root".into(),
                key: self.key.clone(),
                known_hosts: self.known_hosts.clone(),
                accept_new_host_keys: false,
                sudo: false,
                connect_timeout,
            })
            .collect())
    }

    pub fn addrs(&self) -> NodeAddrs {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr.clone()))
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }
}

/// Runs a command, failing with its stderr.
fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {prog}"))?;
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mkdir_mode(p: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

fn pid_alive(pid: u32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` still is (or is the zombie of) a lab node process, and not
/// an unrelated process that reused the pid.
fn is_lab_process(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Format: `pid (comm) state ...`; comm may contain spaces.
    let comm = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')'));
    match comm {
        Some((comm, rest)) => {
            rest.trim_start().starts_with('Z')
                || matches!(comm, "unshare" | "sshd" | "ip" | "setsid")
        }
        None => false,
    }
}

fn netns_list() -> Result<Vec<String>> {
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

fn netns_pids(ns: &str) -> Vec<u32> {
    run("ip", &["netns", "pids", ns])
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn tcp_open(addr: &str, port: u16, timeout: Duration) -> bool {
    addr.parse()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
        .is_some_and(|sa| TcpStream::connect_timeout(&sa, timeout).is_ok())
}

const NODE_INIT: &str = r#"#!/bin/sh
# The node's process 1: private hostname and /tmp /opt /root, then sshd.
# Usage: node-init.sh NAME NODE_DIR
set -e
hostname "$1"
mount --bind "$2/fs/tmp" /tmp
mount --bind "$2/fs/opt" /opt
mount --bind "$2/fs/root" /root
exec /usr/sbin/sshd -D -f "$2/sshd_config" -E "$2/sshd.log"
"#;

/// Health of each node: (name, pid alive, sshd port open).
pub fn health(state: &LabState) -> Vec<(String, bool, bool)> {
    state
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                in_netns(n.init_pid, &n.netns),
                tcp_open(&n.addr, 22, Duration::from_millis(500)),
            )
        })
        .collect()
}

/// Brings the lab up. Idempotent: a healthy lab of the same shape is kept;
/// anything else left under this lab's names is torn down first.
pub fn up(cfg: &LabConfig) -> Result<(LabState, bool)> {
    prereq::check()?;
    check_bridge(&cfg.bridge)?;
    if cfg.nodes == 0 || cfg.nodes > 60 {
        bail!("--nodes must be between 1 and 60");
    }
    if let Ok(old) = LabState::load(&cfg.dir) {
        let healthy = health(&old).iter().all(|(_, a, b)| *a && *b);
        if healthy
            && old.nodes.len() == cfg.nodes
            && old.bridge == cfg.bridge
            && old.controller == format!("{}.1", cfg.prefix)
        {
            return Ok((old, false));
        }
        down(&cfg.dir, Some(&old.bridge))?;
    }
    down(&cfg.dir, Some(&cfg.bridge))?;
    let state = build(cfg).inspect_err(|_| {
        // Never leave half a lab behind.
        let _ = down(&cfg.dir, Some(&cfg.bridge));
    })?;
    Ok((state, true))
}

fn build(cfg: &LabConfig) -> Result<LabState> {
    let dir = &cfg.dir;
    if dir.exists() && fs::read_dir(dir)?.next().is_some() && !dir.join(MARKER).exists() {
        bail!(
            "{} exists, is not empty and is not a faultline lab: choose another --dir",
            dir.display()
        );
    }
    mkdir_mode(dir, 0o755)?;
    fs::write(
        dir.join(MARKER),
        "faultline lab dir: `faultline lab down` deletes it\n",
    )?;
    // sshd's privilege-separation dir; no init script made it (services
    // never start on this image).
    mkdir_mode(Path::new("/run/sshd"), 0o755)?;

    let key = dir.join("id_ed25519");
    let keygen = |path: &Path, comment: &str| -> Result<()> {
        let p = path.to_string_lossy();
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &p],
        )
        .map(|_| ())
    };
    keygen(&key, "faultline-lab")?;
    let authorized = dir.join("authorized_keys");
    fs::copy(key.with_extension("pub"), &authorized)?;
    fs::set_permissions(&authorized, fs::Permissions::from_mode(0o600))?;
    let init = dir.join("node-init.sh");
    fs::write(&init, NODE_INIT)?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;

    let controller = format!("{}.1", cfg.prefix);
    let b = cfg.bridge.as_str();
    run("ip", &["link", "add", b, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{controller}/24"), "dev", b],
    )?;
    run("ip", &["link", "set", b, "up"])?;

    let names: Vec<String> = (1..=cfg.nodes).map(|i| format!("n{i}")).collect();
    let addr_of = |i: usize| format!("{}.{}", cfg.prefix, 10 + i);
    let mut hosts = format!("127.0.0.1 localhost\n{controller} control\n");
    for (i, n) in names.iter().enumerate() {
        hosts.push_str(&format!("{} {n}\n", addr_of(i + 1)));
    }

    let mut known_hosts = String::new();
    let mut nodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let idx = i + 1;
        let addr = addr_of(idx);
        let netns = format!("{b}-{name}");
        let veth = format!("{b}v{idx}");
        run("ip", &["netns", "add", &netns])?;
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        )?;
        run("ip", &["link", "set", &veth, "master", b, "up"])?;
        run(
            "ip",
            &[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ],
        )?;
        run("ip", &["-n", &netns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &netns, "link", "set", "lo", "up"])?;
        // `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc/*.
        let etc = Path::new("/etc/netns").join(&netns);
        mkdir_mode(&etc, 0o755)?;
        fs::write(etc.join("hosts"), &hosts)?;

        let nd = dir.join(name);
        mkdir_mode(&nd, 0o755)?;
        mkdir_mode(&nd.join("fs"), 0o755)?;
        mkdir_mode(&nd.join("fs/tmp"), 0o1777)?;
        mkdir_mode(&nd.join("fs/opt"), 0o755)?;
        mkdir_mode(&nd.join("fs/root"), 0o700)?;
        let hk = nd.join("ssh_host_ed25519_key");
        keygen(&hk, name)?;
        let pubkey = fs::read_to_string(hk.with_extension("pub"))?;
        known_hosts.push_str(&format!("{addr} {}\n", pubkey.trim()));
        fs::write(
            nd.join("sshd_config"),
            format!(
                "ListenAddress {addr}\nHostKey {hk}\nPidFile {nd}/sshd.pid\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\n\
                 AuthorizedKeysFile {auth}\nMaxStartups 100:30:200\nMaxSessions 100\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\n",
                hk = hk.display(),
                nd = nd.display(),
                auth = authorized.display()
            ),
        )?;
        let unshare_pid = spawn_node(dir, name, &netns, false)?;
        nodes.push(LabNode {
            name: name.clone(),
            addr,
            netns,
            veth,
            unshare_pid,
            init_pid: 0,
        });
    }
    let kh = dir.join("known_hosts");
    fs::write(&kh, known_hosts)?;

    let libfaketime = prereq::libfaketime().unwrap_or_default();
    let mut state = LabState {
        dir: dir.clone(),
        bridge: b.to_string(),
        subnet: format!("{}.0/24", cfg.prefix),
        controller,
        key,
        known_hosts: kh,
        libfaketime,
        nodes,
    };
    // Save early so `lab down` finds the pids even if the wait fails.
    state.save()?;
    wait_ready(&mut state, Duration::from_secs(10))?;
    state.save()?;
    Ok(state)
}

/// Starts a node's process 1 in its netns, as `lab up` does: `unshare`
/// gives it fresh pid, mount and UTS namespaces, and `node-init.sh` mounts
/// the node's private dirs and execs sshd. Returns the `unshare` pid.
fn spawn_node(dir: &Path, name: &str, netns: &str, append_log: bool) -> Result<u32> {
    let nd = dir.join(name);
    // A restart keeps the log of the node's earlier life.
    let out = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append_log)
        .truncate(!append_log)
        .open(nd.join("init.out"))
        .with_context(|| format!("{name}: opening init.out"))?;
    let child = Command::new("setsid")
        .args(["ip", "netns", "exec", netns, "unshare", "--pid", "--fork"])
        .args(["--mount-proc", "--uts", "--mount"])
        .arg(dir.join("node-init.sh"))
        .arg(name)
        .arg(&nd)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("{name}: starting node"))?;
    Ok(child.id())
}

/// Waits until a node's sshd accepts our key with its recorded host key;
/// returns the node's process 1 (root-namespace pid).
fn wait_node(dir: &Path, node: &LabNode, spec: &NodeSpec, timeout: Duration) -> Result<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        if !pid_alive(node.unshare_pid) {
            let log = fs::read_to_string(dir.join(&node.name).join("init.out")).unwrap_or_default();
            bail!("{}: node process exited: {}", node.name, log.trim());
        }
        if tcp_open(&spec.host, 22, Duration::from_millis(200)) {
            match SshRemote::connect(spec.clone()) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => {}
            }
        }
        if Instant::now() > deadline {
            bail!("{}: sshd not reachable within {timeout:?}", node.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children(node.unshare_pid)
        .first()
        .copied()
        .with_context(|| format!("{}: no process 1 under unshare", node.name))
}

/// Waits until every node's sshd accepts our key with its recorded host key.
fn wait_ready(state: &mut LabState, timeout: Duration) -> Result<()> {
    let specs = state.node_specs(&[], Duration::from_secs(2))?;
    let dir = state.dir.clone();
    let dir = &dir;
    let results: Vec<Result<u32>> = std::thread::scope(|s| {
        let hs: Vec<_> = specs
            .iter()
            .zip(state.nodes.iter())
            .map(|(spec, node)| s.spawn(move || wait_node(dir, node, spec, timeout)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("wait thread panicked")))
            .collect()
    });
    for (node, r) in state.nodes.iter_mut().zip(results) {
        node.init_pid = r?;
    }
    Ok(())
}

/// Whether `pid` lives in the lab netns `ns` (so a reused pid of some
/// other process never counts as a node's process 1).
fn in_netns(pid: u32, ns: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    if pid == 0 {
        return false;
    }
    match (
        fs::metadata(format!("/proc/{pid}/ns/net")),
        fs::metadata(Path::new("/run/netns").join(ns)),
    ) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn find_node<'a>(state: &'a LabState, name: &str) -> Result<&'a LabNode> {
    state
        .nodes
        .iter()
        .find(|n| n.name == name)
        .with_context(|| format!("no node {name:?} in the lab at {}", state.dir.display()))
}

/// How long a crash or a restart may take before it is an error.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Crashes a node: SIGKILL its process 1 from the root namespace, so the
/// kernel kills every process in its pid namespace, then waits until its
/// netns holds no process. The netns, its addresses and the node's files
/// stay (like a machine's wiring and disk). Returns what was killed, as
/// JSON; a node that is already down is left as it is.
pub fn crash_node(state: &LabState, name: &str) -> Result<serde_json::Value> {
    prereq::check_root()?;
    let node = find_node(state, name)?;
    let before = netns_pids(&node.netns);
    if before.is_empty() {
        return Ok(serde_json::json!({"already_down": true}));
    }
    // The recorded pid, unless it is stale: then the unshare's child.
    let init = [node.init_pid]
        .into_iter()
        .chain(children(node.unshare_pid))
        .find(|p| before.contains(p))
        .with_context(|| {
            format!(
                "{name}: its process 1 (pid {}) is not in netns {}; processes there: {before:?}",
                node.init_pid, node.netns
            )
        })?;
    // SAFETY: kill(2) on a pid just checked to be in the node's netns.
    if unsafe { libc::kill(init as i32, libc::SIGKILL) } != 0 {
        bail!(
            "{name}: kill -9 {init}: {}",
            std::io::Error::last_os_error()
        );
    }
    let t0 = Instant::now();
    loop {
        let left = netns_pids(&node.netns);
        if left.is_empty() {
            break;
        }
        if t0.elapsed() > NODE_TIMEOUT {
            bail!(
                "{name}: processes {left:?} still in netns {} {NODE_TIMEOUT:?} after killing its process 1",
                node.netns
            );
        }
        if t0.elapsed() > Duration::from_millis(500) {
            // Processes put into the netns from outside the node's pid
            // namespace do not die with it; a crash takes them too.
            for p in left {
                // SAFETY: kill(2) on a pid just listed in the node's netns.
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Reap the unshare parent when this process started it (a restart by
    // this controller); otherwise it is not our child and this is a no-op.
    // SAFETY: waitpid with WNOHANG on a pid; ECHILD is harmless.
    unsafe { libc::waitpid(node.unshare_pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
    Ok(serde_json::json!({
        "killed_init_pid": init,
        "processes": before.len(),
        "secs": t0.elapsed().as_secs_f64(),
    }))
}

/// Whether a node's processes are gone (crashed or never restarted).
pub fn node_down(state: &LabState, name: &str) -> Result<bool> {
    Ok(netns_pids(&find_node(state, name)?.netns).is_empty())
}

/// Brings a crashed node back exactly as `lab up` started it: same netns
/// and addresses, same host key (so known_hosts still verifies), its
/// private /tmp, /opt and /root; waits until sshd accepts our key, then
/// records the new pids in lab.json. Only the node's sshd starts: the
/// target's processes are the target's job. A node that is up is left as
/// it is. Returns what was done, as JSON.
pub fn restart_node(state: &mut LabState, name: &str) -> Result<serde_json::Value> {
    prereq::check_root()?;
    let node = find_node(state, name)?.clone();
    if !netns_pids(&node.netns).is_empty() {
        if in_netns(node.init_pid, &node.netns) {
            return Ok(serde_json::json!({"already_up": true, "init_pid": node.init_pid}));
        }
        // Half a node (process 1 gone, something else left): finish the
        // crash so the restart starts from nothing.
        crash_node(state, name)?;
    }
    if !Path::new("/run/netns").join(&node.netns).exists() {
        bail!(
            "{name}: netns {} is gone; run `faultline lab up` again",
            node.netns
        );
    }
    let t0 = Instant::now();
    let unshare_pid = spawn_node(&state.dir, name, &node.netns, true)?;
    let spec = state
        .node_specs(&[name.to_string()], Duration::from_secs(2))?
        .into_iter()
        .next()
        .with_context(|| format!("no node {name:?}"))?;
    let fresh = LabNode {
        unshare_pid,
        ..node
    };
    let init_pid = wait_node(&state.dir, &fresh, &spec, NODE_TIMEOUT)?;
    for n in state.nodes.iter_mut().filter(|n| n.name == name) {
        n.unshare_pid = unshare_pid;
        n.init_pid = init_pid;
    }
    state.save()?;
    Ok(serde_json::json!({
        "unshare_pid": unshare_pid,
        "init_pid": init_pid,
        "secs": t0.elapsed().as_secs_f64(),
    }))
}

fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Tears the lab down: kills every process in the nodes' namespaces, waits
/// for them to go, deletes namespaces, links, /etc/netns entries and the lab
/// dir. Works from names alone when lab.json is missing or stale.
pub fn down(dir: &Path, bridge: Option<&str>) -> Result<bool> {
    prereq::check_root()?;
    let state = LabState::load(dir).ok();
    let bridge = state
        .as_ref()
        .map(|s| s.bridge.clone())
        .or(bridge.map(str::to_string))
        .unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
    check_bridge(&bridge)?;
    let prefix = format!("{bridge}-n");
    let namespaces: Vec<String> = netns_list()?
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|r| r.bytes().all(|c| c.is_ascii_digit()))
        })
        .collect();
    let mut did = !namespaces.is_empty();
    for ns in &namespaces {
        for pid in netns_pids(ns) {
            // SAFETY: kill(2) with a pid read from the namespace just now.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    // The netns must be empty before deleting it, or veths and sockets linger.
    let deadline = Instant::now() + Duration::from_secs(10);
    for ns in &namespaces {
        loop {
            let pids = netns_pids(ns);
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{ns}: processes {pids:?} did not exit");
            }
            for pid in pids {
                // SAFETY: as above; repeats for processes forked meanwhile.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        run("ip", &["netns", "del", ns])?;
        let etc = Path::new("/etc/netns").join(ns);
        if etc.exists() {
            fs::remove_dir_all(&etc)?;
        }
    }
    // Killed node processes linger as zombies until init reaps them (they
    // are not our children); wait so `down` really leaves no process.
    if let Some(st) = &state {
        for n in &st.nodes {
            for pid in [n.unshare_pid, n.init_pid] {
                while is_lab_process(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    let _ = fs::remove_dir(Path::new("/etc/netns")); // only if empty
    // veths die with their netns; this catches ones whose netns is gone.
    for entry in fs::read_dir("/sys/class/net")?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == bridge
            || name
                .strip_prefix(&format!("{bridge}v"))
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()))
        {
            // A veth may vanish on its own while its netns is being freed.
            if let Err(e) = run("ip", &["link", "del", &name])
                && link_exists(&name)
            {
                return Err(e);
            }
            did = true;
        }
    }
    if link_exists(&bridge) {
        bail!("bridge {bridge} still exists");
    }
    if dir.join(MARKER).exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        did = true;
    }
    Ok(did)
}
