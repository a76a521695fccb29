//! Control of nodes: the [`Remote`] trait, its SSH backend, and parallel
//! fan-out over nodes with per-node results that name the node.

pub mod nsenter;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use nsenter::NsenterRemote;
pub use ssh::SshRemote;

/// How to reach one node over SSH. Serialized into the nemesis state
/// file, so `nemesis heal --all` can reach the nodes again later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Name used in messages and history (`n1`).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file (key-only authentication).
    pub key: PathBuf,
    /// OpenSSH known_hosts file the host key is checked against.
    pub known_hosts: PathBuf,
    /// Record unknown host keys instead of refusing them.
    pub accept_new_host_keys: bool,
    /// Wrap commands in `sudo -n` (ignored for root).
    pub sudo: bool,
    /// Bound on TCP connect plus SSH handshake and authentication.
    #[serde(skip, default = "default_connect_timeout")]
    pub connect_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// What a command did on a node.
#[derive(Debug, Clone, Serialize)]
pub struct ExecOutput {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One node under control. Implementations keep a long-lived session.
pub trait Remote: Send {
    /// The node's name, for messages.
    fn name(&self) -> &str;
    /// Runs `cmd` with `sh -c` semantics; fails after `timeout`.
    fn exec(&mut self, cmd: &str, timeout: Duration) -> Result<ExecOutput>;
    /// Copies a local file to `remote` (mode 0644).
    fn upload(&mut self, local: &Path, remote: &str) -> Result<()>;
    /// Copies `remote` to a local file.
    fn download(&mut self, remote: &str, local: &Path) -> Result<()>;
}

/// Connects to every node in parallel. Each result is for the node at the
/// same index; errors name the node.
pub fn connect_all(specs: &[NodeSpec]) -> Vec<Result<SshRemote>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| s.spawn(move || SshRemote::connect(spec.clone())))
            .collect();
        handles
            .into_iter()
            .zip(specs)
            .map(|(h, spec)| {
                h.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("{}: connect thread panicked", spec.name))
                })
            })
            .collect()
    })
}

/// Runs `f` on every remote, one thread per node. Results are in input
/// order, paired with the node's name.
pub fn fan_out<'a, R, T, F>(
    remotes: impl IntoIterator<Item = &'a mut R>,
    f: F,
) -> Vec<(String, Result<T>)>
where
    R: Remote + 'a,
    T: Send,
    F: Fn(&mut R) -> Result<T> + Sync,
{
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = remotes
            .into_iter()
            .map(|r| {
                let name = r.name().to_string();
                (name, s.spawn(move || f(r)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("{name}: worker thread panicked")));
                (name, r)
            })
            .collect()
    })
}
