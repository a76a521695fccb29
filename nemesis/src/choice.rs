//! A drawn fault as data: [`draw`] picks a [`Choice`] for a kind from a
//! [`Cluster`] view and an rng (pure: no I/O), and [`Choice::faults`] turns
//! it into the node-level [`Fault`]s to start. The driver and a replay
//! both go through `faults`, so a replayed choice starts exactly what the
//! drawn one did. A `Choice`'s serde form is the `fault` part of a
//! `nemesis-schedule.json` entry and of the history's nemesis `start`
//! values (`{"fault": "kill", "node": "n2"}`).

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::IndexedRandom;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fault::{Fault, ProcTarget, offset_ms, shell_quote};
use crate::grudge::{self, Grudge};
use crate::kind::NemesisKind;

/// The link rate of the bandwidth fault: slow enough to matter to a
/// consensus protocol's heartbeats under load, fast enough to keep it alive.
pub const BANDWIDTH_RATE: &str = "1mbit";

/// How long a clock strobe runs.
pub const STROBE_SECONDS: u64 = 10;

fn strobe_seconds() -> u64 {
    STROBE_SECONDS
}

/// One resolved fault: the kind and the concrete nodes (and offsets) it
/// hits. Leader-aimed faults name the node that was the leader: a replay
/// hits that node, whoever leads then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Choice {
    Partition {
        grudge: Grudge,
        #[serde(default)]
        one_way: bool,
    },
    /// Both directions of the link between two nodes, at `rate`.
    Bandwidth {
        link: Vec<String>,
        rate: String,
    },
    /// Every listed node drops this share of node-to-node packets.
    Loss {
        nodes: Vec<String>,
        probability: f64,
    },
    /// Every listed node delays what it sends to other nodes.
    Latency {
        nodes: Vec<String>,
        delay_ms: u64,
    },
    ClockBump {
        node: String,
        offset: String,
    },
    ClockStrobe {
        node: String,
        delta: String,
        period_ms: u64,
        #[serde(default = "strobe_seconds")]
        duration_s: u64,
    },
    Kill {
        node: String,
    },
    KillAll {
        nodes: Vec<String>,
    },
    Pause {
        node: String,
    },
    Crash {
        node: String,
    },
    KillLeader {
        node: String,
    },
    PauseLeader {
        node: String,
    },
    IsolateLeader {
        node: String,
    },
    /// Isolate, then set the clock back by `offset`.
    SkewLeader {
        node: String,
        offset: String,
    },
    /// A sequence that reacts to elections, starting by isolating `node`
    /// (the leader then); the driver runs the later steps as leaders show.
    /// [`Choice::faults`] is that first step.
    LeaderChurn {
        node: String,
    },
}

/// What a draw may look at: the cluster as the driver sees it now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// Every node's name.
    pub nodes: Vec<String>,
    /// The single current leader, when the target names one.
    pub leader: Option<String>,
    /// Groups worth cutting off together, with what they are (a Dynamo
    /// key's preference list): half the partitions cut one off.
    pub groups: Vec<(String, Vec<String>)>,
    /// `--loss-prob`: the loss fault's probability instead of a random one.
    pub loss_prob: Option<f64>,
}

/// A drawn choice and how it was drawn (information for the history; a
/// replay needs only the choice).
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    pub choice: Choice,
    /// How a leader-aimed fault found its node.
    pub chosen: Option<&'static str>,
    /// A partition's shape (`isolate-one`, `halves`, `one-way-halves`,
    /// `majorities-ring`, `target-group`).
    pub shape: Option<&'static str>,
    /// The target's name for the group a `target-group` partition cut off.
    pub group: Option<String>,
    /// The node an `isolate-one` partition cut off (the election checker
    /// reads it to time the election after a fault on the leader).
    pub isolated: Option<String>,
}

impl Drawn {
    fn of(choice: Choice) -> Drawn {
        Drawn {
            choice,
            chosen: None,
            shape: None,
            group: None,
            isolated: None,
        }
    }

    /// The history's nemesis `start` value: the choice plus how it was
    /// drawn. [`Choice::from_info`] reads the choice back.
    pub fn info(&self) -> Value {
        let mut v = serde_json::to_value(&self.choice).unwrap_or(Value::Null);
        if let Some(c) = self.chosen {
            v["chosen"] = json!(c);
        }
        if let Some(s) = self.shape {
            v["shape"] = json!(s);
        }
        if let Some(g) = &self.group {
            v["what"] = json!(g);
        }
        if let Some(n) = &self.isolated {
            v["isolated"] = json!(n);
        }
        v
    }
}

/// Why nothing could be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrawError {
    #[error("{0} needs at least one node")]
    NoNodes(NemesisKind),
    #[error("{0} needs two nodes")]
    OneNode(NemesisKind),
}

/// Draws a fault of `kind` on `cluster`. Pure: the same kind, cluster and
/// rng state give the same choice.
pub fn draw<R: Rng + ?Sized>(
    kind: NemesisKind,
    cluster: &Cluster,
    rng: &mut R,
) -> Result<Drawn, DrawError> {
    let nodes = &cluster.nodes;
    if nodes.is_empty() {
        return Err(DrawError::NoNodes(kind));
    }
    let pick = |rng: &mut R| nodes[rng.random_range(0..nodes.len())].clone();
    // The leader, else a random node; and which of the two it is.
    let leader_or_random = |rng: &mut R| match &cluster.leader {
        Some(l) => (l.clone(), "leader"),
        None => (pick(rng), "random node (no single leader seen)"),
    };
    let aimed = |choice: Choice, chosen| Drawn {
        chosen: Some(chosen),
        ..Drawn::of(choice)
    };
    Ok(match kind {
        NemesisKind::Partition => {
            if nodes.len() < 2 {
                return Err(DrawError::OneNode(kind));
            }
            // A group that is every node (or none) would cut no link.
            let groups: Vec<&(String, Vec<String>)> = cluster
                .groups
                .iter()
                .filter(|(_, g)| !g.is_empty() && nodes.iter().any(|n| !g.contains(n)))
                .collect();
            if !groups.is_empty() && rng.random_bool(0.5) {
                let (what, group) = groups[rng.random_range(0..groups.len())];
                cut_off_group(nodes, what, group)
            } else {
                draw_partition(nodes, cluster.leader.as_deref(), rng)
            }
        }
        NemesisKind::Bandwidth => {
            if nodes.len() < 2 {
                return Err(DrawError::OneNode(kind));
            }
            let a = pick(rng);
            let b = loop {
                let b = pick(rng);
                if b != a {
                    break b;
                }
            };
            Drawn::of(Choice::Bandwidth {
                link: vec![a, b],
                rate: BANDWIDTH_RATE.into(),
            })
        }
        NemesisKind::Loss => {
            let random = *[0.05, 0.1, 0.2, 0.3].choose(rng).unwrap_or(&0.1);
            Drawn::of(Choice::Loss {
                nodes: nodes.clone(),
                probability: cluster.loss_prob.unwrap_or(random),
            })
        }
        NemesisKind::Latency => {
            let delay_ms = *[20u64, 50, 100, 250].choose(rng).unwrap_or(&50);
            Drawn::of(Choice::Latency {
                nodes: nodes.clone(),
                delay_ms,
            })
        }
        NemesisKind::Clock => {
            let node = pick(rng);
            Drawn::of(draw_clock(&node, rng))
        }
        NemesisKind::Kill => Drawn::of(Choice::Kill { node: pick(rng) }),
        NemesisKind::KillAll => Drawn::of(Choice::KillAll {
            nodes: nodes.clone(),
        }),
        NemesisKind::Pause => Drawn::of(Choice::Pause { node: pick(rng) }),
        NemesisKind::Crash => Drawn::of(Choice::Crash { node: pick(rng) }),
        NemesisKind::KillLeader => {
            let (node, why) = leader_or_random(rng);
            aimed(Choice::KillLeader { node }, why)
        }
        NemesisKind::PauseLeader => {
            let (node, why) = leader_or_random(rng);
            aimed(Choice::PauseLeader { node }, why)
        }
        NemesisKind::IsolateLeader => {
            let (node, why) = leader_or_random(rng);
            aimed(Choice::IsolateLeader { node }, why)
        }
        NemesisKind::SkewLeader => {
            let (node, why) = leader_or_random(rng);
            // Backwards, so a wall-clock lease looks younger than it is.
            let ms = rng.random_range(2_000..=30_000);
            let offset = format!("-{}.{:03}", ms / 1000, ms % 1000);
            aimed(Choice::SkewLeader { node, offset }, why)
        }
        NemesisKind::LeaderChurn => {
            let (node, why) = leader_or_random(rng);
            aimed(Choice::LeaderChurn { node }, why)
        }
    })
}

/// A random partition: isolate one node (`leader` when known), random
/// halves, one-way random halves (the minority cannot open connections to
/// the majority), or (≥ 5 nodes) majorities-ring.
pub fn draw_partition<R: Rng + ?Sized>(
    nodes: &[String],
    leader: Option<&str>,
    rng: &mut R,
) -> Drawn {
    let shapes = if nodes.len() >= 5 { 4 } else { 3 };
    let (grudge, one_way, shape) = match rng.random_range(0..shapes) {
        0 => {
            let (node, why) = match leader {
                Some(l) => (l.to_string(), "leader"),
                None => (
                    nodes[rng.random_range(0..nodes.len())].clone(),
                    "random node",
                ),
            };
            return Drawn {
                choice: Choice::Partition {
                    grudge: grudge::isolate(nodes, &node),
                    one_way: false,
                },
                chosen: Some(why),
                shape: Some("isolate-one"),
                group: None,
                isolated: Some(node),
            };
        }
        1 => (grudge::random_halves(nodes, rng), false, "halves"),
        2 => (
            grudge::one_way_random_halves(nodes, rng),
            true,
            "one-way-halves",
        ),
        _ => (grudge::majorities_ring(nodes), false, "majorities-ring"),
    };
    Drawn {
        shape: Some(shape),
        ..Drawn::of(Choice::Partition { grudge, one_way })
    }
}

/// `group` (a set the target named: `what`) cut off from the other nodes.
pub fn cut_off_group(nodes: &[String], what: &str, group: &[String]) -> Drawn {
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !group.contains(n))
        .cloned()
        .collect();
    Drawn {
        choice: Choice::Partition {
            grudge: grudge::complete_grudge(&[group.to_vec(), rest]),
            one_way: false,
        },
        chosen: None,
        shape: Some("target-group"),
        group: Some(what.to_string()),
        isolated: None,
    }
}

/// A random clock fault on `node`: a bump of ±10 ms to ±2 min (log-uniform,
/// so small and large skews both come up) or a strobe.
pub fn draw_clock<R: Rng + ?Sized>(node: &str, rng: &mut R) -> Choice {
    let exp: f64 = rng.random_range(1.0..5.08); // 10^1 .. 10^5.08 ms
    let ms = 10f64.powf(exp).round() as i64;
    let sign = if rng.random_bool(0.5) { "+" } else { "-" };
    let spec = format!("{sign}{}.{:03}", ms / 1000, ms % 1000);
    if rng.random_bool(0.7) {
        Choice::ClockBump {
            node: node.to_string(),
            offset: spec,
        }
    } else {
        Choice::ClockStrobe {
            node: node.to_string(),
            delta: spec,
            period_ms: rng.random_range(50..=1000),
            duration_s: STROBE_SECONDS,
        }
    }
}

/// How the DB's processes are found and restarted on a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DbProcess {
    /// Pidfile inside the node.
    pub pidfile: String,
    /// node → idempotent start command (the heal of a kill), generated by
    /// faultline's target code, never taken from user input.
    pub restart: BTreeMap<String, String>,
}

/// What turning a choice into node faults needs besides the choice.
#[derive(Clone, Copy, Debug)]
pub struct FaultEnv<'a> {
    /// Every node (an isolation cuts one off from these).
    pub nodes: &'a [String],
    pub db: &'a DbProcess,
    /// The clock helper's path on the nodes; `None`: libfaketime (the lab).
    pub clock_helper: Option<&'a str>,
    /// The binary the latency fault runs on the nodes as its delayer;
    /// `None` (nodes outside the lab) leaves the path empty, which the
    /// fault's validation refuses, naming it.
    pub delayer: Option<&'a str>,
    /// `--loss-prob` P > 0: every fault but a loss also drops P of the
    /// node-to-node packets while it lasts (healed with it).
    pub background_loss: Option<f64>,
}

impl Choice {
    /// Reads a nemesis `start` value (see [`Drawn::info`]); `None` for a
    /// value that is no fault. Information fields are ignored.
    pub fn from_info(v: &Value) -> Option<Choice> {
        serde_json::from_value(v.clone()).ok()
    }

    /// The `--nemesis` kind that makes this fault.
    pub fn kind(&self) -> NemesisKind {
        match self {
            Choice::Partition { .. } => NemesisKind::Partition,
            Choice::Bandwidth { .. } => NemesisKind::Bandwidth,
            Choice::Loss { .. } => NemesisKind::Loss,
            Choice::Latency { .. } => NemesisKind::Latency,
            Choice::ClockBump { .. } | Choice::ClockStrobe { .. } => NemesisKind::Clock,
            Choice::Kill { .. } => NemesisKind::Kill,
            Choice::KillAll { .. } => NemesisKind::KillAll,
            Choice::Pause { .. } => NemesisKind::Pause,
            Choice::Crash { .. } => NemesisKind::Crash,
            Choice::KillLeader { .. } => NemesisKind::KillLeader,
            Choice::PauseLeader { .. } => NemesisKind::PauseLeader,
            Choice::IsolateLeader { .. } => NemesisKind::IsolateLeader,
            Choice::SkewLeader { .. } => NemesisKind::SkewLeader,
            Choice::LeaderChurn { .. } => NemesisKind::LeaderChurn,
        }
    }

    /// Every node the fault names.
    pub fn nodes(&self) -> BTreeSet<&str> {
        match self {
            Choice::Partition { grudge, .. } => grudge
                .iter()
                .flat_map(|(k, v)| std::iter::once(k).chain(v))
                .map(String::as_str)
                .collect(),
            Choice::Bandwidth { link, .. } => link.iter().map(String::as_str).collect(),
            Choice::Loss { nodes, .. }
            | Choice::Latency { nodes, .. }
            | Choice::KillAll { nodes } => nodes.iter().map(String::as_str).collect(),
            Choice::ClockBump { node, .. }
            | Choice::ClockStrobe { node, .. }
            | Choice::Kill { node }
            | Choice::Pause { node }
            | Choice::Crash { node }
            | Choice::KillLeader { node }
            | Choice::PauseLeader { node }
            | Choice::IsolateLeader { node }
            | Choice::SkewLeader { node, .. }
            | Choice::LeaderChurn { node } => [node.as_str()].into(),
        }
    }

    /// What is wrong with the fault's values, if anything (node names are
    /// checked against a cluster elsewhere).
    pub fn check(&self) -> Result<(), String> {
        let offset = |what: &str, s: &str| match offset_ms(s) {
            Some(_) => Ok(()),
            None => Err(format!(
                "{what} `{s}` is not a clock offset (+S.mmm or -S.mmm)"
            )),
        };
        match self {
            Choice::Partition { grudge, .. } if grudge.values().all(BTreeSet::is_empty) => {
                Err("the partition's grudge cuts no link".into())
            }
            Choice::KillAll { nodes } if nodes.is_empty() => Err("`nodes` is empty".into()),
            Choice::Bandwidth { link, rate } => {
                if link.len() != 2 || link[0] == link[1] {
                    Err(format!(
                        "`link` must name two different nodes, not {link:?}"
                    ))
                } else if rate.trim().is_empty() {
                    Err("`rate` is empty".into())
                } else {
                    Ok(())
                }
            }
            Choice::ClockBump { offset: o, .. } | Choice::SkewLeader { offset: o, .. } => {
                offset("offset", o)
            }
            Choice::Loss { probability, .. } if !(*probability > 0.0 && *probability <= 1.0) => {
                Err(format!("`probability` {probability} is not in (0, 1]"))
            }
            Choice::Latency { delay_ms, .. } if *delay_ms == 0 || *delay_ms > 60_000 => {
                Err(format!("`delay_ms` {delay_ms} is not in 1..=60000"))
            }
            Choice::ClockStrobe {
                delta, period_ms, ..
            } => {
                if *period_ms == 0 {
                    Err("`period_ms` must be positive".into())
                } else {
                    offset("delta", delta)
                }
            }
            _ => Ok(()),
        }
    }

    /// The node faults to start, in order (a composite fault's parts start
    /// one after another and heal together). The only builder: fresh draws
    /// and replays both come here.
    pub fn faults(&self, env: &FaultEnv) -> Vec<Fault> {
        let db = env.db;
        let kill = |node: &str| Fault::Kill {
            nodes: vec![node.to_string()],
            target: ProcTarget::Pidfile(db.pidfile.clone()),
            restart: db.restart.get(node).cloned(),
        };
        let pause = |node: &str| Fault::Pause {
            nodes: vec![node.to_string()],
            target: ProcTarget::Pidfile(db.pidfile.clone()),
        };
        let isolate = |node: &str| Fault::Partition {
            grudge: grudge::isolate(env.nodes, node),
            one_way: false,
        };
        let helper = env.clock_helper.map(str::to_string);
        let bump = |node: &str, offset: &str| Fault::ClockBump {
            nodes: vec![node.to_string()],
            offset: offset.to_string(),
            helper: helper.clone(),
        };
        let mut out = match self {
            Choice::Partition { grudge, one_way } => vec![Fault::Partition {
                grudge: grudge.clone(),
                one_way: *one_way,
            }],
            Choice::Bandwidth { link, rate } => vec![Fault::Bandwidth {
                nodes: link.clone(),
                rate: rate.clone(),
                dev: "auto".into(),
                to: link.clone(),
            }],
            Choice::Loss { nodes, probability } => vec![Fault::Loss {
                nodes: nodes.clone(),
                probability: *probability,
            }],
            Choice::Latency { nodes, delay_ms } => vec![Fault::Latency {
                nodes: nodes.clone(),
                delay_ms: *delay_ms,
                binary: env.delayer.unwrap_or_default().to_string(),
            }],
            Choice::ClockBump { node, offset } => vec![bump(node, offset)],
            Choice::ClockStrobe {
                node,
                delta,
                period_ms,
                duration_s,
            } => vec![Fault::ClockStrobe {
                nodes: vec![node.clone()],
                delta: delta.clone(),
                period_ms: *period_ms,
                duration_s: *duration_s,
                helper: helper.clone(),
            }],
            Choice::Kill { node } | Choice::KillLeader { node } => vec![kill(node)],
            // One kill per node, started back to back: our own nodes lose
            // what they had acknowledged but not yet written.
            Choice::KillAll { nodes } => nodes.iter().map(|n| kill(n)).collect(),
            Choice::Pause { node } | Choice::PauseLeader { node } => vec![pause(node)],
            Choice::Crash { node } => vec![Fault::Crash {
                nodes: vec![node.clone()],
                restart: db
                    .restart
                    .get(node)
                    .map(|r| format!("{}; {r}", drop_stale_pidfile(&db.pidfile))),
            }],
            Choice::IsolateLeader { node } | Choice::LeaderChurn { node } => vec![isolate(node)],
            // Isolated first: a lease the leader renewed after the jump
            // would be timed on the new clock and end on time.
            Choice::SkewLeader { node, offset } => vec![isolate(node), bump(node, offset)],
        };
        if let Some(p) = env.background_loss.filter(|p| *p > 0.0)
            && !matches!(self, Choice::Loss { .. })
        {
            out.push(Fault::Loss {
                nodes: env.nodes.to_vec(),
                probability: p,
            });
        }
        out
    }
}

/// After a crash the node's pid numbering starts again, so a pidfile from
/// before may name some new, unrelated process and the (pidfile-checking)
/// restart would wrongly think the DB runs. A pidfile last written no later
/// than the second the node's process 1 started is stale: remove it.
pub fn drop_stale_pidfile(pidfile: &str) -> String {
    let f = shell_quote(pidfile);
    format!(
        "b=$(awk '/^btime/{{print $2}}' /proc/stat); s=$(awk '{{print $22}}' /proc/1/stat); \
         t=$((b + s / $(getconf CLK_TCK))); \
         if [ -f {f} ] && [ \"$(stat -c %Y {f})\" -le \"$t\" ]; then rm -f {f}; fi"
    )
}

#[cfg(test)]
mod tests;
