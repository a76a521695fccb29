//! `faultline exec [--nodes …] -- CMD`: one command on many nodes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::cli_lab::DirArg;
use crate::lab::LabState;
use crate::remote::{self, NodeSpec, Remote};

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Nodes: lab names (n1,n3) or [user@]host[:port]. Default: every lab node.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Private key for non-lab nodes (default: the lab's key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// known_hosts for non-lab nodes (default: the lab's).
    #[arg(long)]
    known_hosts: Option<PathBuf>,
    /// Record host keys not yet in known_hosts instead of refusing.
    #[arg(long)]
    accept_new_host_keys: bool,
    /// Run the command through `sudo -n` (non-root users).
    #[arg(long)]
    sudo: bool,
    /// Seconds to connect and authenticate before giving up on a node.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Seconds the command may run.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// One JSON object per node: {"node","exit","stdout","stderr"} or {"node","error"}.
    #[arg(long)]
    json: bool,
    /// Copy LOCAL to REMOTE on each node before the command (LOCAL:REMOTE). Repeatable.
    #[arg(long, value_name = "LOCAL:REMOTE")]
    upload: Vec<String>,
    /// Copy REMOTE from each node to LOCAL_DIR/<node>/ after the command. Repeatable.
    #[arg(long, value_name = "REMOTE:LOCAL_DIR")]
    download: Vec<String>,
    /// The command (run by the node's shell).
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

fn secs(what: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| crate::usage(format!("--{what} must be a positive number of seconds")))
}

/// Resolves `--nodes` against the lab (if any) and explicit hosts.
pub fn resolve_nodes(a: &ExecArgs, connect_timeout: Duration) -> Result<Vec<NodeSpec>> {
    let lab = LabState::load(&a.dir.dir);
    if a.nodes.is_empty() {
        return lab?.node_specs(&[], connect_timeout);
    }
    let mut specs = Vec::new();
    for n in &a.nodes {
        if let Ok(lab) = &lab
            && lab.nodes.iter().any(|x| &x.name == n)
        {
            specs.extend(lab.node_specs(std::slice::from_ref(n), connect_timeout)?);
            continue;
        }
        let (user, hostport) = n.split_once('@').unwrap_or(("root", n));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| crate::usage(format!("bad port in {n:?}")))?,
            ),
            None => (hostport, 22),
        };
        if host.is_empty() || user.is_empty() {
            return Err(crate::usage(format!(
                "bad node {n:?}: use NAME or [user@]host[:port]"
            )));
        }
        let from_lab = |f: fn(&LabState) -> PathBuf| lab.as_ref().ok().map(f);
        let key = a
            .key
            .clone()
            .or_else(|| from_lab(|l| l.key.clone()))
            .ok_or_else(|| {
                crate::usage(format!("{n}: --key is needed (no lab to take it from)"))
            })?;
        let known_hosts = a
            .known_hosts
            .clone()
            .or_else(|| from_lab(|l| l.known_hosts.clone()))
            .ok_or_else(|| crate::usage(format!("{n}: --known-hosts is needed (no lab)")))?;
        specs.push(NodeSpec {
            name: n.clone(),
            host: host.to_string(),
            port,
            user: user.to_string(),
            key,
            known_hosts,
            accept_new_host_keys: false,
            sudo: false,
            connect_timeout,
        });
    }
    Ok(specs)
}

pub fn run(a: ExecArgs) -> Result<ExitCode> {
    let connect_timeout = secs("connect-timeout", a.connect_timeout)?;
    let timeout = secs("timeout", a.timeout)?;
    let mut specs = resolve_nodes(&a, connect_timeout)?;
    for s in &mut specs {
        s.accept_new_host_keys |= a.accept_new_host_keys;
        s.sudo |= a.sudo;
    }
    let split = |s: &String, flag: &str| -> Result<(PathBuf, String)> {
        s.split_once(':')
            .filter(|(l, r)| !l.is_empty() && !r.is_empty())
            .map(|(l, r)| (PathBuf::from(l), r.to_string()))
            .ok_or_else(|| crate::usage(format!("--{flag} {s:?}: expected A:B")))
    };
    let uploads = a
        .upload
        .iter()
        .map(|s| split(s, "upload"))
        .collect::<Result<Vec<_>>>()?;
    let downloads = a
        .download
        .iter()
        .map(|s| {
            split(s, "download").map(|(r, l)| (r.to_string_lossy().into_owned(), PathBuf::from(l)))
        })
        .collect::<Result<Vec<_>>>()?;
    let cmd = a.cmd.join(" ");
    // Connect and run per node in one thread each, so a slow node delays
    // only itself.
    let results: Vec<(String, Result<remote::ExecOutput>)> = std::thread::scope(|s| {
        let hs: Vec<_> = specs
            .iter()
            .map(|spec| {
                let (cmd, uploads, downloads) = (&cmd, &uploads, &downloads);
                (
                    spec.name.clone(),
                    s.spawn(move || {
                        let mut r = remote::SshRemote::connect(spec.clone())?;
                        for (local, remote) in uploads {
                            r.upload(local, remote)?;
                        }
                        let out = r.exec(cmd, timeout)?;
                        for (remote, dir) in downloads {
                            let dir = dir.join(&spec.name);
                            std::fs::create_dir_all(&dir)
                                .with_context(|| format!("creating {}", dir.display()))?;
                            let base = std::path::Path::new(remote)
                                .file_name()
                                .map(|b| b.to_os_string())
                                .unwrap_or_else(|| "download".into());
                            r.download(remote, &dir.join(base))?;
                        }
                        Ok(out)
                    }),
                )
            })
            .collect();
        hs.into_iter()
            .map(|(n, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("{n}: thread panicked")));
                (n, r)
            })
            .collect()
    });
    let mut out = std::io::stdout().lock();
    let (mut failed, mut errors) = (0, 0);
    for (node, r) in &results {
        match r {
            Ok(o) => {
                if o.exit != 0 {
                    failed += 1;
                }
                if a.json {
                    let v = serde_json::json!({"node": node, "exit": o.exit, "stdout": o.stdout, "stderr": o.stderr});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "== {node} (exit {}) ==", o.exit)?;
                    out.write_all(o.stdout.as_bytes())?;
                    if !o.stderr.is_empty() {
                        writeln!(out, "-- {node} stderr --")?;
                        out.write_all(o.stderr.as_bytes())?;
                    }
                }
            }
            Err(e) => {
                errors += 1;
                if a.json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"node": node, "error": format!("{e:#}")})
                    )?;
                }
                eprintln!("faultline: {e:#}");
            }
        }
    }
    out.flush().context("stdout")?;
    Ok(if errors > 0 {
        ExitCode::from(3)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
