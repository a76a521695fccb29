//! The runner's [`NemesisDriver`] for lab nodes: every interval the runner
//! heals the previous fault and starts a random one from the `--nemesis`
//! list (seeded), through [`Controller`], so every fault is in the lab's
//! state file before it is applied and `faultline nemesis heal --all`
//! undoes it after a controller crash. The kinds come up in seeded random
//! order, each once per round (a shuffled bag), so a short run still sees
//! every kind it asked for.
//!
//! - `partition`: a random grudge among isolate-one (the leader, when the
//!   target can name it), random halves, one-way random halves (the
//!   minority cannot open connections to the majority, which still reaches
//!   it: conntrack NEW drops), and (≥ 5 nodes) majorities-ring; for a
//!   target that names groups worth cutting off together
//!   ([`Target::partition_groups`]: a Dynamo key's preference list), half
//!   the partitions cut one of them off instead;
//! - `bandwidth`: limit the link between two random nodes (both ways) to
//!   a low rate, with htb filters on just that link;
//! - `loss`: every node drops a random share (5–30%) of the packets other
//!   nodes send it (never the controller's: clients keep their view);
//! - `latency`: every node delays what it sends to other nodes by 20–250 ms
//!   (an NFQUEUE delayer: the faultline binary, so lab nodes only);
//! - `clock`: bump a random node's clock by ±10 ms to ±2 min, or strobe it;
//!   outside the lab through the clock helper (the real clock), in the lab
//!   through libfaketime;
//! - `kill`: SIGKILL the DB on a random node; healing restarts it with the
//!   DB's own (idempotent) start command, which is stored in the fault;
//! - `pause`: SIGSTOP the DB on a random node; healing sends SIGCONT;
//! - `clock`: bump or strobe one random node's libfaketime clock
//!   (only targets started under libfaketime; healing resets it to +0);
//! - `crash`: crash a random lab node (every process, sshd included);
//!   healing restarts the node, then the DB with the same start command as
//!   a kill's heal.
//!
//! Leader-targeted kinds (the target names its leader through
//! [`faultline_targets::Primaries`]; without one seen they hit a random
//! node and say so): the schedules that expose consensus bugs a random
//! node rarely hits.
//!
//! - `kill-leader`: SIGKILL the leader, restarted at the heal; with a short
//!   `--nemesis-interval` (0.5–1 s) leaders change every few hundred ms,
//!   so crashes land right after votes and promises;
//! - `pause-leader`: SIGSTOP the leader until the heal: the rest elect a
//!   new one, and the old one wakes up still believing it leads;
//! - `isolate-leader`: cut the leader off from every other node;
//! - `skew-leader`: isolate the leader, then bump its clock back by 2–30 s,
//!   so a lease timed on its wall clock outlives its leadership;
//! - `leader-churn`: three leaders in a few seconds (isolate the leader,
//!   isolate its successor, kill the third): see [`leader_churn`].

mod leader_churn;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::runner::NemesisDriver;
use faultline_nemesis::fault::shell_quote;
use faultline_nemesis::{Fault, ProcTarget, grudge};
use faultline_targets::{BoxFuture, Target};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::nemesis_ctl::Controller;
use crate::nemesis_schedule::{Choice, Log, Next};

/// One entry of `--nemesis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NemesisKind {
    Partition,
    Kill,
    /// Every node at once (Jepsen's kill with `:targets :all`): a power
    /// failure of the whole cluster.
    KillAll,
    Pause,
    Clock,
    Crash,
    Bandwidth,
    Loss,
    Latency,
    KillLeader,
    PauseLeader,
    IsolateLeader,
    SkewLeader,
    LeaderChurn,
}

impl NemesisKind {
    /// Every kind, in the order help and errors list them.
    pub const ALL: [NemesisKind; 14] = [
        NemesisKind::Partition,
        NemesisKind::Kill,
        NemesisKind::KillAll,
        NemesisKind::Pause,
        NemesisKind::Clock,
        NemesisKind::Crash,
        NemesisKind::Bandwidth,
        NemesisKind::Loss,
        NemesisKind::Latency,
        NemesisKind::KillLeader,
        NemesisKind::PauseLeader,
        NemesisKind::IsolateLeader,
        NemesisKind::SkewLeader,
        NemesisKind::LeaderChurn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Partition => "partition",
            NemesisKind::Kill => "kill",
            NemesisKind::KillAll => "kill-all",
            NemesisKind::Pause => "pause",
            NemesisKind::Clock => "clock",
            NemesisKind::Crash => "crash",
            NemesisKind::Bandwidth => "bandwidth",
            NemesisKind::Loss => "loss",
            NemesisKind::Latency => "latency",
            NemesisKind::KillLeader => "kill-leader",
            NemesisKind::PauseLeader => "pause-leader",
            NemesisKind::IsolateLeader => "isolate-leader",
            NemesisKind::SkewLeader => "skew-leader",
            NemesisKind::LeaderChurn => leader_churn::NAME,
        }
    }

    /// Whether the kind moves a node's clock (needs libfaketime in the lab,
    /// or the clock helper outside it).
    pub fn uses_clock(self) -> bool {
        matches!(self, NemesisKind::Clock | NemesisKind::SkewLeader)
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NemesisKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NemesisKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown nemesis `{s}` (expected a comma list of {}, or none)",
                    NemesisKind::ALL.map(NemesisKind::name).join(", ")
                )
            })
    }
}

/// Parses `partition,kill,pause` or `none` (empty list). Duplicates are dropped.
pub fn parse_list(s: &str) -> Result<Vec<NemesisKind>, String> {
    let s = s.trim();
    if s == "none" || s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let k: NemesisKind = part.trim().parse()?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// How the DB's processes are found and restarted on a node.
pub struct DbProcess {
    /// Pidfile inside the node.
    pub pidfile: String,
    /// node → idempotent start command (the heal of a kill).
    pub restart: std::collections::BTreeMap<String, String>,
}

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
    /// under every other fault (see [`with_background_loss`]).
    pub loss_prob: Option<f64>,
}

/// `--loss-prob`: a probability in [0, 1].
pub fn parse_loss_prob(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("`{s}` is not a probability between 0 and 1"))
}

/// With `--loss-prob P` (P > 0) a non-loss fault also drops P of the
/// node-to-node packets while it lasts, so a failure detector's detection
/// time is measured under loss; the value records it as `loss`. Faults
/// healed together, so the loss ends with the fault.
pub fn with_background_loss(
    faults: &mut Vec<Fault>,
    value: &mut Value,
    nodes: &[String],
    loss_prob: Option<f64>,
) {
    let Some(p) = loss_prob.filter(|p| *p > 0.0) else {
        return;
    };
    if faults.is_empty() || faults.iter().any(|f| matches!(f, Fault::Loss { .. })) {
        return;
    }
    faults.push(Fault::Loss {
        nodes: nodes.to_vec(),
        probability: p,
    });
    value["loss"] = json!(p);
}

/// The link rate of the bandwidth fault: slow enough to matter to a
/// consensus protocol's heartbeats under load, fast enough to keep it alive.
pub const BANDWIDTH_RATE: &str = "1mbit";

/// A random partition: the fault and what the history says about it.
/// `leader` is isolated in the isolate-one shape when known.
pub fn choose_partition<R: rand::Rng + ?Sized>(
    nodes: &[String],
    leader: Option<String>,
    rng: &mut R,
) -> (Fault, Value) {
    let shapes = if nodes.len() >= 5 { 4 } else { 3 };
    let (grudge, one_way, mut info) = match rng.random_range(0..shapes) {
        0 => {
            let (node, why) = match leader {
                Some(l) => (l, "leader"),
                None => (
                    nodes[rng.random_range(0..nodes.len())].clone(),
                    "random node",
                ),
            };
            let g = grudge::isolate(nodes, &node);
            (
                g,
                false,
                json!({"shape": "isolate-one", "isolated": node, "chosen": why}),
            )
        }
        1 => (
            grudge::random_halves(nodes, rng),
            false,
            json!({"shape": "halves"}),
        ),
        2 => {
            let g = grudge::one_way_random_halves(nodes, rng);
            let majority: Vec<&String> = g.keys().collect();
            let minority: std::collections::BTreeSet<&String> = g.values().flatten().collect();
            let info = json!({"shape": "one-way-halves", "one_way": true,
                "cut": "the minority cannot open connections to the majority",
                "minority": minority, "majority": majority});
            (g, true, info)
        }
        _ => (
            grudge::majorities_ring(nodes),
            false,
            json!({"shape": "majorities-ring"}),
        ),
    };
    info["fault"] = json!("partition");
    info["grudge"] = json!(grudge);
    (Fault::Partition { grudge, one_way }, info)
}

/// `group` (a set the target named: `what`) cut off from the other nodes.
pub fn cut_off_group(nodes: &[String], what: &str, group: &[String]) -> (Fault, Value) {
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !group.contains(n))
        .cloned()
        .collect();
    let grudge = grudge::complete_grudge(&[group.to_vec(), rest]);
    let info = json!({"fault": "partition", "shape": "target-group", "group": group,
        "what": what, "grudge": grudge});
    (
        Fault::Partition {
            grudge,
            one_way: false,
        },
        info,
    )
}

/// A random clock fault on one node: a bump of ±10 ms to ±2 min (log-
/// uniform, so small and large skews both come up) or a strobe.
pub fn choose_clock<R: rand::Rng + ?Sized>(
    node: &str,
    helper: Option<String>,
    rng: &mut R,
) -> (Fault, Value) {
    let exp: f64 = rng.random_range(1.0..5.08); // 10^1 .. 10^5.08 ms
    let ms = 10f64.powf(exp).round() as i64;
    let sign = if rng.random_bool(0.5) { "+" } else { "-" };
    let spec = format!("{sign}{}.{:03}", ms / 1000, ms % 1000);
    if rng.random_bool(0.7) {
        (
            Fault::ClockBump {
                nodes: vec![node.to_string()],
                offset: spec.clone(),
                helper,
            },
            json!({"fault": "clock-bump", "node": node, "offset": spec}),
        )
    } else {
        let period_ms = rng.random_range(50..=1000);
        (
            Fault::ClockStrobe {
                nodes: vec![node.to_string()],
                delta: spec.clone(),
                period_ms,
                duration_s: 10,
                helper,
            },
            json!({"fault": "clock-strobe", "node": node, "delta": spec, "period_ms": period_ms}),
        )
    }
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

    fn pick_node(&mut self) -> String {
        let i = self.rng.random_range(0..self.nodes.len());
        self.nodes[i].clone()
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

    /// The leader, else a random node; and which of the two it is.
    async fn leader_or_random(&mut self) -> (String, &'static str) {
        match self.leader().await {
            Some(l) => (l, "leader"),
            None => (self.pick_node(), "random node (no single leader seen)"),
        }
    }

    /// A fault aimed at the leader (see the module docs).
    async fn choose_leader_fault(&mut self, kind: NemesisKind) -> (Vec<Fault>, Value) {
        let (node, why) = self.leader_or_random().await;
        let proc = ProcTarget::Pidfile(self.db.pidfile.clone());
        let info = json!({"fault": kind.name(), "node": node, "chosen": why});
        let faults = match kind {
            NemesisKind::KillLeader => vec![Fault::Kill {
                nodes: vec![node.clone()],
                target: proc,
                restart: self.db.restart.get(&node).cloned(),
            }],
            NemesisKind::PauseLeader => vec![Fault::Pause {
                nodes: vec![node.clone()],
                target: proc,
            }],
            NemesisKind::IsolateLeader => vec![Fault::Partition {
                grudge: grudge::isolate(&self.nodes, &node),
                one_way: false,
            }],
            _ => {
                // Backwards, so a wall-clock lease looks younger than it is.
                // Isolated first: a lease the leader renewed after the jump
                // would be timed on the new clock and end on time.
                let ms = self.rng.random_range(2_000..=30_000);
                let offset = format!("-{}.{:03}", ms / 1000, ms % 1000);
                let mut info = info;
                info["offset"] = json!(offset);
                return (
                    vec![
                        Fault::Partition {
                            grudge: grudge::isolate(&self.nodes, &node),
                            one_way: false,
                        },
                        Fault::ClockBump {
                            nodes: vec![node.clone()],
                            offset,
                            helper: self.clock_helper.clone(),
                        },
                    ],
                    info,
                );
            }
        };
        (faults, info)
    }

    /// Chooses the next fault(s); the value says what and to whom.
    async fn choose(&mut self) -> Result<(Vec<Fault>, Value), String> {
        if self.bag.is_empty() {
            self.bag = self.kinds.clone();
            self.bag.shuffle(&mut self.rng);
        }
        let Some(kind) = self.bag.pop() else {
            return Err("no faults to choose from".into());
        };
        let (fault, info) = match kind {
            NemesisKind::Partition => {
                let groups = self.target.partition_groups();
                if !groups.is_empty() && self.rng.random_bool(0.5) {
                    let (what, group) = &groups[self.rng.random_range(0..groups.len())];
                    cut_off_group(&self.nodes, what, group)
                } else {
                    let leader = self.leader().await;
                    choose_partition(&self.nodes, leader, &mut self.rng)
                }
            }
            NemesisKind::Bandwidth => {
                if self.nodes.len() < 2 {
                    return Err("bandwidth needs two nodes".into());
                }
                let a = self.pick_node();
                let b = loop {
                    let b = self.pick_node();
                    if b != a {
                        break b;
                    }
                };
                let link = vec![a.clone(), b.clone()];
                (
                    Fault::Bandwidth {
                        nodes: link.clone(),
                        rate: BANDWIDTH_RATE.into(),
                        dev: "auto".into(),
                        to: link,
                    },
                    json!({"fault": "bandwidth", "link": [a, b], "rate": BANDWIDTH_RATE}),
                )
            }
            NemesisKind::Loss => {
                let random = *[0.05, 0.1, 0.2, 0.3].choose(&mut self.rng).unwrap_or(&0.1);
                let probability = self.loss_prob.unwrap_or(random);
                (
                    Fault::Loss {
                        nodes: self.nodes.clone(),
                        probability,
                    },
                    json!({"fault": "loss", "nodes": self.nodes, "probability": probability}),
                )
            }
            NemesisKind::Latency => {
                let Some(binary) = self.delayer.clone() else {
                    return Err("latency needs lab nodes (it runs the faultline binary on \
                                them as the delayer)"
                        .into());
                };
                let delay_ms = *[20u64, 50, 100, 250].choose(&mut self.rng).unwrap_or(&50);
                (
                    Fault::Latency {
                        nodes: self.nodes.clone(),
                        delay_ms,
                        binary,
                    },
                    json!({"fault": "latency", "nodes": self.nodes, "delay_ms": delay_ms}),
                )
            }
            NemesisKind::Clock => {
                let node = self.pick_node();
                choose_clock(&node, self.clock_helper.clone(), &mut self.rng)
            }
            NemesisKind::Kill => {
                let node = self.pick_node();
                let restart = self.db.restart.get(&node).cloned();
                (
                    Fault::Kill {
                        nodes: vec![node.clone()],
                        target: ProcTarget::Pidfile(self.db.pidfile.clone()),
                        restart,
                    },
                    json!({"fault": "kill", "node": node}),
                )
            }
            // One kill per node, started back to back: our own nodes lose
            // what they had acknowledged but not yet written (a real
            // store's page cache survives a process kill in the lab).
            // Built by the schedule's own builder, so a replay is the same.
            NemesisKind::KillAll => {
                let choice = Choice::KillAll {
                    nodes: self.nodes.clone(),
                };
                let faults = choice.faults(&self.nodes, &self.db, None, None);
                return Ok((faults, json!({"fault": "kill-all", "nodes": self.nodes})));
            }
            NemesisKind::Pause => {
                let node = self.pick_node();
                (
                    Fault::Pause {
                        nodes: vec![node.clone()],
                        target: ProcTarget::Pidfile(self.db.pidfile.clone()),
                    },
                    json!({"fault": "pause", "node": node}),
                )
            }
            NemesisKind::Crash => {
                let node = self.pick_node();
                let restart = self
                    .db
                    .restart
                    .get(&node)
                    .map(|r| format!("{}; {r}", drop_stale_pidfile(&self.db.pidfile)));
                (
                    Fault::Crash {
                        nodes: vec![node.clone()],
                        restart,
                    },
                    json!({"fault": "crash", "node": node}),
                )
            }
            NemesisKind::KillLeader
            | NemesisKind::PauseLeader
            | NemesisKind::IsolateLeader
            | NemesisKind::SkewLeader => return Ok(self.choose_leader_fault(kind).await),
            // Its steps run in `start`, each waiting for the next leader.
            NemesisKind::LeaderChurn => {
                return Ok((Vec::new(), json!({"fault": leader_churn::NAME})));
            }
        };
        Ok((vec![fault], info))
    }
}

/// After a crash the node's pid numbering starts again, so a pidfile from
/// before may name some new, unrelated process and the (pidfile-checking)
/// restart would wrongly think the DB runs. A pidfile last written no later
/// than the second the node's process 1 started is stale: remove it.
pub(crate) fn drop_stale_pidfile(pidfile: &str) -> String {
    let f = shell_quote(pidfile);
    format!(
        "b=$(awk '/^btime/{{print $2}}' /proc/stat); s=$(awk '{{print $22}}' /proc/1/stat); \
         t=$((b + s / $(getconf CLK_TCK))); \
         if [ -f {f} ] && [ \"$(stat -c %Y {f})\" -le \"$t\" ]; then rm -f {f}; fi"
    )
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
            let (faults, mut value) = match next {
                Next::Fresh => {
                    let (mut f, mut v) = self.choose().await?;
                    with_background_loss(&mut f, &mut v, &self.nodes, self.loss_prob);
                    (f, v)
                }
                Next::Replay(c) => {
                    let f = c.faults(
                        &self.nodes,
                        &self.db,
                        self.clock_helper.clone(),
                        self.delayer.as_deref(),
                    );
                    let mut v = serde_json::to_value(&c).unwrap_or(Value::Null);
                    v["chosen"] = json!("recorded schedule");
                    (f, v)
                }
                Next::Done => return Ok(json!({"replay": "no more recorded faults"})),
            };
            // Leader churn is a sequence that reacts to elections, started
            // and healed step by step; a replay does not repeat it (it is
            // not in the recorded schedule).
            if faults.is_empty() && value["fault"] == leader_churn::NAME {
                let r = self.leader_churn().await;
                if let Ok(mut a) = self.active.lock() {
                    *a = r.as_ref().ok().map(describe);
                }
                return r;
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
