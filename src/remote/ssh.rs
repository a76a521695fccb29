//! The SSH backend: one long-lived libssh2 session per node; files move
//! over SFTP (scp when the node's sshd has no sftp subsystem).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ssh2::{CheckResult, KnownHostFileKind, Session};

use super::{ExecOutput, NodeSpec, Remote};
use faultline_nemesis::fault::shell_quote;

pub struct SshRemote {
    spec: NodeSpec,
    /// None after a timeout left the session in an unknown state; the next
    /// call reconnects.
    session: Option<Session>,
}

impl SshRemote {
    /// Connects, verifies the host key and authenticates, all within
    /// `spec.connect_timeout`. Errors name the node.
    pub fn connect(spec: NodeSpec) -> Result<Self> {
        let session = open_session(&spec)
            .with_context(|| format!("{} ({}:{})", spec.name, spec.host, spec.port))?;
        Ok(SshRemote {
            spec,
            session: Some(session),
        })
    }

    fn session(&mut self) -> Result<&Session> {
        if self.session.is_none() {
            let s = open_session(&self.spec)?;
            self.session = Some(s);
        }
        self.session.as_ref().ok_or_else(|| anyhow!("no session"))
    }

    /// Wraps `cmd` for the node: `sudo` when asked, and a first line that
    /// writes the command's process group to `pgfile`, so a timed-out
    /// command can be killed from a second connection.
    fn wrap(&self, cmd: &str, pgfile: Option<&str>) -> String {
        let cmd = match pgfile {
            // Field 5 of /proc/PID/stat is the process group. The command
            // runs in the user's login shell, as sshd would run it.
            Some(f) => format!(
                "read -r _ _ _ _ pg _ < /proc/$$/stat; echo \"$pg\" > {f}; \
                 \"${{SHELL:-sh}}\" -c {q}; r=$?; rm -f {f}; exit $r",
                q = shell_quote(cmd)
            ),
            None => cmd.to_string(),
        };
        if self.spec.sudo && self.spec.user != "root" {
            format!("sudo -n sh -c {}", shell_quote(&cmd))
        } else {
            cmd
        }
    }

    fn exec_inner(&mut self, cmd: &str, timeout: Duration) -> Result<ExecOutput> {
        let pgfile = format!("/tmp/.faultline-exec-{:016x}.pgid", rand::random::<u64>());
        let full = self.wrap(cmd, Some(&pgfile));
        let session = self.session()?;
        // libssh2's timeout bounds each blocking call; the overall deadline is
        // checked between reads.
        session.set_timeout(timeout.as_millis().clamp(1, u32::MAX as u128) as u32);
        let deadline = Instant::now() + timeout;
        let mut ch = session.channel_session().context("opening channel")?;
        ch.exec(&full).context("starting command")?;
        let result = read_all(&mut ch, deadline, timeout);
        if result.is_err() {
            // Freeing a channel or session on a stuck connection blocks for
            // the call timeout again; keep the teardown short.
            session.set_timeout(200);
        }
        drop(ch);
        result.map_err(|e| {
            // Closing the channel does not stop the command on the node:
            // kill its process group over a fresh connection.
            match self.kill_group(&pgfile) {
                Ok(pg) => e.context(format!(
                    "killed the command (process group {pg}) on the node"
                )),
                Err(k) => e.context(format!("could not kill the command on the node: {k:#}")),
            }
        })
    }

    /// SIGKILLs the process group recorded in `pgfile`; returns it.
    fn kill_group(&self, pgfile: &str) -> Result<String> {
        let session = open_session(&self.spec)?;
        session.set_timeout(5000);
        let cmd = format!(
            "pg=$(cat {pgfile} 2>/dev/null); rm -f {pgfile}; \
             case \"$pg\" in ''|*[!0-9]*|0|1) echo 'no process group recorded' >&2; exit 1;; esac; \
             kill -KILL -- -\"$pg\" && echo \"$pg\""
        );
        let mut ch = session.channel_session().context("opening channel")?;
        ch.exec(&self.wrap(&cmd, None)).context("starting kill")?;
        let t = Duration::from_secs(5);
        let out = read_all(&mut ch, Instant::now() + t, t)?;
        if out.exit != 0 {
            bail!("exit {}: {}", out.exit, out.stderr.trim());
        }
        Ok(out.stdout.trim().to_string())
    }

    /// `(controller, node)` addresses of this connection as the node sees
    /// it (from `$SSH_CONNECTION`): the address faults must never drop, and
    /// the node's own address on the controller's network.
    pub fn connection_addrs(&mut self) -> Result<(String, String)> {
        let name = self.spec.name.clone();
        let session = self.session()?;
        session.set_timeout(10_000);
        let mut ch = session.channel_session().context("opening channel")?;
        ch.exec("echo $SSH_CONNECTION")
            .context("starting command")?;
        let t = Duration::from_secs(10);
        let out = read_all(&mut ch, Instant::now() + t, t)
            .with_context(|| format!("{name}: reading $SSH_CONNECTION"))?;
        let f: Vec<&str> = out.stdout.split_whitespace().collect();
        match f.as_slice() {
            [client, _, server, _] => Ok((client.to_string(), server.to_string())),
            _ => bail!("{name}: unexpected $SSH_CONNECTION {:?}", out.stdout.trim()),
        }
    }

    fn with_session<T>(&mut self, what: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let r = f(self);
        if r.is_err() {
            // A failed or timed-out call may leave the channel half-read.
            self.session = None;
        }
        r.with_context(|| format!("{}: {what}", self.spec.name))
    }
}

impl Remote for SshRemote {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn exec(&mut self, cmd: &str, timeout: Duration) -> Result<ExecOutput> {
        self.with_session(&format!("exec {cmd:?}"), |s| s.exec_inner(cmd, timeout))
    }

    fn upload(&mut self, local: &Path, remote: &str) -> Result<()> {
        let timeout = self.spec.connect_timeout.max(Duration::from_secs(60));
        self.with_session(&format!("upload to {remote}"), |s| {
            let mut data = Vec::new();
            File::open(local)
                .and_then(|mut f| f.read_to_end(&mut data))
                .with_context(|| format!("reading {}", local.display()))?;
            let session = s.session()?;
            session.set_timeout(timeout.as_millis() as u32);
            // SFTP; scp only for an sshd without the sftp subsystem.
            if let Ok(sftp) = session.sftp() {
                let mut f = sftp
                    .open_mode(
                        Path::new(remote),
                        ssh2::OpenFlags::WRITE
                            | ssh2::OpenFlags::CREATE
                            | ssh2::OpenFlags::TRUNCATE,
                        0o644,
                        ssh2::OpenType::File,
                    )
                    .context("sftp open")?;
                f.write_all(&data).context("sftp write")?;
                return Ok(());
            }
            let mut ch = session
                .scp_send(Path::new(remote), 0o644, data.len() as u64, None)
                .context("scp")?;
            ch.write_all(&data).context("writing")?;
            ch.send_eof()?;
            ch.wait_eof()?;
            ch.close()?;
            ch.wait_close()?;
            Ok(())
        })
    }

    fn download(&mut self, remote: &str, local: &Path) -> Result<()> {
        let timeout = self.spec.connect_timeout.max(Duration::from_secs(60));
        self.with_session(&format!("download {remote}"), |s| {
            let session = s.session()?;
            session.set_timeout(timeout.as_millis() as u32);
            let mut data = Vec::new();
            if let Ok(sftp) = session.sftp() {
                let mut f = sftp.open(Path::new(remote)).context("sftp open")?;
                f.read_to_end(&mut data).context("sftp read")?;
                std::fs::write(local, &data)
                    .with_context(|| format!("writing {}", local.display()))?;
                return Ok(());
            }
            let (mut ch, _stat) = session.scp_recv(Path::new(remote)).context("scp")?;
            ch.read_to_end(&mut data).context("reading")?;
            ch.send_eof()?;
            ch.wait_eof()?;
            ch.close()?;
            ch.wait_close()?;
            std::fs::write(local, &data).with_context(|| format!("writing {}", local.display()))?;
            Ok(())
        })
    }
}

/// Reads stdout, then stderr, then the exit status of a started command.
fn read_all(ch: &mut ssh2::Channel, deadline: Instant, timeout: Duration) -> Result<ExecOutput> {
    let mut stdout = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = ch.read(&mut buf).context("reading stdout")?;
        if n == 0 {
            break;
        }
        stdout.extend_from_slice(&buf[..n]);
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}");
        }
    }
    let mut stderr = Vec::new();
    ch.stderr()
        .read_to_end(&mut stderr)
        .context("reading stderr")?;
    ch.wait_close().context("closing channel")?;
    let exit = ch.exit_status().context("reading exit status")?;
    Ok(ExecOutput {
        exit,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

fn open_session(spec: &NodeSpec) -> Result<Session> {
    let addr = (spec.host.as_str(), spec.port)
        .to_socket_addrs()
        .context("resolving address")?
        .next()
        .ok_or_else(|| anyhow!("no address for {}", spec.host))?;
    let t = spec.connect_timeout;
    let tcp = TcpStream::connect_timeout(&addr, t).context("connecting")?;
    let mut session = Session::new().context("creating ssh session")?;
    session.set_tcp_stream(tcp);
    // Bounds the handshake and auth: an sshd that accepts but never answers
    // (stopped, overloaded) fails here instead of hanging.
    session.set_timeout(t.as_millis().clamp(1, u32::MAX as u128) as u32);
    session
        .handshake()
        .with_context(|| format!("ssh handshake (timeout {t:?})"))?;
    check_host_key(&session, spec)?;
    session
        .userauth_pubkey_file(&spec.user, None, &spec.key, None)
        .with_context(|| {
            format!(
                "authenticating as {} with {}",
                spec.user,
                spec.key.display()
            )
        })?;
    if !session.authenticated() {
        bail!("authentication as {} failed", spec.user);
    }
    // Detects a dead peer on an otherwise idle long-lived session.
    session.set_keepalive(true, 15);
    Ok(session)
}

fn check_host_key(session: &Session, spec: &NodeSpec) -> Result<()> {
    let (key, key_type) = session
        .host_key()
        .ok_or_else(|| anyhow!("server sent no host key"))?;
    let mut kh = session.known_hosts().context("known_hosts")?;
    if spec.known_hosts.exists() {
        kh.read_file(&spec.known_hosts, KnownHostFileKind::OpenSSH)
            .with_context(|| format!("reading {}", spec.known_hosts.display()))?;
    }
    match kh.check_port(&spec.host, spec.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound if spec.accept_new_host_keys => {
            // Parallel connects share one file: reload and append under a lock
            // so no thread overwrites another's new key.
            static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let mut kh = session.known_hosts().context("known_hosts")?;
            if spec.known_hosts.exists() {
                kh.read_file(&spec.known_hosts, KnownHostFileKind::OpenSSH)
                    .with_context(|| format!("reading {}", spec.known_hosts.display()))?;
            }
            let host = if spec.port == 22 {
                spec.host.clone()
            } else {
                format!("[{}]:{}", spec.host, spec.port)
            };
            kh.add(&host, key, &spec.name, key_type.into())
                .context("adding host key")?;
            kh.write_file(&spec.known_hosts, KnownHostFileKind::OpenSSH)
                .with_context(|| format!("writing {}", spec.known_hosts.display()))?;
            Ok(())
        }
        CheckResult::NotFound => bail!(
            "host key for {} not in {} (use --accept-new-host-keys to record it)",
            spec.host,
            spec.known_hosts.display()
        ),
        CheckResult::Mismatch => bail!(
            "HOST KEY MISMATCH for {} against {}: refusing to connect",
            spec.host,
            spec.known_hosts.display()
        ),
        CheckResult::Failure => bail!("could not check the host key of {}", spec.host),
    }
}
