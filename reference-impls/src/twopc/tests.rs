//! Two-phase commit under the simulator: the protocol's steps in the
//! textbook's words (Bernstein, Hadzilacos & Goodman, "Concurrency Control
//! and Recovery in Database Systems", 1987, ch. 7: the 2PC protocol, its
//! termination and recovery), then seeded random schedules with drops,
//! duplicates and crash-restarts checked for atomicity and the bank
//! invariant, then the blocking window.

use super::*;
use crate::bug_search::{Kind, Violation, first_catch};
use crate::sim::{Faults, Sim};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const ACCOUNTS: u32 = 6;
const EACH: i64 = 20;
const TOTAL: i64 = ACCOUNTS as i64 * EACH;

fn cmd(client: u64, seq: u64, op: Op) -> Command {
    Command {
        id: RequestId { client, seq },
        op,
    }
}

fn transfer(client: u64, seq: u64, from: u32, to: u32, amount: i64) -> Command {
    cmd(client, seq, Op::BankTransfer { from, to, amount })
}

fn configure(bugs: &[&str]) -> impl Fn(&mut Config) + use<> {
    let bugs: BTreeSet<String> = bugs.iter().map(|b| b.to_string()).collect();
    move |c: &mut Config| {
        c.bugs = bugs.clone();
        c.election_ticks = 20;
        c.heartbeat_ticks = 3;
    }
}

fn node(sim: &Sim<TwoPc>, id: NodeId) -> &TwoPc {
    sim.nodes[&id].as_ref().expect("node is up")
}

fn reply(sim: &Sim<TwoPc>, rid: RequestId) -> Option<Reply> {
    sim.replies_to(rid).last().map(|r| (*r).clone())
}

/// Ticks every node and delivers until quiet, `rounds` times.
fn settle(sim: &mut Sim<TwoPc>, rounds: u64) {
    for _ in 0..rounds {
        for id in sim.ids() {
            sim.tick(id);
        }
        sim.stabilize();
    }
}

fn bank(sim: &mut Sim<TwoPc>) {
    let init = cmd(
        1000,
        1,
        Op::BankInit {
            balances: vec![EACH; ACCOUNTS as usize],
        },
    );
    let rid = init.id;
    sim.request(1, init);
    settle(sim, 3);
    assert!(
        matches!(reply(sim, rid), Some(Reply::Done(Ok(_)))),
        "seed {}: bank setup: {:?}",
        sim.seed,
        reply(sim, rid)
    );
}

fn total(sim: &Sim<TwoPc>) -> i64 {
    sim.ids()
        .iter()
        .map(|&i| node(sim, i).balances().values().sum::<i64>())
        .sum()
}

/// Phase 1 and 2 without faults: prepare, unanimous yes, commit logged
/// before the commit is sent, applied at both shards, acknowledged, end.
#[test]
fn transfer_commits_at_both_shards() {
    let mut sim: Sim<TwoPc> = Sim::new(3, 1, configure(&[]));
    bank(&mut sim);
    // Account 1 is on node 2, account 2 on node 3.
    let t = transfer(1, 1, 1, 2, 5);
    sim.request(1, t.clone());
    settle(&mut sim, 2);
    assert_eq!(
        reply(&sim, t.id),
        Some(Reply::Done(Ok(json!({"from": 1, "to": 2, "amount": 5}))))
    );
    assert_eq!(node(&sim, 2).balances()[&1], 15);
    assert_eq!(node(&sim, 3).balances()[&2], 25);
    assert_eq!(total(&sim), TOTAL);
    assert!(node(&sim, 1).committing.is_empty(), "end after every ack");
    // A retry of the same request is answered, not applied again.
    sim.request(1, t.clone());
    settle(&mut sim, 1);
    assert_eq!(node(&sim, 2).balances()[&1], 15);
    assert_eq!(sim.replies_to(t.id).len(), 2);
}

/// A participant that cannot do its part votes no; the coordinator aborts
/// everywhere and the client gets a definite failure.
#[test]
fn a_no_vote_aborts_everywhere() {
    let mut sim: Sim<TwoPc> = Sim::new(3, 2, configure(&[]));
    bank(&mut sim);
    let t = transfer(1, 1, 1, 2, EACH + 1);
    sim.request(1, t.clone());
    settle(&mut sim, 2);
    let Some(Reply::Done(Err(e))) = reply(&sim, t.id) else {
        panic!("{:?}", reply(&sim, t.id));
    };
    assert!(e.contains("too little"), "{e}");
    assert_eq!(total(&sim), TOTAL);
    for id in sim.ids() {
        assert!(node(&sim, id).in_doubt().is_empty());
    }
}

/// The coordinator crashes after the participants voted yes and before it
/// decided: they stay blocked (holding their locks) for as long as it is
/// down, and its recovery presumes abort when they ask.
#[test]
fn in_doubt_participants_block_until_the_coordinator_recovers() {
    let mut sim: Sim<TwoPc> = Sim::new(3, 3, configure(&[]));
    bank(&mut sim);
    let t = transfer(1, 1, 1, 2, 5);
    sim.request(1, t.clone());
    sim.crash(1);
    // The prepares are still in flight; the votes go nowhere.
    sim.stabilize();
    assert_eq!(node(&sim, 2).in_doubt().len(), 1);
    assert_eq!(node(&sim, 3).in_doubt().len(), 1);
    for _ in 0..100 {
        sim.tick(2);
        sim.tick(3);
        sim.stabilize();
    }
    assert_eq!(node(&sim, 2).in_doubt().len(), 1, "still blocked");
    // Another transfer on a locked account cannot prepare meanwhile.
    sim.restart(1);
    settle(&mut sim, 4);
    for id in [2, 3] {
        let n = node(&sim, id);
        assert!(n.in_doubt().is_empty());
        let b = *n.blocked().last().expect("a blocked period");
        assert!(!b.committed && b.ticks >= 100, "{b:?}");
    }
    assert_eq!(total(&sim), TOTAL);
    assert_eq!(node(&sim, 2).balances()[&1], EACH);
}

/// A coordinator that crashed after logging a commit re-sends it on
/// recovery; a participant that restarted while prepared asks and commits.
#[test]
fn logged_commits_survive_crashes_on_both_sides() {
    let mut sim: Sim<TwoPc> = Sim::new(3, 4, configure(&[]));
    bank(&mut sim);
    let t = transfer(1, 1, 1, 2, 5);
    sim.request(1, t.clone());
    // Deliver the prepares and the votes, but crash every participant
    // before the commits arrive.
    for _ in 0..1000 {
        if !node(&sim, 1).committing.is_empty() {
            break;
        }
        sim.step_random();
    }
    assert!(!node(&sim, 1).committing.is_empty(), "decided");
    sim.crash(2);
    sim.crash(3);
    sim.crash(1);
    sim.restart(2);
    sim.restart(3);
    settle(&mut sim, 3);
    assert_eq!(node(&sim, 2).in_doubt().len(), 1, "blocked while 1 is down");
    sim.restart(1);
    settle(&mut sim, 3);
    assert_eq!(node(&sim, 2).balances()[&1], 15);
    assert_eq!(node(&sim, 3).balances()[&2], 25);
    sim.request(1, t.clone());
    settle(&mut sim, 1);
    assert!(matches!(reply(&sim, t.id), Some(Reply::Done(Ok(_)))));
}

/// A read takes shared locks everywhere and answers one snapshot.
#[test]
fn read_is_a_read_only_transaction() {
    let mut sim: Sim<TwoPc> = Sim::new(3, 5, configure(&[]));
    bank(&mut sim);
    let r = cmd(2, 1, Op::BankRead);
    sim.request(1, r.clone());
    settle(&mut sim, 2);
    assert_eq!(
        reply(&sim, r.id),
        Some(Reply::Done(Ok(json!(vec![EACH; ACCOUNTS as usize]))))
    );
    let w = cmd(2, 2, Op::Write { key: 1, value: 1 });
    sim.request(1, w.clone());
    sim.request(2, r.clone());
    assert!(matches!(reply(&sim, w.id), Some(Reply::Done(Err(_)))));
    assert_eq!(
        reply(&sim, r.id),
        Some(Reply::NotLeader { leader: Some(1) })
    );
}

/// What one random run saw.
#[derive(Debug, Default)]
struct Run {
    committed: usize,
    failed: usize,
    reads: usize,
    /// Blocked periods that ended, in ticks.
    blocked: Vec<u64>,
}

/// A random schedule: transfers from three clients and reads at the
/// coordinator, retries of unanswered requests, drops and duplicates, and
/// crash-restarts of the coordinator (also right after it answered a
/// transfer) and of participants. Then heal, let
/// every transaction terminate, and check:
///
/// - **atomicity**: a transaction committed at one participant is
///   committed at every participant it has; no request commits twice;
/// - **the bank**: the balances sum to the total, none negative, and every
///   `ok` read saw the total;
/// - **the answers**: an `ok` transfer is committed, a failed one nowhere;
/// - **termination**: nothing stays in doubt, and a final read succeeds.
fn random_run(seed: u64, bugs: &[&str]) -> Result<Run, Violation> {
    let n = 3;
    let mut sim: Sim<TwoPc> = Sim::new(n, seed, configure(bugs));
    bank(&mut sim);
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(7919).wrapping_add(17));
    sim.faults = Faults {
        drop: 0.05,
        duplicate: 0.05,
    };
    let mut sent: Vec<Command> = Vec::new();
    let mut down: BTreeMap<NodeId, u32> = BTreeMap::new();
    let mut seq = 0;
    for round in 0..80u32 {
        seq += 1;
        for client in 1..=3 {
            let from = rng.random_range(0..ACCOUNTS);
            let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
            let t = transfer(client, seq, from, to, rng.random_range(1..=8));
            sim.request(1, t.clone());
            sent.push(t);
        }
        sim.request(1, cmd(9, seq, Op::BankRead));
        // A client retries an unanswered request with the same id.
        if !sent.is_empty() && rng.random_bool(0.3) {
            let c = sent[rng.random_range(0..sent.len())].clone();
            if sim.replies_to(c.id).is_empty() {
                sim.request(1, c);
            }
        }
        for _ in 0..rng.random_range(20..150) {
            let seen = sim.replies.len();
            sim.step_random();
            // Sometimes the coordinator crashes right after answering a
            // transfer: the instant after its commit point.
            let answered = sim.replies[seen..]
                .iter()
                .any(|(_, rid, r)| rid.client <= 3 && matches!(r, Reply::Done(Ok(_))));
            if answered && down.is_empty() && rng.random_bool(0.05) {
                sim.crash(1);
                down.insert(1, round + rng.random_range(1..4));
            }
        }
        for (id, at) in down.clone() {
            if round >= at {
                sim.restart(id);
                down.remove(&id);
            }
        }
        if down.is_empty() && rng.random_bool(0.15) {
            // The coordinator half the time.
            let victim = if rng.random_bool(0.5) {
                1
            } else {
                rng.random_range(2..=n)
            };
            sim.crash(victim);
            down.insert(victim, round + rng.random_range(1..6));
        }
    }
    sim.faults = Faults::NONE;
    sim.heal();
    for id in down.keys() {
        sim.restart(*id);
    }
    settle(&mut sim, 60);
    // The last read, after every fault healed.
    let last = cmd(9, seq + 1, Op::BankRead);
    let mut read_ok = false;
    for _ in 0..5 {
        sim.request(1, last.clone());
        settle(&mut sim, 3);
        if matches!(reply(&sim, last.id), Some(Reply::Done(Ok(_)))) {
            read_ok = true;
            break;
        }
    }
    check(&sim, &sent, read_ok)
}

fn check(sim: &Sim<TwoPc>, sent: &[Command], read_ok: bool) -> Result<Run, Violation> {
    let mut run = Run::default();
    // tid → (participants, where committed, request)
    let mut txns: BTreeMap<TxnId, (Vec<NodeId>, BTreeSet<NodeId>, RequestId)> = BTreeMap::new();
    for id in sim.ids() {
        let n = node(sim, id);
        if !n.in_doubt().is_empty() {
            return Err(Violation::new(
                Kind::Termination,
                format!("node {id} is still in doubt about {:?}", n.in_doubt()),
            ));
        }
        for t in n.committed() {
            txns.entry(t.tid)
                .or_insert_with(|| (t.participants.clone(), BTreeSet::new(), t.rid))
                .1
                .insert(id);
        }
        run.blocked.extend(n.blocked().iter().map(|b| b.ticks));
        if let Some((a, b)) = n.balances().iter().find(|(_, b)| **b < 0) {
            return Err(Violation::new(
                Kind::Conservation,
                format!("account {a} is {b}"),
            ));
        }
    }
    let mut by_rid: BTreeMap<RequestId, Vec<TxnId>> = BTreeMap::new();
    for (tid, (ps, at, rid)) in &txns {
        if ps.iter().any(|p| !at.contains(p)) {
            return Err(Violation::new(
                Kind::Atomicity,
                format!("{tid:?} committed at {at:?} but its participants are {ps:?}"),
            ));
        }
        by_rid.entry(*rid).or_default().push(*tid);
    }
    if let Some((rid, tids)) = by_rid.iter().find(|(_, t)| t.len() > 1) {
        return Err(Violation::new(
            Kind::DoubleApplication,
            format!("request {rid:?} committed twice: {tids:?}"),
        ));
    }
    let t = total(sim);
    if t != TOTAL {
        return Err(Violation::new(
            Kind::Conservation,
            format!("the balances sum to {t}, not {TOTAL}"),
        ));
    }
    for c in sent {
        match reply(sim, c.id) {
            Some(Reply::Done(Ok(_))) => {
                run.committed += 1;
                if !by_rid.contains_key(&c.id) {
                    return Err(Violation::new(
                        Kind::WrongAnswer,
                        format!("transfer {:?} was ok but never committed", c.id),
                    ));
                }
            }
            Some(Reply::Done(Err(e))) => {
                run.failed += 1;
                if by_rid.contains_key(&c.id) {
                    return Err(Violation::new(
                        Kind::WrongAnswer,
                        format!("transfer {:?} failed ({e}) but committed", c.id),
                    ));
                }
            }
            _ => {}
        }
    }
    for (_, rid, r) in &sim.replies {
        if rid.client != 9 {
            continue;
        }
        if let Reply::Done(Ok(v)) = r {
            run.reads += 1;
            let b: Vec<i64> = serde_json::from_value(v.clone())
                .map_err(|e| Violation::new(Kind::WrongAnswer, format!("read {rid:?}: {e}")))?;
            let s: i64 = b.iter().sum();
            if s != TOTAL || b.len() != ACCOUNTS as usize {
                return Err(Violation::new(
                    Kind::FracturedRead,
                    format!("read {rid:?} saw {b:?} (sum {s})"),
                ));
            }
        }
    }
    if !read_ok {
        return Err(Violation::new(
            Kind::Termination,
            "the final read did not succeed",
        ));
    }
    Ok(run)
}

/// Seeds a seeded bug gets to show itself.
const SEEDS: u64 = 150;
/// Seeds of the correct build (each takes about half a second in debug).
const CORRECT_SEEDS: u64 = 50;

#[test]
fn correct_build_is_atomic_and_conserves_the_bank() {
    const SEEDS: u64 = CORRECT_SEEDS;
    let mut all = Run::default();
    for seed in 0..SEEDS {
        let run = random_run(seed, &[]).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        all.committed += run.committed;
        all.failed += run.failed;
        all.reads += run.reads;
        all.blocked.extend(run.blocked);
    }
    // The runs did something: most transfers commit, reads succeed.
    let summary = format!(
        "{} committed, {} failed, {} reads",
        all.committed, all.failed, all.reads
    );
    assert!(all.committed > 10 * SEEDS as usize, "{summary}");
    assert!(all.reads > SEEDS as usize, "{summary}");
    all.blocked.sort_unstable();
    eprintln!(
        "{SEEDS} seeds: {} transfers committed, {} failed, {} reads ok; blocked periods: {} \
         (median {} ticks, p99 {}, max {})",
        all.committed,
        all.failed,
        all.reads,
        all.blocked.len(),
        all.blocked[all.blocked.len() / 2],
        all.blocked[all.blocked.len() * 99 / 100],
        all.blocked[all.blocked.len() - 1]
    );
}

/// Each seeded bug shows the violation it is meant to cause on some seed
/// of `0..SEEDS`, on which the correct build is clean (see `first_catch`).
fn caught(bug: &'static str, expected: &[Kind]) {
    first_catch(
        bug,
        expected,
        0..SEEDS,
        |seed| random_run(seed, &[bug]).map(drop),
        |seed| random_run(seed, &[]).map(drop),
    );
}

/// A participant that forgot its vote acknowledges a commit it never
/// applied: the transaction is committed at the other participant only.
#[test]
fn bug_vote_before_log_is_caught() {
    caught("vote-before-log", &[Kind::Atomicity]);
}

/// The client was told ok (or one participant committed), then the
/// recovered coordinator presumed abort.
#[test]
fn bug_decide_before_log_is_caught() {
    caught("decide-before-log", &[Kind::Atomicity, Kind::WrongAnswer]);
}

/// The participant that gave up aborted what the other committed.
#[test]
fn bug_unilateral_abort_is_caught() {
    caught("unilateral-abort", &[Kind::Atomicity]);
}

/// The participant that missed the commit is told abort.
#[test]
fn bug_forget_commit_early_is_caught() {
    caught("forget-commit-early", &[Kind::Atomicity]);
}

/// A read sees a transfer at one shard and not at the other.
#[test]
fn bug_read_early_release_is_caught() {
    caught("read-early-release", &[Kind::FracturedRead]);
}

#[test]
fn every_bug_is_in_the_table() {
    let names: Vec<_> = crate::bugs::of("twopc").map(|b| b.name).collect();
    assert_eq!(names.len(), BUGS.len());
    assert!(crate::bugs::validate("twopc", &["vote-before-log".into()]).is_ok());
}

/// The blocking window: the coordinator crashes while its participants
/// are prepared and stays down for D ticks (every live node ticks once per
/// tick: lockstep). Each prepared participant is blocked for the whole
/// downtime plus the time to ask the recovered coordinator. Prints one
/// line per D (`cargo test -p faultline-node --lib blocking_window --
/// --nocapture`).
#[test]
fn blocking_window() {
    let mut lines = Vec::new();
    for downtime in [0u64, 10, 50, 200, 1000] {
        let mut blocked = Vec::new();
        for seed in 0..40 {
            let mut sim: Sim<TwoPc> = Sim::new(3, seed, configure(&[]));
            sim.faults = Faults::NONE;
            bank(&mut sim);
            let mut rng = StdRng::seed_from_u64(seed);
            for i in 1..=6 {
                let from = rng.random_range(0..ACCOUNTS);
                let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                sim.request(1, transfer(i, 1, from, to, 1));
            }
            // The crash lands at a random point of the protocol.
            for _ in 0..rng.random_range(0..12) {
                sim.step_random();
            }
            sim.crash(1);
            sim.stabilize();
            for _ in 0..downtime {
                sim.tick(2);
                sim.tick(3);
                sim.stabilize();
            }
            sim.restart(1);
            settle(&mut sim, 20);
            for id in [2, 3] {
                let n = node(&sim, id);
                assert!(n.in_doubt().is_empty(), "seed {seed}");
                blocked.extend(n.blocked().iter().map(|b| b.ticks));
            }
            assert_eq!(total(&sim), TOTAL, "seed {seed}");
        }
        blocked.sort_unstable();
        let in_doubt: Vec<u64> = blocked
            .iter()
            .copied()
            .filter(|&t| t >= downtime.max(1))
            .collect();
        if downtime > 0 {
            // Everyone prepared at the crash waited out the downtime, and
            // then at most an inquiry interval and a round trip.
            assert!(!in_doubt.is_empty(), "downtime {downtime}: nobody blocked");
            let max = *in_doubt.last().unwrap_or(&0);
            assert!(max <= downtime + 2 * 3 + 2, "downtime {downtime}: {max}");
        }
        lines.push(format!(
            "downtime {downtime:>4} ticks: {} prepared periods, {} blocked ≥ downtime; \
             blocked ticks median {} max {}",
            blocked.len(),
            in_doubt.len(),
            in_doubt.get(in_doubt.len() / 2).copied().unwrap_or(0),
            in_doubt.last().copied().unwrap_or(0)
        ));
    }
    for l in lines {
        eprintln!("{l}");
    }
}

/// The deployed server logs each blocked period (`Core::notes`) with the
/// wall clock of the yes vote: one note per period `blocked()` records,
/// same ticks, and a start that is the participant's clock at its vote.
#[test]
fn notes_report_each_blocked_period_with_its_start() {
    let mut sim: Sim<TwoPc> = Sim::new(3, 7, configure(&[]));
    sim.faults = Faults::NONE;
    bank(&mut sim);
    // Ticks so the clocks are past zero, then a transfer n2 → n3 prepared
    // at both and the coordinator down before it decides.
    for _ in 0..5 {
        for id in [1, 2, 3] {
            sim.tick(id);
        }
    }
    sim.request(1, transfer(9, 1, 1, 2, 1));
    let mut prepared = false;
    for _ in 0..50 {
        sim.step_random();
        if !node(&sim, 2).in_doubt().is_empty() && !node(&sim, 3).in_doubt().is_empty() {
            prepared = true;
            break;
        }
    }
    assert!(prepared, "both participants should have voted yes");
    sim.crash(1);
    for _ in 0..40 {
        sim.tick(2);
        sim.tick(3);
        sim.stabilize();
    }
    sim.restart(1);
    settle(&mut sim, 20);
    for id in [2, 3] {
        let blocked = node(&sim, id).blocked().to_vec();
        let mut notes = Vec::new();
        sim.with_node(id, |n| notes = n.notes());
        assert_eq!(notes.len(), blocked.len(), "n{id}: {notes:?}");
        let long: Vec<&Value> = notes
            .iter()
            .filter(|n| n["ticks"].as_u64() >= Some(40))
            .collect();
        assert_eq!(long.len(), 1, "n{id}: {notes:?}");
        // Undecided at the crash: presumed abort.
        assert_eq!(long[0]["committed"], json!(false), "{notes:?}");
        // At least the 5 ticks of 10 ms before the request.
        assert!(long[0]["since_ms"].as_u64() >= Some(50), "{notes:?}");
        sim.with_node(id, |n| assert!(n.notes().is_empty(), "drained"));
    }
}
