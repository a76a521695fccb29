//! SWIM under the in-process network: ticks in lockstep (every live,
//! unpaused member ticks once per round, then everything in flight is
//! delivered, dropped at the loss rate), seeded so a failure replays.
//! Completeness (§2 of the paper: a crashed member is eventually declared
//! dead by every live member) and accuracy (a live member that can be
//! reached ends up alive in every view) are checked for both detectors;
//! each seeded bug breaks one of them.

use super::*;
use crate::sim::{Faults, Sim};
use std::collections::BTreeSet;

struct Net {
    sim: Sim<Swim>,
    paused: BTreeSet<NodeId>,
    /// (observer, subject) pairs that went alive → suspect/dead while the
    /// subject was up and unpaused.
    false_suspicions: u64,
    /// Round at which each observer first saw each subject non-alive.
    first_seen: BTreeMap<(NodeId, NodeId), u64>,
    round: u64,
}

fn net(n: u64, seed: u64, loss: f64, opts: &[(&str, &str)], bugs: &[&str]) -> Net {
    let mut sim: Sim<Swim> = Sim::new(n, seed, |c| {
        for (k, v) in opts {
            c.options.insert(k.to_string(), v.to_string());
        }
        c.bugs = bugs.iter().map(|b| b.to_string()).collect();
    });
    sim.faults = Faults {
        drop: loss,
        duplicate: 0.0,
    };
    Net {
        sim,
        paused: BTreeSet::new(),
        false_suspicions: 0,
        first_seen: BTreeMap::new(),
        round: 0,
    }
}

impl Net {
    fn up(&self, id: NodeId) -> bool {
        self.sim.nodes[&id].is_some() && !self.paused.contains(&id)
    }

    fn view(&self, obs: NodeId, of: NodeId) -> Option<State> {
        self.sim.nodes[&obs].as_ref()?.view(of).map(|v| v.0)
    }

    fn run(&mut self, rounds: u64) {
        let ids = self.sim.ids();
        for _ in 0..rounds {
            self.round += 1;
            let before: BTreeMap<(NodeId, NodeId), Option<State>> = ids
                .iter()
                .flat_map(|&o| ids.iter().map(move |&s| (o, s)))
                .map(|(o, s)| ((o, s), self.view(o, s)))
                .collect();
            for &id in &ids {
                if self.up(id) {
                    self.sim.tick(id);
                }
            }
            self.sim.stabilize();
            for (&(o, s), b) in &before {
                let now = self.view(o, s);
                if b == &Some(State::Alive) && matches!(now, Some(State::Suspect | State::Dead)) {
                    self.first_seen.entry((o, s)).or_insert(self.round);
                    if self.up(s) && self.up(o) {
                        self.false_suspicions += 1;
                    }
                }
            }
        }
    }

    fn pause(&mut self, id: NodeId) {
        self.paused.insert(id);
        self.sim.isolate(id);
    }

    fn resume(&mut self, id: NodeId) {
        self.paused.remove(&id);
        self.sim.heal();
    }

    /// Every live observer's view of `of`.
    fn views_of(&self, of: NodeId) -> Vec<(NodeId, Option<State>)> {
        self.sim
            .ids()
            .into_iter()
            .filter(|&o| o != of && self.up(o))
            .map(|o| (o, self.view(o, of)))
            .collect()
    }

    fn all_see(&self, of: NodeId, state: State) -> bool {
        self.views_of(of).iter().all(|(_, s)| *s == Some(state))
    }
}

const PHI: &[(&str, &str)] = &[("detector", "phi")];

/// Completeness: a crashed member is declared dead by every live member,
/// within a bound, under 10% loss; both detectors.
#[test]
fn crashed_member_is_declared_dead_by_everyone() {
    for opts in [&[][..], PHI] {
        for seed in 0..20 {
            let mut n = net(5, seed, 0.1, opts, &[]);
            n.run(200);
            n.sim.crash(3);
            let t0 = n.round;
            n.run(400);
            assert!(
                n.all_see(3, State::Dead),
                "seed {seed} {opts:?}: {:?}",
                n.views_of(3)
            );
            // Suspected within a few periods of 20 ticks by every member.
            for o in [1, 2, 4, 5] {
                let t = n.first_seen.get(&(o, 3)).copied().unwrap_or(u64::MAX);
                assert!(
                    t.saturating_sub(t0) <= 200,
                    "seed {seed} {opts:?}: {o} first saw 3 at {t} (crash at {t0})"
                );
            }
        }
    }
}

/// Accuracy: under 10% loss nobody stays dead, and after the loss stops
/// every view is all-alive; false suspicions are rare.
#[test]
fn live_members_stay_alive_under_loss() {
    for opts in [&[][..], PHI] {
        let mut total = 0;
        for seed in 0..10 {
            let mut n = net(5, seed, 0.1, opts, &[]);
            n.run(2000);
            n.sim.faults = Faults::NONE;
            n.run(300);
            for s in 1..=5 {
                assert!(
                    n.all_see(s, State::Alive),
                    "seed {seed} {opts:?}: {s}: {:?}",
                    n.views_of(s)
                );
            }
            total += n.false_suspicions;
        }
        // 10 runs × 5 members × 100 probes. A false suspicion needs the
        // direct ping or ack lost (19%) and all three ping-req paths (4
        // messages each) too: ~0.8% of probes, then gossip carries each to
        // 4 observers. Phi suspects after two lost heartbeats in a row.
        // Measured: swim 81, phi 161 (counting every observer).
        let bound = if opts.is_empty() { 200 } else { 600 };
        println!("{opts:?}: {total} false suspicions");
        assert!(total < bound, "{opts:?}: {total} false suspicions");
    }
}

/// Without push-pull, a member paused until every view holds it dead and
/// every queue has retired that news would never hear it, so never
/// refute: it learns it from the ack to its own first ping, since a member
/// that hears from one it holds suspect or dead gossips that belief again
/// (the correct build left such a member dead for good in 1 of 5 lab runs
/// before, docs/swim.md). With `piggyback-unbounded` the repeated news
/// starves behind stale updates in a crowded queue, so the bug still
/// shows (`seeded_piggyback_unbounded_starves_refutations`).
#[test]
fn a_member_held_dead_hears_it_in_the_ack_to_its_own_ping() {
    for seed in 0..5 {
        let mut n = net(5, seed, 0.0, &[("push-pull-ticks", "1000000")], &[]);
        n.run(100);
        pause_until_dead_then_resume(&mut n, 2, 800, seed);
    }
}

/// Pauses `id` for `rounds`, by when every view must hold it dead; resumes
/// it, and 300 rounds later every view must hold it alive.
fn pause_until_dead_then_resume(n: &mut Net, id: NodeId, rounds: u64, seed: u64) {
    n.pause(id);
    n.run(rounds);
    assert!(
        n.all_see(id, State::Dead),
        "seed {seed}: {:?}",
        n.views_of(id)
    );
    n.resume(id);
    n.run(300);
    assert!(
        n.all_see(id, State::Alive),
        "seed {seed}: {:?}",
        n.views_of(id)
    );
}

/// Suspicion and refutation (§4.2): a paused member is suspected, then
/// dead; on resuming it refutes with a higher incarnation and is alive
/// everywhere again. A crashed member restarts with a higher incarnation
/// from its log and rejoins.
#[test]
fn paused_and_restarted_members_come_back() {
    for opts in [&[][..], PHI] {
        for seed in 0..10 {
            let mut n = net(4, seed, 0.0, opts, &[]);
            n.run(100);
            pause_until_dead_then_resume(&mut n, 2, 400, seed);
            let inc = n.sim.nodes[&2].as_ref().map(Swim::incarnation);
            assert!(inc >= Some(1), "seed {seed}: refuted at {inc:?}");

            n.sim.crash(4);
            n.run(400);
            assert!(
                n.all_see(4, State::Dead),
                "seed {seed}: {:?}",
                n.views_of(4)
            );
            n.sim.restart(4);
            n.run(300);
            assert!(
                n.all_see(4, State::Alive),
                "seed {seed}: {:?}",
                n.views_of(4)
            );
            assert!(
                (1..=3).all(|s| n.view(4, s) == Some(State::Alive)),
                "seed {seed}"
            );
        }
    }
}

/// Indirect probing (§3.1): with the link 1–3 cut but both reachable
/// through the others, ping-req keeps 3 alive in 1's view; without it
/// (the seeded bug) 1 suspects 3 again and again.
#[test]
fn ping_req_probes_around_a_cut_link() {
    let run = |bugs: &[&str], seed| {
        let mut n = net(5, seed, 0.0, &[], bugs);
        n.sim.cut(1, 3);
        n.run(2000);
        n.false_suspicions
    };
    for seed in 0..5 {
        assert_eq!(run(&[], seed), 0, "seed {seed}");
    }
    let caught = (0..5).filter(|&s| run(&["no-ping-req"], s) >= 5).count();
    assert_eq!(caught, 5);
}

/// Push-pull carries a member's metadata to everyone, and the view
/// answers the client API's shape.
#[test]
fn push_pull_spreads_metadata() {
    let mut n = net(4, 1, 0.0, &[], &[]);
    assert!(n.sim.with_node(1, |s| {
        s.admin(&json!({"meta": {"zone": "a"}})).unwrap();
    }));
    n.run(400);
    for o in 2..=4 {
        let Some(Some(s)) = n.sim.nodes.get(&o) else {
            panic!("node {o} down");
        };
        assert_eq!(
            s.meta()
                .get(&1)
                .and_then(|m| m.1.get("zone"))
                .map(String::as_str),
            Some("a"),
            "node {o}"
        );
        let v = s.view_json();
        assert_eq!(v["members"]["1"]["state"], "alive", "{v}");
    }
    let mut s = n.sim.nodes.remove(&1).flatten().unwrap();
    assert!(s.admin(&json!({"nope": 1})).is_err());
}

#[test]
fn bad_options_are_named() {
    let mut c = Config::new(1, vec![1, 2]);
    c.options.insert("detector".into(), "gossip".into());
    assert!(
        Params::from_config(&c)
            .unwrap_err()
            .contains("detector=gossip")
    );
    c.options.insert("detector".into(), "phi".into());
    c.options.insert("k".into(), "0".into());
    assert!(Params::from_config(&c).unwrap_err().contains("k=0"));
}

/// `no-incarnation`: a paused member's refutation and a restarted
/// member's rejoin never override the suspicion: dead for good.
#[test]
fn seeded_no_incarnation_keeps_live_members_dead() {
    for seed in 0..5 {
        let mut n = net(4, seed, 0.0, &[], &["no-incarnation"]);
        n.run(100);
        n.pause(2);
        n.run(400);
        n.resume(2);
        n.run(600);
        assert!(
            !n.all_see(2, State::Alive),
            "seed {seed}: {:?}",
            n.views_of(2)
        );
        n.sim.crash(3);
        n.run(400);
        n.sim.restart(3);
        n.run(600);
        assert!(
            !n.all_see(3, State::Alive),
            "seed {seed}: {:?}",
            n.views_of(3)
        );
    }
}

/// `no-suspicion`: under 20% loss a live member is confirmed dead and,
/// with nobody refuting, stays dead after the loss stops.
#[test]
fn seeded_no_suspicion_removes_live_members_for_good() {
    let stays_dead = |bugs: &[&str], seed| {
        let mut n = net(5, seed, 0.2, &[], bugs);
        n.run(1500);
        n.sim.faults = Faults::NONE;
        n.run(400);
        (1..=5).any(|s| !n.all_see(s, State::Alive))
    };
    assert!((0..5).all(|s| !stays_dead(&[], s)));
    let caught = (0..5).filter(|&s| stays_dead(&["no-suspicion"], s)).count();
    assert!(caught >= 4, "caught in {caught} of 5");
}

/// `piggyback-unbounded`: once more updates are queued than a message
/// holds, the oldest go forever and new ones starve. Push-pull is off so
/// gossip is the only channel: a member paused for two periods (less than
/// the suspicion timeout) never hears of its suspicion, never refutes, and
/// whoever probed it during the pause declares it dead; the correct build
/// refutes at once.
#[test]
fn seeded_piggyback_unbounded_starves_refutations() {
    let run = |bugs: &[&str], seed| {
        let mut n = net(12, seed, 0.0, &[("push-pull-ticks", "1000000")], bugs);
        n.run(50);
        // Crash-restart cycles queue an update about each of 4..=12.
        for id in 4..=12 {
            n.sim.crash(id);
            n.run(150);
            n.sim.restart(id);
            n.run(100);
        }
        n.run(300);
        n.pause(2);
        n.run(40);
        n.resume(2);
        n.run(600);
        n.all_see(2, State::Alive)
    };
    for seed in 0..3 {
        assert!(run(&[], seed), "seed {seed}");
    }
    let caught = (0..5)
        .filter(|&s| !run(&["piggyback-unbounded"], s))
        .count();
    assert!(caught >= 4, "caught in {caught} of 5");
}
