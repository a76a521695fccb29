//! faultline-checker: decides whether a recorded history is consistent.
//!
//! A pure library: no async runtime, no I/O beyond reading a history.
//!
//! - [`format`]: history parsers (JSONL, Jepsen EDN, Porcupine) and format detection.
//! - [`history`]: events, and operations paired from them by Jepsen's rules.
//! - [`verdict`]: `valid` / `invalid` / `unknown`.
//! - [`model`]: sequential specifications (registers, kv, mutex, set, queues).
//! - [`linear`]: the linearizability checker (WGL search, split by key).
//! - [`session`]: session guarantees and causal consistency of register histories.
//! - [`set_full`]: the set workload's check (lost and unexpected elements).
//! - [`bank`], [`counter`], [`queue`], [`unique_ids`], [`lock`]: the checks
//!   of the workloads of the same names (Jepsen's checkers), each answering a
//!   [`WorkloadResult`].
//! - [`saga`]: sagas committed or fully compensated, from a final read of
//!   every service's ledger.
//! - [`crdt`]: convergence of replicated objects after heal and quiescence
//!   (`crdt-convergence`) and OR-Set add-wins semantics (`or-set`).
//! - [`txn`], [`consistency`]: Elle-style transactional checking and the model lattice.

pub mod format;
pub mod history;
pub mod linear;
pub mod model;
pub mod verdict;

pub use format::{Format, InputError};
pub use history::{Event, EventType, History, Operation, Outcome, Process, Value};
pub use verdict::Verdict;
pub mod bank;
pub mod consistency;
pub mod counter;
pub mod crdt;
pub mod detector;
pub mod election;
pub mod fenced;
pub mod lock;
pub mod lww;
pub mod queue;
pub mod saga;
pub mod session;
pub mod set_full;
pub mod siblings;
pub mod txn;
pub mod unique_ids;

/// What a workload checker ([`bank`], [`counter`], [`queue`],
/// [`unique_ids`], [`lock`]) answers: the verdict, its `results.json` form
/// and a short text summary.
///
/// The JSON always has `valid` (`true`, `false` or `"unknown"`), `model`,
/// `anomaly_types` (a list of names), `anomalies` (an object from each name
/// to a list of `{"explanation": "…", …}`, each naming the operations by
/// their history `index` and source `line`) and `stats`; an `unknown`
/// verdict also has a `reason`.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadResult {
    pub verdict: Verdict,
    pub json: Value,
    pub text: String,
}

/// How an operation is named in explanations: its history `index` (the
/// event's `index` field, else its position) and its 1-based source line,
/// both of the completion when there is one (Jepsen names an op by the
/// index of its completion), else of the invocation.
pub(crate) fn op_ref(history: &History, op: &Operation) -> (u64, usize) {
    let pos = op.complete.or(op.info_at).unwrap_or(op.invoke);
    match history.events.get(pos) {
        Some(e) => (e.index.unwrap_or(pos as u64), e.line),
        None => (pos as u64, 0),
    }
}

/// `"process 3, index 42, line 85"` for explanations.
pub(crate) fn op_where(history: &History, op: &Operation) -> String {
    let (index, line) = op_ref(history, op);
    if line > 0 {
        format!("process {}, index {index}, line {line}", op.process)
    } else {
        format!("process {}, index {index}", op.process)
    }
}

/// The `{"process", "f", "value", "index", "line"}` form of an op in anomalies.
pub(crate) fn op_json(history: &History, op: &Operation) -> Value {
    let (index, line) = op_ref(history, op);
    serde_json::json!({"process": op.process.to_value(), "f": op.f, "value": op.value,
                       "outcome": op.outcome, "index": index, "line": line})
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-written histories for the workload checkers' tests.
    use crate::history::{Event, EventType, History, Process, Value};

    /// Builds a history from `(process, type, f, value)`, lines numbered
    /// from 1 and `index` from 0 in order.
    pub fn hist(evs: &[(u64, EventType, &str, Value)]) -> History {
        History {
            events: evs
                .iter()
                .enumerate()
                .map(|(i, (p, k, f, v))| Event {
                    index: Some(i as u64),
                    line: i + 1,
                    ..Event::new(Process::Client(*p), *k, *f, v.clone())
                })
                .collect(),
        }
    }
}
