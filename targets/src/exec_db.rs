//! Bring-your-own system: the `exec` target's DB side, as shell hooks in a
//! TOML file (`--db-hooks FILE`), run on the nodes over SSH like any other
//! target's commands. The client side is [`crate::exec`].
//!
//! ```toml
//! name = "etcd"                                   # in messages
//! install = "command -v etcd || apt-get install -y etcd-server"
//! stop = "kill -9 $(cat /opt/etcd/pid); rm -rf /opt/etcd"   # teardown, also before setup
//! start = "mkdir -p /opt/etcd; cd /opt/etcd; setsid nohup etcd --name {node} … & echo $! > /opt/etcd/pid"
//! ready = "curl -fsS http://{addr}:2379/health"   # retried until it exits 0
//! pidfile = "/opt/etcd/pid"                       # kill and pause faults signal it
//! logs = ["/opt/etcd/etcd.log"]                   # fetched into the run's nodes/<node>/
//! ```
//!
//! Every hook is optional (no hooks: the system is already running on the
//! nodes). Placeholders, replaced before a hook runs: `{node}` (the node's
//! name), `{addr}` (its address), `{nodes}` (`n1=addr1,n2=addr2,…`, every
//! node). `stop` runs once per node without knowing which (it is also the
//! teardown after the run), so it may use `{nodes}` only.
//!
//! - `restart`: the heal of a kill fault (default: `start`); must do
//!   nothing when the server runs.
//! - `ready-timeout`: seconds `ready` is retried for (default 30, at most 55).
//! - kill and pause faults send signals to the pid in `pidfile` (which
//!   `start` must write); without one they fail, naming the file.

use faultline_nemesis::NemesisKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{Cancelled, Clock, Db, DbContext, Kind, Step, TargetInfo};
use crate::exec::{ExecConfig, ExecTarget};
use crate::{BoxFuture, Target};

/// Longest `ready-timeout`: the whole retry loop is one SSH command, which
/// the runner gives 60 s.
pub const MAX_READY_S: f64 = 55.0;

/// A hooks file. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Hooks {
    pub name: Option<String>,
    pub install: Option<String>,
    pub stop: Option<String>,
    pub start: Option<String>,
    pub restart: Option<String>,
    pub ready: Option<String>,
    pub ready_timeout: Option<f64>,
    pub pidfile: Option<String>,
    #[serde(default)]
    pub logs: Vec<String>,
}

impl Hooks {
    /// Parses and checks a hooks file's text; errors name `file` (and the
    /// line, for TOML errors).
    pub fn parse(file: &str, text: &str) -> Result<Hooks, String> {
        let h: Hooks = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        if let Some(s) = &h.stop
            && (s.contains("{node}") || s.contains("{addr}"))
        {
            return Err(format!(
                "{file}: `stop` uses {{node}} or {{addr}}, but it runs as the teardown, the \
                 same command on every node; use {{nodes}}"
            ));
        }
        if let Some(t) = h.ready_timeout
            && !(t > 0.0 && t <= MAX_READY_S)
        {
            return Err(format!(
                "{file}: ready-timeout must be between 0 and {MAX_READY_S} seconds"
            ));
        }
        for (k, v) in [
            ("install", &h.install),
            ("stop", &h.stop),
            ("start", &h.start),
            ("restart", &h.restart),
            ("ready", &h.ready),
            ("pidfile", &h.pidfile),
        ] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("{file}: `{k}` is empty (leave it out instead)"));
            }
        }
        Ok(h)
    }

    /// Reads and parses a hooks file.
    pub fn load(path: &Path) -> Result<Hooks, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading --db-hooks {}: {e}", path.display()))?;
        Hooks::parse(&path.display().to_string(), &text)
    }
}

/// A system deployed by hooks, driven by an external client command.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecDb {
    pub hooks: Hooks,
    pub hooks_file: PathBuf,
    pub client_cmd: String,
    /// node name → address.
    pub nodes: BTreeMap<String, String>,
    /// The same, in the test's order.
    order: Vec<(String, String)>,
    what: String,
}

impl ExecDb {
    pub fn new(
        hooks: Hooks,
        hooks_file: PathBuf,
        client_cmd: String,
        nodes: Vec<(String, String)>,
    ) -> Result<ExecDb, String> {
        for (n, a) in &nodes {
            for s in [n, a] {
                // Placeholders are pasted into shell text as they are.
                if s.is_empty()
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
                {
                    return Err(format!(
                        "node {n} ({a}): names and addresses used in hooks may hold only \
                         letters, digits and . - _ : [ ]"
                    ));
                }
            }
        }
        Ok(ExecDb {
            what: hooks.name.clone().unwrap_or_else(|| "exec".into()),
            hooks,
            hooks_file,
            client_cmd,
            nodes: nodes.iter().cloned().collect(),
            order: nodes,
        })
    }

    /// `n1=addr1,n2=addr2,…`.
    pub fn nodes_list(&self) -> String {
        self.order
            .iter()
            .map(|(n, a)| format!("{n}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A hook with the placeholders of `node` filled in (`None`: no such
    /// hook, or no such node).
    pub fn hook(&self, hook: Option<&String>, node: &str) -> Option<String> {
        let addr = self.nodes.get(node)?;
        Some(
            hook?
                .replace("{node}", node)
                .replace("{addr}", addr)
                .replace("{nodes}", &self.nodes_list()),
        )
    }

    /// `ready` in a retry loop, run on the node: exits 0 as soon as the
    /// hook does, else after `ready-timeout` s fails with the hook's last
    /// output and the tail of the first log.
    pub fn ready_command(&self, node: &str) -> Option<String> {
        let ready = self.hook(self.hooks.ready.as_ref(), node)?;
        let t = self.hooks.ready_timeout.unwrap_or(30.0).ceil() as u64;
        let log = self
            .hooks
            .logs
            .first()
            .map(|l| format!("; echo \"last lines of {l}:\" >&2; tail -3 {l} >&2"))
            .unwrap_or_default();
        // `$( … )` runs the hook in a subshell, so an `exit` in it ends only
        // that try; the newline before `}` ends a trailing comment.
        Some(format!(
            "end=$(( $(date +%s) + {t} )); while :; do \
             out=$( {{ {ready}\n}} 2>&1 ) && exit 0; \
             if [ \"$(date +%s)\" -ge \"$end\" ]; then \
             echo \"not ready after {t} s; the ready hook said: $out\" >&2{log}; exit 1; fi; \
             sleep 0.3; done"
        ))
    }
}

/// The catalogue row.
pub fn info() -> TargetInfo {
    TargetInfo {
        name: "exec",
        description: "any system: the DB side as shell hooks in a TOML file (--db-hooks FILE), \
                      the client as a local command that reads operations as JSON lines \
                      (--client-cmd CMD); docs/exec.md"
            .into(),
        workloads: faultline_workloads::Workload::ALL.to_vec(),
        faults: vec![
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::Crash,
            NemesisKind::Bandwidth,
            NemesisKind::Loss,
            NemesisKind::Latency,
        ],
        clock: Clock::OutsideLab(
            "in the lab clocks are faked per process by libfaketime, which the hooks' \
             start command would have to preload; outside the lab the real clock is set",
        ),
        bugs: Vec::new(),
        needs_node_binary: false,
        kind: Kind::Deployed(build),
    }
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options("exec", &ctx.options, &["client-cmd", "db-hooks"])?;
    let Some(cmd) = ctx
        .options
        .get("client-cmd")
        .filter(|c| !c.trim().is_empty())
    else {
        return Err("the exec target needs --client-cmd CMD (docs/exec.md)".into());
    };
    let (hooks, file) = match ctx.options.get("db-hooks") {
        Some(f) => (Hooks::load(Path::new(f))?, PathBuf::from(f)),
        // No hooks: the system already runs on the nodes.
        None => (Hooks::default(), PathBuf::new()),
    };
    Ok(Box::new(ExecDb::new(
        hooks,
        file,
        cmd.clone(),
        ctx.nodes.clone(),
    )?))
}

impl Db for ExecDb {
    fn what(&self) -> &str {
        &self.what
    }

    fn addresses(&self) -> &BTreeMap<String, String> {
        &self.nodes
    }

    fn setup(&self) -> Vec<Step<'_>> {
        let w = &self.what;
        let mut steps = Vec::new();
        let h = &self.hooks;
        for (label, hook) in [
            ("install", &h.install),
            ("cleanup", &h.stop),
            ("start", &h.start),
        ] {
            if hook.is_some() {
                steps.push(Step::Each {
                    what: format!("{w} {label} hook"),
                    cmd: Box::new(move |n| self.hook(hook.as_ref(), n)),
                });
            }
        }
        if h.ready.is_some() {
            steps.push(Step::Each {
                what: format!("{w} ready hook"),
                cmd: Box::new(move |n| self.ready_command(n)),
            });
        }
        steps
    }

    fn install_command(&self) -> String {
        self.hooks.install.clone().unwrap_or_else(|| "true".into())
    }

    fn teardown_command(&self) -> String {
        match &self.hooks.stop {
            Some(s) => s.replace("{nodes}", &self.nodes_list()),
            None => "true".into(),
        }
    }

    fn start_command(&self, node: &str) -> Option<String> {
        self.hook(self.hooks.start.as_ref(), node)
    }

    fn restart_command(&self, node: &str) -> Option<String> {
        self.hook(self.hooks.restart.as_ref(), node)
            .or_else(|| self.start_command(node))
    }

    fn pidfile(&self) -> &str {
        self.hooks
            .pidfile
            .as_deref()
            .unwrap_or("/nonexistent/the-db-hooks-file-declares-no-pidfile")
    }

    fn log_file(&self) -> &str {
        self.hooks.logs.first().map_or("/dev/null", String::as_str)
    }

    fn log_files(&self) -> Vec<String> {
        self.hooks.logs.clone()
    }

    fn json(&self) -> (&'static str, serde_json::Value) {
        (
            "exec",
            serde_json::json!({
                "client_cmd": self.client_cmd,
                "db_hooks": self.hooks_file,
                "hooks": self.hooks,
            }),
        )
    }

    fn wait_ready<'a>(
        &'a self,
        _deadline: Duration,
        _cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        // The ready hook ran as a setup step, on the nodes.
        Box::pin(async { Ok(()) })
    }

    fn target(&self) -> Arc<dyn Target> {
        Arc::new(ExecTarget::new(ExecConfig {
            cmd: self.client_cmd.clone(),
            nodes: self.order.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(text: &str) -> ExecDb {
        ExecDb::new(
            Hooks::parse("h.toml", text).unwrap(),
            "h.toml".into(),
            "true".into(),
            vec![
                ("n1".into(), "10.0.0.1".into()),
                ("n2".into(), "10.0.0.2".into()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn placeholders_are_filled_per_node() {
        let d = db(r#"
            start = "run --name {node} --listen {addr} --cluster {nodes}"
            stop = "stop {nodes}"
            pidfile = "/opt/x.pid"
            logs = ["/opt/x.log"]
        "#);
        assert_eq!(
            d.start_command("n2").unwrap(),
            "run --name n2 --listen 10.0.0.2 --cluster n1=10.0.0.1,n2=10.0.0.2"
        );
        assert_eq!(d.restart_command("n1"), d.start_command("n1"));
        assert_eq!(d.teardown_command(), "stop n1=10.0.0.1,n2=10.0.0.2");
        assert_eq!(d.pidfile(), "/opt/x.pid");
        assert_eq!(d.log_files(), ["/opt/x.log"]);
        assert!(d.start_command("n9").is_none());
        // cleanup and start: no install hook, no ready hook.
        assert_eq!(d.setup().len(), 2);
    }

    #[test]
    fn the_ready_hook_is_retried_on_the_node_and_says_why_it_gave_up() {
        let d = db(
            "ready = \"echo not yet {node}; false # a comment\"\nready-timeout = 1\nlogs = [\"/nonexistent.log\"]",
        );
        let c = d.ready_command("n1").unwrap();
        let t0 = std::time::Instant::now();
        let o = std::process::Command::new("sh")
            .args(["-c", &c])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("not ready after 1 s; the ready hook said: not yet n1"),
            "{err}"
        );
        assert!(err.contains("last lines of /nonexistent.log"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let d = db("ready = \"exit 0\"");
        let o = std::process::Command::new("sh")
            .args(["-c", &d.ready_command("n2").unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success());
    }

    #[test]
    fn bad_files_are_refused_naming_file_and_key() {
        let e = Hooks::parse("h.toml", "strat = \"x\"").unwrap_err();
        assert!(e.contains("h.toml") && e.contains("strat"), "{e}");
        let e = Hooks::parse("h.toml", "start = 3").unwrap_err();
        assert!(e.contains("h.toml") && e.contains("line 1"), "{e}");
        let e = Hooks::parse("h.toml", "stop = \"kill {node}\"").unwrap_err();
        assert!(e.contains("use {nodes}"), "{e}");
        let e = Hooks::parse("h.toml", "ready-timeout = 600").unwrap_err();
        assert!(e.contains("ready-timeout"), "{e}");
        let e = Hooks::parse("h.toml", "start = \"  \"").unwrap_err();
        assert!(e.contains("`start` is empty"), "{e}");
        let ctx = DbContext::default();
        let e = build("exec", &ctx).err().unwrap();
        assert!(e.contains("--client-cmd"), "{e}");
        let mut ctx = DbContext::default();
        ctx.options.insert("client-cmd".into(), "x".into());
        ctx.options
            .insert("db-hooks".into(), "/nonexistent.toml".into());
        let e = build("exec", &ctx).err().unwrap();
        assert!(e.contains("/nonexistent.toml"), "{e}");
    }

    #[test]
    fn the_example_hooks_file_parses() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/exec/etcd.toml");
        let h = Hooks::load(Path::new(p)).unwrap();
        assert!(h.start.is_some() && h.pidfile.is_some() && h.ready.is_some());
    }

    #[test]
    fn odd_node_names_are_refused() {
        let e = ExecDb::new(
            Hooks::default(),
            PathBuf::new(),
            "x".into(),
            vec![("n1".into(), "1.2.3.4; rm -rf /".into())],
        )
        .unwrap_err();
        assert!(e.contains("n1"), "{e}");
    }
}
