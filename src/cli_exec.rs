//! `faultline exec [--nodes …] -- CMD`: one command on many nodes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::cli_lab::DirArg;
use crate::nodes::NodeArgs;
use crate::remote::{self, Remote};

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    nodes: NodeArgs,
    /// How to reach the nodes: ssh, or nsenter (lab nodes only: enters the
    /// node's namespaces from this host, no sshd involved; much faster).
    #[arg(long, value_enum, default_value = "ssh")]
    transport: Transport,
    /// Seconds to connect and authenticate before giving up on a node.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Seconds the command may run; then it is killed on the node (its
    /// whole process group) and reported as an error.
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

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ssh,
    Nsenter,
}

fn secs(what: &str, s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| crate::usage(format!("--{what} must be a positive number of seconds")))
}

pub fn run(a: ExecArgs) -> Result<ExitCode> {
    let connect_timeout = secs("connect-timeout", a.connect_timeout)?;
    let timeout = secs("timeout", a.timeout)?;
    let resolved = a.nodes.resolve(&a.dir.dir, connect_timeout)?;
    // Node → its process 1, for the nsenter transport.
    let pids: std::collections::BTreeMap<String, u32> = match (a.transport, &resolved.lab) {
        (Transport::Ssh, _) => Default::default(),
        (Transport::Nsenter, Some(lab)) => lab
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.init_pid))
            .collect(),
        (Transport::Nsenter, None) => {
            return Err(crate::usage(
                "--transport nsenter works only for lab nodes (named n1,… or none given)",
            ));
        }
    };
    let specs = resolved.specs;
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
                let (cmd, uploads, downloads, pids) = (&cmd, &uploads, &downloads, &pids);
                (
                    spec.name.clone(),
                    s.spawn(move || {
                        let mut r: Box<dyn Remote> = match pids.get(&spec.name) {
                            Some(pid) => Box::new(remote::NsenterRemote::new(&spec.name, *pid)?),
                            None => Box::new(remote::SshRemote::connect(spec.clone())?),
                        };
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
    let mut out = crate::out::stdout();
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
                errln!("faultline: {e:#}");
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
