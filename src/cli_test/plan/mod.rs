//! The test plan: every option of one `faultline test`, as one typed
//! value. `test.json` is this value serialised (plus what the run learnt,
//! [`RunRecord`]); `test --plan FILE`, `replay` and each `matrix` cell load
//! it, and `faultline test`'s flags are overrides of it (docs/plan.md).
//!
//! Adding a flag means editing this file: the flag in [`TestArgs`], the
//! field in [`Plan`] (its default in `Plan::default`) and its line in
//! [`Plan::apply`]. `every_test_flag_reaches_the_plan_and_round_trips`
//! fails until all three are there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

/// The `plan_version` this faultline writes and reads.
pub const PLAN_VERSION: u32 = 1;

#[derive(Args, Debug, Clone, Default)]
#[command(after_long_help = "\
Exit codes: 0 valid, 1 invalid, 2 unknown (or interrupted with no anomaly found),
3 the run failed (setup, SSH, etcd not healthy), 64 bad arguments. With
--test-count K the worst wins: invalid > run failed > unknown > valid.

With --plan FILE (a test.json, or a plan written by hand: docs/plan.md) the
file's options run; a flag given alongside replaces the file's value.

Example (3-node etcd in the local lab, brought up when needed):
  faultline test --target etcd --workload register \\
      --nemesis partition,kill,pause --time-limit 30")]
pub struct TestArgs {
    /// Run this plan (a run's test.json, or a plan file, docs/plan.md);
    /// flags given alongside replace its values
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// System under test: etcd (deployed on the nodes), raft, paxos or zab
    /// (faultline's own servers, deployed on the nodes), or noop
    /// (in-process); `faultline targets` lists them. Default: etcd
    #[arg(long)]
    pub target: Option<String>,

    /// Enable a seeded bug of a raft/paxos/zab target (repeatable; see
    /// `faultline targets`)
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,

    /// The faultline-node binary to upload to the nodes (default: next to
    /// this faultline binary)
    #[arg(long, value_name = "FILE")]
    pub node_binary: Option<PathBuf>,

    /// Workload: register, list-append, rw-register, set, bank, counter,
    /// queue, unique-ids, lock, … (docs/workloads.md). Default: the
    /// target's first in `faultline targets` (register, or its only one)
    #[arg(long)]
    pub workload: Option<String>,

    /// Faults: a comma list of kinds (--help lists them), all (every kind
    /// the target supports) or none. Default: the target's standard mix
    #[arg(long, value_name = "LIST", long_help = crate::nemesis_driver::long_help())]
    pub nemesis: Option<String>,

    /// Seconds between nemesis actions (heal the last fault, start the
    /// next). Default: 10
    #[arg(long, value_name = "S")]
    pub nemesis_interval: Option<f64>,

    /// Packet loss of the loss nemesis, fixed instead of random (0-1); with
    /// other kinds, each of their faults also runs under this loss
    /// (docs/swim.md sweeps it)
    #[arg(long, value_name = "P", value_parser = crate::nemesis_driver::parse_loss_prob)]
    pub loss_prob: Option<f64>,

    /// Start the faults of this nemesis-schedule.json (a run's, as
    /// `faultline replay` does) at its times on its nodes, not random ones
    #[arg(long, value_name = "FILE")]
    pub nemesis_schedule: Option<PathBuf>,

    /// Nodes to deploy on (--nodes/--nodes-file: lab names, or machines as
    /// [ALIAS=][USER@]HOST[:PORT]; default: the first --node-count nodes of
    /// the lab, which is brought up when it is not)
    #[command(flatten)]
    pub node_args: NodeArgs,

    /// Nemesis state dir for nodes outside the lab (see `nemesis heal`)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Number of nodes when --nodes is not given. Default: 3
    #[arg(long)]
    pub node_count: Option<usize>,

    /// Concurrent client processes. Default: 5
    #[arg(long)]
    pub concurrency: Option<usize>,

    /// Operations per second over all clients (default: the workload's,
    /// --help lists them)
    #[arg(long, long_help = faultline::runner::pace::rate_help())]
    pub rate: Option<f64>,

    /// Seconds of the main phase. Default: 60
    #[arg(long, value_name = "S")]
    pub time_limit: Option<f64>,

    /// Seconds before an operation is recorded as `info` (unknown
    /// outcome). Default: 5
    #[arg(long, value_name = "S")]
    pub op_timeout: Option<f64>,

    /// Seed of the generator and the nemesis (default: from the clock;
    /// always written to test.json)
    #[arg(long)]
    pub seed: Option<u64>,

    /// Run the test K times (seeds SEED, SEED+1, …); the worst verdict
    /// wins. Default: 1
    #[arg(long, value_name = "K")]
    pub test_count: Option<u32>,

    /// Leave etcd running (and its data) after the test
    #[arg(long)]
    pub leave_db_running: bool,

    /// Store directory for runs. Default: store
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// etcd reads: linearizable (through raft) or serializable (local, may
    /// be stale); the same as --db-option read-mode=MODE
    #[arg(long, value_name = "MODE")]
    pub etcd_read_mode: Option<String>,

    /// exec target: the client command, one local process per worker,
    /// run with `sh -c`, speaking JSON lines (docs/exec.md); the same as
    /// --db-option client-cmd=CMD
    #[arg(long, value_name = "CMD")]
    pub client_cmd: Option<String>,

    /// exec target: a TOML file of shell hooks that install, start and stop
    /// the system on the nodes; the same as --db-option db-hooks=FILE
    #[arg(long, value_name = "FILE")]
    pub db_hooks: Option<PathBuf>,

    /// redis target: WAIT N after each write, and a write that fewer than
    /// N replicas acknowledged is info; the same as --db-option wait=N
    #[arg(long, value_name = "N")]
    pub redis_wait: Option<u32>,
    /// ZooKeeper: sync(path) before every read, so a server cut off from
    /// the leader cannot answer stale; the same as --db-option sync-reads
    #[arg(long)]
    pub zk_sync_reads: bool,
    /// postgres transactions: read-committed, repeatable-read or
    /// serializable (the default); the same as --db-option isolation=LEVEL
    #[arg(long, value_name = "LEVEL")]
    pub isolation: Option<String>,

    /// A target option, KEY or KEY=VALUE (repeatable): etcd read-mode;
    /// raft/paxos/zab protocol options such as lease-read (passed to
    /// faultline-node as --option)
    #[arg(long = "db-option", value_name = "OPT")]
    pub db_options: Vec<String>,

    /// Lab directory (used when no nodes are given, and for faults).
    /// Default: /srv/faultline-lab
    #[arg(long, value_name = "D")]
    pub lab_dir: Option<PathBuf>,

    /// Seconds the checker may search before answering unknown.
    /// Default: 120
    #[arg(long, value_name = "S")]
    pub check_time_limit: Option<f64>,

    /// For the membership workload (the `detector` checker): a run whose
    /// false-positive rate (the share of observations of up, reachable
    /// members that showed them suspect or dead) exceeds R is invalid.
    /// Default: measured, not judged
    #[arg(long, value_name = "R", value_parser = crate::nemesis_driver::parse_loss_prob)]
    pub max_false_positive_rate: Option<f64>,
}

/// One test's options: what `faultline test` runs, and the first half of
/// its `test.json` (the field names are test.json's; durations are in
/// seconds, `_s`). A plan file may leave any field out: it takes the
/// default below, which is the flag's.
///
/// ```json
/// {"plan_version": 1, "target": "postgres", "workload": "list-append",
///  "db_options": {"isolation": "repeatable-read"},
///  "nemesis": ["partition"], "time_limit_s": 30, "seed": 7}
/// ```
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct Plan {
    /// [`PLAN_VERSION`]; a plan of another version is refused.
    pub plan_version: u32,
    pub target: String,
    pub workload: Workload,
    /// Seeded bugs (`--bug`).
    pub bugs: Vec<String>,
    /// The faultline-node binary; in test.json, the one that ran.
    pub node_binary: Option<PathBuf>,
    /// Target options: `--db-option`, and the named flags that are one
    /// (`--isolation`, `--etcd-read-mode`, `--redis-wait`, …).
    pub db_options: BTreeMap<String, String>,
    /// Fault kinds; empty for none.
    #[serde(with = "kinds")]
    pub nemesis: Vec<NemesisKind>,
    pub nemesis_interval_s: f64,
    pub loss_prob: Option<f64>,
    /// A nemesis-schedule.json to follow instead of drawing faults.
    pub nemesis_schedule: Option<PathBuf>,
    /// `--nodes` entries, or a nodes file's (`[ALIAS=][USER@]HOST[:PORT]`
    /// or lab names); empty for the first `node_count` lab nodes.
    pub nodes: Vec<String>,
    /// SSH settings for `nodes` outside the lab (flags, or the nodes
    /// file's inventory).
    pub ssh_key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    pub sudo: bool,
    pub state_dir: Option<PathBuf>,
    pub node_count: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub time_limit_s: f64,
    pub op_timeout_s: f64,
    pub check_time_limit_s: f64,
    /// `None`: from the clock. In test.json, the seed the run used.
    pub seed: Option<u64>,
    pub test_count: u32,
    pub leave_db_running: bool,
    pub store: PathBuf,
    pub lab_dir: PathBuf,
    pub max_false_positive_rate: Option<f64>,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            plan_version: PLAN_VERSION,
            target: "etcd".into(),
            workload: Workload::Register,
            bugs: Vec::new(),
            node_binary: None,
            db_options: BTreeMap::new(),
            nemesis: Vec::new(),
            nemesis_interval_s: 10.0,
            loss_prob: None,
            nemesis_schedule: None,
            nodes: Vec::new(),
            ssh_key: None,
            known_hosts: None,
            accept_new_host_keys: false,
            sudo: false,
            state_dir: None,
            node_count: 3,
            concurrency: 5,
            rate: None,
            time_limit_s: 60.0,
            op_timeout_s: 5.0,
            check_time_limit_s: 120.0,
            seed: None,
            test_count: 1,
            leave_db_running: false,
            store: PathBuf::from("store"),
            lab_dir: PathBuf::from(lab::DEFAULT_DIR),
            max_false_positive_rate: None,
        }
    }
}

/// `nemesis` as kind names (`["partition", "kill"]`), as `--nemesis` takes them.
mod kinds {
    use super::NemesisKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(k: &[NemesisKind], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(k.iter().map(|k| k.name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NemesisKind>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for n in names {
            if n == "none" {
                continue;
            }
            let k: NemesisKind = n.parse().map_err(serde::de::Error::custom)?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }
}

impl Plan {
    /// A plan from a JSON value (a test.json, or a plan file): refuses a
    /// missing or other `plan_version`. Keys that are not the plan's (what
    /// test.json adds about the run) are ignored.
    pub fn from_json(v: &Value, what: &str) -> Result<Plan> {
        match v.get("plan_version") {
            None => {
                return Err(usage(format!(
                    "{what} has no `plan_version`: it is not a test plan, or was written by a \
                     faultline older than plan version {PLAN_VERSION}; its options can be given \
                     as `faultline test` flags"
                )));
            }
            Some(n) if n.as_u64() != Some(u64::from(PLAN_VERSION)) => {
                return Err(usage(format!(
                    "{what}: plan_version {n} is not one this faultline reads (it reads \
                     {PLAN_VERSION})"
                )));
            }
            Some(_) => {}
        }
        serde_json::from_value(v.clone()).map_err(|e| usage(format!("{what}: {e}")))
    }

    /// [`Plan::from_json`] of a file.
    pub fn load(path: &Path) -> Result<Plan> {
        let what = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| usage(format!("--plan {what}: {e}")))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| usage(format!("--plan {what}: {e}")))?;
        Plan::from_json(&v, &what)
    }

    /// The plan of a `faultline test` command line: `--plan`'s file, or the
    /// defaults, with every flag given on the line in place of its value.
    /// A workload or nemesis that neither the file nor a flag names is the
    /// target's ([`Plan::target_defaults`]).
    pub fn from_args(a: &TestArgs) -> Result<Plan> {
        let (mut p, named) = match &a.plan {
            Some(f) => {
                let p = Plan::load(f)?;
                // Plan::load parsed it; a second read only asks which keys it has.
                let v: Value = std::fs::read_to_string(f)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                (p, (v.get("workload").is_some(), v.get("nemesis").is_some()))
            }
            None => (Plan::default(), (false, false)),
        };
        p.apply(a)?;
        p.target_defaults(
            !named.0 && a.workload.is_none(),
            !named.1 && a.nemesis.is_none(),
        );
        Ok(p)
    }

    /// Puts the target's default workload (the first it lists) and its
    /// standard fault mix ([`TargetInfo::standard_mix`]) in place of the
    /// plan's, for those the user did not name. An unknown target keeps
    /// the plan's values (the check names the target).
    pub fn target_defaults(&mut self, workload: bool, nemesis: bool) {
        let Some(info) = dbs::find(&self.target) else {
            return;
        };
        if workload && let Some(w) = info.default_workload() {
            self.workload = w;
        }
        if nemesis {
            self.nemesis = if info.is_deployed() {
                info.standard_mix()
            } else {
                Vec::new()
            };
        }
    }

    /// Puts each flag given in `a` in place of the plan's value. The rule:
    /// a flag the user names wins; a list flag (`--bug`, `--nodes`)
    /// replaces the whole list; `--db-option K=V` and the named target
    /// flags replace that one option. `--plan` itself is not read here.
    pub fn apply(&mut self, a: &TestArgs) -> Result<()> {
        fn set<T: Clone>(field: &mut T, flag: &Option<T>) {
            if let Some(v) = flag {
                *field = v.clone();
            }
        }
        fn set_some<T: Clone>(field: &mut Option<T>, flag: &Option<T>) {
            if flag.is_some() {
                field.clone_from(flag);
            }
        }
        set(&mut self.target, &a.target);
        if !a.bugs.is_empty() {
            self.bugs.clone_from(&a.bugs);
        }
        set_some(&mut self.node_binary, &a.node_binary);
        if let Some(w) = &a.workload {
            self.workload = w.parse().map_err(|e| usage(format!("{e}")))?;
        }
        if let Some(n) = &a.nemesis {
            self.nemesis = if n.trim() == "all" {
                // Every kind the target lists (the target flag came first).
                dbs::find(&self.target).map_or_else(Vec::new, |t| t.faults.clone())
            } else {
                nemesis_driver::parse_list(n).map_err(|e| usage(format!("--nemesis: {e}")))?
            };
        }
        set(&mut self.nemesis_interval_s, &a.nemesis_interval);
        set_some(&mut self.loss_prob, &a.loss_prob);
        set_some(&mut self.nemesis_schedule, &a.nemesis_schedule);
        self.apply_nodes(&a.node_args)?;
        set_some(&mut self.state_dir, &a.state_dir);
        set(&mut self.node_count, &a.node_count);
        set(&mut self.concurrency, &a.concurrency);
        set_some(&mut self.rate, &a.rate);
        set(&mut self.time_limit_s, &a.time_limit);
        set(&mut self.op_timeout_s, &a.op_timeout);
        set(&mut self.check_time_limit_s, &a.check_time_limit);
        set_some(&mut self.seed, &a.seed);
        set(&mut self.test_count, &a.test_count);
        self.leave_db_running |= a.leave_db_running;
        set(&mut self.store, &a.store);
        set(&mut self.lab_dir, &a.lab_dir);
        set_some(
            &mut self.max_false_positive_rate,
            &a.max_false_positive_rate,
        );
        let given =
            dbs::parse_options(&a.db_options).map_err(|e| usage(format!("--db-option {e}")))?;
        self.db_options.extend(given);
        // Named flags of one target each: each is one --db-option.
        for (flag, owner, key, value) in [
            (
                "--etcd-read-mode",
                "etcd",
                "read-mode",
                a.etcd_read_mode.clone(),
            ),
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
                if self.target != owner {
                    return Err(usage(format!("{flag} is an option of the {owner} target")));
                }
                self.db_options.insert(key.into(), v);
            }
        }
        Ok(())
    }

    /// `--nodes`/`--nodes-file` replace the nodes (a nodes file's SSH
    /// settings come with it); the SSH flags win over both.
    fn apply_nodes(&mut self, n: &NodeArgs) -> Result<()> {
        if let Some(f) = &n.nodes_file {
            let file = crate::nodes::read_nodes_file(f)?;
            self.nodes = file.entries;
            self.ssh_key = file.key;
            self.known_hosts = file.known_hosts;
            self.sudo = file.sudo;
            self.accept_new_host_keys = file.accept_new_host_keys;
        } else if n.given() {
            self.nodes = n.entries()?;
        }
        if !self.nodes.is_empty() {
            self.node_count = self.nodes.len();
        }
        if n.ssh_key.is_some() {
            self.ssh_key.clone_from(&n.ssh_key);
        }
        if n.known_hosts.is_some() {
            self.known_hosts.clone_from(&n.known_hosts);
        }
        self.sudo |= n.sudo;
        self.accept_new_host_keys |= n.accept_new_host_keys;
        Ok(())
    }

    /// The node flags that reach these nodes (for [`NodeArgs::resolve`]).
    pub(super) fn node_args(&self) -> NodeArgs {
        NodeArgs {
            nodes: self.nodes.clone(),
            nodes_file: None,
            ssh_key: self.ssh_key.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            sudo: self.sudo,
        }
    }

    /// The test's name in the store: `<target>-<workload>`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.target, self.workload)
    }
}

/// A plan checked against the catalogue, before any node is touched: what
/// running it needs beyond its fields.
pub(super) struct Checked {
    pub(super) info: TargetInfo,
    /// For faultline-node targets: the binary to upload.
    pub(super) node_binary: Option<PathBuf>,
    pub(super) nemesis_interval: Duration,
    pub(super) time_limit: Duration,
    pub(super) op_timeout: Duration,
    pub(super) check_time_limit: Duration,
    /// The first run's seed (the plan's, or the clock's).
    pub(super) seed: u64,
    /// `nemesis_schedule`, parsed.
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

/// Checks a plan: target, bugs, options, workload, faults, nodes, timings.
/// Errors name the flag that sets the value.
pub(super) fn check(p: &Plan) -> Result<Checked> {
    let target = p.target.as_str();
    let Some(info) = dbs::find(target) else {
        let known: Vec<&str> = dbs::catalogue().iter().map(|t| t.name).collect();
        return Err(usage(format!(
            "unknown --target `{target}` (expected one of {}; `faultline targets` lists them)",
            known.join(", ")
        )));
    };
    if !p.bugs.is_empty() && info.bugs.is_empty() {
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
    for b in &p.bugs {
        if !info.bugs.iter().any(|(n, _)| n == b) {
            let known: Vec<&str> = info.bugs.iter().map(|(n, _)| *n).collect();
            return Err(usage(format!(
                "--bug: {target} has no seeded bug `{b}` (it has {})",
                known.join(", ")
            )));
        }
    }
    let node_binary = if info.needs_node_binary {
        Some(node_binary(p.node_binary.as_deref())?)
    } else {
        None
    };
    // Options and bugs are the builder's to judge: ask it now, on no nodes,
    // so a bad one is refused before any node is touched.
    if let Some(Err(e)) = info.build(&DbContext {
        bugs: p.bugs.clone(),
        binary: node_binary.clone(),
        options: p.db_options.clone(),
        ..DbContext::default()
    }) {
        return Err(usage(format!("--target {target}: {e}")));
    }
    let workload = p.workload;
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
    let kinds = &p.nemesis;
    // Clock kinds are judged below, by where the nodes are.
    if let Some(k) = kinds
        .iter()
        .find(|k| !k.uses_clock() && !info.faults.contains(k))
        && info.is_deployed()
    {
        let have: Vec<&str> = info.faults.iter().map(|k| k.name()).collect();
        return Err(usage(format!(
            "--nemesis {k}: the {target} target does not support it (it supports {}; \
             `faultline targets` lists each target's faults)",
            have.join(", ")
        )));
    }
    // Outside the lab the clock helper sets the real clock, which Go reads.
    let outside_lab = p.nodes.iter().any(|e| e.contains(['@', '=', ':', '.']));
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
    if p.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    if p.test_count == 0 {
        return Err(usage("--test-count must be at least 1"));
    }
    if let Some(r) = p.rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(usage(
            "--rate must be a positive number of operations per second",
        ));
    }
    for (flag, v) in [
        ("--loss-prob", p.loss_prob),
        ("--max-false-positive-rate", p.max_false_positive_rate),
    ] {
        if let Some(v) = v
            && !(0.0..=1.0).contains(&v)
        {
            return Err(usage(format!("{flag}: {v} is not between 0 and 1")));
        }
    }
    if p.nodes.is_empty() {
        if p.node_count == 0 {
            return Err(usage("--node-count must be at least 1"));
        }
    } else {
        for e in &p.nodes {
            let name = crate::nodes::parse_entry(e)
                .map(|p| p.name)
                .map_err(|e| usage(format!("--nodes: {e}")))?;
            store::validate_name("node", &name).map_err(|e| usage(e.to_string()))?;
        }
    }
    let seed = p.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            % 1_000_000_000
    });
    let schedule = nemesis_schedule::load_for_test(p.nemesis_schedule.as_deref(), kinds)?;
    Ok(Checked {
        info,
        node_binary,
        nemesis_interval: secs("nemesis-interval", p.nemesis_interval_s)?,
        time_limit: secs("time-limit", p.time_limit_s)?,
        op_timeout: secs("op-timeout", p.op_timeout_s)?,
        check_time_limit: secs("check-time-limit", p.check_time_limit_s)?,
        seed,
        schedule,
    })
}

/// `test.json`: the plan as it ran (its seed, its node binary) and what the
/// run learnt. Readers (serve's index, `check DIR`, `replay`) read the
/// plan's fields and these by name.
#[derive(Serialize)]
pub(super) struct RunRecord<'a> {
    #[serde(flatten)]
    pub(super) plan: &'a Plan,
    /// `<target>-<workload>`, the store's test name.
    pub(super) name: String,
    /// Knobs the checker needs again on re-check (the bank's balances).
    pub(super) workload_options: WorkloadOptions,
    /// A checker the target asks for instead of the workload's own.
    pub(super) checker: Option<&'static str>,
    /// The nodes' names, as the history and `nodes/` name them.
    pub(super) node_names: Vec<String>,
    pub(super) addresses: Option<Value>,
    /// Which of `test_count` runs this is.
    pub(super) test_index: u32,
    pub(super) faultline_version: &'static str,
    pub(super) command: Vec<String>,
    /// The deployed system's settings, under its own key (`etcd`, `node`).
    #[serde(flatten)]
    pub(super) db: BTreeMap<&'static str, Value>,
}

#[cfg(test)]
mod tests;
