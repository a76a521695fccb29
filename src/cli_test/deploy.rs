//! Setting the system up on the nodes over SSH (install, clean, upload,
//! start, wait until ready) and fetching its logs afterwards.

use super::*;

pub(super) const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd(node)` on every remote in parallel; errors name the node.
pub(super) fn on_all(
    remotes: &mut [SshRemote],
    what: &str,
    cmd: impl Fn(&str) -> String + Sync,
) -> Result<Vec<(String, String)>> {
    let results = remote::fan_out(remotes.iter_mut(), |r| {
        let c = cmd(r.name());
        r.exec(&c, CMD_TIMEOUT)
    });
    let mut errors = Vec::new();
    let mut outs = Vec::new();
    for (node, r) in results {
        match r {
            Ok(o) if o.exit == 0 => outs.push((node, o.stdout.trim().to_string())),
            Ok(o) => errors.push(format!("{node}: exit {}: {}", o.exit, o.stderr.trim())),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        Ok(outs)
    } else {
        Err(anyhow!("{what} failed on {}", errors.join("; ")))
    }
}

/// Uploads `local` to `remote` on every node.
pub(super) fn upload_all(remotes: &mut [SshRemote], local: &Path, remote_path: &str) -> Result<()> {
    let mut errors = Vec::new();
    for (node, r) in remote::fan_out(remotes.iter_mut(), |r| r.upload(local, remote_path)) {
        if let Err(e) = r {
            errors.push(format!("{node}: {e:#}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(
            "uploading {} failed on {}",
            local.display(),
            errors.join("; ")
        ))
    }
}

pub(super) type DeployError = (Vec<SshRemote>, anyhow::Error);

/// Connects to the nodes and runs the system's setup steps (install,
/// clean up what an earlier run left, upload, start), then waits until it
/// is ready.
pub(super) fn deploy(
    specs: &[NodeSpec],
    db: &dyn Db,
    names: &[String],
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
) -> std::result::Result<(Vec<SshRemote>, ()), DeployError> {
    let mut remotes = Vec::new();
    let mut errors = Vec::new();
    for r in remote::connect_all(specs) {
        match r {
            Ok(r) => remotes.push(r),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        return Err((
            remotes,
            anyhow!("cannot reach nodes: {}", errors.join("; ")),
        ));
    }
    let w = db.what().to_string();
    for step in db.setup() {
        if cancel.is_cancelled() {
            return Err((remotes, anyhow!("interrupted during setup")));
        }
        let r = match &step {
            Step::Upload { local, remote } => upload_all(&mut remotes, local, remote),
            Step::Each { what, cmd } => {
                // Nodes with nothing to do run `true`.
                on_all(&mut remotes, what, |n| {
                    cmd(n).unwrap_or_else(|| "true".into())
                })
                .map(|_| ())
            }
            Step::Ready => wait_ready(&mut remotes, db, rt, cancel),
        };
        if let Err(e) = r {
            return Err((remotes, e));
        }
    }
    errln!("faultline: {w} ready on {}", names.join(","));
    Ok((remotes, ()))
}

/// Waits until the system is ready; on failure the error carries the last
/// log lines of the members it names.
pub(super) fn wait_ready(
    remotes: &mut [SshRemote],
    db: &dyn Db,
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
) -> Result<()> {
    let t0 = Instant::now();
    let cancelled = || cancel.is_cancelled();
    let ready = rt.block_on(db.wait_ready(Duration::from_secs(30), &cancelled));
    if let Err(e) = ready {
        // Say why, from the unready members' own logs.
        let log = db.log_file();
        let tails = on_all(remotes, "reading logs", |_| {
            format!("tail -2 {log} 2>/dev/null; true")
        })
        .unwrap_or_default();
        let mut msg = e;
        for (n, t) in tails {
            let unready = msg.contains(&format!("{n} ("));
            if unready && !t.is_empty() {
                msg.push_str(&format!("\n  {n}: {}", t.replace('\n', "\n      ")));
            }
        }
        bail!(msg);
    }
    errln!(
        "faultline: {} healthy in {:.1} s",
        db.what(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Downloads each node's log files into `nodes/<node>/`.
pub(super) fn fetch_logs(
    remotes: &mut [SshRemote],
    db: &dyn Db,
    run: &faultline_results::RunDir,
) -> Vec<(String, Result<()>)> {
    let mut dirs = std::collections::BTreeMap::new();
    for r in remotes.iter() {
        match run.node_dir(r.name()) {
            Ok(d) => {
                dirs.insert(r.name().to_string(), d);
            }
            Err(e) => {
                errln!("faultline: warning: {e}");
            }
        }
    }
    let files = db.log_files();
    remote::fan_out(remotes.iter_mut(), |r| {
        let dir = dirs
            .get(r.name())
            .ok_or_else(|| anyhow!("no local dir for {}", r.name()))?;
        for f in &files {
            let base = Path::new(f)
                .file_name()
                .map(|b| b.to_os_string())
                .unwrap_or_else(|| "log".into());
            let local = dir.join(base);
            // A session opened before a crash fault died with its node; the
            // failed call drops it and the retry reconnects.
            if r.download(f, &local).is_err() {
                r.download(f, &local)?;
            }
        }
        Ok(())
    })
}
