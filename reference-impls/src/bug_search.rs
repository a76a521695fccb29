//! Seeded-bug searches for the simulator tests. A seeded bug counts as
//! caught only by the violation it is meant to cause (a crash, or another
//! check firing, fails the test instead), and the correct build must be
//! clean on the catching seed under the same schedule: otherwise the
//! schedule, not the bug, would be what the checks saw.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

/// What a schedule's checks saw. The first three are the sim's own checks
/// (sim.rs, which panics); the others are the harnesses' end-of-run checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Two leaders in one term.
    ElectionSafety,
    /// Two commands applied at one position, or positions applied out of
    /// order.
    StateMachineSafety,
    /// A position skipped that some node applied (opt-in in the sim).
    TotalOrder,
    /// A transaction committed at some of its participants only.
    Atomicity,
    /// A saga holding effects at some of its services only.
    AllOrNothing,
    /// An action, compensation or request applied twice.
    DoubleApplication,
    /// Still in doubt or running after every fault healed, or the final
    /// read did not succeed.
    Termination,
    /// An answer the outcome contradicts (`ok` but never committed, `fail`
    /// but committed).
    WrongAnswer,
    /// Credit, stock or money created or destroyed, or gone negative.
    Conservation,
    /// A read that saw a transaction at one shard and not at another.
    FracturedRead,
    /// An acknowledged write missing from the final log.
    LostWrite,
    /// A read older than a write acknowledged before the read was sent.
    StaleRead,
    /// A read of a write that never committed.
    DirtyRead,
    /// A schedule in which nothing was acknowledged.
    NoProgress,
    /// Any other panic: a crash of the core or the harness, not a
    /// violation.
    Crash,
}

/// One violation: its kind and the check's words.
#[derive(Clone, Debug)]
pub(crate) struct Violation {
    pub kind: Kind,
    pub detail: String,
}

impl Violation {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Violation {
        Violation {
            kind,
            detail: detail.into(),
        }
    }

    /// Classifies a panic by the sim's messages (sim.rs).
    fn from_panic(msg: String) -> Violation {
        let kind = if msg.contains("election safety") {
            Kind::ElectionSafety
        } else if msg.contains("state-machine safety") || msg.contains("applied position") {
            Kind::StateMachineSafety
        } else if msg.contains("total order") {
            Kind::TotalOrder
        } else {
            Kind::Crash
        };
        Violation::new(kind, msg)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs one schedule; a panic (the sim's checks) becomes a [`Violation`],
/// without the panic hook printing it (a search expects them).
pub(crate) fn catch<T>(f: impl FnOnce() -> Result<T, Violation>) -> Result<T, Violation> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        Err(Violation::from_panic(msg))
    })
}

/// Runs the buggy build on `seeds` in order until one shows a violation;
/// panics unless its kind is in `expected`, or if none does. Then runs the
/// correct build on that seed and panics unless it is clean. Both runs go
/// through [`catch`]. Returns the catching seed and what it saw.
pub(crate) fn first_catch(
    what: &str,
    expected: &[Kind],
    seeds: Range<u64>,
    buggy: impl Fn(u64) -> Result<(), Violation>,
    correct: impl Fn(u64) -> Result<(), Violation>,
) -> (u64, Violation) {
    let n = seeds.end - seeds.start;
    for seed in seeds.clone() {
        let Err(v) = catch(|| buggy(seed)) else {
            continue;
        };
        let i = seed - seeds.start + 1;
        assert!(
            expected.contains(&v.kind),
            "{what}: seed {seed} (schedule {i} of {n}, seeds {seeds:?}) saw {v}; expected one of {expected:?}"
        );
        if let Err(c) = catch(|| correct(seed)) {
            panic!(
                "{what}: the correct build is not clean on seed {seed}, the seed that caught \
                 the bug (schedule {i} of {n}): {c}"
            );
        }
        eprintln!(
            "{what}: caught on seed {seed} (schedule {i} of {n}, seeds {seeds:?}): {v}; \
             the correct build is clean on it"
        );
        return (seed, v);
    }
    panic!("{what}: no {expected:?} in {n} schedules (seeds {seeds:?})");
}
