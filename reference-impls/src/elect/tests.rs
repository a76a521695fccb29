//! The election service under the simulator: the sim asserts election
//! safety (at most one leader per epoch) after every step, so a correct
//! build must survive random schedules, and each seeded bug must break
//! election safety (not crash) on some seed, on which the correct build
//! stays safe.

use super::*;
use crate::bug_search::{Kind, first_catch};
use crate::core::Config;
use crate::core::Input;
use crate::kv::Command;
use crate::sim::{Faults, Sim};

fn configure(algo: &'static str, bugs: &'static [&'static str]) -> impl Fn(&mut Config) {
    move |c: &mut Config| {
        c.options.insert("algo".into(), algo.into());
        c.bugs = bugs.iter().map(|b| b.to_string()).collect();
        c.election_ticks = 10;
        c.heartbeat_ticks = 2;
    }
}

/// A random schedule with partitions and crash-restarts; panics (with the
/// seed) on two leaders in one epoch.
fn chaos(algo: &'static str, bugs: &'static [&'static str], n: u64, seed: u64, steps: u64) {
    let mut sim: Sim<Elect> = Sim::new(n, seed, configure(algo, bugs));
    sim.faults = Faults {
        drop: 0.05,
        duplicate: 0.05,
    };
    let ids = sim.ids();
    for round in 0..steps / 500 {
        sim.run(500);
        use rand::RngExt;
        match sim.rng.random_range(0..5) {
            0 => {
                let a = ids[sim.rng.random_range(0..ids.len())];
                sim.isolate(a);
            }
            1 => {
                // A minority and a majority (or single nodes for n = 3).
                let a = ids[sim.rng.random_range(0..ids.len())];
                let b = ids[sim.rng.random_range(0..ids.len())];
                for &x in &ids {
                    if x != a && x != b {
                        sim.cut(a, x);
                        sim.cut(b, x);
                    }
                }
            }
            2 => {
                let a = ids[sim.rng.random_range(0..ids.len())];
                sim.crash(a);
                sim.run(200);
                sim.restart(a);
            }
            3 => {
                let leader = sim.leader();
                if let Some(l) = leader {
                    sim.isolate(l);
                }
            }
            _ => sim.heal(),
        }
        if round % 3 == 2 {
            sim.heal();
        }
    }
}

/// The first of seeds `1..=seeds` on which `bug` breaks election safety;
/// the correct build must keep it on that seed (see `first_catch`).
fn caught(algo: &'static str, bug: &'static [&'static str], n: u64, seeds: u64) -> u64 {
    let run = |bugs: &'static [&'static str]| {
        move |seed| {
            chaos(algo, bugs, n, seed, 20_000);
            Ok(())
        }
    };
    let what = format!("{algo} {bug:?} (n = {n})");
    first_catch(
        &what,
        &[Kind::ElectionSafety],
        1..seeds + 1,
        run(bug),
        run(&[]),
    )
    .0
}

#[test]
fn correct_builds_keep_one_leader_per_epoch() {
    for algo in Algo::NAMES {
        for n in [3, 5] {
            for seed in 1..=6 {
                chaos(algo, &[], n, seed, 20_000);
            }
        }
    }
}

#[test]
fn every_algorithm_elects_a_leader_that_clients_see() {
    for algo in Algo::NAMES {
        let mut sim: Sim<Elect> = Sim::new(3, 7, configure(algo, &[]));
        sim.lockstep_ticks = true;
        for _ in 0..400 {
            sim.step_random();
        }
        let leader = sim.leader().unwrap_or_else(|| panic!("{algo}: no leader"));
        // Every node answers leader? with the same leader after quiet.
        for id in sim.ids() {
            let rid = RequestId { client: 1, seq: id };
            sim.request(
                id,
                Command {
                    id: rid,
                    op: Op::Leader,
                },
            );
            let Some(Reply::Done(Ok(v))) = sim.replies_to(rid).first().cloned().cloned() else {
                panic!("{algo}: no view from {id}");
            };
            assert_eq!(v["leader"], json!(leader), "{algo} node {id}: {v}");
            assert_eq!(v["am_leader"], json!(id == leader), "{algo}: {v}");
            assert!(v["epoch"].as_u64().unwrap() >= 1, "{algo}: {v}");
        }
        if algo == "bully" {
            assert_eq!(leader, 3, "bully: the highest id wins");
        }
        // Other requests certainly had no effect.
        let rid = RequestId { client: 2, seq: 1 };
        sim.request(
            1,
            Command {
                id: rid,
                op: Op::Read { key: 1 },
            },
        );
        assert!(matches!(sim.replies_to(rid)[0], Reply::Done(Err(_))));
    }
}

/// Isolating the bully leader: the majority elects the next id; the old
/// leader steps down after its lease and, on the heal, takes over with a
/// higher epoch (never the same one).
#[test]
fn isolated_bully_leader_steps_down_and_returns_with_a_new_epoch() {
    for algo in ["bully", "ring"] {
        let mut sim: Sim<Elect> = Sim::new(3, 3, configure(algo, &[]));
        sim.lockstep_ticks = true;
        sim.run(600);
        let old = sim.leader().expect("leader");
        let e0 = sim.nodes[&old].as_ref().unwrap().view().epoch;
        sim.isolate(old);
        sim.run(1500);
        let views: Vec<View> = sim
            .nodes
            .values()
            .map(|n| n.as_ref().unwrap().view())
            .collect();
        assert!(!views[(old - 1) as usize].am_leader, "{algo}: {views:?}");
        let new = sim.leader().expect("a new leader");
        assert_ne!(new, old, "{algo}");
        assert!(sim.nodes[&new].as_ref().unwrap().view().epoch > e0);
        sim.heal();
        sim.run(1500);
        assert!(sim.leader().is_some(), "{algo}");
    }
}

#[test]
fn no_quorum_is_caught() {
    caught("bully", &["no-quorum"], 3, 20);
    caught("ring", &["no-quorum"], 3, 20);
}

#[test]
fn accept_higher_id_is_caught() {
    caught("bully", &["accept-higher-id"], 3, 30);
}

#[test]
fn ring_count_hops_is_caught() {
    caught("ring", &["ring-count-hops"], 3, 30);
}

#[test]
fn volatile_epoch_is_caught() {
    caught("bully", &["volatile-epoch"], 3, 30);
    caught("ring", &["volatile-epoch"], 3, 30);
}

/// Raft §5.2 / Figure 2: node 3 votes for candidate 1 in term 1 (n2 is
/// cut off), restarts from its records (the bug's crash), then candidate 2
/// asks it for term 1 too. A node may vote once per term, so only the
/// buggy builds grant the second vote — two leaders in term 1.
fn raft_split_vote(bug: Option<&'static str>, restart: bool) -> (Status, Status) {
    let cfg = |id: u64| {
        let mut c = Config::new(id, vec![1, 2, 3]);
        configure("raft", &[])(&mut c);
        c.bugs = bug.into_iter().map(String::from).collect();
        c
    };
    let mut n: Vec<Elect> = (1..=3)
        .map(|i| Elect::recover(cfg(i), Vec::new()))
        .collect();
    let mut disk3: Vec<Record> = Vec::new();
    // Ticks `c` until it asks for votes; returns its vote request to n3.
    let campaign = |node: &mut Elect| -> Message {
        for _ in 0..100 {
            node.step(Input::Tick { now_ms: 0 });
            let r = node.ready();
            if let Some((_, m)) = r.messages.into_iter().find(|(to, m)| {
                *to == 3 && matches!(m, Message::Raft(raft::Message::RequestVote { .. }))
            }) {
                return m;
            }
        }
        panic!("no campaign");
    };
    for cand in [0usize, 1] {
        let req = campaign(&mut n[cand]);
        n[2].step(Input::Message {
            from: cand as u64 + 1,
            msg: req,
        });
        let r = n[2].ready();
        disk3.extend(r.records);
        for (to, m) in r.messages {
            assert_eq!(to, cand as u64 + 1);
            n[cand].step(Input::Message { from: 3, msg: m });
        }
        let _ = n[cand].ready();
        if restart {
            n[2] = Elect::recover(cfg(3), disk3.clone());
        }
    }
    (n[0].status(), n[1].status())
}

#[test]
fn raft_bugs_vote_twice_in_a_term() {
    let (a, b) = raft_split_vote(None, true);
    assert!(a.is_leader() && a.term == 1, "{a:?}");
    assert!(!b.is_leader(), "correct raft: one vote per term: {b:?}");
    for (bug, restart) in [
        ("volatile-vote", true),
        ("volatile-term", true),
        ("vote-twice", false),
    ] {
        let (a, b) = raft_split_vote(Some(bug), restart);
        assert!(
            a.is_leader() && b.is_leader() && a.term == b.term,
            "{bug}: {a:?} {b:?}"
        );
    }
}

#[test]
fn bugs_name_their_algorithms() {
    assert_eq!(bug_algos("no-quorum"), vec!["bully", "ring"]);
    assert_eq!(bug_algos("vote-twice"), vec!["raft"]);
    assert!(validate_bugs(Algo::Ring, &["accept-higher-id".into()]).is_err());
    assert!(validate_bugs(Algo::Bully, &["accept-higher-id".into()]).is_ok());
    assert!(
        Algo::parse("paxos")
            .unwrap_err()
            .contains("bully, ring, raft")
    );
    for b in super::SIM_ONLY_BUGS {
        assert!(
            BUGS.iter().all(|x| x.name != b.name),
            "{} is sim-only",
            b.name
        );
        assert!(validate_bugs(Algo::Ring, &[b.name.to_string()]).is_err());
    }
    for b in BUGS {
        assert!(!bug_algos(b.name).is_empty(), "{}", b.name);
    }
}
