//! The failover of `faultline-node pb` (primary-backup), run by the
//! nemesis before it heals a fault (`Target::failover`), as an operator or
//! an orchestrator (MHA, Orchestrator, Sentinel) would: when the view's
//! primary does not answer, or every backup that answers has stopped
//! hearing from it (`orphan`), fence every other member into a new epoch,
//! pick one with [`faultline_node::pb::choose`] (the mode's policy: any
//! backup in sync mode; in semi-sync the most up-to-date, and only when
//! every backup was fenced) and promote it. See `docs/pb.md`.

use crate::node::NodeTarget;
use crate::{BoxFuture, Failover, TargetError};
use faultline_node::pb::{Fenced, choose};
use faultline_node::shell::api::{ClientReply, ClientRequest};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long an admin request or a status may take per member.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends one admin request to the member at `addr`.
pub async fn admin(addr: &str, req: Value) -> Result<Value, String> {
    let fut = async {
        let s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (r, mut w) = s.into_split();
        w.write_all(ClientRequest::Admin(req.clone()).to_line().as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(r)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        match serde_json::from_str(&line).map_err(|e| format!("bad reply {line:?}: {e}"))? {
            ClientReply::Admin(v) => Ok(v),
            ClientReply::Error { error } => Err(error),
            other => Err(format!("unexpected reply {other:?}")),
        }
    };
    tokio::time::timeout(ADMIN_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()))
}

/// The target's failover state: one failover at a time (two concurrent
/// ones could promote two nodes into the same epoch), and with
/// `--db-option failover=monitor` a background task that also checks every
/// [`MONITOR_PERIOD`] during the run, as Sentinel or Orchestrator would.
#[derive(Default)]
pub struct PbFailover {
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    pub monitor: bool,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for PbFailover {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }
}

/// How often the monitor looks for a lost primary.
pub const MONITOR_PERIOD: Duration = Duration::from_secs(1);

/// Starts the monitor once (called when the first client opens, inside
/// the runner's runtime).
pub fn start_monitor(t: &NodeTarget) {
    let st = t.pb_failover();
    if !st.monitor {
        return;
    }
    let Ok(mut task) = st.task.lock() else {
        return;
    };
    if task.is_some() {
        return;
    }
    let lock = std::sync::Arc::clone(&st.lock);
    let cfg = t.config();
    *task = Some(tokio::spawn(async move {
        let t = NodeTarget::new(cfg);
        loop {
            tokio::time::sleep(MONITOR_PERIOD).await;
            let _g = lock.lock().await;
            let _ = failover_once(&t).await;
        }
    }));
}

impl Failover for NodeTarget {
    fn failover(&self) -> BoxFuture<'_, Result<Value, TargetError>> {
        if crate::Target::name(self) == "chain" {
            return crate::chain::failover(self);
        }
        Box::pin(async move {
            let _g = self.pb_failover().lock.lock().await;
            failover_once(self).await
        })
    }
}

async fn failover_once(t: &NodeTarget) -> Result<Value, TargetError> {
    {
        {
            let members = t.members();
            let all = t.statuses(ADMIN_TIMEOUT).await;
            let top = all
                .iter()
                .filter_map(|(_, s)| s.as_ref().map(|s| s.term))
                .max()
                .unwrap_or(1);
            // The view's primary: named by those in the newest epoch.
            let old = all
                .iter()
                .filter_map(|(_, s)| s.as_ref().filter(|s| s.term == top))
                .find_map(|s| s.leader);
            let name = |id: u64| {
                members
                    .get(id.saturating_sub(1) as usize)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default()
            };
            let primary_up = old.is_some_and(|p| {
                all.iter().any(|(n, s)| {
                    *n == name(p)
                        && s.as_ref()
                            .is_some_and(|s| s.role == "leader" && s.term == top)
                })
            });
            let backups: Vec<u64> = (1..=members.len() as u64)
                .filter(|i| Some(*i) != old)
                .collect();
            let answering: Vec<&str> = all
                .iter()
                .filter(|(n, s)| s.is_some() && old.is_none_or(|p| *n != name(p)))
                .filter_map(|(_, s)| s.as_ref().map(|s| s.role.as_str()))
                .collect();
            let lost = !primary_up || answering.iter().all(|r| *r == "orphan");
            if !lost || answering.is_empty() {
                return Ok(Value::Null);
            }
            let epoch = top + 1;
            let mut fenced: Vec<Fenced> = Vec::new();
            let mut errors = serde_json::Map::new();
            for b in &backups {
                let Some((n, addr)) = members.get(*b as usize - 1) else {
                    continue;
                };
                match admin(addr, json!({ "fence": epoch })).await {
                    Ok(v) => match serde_json::from_value::<Fenced>(v) {
                        Ok(f) => fenced.push(f),
                        Err(e) => {
                            errors.insert(n.clone(), json!(e.to_string()));
                        }
                    },
                    Err(e) => {
                        errors.insert(n.clone(), json!(e));
                    }
                }
            }
            let report = |promoted: Value, why: Option<String>| {
                json!({"failover": {
                    "old_primary": old.map(name),
                    "old_primary_reachable": primary_up,
                    "epoch": epoch,
                    "fenced": fenced.iter().map(|f| (name(f.id), json!({"len": f.len, "last_epoch": f.last_epoch}))).collect::<serde_json::Map<_, _>>(),
                    "fence_errors": errors,
                    "promoted": promoted,
                    "skipped": why,
                }})
            };
            let new = match choose(&backups, &fenced) {
                Ok(n) => n,
                Err(why) => return Ok(report(Value::Null, Some(why))),
            };
            let addr = members
                .get(new as usize - 1)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
            admin(&addr, json!({ "promote": epoch }))
                .await
                .map_err(|e| TargetError::Other(format!("promoting {}: {e}", name(new))))?;
            Ok(report(json!(name(new)), None))
        }
    }
}
