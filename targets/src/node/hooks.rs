//! What a faultline-node protocol with a client of its own adds to
//! [`NodeDb`]: one trait, so every such target is a `NodeDb` with hooks,
//! not a wrapper type forwarding `Db`'s methods.

use super::*;

/// A protocol's part of a [`NodeDb`]: its clients, how it is ready, which
/// checker judges it. Deploying, starting, killing and logs are
/// [`NodeDb`]'s, the same for every protocol. Hooks are stateless (what
/// they need is in the `NodeDb`: bugs, options, members), so a `NodeDb`
/// stays plain data.
pub trait NodeHooks: Send + Sync {
    /// The hooks' name, in `Debug` output and comparisons.
    fn name(&self) -> &'static str;

    /// The clients' side of the cluster.
    fn target(&self, db: &NodeDb) -> Arc<dyn Target>;

    /// Resolves when the cluster is ready. Default: every member answers
    /// and all name the same leader.
    fn wait_ready<'a>(
        &'a self,
        db: &'a NodeDb,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(wait_leader(db, deadline, cancelled))
    }

    /// See [`Db::checker`].
    fn checker(&self, _workload: Workload) -> Option<&'static str> {
        None
    }

    /// See [`Db::workload_options`].
    fn workload_options(&self, _opts: &mut WorkloadOptions) {}

    /// See [`Db::lesson`].
    fn lesson(&self, _workload: Workload) -> Option<&'static str> {
        None
    }

    /// Adds the protocol's own settings to `test.json`'s record.
    fn json(&self, _db: &NodeDb, _record: &mut serde_json::Value) {}
}

/// A [`NodeHooks`] in a [`NodeDb`], compared by name.
#[derive(Clone)]
pub struct Hooks(pub Arc<dyn NodeHooks>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl PartialEq for Hooks {
    fn eq(&self, other: &Hooks) -> bool {
        self.0.name() == other.0.name()
    }
}

/// The replicated logs (raft, paxos, zab, single, pb, chain): the generic
/// key-value client, ready when all members name one leader.
pub struct KvHooks;

impl NodeHooks for KvHooks {
    fn name(&self) -> &'static str {
        "kv"
    }

    fn target(&self, db: &NodeDb) -> Arc<dyn Target> {
        let mut t = NodeTarget::new(db.client_config());
        t.pb.monitor = db.protocol == "pb"
            && db.options.get("failover").map(String::as_str) == Some("monitor");
        Arc::new(t)
    }
}
