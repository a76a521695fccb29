//! The master of `faultline-node chain` (chain replication, van Renesse &
//! Schneider 2004): the paper's master is a separate, fault-tolerant
//! service that detects failed servers and reconfigures the chain; here
//! the faultline process plays it. It runs every [`MASTER_PERIOD`] during
//! the run and once more before each of the nemesis' heals
//! (`Target::failover`), one round at a time: it asks every member for its
//! state (`{"admin":{"state":true}}`), decides with
//! [`faultline_node::chain::plan`] (remove members that do not answer or
//! that no other member hears, re-add an answering node at the tail) and
//! installs the new `(epoch, chain)` on every member of the new chain.
//! Clients need nothing from it: a member answers a write with the head
//! and a read with the tail as its `not_leader` hint. See `docs/chain.md`.

use crate::node::NodeTarget;
use crate::pb::admin;
use crate::{BoxFuture, Target as _, TargetError};
use faultline_node::chain::{Plan, State, install_request, plan};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the master looks at the chain.
pub const MASTER_PERIOD: Duration = Duration::from_millis(500);

/// The master's configuration `(epoch, chain)`, learnt from the members
/// at its first round, and the reconfigurations its loop made since the
/// last heal reported them; one round at a time.
#[derive(Default)]
pub struct ChainMaster {
    config: Arc<tokio::sync::Mutex<Master>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for ChainMaster {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }
}

/// Starts the master's loop once (called when the first client opens,
/// inside the runner's runtime).
pub fn start_master(t: &NodeTarget) {
    if t.name() != "chain" {
        return;
    }
    let m = t.chain_master();
    let Ok(mut task) = m.task.lock() else {
        return;
    };
    if task.is_some() {
        return;
    }
    let config = Arc::clone(&m.config);
    let cfg = t.config();
    *task = Some(tokio::spawn(async move {
        let t = NodeTarget::new(cfg);
        loop {
            tokio::time::sleep(MASTER_PERIOD).await;
            let mut m = config.lock().await;
            if let Ok(v) = round(&t, &mut m.config).await
                && !v.is_null()
            {
                m.changes.push(v);
            }
        }
    }));
}

#[derive(Default)]
struct Master {
    config: Option<(u64, Vec<u64>)>,
    /// What the loop did (or refused) since the last heal.
    changes: Vec<Value>,
}

/// One round from the nemesis' heal; reports it with every change the
/// loop made since the previous heal (`null`: none), so the history shows
/// each reconfiguration.
pub fn failover(t: &NodeTarget) -> BoxFuture<'_, Result<Value, TargetError>> {
    Box::pin(async move {
        let mut m = t.chain_master().config.lock().await;
        let now = round(t, &mut m.config).await?;
        let mut changes = std::mem::take(&mut m.changes);
        if !now.is_null() {
            changes.push(now);
        }
        let Some((epoch, chain)) = m.config.clone().filter(|_| !changes.is_empty()) else {
            return Ok(Value::Null);
        };
        Ok(json!({"failover": {
            "epoch": epoch,
            "chain": names(t, &chain),
            "changes": changes,
        }}))
    })
}

fn names(t: &NodeTarget, ids: &[u64]) -> Vec<String> {
    ids.iter()
        .map(|i| {
            t.members()
                .get(i.saturating_sub(1) as usize)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        })
        .collect()
}

async fn round(t: &NodeTarget, config: &mut Option<(u64, Vec<u64>)>) -> Result<Value, TargetError> {
    let members = t.members();
    let name = |id: u64| names(t, &[id]).concat();
    let names = |ids: &[u64]| names(t, ids);
    let mut states: BTreeMap<u64, State> = BTreeMap::new();
    for (i, (_, addr)) in members.iter().enumerate() {
        if let Ok(v) = admin(addr, json!({"state": true})).await
            && let Ok(s) = serde_json::from_value::<State>(v)
        {
            states.insert(i as u64 + 1, s);
        }
    }
    // The newest configuration any member knows beats ours (a master that
    // starts late, or a second faultline run).
    if let Some(s) = states.values().max_by_key(|s| s.epoch)
        && config.as_ref().is_none_or(|(e, _)| s.epoch > *e)
    {
        *config = Some((s.epoch, s.chain.clone()));
    }
    let Some((epoch, chain)) = config.clone() else {
        return Ok(Value::Null);
    };
    let peers: Vec<u64> = (1..=members.len() as u64).collect();
    let p = match plan(epoch, &chain, &peers, &states) {
        Ok(p) => p,
        Err(why) => {
            return Ok(json!({"epoch": epoch, "chain": names(&chain), "skipped": why}));
        }
    };
    let Plan::Install {
        epoch: new_epoch,
        chain: new_chain,
        removed,
        added,
    } = p
    else {
        return Ok(Value::Null);
    };
    // The configuration is the master's once decided, even if some
    // member misses it: the next round removes that member or retries.
    *config = Some((new_epoch, new_chain.clone()));
    let mut errors = serde_json::Map::new();
    for m in &new_chain {
        let addr = members
            .get(*m as usize - 1)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        if let Err(e) = admin(&addr, install_request(new_epoch, &new_chain)).await {
            errors.insert(name(*m), json!(e));
        }
    }
    Ok(json!({
        "epoch": new_epoch,
        "chain": names(&new_chain),
        "removed": names(&removed),
        "added": names(&added),
        "install_errors": errors,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use crate::{ClientOpts, Target};
    use faultline_workloads::{Completion, Op, Outcome, Workload, WorkloadOptions};

    /// A real 3-member chain on loopback: a register client on every member
    /// (writes routed to the head, reads to the tail by the members'
    /// hints), then the master removes the tail it is told failed —
    /// simulated by installing a chain without it — and re-adds it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_on_every_member_and_the_master_re_adds() {
        let cluster = crate::loopback::start::<faultline_node::chain::Chain>(
            "chain",
            "chain",
            3,
            (50, 2),
            &[],
        );
        let target = NodeTarget::new(NodeConfig {
            protocol: "chain".into(),
            members: cluster.members.clone(),
        });
        let reg = ClientOpts::new(WorkloadOptions::new(Workload::Register));
        let mut clients = Vec::new();
        for n in ["n1", "n2", "n3"] {
            clients.push(target.client(n, &reg).await.expect("client"));
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let w = Op::new("write", Some(json!(1)), json!(i as i64 + 10));
            let mut r = c.invoke(&w).await;
            for _ in 0..50 {
                if r.outcome == Outcome::Ok {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                r = c.invoke(&w).await;
            }
            assert_eq!(r, Completion::ok(json!(i as i64 + 10)));
            let got = c
                .invoke(&Op::new("read", Some(json!(1)), Value::Null))
                .await;
            assert_eq!(got, Completion::ok(json!(i as i64 + 10)));
        }
        // The master's round: nothing to change in a healthy chain.
        let v = crate::Failover::failover(&target).await;
        assert_eq!(v.expect("round"), Value::Null);
        // An operator drops n3 (epoch 2); the master's next round appends
        // it again (epoch 3) since everyone hears it.
        for (_, addr) in &cluster.members[..2] {
            admin(addr, install_request(2, &[1, 2]))
                .await
                .expect("install");
        }
        let v = crate::Failover::failover(&target).await;
        let v = v.expect("round");
        assert_eq!(v["failover"]["changes"][0]["added"], json!(["n3"]), "{v}");
        assert_eq!(v["failover"]["epoch"], 3, "{v}");
        assert_eq!(v["failover"]["chain"], json!(["n1", "n2", "n3"]), "{v}");
        let st = admin(&cluster.members[2].1, json!({"state": true}))
            .await
            .expect("state");
        assert_eq!(st["chain"], json!([1, 2, 3]));
        let got = clients[0]
            .invoke(&Op::new("read", Some(json!(1)), Value::Null))
            .await;
        assert_eq!(got, Completion::ok(json!(12)));
        let _ = std::fs::remove_dir_all(&cluster.base);
    }
}
