//! Zab under the seeded sim: scripted cases for each phase, then property
//! runs over many seeds with drops, duplicates, reordering, partitions and
//! crash-restarts, and one search per seeded bug for a schedule where it
//! breaks safety.

use super::*;
use crate::core::Config;
use crate::kv::{Micro, Op};
use crate::sim::{Faults, Sim};
use serde_json::json;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Bug searches expect panics; keep them out of the test output (other
/// threads' panics still print).
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
}

fn cmd(client: u64, seq: u64, op: Op) -> Command {
    Command {
        id: RequestId { client, seq },
        op,
    }
}

fn sim(n: u64, seed: u64, bugs: &[&str]) -> Sim<Zab> {
    let mut s: Sim<Zab> = Sim::new(n, seed, |c: &mut Config| {
        for b in bugs {
            c.bugs.insert(b.to_string());
        }
    });
    s.check_total_order = true;
    s
}

/// Ticks and delivers until some node is an established leader.
fn elect(s: &mut Sim<Zab>) -> NodeId {
    for _ in 0..20_000 {
        if let Some(l) = s.leader() {
            return l;
        }
        s.step_random();
    }
    panic!("seed {}: no leader", s.seed);
}

fn node(s: &Sim<Zab>, id: NodeId) -> &Zab {
    s.nodes[&id].as_ref().expect("node is up")
}

/// Sends `c` to the leader until it is `Done`.
fn commit(s: &mut Sim<Zab>, c: Command) -> Reply {
    for _ in 0..200 {
        let l = elect(s);
        s.request(l, c.clone());
        for _ in 0..2_000 {
            if let Some(r) = s
                .replies_to(c.id)
                .into_iter()
                .find(|r| matches!(r, Reply::Done(_)))
            {
                return r.clone();
            }
            s.step_random();
        }
    }
    panic!("seed {}: {:?} never committed", s.seed, c.id);
}

// ---- scripted cases ------------------------------------------------------

/// §IV-A: votes are ordered by (currentEpoch, last zxid, id).
#[test]
fn votes_order_by_epoch_then_zxid_then_id() {
    let v = |epoch, zxid, leader| Vote {
        epoch,
        zxid,
        leader,
    };
    assert!(v(2, 0, 1) > v(1, zxid(1, 9), 3));
    assert!(v(1, zxid(1, 2), 1) > v(1, zxid(1, 1), 3));
    assert!(v(1, 5, 3) > v(1, 5, 2));
}

#[test]
fn single_node_commits_alone() {
    let mut s = sim(1, 7, &[]);
    let r = commit(&mut s, cmd(1, 1, Op::Write { key: 1, value: 5 }));
    assert_eq!(r, Reply::Done(Ok(json!(5))));
    assert_eq!(node(&s, 1).current_epoch(), 1);
    assert_eq!(
        s.chosen.keys().copied().collect::<Vec<_>>(),
        vec![zxid(1, 1)]
    );
}

/// The four phases end to end: one epoch, writes and a read through the
/// broadcast, zxids `epoch << 32 | counter` in order.
#[test]
fn three_nodes_broadcast_in_zxid_order() {
    let mut s = sim(3, 1, &[]);
    let l = elect(&mut s);
    let e = node(&s, l).established_epoch().expect("established");
    assert!(e >= 1);
    for i in 1..=5 {
        commit(
            &mut s,
            cmd(
                1,
                i,
                Op::Txn(vec![Micro::Append {
                    key: 1,
                    value: i as i64,
                }]),
            ),
        );
    }
    let r = commit(&mut s, cmd(1, 6, Op::Txn(vec![Micro::ReadList { key: 1 }])));
    assert_eq!(r, Reply::Done(Ok(json!([["r", 1, [1, 2, 3, 4, 5]]]))));
    let zs: Vec<Zxid> = s.chosen.keys().copied().collect();
    assert_eq!(zs, (1..=6).map(|c| zxid(e, c)).collect::<Vec<_>>());
    // Followers deliver the same sequence once committed.
    s.stabilize();
    for _ in 0..200 {
        s.step_random();
    }
    for id in s.ids() {
        assert_eq!(node(&s, id).history().len(), 6, "node {id}");
    }
}

#[test]
fn followers_refuse_requests_naming_the_leader() {
    let mut s = sim(3, 2, &[]);
    commit(&mut s, cmd(1, 1, Op::Write { key: 1, value: 1 }));
    let l = s.leader().expect("leader");
    let f = s.ids().into_iter().find(|i| *i != l).expect("a follower");
    let rid = RequestId { client: 9, seq: 1 };
    s.request(f, cmd(9, 1, Op::Read { key: 1 }));
    match s.replies_to(rid).as_slice() {
        [Reply::NotLeader { leader }] => assert!(leader.is_none() || *leader == Some(l)),
        other => panic!("{other:?}"),
    }
}

/// Phase 1: a new leader's epoch is past every acceptedEpoch it heard, and
/// the epoch survives restarts (acceptedEpoch and currentEpoch are records).
#[test]
fn new_epoch_after_leader_crash_and_restart_keeps_history() {
    let mut s = sim(3, 3, &[]);
    commit(&mut s, cmd(1, 1, Op::Write { key: 1, value: 1 }));
    let l1 = s.leader().expect("leader");
    let e1 = node(&s, l1).established_epoch().expect("established");
    s.crash(l1);
    let r = commit(
        &mut s,
        cmd(
            1,
            2,
            Op::Cas {
                key: 1,
                from: 1,
                to: 2,
            },
        ),
    );
    assert_eq!(r, Reply::Done(Ok(json!([1, 2]))));
    let l2 = s.leader().expect("leader");
    assert!(node(&s, l2).established_epoch().expect("established") > e1);
    s.restart(l1);
    assert!(node(&s, l1).accepted_epoch() >= e1 && node(&s, l1).current_epoch() >= e1);
    let r = commit(&mut s, cmd(1, 3, Op::Read { key: 1 }));
    assert_eq!(r, Reply::Done(Ok(json!(2))));
}

/// Phase 2, TRUNC: a follower that logged a proposal no quorum accepted
/// drops it when it syncs with the next leader.
#[test]
fn follower_truncates_an_uncommitted_suffix() {
    let mut s = sim(3, 4, &[]);
    commit(&mut s, cmd(1, 1, Op::Write { key: 1, value: 1 }));
    s.stabilize();
    let l1 = s.leader().expect("leader");
    let e1 = node(&s, l1).established_epoch().expect("established");
    // The leader logs a proposal nobody else gets.
    s.isolate(l1);
    s.request(l1, cmd(1, 2, Op::Write { key: 1, value: 99 }));
    assert_eq!(node(&s, l1).last_zxid(), zxid(e1, 2));
    // Its PROPOSALs die at the cut; the others move on without it.
    s.stabilize();
    s.crash(l1);
    s.heal();
    let others: Vec<NodeId> = s.ids().into_iter().filter(|i| *i != l1).collect();
    commit(&mut s, cmd(2, 1, Op::Write { key: 1, value: 2 }));
    s.restart(l1);
    // Keep the old leader a follower: let the others lead.
    let r = commit(&mut s, cmd(2, 2, Op::Read { key: 1 }));
    assert_eq!(r, Reply::Done(Ok(json!(2))));
    for _ in 0..20_000 {
        if node(&s, l1).history().iter().all(|t| t.zxid != zxid(e1, 2))
            && node(&s, l1).last_zxid() >= node(&s, others[0]).last_zxid()
        {
            return;
        }
        s.step_random();
    }
    panic!(
        "old leader kept its uncommitted proposal: {:?}",
        node(&s, l1).history()
    );
}

#[test]
fn every_seeded_bug_is_registered() {
    let names: Vec<&str> = crate::bugs::of("zab").map(|b| b.name).collect();
    for b in [
        "accept-stale-epoch",
        "reuse-epoch",
        "commit-before-quorum",
        "skip-truncate",
        "read-without-sync",
    ] {
        assert!(names.contains(&b), "{b}");
    }
    // Sim only (not caught in the lab): still honoured, not a `--bug`.
    for b in super::SIM_ONLY_BUGS {
        assert!(!names.contains(&b.name), "{}", b.name);
    }
    assert!(
        super::SIM_ONLY_BUGS
            .iter()
            .any(|b| b.name == "serve-before-sync")
    );
    assert!(crate::bugs::validate("zab", &["skip-truncate".into()]).is_ok());
    assert!(crate::bugs::validate("zab", &["nope".into()]).is_err());
}

// ---- property runs ---------------------------------------------------------

/// A schedule's knobs.
#[derive(Clone, Copy, Debug)]
struct Chaos {
    n: u64,
    steps: u64,
    drop: f64,
    duplicate: f64,
    /// A nemesis action (heal, isolate, cut, crash, restart) every so many
    /// steps.
    nemesis_every: u64,
    crashes: bool,
    /// 1 in `request_every` steps submits a client request.
    request_every: u32,
    /// After the chaos: heal, restart, and require a write to commit.
    liveness: bool,
}

const CHAOS: Chaos = Chaos {
    n: 5,
    steps: 3_000,
    drop: 0.10,
    duplicate: 0.05,
    nemesis_every: 150,
    crashes: true,
    request_every: 6,
    liveness: true,
};

/// Zab's own invariants on every live node (Junqueira et al. §III-B,
/// Medeiros §3): at most one established leader per epoch (the sim's
/// election safety, on role `leader`), each epoch's transactions in a history
/// are `(e, 1..=k)` (primary order), acceptedEpoch ≥ currentEpoch, and an
/// established leader's history holds every transaction committed in an
/// earlier epoch (primary integrity).
fn check_zab(s: &Sim<Zab>) {
    for (id, n) in &s.nodes {
        let Some(n) = n else { continue };
        assert!(
            n.accepted_epoch() >= n.current_epoch(),
            "seed {}: node {id}: acceptedEpoch {} < currentEpoch {}",
            s.seed,
            n.accepted_epoch(),
            n.current_epoch()
        );
        let mut prev: Zxid = 0;
        for t in n.history() {
            let (e, c) = (epoch_of(t.zxid), counter_of(t.zxid));
            let ok = if epoch_of(prev) == e {
                c == counter_of(prev) + 1
            } else {
                e > epoch_of(prev) && c == 1
            };
            assert!(
                ok,
                "seed {}: primary order: node {id} has {e}:{c} after {}:{}",
                s.seed,
                epoch_of(prev),
                counter_of(prev)
            );
            prev = t.zxid;
        }
        if let Some(e) = n.established_epoch() {
            for (&z, c) in s.chosen.range(..zxid(e, 0)) {
                let i = n.history().binary_search_by_key(&z, |t| t.zxid);
                assert!(
                    i.is_ok_and(|i| n.history()[i].cmd == *c),
                    "seed {}: primary integrity: leader {id} of epoch {e} lacks committed {}:{}",
                    s.seed,
                    epoch_of(z),
                    counter_of(z)
                );
            }
        }
    }
}

/// Runs one seeded schedule; `Err` carries the first violated property.
fn run(seed: u64, chaos: Chaos, bugs: &[&str]) -> Result<(), String> {
    quiet_panics();
    QUIET.with(|q| q.set(!bugs.is_empty()));
    let result = catch_unwind(AssertUnwindSafe(|| run_inner(seed, chaos, bugs)));
    QUIET.with(|q| q.set(false));
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

fn run_inner(seed: u64, c: Chaos, bugs: &[&str]) {
    let mut s = sim(c.n, seed, bugs);
    s.faults = Faults {
        drop: c.drop,
        duplicate: c.duplicate,
    };
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7a62);
    let mut seq = [0u64; 4];
    let mut value = 0i64;
    let ids = s.ids();
    let mut crashed: BTreeSet<NodeId> = BTreeSet::new();
    for step in 1..=c.steps {
        if rng.random_ratio(1, c.request_every) {
            let client = rng.random_range(0..seq.len());
            seq[client] += 1;
            value += 1;
            let key = rng.random_range(0..3);
            let op = match rng.random_range(0..4) {
                0 => Op::Write { key, value },
                1 => Op::Read { key },
                2 => Op::Txn(vec![Micro::Append { key, value }]),
                _ => Op::Txn(vec![Micro::ReadList { key }]),
            };
            let to = match s.leader() {
                Some(l) if rng.random_bool(0.8) => l,
                _ => ids[rng.random_range(0..ids.len())],
            };
            s.request(to, cmd(client as u64 + 1, seq[client], op));
        }
        if step % c.nemesis_every == 0 {
            let victim = ids[rng.random_range(0..ids.len())];
            match rng.random_range(0..7) {
                0 => s.heal(),
                1 => s.isolate(victim),
                2 => {
                    let other = ids[rng.random_range(0..ids.len())];
                    if other != victim {
                        s.cut(victim, other);
                    }
                }
                3 | 4 if c.crashes => {
                    // Crash a minority at most, so the end can be live.
                    if crashed.len() < (c.n as usize - 1) / 2 && crashed.insert(victim) {
                        s.crash(victim);
                    }
                }
                5 if c.crashes && !crashed.contains(&victim) => {
                    // kill -9 and restart: only volatile state is lost.
                    s.crash(victim);
                    s.restart(victim);
                }
                _ => {
                    for id in std::mem::take(&mut crashed) {
                        s.restart(id);
                    }
                }
            }
        }
        s.step_random();
        if step % 50 == 0 {
            check_zab(&s);
        }
    }
    check_zab(&s);
    if c.liveness {
        s.heal();
        for id in crashed {
            s.restart(id);
        }
        s.faults = Faults::NONE;
        commit(&mut s, cmd(99, 1, Op::Write { key: 0, value: -1 }));
        check_zab(&s);
    }
}

fn seeds(default: u64) -> u64 {
    std::env::var("FAULTLINE_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The correct build: 5 nodes, 10% drops, 5% duplicates, reordering,
/// partitions and crash-restarts; every safety property, then liveness
/// once healed. `FAULTLINE_SIM_SEEDS=2000` runs more.
#[test]
fn correct_build_is_safe_and_live_under_chaos() {
    let n = seeds(100);
    for seed in 0..n {
        if let Err(e) = run(seed, CHAOS, &[]) {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn correct_build_three_nodes_under_chaos() {
    let n = seeds(100);
    let c = Chaos { n: 3, ..CHAOS };
    for seed in 0..n {
        if let Err(e) = run(seed, c, &[]) {
            panic!("seed {seed}: {e}");
        }
    }
}

// ---- seeded bugs ---------------------------------------------------------

/// Searches seeds for a schedule where `bug` breaks a safety property;
/// returns the seed and the violation.
fn find_violation(bug: &str, chaos: Chaos, limit: u64) -> (u64, String) {
    for seed in 0..limit {
        if let Err(e) = run(seed, chaos, &[bug]) {
            assert!(
                is_safety_violation(&e),
                "seed {seed}: {bug} failed, but not a safety check: {e}"
            );
            eprintln!("{bug}: seed {seed}: {e}");
            // The control: the same schedule without the bug is safe.
            if let Err(c) = run(seed, chaos, &[]) {
                panic!("seed {seed}: the correct build fails too: {c}");
            }
            return (seed, e);
        }
    }
    panic!("{bug}: no violation in {limit} seeds");
}

/// The messages of the sim's and [`check_zab`]'s safety checks.
fn is_safety_violation(e: &str) -> bool {
    [
        "safety",
        "total order",
        "primary order",
        "primary integrity",
    ]
    .iter()
    .any(|m| e.contains(m))
}

const BUG_CHAOS: Chaos = Chaos {
    liveness: false,
    ..CHAOS
};

#[test]
fn bug_serve_before_sync_breaks_total_order() {
    let (_, e) = find_violation("serve-before-sync", BUG_CHAOS, 2_000);
    assert!(is_safety_violation(&e), "{e}");
}

#[test]
fn bug_reuse_epoch_collides_zxids() {
    let (_, e) = find_violation("reuse-epoch", BUG_CHAOS, 2_000);
    assert!(is_safety_violation(&e), "{e}");
}

#[test]
fn bug_commit_before_quorum_loses_commits() {
    let (_, e) = find_violation("commit-before-quorum", BUG_CHAOS, 2_000);
    assert!(is_safety_violation(&e), "{e}");
}

#[test]
fn bug_skip_truncate_delivers_a_dead_suffix() {
    let (_, e) = find_violation("skip-truncate", BUG_CHAOS, 2_000);
    assert!(is_safety_violation(&e), "{e}");
}

/// A write committed by the majority, then a read at the node cut off
/// before it: answered with the old value with the seeded bug, not at all
/// without it.
fn read_at_cut_off_node(bugs: &[&str]) -> Option<Reply> {
    let mut s = sim(3, 1, bugs);
    let l = elect(&mut s);
    s.stabilize();
    let w1 = commit(&mut s, cmd(1, 1, Op::Write { key: 7, value: 1 }));
    assert!(matches!(w1, Reply::Done(Ok(_))), "{w1:?}");
    for _ in 0..50 {
        s.step_random();
    }
    s.stabilize();
    let cut = *s.ids().iter().find(|&&i| i != l).expect("a follower");
    s.isolate(cut);
    let w2 = commit(&mut s, cmd(2, 1, Op::Write { key: 7, value: 2 }));
    assert!(matches!(w2, Reply::Done(Ok(_))), "{w2:?}");
    let id = RequestId { client: 3, seq: 1 };
    s.request(
        cut,
        Command {
            id,
            op: Op::Read { key: 7 },
        },
    );
    s.replies_to(id).first().map(|r| (*r).clone())
}

#[test]
fn bug_read_without_sync_reads_stale() {
    let stale = read_at_cut_off_node(&["read-without-sync"]);
    assert!(
        matches!(&stale, Some(Reply::Done(Ok(v))) if *v == serde_json::json!(1)),
        "{stale:?}"
    );
    let correct = read_at_cut_off_node(&[]);
    assert!(
        !matches!(&correct, Some(Reply::Done(_))),
        "the correct build answered a read at a cut-off node: {correct:?}"
    );
}

/// The lab's `pause-leader`: the leader stops (no ticks, nothing in or
/// out) while the other two elect a new leader and commit a write, then
/// wakes up still leading its old epoch and is asked to read.
fn read_at_woken_leader(bugs: &[&str]) -> Option<Reply> {
    let mut s = sim(3, 1, bugs);
    // The stale leader's transactions break the sim's total order check;
    // what this test looks at is the client's answer.
    s.check_total_order = false;
    let old = elect(&mut s);
    s.stabilize();
    let w1 = commit(&mut s, cmd(1, 1, Op::Write { key: 7, value: 1 }));
    assert!(matches!(w1, Reply::Done(Ok(_))), "{w1:?}");
    s.stabilize();
    let others: Vec<NodeId> = s.ids().into_iter().filter(|&i| i != old).collect();
    s.isolate(old);
    let new = (0..20_000)
        .find_map(|_| {
            for &i in &others {
                s.tick(i);
            }
            s.stabilize();
            others
                .iter()
                .copied()
                .find(|&i| node(&s, i).established_epoch().is_some())
        })
        .expect("the other two elect a leader");
    let w2 = cmd(2, 1, Op::Write { key: 7, value: 2 });
    s.request(new, w2.clone());
    for _ in 0..100 {
        if !s.replies_to(w2.id).is_empty() {
            break;
        }
        for &i in &others {
            s.tick(i);
        }
        s.stabilize();
    }
    assert!(
        matches!(s.replies_to(w2.id).first(), Some(Reply::Done(Ok(_)))),
        "{:?}",
        s.replies_to(w2.id)
    );
    s.heal();
    let id = RequestId { client: 3, seq: 1 };
    s.request(
        old,
        Command {
            id,
            op: Op::Read { key: 7 },
        },
    );
    for _ in 0..200 {
        if let Some(r) = s.replies_to(id).first() {
            return Some((*r).clone());
        }
        for i in s.ids() {
            s.tick(i);
        }
        s.stabilize();
    }
    None
}

#[test]
fn bug_accept_stale_epoch_lets_a_woken_leader_read_stale() {
    let stale = read_at_woken_leader(&["accept-stale-epoch"]);
    assert!(
        matches!(&stale, Some(Reply::Done(Ok(v))) if *v == serde_json::json!(1)),
        "{stale:?}"
    );
    let correct = read_at_woken_leader(&[]);
    assert!(
        !matches!(&correct, Some(Reply::Done(_))),
        "the correct build answered a read at a deposed leader: {correct:?}"
    );
}

#[test]
fn bug_accept_stale_epoch_breaks_total_order() {
    let (_, e) = find_violation("accept-stale-epoch", BUG_CHAOS, 2_000);
    assert!(is_safety_violation(&e), "{e}");
}
