//! What the interactive explanations draw, built from the checker's typed
//! results (not re-read from JSON): the linearizability failure viewer's
//! keys ([`crate::lin_viewer`]) and the transactional anomalies' cycles
//! ([`crate::cycle`]). `faultline check --html` and the run report
//! (`report.html`) take the same value, so both draw the same thing.

use crate::lin_viewer::LinKeyView;
use faultline_checker::txn::explain::Explanation;

/// The explanations of one check that have views of their own. Empty for
/// a valid check, for checkers without a viewer, and for a run rendered
/// from its stored files alone (a run from before these views).
#[derive(Clone, Debug, Default)]
pub struct AnomalyViews {
    /// Linearizability: one viewer tab per key that is not linearizable,
    /// keys in natural order.
    pub lin: Vec<LinKeyView>,
    /// Transactional anomalies, (anomaly type, explanation): the first few
    /// of each type, cycles first; within a type in the checker's order,
    /// so the n-th of a type is the n-th of `results.json`'s list.
    pub txn: Vec<(String, Explanation)>,
    /// How many transactional anomalies were found in all (`txn` may hold
    /// fewer).
    pub txn_total: usize,
    /// One sentence naming the cause, from the checker's minimal
    /// explanation (the first key's, or the first cycle's).
    pub cause: Option<String>,
}

impl AnomalyViews {
    pub fn is_empty(&self) -> bool {
        self.lin.is_empty() && self.txn.is_empty()
    }

    /// The `n`-th (0-based) explanation of anomaly type `kind`, if drawn.
    pub fn txn_nth(&self, kind: &str, n: usize) -> Option<&Explanation> {
        self.txn
            .iter()
            .filter(|(k, _)| k == kind)
            .nth(n)
            .map(|(_, e)| e)
    }
}
