//! Chain replication under the seeded simulator: random schedules of
//! drops, duplicates, crashes and isolations of the head, a middle member
//! or the tail, with the master ([`plan`]) reconfiguring after each fault
//! and re-adding the node once it is back; checked for state-machine
//! safety (the sim), no lost acknowledged write, and reads that return
//! neither a stale value (older than a write acknowledged before the read
//! was sent) nor a value that never commits.

use super::*;
use crate::bug_search::{Kind, Violation, catch, first_catch};
use crate::kv::Op;
use crate::sim::{Faults, Sim};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
fn sim(seed: u64, bugs: &[&str]) -> Sim<Chain> {
    let bugs: Vec<String> = bugs.iter().map(|b| b.to_string()).collect();
    Sim::new(3, seed, move |c| c.bugs = bugs.iter().cloned().collect())
}

/// The master, as the faultline target runs it.
struct Master {
    epoch: u64,
    chain: Vec<NodeId>,
}

impl Master {
    fn new() -> Master {
        Master {
            epoch: 1,
            chain: vec![1, 2, 3],
        }
    }

    /// One round: ask every live node for its state, plan, install.
    fn round(&mut self, s: &mut Sim<Chain>) -> Result<Plan, String> {
        let states: BTreeMap<NodeId, State> = s
            .nodes
            .iter()
            .filter_map(|(id, n)| n.as_ref().map(|n| (*id, n.state())))
            .collect();
        let p = plan(self.epoch, &self.chain, &s.ids(), &states)?;
        if let Plan::Install { epoch, chain, .. } = &p {
            self.epoch = *epoch;
            self.chain = chain.clone();
            for m in chain.clone() {
                s.with_node(m, |n| {
                    let _ = n.admin(&install_request(*epoch, chain));
                });
            }
        }
        Ok(p)
    }
}

fn cmd(seq: u64, op: Op) -> Command {
    Command {
        id: RequestId { client: 1, seq },
        op,
    }
}

/// Nodes that believe they hold a role.
fn believers(s: &Sim<Chain>, f: impl Fn(&Chain) -> bool) -> Vec<NodeId> {
    s.nodes
        .iter()
        .filter(|(_, n)| n.as_ref().is_some_and(&f))
        .map(|(id, _)| *id)
        .collect()
}

fn pick(rng: &mut StdRng, v: &[NodeId]) -> NodeId {
    if v.is_empty() {
        1
    } else {
        v[rng.random_range(0..v.len())]
    }
}

/// One random schedule; `Err` names the first violation (the sim's
/// checks panic: run it through `catch`).
fn schedule(seed: u64, bugs: &[&str]) -> Result<(), Violation> {
    let mut s = sim(seed, bugs);
    let mut master = Master::new();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9);
    s.faults = Faults {
        drop: 0.05,
        duplicate: 0.05,
    };
    let mut seq = 0u64;
    let mut writes: Vec<RequestId> = Vec::new();
    // (read id, highest write value acknowledged when it was sent)
    let mut reads: Vec<(RequestId, i64)> = Vec::new();
    let acked_max = |s: &Sim<Chain>, writes: &[RequestId]| {
        s.replies
            .iter()
            .filter(|(_, id, r)| matches!(r, Reply::Done(_)) && writes.contains(id))
            .map(|(_, id, _)| id.seq as i64)
            .max()
            .unwrap_or(0)
    };
    for _round in 0..12 {
        for _ in 0..6 {
            seq += 1;
            if rng.random_bool(0.5) {
                let to = pick(&mut rng, &believers(&s, Chain::is_head));
                let c = cmd(
                    seq,
                    Op::Write {
                        key: 1,
                        value: seq as i64,
                    },
                );
                writes.push(c.id);
                s.request(to, c);
            } else {
                let mut to = believers(&s, Chain::is_tail);
                if bugs.contains(&"read-at-head") {
                    to.extend(believers(&s, Chain::is_head));
                }
                let to = pick(&mut rng, &to);
                let c = cmd(seq, Op::Read { key: 1 });
                reads.push((c.id, acked_max(&s, &writes)));
                s.request(to, c);
            }
            s.run(rng.random_range(2..10));
        }
        s.run(rng.random_range(10..60));
        let head = master.chain[0];
        let victim = master.chain[rng.random_range(0..master.chain.len())];
        let target = if rng.random_bool(0.5) { head } else { victim };
        match rng.random_range(0..4) {
            0 => {
                s.crash(target);
                s.run(rng.random_range(0..20));
                let _ = master.round(&mut s);
                s.run(rng.random_range(10..40));
                s.restart(target);
            }
            1 => {
                // Cut off, alive, still in its role in its own eyes;
                // clients keep writing to whoever they think is head.
                s.isolate(target);
                for i in 0..8 {
                    if i == 4 {
                        let _ = master.round(&mut s);
                    }
                    seq += 1;
                    let to = pick(&mut rng, &believers(&s, Chain::is_head));
                    let c = cmd(
                        seq,
                        Op::Write {
                            key: 1,
                            value: seq as i64,
                        },
                    );
                    writes.push(c.id);
                    s.request(to, c);
                    s.run(rng.random_range(10..30));
                }
                s.heal();
            }
            2 => {
                s.isolate(target);
                s.run(rng.random_range(60..120));
                s.heal();
            }
            _ => {}
        }
        // The master keeps watching: re-adds what came back.
        for _ in 0..3 {
            s.run(rng.random_range(20..60));
            let _ = master.round(&mut s);
        }
    }
    s.heal();
    s.faults = Faults::NONE;
    for id in s.ids() {
        if s.nodes[&id].is_none() {
            s.restart(id);
        }
    }
    for _ in 0..20 {
        s.run(100);
        s.stabilize();
        let _ = master.round(&mut s);
    }
    let head = master.chain[0];
    let n = s.nodes[&head]
        .as_ref()
        .ok_or_else(|| Violation::new(Kind::Termination, format!("seed {seed}: head down")))?;
    let log: Vec<RequestId> = n.log.iter().map(|e| e.cmd.id).collect();
    let acked: Vec<RequestId> = s
        .replies
        .iter()
        .filter(|(_, id, r)| matches!(r, Reply::Done(_)) && writes.contains(id))
        .map(|(_, id, _)| *id)
        .collect();
    if acked.is_empty() {
        return Err(Violation::new(
            Kind::NoProgress,
            format!("seed {seed}: nothing was acknowledged"),
        ));
    }
    if let Some(lost) = acked.iter().find(|id| !log.contains(id)) {
        return Err(Violation::new(
            Kind::LostWrite,
            format!("seed {seed}: acknowledged write {lost:?} is not in the final head's log"),
        ));
    }
    for (id, floor) in &reads {
        for r in s.replies_to(*id) {
            let Reply::Done(Ok(v)) = r else { continue };
            let v = v.as_i64().unwrap_or(0);
            if v < *floor {
                return Err(Violation::new(
                    Kind::StaleRead,
                    format!(
                        "seed {seed}: read {id:?} = {v}, but write {floor} was acknowledged \
                         before it"
                    ),
                ));
            }
            if v > 0
                && !log.contains(&RequestId {
                    client: 1,
                    seq: v as u64,
                })
            {
                return Err(Violation::new(
                    Kind::DirtyRead,
                    format!("seed {seed}: read {id:?} = {v}, a write that never committed"),
                ));
            }
        }
    }
    Ok(())
}

fn failures(bugs: &[&str], seeds: std::ops::Range<u64>) -> Vec<(u64, Violation)> {
    seeds
        .filter_map(|seed| catch(|| schedule(seed, bugs)).err().map(|e| (seed, e)))
        .collect()
}

#[test]
fn correct_chain_keeps_acknowledged_writes_and_reads_fresh() {
    let f = failures(&[], 0..100);
    assert!(f.is_empty(), "{f:#?}");
}

/// Each seeded bug shows the violation it is meant to cause on some of
/// 100 schedules, on which the correct chain is clean (`first_catch`).
#[test]
fn each_seeded_bug_is_caught_by_some_schedule() {
    for (bug, expected) in [
        // The head commits and acknowledges before the tail has the write:
        // when the head fails, the new chain puts another write at that
        // position (or the acknowledged one is gone).
        (
            "ack-at-head",
            &[Kind::StateMachineSafety, Kind::LostWrite][..],
        ),
        // The head's uncommitted updates, read, then lost.
        ("read-at-head", &[Kind::DirtyRead]),
        // A removed head's old-epoch Forwards overwrite the new log.
        ("no-fencing", &[Kind::StateMachineSafety, Kind::LostWrite]),
        // A re-added tail commits (and serves) its own log before it
        // caught up with its predecessor.
        (
            "tail-before-sync",
            &[Kind::StateMachineSafety, Kind::StaleRead],
        ),
    ] {
        first_catch(
            bug,
            expected,
            0..100,
            |seed| schedule(seed, &[bug]),
            |seed| schedule(seed, &[]),
        );
    }
}

#[test]
fn plan_removes_the_failed_and_re_adds_at_the_tail() {
    let st = |id, epoch, synced, hears: &[NodeId]| State {
        id,
        epoch,
        chain: vec![1, 2, 3],
        len: 0,
        commit: 0,
        synced,
        hears: hears.to_vec(),
    };
    let peers = [1, 2, 3];
    let all = |f: &dyn Fn(NodeId) -> Option<State>| -> BTreeMap<NodeId, State> {
        peers
            .iter()
            .filter_map(|p| f(*p).map(|s| (*p, s)))
            .collect()
    };
    // Everyone answers and hears everyone: keep.
    let ok = all(&|p| Some(st(p, 1, true, &[1, 2, 3])));
    assert_eq!(plan(1, &[1, 2, 3], &peers, &ok), Ok(Plan::Keep));
    // The head is down: its successor takes over.
    let no1 = all(&|p| (p != 1).then(|| st(p, 1, true, &[2, 3])));
    assert_eq!(
        plan(1, &[1, 2, 3], &peers, &no1),
        Ok(Plan::Install {
            epoch: 2,
            chain: vec![2, 3],
            removed: vec![1],
            added: vec![]
        })
    );
    // …unless it has not caught up.
    let lag = all(&|p| (p != 1).then(|| st(p, 1, p != 2, &[2, 3])));
    assert!(plan(1, &[1, 2, 3], &peers, &lag).is_err());
    // The head answers the master but nobody hears it (isolated).
    let cut = all(&|p| Some(st(p, 1, true, if p == 1 { &[] } else { &[2, 3] })));
    assert!(matches!(
        plan(1, &[1, 2, 3], &peers, &cut),
        Ok(Plan::Install { removed, .. }) if removed == vec![1]
    ));
    // It comes back: appended at the tail.
    let back = all(&|p| Some(st(p, 2, true, &[1, 2, 3])));
    assert_eq!(
        plan(2, &[2, 3], &peers, &back),
        Ok(Plan::Install {
            epoch: 3,
            chain: vec![2, 3, 1],
            removed: vec![],
            added: vec![1]
        })
    );
    // A member that missed the install gets it again.
    let missed = all(&|p| Some(st(p, if p == 3 { 1 } else { 2 }, true, &[1, 2, 3])));
    assert!(matches!(
        plan(2, &[1, 2, 3], &peers, &missed),
        Ok(Plan::Install { epoch: 2, .. })
    ));
    // A chain of two cut in half keeps its head.
    let two = all(&|p| (p != 3).then(|| st(p, 1, true, &[])));
    assert!(matches!(
        plan(1, &[1, 2], &peers, &two),
        Ok(Plan::Install { chain, .. }) if chain == vec![1]
    ));
}

#[test]
fn admin_installs_and_refuses_older_epochs() {
    let mut s = sim(1, &[]);
    let mut r = None;
    s.with_node(2, |n| r = Some(n.admin(&install_request(1, &[1, 2]))));
    assert!(
        r.take()
            .unwrap()
            .unwrap_err()
            .contains("already in epoch 1")
    );
    s.with_node(2, |n| r = Some(n.admin(&json!({"bogus": 1}))));
    assert!(r.take().unwrap().unwrap_err().contains("unknown admin"));
    s.with_node(2, |n| r = Some(n.admin(&install_request(2, &[2, 3]))));
    let v = r.take().unwrap().unwrap();
    assert_eq!(v["epoch"], 2);
    assert_eq!(s.nodes[&2].as_ref().unwrap().status().role, "leader");
    s.with_node(3, |n| r = Some(n.admin(&install_request(2, &[2, 3]))));
    r.take().unwrap().unwrap();
    // Node 1 still heads epoch 1; its first Forward is answered with Stale.
    s.request(1, cmd(1, Op::Write { key: 1, value: 1 }));
    for _ in 0..10 {
        s.run(50);
        s.stabilize();
    }
    let st = s.nodes[&1].as_ref().unwrap().status();
    assert_eq!((st.role, st.term), ("removed", 2));
    assert!(matches!(
        s.replies_to(RequestId { client: 1, seq: 1 }).as_slice(),
        [Reply::Unknown(_)]
    ));
}
