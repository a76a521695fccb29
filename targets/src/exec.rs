//! Bring-your-own client: the `exec` target's client side.
//!
//! faultline starts one local process per client (`sh -c CMD`, in its own
//! process group), writes each operation to its stdin as one JSON line and
//! reads one JSON line back from its stdout, the completion. The protocol
//! (docs/exec.md) in short:
//!
//! ```text
//! → {"f":"write","key":3,"value":4}
//! ← {"type":"ok","f":"write","value":4}
//! → {"f":"read","key":3,"value":null}
//! ← {"type":"fail","f":"read","error":"connection refused"}
//! ```
//!
//! - `type` is `ok` (it happened; `value` is the result: a read's value,
//!   a write's value echoed), `fail` (it certainly had no effect) or `info`
//!   (unknown); `f` repeats the operation's; `error` says why (optional).
//! - The environment says where to go: `FAULTLINE_NODE` (this client's
//!   node), `FAULTLINE_NODE_ADDR` (its address), `FAULTLINE_NODES`
//!   (`n1=addr1,n2=addr2,…`), `FAULTLINE_WORKLOAD` (`register`, …) and
//!   `FAULTLINE_OP_TIMEOUT` (seconds the process has for one answer).
//! - A process that exits, answers something that is not such a line
//!   (garbage, another `f`), or does not answer in time: that operation is
//!   `info` (a read that timed out: `fail`), the process is killed, and a
//!   fresh one is started for the next operation. The error names the
//!   client (its serial number, node and pid), the line it printed and the
//!   last lines of its stderr.
//! - bank: before the main phase one process gets
//!   `{"f":"setup","value":{"balances":[20,20,…]}}` and must create the
//!   accounts (idempotently) and answer `ok`.
//!
//! ```
//! use faultline_targets::exec::{ExecConfig, ExecTarget};
//! let t = ExecTarget::new(ExecConfig::new("python3 client.py", [("n1", "10.77.0.11")]));
//! assert_eq!(t.env("n1").unwrap()[2], ("FAULTLINE_NODES".to_string(), "n1=10.77.0.11".to_string()));
//! ```

use crate::{BoxFuture, Client, ClientOpts, Target, TargetError};
use faultline_workloads::{Completion, Op, Value, Workload};
use serde_json::json;
use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Longest answer line read (a bigger one is garbage).
const MAX_LINE: u64 = 16 << 20;
/// stderr lines kept per process, for error messages.
const STDERR_TAIL: usize = 5;
/// Characters of a bad line quoted in an error.
const QUOTE: usize = 200;
/// Client processes whose death is also printed on faultline's stderr
/// (the history has every one; these make a broken command obvious).
const LOUD_DEATHS: u64 = 3;

/// What the exec target's clients run, and against which nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecConfig {
    /// The command, run with `sh -c`.
    pub cmd: String,
    /// node name → address, in the test's order.
    pub nodes: Vec<(String, String)>,
}

impl ExecConfig {
    pub fn new<N: Into<String>, A: Into<String>>(
        cmd: impl Into<String>,
        nodes: impl IntoIterator<Item = (N, A)>,
    ) -> ExecConfig {
        ExecConfig {
            cmd: cmd.into(),
            nodes: nodes
                .into_iter()
                .map(|(n, a)| (n.into(), a.into()))
                .collect(),
        }
    }
}

/// The exec target (client side). See the module docs.
pub struct ExecTarget {
    cfg: ExecConfig,
    /// Serial numbers of client processes, for messages.
    next_id: AtomicU64,
    /// Client processes that died or misbehaved so far.
    deaths: Arc<AtomicU64>,
}

impl ExecTarget {
    pub fn new(cfg: ExecConfig) -> ExecTarget {
        ExecTarget {
            cfg,
            next_id: AtomicU64::new(1),
            deaths: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The environment of a client on `node` (without the workload and
    /// timeout, which come from the client's options).
    pub fn env(&self, node: &str) -> Option<Vec<(String, String)>> {
        let addr = self.cfg.nodes.iter().find(|(n, _)| n == node)?.1.clone();
        let nodes = self
            .cfg
            .nodes
            .iter()
            .map(|(n, a)| format!("{n}={a}"))
            .collect::<Vec<_>>()
            .join(",");
        Some(vec![
            ("FAULTLINE_NODE".into(), node.to_string()),
            ("FAULTLINE_NODE_ADDR".into(), addr),
            ("FAULTLINE_NODES".into(), nodes),
        ])
    }
}

impl Target for ExecTarget {
    fn name(&self) -> &str {
        "exec"
    }

    /// Whatever the command implements: faultline cannot know, so every
    /// workload is offered and an operation the client does not know is
    /// its to refuse (`fail`).
    fn workloads(&self) -> &[Workload] {
        &Workload::ALL
    }

    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            let mut env = self
                .env(node)
                .ok_or_else(|| TargetError::UnknownNode(node.to_string()))?;
            // Answer a little before the runner gives up, so this client
            // (which knows reads from writes) classifies the timeout.
            let timeout = opts.timeout.mul_f64(0.9).max(Duration::from_millis(10));
            env.push((
                "FAULTLINE_WORKLOAD".into(),
                opts.workload.workload.to_string(),
            ));
            env.push((
                "FAULTLINE_OP_TIMEOUT".into(),
                format!("{:.3}", timeout.as_secs_f64()),
            ));
            let mut c = ExecClient {
                cmd: self.cfg.cmd.clone(),
                node: node.to_string(),
                env,
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                timeout,
                balances: opts.workload.initial_balances(),
                workload: opts.workload.workload,
                proc: None,
                deaths: Arc::clone(&self.deaths),
            };
            // Started now, so a command that cannot even be spawned is an
            // open error; starting a client changes no test state.
            c.spawn().map_err(|message| TargetError::Open {
                node: node.to_string(),
                message,
            })?;
            Ok(Box::new(c) as Box<dyn Client>)
        })
    }
}

/// A running client process.
struct Proc {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Proc {
    /// SIGKILL to the whole process group (`sh -c` may have children).
    fn kill(&mut self) {
        kill_group(self.pid);
        let _ = self.child.start_kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kill_group(pid: u32) {
    if let Ok(p) = i32::try_from(pid)
        && p > 0
    {
        // SAFETY: kill(2) has no memory preconditions; -p names the process
        // group this client's process leads (process_group(0) at spawn).
        unsafe {
            libc::kill(-p, libc::SIGKILL);
        }
    }
}

/// One worker's client: a process, restarted after every misbehaviour.
pub struct ExecClient {
    cmd: String,
    node: String,
    env: Vec<(String, String)>,
    id: u64,
    timeout: Duration,
    workload: Workload,
    balances: Vec<i64>,
    proc: Option<Proc>,
    deaths: Arc<AtomicU64>,
}

/// How an exchange with the process went wrong.
enum Broken {
    /// The op was certainly not delivered (the process could not be
    /// started).
    NotSent(String),
    /// Delivered (or maybe): the outcome is unknown.
    Unknown(String),
    /// No answer in time.
    Timeout(String),
}

impl ExecClient {
    fn who(&self) -> String {
        match &self.proc {
            Some(p) => format!("exec client {} on {} (pid {})", self.id, self.node, p.pid),
            None => format!("exec client {} on {}", self.id, self.node),
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&self.cmd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting `sh -c {}`: {e}", self.cmd))?;
        let (Some(stdin), Some(stdout), Some(stderr), Some(pid)) = (
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
            child.id(),
        ) else {
            return Err("the client process has no pipes".into());
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let t = Arc::clone(&tail);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(mut q) = t.lock() {
                    if q.len() == STDERR_TAIL {
                        q.pop_front();
                    }
                    q.push_back(l);
                }
            }
        });
        self.proc = Some(Proc {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout),
            stderr: tail,
        });
        Ok(())
    }

    /// Kills the process; the next operation starts a fresh one. Returns
    /// why it went: exit status and the last stderr lines.
    async fn discard(&mut self) -> String {
        let Some(mut p) = self.proc.take() else {
            return String::new();
        };
        // A process that already exited has a status; one that did not is
        // killed now.
        let status = match tokio::time::timeout(Duration::from_millis(200), p.child.wait()).await {
            Ok(Ok(s)) => format!("; it exited with {s}"),
            _ => {
                p.kill();
                String::new()
            }
        };
        // Let the stderr reader catch the last lines.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tail: Vec<String> = p
            .stderr
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        if tail.is_empty() {
            status
        } else {
            format!("{status}; its stderr ended with: {}", tail.join(" | "))
        }
    }

    /// Sends one request line and reads one answer line.
    async fn exchange(&mut self, line: &str) -> Result<String, Broken> {
        if self.proc.is_none() {
            self.spawn().map_err(Broken::NotSent)?;
        }
        let timeout = self.timeout;
        let Some(p) = self.proc.as_mut() else {
            return Err(Broken::NotSent("no client process".into()));
        };
        let io = async {
            p.stdin.write_all(line.as_bytes()).await?;
            p.stdin.write_all(b"\n").await?;
            p.stdin.flush().await?;
            let mut buf = Vec::new();
            (&mut p.stdout)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)
                .await?;
            Ok::<_, std::io::Error>(buf)
        };
        match tokio::time::timeout(timeout, io).await {
            Err(_) => Err(Broken::Timeout(format!(
                "no answer within {:.1} s",
                timeout.as_secs_f64()
            ))),
            Ok(Err(e)) => Err(Broken::Unknown(format!("talking to the process: {e}"))),
            Ok(Ok(buf)) if buf.is_empty() => {
                Err(Broken::Unknown("the process closed its stdout".into()))
            }
            Ok(Ok(buf)) if !buf.ends_with(b"\n") => Err(Broken::Unknown(format!(
                "an unterminated line `{}`",
                quote(&buf)
            ))),
            Ok(Ok(buf)) => Ok(String::from_utf8_lossy(&buf).trim_end().to_string()),
        }
    }

    /// Sends `req` (whose `f` is `f`) and returns the answer, or says why
    /// there is none (the process is then discarded).
    async fn call(&mut self, f: &str, req: &Value, read_only: bool) -> Completion {
        let who = self.who();
        let broken = match self.exchange(&req.to_string()).await {
            Ok(line) => match parse_answer(f, &line) {
                Ok(c) => return c,
                Err(e) => Broken::Unknown(format!("answered `{}`: {e}", quote(line.as_bytes()))),
            },
            Err(b) => b,
        };
        let why = self.discard().await;
        let n = self.deaths.fetch_add(1, Ordering::Relaxed) + 1;
        let c = match broken {
            Broken::NotSent(e) => Completion::fail(format!("{who}: {e}")),
            // A read has no effect, so a read with no answer failed.
            Broken::Timeout(e) if read_only => Completion::fail(format!("{who}: {e}")),
            Broken::Timeout(e) | Broken::Unknown(e) => Completion::info(format!("{who}: {e}{why}")),
        };
        if n <= LOUD_DEATHS {
            let e = c.error.as_deref().unwrap_or("");
            eprintln!("faultline: warning: {e} (restarting it for the next operation)");
        }
        c
    }
}

/// Parses a completion line for an operation `f`.
pub fn parse_answer(f: &str, line: &str) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON line ({e})"))?;
    let Some(o) = v.as_object() else {
        return Err("expected a JSON object".into());
    };
    match o.get("f").and_then(Value::as_str) {
        Some(g) if g == f => {}
        Some(g) => return Err(format!("it answers `{g}`, but the operation was `{f}`")),
        None => return Err("no `f`".into()),
    }
    let error = match o.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    match o.get("type").and_then(Value::as_str) {
        Some("ok") => match o.get("value") {
            Some(v) => Ok(Completion::ok(v.clone())),
            None => Err("an `ok` answer needs a `value` (a write's value echoed)".into()),
        },
        Some("fail") => Ok(Completion::fail(
            error.unwrap_or_else(|| "the client said fail".into()),
        )),
        Some("info") => Ok(Completion::info(
            error.unwrap_or_else(|| "the client said info".into()),
        )),
        Some(t) => Err(format!("`type` must be ok, fail or info, not `{t}`")),
        None => Err("no `type` (ok, fail or info)".into()),
    }
}

fn quote(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_end();
    if s.chars().count() > QUOTE {
        format!("{}…", s.chars().take(QUOTE).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The request line of an operation.
pub fn request(op: &Op) -> Value {
    let mut r = json!({"f": op.f, "value": op.value});
    if let Some(k) = &op.key {
        r["key"] = k.clone();
    }
    r
}

impl Client for ExecClient {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.workload != Workload::Bank {
                return Ok(());
            }
            let req = json!({"f": "setup", "value": {"balances": self.balances}});
            let c = self.call("setup", &req, false).await;
            match c.outcome {
                faultline_workloads::Outcome::Ok => Ok(()),
                _ => Err(format!(
                    "the client's bank setup did not succeed: {}",
                    c.error.unwrap_or_default()
                )),
            }
        })
    }

    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move { self.call(&op.f, &request(op), op.is_read_only()).await })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(mut p) = self.proc.take() {
                p.kill();
                let _ = tokio::time::timeout(Duration::from_millis(500), p.child.wait()).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_workloads::{Outcome, WorkloadOptions};

    #[test]
    fn answers_parse_or_say_why_not() {
        let ok = parse_answer("write", r#"{"type":"ok","f":"write","value":3}"#).unwrap();
        assert_eq!(ok, Completion::ok(json!(3)));
        let f = parse_answer("read", r#"{"type":"fail","f":"read","error":"refused"}"#).unwrap();
        assert_eq!(f, Completion::fail("refused"));
        let i = parse_answer("cas", r#"{"type":"info","f":"cas"}"#).unwrap();
        assert_eq!(i.outcome, Outcome::Info);
        for (line, why) in [
            ("hello", "not a JSON line"),
            ("[1]", "JSON object"),
            (r#"{"type":"ok","f":"read","value":1}"#, "was `write`"),
            (r#"{"type":"ok","f":"write"}"#, "needs a `value`"),
            (
                r#"{"type":"maybe","f":"write","value":1}"#,
                "ok, fail or info",
            ),
            (r#"{"f":"write","value":1}"#, "no `type`"),
        ] {
            let e = parse_answer("write", line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn requests_carry_f_key_and_value() {
        let r = request(&Op::new("cas", Some(json!(2)), json!([1, 3])));
        assert_eq!(r, json!({"f": "cas", "key": 2, "value": [1, 3]}));
        let r = request(&Op::new("add", None, json!(7)));
        assert_eq!(r, json!({"f": "add", "value": 7}));
    }

    async fn client(cmd: &str, timeout_ms: u64) -> Box<dyn Client> {
        let t = ExecTarget::new(ExecConfig::new(cmd, [("n1", "127.0.0.1")]));
        let mut opts = ClientOpts::new(WorkloadOptions::new(Workload::Register));
        opts.timeout = Duration::from_millis(timeout_ms);
        t.client("n1", &opts).await.unwrap()
    }

    fn write(v: i64) -> Op {
        Op::new("write", Some(json!(1)), json!(v))
    }

    /// An echo client in sh: answers ok with the op's value. Real
    /// processes, no mocks: these are the protocol's error paths.
    const ECHO: &str = r#"while read -r l; do v=$(printf %s "$l" | sed 's/.*"value":\([^,}]*\).*/\1/'); f=$(printf %s "$l" | sed 's/.*"f":"\([a-z]*\)".*/\1/'); echo "{\"type\":\"ok\",\"f\":\"$f\",\"value\":$v,\"node\":\"$FAULTLINE_NODE\"}"; done"#;

    #[tokio::test]
    async fn a_working_client_answers_every_op() {
        let mut c = client(ECHO, 5000).await;
        for v in 0..3 {
            let d = c.invoke(&write(v)).await;
            assert_eq!(d, Completion::ok(json!(v)));
        }
        c.close().await;
    }

    #[tokio::test]
    async fn a_client_that_dies_gives_info_and_is_restarted() {
        // Answers the first op of each process, then exits 3 after writing
        // to stderr: every second op finds it dead.
        let cmd = "read -r l; echo '{\"type\":\"ok\",\"f\":\"write\",\"value\":1}'; \
             read -r l; echo 'boom: lost my connection' >&2; exit 3"
            .to_string();
        let mut c = client(&cmd, 5000).await;
        assert_eq!(c.invoke(&write(1)).await, Completion::ok(json!(1)));
        let d = c.invoke(&write(2)).await;
        assert_eq!(d.outcome, Outcome::Info, "{d:?}");
        let e = d.error.unwrap();
        assert!(
            e.starts_with("exec client ") && e.contains(" on n1 (pid "),
            "{e}"
        );
        assert!(e.contains("closed its stdout"), "{e}");
        assert!(e.contains("exit status: 3"), "{e}");
        assert!(e.contains("boom: lost my connection"), "{e}");
        // A fresh process answers the next op.
        assert_eq!(c.invoke(&write(1)).await, Completion::ok(json!(1)));
        c.close().await;
    }

    #[tokio::test]
    async fn garbage_gives_info_naming_the_line_and_is_restarted() {
        // First process prints garbage; later ones (a marker file says
        // so) work.
        let dir = std::env::temp_dir().join(format!("fl-exec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mark = dir.join("started");
        let cmd = format!(
            "if [ -e {m} ]; then {ECHO}; else touch {m}; read -r l; echo 'Traceback: oops'; sleep 30; fi",
            m = mark.display()
        );
        let mut c = client(&cmd, 5000).await;
        let d = c.invoke(&write(5)).await;
        assert_eq!(d.outcome, Outcome::Info, "{d:?}");
        let e = d.error.unwrap();
        assert!(e.contains("answered `Traceback: oops`"), "{e}");
        assert!(e.contains("not a JSON line"), "{e}");
        assert!(e.contains("exec client") && e.contains("on n1"), "{e}");
        assert_eq!(c.invoke(&write(5)).await, Completion::ok(json!(5)));
        c.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_silent_client_times_out_read_fail_write_info() {
        let mut c = client("sleep 30", 300).await;
        let t0 = std::time::Instant::now();
        let r = c
            .invoke(&Op::new("read", Some(json!(1)), Value::Null))
            .await;
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!(r.error.unwrap().contains("no answer within"));
        let w = c.invoke(&write(1)).await;
        assert_eq!(w.outcome, Outcome::Info, "{w:?}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        c.close().await;
    }

    #[tokio::test]
    async fn the_environment_names_node_nodes_and_workload() {
        let cmd = r#"read -r l; echo "{\"type\":\"ok\",\"f\":\"read\",\"value\":\"$FAULTLINE_NODE $FAULTLINE_NODE_ADDR $FAULTLINE_NODES $FAULTLINE_WORKLOAD\"}""#;
        let t = ExecTarget::new(ExecConfig::new(
            cmd,
            [("n1", "10.0.0.1"), ("n2", "10.0.0.2")],
        ));
        let opts = ClientOpts::new(WorkloadOptions::new(Workload::Set));
        let mut c = t.client("n2", &opts).await.unwrap();
        let d = c.invoke(&Op::new("read", None, Value::Null)).await;
        assert_eq!(
            d,
            Completion::ok(json!("n2 10.0.0.2 n1=10.0.0.1,n2=10.0.0.2 set"))
        );
        assert!(t.client("n9", &opts).await.is_err());
    }
}
