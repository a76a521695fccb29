//! The lock service under the simulator, with every node ticking in
//! lockstep (bounded drift, which leases assume; one lockstep tick is
//! 10 ms of "real time"): grants, preemption after expiry, the renew that
//! races a preempt, the wait after an election, and one test per seeded
//! bug showing the mistake (Kleppmann 2016; Chubby §2.4).

use super::storage::{Accepted, Storage};
use super::*;
use crate::kv::RequestId;
use crate::sim::Sim;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use std::collections::BTreeSet;

const LEASE: u64 = 500;

fn configure(bugs: &[&str]) -> impl Fn(&mut Config) + use<> {
    let bugs: BTreeSet<String> = bugs.iter().map(|b| b.to_string()).collect();
    move |c: &mut Config| {
        c.bugs = bugs.clone();
        c.election_ticks = 10;
        c.heartbeat_ticks = 2;
        c.options.insert("tick-ms".into(), "10".into());
    }
}

/// One lockstep round: every node ticks once, then everything in flight
/// is delivered.
fn round(sim: &mut Sim<LockService>) {
    for id in sim.ids() {
        sim.tick(id);
    }
    sim.stabilize();
}

/// "Real time" in ms: the lockstep clock (ticks every node, crashed too).
fn now(sim: &Sim<LockService>) -> u64 {
    sim.clock_ms[&1]
}

fn elect(sim: &mut Sim<LockService>) -> u64 {
    for _ in 0..200 {
        round(sim);
        if let Some(l) = sim.leader() {
            return l;
        }
    }
    panic!("seed {}: no leader", sim.seed)
}

fn acquire(client: u64, seq: u64) -> Command {
    Command {
        id: RequestId { client, seq },
        op: Op::LeaseAcquire {
            lock: 0,
            lease_ms: LEASE,
            preempt: None,
        },
    }
}

fn renew(client: u64, seq: u64, token: u64) -> Command {
    Command {
        id: RequestId { client, seq },
        op: Op::LeaseRenew {
            lock: 0,
            token,
            lease_ms: LEASE,
        },
    }
}

/// Sends `cmd` to `node`, runs a round, returns the answer.
fn call(sim: &mut Sim<LockService>, node: u64, cmd: Command) -> Option<Reply> {
    let id = cmd.id;
    sim.request(node, cmd);
    sim.stabilize();
    round(sim);
    sim.replies_to(id).last().map(|r| (*r).clone())
}

fn token(r: &Option<Reply>) -> Option<u64> {
    match r {
        Some(Reply::Done(Ok(v))) => v["token"].as_u64(),
        _ => None,
    }
}

#[test]
fn grants_refuses_while_held_and_preempts_after_expiry() {
    let mut sim = Sim::<LockService>::new(3, 1, configure(&[]));
    sim.lockstep_ticks = true;
    let l = elect(&mut sim);
    // A new leader waits out any inherited lease first (there is none
    // yet, but it cannot know): the first acquire after that.
    for _ in 0..(LEASE / 10 + 5) {
        round(&mut sim);
    }
    let t1 = token(&call(&mut sim, l, acquire(1, 1))).expect("granted");
    let r = call(&mut sim, l, acquire(2, 1));
    assert!(
        matches!(&r, Some(Reply::Done(Err(e))) if e.contains("held")),
        "{r:?}"
    );
    let t1r = token(&call(&mut sim, l, renew(1, 2, t1)));
    assert_eq!(t1r, Some(t1));
    for _ in 0..(LEASE / 10 + 2) {
        round(&mut sim);
    }
    let t2 = token(&call(&mut sim, l, acquire(2, 2))).expect("preempted after expiry");
    assert!(t2 > t1);
    // The old holder's renew and release now fail.
    let r = call(&mut sim, l, renew(1, 3, t1));
    assert!(matches!(r, Some(Reply::Done(Err(_)))), "{r:?}");
}

#[test]
fn a_renew_that_commits_first_beats_the_preempt_decided_before_it() {
    let mut sim = Sim::<LockService>::new(3, 2, configure(&[]));
    sim.lockstep_ticks = true;
    let l = elect(&mut sim);
    for _ in 0..(LEASE / 10 + 5) {
        round(&mut sim);
    }
    let t1 = token(&call(&mut sim, l, acquire(1, 1))).expect("granted");
    for _ in 0..(LEASE / 10 + 2) {
        round(&mut sim);
    }
    // Both in one batch, renew first: the preempt was decided against the
    // grant, which the renew replaced, so the state machine refuses it.
    let (r, a) = (renew(1, 2, t1), acquire(2, 1));
    let (rid, aid) = (r.id, a.id);
    sim.request(l, r);
    sim.request(l, a);
    sim.stabilize();
    round(&mut sim);
    assert_eq!(
        token(&sim.replies_to(rid).last().map(|r| (*r).clone())),
        Some(t1)
    );
    let ar = sim.replies_to(aid).last().map(|r| (*r).clone());
    assert!(matches!(ar, Some(Reply::Done(Err(_)))), "{ar:?}");
}

/// Holds the lock on the leader, crashes it, and asks the new leader at
/// once; returns (time the holder asked, time a second grant came, if any).
fn failover(bugs: &[&str], seed: u64) -> (u64, Option<u64>) {
    let mut sim = Sim::<LockService>::new(3, seed, configure(bugs));
    sim.lockstep_ticks = true;
    let l = elect(&mut sim);
    for _ in 0..(LEASE / 10 + 5) {
        round(&mut sim);
    }
    let asked = now(&sim);
    token(&call(&mut sim, l, acquire(1, 1))).expect("granted");
    sim.crash(l);
    let mut seq = 0;
    for _ in 0..(2 * LEASE / 10) {
        round(&mut sim);
        let Some(nl) = sim.leader() else { continue };
        seq += 1;
        if token(&call(&mut sim, nl, acquire(2, seq))).is_some() {
            return (asked, Some(now(&sim)));
        }
    }
    (asked, None)
}

#[test]
fn a_new_leader_waits_out_the_old_lease() {
    for seed in 0..5 {
        let (asked, second) = failover(&[], seed);
        let t = second.unwrap_or_else(|| panic!("seed {seed}: never granted again"));
        assert!(
            t >= asked + LEASE,
            "seed {seed}: granted at {t}, lease from {asked}"
        );
    }
}

#[test]
fn bug_grant_after_election_grants_inside_the_old_lease() {
    let caught = (0..5).any(|seed| {
        let (asked, second) = failover(&["grant-after-election"], seed);
        second.is_some_and(|t| t < asked + LEASE)
    });
    assert!(caught, "grant-after-election never granted inside a lease");
}

/// Grants to client 1, then jumps the leader's wall clock by `jump_ms` and
/// asks for client 2 at once: Some(token) if granted.
fn clock_jump(bugs: &[&str], jump_ms: u64) -> Option<u64> {
    let mut sim = Sim::<LockService>::new(3, 7, configure(bugs));
    sim.lockstep_ticks = true;
    let l = elect(&mut sim);
    for _ in 0..(LEASE / 10 + 5) {
        round(&mut sim);
    }
    token(&call(&mut sim, l, acquire(1, 1))).expect("granted");
    *sim.clock_ms.get_mut(&l).expect("clock") += jump_ms;
    round(&mut sim);
    token(&call(&mut sim, l, acquire(2, 1)))
}

#[test]
fn bug_wall_clock_lease_expires_early_when_the_clock_jumps() {
    assert_eq!(clock_jump(&[], 5_000), None, "ticks ignore the wall clock");
    assert!(clock_jump(&["wall-clock-lease"], 5_000).is_some());
}

/// Seeded random schedules: clients acquire, renew and release through
/// random nodes while leaders crash and restart; returns the first time a
/// grant came while another token's lease was certainly valid (from the
/// holder's request, lease `LEASE`), if any.
fn random_schedule(bugs: &[&str], seed: u64) -> Option<String> {
    let mut sim = Sim::<LockService>::new(3, seed, configure(bugs));
    sim.lockstep_ticks = true;
    let mut rng = StdRng::seed_from_u64(seed);
    // token → (holder, valid until); a released token is removed.
    let mut leases: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut held: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seq = 0;
    elect(&mut sim);
    for _ in 0..3000 {
        round(&mut sim);
        if rng.random_range(0..300) == 0
            && let Some(l) = sim.leader()
        {
            sim.crash(l);
        }
        for id in sim.ids() {
            if sim.nodes[&id].is_none() && rng.random_range(0..40) == 0 {
                sim.restart(id);
            }
        }
        let client = rng.random_range(1..=3u64);
        let Some(node) = sim.leader() else { continue };
        seq += 1;
        let at = now(&sim);
        let cmd = match held.get(&client) {
            Some(&t) if rng.random_bool(0.2) => Command {
                id: RequestId { client, seq },
                op: Op::LeaseRelease { lock: 0, token: t },
            },
            Some(&t) => renew(client, seq, t),
            None => acquire(client, seq),
        };
        let op = cmd.op.clone();
        let r = call(&mut sim, node, cmd);
        match (&op, &r) {
            (Op::LeaseAcquire { .. }, Some(Reply::Done(Ok(v)))) => {
                let t = v["token"].as_u64().unwrap_or(0);
                let done = now(&sim);
                if let Some((tk, (h, until))) = leases.iter().find(|(_, (_, u))| *u > done) {
                    return Some(format!(
                        "seed {seed}: token {t} granted to {client} at {done} ms while token {tk} \
                         of client {h} was valid until {until} ms"
                    ));
                }
                leases.insert(t, (client, at + LEASE));
                held.insert(client, t);
            }
            (Op::LeaseRenew { token, .. }, Some(Reply::Done(Ok(_)))) => {
                leases.insert(*token, (client, at + LEASE));
            }
            (Op::LeaseRelease { token, .. }, Some(Reply::Done(Ok(_)))) => {
                leases.remove(token);
                held.remove(&client);
            }
            (Op::LeaseRenew { .. } | Op::LeaseRelease { .. }, Some(Reply::Done(Err(_)))) => {
                held.remove(&client);
            }
            _ => {}
        }
    }
    None
}

#[test]
fn random_schedules_keep_mutual_exclusion() {
    for seed in 0..4 {
        if let Some(e) = random_schedule(&[], seed) {
            panic!("{e}");
        }
    }
}

#[test]
fn random_schedules_catch_grant_after_election() {
    assert!((0..4).any(|s| random_schedule(&["grant-after-election"], s).is_some()));
}

/// The article's scenario on the storage: holder 1 (token t1) is paused
/// after checking its lease; the lease expires, holder 2 gets t2 and
/// writes; then 1's delayed write arrives. Returns whether the storage
/// accepted it. `fenced`: the client sends its token; `per_client`: the
/// storage-per-client bug.
fn paused_holder(fenced: bool, per_client: bool) -> bool {
    let mut sim = Sim::<LockService>::new(3, 3, configure(&[]));
    sim.lockstep_ticks = true;
    let l = elect(&mut sim);
    for _ in 0..(LEASE / 10 + 5) {
        round(&mut sim);
    }
    let t1 = token(&call(&mut sim, l, acquire(1, 1))).expect("granted");
    let delayed = Accepted {
        key: 0,
        value: 1,
        token: fenced.then_some(t1),
        client: 1,
    };
    for _ in 0..(LEASE / 10 + 2) {
        round(&mut sim);
    }
    let t2 = token(&call(&mut sim, l, acquire(2, 1))).expect("granted after expiry");
    let mut st = Storage::new(per_client);
    let fresh = Accepted {
        key: 0,
        value: 2,
        token: fenced.then_some(t2),
        client: 2,
    };
    st.write(fresh).expect("the new holder writes");
    let ok = st.write(delayed).is_ok();
    let log = st.read();
    let tokens: Vec<&Value> = log["0"]
        .as_array()
        .map_or(vec![], |a| a.iter().map(|e| &e["token"]).collect());
    assert!(!ok || tokens.len() == 2, "{log}");
    ok
}

#[test]
fn fencing_rejects_the_paused_holders_write_and_its_bugs_do_not() {
    assert!(!paused_holder(true, false), "fenced: rejected");
    assert!(paused_holder(false, false), "skip-fencing: accepted");
    assert!(paused_holder(true, true), "storage-per-client: accepted");
}
