//! The Dynamo-style store (`faultline-node dynamo`, docs/dynamo.md) as a
//! target.
//!
//! Deployment is the node target's ([`NodeDb`]); the cluster is ready when
//! every node answers its status. Each client talks to **its own node**,
//! which coordinates its requests.
//!
//! Workloads:
//! - `siblings` (the store's promise, judged by the `siblings` checker):
//!   `read` → `DynGet`, `ok` with the sorted list of every sibling; the
//!   client keeps the returned causal context per key, and `write` →
//!   `DynPut` with the context of this client's last `ok` read of the key
//!   (none: empty) — exactly the rule the checker infers `seen` from;
//! - `register` (the lesson): the same store seen as a plain register:
//!   a read returns the largest sibling (null when none), a write carries
//!   the last read's context, `cas` fails (there is none). Judged for
//!   linearizability, it is `invalid`, with [`LESSON`] explaining why.
//!
//! Classification ([`Client`] contract): `ok` → ok; a refusal → fail; no
//! connection → fail; sent but no answer, or the coordinator's `unknown`
//! (fewer than `w` acks in time) → info for writes, fail for reads.
//!
//! ```
//! let t = faultline_targets::dynamo::info();
//! assert_eq!(t.name, "dynamo");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "lww-wall-clock"));
//! ```

use crate::db::{Cancelled, Db, DbContext, TargetInfo};
use crate::line_client::LineClient;
use crate::node::{LOG_FILE, NodeDb, NodeHooks};
use crate::{BoxFuture, Client, ClientOpts, LogFiles, Target, TargetError};
use faultline_node::core::Config;
use faultline_node::crdt::VersionVector;
use faultline_node::dynamo::{Params, preference_list_of};
use faultline_node::kv::{Key, Op as KvOp};
use faultline_node::shell::api::ClientReply;
use faultline_workloads::{Completion, Op, SIBLING_KEYS, Value, Workload};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const PROTOCOL: &str = "dynamo";
pub const WORKLOADS: [Workload; 2] = [Workload::Siblings, Workload::Register];
/// The checker of the `siblings` workload (the store's real promise).
pub const CHECKER: &str = "siblings";
/// `--db-option`s, passed to every node as `--option`.
pub const OPTIONS: [&str; 6] = faultline_node::dynamo::OPTIONS;

/// Why the linearizability checker rejects this store on the `register`
/// workload: printed with an `invalid` verdict and kept in results.json
/// as `lesson` (docs/dynamo.md).
pub const LESSON: &str = "\
Lesson: a Dynamo-style store is not linearizable, even with R+W>N.
  - Sloppy quorums: when a key's replicas are unreachable, stand-ins
    outside its preference list take the write (hinted handoff), so a
    later read quorum of the real replicas need not overlap the write
    quorum: the read misses a completed write.
  - Concurrent writes are not ordered: they become siblings, and a plain
    register client must pick one (here the largest value, as
    last-writer-wins would), so a read can return a value older than a
    write that completed before the read began.
  - No write-back before a read returns (ABD's second phase): one read
    can see a new value on one replica and a later read an old value
    on two others.
The store promises eventual consistency with no lost acknowledged write;
check that promise with `--workload siblings`.
";

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &OPTIONS)?;
    // The nodes check the same rules at start; failing here names the flag.
    // (Options are also checked before the nodes are known: then only
    // the values, not n against the cluster size.)
    let members = if ctx.nodes.is_empty() {
        255
    } else {
        ctx.nodes.len() as u64
    };
    let mut c = faultline_node::core::Config::new(1, (1..=members).collect());
    c.options = ctx.options.clone();
    faultline_node::dynamo::Params::from_config(&c)
        .map_err(|e| e.replace("--option", "--db-option"))?;
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d.with_hooks(DynamoHooks)))
}

/// A Dynamo store cluster: [`NodeDb`] with these hooks (every node
/// answers: no leader to wait for).
pub struct DynamoHooks;

impl NodeHooks for DynamoHooks {
    fn name(&self) -> &'static str {
        PROTOCOL
    }
    fn wait_ready<'a>(
        &'a self,
        db: &'a NodeDb,
        deadline: Duration,
        cancelled: Cancelled<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let members = db.members();
            crate::line_client::wait_all_answer("dynamo nodes", &members, deadline, cancelled).await
        })
    }
    fn target(&self, db: &NodeDb) -> Arc<dyn Target> {
        Arc::new(target_of(db))
    }
    fn checker(&self, workload: Workload) -> Option<&'static str> {
        (workload == Workload::Siblings).then_some(CHECKER)
    }
    fn lesson(&self, workload: Workload) -> Option<&'static str> {
        (workload == Workload::Register).then_some(LESSON)
    }
}

/// The clients' side of `db`.
fn target_of(db: &NodeDb) -> DynamoTarget {
    DynamoTarget {
        members: db.members(),
        groups: preference_lists(db),
    }
}

/// The preference list of each `siblings` key, by node name, computed from
/// the options as every member computes it (node ids are 1.. in name
/// order). Lists spanning the whole cluster cut nothing off and are left
/// out. Empty when the options do not parse: the node reports that.
fn preference_lists(db: &NodeDb) -> Vec<(String, Vec<String>)> {
    let names: Vec<&String> = db.nodes.keys().collect();
    let ids: Vec<u64> = (1..=names.len() as u64).collect();
    let mut c = Config::new(1, ids.clone());
    c.options = db.options.clone();
    let Ok(p) = Params::from_config(&c) else {
        return Vec::new();
    };
    (0..SIBLING_KEYS)
        .map(|key| {
            let nodes: Vec<String> = preference_list_of(&ids, &p, key)
                .into_iter()
                .filter_map(|id| names.get(id as usize - 1).map(|n| n.to_string()))
                .collect();
            (format!("the preference list of key {key}"), nodes)
        })
        .filter(|(_, nodes)| nodes.len() < names.len())
        .collect()
}

/// Clients of the store; each bound to one node, its coordinator.
pub struct DynamoTarget {
    /// (node, client address), in id order.
    members: Vec<(String, String)>,
    /// See [`Target::partition_groups`].
    groups: Vec<(String, Vec<String>)>,
}

impl Target for DynamoTarget {
    fn name(&self) -> &str {
        PROTOCOL
    }

    fn workloads(&self) -> &[Workload] {
        &WORKLOADS
    }

    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            self.check_supports(opts.workload.workload)?;
            let addr = crate::line_client::member_addr(&self.members, node)?;
            Ok(Box::new(DynamoClient {
                conn: LineClient::new(node, addr, opts.timeout.mul_f64(0.9)),
                workload: opts.workload.workload,
                contexts: BTreeMap::new(),
            }) as Box<dyn Client>)
        })
    }

    fn log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }

    fn final_reads_per_node(&self) -> bool {
        true
    }

    fn partition_groups(&self) -> Vec<(String, Vec<String>)> {
        self.groups.clone()
    }
}

impl LogFiles for DynamoTarget {
    fn log_files(&self, _node: &str) -> Vec<String> {
        vec![LOG_FILE.to_string()]
    }
}

struct DynamoClient {
    conn: LineClient,
    workload: Workload,
    /// key → the causal context of this client's last ok read of it.
    contexts: BTreeMap<Key, VersionVector>,
}

impl Client for DynamoClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let Some(key) = op.key.as_ref().and_then(Value::as_u64) else {
                return Completion::fail(format!("{} needs an integer key", op.f));
            };
            let kop = match op.f.as_str() {
                "read" => KvOp::DynGet { key },
                "write" => match op.value.as_i64() {
                    Some(value) => KvOp::DynPut {
                        key,
                        value,
                        context: self.contexts.get(&key).cloned().unwrap_or_default(),
                    },
                    None => return Completion::fail(format!("{} is not an integer", op.value)),
                },
                f => return Completion::fail(format!("the Dynamo store has no `{f}`")),
            };
            let read = op.f == "read";
            match self.conn.call(kop).await {
                Ok(ClientReply::Ok { value, .. }) if read => {
                    let ctx = serde_json::from_value(value["context"].clone());
                    let sib: Option<Vec<i64>> =
                        serde_json::from_value(value["siblings"].clone()).ok();
                    match (ctx, sib) {
                        (Ok(ctx), Some(sib)) => {
                            self.contexts.insert(key, ctx);
                            if self.workload == Workload::Register {
                                Completion::ok(sib.iter().max().map_or(Value::Null, |m| json!(m)))
                            } else {
                                Completion::ok(json!(sib))
                            }
                        }
                        _ => Completion::fail(format!("a get answered {value}")),
                    }
                }
                Ok(ClientReply::Ok { .. }) => Completion::ok(op.value.clone()),
                Ok(ClientReply::Fail { error, .. }) => Completion::fail(error),
                Ok(other) if read => Completion::fail(format!("unexpected reply {other:?}")),
                Ok(ClientReply::Unknown { error, .. }) => Completion::info(error),
                Ok(other) => Completion::info(format!("unexpected reply {other:?}")),
                Err((false, e)) => Completion::fail(e),
                Err((true, e)) if read => Completion::fail(e),
                Err((true, e)) => Completion::info(e),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.conn.close();
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(nodes: usize, opts: &[(&str, &str)]) -> NodeDb {
        let mut d = NodeDb::new(
            PROTOCOL,
            (1..=nodes).map(|i| (format!("n{i}"), format!("10.0.0.{i}"))),
        );
        for (k, v) in opts {
            d.options.insert(k.to_string(), v.to_string());
        }
        d.with_hooks(DynamoHooks)
    }

    #[test]
    fn partition_groups_are_the_siblings_keys_preference_lists() {
        let t = target_of(&db(5, &[("n", "3,r=2,w=2")]));
        let g = t.partition_groups();
        assert_eq!(g.len(), SIBLING_KEYS as usize);
        for (what, nodes) in &g {
            assert!(what.starts_with("the preference list of key "), "{what}");
            assert_eq!(nodes.len(), 3, "{g:?}");
            assert!(nodes.iter().all(|n| n.starts_with('n')), "{g:?}");
        }
        // Three nodes, n=3: every list is the whole cluster, nothing to cut.
        assert!(target_of(&db(3, &[])).partition_groups().is_empty());
        // Options the node would refuse: no groups, the node says why.
        assert!(
            target_of(&db(5, &[("n", "9")]))
                .partition_groups()
                .is_empty()
        );
    }
}
