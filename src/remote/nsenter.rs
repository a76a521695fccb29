//! The nsenter backend, for lab nodes only: commands run in the node's
//! namespaces (network, mount, UTS, PID) entered from the lab host, with no
//! SSH at all. Same view of the node as an SSH session (hostname, private
//! /tmp /opt /root, process table), a few ms per command instead of a
//! round trip through sshd. CI still exercises SSH: this is a shortcut.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{ExecOutput, Remote};
use faultline_nemesis::fault::shell_quote;

pub struct NsenterRemote {
    name: String,
    /// Root-namespace pid of the node's process 1.
    pid: u32,
}

impl NsenterRemote {
    pub fn new(name: &str, pid: u32) -> Result<Self> {
        if !Path::new(&format!("/proc/{pid}/ns/net")).exists() {
            bail!("{name}: its process 1 (pid {pid}) is gone: is the node down?");
        }
        Ok(NsenterRemote {
            name: name.to_string(),
            pid,
        })
    }

    fn spawn(&self, cmd: &str, stdin: Stdio) -> Result<Child> {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-n", "-m", "-u", "-p", "--"])
            .args(["sh", "-c", cmd])
            // The controller's cwd may be a path the node's mounts hide.
            .current_dir("/")
            .env("HOME", "/root")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills the whole command.
            .process_group(0)
            .spawn()
            .with_context(|| format!("{}: running nsenter", self.name))
    }

    /// Waits for `child` with a deadline; on timeout kills its process
    /// group. Output is read on threads so a full pipe cannot block it.
    fn wait(&self, mut child: Child, timeout: Duration) -> Result<(i32, Vec<u8>, Vec<u8>)> {
        let mut out = child.stdout.take().context("stdout")?;
        let mut err = child.stderr.take().context("stderr")?;
        let t_out = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let t_err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().context("waiting")? {
                break s;
            }
            if Instant::now() >= deadline {
                let pg = child.id() as i32;
                // SAFETY: signals the process group we created for it.
                unsafe { libc::kill(-pg, libc::SIGKILL) };
                let _ = child.wait();
                bail!("timed out after {timeout:?}: killed the command (process group {pg})");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stdout = t_out.join().unwrap_or_default();
        let stderr = t_err.join().unwrap_or_default();
        Ok((status.code().unwrap_or(-1), stdout, stderr))
    }
}

impl Remote for NsenterRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn exec(&mut self, cmd: &str, timeout: Duration) -> Result<ExecOutput> {
        let child = self.spawn(cmd, Stdio::null())?;
        let (exit, stdout, stderr) = self
            .wait(child, timeout)
            .with_context(|| format!("{}: exec {cmd:?}", self.name))?;
        Ok(ExecOutput {
            exit,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn upload(&mut self, local: &Path, remote: &str) -> Result<()> {
        let data = std::fs::read(local).with_context(|| format!("reading {}", local.display()))?;
        let mut child = self.spawn(&format!("cat > {}", shell_quote(remote)), Stdio::piped())?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let (exit, _, stderr) = self.wait(child, Duration::from_secs(60))?;
        let w = writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer panicked"))?;
        if exit != 0 {
            bail!(
                "{}: upload to {remote}: {}",
                self.name,
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        w.with_context(|| format!("{}: upload to {remote}", self.name))
    }

    fn download(&mut self, remote: &str, local: &Path) -> Result<()> {
        let child = self.spawn(&format!("cat {}", shell_quote(remote)), Stdio::null())?;
        let (exit, data, stderr) = self.wait(child, Duration::from_secs(60))?;
        if exit != 0 {
            bail!(
                "{}: download {remote}: {}",
                self.name,
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        std::fs::write(local, data).with_context(|| format!("writing {}", local.display()))
    }
}
