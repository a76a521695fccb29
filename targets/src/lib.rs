//! faultline-targets: the systems faultline can test.
//!
//! A [`Target`] is small: a name, the workloads it supports, and
//! [`Target::client`] to open a [`Client`] against one node. Everything else
//! a nemesis may want (kill, pause, primaries, log files) is an optional
//! capability, asked for with [`Target::kill`] and friends, which return
//! `None` when the target cannot do it; nothing here panics for lack of a
//! capability.
//!
//! - [`noop`]: an in-process, linearizable in-memory store that runs every
//!   workload; for testing and benchmarking the runner without a system.
//! - [`etcd`]: an etcd v3 client over the JSON gateway (register,
//!   list-append, rw-register, set).
//! - [`exec`] and [`exec_db`]: any system, driven by a client command that
//!   speaks JSON lines and deployed by shell hooks (docs/exec.md).
//! - [`zookeeper`]: a ZooKeeper client (register, set, lock).
//! - [`crdt`]: faultline's CRDT store (counter and OR-Set), judged for
//!   convergence from every replica's final read.
//! - [`postgres`]: PostgreSQL through tokio-postgres (list-append and
//!   rw-register transactions at a chosen isolation level, register).
//!
//! ```
//! use faultline_targets::{noop::NoopTarget, ClientOpts, Target};
//! use faultline_workloads::{Op, Workload, WorkloadOptions};
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let target = NoopTarget::new();
//! let opts = ClientOpts::new(WorkloadOptions::new(Workload::Register));
//! let mut client = target.client("n1", &opts).await.unwrap();
//! let c = client.invoke(&Op::new("write", Some(1.into()), 3.into())).await;
//! assert_eq!(c.outcome, faultline_workloads::Outcome::Ok);
//! # });
//! ```

pub mod chain;
pub mod crdt;
pub mod db;
pub mod dynamo;
pub mod elect;
pub mod etcd;
pub mod etcd_db;
pub mod exec;
pub mod exec_db;
mod line_client;
mod line_conn;
pub mod lock;
#[cfg(test)]
mod loopback;
pub mod node;
pub mod noop;
pub mod pb;
pub mod pidfile;
pub mod postgres;
pub mod postgres_db;
pub mod redis;
pub mod redis_db;
pub mod saga;
pub mod swim;
pub mod twopc;
pub mod zookeeper;
pub mod zookeeper_db;

pub use faultline_workloads::{BoxFuture, Client};
use faultline_workloads::{Workload, WorkloadOptions};
use std::time::Duration;

/// What every client of a test is opened with.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOpts {
    pub workload: WorkloadOptions,
    /// The runner's per-operation timeout. Clients should give up a little
    /// earlier on their own, so that they (not the runner) classify the
    /// timeout: a timed-out read may then be `fail` instead of `info`.
    pub timeout: Duration,
}

impl ClientOpts {
    /// Options with a 5 s operation timeout.
    pub fn new(workload: WorkloadOptions) -> ClientOpts {
        ClientOpts {
            workload,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Errors opening clients or using a capability.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "target `{target}` does not support the {workload} workload (it supports: {supported})"
    )]
    Unsupported {
        target: String,
        workload: Workload,
        supported: String,
    },
    #[error("unknown node `{0}`: the target has no endpoint for it")]
    UnknownNode(String),
    #[error("cannot open a client on {node}: {message}")]
    Open { node: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// A system under test. See the crate docs.
///
/// Implementations are shared by all workers (`Arc<dyn Target>`), so they
/// must be `Send + Sync`; per-connection state lives in the clients.
pub trait Target: Send + Sync {
    /// Short name (`noop`, `etcd`), used in test names and messages.
    fn name(&self) -> &str;

    /// The workloads this target's clients implement.
    fn workloads(&self) -> &[Workload];

    /// Opens a client talking to `node` (one of the test's nodes). Must not
    /// change test state (see [`Client`]). Errors mean "no client", never
    /// "the operation failed".
    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>>;

    /// `Ok` when `workload` is supported, else an error naming the ones that are.
    fn check_supports(&self, workload: Workload) -> Result<(), TargetError> {
        if self.workloads().contains(&workload) {
            return Ok(());
        }
        Err(TargetError::Unsupported {
            target: self.name().to_string(),
            workload,
            supported: self
                .workloads()
                .iter()
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Crash and restart processes, when the target can.
    fn kill(&self) -> Option<&dyn Kill> {
        None
    }

    /// Pause (SIGSTOP) and resume processes, when the target can.
    fn pause(&self) -> Option<&dyn Pause> {
        None
    }

    /// Which nodes are currently primaries/leaders, when the target knows.
    fn primaries(&self) -> Option<&dyn Primaries> {
        None
    }

    /// Promote a replica when the primary is lost, when the target does
    /// (the nemesis asks before it heals each fault).
    fn failover(&self) -> Option<&dyn Failover> {
        None
    }

    /// Log files to fetch from each node after a run, when there are any.
    fn log_files(&self) -> Option<&dyn LogFiles> {
        None
    }

    /// Groups of nodes worth cutting off together, each with what it is
    /// (a Dynamo key's preference list: a write there is acknowledged by
    /// stand-ins only). The partition nemesis picks one of them for half
    /// its partitions. Default: none, only the generic shapes.
    fn partition_groups(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }

    /// True for systems whose replicas may disagree until they converge
    /// (AP stores, CRDTs): after the heal and the quiet period the runner
    /// then does its final reads on **every** node, each through a client
    /// bound to that node, so the checker sees each replica's final state.
    /// Default: the workload's final reads, on one node.
    fn final_reads_per_node(&self) -> bool {
        false
    }
}

/// Crash (`kill -9`) and restart the system on a node.
pub trait Kill: Send + Sync {
    fn kill<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
    fn start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
}

/// Pause and resume the system's processes on a node.
pub trait Pause: Send + Sync {
    fn pause<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
    fn resume<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), TargetError>>;
}

/// Finds the current primaries (leaders) among `nodes`.
pub trait Primaries: Send + Sync {
    fn primaries<'a>(
        &'a self,
        nodes: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>>;
}

/// Replaces a lost primary by a replica, as Redis Sentinel would. The
/// nemesis calls it before healing a fault, while an old primary is still
/// cut off, so what it acknowledged alone is what the failover loses.
pub trait Failover: Send + Sync {
    /// Promotes a replica if the primary is lost; the value says what was
    /// done (`null`: nothing was).
    fn failover(&self) -> BoxFuture<'_, Result<serde_json::Value, TargetError>>;
}

/// Paths of log files on a node, for the store's `nodes/<node>/`.
pub trait LogFiles: Send + Sync {
    fn log_files(&self, node: &str) -> Vec<String>;
}
