//! `leader-churn`: leadership moves three times within one fault, each
//! deposed leader keeping whatever it appended alone.
//!
//! 1. isolate the leader A (it may go on appending client writes no one
//!    else has);
//! 2. as soon as another node B is seen leading, isolate B instead (A
//!    rejoins; B keeps what it appended alone);
//! 3. as soon as a third leader C is seen (often A, with the longest log),
//!    SIGKILL C and heal the partition (C restarts at the heal).
//!
//! This is the leader turnover of Raft's Figure 8 (§5.4.2) and of Zab's
//! recovery scenarios (a follower holding an old epoch's suffix, a history
//! delivered before a quorum has it): several elections in a few seconds
//! while old leaders' uncommitted tails linger. Each step waits at most
//! [`WAIT`] for the next leader and stops early, saying so, if none shows.
//! Every part goes through the [`Controller`] state file, so the interval's
//! heal (or `faultline nemesis heal --all`) undoes what is left.

use std::time::Duration;

use faultline_nemesis::{Choice, Fault, FaultEnv};
use serde_json::{Value, json};

use super::LabNemesis;
/// How long a step waits for the next leader.
const WAIT: Duration = Duration::from_secs(5);
/// Between polls of the nodes' roles: an election is hundreds of ms, and
/// the point is to act within one replication round of it.
const POLL: Duration = Duration::from_millis(20);

impl LabNemesis {
    /// A single newest-term leader among the nodes other than `not`, polled
    /// until one shows or [`WAIT`] passes.
    async fn leader_other_than(&self, not: &str) -> Option<String> {
        let p = self.target.primaries()?;
        let others: Vec<String> = self.nodes.iter().filter(|n| *n != not).cloned().collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = tokio::time::timeout(Duration::from_secs(2), p.primaries(&others)).await;
            if let Ok(Ok(v)) = r
                && v.len() == 1
            {
                return v.into_iter().next();
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts (`heal == false`) or heals one fault through the controller.
    async fn apply(&self, fault: Fault, heal: bool) -> Result<Value, String> {
        let ctl = std::sync::Arc::clone(&self.ctl);
        tokio::task::spawn_blocking(move || {
            let mut c = ctl
                .lock()
                .map_err(|_| "nemesis controller poisoned".to_string())?;
            if heal {
                c.heal(&fault).map(|()| Value::Null)
            } else {
                c.start(fault)
            }
            .map_err(|e| format!("{e:#}"))
        })
        .await
        .map_err(|e| format!("nemesis task: {e}"))?
    }

    /// One step's fault, through the one builder (a step runs under no
    /// background loss: the churn is about leaders, not the network).
    fn step(&self, choice: Choice) -> Result<Fault, String> {
        let env = FaultEnv {
            background_loss: None,
            ..self.env()
        };
        let mut f = choice.faults(&env);
        match (f.pop(), f.is_empty()) {
            (Some(f), true) => Ok(f),
            _ => Err(format!("leader-churn: {choice:?} is not one fault")),
        }
    }

    /// Runs the three steps from the first leader `a` (the drawn or
    /// recorded [`Choice::LeaderChurn`], whose start value is `value`);
    /// the value lists the steps with their times.
    pub(super) async fn leader_churn(
        &mut self,
        a: String,
        mut value: Value,
    ) -> Result<Value, String> {
        let t0 = tokio::time::Instant::now();
        let ms = || t0.elapsed().as_millis() as u64;
        let isolate = |n: &str| {
            self.step(Choice::IsolateLeader {
                node: n.to_string(),
            })
        };
        let mut steps = vec![json!({"at_ms": ms(), "isolate": a})];
        let isolate_a = isolate(&a)?;
        self.apply(isolate_a.clone(), false).await?;
        let Some(b) = self.leader_other_than(&a).await else {
            steps.push(json!({"at_ms": ms(), "stopped": "no new leader"}));
            value["steps"] = json!(steps);
            return Ok(value);
        };
        // Starting a partition rebuilds every node's partition chain, so
        // this replaces A's isolation (A rejoins) in one step. A's fault
        // stays recorded: its heal is the same chain removal.
        let isolate_b = isolate(&b)?;
        steps.push(json!({"at_ms": ms(), "leader": b, "isolate": b, "rejoins": a}));
        self.apply(isolate_b.clone(), false).await?;
        let Some(c) = self.leader_other_than(&b).await else {
            steps.push(json!({"at_ms": ms(), "stopped": "no third leader"}));
            value["steps"] = json!(steps);
            return Ok(value);
        };
        steps.push(json!({"at_ms": ms(), "leader": c, "kill": c, "rejoins": b}));
        let kill = self.step(Choice::KillLeader { node: c.clone() })?;
        self.apply(kill, false).await?;
        self.apply(isolate_b, true).await?;
        self.apply(isolate_a, true).await?;
        steps.push(json!({"at_ms": ms(), "healed": "partition"}));
        value["steps"] = json!(steps);
        Ok(value)
    }
}
