//! The store without a network (the seeded in-process [`Sim`]): sibling
//! merges are a join; a cluster under drops, duplicates, partitions and
//! crash-restarts loses no acknowledged put (Dynamo §4.4: every acked
//! version is a final sibling or in a final sibling's causal past); each
//! seeded bug loses one.

use super::*;
use crate::core::{Core, Input, NodeId, Reply};
use crate::kv::{Command, Op, RequestId};
use crate::sim::{Faults, Sim};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;

fn v(node: u64, seq: u64, ctx: &[(u64, u64)], value: i64) -> Version {
    Version {
        dot: Dot { node, seq },
        context: VersionVector(ctx.iter().copied().collect()),
        value,
        ts: value as u64,
    }
}

#[test]
fn merge_keeps_concurrent_siblings_and_drops_superseded_ones() {
    let mut s = Siblings::default();
    s.insert(v(1, 1, &[], 10), false);
    s.insert(v(2, 1, &[], 20), false);
    assert_eq!(s.values(), vec![10, 20]);
    assert_eq!(s.context(), VersionVector([(1, 1), (2, 1)].into()));
    // A put with the read's context supersedes both.
    s.insert(v(1, 2, &[(1, 1), (2, 1)], 30), false);
    assert_eq!(s.values(), vec![30]);
    // A late copy of a superseded version stays superseded.
    s.insert(v(2, 1, &[], 20), false);
    assert_eq!(s.values(), vec![30]);
    // LWW (the seeded bug) keeps one of two concurrent versions.
    let mut l = Siblings::default();
    l.insert(v(1, 1, &[], 10), true);
    l.insert(v(2, 1, &[], 20), true);
    assert_eq!(l.values(), vec![20]);
}

#[test]
fn merge_is_a_join() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..300 {
        // A random causal history: version i (node i) has seen a random
        // subset of the earlier ones, with their pasts.
        let mut pool: Vec<Version> = Vec::new();
        for i in 1..=6u64 {
            let mut ctx = VersionVector::default();
            for p in &pool {
                if rng.random_bool(0.4) {
                    ctx.join(&Siblings(vec![p.clone()]).context());
                }
            }
            pool.push(Version {
                dot: Dot { node: i, seq: 1 },
                context: ctx,
                value: i as i64,
                ts: 0,
            });
        }
        let mut mk = || {
            let mut s = Siblings::default();
            for p in &pool {
                if rng.random_bool(0.4) {
                    s.insert(p.clone(), false);
                }
            }
            s
        };
        let (a, b, c) = (mk(), mk(), mk());
        let join = |x: &Siblings, y: &Siblings| {
            let mut z = x.clone();
            z.merge(y, false);
            z
        };
        assert_eq!(join(&a, &b), join(&b, &a));
        assert_eq!(join(&join(&a, &b), &c), join(&a, &join(&b, &c)));
        assert_eq!(join(&a, &a), a);
    }
}

fn cmd(client: u64, seq: u64, op: Op) -> Command {
    Command {
        id: RequestId { client, seq },
        op,
    }
}

fn sim(nodes: u64, seed: u64, bugs: &[&str], opts: &[(&str, &str)]) -> Sim<DynamoStore> {
    Sim::new(nodes, seed, |c| {
        c.bugs = bugs.iter().map(|b| b.to_string()).collect();
        c.heartbeat_ticks = 2;
        c.election_ticks = 10;
        for (k, v) in opts {
            c.options.insert(k.to_string(), v.to_string());
        }
    })
}

/// Runs the sim (random steps) until `rid` has a reply, at most `steps`.
fn await_reply(s: &mut Sim<DynamoStore>, rid: RequestId, steps: u64) -> Option<Reply> {
    for _ in 0..steps {
        if let Some(r) = s.replies_to(rid).first() {
            return Some((*r).clone());
        }
        s.step_random();
    }
    s.replies_to(rid).first().map(|r| (*r).clone())
}

/// Ticks every live node `rounds` times, delivering everything between.
fn settle(s: &mut Sim<DynamoStore>, rounds: u64) {
    for _ in 0..rounds {
        for id in s.ids() {
            s.tick(id);
        }
        s.stabilize();
    }
}

fn get(s: &mut Sim<DynamoStore>, node: NodeId, key: Key, seq: u64) -> Option<(Vec<i64>, Value)> {
    let rid = RequestId { client: 999, seq };
    s.request(node, cmd(999, seq, Op::DynGet { key }));
    for _ in 0..50 {
        s.stabilize();
        if let Some(Reply::Done(Ok(v))) = s.replies_to(rid).first() {
            let sib = serde_json::from_value(v["siblings"].clone()).ok()?;
            return Some((sib, v["context"].clone()));
        }
        s.tick(node);
    }
    None
}

/// A random run of 3 clients on 5 nodes (n=3, r=w=2) over 3 keys; returns
/// the acknowledged dots not covered by the final context of their key
/// (lost), and whether all nodes' final reads agreed.
fn run(seed: u64, bugs: &[&str]) -> (Vec<(Key, Dot)>, bool) {
    let mut s = sim(5, seed, bugs, &[("n", "3,r=2,w=2")]);
    s.faults = Faults {
        drop: 0.05,
        duplicate: 0.05,
    };
    let mut rng = StdRng::seed_from_u64(seed ^ 0xdead);
    let mut contexts: BTreeMap<(u64, Key), VersionVector> = BTreeMap::new();
    let mut acked: Vec<(Key, Dot)> = Vec::new();
    let mut next_value = 0i64;
    let mut seq = 0;
    for round in 0..240u64 {
        let client = rng.random_range(0..3u64);
        let node = rng.random_range(1..=5u64);
        let key = rng.random_range(0..3u64);
        seq += 1;
        let rid = RequestId { client, seq };
        if rng.random_bool(0.5) {
            s.request(node, cmd(client, seq, Op::DynGet { key }));
            if let Some(Reply::Done(Ok(v))) = await_reply(&mut s, rid, 150) {
                let ctx: VersionVector = serde_json::from_value(v["context"].clone()).unwrap();
                contexts.insert((client, key), ctx);
            }
        } else {
            next_value += 1;
            let context = contexts.get(&(client, key)).cloned().unwrap_or_default();
            s.request(
                node,
                cmd(
                    client,
                    seq,
                    Op::DynPut {
                        key,
                        value: next_value,
                        context,
                    },
                ),
            );
            if let Some(Reply::Done(Ok(v))) = await_reply(&mut s, rid, 150) {
                let d = &v["dot"];
                let dot = Dot {
                    node: d[0].as_u64().unwrap(),
                    seq: d[1].as_u64().unwrap(),
                };
                acked.push((key, dot));
            }
        }
        match round % 40 {
            5 => {
                // A 2|3 split, so some keys have no reachable replica.
                let a = 1 + round % 5;
                let b = 1 + (round + 1) % 5;
                for x in [a, b] {
                    for y in 1..=5 {
                        if y != a && y != b {
                            s.cut(x, y);
                        }
                    }
                }
            }
            20 => s.heal(),
            25 => s.crash(1 + round % 5),
            35 => {
                for id in s.ids() {
                    if s.nodes[&id].is_none() {
                        s.restart(id);
                    }
                }
            }
            _ => {}
        }
    }
    s.heal();
    for id in s.ids() {
        if s.nodes[&id].is_none() {
            s.restart(id);
        }
    }
    s.faults = Faults::NONE;
    settle(&mut s, 300);
    let mut lost = Vec::new();
    let mut agree = true;
    for key in 0..3 {
        let reads: Vec<_> = (1..=5)
            .map(|n| get(&mut s, n, key, 100_000 + key * 10 + n))
            .collect();
        agree &= reads.iter().all(|r| r == &reads[0]);
        let ctx: VersionVector = reads[0]
            .as_ref()
            .map(|(_, c)| serde_json::from_value(c.clone()).unwrap())
            .unwrap_or_default();
        for (k, d) in &acked {
            if *k == key && !ctx.covers(*d) {
                lost.push((*k, *d));
            }
        }
    }
    (lost, agree)
}

#[test]
fn no_acknowledged_put_is_lost_and_replicas_converge() {
    for seed in 0..25 {
        let (lost, agree) = run(seed, &[]);
        assert!(lost.is_empty(), "seed {seed}: lost {lost:?}");
        assert!(agree, "seed {seed}: final reads disagree");
    }
}

#[test]
fn seeded_lww_wall_clock_loses_concurrent_puts() {
    let caught = (0..10).filter(|&s| !run(s, &["lww-wall-clock"]).0.is_empty());
    assert!(caught.count() >= 8);
}

#[test]
fn seeded_read_repair_overwrite_loses_a_put() {
    // On one replica: a put lands between its get reply and the repair.
    let mk = |bugs: &[&str]| {
        let mut c = crate::core::Config::new(3, vec![1, 2, 3]);
        c.bugs = bugs.iter().map(|b| b.to_string()).collect();
        DynamoStore::recover(c, Vec::new())
    };
    for (bugs, want) in [
        (&[][..], vec![1, 2]),
        (&["read-repair-overwrite"][..], vec![1]),
    ] {
        let mut n3 = mk(bugs);
        let put = |value, node| Message::Put {
            req: 1,
            key: 5,
            siblings: Siblings(vec![v(node, 1, &[], value)]),
            dot: Dot { node, seq: 1 },
            hint: None,
        };
        n3.step(Input::Message {
            from: 2,
            msg: put(2, 2),
        });
        n3.step(Input::Message {
            from: 1,
            msg: Message::Repair {
                key: 5,
                siblings: Siblings(vec![v(1, 1, &[], 1)]),
            },
        });
        assert_eq!(n3.siblings(5).values(), want, "{bugs:?}");
    }
}

/// A key whose preference list is exactly `nodes` (on a 5-node ring).
fn key_placed_on(s: &Sim<DynamoStore>, nodes: &[NodeId]) -> Key {
    let n = s.nodes[&1].as_ref().unwrap();
    (0..10_000)
        .find(|&k| {
            let mut pl = n.preference_list(k);
            pl.sort_unstable();
            pl == nodes
        })
        .expect("some key lands on these nodes")
}

/// A 2|3 partition; a put at node 1 to a key all of whose replicas are on
/// the other side is acknowledged by stand-ins (1 and 2, with hints); after
/// the heal the key's replicas must get it.
fn sloppy_put_then_heal(bugs: &[&str]) -> (Vec<i64>, usize) {
    let mut s = sim(5, 1, bugs, &[("n", "3"), ("r", "2"), ("w", "2")]);
    let key = key_placed_on(&s, &[3, 4, 5]);
    for x in [1, 2] {
        for y in [3, 4, 5] {
            s.cut(x, y);
        }
    }
    settle(&mut s, 30);
    s.request(
        1,
        cmd(
            1,
            1,
            Op::DynPut {
                key,
                value: 7,
                context: VersionVector::default(),
            },
        ),
    );
    s.stabilize();
    assert!(
        matches!(
            s.replies_to(RequestId { client: 1, seq: 1 })[..],
            [Reply::Done(Ok(_))]
        ),
        "{:?}",
        s.replies
    );
    s.heal();
    settle(&mut s, 100);
    let hints = s.nodes[&1].as_ref().unwrap().hint_count();
    let (sib, _) = get(&mut s, 3, key, 2).expect("a final read");
    (sib, hints)
}

#[test]
fn hinted_handoff_delivers_after_the_heal() {
    assert_eq!(sloppy_put_then_heal(&[]), (vec![7], 0));
    let (sib, hints) = sloppy_put_then_heal(&["no-hinted-handoff"]);
    assert_eq!(sib, Vec::<i64>::new());
    assert!(hints > 0);
}

#[test]
fn strict_quorum_refuses_what_sloppy_accepts() {
    let mut s = sim(5, 1, &[], &[("n", "3"), ("sloppy", "false")]);
    let key = key_placed_on(&s, &[3, 4, 5]);
    for x in [1, 2] {
        for y in [3, 4, 5] {
            s.cut(x, y);
        }
    }
    settle(&mut s, 30);
    let op = Op::DynPut {
        key,
        value: 7,
        context: VersionVector::default(),
    };
    s.request(1, cmd(1, 1, op));
    settle(&mut s, 50);
    assert!(matches!(
        s.replies_to(RequestId { client: 1, seq: 1 })[..],
        [Reply::Unknown(_)]
    ));
}

#[test]
fn anti_entropy_repairs_a_replica_that_missed_puts() {
    // No reads (so no read repair), no hints: only Merkle exchange can
    // bring node 3 the put it missed while cut off (and not yet suspected).
    let mut s = sim(3, 2, &[], &[("n", "3"), ("w", "2")]);
    s.cut(1, 3);
    s.cut(2, 3);
    let op = Op::DynPut {
        key: 4,
        value: 9,
        context: VersionVector::default(),
    };
    s.request(1, cmd(1, 1, op));
    s.stabilize();
    assert!(s.nodes[&3].as_ref().unwrap().siblings(4).is_empty());
    s.heal();
    settle(&mut s, 40);
    assert_eq!(s.nodes[&3].as_ref().unwrap().siblings(4).values(), vec![9]);
}

#[test]
fn options_parse_and_errors_name_the_option() {
    let mut c = crate::core::Config::new(1, vec![1, 2, 3, 4, 5]);
    c.options.insert("n".into(), "3,r=1,w=3".into());
    let p = Params::from_config(&c).unwrap();
    assert_eq!((p.n, p.r, p.w, p.sloppy), (3, 1, 3, true));
    c.options.insert("n".into(), "6".into());
    assert!(Params::from_config(&c).unwrap_err().contains("n=6"));
    c.options.insert("n".into(), "3".into());
    c.options.insert("w".into(), "4".into());
    assert!(Params::from_config(&c).unwrap_err().contains("w=4"));
    c.options.insert("w".into(), "x".into());
    assert!(Params::from_config(&c).unwrap_err().contains("positive"));
}

#[test]
fn restart_recovers_versions_and_hints_and_snapshots() {
    let mut s = sim(1, 1, &[], &[]);
    for seq in 1..=(store::SNAPSHOT_RECORDS + 5) {
        let context = s.nodes[&1].as_ref().unwrap().siblings(seq % 3).context();
        let op = Op::DynPut {
            key: seq % 3,
            value: seq as i64,
            context,
        };
        s.request(1, cmd(1, seq, op));
    }
    let before: Vec<_> = (0..3)
        .map(|k| s.nodes[&1].as_ref().unwrap().siblings(k))
        .collect();
    s.crash(1);
    s.restart(1);
    let after: Vec<_> = (0..3)
        .map(|k| s.nodes[&1].as_ref().unwrap().siblings(k))
        .collect();
    assert_eq!(before, after);
    let last = store::SNAPSHOT_RECORDS as i64 + 5;
    assert_eq!(after[0].values(), vec![last - last % 3]);
}

/// What the nemesis computes from the options alone is every member's
/// preference list, whatever the node it asks.
#[test]
fn preference_list_of_matches_every_member() {
    let s = sim(5, 1, &[], &[("n", "3"), ("vnodes", "16")]);
    let mut c = crate::core::Config::new(1, (1..=5).collect());
    c.options.insert("n".into(), "3".into());
    c.options.insert("vnodes".into(), "16".into());
    let p = Params::from_config(&c).expect("params");
    for key in 0..50 {
        let want = preference_list_of(&[1, 2, 3, 4, 5], &p, key);
        assert_eq!(want.len(), 3);
        for id in 1..=5 {
            let n = s.nodes[&id].as_ref().expect("node up");
            assert_eq!(n.preference_list(key), want, "key {key} at node {id}");
        }
    }
}
