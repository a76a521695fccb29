//! Systems deployed on nodes, and the catalogue of every target.
//!
//! A [`Db`] is what `faultline test` needs to put a system on the nodes and
//! take it off again: shell commands per node (install, clean up, start,
//! restart after a kill, tear down), files to upload, a readiness wait, the
//! log files to fetch, and the [`Target`] whose clients the workload uses.
//! Nothing here runs a command: the `faultline` binary runs them over SSH,
//! in parallel, naming the node when one fails.
//!
//! [`catalogue`] lists every target with what it supports (workloads,
//! faults, seeded bugs) and how to build its `Db`; `faultline targets` and
//! `faultline test` both read it, so adding a target is one entry here plus
//! its module.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faultline_workloads::{BoxFuture, Workload, WorkloadOptions};
use serde_json::Value;

use crate::Target;

/// A per-node command (`None`: nothing to do on that node).
pub type NodeCommand<'a> = Box<dyn Fn(&str) -> Option<String> + Send + Sync + 'a>;

/// Builds a deployed target from its name and the context.
pub type Builder = fn(&str, &DbContext) -> Result<Box<dyn Db>, String>;

/// One setup step, run on every node at once.
pub enum Step<'a> {
    /// A shell command per node (`None`: nothing to do on that node). A
    /// non-zero exit fails the run, naming the node and its stderr.
    Each { what: String, cmd: NodeCommand<'a> },
    /// Upload a local file to `remote` on every node.
    Upload { local: PathBuf, remote: String },
    /// Wait until [`Db::wait_ready`] says the system is up.
    Ready,
}

impl<'a> Step<'a> {
    /// The same command on every node.
    pub fn all(what: impl Into<String>, cmd: String) -> Step<'a> {
        Step::Each {
            what: what.into(),
            cmd: Box::new(move |_| Some(cmd.clone())),
        }
    }
}

/// Asked while waiting, so an interrupt is not stuck behind a deadline.
pub type Cancelled<'a> = &'a (dyn Fn() -> bool + Send + Sync);

/// A system deployed on a set of nodes. See the module docs.
pub trait Db: Send + Sync {
    /// What runs (`etcd`, `raft`), in messages.
    fn what(&self) -> &str;

    /// node name → the address the members and clients use.
    fn addresses(&self) -> &BTreeMap<String, String>;

    /// The setup, in order. The default is the common one: install check,
    /// clean up what an earlier run left, start every member, wait.
    fn setup(&self) -> Vec<Step<'_>> {
        vec![
            Step::all(
                format!("{} install check", self.what()),
                self.install_command(),
            ),
            Step::all(format!("{} cleanup", self.what()), self.teardown_command()),
            Step::Each {
                what: format!("{} start", self.what()),
                cmd: Box::new(move |n| self.start_command(n)),
            },
            Step::Ready,
        ]
    }

    /// Installs the system when it is missing (or checks it is there).
    fn install_command(&self) -> String;

    /// Kills the system and removes its files (also run before setup).
    fn teardown_command(&self) -> String;

    /// Starts the member on `node`, detached; the same command restarts it
    /// after a kill (the nemesis heal).
    fn start_command(&self, node: &str) -> Option<String>;

    /// The heal of a kill on `node` (default: the start command).
    fn restart_command(&self, node: &str) -> Option<String> {
        self.start_command(node)
    }

    /// The pidfile kill/pause faults signal.
    fn pidfile(&self) -> &str;

    /// The main log, whose tail explains a member that never got ready.
    fn log_file(&self) -> &str;

    /// Every log file fetched into the run's `nodes/<node>/`.
    fn log_files(&self) -> Vec<String> {
        vec![self.log_file().to_string()]
    }

    /// The key and the settings recorded in `test.json`.
    fn json(&self) -> (&'static str, Value);

    /// Resolves when every member is ready, or fails naming those that are
    /// not (a member is named as `node (why)`, which the caller uses to
    /// pick the logs to show).
    fn wait_ready<'a>(
        &'a self,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// The clients' side of the system.
    fn target(&self) -> Arc<dyn Target>;

    /// The checker (a `faultline check --model` name) for `workload` when
    /// this system promises something else than the workload's default
    /// model (a CRDT store: convergence, not linearizability). Recorded in
    /// `test.json` as `checker`, so re-checking the run uses it too.
    fn checker(&self, _workload: Workload) -> Option<&'static str> {
        None
    }

    /// Adjusts the workload's options for this system (the CRDT store's
    /// set workload removes elements too). Default: unchanged.
    fn workload_options(&self, _opts: &mut WorkloadOptions) {}

    /// Why `workload`'s checker is expected to find this system `invalid`
    /// (a textbook lesson, e.g. a Dynamo store is not linearizable):
    /// printed with an invalid verdict and kept as `lesson` in
    /// results.json. Default: none.
    fn lesson(&self, _workload: Workload) -> Option<&'static str> {
        None
    }
}

/// What a target's builder is given.
#[derive(Clone, Debug, Default)]
pub struct DbContext {
    /// (node name, address) in the test's order.
    pub nodes: Vec<(String, String)>,
    /// `--bug` names (validated against [`TargetInfo::bugs`] first).
    pub bugs: Vec<String>,
    /// The lab's libfaketime.so (empty outside the lab or when missing).
    pub libfaketime: String,
    /// A binary to upload (faultline-node targets).
    pub binary: Option<PathBuf>,
    /// `--db-option KEY[=VALUE]` and the target's named flags, validated by
    /// the builder.
    pub options: BTreeMap<String, String>,
}

/// How a target comes to exist.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Deployed on the nodes, built from the target's name and the context.
    Deployed(Builder),
    /// Runs inside faultline (no nodes, no faults).
    InProcess(fn() -> Arc<dyn Target>),
}

/// Whether `--nemesis clock` can reach the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Under the lab's libfaketime, and by the clock helper on other machines.
    Everywhere,
    /// Only on machines outside the lab (the reason is shown in the lab).
    OutsideLab(&'static str),
    /// Never (the reason is shown).
    Never(&'static str),
}

/// A row of the catalogue.
#[derive(Clone)]
pub struct TargetInfo {
    pub name: &'static str,
    pub description: String,
    pub workloads: Vec<Workload>,
    /// Fault kinds it supports (shown by their `--nemesis` names).
    pub faults: Vec<faultline_nemesis::NemesisKind>,
    pub clock: Clock,
    /// Seeded bugs: (name, one-line description).
    pub bugs: Vec<(&'static str, &'static str)>,
    /// Needs the faultline-node binary uploaded.
    pub needs_node_binary: bool,
    pub kind: Kind,
}

impl TargetInfo {
    pub fn is_deployed(&self) -> bool {
        matches!(self.kind, Kind::Deployed(_))
    }

    /// Builds the deployed system (`None` for in-process targets).
    pub fn build(&self, ctx: &DbContext) -> Option<Result<Box<dyn Db>, String>> {
        match self.kind {
            Kind::Deployed(f) => Some(f(self.name, ctx)),
            Kind::InProcess(_) => None,
        }
    }

    /// The workload `faultline test` runs without `--workload`: the first
    /// of [`TargetInfo::workloads`] (its own, for the one-workload targets).
    pub fn default_workload(&self) -> Option<Workload> {
        self.workloads.first().copied()
    }

    /// The faults `faultline test` injects without `--nemesis`: every kind
    /// of [`TargetInfo::faults`] but `latency`, whose delayer runs the
    /// faultline binary on the nodes and so works in the lab only (the
    /// default must work on machines too). Leader-aimed kinds are in it
    /// where the target lists them.
    pub fn standard_mix(&self) -> Vec<faultline_nemesis::NemesisKind> {
        self.faults
            .iter()
            .copied()
            .filter(|k| *k != faultline_nemesis::NemesisKind::Latency)
            .collect()
    }

    /// Faults it cannot take, with why.
    pub fn unsupported_faults(&self) -> BTreeMap<&'static str, &'static str> {
        let mut m = BTreeMap::new();
        match self.kind {
            Kind::InProcess(_) => {
                m.insert(
                    "all",
                    "it runs inside faultline, so faults on nodes cannot reach it",
                );
            }
            Kind::Deployed(_) => match self.clock {
                Clock::Everywhere => {}
                Clock::OutsideLab(why) | Clock::Never(why) => {
                    m.insert("clock", why);
                }
            },
        }
        m
    }
}

/// Every target, in the order `faultline targets` lists them.
pub fn catalogue() -> Vec<TargetInfo> {
    let mut out = vec![
        crate::etcd_db::info(),
        TargetInfo {
            name: "noop",
            description: "an in-process linearizable store inside faultline (tests the runner; \
                          no nodes)"
                .into(),
            workloads: crate::noop::NoopTarget::new().workloads().to_vec(),
            faults: Vec::new(),
            clock: Clock::Never("it runs inside faultline"),
            bugs: Vec::new(),
            needs_node_binary: false,
            kind: Kind::InProcess(|| Arc::new(crate::noop::NoopTarget::new())),
        },
    ];
    out.extend(crate::node::infos());
    out.push(crate::redis_db::info());
    out.push(crate::exec_db::info());
    out.push(crate::zookeeper_db::info());
    out.push(crate::postgres_db::info());
    out.push(crate::twopc::info());
    out.push(crate::saga::info());
    out.push(crate::crdt::info());
    out.push(crate::dynamo::info());
    out.push(crate::lock::info());
    out.push(crate::elect::info());
    out.push(crate::swim::info());
    out
}

/// The catalogue row named `name`.
pub fn find(name: &str) -> Option<TargetInfo> {
    catalogue().into_iter().find(|t| t.name == name)
}

/// Parses `KEY[=VALUE]` options (a bare key means `true`).
pub fn parse_options(list: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for o in list {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), "true"));
        if k.is_empty() {
            return Err(format!("`{o}`: expected KEY or KEY=VALUE"));
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// Refuses options a builder does not know, naming the ones it does.
pub fn check_options(
    target: &str,
    options: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), String> {
    for k in options.keys() {
        if !known.contains(&k.as_str()) {
            return Err(if known.is_empty() {
                format!("--db-option {k}: the {target} target takes no options")
            } else {
                format!(
                    "--db-option {k}: the {target} target knows {}",
                    known.join(", ")
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_found_by_name_and_names_are_unique() {
        let cat = catalogue();
        let mut names: Vec<_> = cat.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cat.len());
        for t in &cat {
            assert_eq!(find(t.name).map(|f| f.name), Some(t.name));
            assert!(!t.workloads.is_empty(), "{} has no workloads", t.name);
        }
        assert!(find("nope").is_none());
    }

    /// The catalogue's faultline-node rows are the protocol registry:
    /// one row per protocol, with its about, workloads and `--bug`s.
    #[test]
    fn the_catalogue_equals_the_protocol_registry() {
        let cat = catalogue();
        let node_rows: Vec<&TargetInfo> = cat.iter().filter(|t| t.needs_node_binary).collect();
        let registry = faultline_node::registry::PROTOCOLS;
        assert_eq!(
            node_rows.iter().map(|t| t.name).collect::<Vec<_>>().len(),
            registry.len()
        );
        for p in registry {
            let row = find(p.name).unwrap_or_else(|| panic!("no row for {}", p.name));
            assert!(row.needs_node_binary, "{}", p.name);
            assert!(row.description.ends_with(p.about), "{}", p.name);
            let names: Vec<&str> = row.workloads.iter().map(|w| w.name()).collect();
            assert_eq!(names, p.workloads, "{}: every workload name parses", p.name);
            let bugs: Vec<(&str, &str)> = p.bugs.iter().map(|b| (b.name, b.description)).collect();
            assert_eq!(row.bugs, bugs, "{}", p.name);
        }
    }

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let m = parse_options(&["a=1".into(), "b".into()]).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "true");
        assert!(parse_options(&["=x".into()]).is_err());
        assert!(check_options("t", &m, &["a", "b"]).is_ok());
        let e = check_options("t", &m, &["a"]).unwrap_err();
        assert!(e.contains("--db-option b") && e.contains("knows a"), "{e}");
    }
}
