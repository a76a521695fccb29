//! Shared helpers for the lab tests: run the real binary, bring up a lab
//! that is always torn down (Drop guard), and run commands on its nodes.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_faultline");

mod skip;
#[allow(unused_imports)] // each test file uses a different subset
pub use skip::{SKIP_LOG, in_ci, skip_without_file, skip_without_tools, skipped, which};

/// What the lab needs that this machine lacks, if anything.
pub fn lab_missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut missing = Vec::new();
    if !root {
        missing.push("not root (the lab makes namespaces and bridges)".to_string());
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        missing.push("no /usr/sbin/sshd (apt-get install openssh-server)".to_string());
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

/// True (after reporting why, see [`skipped`]) when the lab cannot run
/// here; under `CI=true` it panics instead.
pub fn skip() -> bool {
    lab_missing().is_some_and(|why| skipped(&why))
}

/// [`skip`], and also unless every tool (executable, Debian package) is in
/// PATH.
pub fn skip_lab(tools: &[(&str, &str)]) -> bool {
    skip() || skip_without_tools(tools)
}

pub fn faultline(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running faultline")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A lab for one test file: its own dir, bridge and subnet, so test files
/// may run in parallel; a file lock serializes runs of the same file
/// (namespaces and bridges are global to the machine).
pub struct Lab {
    pub dir: String,
    pub bridge: String,
    /// e.g. `10.77.3`
    pub prefix: String,
    pub up_secs: f64,
    _lock: File,
}

impl Lab {
    pub fn up(name: &str, net: u8, nodes: usize) -> Lab {
        let lock = File::create(format!("/run/faultline-test-{name}.lock")).expect("lock file");
        // SAFETY: flock on a file we own; released when the file closes.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        // Built before `lab up` so a failed up is torn down too.
        let mut lab = Lab {
            dir: format!("/srv/faultline-test-{name}"),
            bridge: format!("flbr{net}"),
            prefix: format!("10.77.{net}"),
            up_secs: 0.0,
            _lock: lock,
        };
        // Leftovers of an aborted earlier run.
        faultline(&["lab", "down", "--dir", &lab.dir, "--bridge", &lab.bridge]);
        let t0 = Instant::now();
        let subnet = format!("{}.0/24", lab.prefix);
        let n = nodes.to_string();
        let o = faultline(&[
            "lab",
            "up",
            "--dir",
            &lab.dir,
            "--bridge",
            &lab.bridge,
            "--subnet",
            &subnet,
            "--nodes",
            &n,
        ]);
        let up_secs = t0.elapsed().as_secs_f64();
        assert!(o.status.success(), "lab up failed: {}", text(&o));
        println!("lab up ({nodes} nodes) took {up_secs:.2} s");
        lab.up_secs = up_secs;
        lab
    }

    pub fn addr(&self, i: usize) -> String {
        format!("{}.{}", self.prefix, 10 + i)
    }

    pub fn netns(&self, node: &str) -> String {
        format!("{}-{node}", self.bridge)
    }

    /// Runs the binary with this lab's `--dir` added to `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut v: Vec<&str> = args.to_vec();
        // Before a `--` command separator, if any.
        let at = v.iter().position(|a| *a == "--").unwrap_or(v.len());
        v.splice(at..at, ["--dir", self.dir.as_str()]);
        faultline(&v)
    }

    pub fn run_ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `faultline exec --json` on `nodes` (all if empty): node → (exit, stdout).
    pub fn exec(&self, nodes: &str, cmd: &str) -> BTreeMap<String, (i64, String)> {
        let mut args = vec!["exec", "--json", "--dir", &self.dir];
        if !nodes.is_empty() {
            args.extend(["--nodes", nodes]);
        }
        args.extend(["--", cmd]);
        let o = faultline(&args);
        let mut m = BTreeMap::new();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let node = v["node"].as_str().expect("node").to_string();
            assert!(v.get("error").is_none(), "{node}: {}", v["error"]);
            m.insert(
                node,
                (
                    v["exit"].as_i64().unwrap_or(-1),
                    v["stdout"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
        assert!(!m.is_empty(), "exec {cmd:?} gave no output: {}", text(&o));
        m
    }

    /// Like `exec` but asserts every node exited 0.
    pub fn exec_ok(&self, nodes: &str, cmd: &str) -> BTreeMap<String, String> {
        self.exec(nodes, cmd)
            .into_iter()
            .map(|(n, (code, out))| {
                assert_eq!(code, 0, "{n}: {cmd:?} exited {code}: {out}");
                (n, out)
            })
            .collect()
    }

    /// Asserts no process named exactly `name` runs on `nodes` (all if
    /// empty): `pgrep -x` exits 1 there (0: found; 2, 3: pgrep failed, which
    /// must not pass as "gone").
    pub fn assert_no_process(&self, nodes: &str, name: &str) {
        for (n, (code, out)) in self.exec(nodes, &format!("pgrep -x {name}")) {
            assert_eq!(code, 1, "{n}: {name} left (pgrep -x exited {code}): {out}");
        }
    }

    /// Asserts `path` does not exist on `nodes` (all if empty).
    pub fn assert_no_file(&self, nodes: &str, path: &str) {
        let cmd = format!("ls -ld {path} 2>/dev/null; test ! -e {path}");
        for (n, (code, out)) in self.exec(nodes, &cmd) {
            assert_eq!(code, 0, "{n}: {path} left: {out}");
        }
    }

    pub fn lab_json(&self) -> serde_json::Value {
        let p = PathBuf::from(&self.dir).join("lab.json");
        serde_json::from_str(&std::fs::read_to_string(p).expect("lab.json"))
            .expect("lab.json parse")
    }

    /// Asserts nothing of this lab is left on the machine.
    pub fn assert_gone(&self, pids: &[u32]) {
        let ns = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip");
        let ns = String::from_utf8_lossy(&ns.stdout);
        assert!(
            !ns.contains(&format!("{}-n", self.bridge)),
            "netns left: {ns}"
        );
        let links: Vec<String> = std::fs::read_dir("/sys/class/net")
            .expect("sysfs")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // The bridge itself and its veths `{bridge}v{i}`; not the links
            // of another lab whose bridge merely starts the same (flbr1 vs
            // flbr10).
            .filter(|n| {
                n == &self.bridge
                    || n.strip_prefix(&format!("{}v", self.bridge))
                        .is_some_and(|i| i.chars().all(|c| c.is_ascii_digit()))
            })
            .collect();
        assert!(links.is_empty(), "links left: {links:?}");
        for p in pids {
            assert!(
                !Path::new(&format!("/proc/{p}")).exists(),
                "process {p} left"
            );
        }
        assert!(!Path::new(&self.dir).exists(), "{} left", self.dir);
        for i in 1..=9 {
            let etc = format!("/etc/netns/{}-n{i}", self.bridge);
            assert!(!Path::new(&etc).exists(), "{etc} left");
        }
    }

    /// Every pid recorded in lab.json.
    pub fn pids(&self) -> Vec<u32> {
        let v = self.lab_json();
        v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .flat_map(|n| [n["unshare_pid"].as_u64(), n["init_pid"].as_u64()])
            .flatten()
            .map(|p| p as u32)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let o = faultline(&["lab", "down", "--dir", &self.dir, "--bridge", &self.bridge]);
        if !o.status.success() {
            eprintln!("lab down failed: {}", text(&o));
        }
    }
}

/// Waits for a child with a deadline; kills it and panics on timeout.
pub fn wait_timeout(child: &mut std::process::Child, t: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if t0.elapsed() > t {
            let _ = child.kill();
            panic!("child did not exit within {t:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A store directory under the temp dir, removed on drop.
pub struct TmpStore(pub std::path::PathBuf);

impl TmpStore {
    pub fn new(tag: &str) -> TmpStore {
        let p = std::env::temp_dir().join(format!("faultline-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TmpStore(p)
    }
    pub fn s(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TmpStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A JSON file a run wrote (results.json, test.json); panics naming it.
pub fn read_json(p: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The parseable lines of a JSON-lines history (a missing file is empty).
pub fn history_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Builds faultline-node (another package, so cargo does not build it for
/// a test of this one) and returns its path next to `faultline`.
pub fn node_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "faultline-node", "--bin", "faultline-node"]);
    if BIN.contains("/release/") {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("running cargo build");
    assert!(st.success(), "building faultline-node failed");
    let p = Path::new(BIN).with_file_name("faultline-node");
    assert!(p.is_file(), "no {}", p.display());
    p
}
