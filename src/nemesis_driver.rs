//! The runner's [`NemesisDriver`] for lab nodes: every interval the runner
//! heals the previous fault and starts a random one from the `--nemesis`
//! list (seeded), through [`Controller`], so every fault is in the lab's
//! state file before it is applied and `faultline nemesis heal --all`
//! undoes it after a controller crash. The kinds come up in seeded random
//! order, each once per round (a shuffled bag), so a short run still sees
//! every kind it asked for.
//!
//! What each kind does is data in the nemesis crate: its name and help in
//! [`faultline_nemesis::kind`], the draw and the node faults it builds in
//! [`faultline_nemesis::choice`] (docs/nemesis.md). This driver adds the
//! I/O: it asks the target for its leader (only for kinds that aim at it,
//! through [`faultline_targets::Primaries`]; without one seen they hit a
//! random node and say so) and its partition groups
//! ([`Target::partition_groups`]), runs the faults over SSH, and records
//! each choice in the schedule, or replays one from it through the same
//! [`Choice::faults`] builder.
//!
//! Leader-aimed kinds are the schedules that expose consensus bugs a
//! random node rarely hits: with a short `--nemesis-interval` (0.5–1 s)
//! `kill-leader` lands right after votes and promises; `pause-leader`
//! wakes an old leader that still believes it leads; `skew-leader` lets a
//! lease timed on a wall clock outlive its leadership. `leader-churn` is
//! the one kind that reacts to elections while it runs: see
//! [`leader_churn`].

mod leader_churn;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::runner::NemesisDriver;
use faultline_nemesis::{Choice, Cluster, Drawn, FaultEnv, draw};
use faultline_targets::{BoxFuture, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::nemesis_ctl::Controller;
use crate::nemesis_schedule::{Log, Next};

// The kinds, their names and help live in the nemesis crate, beside the
// choices they draw.
pub use faultline_nemesis::{DbProcess, NemesisKind, parse_list};

/// Faults on lab nodes, chosen at random from a list.
pub struct LabNemesis {
    ctl: Arc<Mutex<Controller>>,
    kinds: Vec<NemesisKind>,
    nodes: Vec<String>,
    rng: StdRng,
    db: DbProcess,
    target: Arc<dyn Target>,
    /// Kinds still to be used in this round (a shuffled bag, so every kind
    /// in the list comes up once per round, in a seeded random order).
    bag: Vec<NemesisKind>,
    /// Short description of the active fault, for the progress bar.
    pub active: Arc<Mutex<Option<String>>>,
    /// The clock helper's path on the nodes (nodes outside the lab); `None`
    /// means libfaketime (the lab).
    pub clock_helper: Option<String>,
    /// The binary the latency fault runs on the nodes as its delayer;
    /// `None` (nodes outside the lab) makes `latency` an error.
    pub delayer: Option<String>,
    /// Records the schedule into the run dir, and replays one
    /// (`--nemesis-schedule`): see [`crate::nemesis_schedule`].
    pub schedule: Option<Log>,
    /// `--loss-prob`: the loss fault's probability, and background loss
    /// under every other fault (see [`FaultEnv::background_loss`]).
    pub loss_prob: Option<f64>,
}

/// `--nemesis`'s long help: every kind of the kind table, then what some
/// of them need.
pub fn long_help() -> String {
    format!(
        "Faults, a comma list of these kinds, all (every kind the target\n\
         supports, `faultline targets`) or none. Default: the target's\n\
         standard mix, all but latency (lab only); none for noop.\n{}\n\n\
         clock and skew-leader: raft, paxos and zab in the lab (under libfaketime); \
         real clocks outside the lab, etcd included; refused for etcd in the lab. \
         The leader kinds: docs/reference-impls.md; all: docs/nemesis.md",
        NemesisKind::help_list()
    )
}

/// `--loss-prob`: a probability in [0, 1].
pub fn parse_loss_prob(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("`{s}` is not a probability between 0 and 1"))
}

impl LabNemesis {
    pub fn new(
        ctl: Controller,
        kinds: Vec<NemesisKind>,
        nodes: Vec<String>,
        seed: u64,
        db: DbProcess,
        target: Arc<dyn Target>,
    ) -> LabNemesis {
        LabNemesis {
            ctl: Arc::new(Mutex::new(ctl)),
            kinds,
            nodes,
            // Not the generator's stream: a different seed per purpose.
            rng: StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321),
            db,
            target,
            bag: Vec::new(),
            active: Arc::new(Mutex::new(None)),
            clock_helper: None,
            delayer: None,
            schedule: None,
            loss_prob: None,
        }
    }

    /// What [`Choice::faults`] needs from this driver.
    fn env(&self) -> FaultEnv<'_> {
        FaultEnv {
            nodes: &self.nodes,
            db: &self.db,
            clock_helper: self.clock_helper.as_deref(),
            delayer: self.delayer.as_deref(),
            background_loss: self.loss_prob,
        }
    }

    /// The current leader, if the target can tell and exactly one is seen.
    async fn leader(&self) -> Option<String> {
        let p = self.target.primaries()?;
        let r = tokio::time::timeout(Duration::from_secs(3), p.primaries(&self.nodes)).await;
        match r {
            Ok(Ok(v)) if v.len() == 1 => v.into_iter().next(),
            _ => None,
        }
    }

    /// Draws the next fault: the next kind of the bag, on the cluster as
    /// seen now (the leader is asked for only by kinds that aim at it).
    async fn choose(&mut self) -> Result<Drawn, String> {
        if self.bag.is_empty() {
            self.bag = self.kinds.clone();
            self.bag.shuffle(&mut self.rng);
        }
        let Some(kind) = self.bag.pop() else {
            return Err("no faults to choose from".into());
        };
        if kind == NemesisKind::Latency && self.delayer.is_none() {
            return Err("latency needs lab nodes (it runs the faultline binary on \
                        them as the delayer)"
                .into());
        }
        let cluster = Cluster {
            nodes: self.nodes.clone(),
            leader: if kind.wants_leader() {
                self.leader().await
            } else {
                None
            },
            groups: if kind == NemesisKind::Partition {
                self.target.partition_groups()
            } else {
                Vec::new()
            },
            loss_prob: self.loss_prob,
        };
        draw(kind, &cluster, &mut self.rng).map_err(|e| e.to_string())
    }
}

fn describe(v: &Value) -> String {
    let f = v["fault"].as_str().unwrap_or("fault");
    if let Some(n) = v["node"].as_str() {
        format!("{f} {n}")
    } else if let Some(n) = v["isolated"].as_str() {
        format!("{f} isolate {n}")
    } else if let Some(s) = v["shape"].as_str() {
        format!("{f} {s}")
    } else {
        f.to_string()
    }
}

impl NemesisDriver for LabNemesis {
    fn start(&mut self, t: Duration) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            if self.kinds.is_empty() || self.nodes.is_empty() {
                return Ok(Value::Null);
            }
            let next = self
                .schedule
                .as_mut()
                .map_or(Next::Fresh, |s| s.next_fault(t));
            let (choice, mut value) = match next {
                Next::Fresh => {
                    let d = self.choose().await?;
                    (d.choice.clone(), d.info())
                }
                Next::Replay(c) => {
                    let mut v = serde_json::to_value(&c).unwrap_or(Value::Null);
                    v["chosen"] = json!("recorded schedule");
                    (c, v)
                }
                Next::Done => return Ok(json!({"replay": "no more recorded faults"})),
            };
            // Leader churn is a sequence that reacts to elections, started
            // and healed step by step from its first leader.
            // A replay starts it from the recorded first leader.
            if let Choice::LeaderChurn { node } = &choice {
                let r = self.leader_churn(node.clone(), value.clone()).await;
                if let Ok(mut a) = self.active.lock() {
                    *a = r.as_ref().ok().map(describe);
                }
                if let Some(s) = &mut self.schedule {
                    s.started(t, &value, r.as_ref().err().map(String::as_str));
                }
                return r;
            }
            let faults = choice.faults(&self.env());
            if let Some(p) = self.loss_prob.filter(|p| *p > 0.0)
                && !matches!(choice, Choice::Loss { .. })
            {
                // The background loss (FaultEnv::background_loss) is part
                // of the faults; the value says so.
                value["loss"] = json!(p);
            }
            if let Ok(mut a) = self.active.lock() {
                *a = Some(describe(&value));
            }
            let ctl = Arc::clone(&self.ctl);
            let r = tokio::task::spawn_blocking(move || {
                let mut c = ctl
                    .lock()
                    .map_err(|_| "nemesis controller poisoned".to_string())?;
                // A composite fault starts its parts in order; parts started
                // before a failure stay recorded, so the heal undoes them.
                let mut outcomes = Vec::new();
                for f in faults {
                    outcomes.push(c.start(f).map_err(|e| format!("{e:#}"))?);
                }
                Ok::<_, String>(if outcomes.len() == 1 {
                    outcomes.remove(0)
                } else {
                    Value::Array(outcomes)
                })
            })
            .await
            .map_err(|e| format!("nemesis task: {e}"))?;
            if let Some(s) = &mut self.schedule {
                s.started(t, &value, r.as_ref().err().map(String::as_str));
            }
            match r {
                Ok(outcome) => {
                    value["nodes"] = outcome;
                    Ok(value)
                }
                Err(e) => {
                    if let Ok(mut a) = self.active.lock() {
                        *a = None;
                    }
                    Err(format!("{}: {e}", describe(&value)))
                }
            }
        })
    }

    fn next_due(&self) -> Option<Duration> {
        self.schedule.as_ref().and_then(Log::next_due)
    }

    fn heal_all(&mut self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            if let Some(s) = &mut self.schedule {
                s.healing();
            }
            // A target with a failover (redis failover=true) promotes a
            // replica first, while a lost primary is still cut off.
            let failover = match self.target.failover() {
                Some(f) => match f.failover().await {
                    Ok(v) => v,
                    Err(e) => json!({"failover_error": e.to_string()}),
                },
                None => Value::Null,
            };
            let ctl = Arc::clone(&self.ctl);
            let r = tokio::task::spawn_blocking(move || {
                let mut c = ctl
                    .lock()
                    .map_err(|_| "nemesis controller poisoned".to_string())?;
                let healed: Vec<Value> = c
                    .active()
                    .unwrap_or_default()
                    .iter()
                    .map(|f| serde_json::to_value(f).unwrap_or(Value::Null))
                    .collect();
                c.heal_all().map_err(|e| format!("{e:#}"))?;
                let mut v = json!({"healed": healed});
                if let (Some(f), Some(o)) = (failover.as_object(), v.as_object_mut()) {
                    o.extend(f.clone());
                }
                Ok::<_, String>(v)
            })
            .await
            .map_err(|e| format!("nemesis task: {e}"))?;
            if r.is_ok()
                && let Ok(mut a) = self.active.lock()
            {
                *a = None;
            }
            r
        })
    }
}

#[cfg(test)]
mod tests;
