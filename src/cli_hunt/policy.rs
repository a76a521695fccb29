//! How `hunt` picks the next run's faults. An *action* is a set of one to
//! three fault kinds of the target's mix plus the nemesis interval; the
//! run then draws its faults from that set (leader-aimed ones at the
//! leader it sees).
//!
//! - [`Strategy::Random`]: uniform over kinds and intervals (Jepsen's
//!   random nemesis; the baseline).
//! - [`Strategy::Feedback`]: each kind and each interval is an arm with a
//!   value, learnt from the reward of the runs that used it (the count of
//!   behaviour states and transitions never seen before, see
//!   [`super::observe`]): `Q ← Q + α (r − Q)`, as Mallory's Q-learning
//!   does with one state (its per-state tables need the system's own
//!   events, not recorded yet). Arms are picked by value plus a count
//!   bonus `c / √(1 + n)` (UCB-style), so untried kinds go first and a
//!   kind that stops finding new behaviour gives way.
//!
//! Pure and seeded: the same seed and rewards give the same actions.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use faultline_nemesis::NemesisKind;

/// `--strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Fault sets chosen by the reward of new behaviour.
    Feedback,
    /// Uniformly random fault sets (the baseline).
    Random,
}

/// The nemesis intervals (s) an action may use: short, so a 10 s run has
/// several faults.
pub const INTERVALS: [f64; 3] = [1.5, 2.5, 4.0];

/// One run's fault choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Action {
    pub kinds: Vec<NemesisKind>,
    pub interval_s: f64,
}

/// The learning rate of the arm values.
const ALPHA: f64 = 0.5;
/// Weight of the count bonus.
const BONUS: f64 = 4.0;

pub struct Policy {
    strategy: Strategy,
    kinds: Vec<NemesisKind>,
    rng: StdRng,
    /// Per kind, then per interval: (value, times used).
    kind_arms: Vec<(f64, u32)>,
    interval_arms: Vec<(f64, u32)>,
}

impl Policy {
    /// A policy over `kinds` (the target's mix; not empty).
    pub fn new(strategy: Strategy, kinds: Vec<NemesisKind>, seed: u64) -> Policy {
        Policy {
            strategy,
            kind_arms: vec![(0.0, 0); kinds.len()],
            interval_arms: vec![(0.0, 0); INTERVALS.len()],
            kinds,
            rng: StdRng::seed_from_u64(seed ^ 0x6875_6e74),
        }
    }

    fn score(&self, arm: (f64, u32)) -> f64 {
        arm.0 + BONUS / f64::from(1 + arm.1).sqrt()
    }

    /// The best arm by score; ties broken by the rng (so equal arms are
    /// tried in a seeded order).
    fn best(&mut self, arms: &[(f64, u32)], skip: &[usize]) -> Option<usize> {
        let mut order: Vec<usize> = (0..arms.len()).filter(|i| !skip.contains(i)).collect();
        order.shuffle(&mut self.rng);
        order
            .into_iter()
            .max_by(|a, b| self.score(arms[*a]).total_cmp(&self.score(arms[*b])))
    }

    /// The next run's action.
    pub fn next(&mut self) -> Action {
        let n = self.kinds.len();
        let size = self.rng.random_range(1..=3usize.min(n.max(1)));
        let (picked, interval) = match self.strategy {
            Strategy::Random => {
                let mut idx: Vec<usize> = (0..n).collect();
                idx.shuffle(&mut self.rng);
                idx.truncate(size);
                (idx, self.rng.random_range(0..INTERVALS.len()))
            }
            Strategy::Feedback => {
                let arms = self.kind_arms.clone();
                let mut idx = Vec::new();
                while idx.len() < size {
                    match self.best(&arms, &idx) {
                        Some(i) => idx.push(i),
                        None => break,
                    }
                }
                let iv = self.interval_arms.clone();
                (idx, self.best(&iv, &[]).unwrap_or(0))
            }
        };
        let mut kinds: Vec<NemesisKind> = picked.iter().map(|&i| self.kinds[i]).collect();
        kinds.sort();
        Action {
            kinds,
            interval_s: INTERVALS[interval],
        }
    }

    /// The rewards of the run that took `a`: each kind's own (the new
    /// behaviour seen in its fault windows: credit where it was earned, so
    /// a kind drawn beside a fruitful one gains nothing from it) and the
    /// run's total, for the interval.
    pub fn reward(&mut self, a: &Action, per_kind: &[(NemesisKind, f64)], total: f64) {
        fn update(arm: &mut (f64, u32), r: f64) {
            arm.1 += 1;
            arm.0 += ALPHA * (r - arm.0);
        }
        for k in &a.kinds {
            let r = per_kind
                .iter()
                .filter(|(x, _)| x == k)
                .map(|(_, r)| r)
                .sum();
            if let Some(i) = self.kinds.iter().position(|x| x == k) {
                update(&mut self.kind_arms[i], r);
            }
        }
        if let Some(i) = INTERVALS.iter().position(|x| *x == a.interval_s) {
            update(&mut self.interval_arms[i], total);
        }
    }

    /// The largest arm value (the progress line's "best reward").
    pub fn best_value(&self) -> f64 {
        self.kind_arms.iter().map(|a| a.0).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix() -> Vec<NemesisKind> {
        vec![
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::Clock,
            NemesisKind::IsolateLeader,
            NemesisKind::KillLeader,
        ]
    }

    /// Every kind is tried before any is tried twice (the count bonus), and
    /// then the kind whose runs keep finding new behaviour is chosen far
    /// more often than the others.
    #[test]
    fn feedback_tries_every_kind_then_follows_the_reward() {
        let mut p = Policy::new(Strategy::Feedback, mix(), 7);
        let mut seen = std::collections::BTreeSet::new();
        let mut runs = 0;
        while seen.len() < mix().len() {
            let a = p.next();
            seen.extend(a.kinds.iter().copied());
            p.reward(&a, &[], 0.0);
            runs += 1;
            assert!(
                runs <= mix().len(),
                "every kind within {} runs",
                mix().len()
            );
        }
        let mut used = std::collections::BTreeMap::<NemesisKind, u32>::new();
        for _ in 0..60 {
            let a = p.next();
            for k in &a.kinds {
                *used.entry(*k).or_default() += 1;
            }
            p.reward(&a, &[(NemesisKind::IsolateLeader, 10.0)], 10.0);
        }
        let iso = used[&NemesisKind::IsolateLeader];
        for (k, n) in &used {
            if *k != NemesisKind::IsolateLeader {
                assert!(iso > 2 * n, "isolate-leader {iso} vs {k} {n}: {used:?}");
            }
        }
        assert!(p.best_value() > 5.0);
    }

    /// Random ignores rewards; both are deterministic for a seed.
    #[test]
    fn random_is_uniform_and_both_replay_from_the_seed() {
        let mut p = Policy::new(Strategy::Random, mix(), 3);
        let mut used = std::collections::BTreeMap::<NemesisKind, u32>::new();
        for _ in 0..600 {
            let a = p.next();
            assert!((1..=3).contains(&a.kinds.len()));
            assert!(INTERVALS.contains(&a.interval_s));
            for k in &a.kinds {
                *used.entry(*k).or_default() += 1;
            }
            p.reward(&a, &[(NemesisKind::Kill, 10.0)], 10.0);
        }
        // 600 runs × 2 kinds on average / 6 kinds = 200 each.
        for (k, n) in &used {
            assert!((140..260).contains(n), "{k}: {n} of 600 ({used:?})");
        }
        for s in [Strategy::Random, Strategy::Feedback] {
            let run = || {
                let mut p = Policy::new(s, mix(), 11);
                (0..20)
                    .map(|i| {
                        let a = p.next();
                        p.reward(&a, &[(a.kinds[0], f64::from(i % 3))], 1.0);
                        a
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(), run());
        }
    }
}
