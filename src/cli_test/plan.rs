//! `faultline test`'s flags checked and resolved into a [`Plan`] before any
//! node is touched: target, workload, faults, bugs, options, timings.

use super::*;

/// Validated options.
pub(super) struct Plan {
    pub(super) target: String,
    pub(super) info: TargetInfo,
    /// For faultline-node targets: the binary to upload.
    pub(super) node_binary: Option<PathBuf>,
    /// Target options (`--db-option`, `--etcd-read-mode`).
    pub(super) options: std::collections::BTreeMap<String, String>,
    pub(super) workload: Workload,
    pub(super) kinds: Vec<NemesisKind>,
    pub(super) nemesis_interval: Duration,
    pub(super) nodes: Option<Vec<String>>,
    pub(super) time_limit: Duration,
    pub(super) op_timeout: Duration,
    pub(super) check_time_limit: Duration,
    pub(super) seed: u64,
    /// `--nemesis-schedule`, parsed.
    pub(super) schedule: Option<nemesis_schedule::Schedule>,
}

/// The faultline-node binary: `--node-binary`, else next to this binary.
pub(super) fn node_binary(given: Option<&Path>) -> Result<PathBuf> {
    let p = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("faultline-node")))
            .unwrap_or_else(|| PathBuf::from("faultline-node")),
    };
    if !p.is_file() {
        return Err(usage(format!(
            "the faultline-node binary is not at {} (build it with `cargo build --release -p \
             faultline-node`, or pass --node-binary)",
            p.display()
        )));
    }
    Ok(p)
}

pub(super) fn secs(flag: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| usage(format!("--{flag} must be a positive number of seconds")))
}

pub(super) fn plan(a: &TestArgs) -> Result<Plan> {
    let target = a.target.as_str();
    let Some(info) = dbs::find(target) else {
        let known: Vec<&str> = dbs::catalogue().iter().map(|t| t.name).collect();
        return Err(usage(format!(
            "unknown --target `{target}` (expected one of {}; `faultline targets` lists them)",
            known.join(", ")
        )));
    };
    if !a.bugs.is_empty() && info.bugs.is_empty() {
        let with: Vec<&str> = dbs::catalogue()
            .iter()
            .filter(|t| !t.bugs.is_empty())
            .map(|t| t.name)
            .collect();
        return Err(usage(format!(
            "--bug: the {target} target has no seeded bugs ({} do)",
            with.join(", ")
        )));
    }
    for b in &a.bugs {
        if !info.bugs.iter().any(|(n, _)| n == b) {
            let known: Vec<&str> = info.bugs.iter().map(|(n, _)| *n).collect();
            return Err(usage(format!(
                "--bug: {target} has no seeded bug `{b}` (it has {})",
                known.join(", ")
            )));
        }
    }
    let node_binary = if info.needs_node_binary {
        Some(node_binary(a.node_binary.as_deref())?)
    } else {
        None
    };
    let mut options =
        dbs::parse_options(&a.db_options).map_err(|e| usage(format!("--db-option {e}")))?;
    if let Some(m) = &a.etcd_read_mode {
        if target != "etcd" {
            return Err(usage("--etcd-read-mode is an option of the etcd target"));
        }
        options.insert("read-mode".into(), m.clone());
    }
    // Named flags of other targets: each is one --db-option.
    for (flag, owner, key, value) in [
        ("--client-cmd", "exec", "client-cmd", a.client_cmd.clone()),
        (
            "--db-hooks",
            "exec",
            "db-hooks",
            a.db_hooks.as_ref().map(|p| p.display().to_string()),
        ),
        (
            "--redis-wait",
            "redis",
            "wait",
            a.redis_wait.map(|n| n.to_string()),
        ),
        (
            "--zk-sync-reads",
            "zookeeper",
            "sync-reads",
            a.zk_sync_reads.then(|| "true".to_string()),
        ),
        ("--isolation", "postgres", "isolation", a.isolation.clone()),
    ] {
        if let Some(v) = value {
            if target != owner {
                return Err(usage(format!("{flag} is an option of the {owner} target")));
            }
            options.insert(key.into(), v);
        }
    }
    // Options and bugs are the builder's to judge: ask it now, on no nodes,
    // so a bad one is refused before any node is touched.
    if let Some(Err(e)) = info.build(&DbContext {
        bugs: a.bugs.clone(),
        binary: node_binary.clone(),
        options: options.clone(),
        ..DbContext::default()
    }) {
        return Err(usage(format!("--target {target}: {e}")));
    }
    let workload: Workload = a.workload.parse().map_err(|e| usage(format!("{e}")))?;
    if !info.workloads.contains(&workload) {
        return Err(usage(format!(
            "--workload {workload}: the {target} target supports {}",
            info.workloads
                .iter()
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let kinds =
        nemesis_driver::parse_list(&a.nemesis).map_err(|e| usage(format!("--nemesis: {e}")))?;
    // Outside the lab the clock helper sets the real clock, which Go reads.
    let outside_lab = a.node_args.nodes_file.is_some()
        || a.node_args
            .nodes
            .iter()
            .any(|e| e.contains(['@', '=', ':', '.']));
    if kinds.iter().any(|k| k.uses_clock()) {
        match info.clock {
            Clock::Everywhere => {}
            Clock::OutsideLab(_) if outside_lab => {}
            Clock::OutsideLab(why) | Clock::Never(why) => {
                return Err(usage(format!(
                    "--nemesis clock cannot be used with --target {target}{}: {why}",
                    if matches!(info.clock, Clock::OutsideLab(_)) {
                        " in the lab"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    if !info.is_deployed() && !kinds.is_empty() {
        return Err(usage(format!(
            "the {target} target runs inside faultline, so faults on nodes cannot reach it: \
             use --nemesis none"
        )));
    }
    if a.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    if a.test_count == 0 {
        return Err(usage("--test-count must be at least 1"));
    }
    if let Some(r) = a.rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(usage(
            "--rate must be a positive number of operations per second",
        ));
    }
    let nodes = Some(a.node_args.entries()?).filter(|n| !n.is_empty());
    if let Some(n) = &nodes {
        for e in n {
            let name = crate::nodes::parse_entry(e)
                .map(|p| p.name)
                .map_err(|e| usage(format!("--nodes: {e}")))?;
            store::validate_name("node", &name).map_err(|e| usage(e.to_string()))?;
        }
    } else if a.node_count == 0 {
        return Err(usage("--node-count must be at least 1"));
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            % 1_000_000_000
    });
    let schedule = nemesis_schedule::load_for_test(a.nemesis_schedule.as_deref(), &kinds)?;
    Ok(Plan {
        target: target.to_string(),
        info,
        node_binary,
        options,
        workload,
        kinds,
        nemesis_interval: secs("nemesis-interval", a.nemesis_interval)?,
        nodes,
        time_limit: secs("time-limit", a.time_limit)?,
        op_timeout: secs("op-timeout", a.op_timeout)?,
        check_time_limit: secs("check-time-limit", a.check_time_limit)?,
        seed,
        schedule,
    })
}
