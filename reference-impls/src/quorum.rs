//! Majority arithmetic shared by the consensus cores, so each counts
//! replicas and votes the same way:
//!
//! - [`quorum_index`]: the highest index a quorum holds, given each voter's
//!   match index — Raft's commit rule (§5.3, §5.4.2: the leader commits the
//!   highest index stored on a majority) and Zab's ACK quorum (the longest
//!   prefix a quorum has acked);
//! - [`Tally`]: granted and rejected answers to one request for votes,
//!   judged [`VoteResult::Won`], [`VoteResult::Lost`] or
//!   [`VoteResult::Pending`] against a quorum — Raft's election (§5.2) and
//!   Paxos phase-1 promises and phase-2 accepts (with Flexible Paxos'
//!   quorum sizes, Howard et al. 2016).

use crate::core::NodeId;
use std::collections::BTreeSet;

/// The size of a majority of `voters`: `voters / 2 + 1`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest value that at least `quorum` of `matched` reach: the
/// `quorum`-th largest (one value per voter; a voter that reported
/// nothing is left out or given 0). `None` when fewer than `quorum` values
/// are given, or `quorum` is 0 (no quorum of nobody vouches for anything).
pub fn quorum_index<T: Ord + Copy>(
    matched: impl IntoIterator<Item = T>,
    quorum: usize,
) -> Option<T> {
    let mut v: Vec<T> = matched.into_iter().collect();
    if quorum == 0 || v.len() < quorum {
        return None;
    }
    // Descending: the quorum-th largest is held by that many voters at least.
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.get(quorum - 1).copied()
}

/// Where a vote stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// So many rejected that the rest cannot make a quorum.
    Lost,
    /// Neither yet.
    Pending,
}

/// The answers to one request for votes (one term, one ballot, one slot).
/// Each voter's first answer counts: a vote is given once per term or
/// ballot, and a redelivered or repeated answer changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    voters: usize,
    quorum: usize,
    granted: BTreeSet<NodeId>,
    rejected: BTreeSet<NodeId>,
}

impl Tally {
    /// A vote among `voters` that `quorum` grants win.
    pub fn new(voters: usize, quorum: usize) -> Tally {
        Tally {
            voters,
            quorum,
            granted: BTreeSet::new(),
            rejected: BTreeSet::new(),
        }
    }

    /// A vote among `voters` that a majority wins.
    pub fn majority(voters: usize) -> Tally {
        Tally::new(voters, majority(voters))
    }

    /// Records `voter`'s answer; false (and nothing recorded) when the
    /// voter has answered before. The caller checks membership: the
    /// voters' ids are its business.
    pub fn record(&mut self, voter: NodeId, granted: bool) -> bool {
        if self.granted.contains(&voter) || self.rejected.contains(&voter) {
            return false;
        }
        if granted {
            self.granted.insert(voter)
        } else {
            self.rejected.insert(voter)
        }
    }

    /// Records a grant; see [`Tally::record`].
    pub fn grant(&mut self, voter: NodeId) -> bool {
        self.record(voter, true)
    }

    pub fn granted(&self) -> usize {
        self.granted.len()
    }

    pub fn rejected(&self) -> usize {
        self.rejected.len()
    }

    /// Whether `voter` granted.
    pub fn granted_by(&self, voter: NodeId) -> bool {
        self.granted.contains(&voter)
    }

    /// Won once `quorum` granted; lost once the voters yet to answer
    /// cannot make up the difference. An empty tally (no voters, quorum
    /// 0: the default, between elections) is pending, never won.
    pub fn result(&self) -> VoteResult {
        if self.quorum > 0 && self.granted() >= self.quorum {
            VoteResult::Won
        } else if self.voters.saturating_sub(self.rejected()) < self.quorum {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }

    pub fn won(&self) -> bool {
        self.result() == VoteResult::Won
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VoteResult::{Lost, Pending, Won};

    #[test]
    fn majority_sizes() {
        let got: Vec<usize> = (0..=6).map(majority).collect();
        assert_eq!(got, [1, 1, 2, 2, 3, 3, 4]);
    }

    /// Raft §5.3/§5.4.2 and Zab's ACK quorum: (match indexes, quorum,
    /// highest index a quorum holds).
    #[test]
    fn quorum_index_table() {
        let cases: &[(&[u64], usize, Option<u64>)] = &[
            // One voter: its own index commits.
            (&[7], 1, Some(7)),
            // Two voters need both.
            (&[7, 3], 2, Some(3)),
            // Three: the median.
            (&[5, 9, 1], 2, Some(5)),
            // Ties: two voters at 4 are a majority of three.
            (&[4, 4, 2], 2, Some(4)),
            (&[4, 2, 2], 2, Some(2)),
            // Four need three.
            (&[10, 8, 6, 1], 3, Some(6)),
            (&[10, 10, 1, 1], 3, Some(1)),
            // Five need three; order of voters does not matter.
            (&[1, 2, 3, 4, 5], 3, Some(3)),
            (&[5, 4, 3, 2, 1], 3, Some(3)),
            (&[9, 9, 9, 0, 0], 3, Some(9)),
            (&[0, 0, 0, 0, 0], 3, Some(0)),
            // Fewer reports than a quorum (Zab counts only synced
            // learners): nothing is vouched for.
            (&[8, 8], 3, None),
            (&[], 1, None),
            (&[3], 0, None),
            // Flexible quorum of 1 in five: the highest.
            (&[1, 6, 2, 0, 3], 1, Some(6)),
        ];
        for (matched, q, want) in cases {
            assert_eq!(
                quorum_index(matched.iter().copied(), *q),
                *want,
                "{matched:?} q={q}"
            );
        }
    }

    /// Raft §5.2 and Paxos phase 1: (voters, quorum (0 = majority),
    /// answers in order, result, granted, rejected).
    #[test]
    fn tally_table() {
        type Case = (
            usize,
            usize,
            &'static [(NodeId, bool)],
            VoteResult,
            usize,
            usize,
        );
        let cases: &[Case] = &[
            // One node votes for itself and wins.
            (1, 0, &[(1, true)], Won, 1, 0),
            (1, 0, &[], Pending, 0, 0),
            (1, 0, &[(1, false)], Lost, 0, 1),
            // Two need both: one rejection loses.
            (2, 0, &[(1, true)], Pending, 1, 0),
            (2, 0, &[(1, true), (2, false)], Lost, 1, 1),
            (2, 0, &[(1, true), (2, true)], Won, 2, 0),
            // Three: two grants win, two rejections lose, one each waits.
            (3, 0, &[(1, true), (2, false)], Pending, 1, 1),
            (3, 0, &[(1, true), (3, true)], Won, 2, 0),
            (3, 0, &[(2, false), (3, false)], Lost, 0, 2),
            // Duplicates count once: a redelivered grant is no second vote.
            (3, 0, &[(1, true), (1, true), (1, true)], Pending, 1, 0),
            // A voter's first answer stands.
            (3, 0, &[(2, false), (2, true), (1, true)], Pending, 1, 1),
            (3, 0, &[(2, true), (2, false), (3, false)], Pending, 1, 1),
            // Four: a 2–2 tie is neither; three of either decides.
            (
                4,
                0,
                &[(1, true), (2, true), (3, false), (4, false)],
                Lost,
                2,
                2,
            ),
            (4, 0, &[(1, true), (2, true), (3, false)], Pending, 2, 1),
            (4, 0, &[(1, true), (2, true), (4, true)], Won, 3, 0),
            // Five: three decide either way.
            (
                5,
                0,
                &[(1, true), (2, true), (3, false), (4, false)],
                Pending,
                2,
                2,
            ),
            (
                5,
                0,
                &[(1, true), (2, true), (3, false), (4, false), (5, true)],
                Won,
                3,
                2,
            ),
            (5, 0, &[(1, false), (2, false), (3, false)], Lost, 0, 3),
            // No election under way (the default tally).
            (0, 0, &[], Pending, 0, 0),
            // Flexible Paxos q1=4 of five: two rejections already lose.
            (5, 4, &[(1, true), (2, true), (3, true)], Pending, 3, 0),
            (5, 4, &[(1, true), (2, false), (3, false)], Lost, 1, 2),
        ];
        for (voters, q, answers, want, granted, rejected) in cases {
            let mut t = if *voters == 0 {
                Tally::default()
            } else if *q == 0 {
                Tally::majority(*voters)
            } else {
                Tally::new(*voters, *q)
            };
            for (v, g) in *answers {
                t.record(*v, *g);
            }
            let what = format!("{voters} voters q={q} {answers:?}");
            assert_eq!(t.result(), *want, "{what}");
            assert_eq!(t.won(), *want == Won, "{what}");
            assert_eq!((t.granted(), t.rejected()), (*granted, *rejected), "{what}");
        }
    }

    #[test]
    fn record_says_whether_the_answer_counted() {
        let mut t = Tally::majority(3);
        assert!(t.grant(2));
        assert!(!t.grant(2));
        assert!(!t.record(2, false));
        assert!(t.granted_by(2) && !t.granted_by(3));
        assert!(t.record(3, false));
        assert!(!t.granted_by(3));
    }
}
