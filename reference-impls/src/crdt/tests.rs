//! The CvRDT laws (Shapiro et al. 2011, §2.2: merge is a join — commutative,
//! associative, idempotent) and each type's convergence to its sequential
//! specification, over random reachable states: replicas take random
//! updates and gossip random states to each other (repeated, reordered,
//! stale), then anti-entropy runs to quiescence. Seeded loops, so a failing
//! seed replays.

use super::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeSet;

const REPLICAS: usize = 3;
const STEPS: usize = 60;
const SEEDS: u64 = 300;

/// Replicas, a happens-before vector clock for each (kept by the harness,
/// not the CRDT), and every state any replica passed through.
struct Sim<C> {
    reps: Vec<C>,
    vcs: Vec<Vec<u64>>,
    seen: Vec<C>,
    rng: StdRng,
}

impl<C: Crdt> Sim<C> {
    fn new(seed: u64, init: C) -> Sim<C> {
        Sim {
            reps: vec![init; REPLICAS],
            vcs: vec![vec![0; REPLICAS]; REPLICAS],
            seen: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Runs `STEPS` steps: an update at a random replica (via `update`,
    /// given the replica index and its vector clock after the event) or a
    /// gossip of one replica's current state into another's.
    fn run(&mut self, mut update: impl FnMut(&mut StdRng, usize, &mut C, &[u64])) {
        for _ in 0..STEPS {
            let i = self.rng.random_range(0..REPLICAS);
            if self.rng.random_bool(0.5) {
                self.vcs[i][i] += 1;
                let vc = self.vcs[i].clone();
                update(&mut self.rng, i, &mut self.reps[i], &vc);
            } else {
                let j = self.rng.random_range(0..REPLICAS);
                let s = self.reps[j].clone();
                self.reps[i].merge(&s);
                let vj = self.vcs[j].clone();
                for (a, b) in self.vcs[i].iter_mut().zip(vj) {
                    *a = (*a).max(b);
                }
            }
            self.seen.push(self.reps[i].clone());
        }
    }

    /// Anti-entropy to quiescence: every replica merges every other's
    /// state, twice round (one round carries everything to the last
    /// replica, the second back to the first).
    fn heal(&mut self) {
        for _ in 0..2 {
            for i in 0..REPLICAS {
                for j in 0..REPLICAS {
                    let s = self.reps[j].clone();
                    self.reps[i].merge(&s);
                }
            }
        }
    }

    /// The join laws on three states the run passed through.
    fn laws(&mut self) -> Result<(), String> {
        let pick = |rng: &mut StdRng, seen: &[C]| seen[rng.random_range(0..seen.len())].clone();
        let (a, b, c) = (
            pick(&mut self.rng, &self.seen),
            pick(&mut self.rng, &self.seen),
            pick(&mut self.rng, &self.seen),
        );
        let join = |x: &C, y: &C| {
            let mut z = x.clone();
            z.merge(y);
            z
        };
        if join(&a, &b) != join(&b, &a) {
            return Err(format!("not commutative:\n a={a:?}\n b={b:?}"));
        }
        if join(&join(&a, &b), &c) != join(&a, &join(&b, &c)) {
            return Err(format!("not associative:\n a={a:?}\n b={b:?}\n c={c:?}"));
        }
        if join(&a, &a) != a {
            return Err(format!("not idempotent:\n a={a:?}"));
        }
        Ok(())
    }

    /// After heal: every replica reads the same value.
    fn converged(&self) -> Result<C::Value, String> {
        let v = self.reps[0].value();
        for (i, r) in self.reps.iter().enumerate() {
            if r.value() != v {
                return Err(format!(
                    "replica {i} reads {:?}, replica 0 reads {v:?}",
                    r.value()
                ));
            }
        }
        Ok(v)
    }
}

/// `a` happened before `b` (vector clocks of two distinct events).
fn before(a: &[u64], b: &[u64]) -> bool {
    a != b && a.iter().zip(b).all(|(x, y)| x <= y)
}

/// Runs `check` for every seed; returns the first failure.
fn for_seeds(mut check: impl FnMut(u64) -> Result<(), String>) -> Result<(), String> {
    for seed in 0..SEEDS {
        check(seed).map_err(|e| format!("seed {seed}: {e}"))?;
    }
    Ok(())
}

fn gcounter(bugs: Bugs, seed: u64) -> Result<(), String> {
    let mut sim = Sim::new(seed, GCounter::new(bugs));
    let mut total = 0u64;
    sim.run(|rng, i, c, _| {
        let by = rng.random_range(0..5u64);
        total += by;
        c.increment(i as NodeId + 1, by);
    });
    sim.laws()?;
    sim.heal();
    let v = sim.converged()?;
    if v != total {
        return Err(format!("converged to {v}, but {total} was added"));
    }
    Ok(())
}

fn pncounter(bugs: Bugs, seed: u64) -> Result<(), String> {
    let mut sim = Sim::new(seed, PNCounter::new(bugs));
    let mut total = 0i64;
    sim.run(|rng, i, c, _| {
        let d = rng.random_range(-5..=5i64);
        total += d;
        c.add(i as NodeId + 1, d);
    });
    sim.laws()?;
    sim.heal();
    let v = sim.converged()?;
    if v != total {
        return Err(format!("converged to {v}, but the adds sum to {total}"));
    }
    Ok(())
}

/// Add-wins: after quiescence `x` is present iff some add of `x` was not
/// observed by any remove.
fn orset(bugs: Bugs, seed: u64) -> Result<(), String> {
    let mut sim = Sim::new(seed, OrSet::<u8>::new(bugs));
    let mut adds: Vec<(u8, Dot)> = Vec::new();
    let mut removed: BTreeSet<Dot> = BTreeSet::new();
    sim.run(|rng, i, s, _| {
        let x = rng.random_range(0..4u8);
        if rng.random_bool(0.6) {
            adds.push((x, s.add(i as NodeId + 1, x)));
        } else {
            removed.extend(s.remove(&x));
        }
    });
    sim.laws()?;
    sim.heal();
    let v = sim.converged()?;
    let expected: BTreeSet<u8> = adds
        .iter()
        .filter(|(_, d)| !removed.contains(d))
        .map(|(x, _)| *x)
        .collect();
    if v != expected {
        return Err(format!("converged to {v:?}, add-wins expects {expected:?}"));
    }
    Ok(())
}

/// Each replica's wall clock runs `skew` ms off true time, which moves on
/// 0–2 ms per step. The converged value must be a write that no other
/// write causally followed (a later write that had seen it must win).
fn lww(bugs: Bugs, seed: u64, max_skew: i64) -> Result<(), String> {
    let mut sim = Sim::new(seed, LwwRegister::<u32>::new(bugs));
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc10c);
    let skew: Vec<i64> = (0..REPLICAS)
        .map(|_| rng.random_range(-max_skew..=max_skew))
        .collect();
    let mut now = 1000i64;
    let mut writes: Vec<(u32, Vec<u64>)> = Vec::new();
    sim.run(|rng, i, r, vc| {
        now += rng.random_range(0..=2i64);
        let id = writes.len() as u32;
        r.set(i as NodeId + 1, (now + skew[i]) as u64, id);
        writes.push((id, vc.to_vec()));
    });
    sim.laws()?;
    sim.heal();
    let v = sim.converged()?;
    if let Some(w) = v {
        let wvc = &writes[w as usize].1;
        if let Some((later, _)) = writes.iter().find(|(_, vc)| before(wvc, vc)) {
            return Err(format!(
                "converged to write {w}, but write {later} causally followed it (skews {skew:?})"
            ));
        }
    } else if !writes.is_empty() {
        return Err("converged to no value after writes".into());
    }
    Ok(())
}

/// The siblings after quiescence are exactly the writes no other write
/// causally followed.
fn mvreg(seed: u64) -> Result<(), String> {
    let mut sim = Sim::new(seed, MvRegister::<u32>::default());
    let mut writes: Vec<(u32, Vec<u64>)> = Vec::new();
    sim.run(|_, i, r, vc| {
        let id = writes.len() as u32;
        r.set(i as NodeId + 1, id);
        writes.push((id, vc.to_vec()));
    });
    sim.laws()?;
    sim.heal();
    let v = sim.converged()?;
    let expected: BTreeSet<u32> = writes
        .iter()
        .filter(|(_, w)| !writes.iter().any(|(_, o)| before(w, o)))
        .map(|(id, _)| *id)
        .collect();
    if v != expected {
        return Err(format!("siblings {v:?}, expected {expected:?}"));
    }
    Ok(())
}

fn bug(name: &str) -> Bugs {
    Bugs::from_names(&[name]).expect("a known bug")
}

#[test]
fn g_counter_is_a_join_and_converges_to_the_sum() {
    for_seeds(|s| gcounter(Bugs::default(), s)).unwrap();
}

#[test]
fn pn_counter_is_a_join_and_converges_to_the_sum() {
    for_seeds(|s| pncounter(Bugs::default(), s)).unwrap();
}

#[test]
fn or_set_is_a_join_and_add_wins() {
    for_seeds(|s| orset(Bugs::default(), s)).unwrap();
}

#[test]
fn lww_register_is_a_join_and_causally_later_writes_win_despite_skew() {
    for_seeds(|s| lww(Bugs::default(), s, 50)).unwrap();
}

#[test]
fn mv_register_is_a_join_and_keeps_exactly_the_concurrent_writes() {
    for_seeds(mvreg).unwrap();
}

#[test]
fn lww_loses_a_concurrent_write_to_a_faster_clock() {
    // Not a bug, the price of LWW: of two concurrent writes the one with
    // the larger timestamp wins, even if made earlier in real time.
    let b = Bugs::default();
    let (mut a, mut c) = (LwwRegister::new(b), LwwRegister::new(b));
    a.set(1, 5_000, "first, clock ahead");
    c.set(2, 1_000, "second, clock behind");
    a.merge(&c);
    c.merge(&a);
    assert_eq!(a.value(), Some("first, clock ahead"));
    assert_eq!(a, c);
}

#[test]
fn seeded_gcounter_merge_sum_breaks_idempotence_and_the_sum() {
    let e = for_seeds(|s| gcounter(bug("gcounter-merge-sum"), s)).unwrap_err();
    assert!(
        e.contains("idempotent") || e.contains("was added") || e.contains("reads"),
        "{e}"
    );
    // PN-Counters built on it break too.
    assert!(for_seeds(|s| pncounter(bug("gcounter-merge-sum"), s)).is_err());
}

#[test]
fn seeded_orset_remove_without_tags_loses_concurrent_adds() {
    let e = for_seeds(|s| orset(bug("orset-remove-without-tags"), s)).unwrap_err();
    assert!(e.contains("add-wins expects"), "{e}");
    // The smallest case: a remove at replica 1 and a concurrent add at 2.
    let b = bug("orset-remove-without-tags");
    let (mut r1, mut r2) = (OrSet::new(b), OrSet::new(b));
    r1.add(1, "x");
    r2.merge(&r1);
    r1.remove(&"x");
    r2.add(2, "x"); // concurrent with the remove: add-wins keeps x
    r1.merge(&r2);
    r2.merge(&r1);
    assert_eq!(r1.value(), BTreeSet::new(), "the seeded bug removes it");
    let (mut r1, mut r2) = (OrSet::new(Bugs::default()), OrSet::new(Bugs::default()));
    r1.add(1, "x");
    r2.merge(&r1);
    r1.remove(&"x");
    r2.add(2, "x");
    r1.merge(&r2);
    r2.merge(&r1);
    assert_eq!(r1.value(), BTreeSet::from(["x"]));
}

#[test]
fn seeded_lww_raw_wall_clock_loses_causally_later_writes() {
    let e = for_seeds(|s| lww(bug("lww-raw-wall-clock"), s, 50)).unwrap_err();
    assert!(e.contains("causally followed"), "{e}");
}

#[test]
fn seeded_lww_tie_keeps_local_diverges() {
    let e = for_seeds(|s| lww(bug("lww-tie-keeps-local"), s, 0)).unwrap_err();
    assert!(e.contains("not commutative") || e.contains("reads"), "{e}");
}

#[test]
fn unknown_bug_names_are_refused_with_the_list() {
    let e = Bugs::from_names(&["nope"]).unwrap_err();
    assert!(e.contains("gcounter-merge-sum"), "{e}");
}
