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
pub mod sym;
pub mod verdict;

pub use format::{Format, InputError};
pub use history::{Event, EventType, History, Operation, OptU64, Outcome, Process, Sym, Value};
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
pub mod sequential;
pub mod session;
pub mod set_full;
pub mod siblings;
pub mod spectrum;
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

/// A check's time budget, shared by all the loops of one workload check
/// (`faultline check --time-limit`). Loops call [`Deadline::tick`] once per
/// item; it reads the clock only every [`Deadline::CHECK_EVERY`] calls, so
/// it costs nothing measurable and a check stops at most a few thousand
/// items past the limit. Once expired it stays expired.
///
/// A checker that runs out answers `unknown` with [`Deadline::reason`]
/// (and what it had checked), or `invalid` if it had already found an
/// anomaly: an anomaly found is certain whatever was left unchecked.
#[derive(Debug, Default)]
pub struct Deadline {
    at: Option<std::time::Instant>,
    limit: Option<std::time::Duration>,
    ticks: std::cell::Cell<u64>,
    expired: std::cell::Cell<bool>,
}

impl Deadline {
    /// Clock reads happen every this many [`Deadline::tick`]s.
    pub const CHECK_EVERY: u64 = 4096;

    /// No limit: [`Deadline::tick`] never expires.
    pub fn none() -> Deadline {
        Deadline::default()
    }

    /// `limit` from now (`None`: no limit).
    pub fn after(limit: Option<std::time::Duration>) -> Deadline {
        Deadline {
            at: limit.map(|l| std::time::Instant::now() + l),
            limit,
            ..Deadline::default()
        }
    }

    /// One item of work done: true once the limit has passed (the clock is
    /// read every [`Deadline::CHECK_EVERY`] calls).
    #[inline]
    pub fn tick(&self) -> bool {
        if self.expired.get() {
            return true;
        }
        let n = self.ticks.get() + 1;
        self.ticks.set(n);
        let Some(at) = self.at else { return false };
        if n.is_multiple_of(Self::CHECK_EVERY) && std::time::Instant::now() >= at {
            self.expired.set(true);
        }
        self.expired.get()
    }

    /// Has the limit passed (reads the clock now)?
    pub fn expired(&self) -> bool {
        if !self.expired.get() && self.at.is_some_and(|at| std::time::Instant::now() >= at) {
            self.expired.set(true);
        }
        self.expired.get()
    }

    /// How many [`Deadline::tick`]s so far: the items of work done, for
    /// an `unknown` verdict's account of what was checked.
    pub fn ticks(&self) -> u64 {
        self.ticks.get()
    }

    /// Time left (`None`: no limit; zero once past).
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.at
            .map(|at| at.saturating_duration_since(std::time::Instant::now()))
    }

    /// Did a [`Deadline::tick`] find the limit passed (the check was cut
    /// short)? A check that finished just past the limit is complete.
    pub fn ran_out(&self) -> bool {
        self.expired.get()
    }

    /// `"the time limit (0.050 s) ran out while {doing}"`, for `reason`.
    pub fn reason(&self, doing: &str) -> String {
        let s = self.limit.map_or(0.0, |l| l.as_secs_f64());
        format!("the time limit ({s:.3} s) ran out while {doing}")
    }
}

/// Anomalies of one check, counted all, explained only for the first
/// `max_listed` of each kind: building an explanation's JSON costs more
/// than finding the anomaly, and a broken run can have millions. The JSON
/// keeps `anomalies` (the listed ones) and adds `anomaly_counts` (all).
pub(crate) struct Anomalies {
    pub listed: std::collections::BTreeMap<&'static str, Vec<Value>>,
    pub counts: std::collections::BTreeMap<&'static str, usize>,
    pub max_listed: usize,
}

impl Anomalies {
    /// Explanations kept per kind unless a checker says otherwise.
    pub const MAX_LISTED: usize = 16;

    pub fn new(max_listed: usize) -> Anomalies {
        Anomalies {
            listed: Default::default(),
            counts: Default::default(),
            max_listed,
        }
    }

    /// Counts one anomaly of `kind`; true when it should be explained (call
    /// [`Anomalies::push`] with its JSON then).
    pub fn count(&mut self, kind: &'static str) -> bool {
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        *n <= self.max_listed
    }

    /// Counts `n` more of `kind` at once, none explained.
    pub fn count_many(&mut self, kind: &'static str, n: usize) {
        if n > 0 {
            *self.counts.entry(kind).or_default() += n;
        }
    }

    /// Keeps the explanation of an anomaly [`Anomalies::count`] admitted.
    pub fn push(&mut self, kind: &'static str, v: Value) {
        self.listed.entry(kind).or_default().push(v);
    }

    /// Counts and, if admitted, builds and keeps the explanation.
    pub fn note(&mut self, kind: &'static str, v: impl FnOnce() -> Value) {
        if self.count(kind) {
            self.push(kind, v());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// A result as the deadline left it: if the check was cut short
/// ([`Deadline::ran_out`]), `valid` becomes `unknown` with the reason and
/// `progress` (what had been checked) in `reason` and `stopped`; an
/// `invalid` stays (its anomalies are certain) and only gains `stopped`.
pub(crate) fn within(
    mut r: WorkloadResult,
    deadline: &Deadline,
    progress: impl FnOnce() -> String,
) -> WorkloadResult {
    // Not cut short, or already explained where it stopped (`cut_short`).
    if !deadline.ran_out() || r.json.get("stopped").is_some() {
        return r;
    }
    let why = format!(
        "{}: {} ({} items examined)",
        deadline.reason("checking"),
        progress(),
        deadline.ticks()
    );
    r.json["stopped"] = serde_json::json!(why);
    if r.verdict != Verdict::Invalid {
        r.verdict = Verdict::Unknown;
        r.json["valid"] = Verdict::Unknown.to_json();
        r.json["reason"] = serde_json::json!(why);
        if let Some(rest) = r.text.strip_prefix("valid") {
            r.text = format!("unknown{rest}");
        }
        r.text.push_str(&format!("  {why}\n"));
    }
    r
}

/// The result of a check the deadline stopped before it could have found
/// anything (while indexing the history): `unknown`, saying how far it got.
pub(crate) fn cut_short(model: &str, deadline: &Deadline, doing: &str) -> WorkloadResult {
    let why = format!(
        "{} ({} items examined)",
        deadline.reason(doing),
        deadline.ticks()
    );
    WorkloadResult {
        verdict: Verdict::Unknown,
        json: serde_json::json!({"valid": Verdict::Unknown.to_json(), "model": model,
                                 "anomaly_types": [], "anomalies": {}, "anomaly_counts": {},
                                 "stats": {}, "reason": why, "stopped": why}),
        text: format!("unknown ({model}): {why}\n"),
    }
}

/// How an operation is named in explanations: its history `index` (the
/// event's `index` field, else its position) and its 1-based source line,
/// both of the completion when there is one (Jepsen names an op by the
/// index of its completion), else of the invocation.
pub(crate) fn op_ref(history: &History, op: &Operation) -> (u64, usize) {
    let pos = op.complete.or(op.info_at()).unwrap_or(op.invoke);
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
mod deadline_tests {
    use super::*;
    use std::time::Duration;

    fn result(verdict: Verdict) -> WorkloadResult {
        WorkloadResult {
            verdict,
            json: serde_json::json!({"valid": verdict.to_json()}),
            text: format!("{verdict} (test)\n"),
        }
    }

    /// Ticks until the clock is read past a zero budget.
    fn spent() -> Deadline {
        let d = Deadline::after(Some(Duration::ZERO));
        while !d.tick() {}
        d
    }

    #[test]
    fn a_check_cut_short_is_unknown_but_an_anomaly_found_stays_invalid() {
        let r = within(result(Verdict::Valid), &spent(), || "3 of 9 reads".into());
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.json["valid"], "unknown");
        let why = r.json["reason"].as_str().unwrap();
        assert!(
            why.contains("time limit (0.000 s)") && why.contains("3 of 9 reads"),
            "{why}"
        );
        assert!(r.text.starts_with("unknown (test)"), "{}", r.text);
        let r = within(result(Verdict::Invalid), &spent(), || "3 of 9 reads".into());
        assert_eq!(r.verdict, Verdict::Invalid);
        assert!(r.json["stopped"].is_string() && r.json.get("reason").is_none());
    }

    #[test]
    fn a_check_that_finished_is_left_alone() {
        // The limit passed, but no tick saw it: the check was complete.
        let d = Deadline::after(Some(Duration::ZERO));
        let r = within(result(Verdict::Valid), &d, || unreachable!());
        assert_eq!(r.verdict, Verdict::Valid);
        let none = Deadline::none();
        assert!((0..3 * Deadline::CHECK_EVERY).all(|_| !none.tick()));
        assert_eq!(none.ticks(), 3 * Deadline::CHECK_EVERY);
    }
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
                    index: Some(i as u64).into(),
                    line: i + 1,
                    ..Event::new(Process::Client(*p), *k, *f, v.clone())
                })
                .collect(),
        }
    }
}
