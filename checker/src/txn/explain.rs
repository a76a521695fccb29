//! Explanations are data: every anomaly is a value naming the transactions,
//! keys and values involved. Prose (and SVG, in [`super::svg`]) is rendered
//! from that data afterwards and never decides anything.

use super::{TxnResult, Workload};
use crate::history::Outcome;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// A transaction as shown in an explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TxnRef {
    /// Index of the transaction (in invocation order).
    pub op: usize,
    /// The `index` of its completion (or invocation) event, when recorded.
    pub index: Option<u64>,
    /// Source line of that event.
    pub line: usize,
    pub process: Value,
    pub outcome: Outcome,
    /// Its micro-operations as completed.
    pub value: Value,
}

/// A dependency between two transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    Ww,
    Wr,
    Rw,
    Process,
    Realtime,
}

impl EdgeKind {
    pub fn from_bit(bit: u8) -> EdgeKind {
        use super::graph::*;
        match bit {
            WW => EdgeKind::Ww,
            WR => EdgeKind::Wr,
            RW => EdgeKind::Rw,
            PROCESS => EdgeKind::Process,
            _ => EdgeKind::Realtime,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
            EdgeKind::Process => "process",
            EdgeKind::Realtime => "realtime",
        }
    }
}

/// One edge of a cycle: `from < to` because of `kind` on `key`.
///
/// - ww: `from` wrote `value`, `to` wrote `other` right after it.
/// - wr: `to` observed `from`'s write of `value`.
/// - rw: `from` read `key` and saw `other` (list-append: the last element,
///   or nil), missing `to`'s later write of `value`.
/// - process / realtime: no key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Positions in the cycle's `txns` (T1 is 0).
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub other: Option<Value>,
}

/// One anomaly, as data.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Explanations are few (one per anomaly found); boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Explanation {
    /// A dependency cycle: `txns[i] < txns[i+1]`, and the last before the first.
    Cycle {
        r#type: String,
        workload: Workload,
        txns: Vec<TxnRef>,
        steps: Vec<Step>,
    },
    /// An anomaly visible in one transaction's reads (G1a, G1b, internal,
    /// future-read, duplicate-elements, dirty-update).
    Op {
        op: TxnRef,
        key: Value,
        /// What was read.
        value: Value,
        /// What should have been read, when known (internal).
        expected: Option<Value>,
        /// The transaction whose write was read, when it matters (G1a, G1b).
        writer: Option<TxnRef>,
        message: String,
    },
    /// List-append needs each appended value to be unique per key; this
    /// value was appended to `key` by every one of `txns` (or twice by one),
    /// so no read can tell which append it saw and the history is not
    /// checked further (Elle's `verify-unique-appends`).
    DuplicateAppends {
        key: Value,
        value: Value,
        txns: Vec<TxnRef>,
    },
    /// Two reads of one key that no single version order can produce.
    IncompatibleOrder { key: Value, values: Vec<Value> },
    /// Transactions that read the same version of a key and each wrote it.
    LostUpdate {
        key: Value,
        value: Value,
        txns: Vec<TxnRef>,
    },
    /// A version-order source that would order a key's versions cyclically;
    /// its edges for that key were dropped.
    CyclicVersions {
        key: Value,
        source: String,
        cycle: Vec<Value>,
    },
    /// The cycle search ran out of budget on a component.
    CycleSearchTimeout {
        anomaly_spec_type: String,
        does_not_contain: Vec<String>,
        scc_size: usize,
    },
    /// A cycle that some model forbids exists in a component, though no
    /// specific cycle was found within the budget.
    CycleExists { model: String, scc_size: usize },
    /// Nothing to check: no dependencies between transactions.
    EmptyGraph,
    /// The time limit ran out during `phase`; what came after it was not
    /// checked.
    CheckTimeout { phase: String },
}

fn val(v: &Option<Value>) -> String {
    v.as_ref()
        .map_or_else(|| "nil".to_string(), Value::to_string)
}

/// One edge of a cycle as a sentence ("T2 observed T1's append of 3 to key
/// 5, so T1 < T2 (wr)"), without numbering: renderers list it.
pub fn describe_step(s: &Step, workload: Workload) -> String {
    let (a, b) = (format!("T{}", s.from + 1), format!("T{}", s.to + 1));
    let key = val(&s.key);
    let (wrote, verb) = match workload {
        Workload::ListAppend => ("appended", "append"),
        Workload::RwRegister => ("wrote", "write"),
    };
    match s.kind {
        EdgeKind::Ww => format!(
            "{a} {wrote} {} to key {key} and {b} {wrote} {} after it, so {a} < {b} (ww)",
            val(&s.value),
            val(&s.other)
        ),
        EdgeKind::Wr => format!(
            "{b} observed {a}'s {verb} of {} to key {key}, so {a} < {b} (wr)",
            val(&s.value)
        ),
        EdgeKind::Rw => match workload {
            Workload::ListAppend => {
                let seen = match &s.other {
                    None | Some(Value::Null) => "an empty list".to_string(),
                    Some(v) => format!("a list ending in {v}"),
                };
                format!(
                    "{a} read key {key} without {b}'s append of {} (it saw {seen}), so {a} < {b} (rw)",
                    val(&s.value)
                )
            }
            Workload::RwRegister => format!(
                "{a} read key {key} = {}, which {b}'s write of {} overwrote, so {a} < {b} (rw)",
                val(&s.other),
                val(&s.value)
            ),
        },
        EdgeKind::Process => {
            format!("{a} completed before {b} began on the same process, so {a} < {b} (process)")
        }
        EdgeKind::Realtime => {
            format!("{a} completed before {b} was invoked, so {a} < {b} (realtime)")
        }
    }
}

/// Prose for one explanation, in numbered lines for cycles.
pub fn render(e: &Explanation) -> String {
    render_capped(e, usize::MAX)
}

/// As [`render`], but a cycle longer than `max_steps` shows only its first
/// `max_steps` transactions and steps and its closing step (a component of
/// 100,000 transactions can close a cycle through all of them; the JSON
/// output keeps every step).
pub fn render_capped(e: &Explanation, max_steps: usize) -> String {
    let mut out = String::new();
    match e {
        Explanation::Cycle {
            r#type,
            workload,
            txns,
            steps,
        } => {
            let _ = writeln!(out, "{type} cycle of {} transactions. Let:", txns.len());
            let shown = |i: usize| i < max_steps || i + 1 == txns.len();
            for (i, t) in txns.iter().enumerate() {
                if !shown(i) {
                    if i == max_steps {
                        let _ = writeln!(out, "  … T{}..T{} not shown", i + 1, txns.len() - 1);
                    }
                    continue;
                }
                let idx = t
                    .index
                    .map_or_else(|| format!("line {}", t.line), |x| format!("index {x}"));
                let _ = writeln!(
                    out,
                    "  T{} = {} (process {}, {idx})",
                    i + 1,
                    t.value,
                    t.process
                );
            }
            let _ = writeln!(out, "Then:");
            for (i, s) in steps.iter().enumerate() {
                if !(i < max_steps || i + 1 == steps.len()) {
                    if i == max_steps {
                        let _ = writeln!(
                            out,
                            "  … steps {} to {} not shown (the JSON output has them all);",
                            i + 1,
                            steps.len() - 1
                        );
                    }
                    continue;
                }
                let last = i + 1 == steps.len();
                let _ = writeln!(
                    out,
                    "  {}. {}{}{}",
                    i + 1,
                    if last && i > 0 { "However, " } else { "" },
                    describe_step(s, *workload),
                    if last { ": a contradiction!" } else { ";" }
                );
            }
        }
        Explanation::Op { op, message, .. } => {
            let _ = writeln!(
                out,
                "{} (process {}, line {}): {message}",
                op.value, op.process, op.line
            );
        }
        Explanation::IncompatibleOrder { key, values } => {
            let vs: Vec<String> = values.iter().map(Value::to_string).collect();
            let _ = writeln!(
                out,
                "key {key}: reads {} cannot come from one version order",
                vs.join(" and ")
            );
        }
        Explanation::DuplicateAppends { key, value, txns } => {
            let who: Vec<String> = txns
                .iter()
                .map(|t| format!("{} (process {}, line {})", t.value, t.process, t.line))
                .collect();
            let _ = writeln!(
                out,
                "value {value} appended to key {key} more than once, by {}; list-append needs unique appends, so the history was not checked further",
                who.join(" and ")
            );
        }
        Explanation::LostUpdate { key, value, txns } => {
            let _ = writeln!(
                out,
                "{} transactions read key {key} = {value} and each wrote key {key}; all but one update is lost",
                txns.len()
            );
        }
        Explanation::CyclicVersions { key, source, cycle } => {
            let vs: Vec<String> = cycle.iter().map(Value::to_string).collect();
            let _ = writeln!(
                out,
                "key {key}: the {source} order would make versions cyclic ({}); it was ignored for this key",
                vs.join(" < ")
            );
        }
        Explanation::CycleSearchTimeout {
            anomaly_spec_type,
            scc_size,
            ..
        } => {
            let _ = writeln!(
                out,
                "cycle search timed out looking for {anomaly_spec_type} in a component of {scc_size} transactions"
            );
        }
        Explanation::CycleExists { model, scc_size } => {
            let _ = writeln!(
                out,
                "a cycle forbidden by {model} exists among {scc_size} transactions"
            );
        }
        Explanation::EmptyGraph => {
            let _ = writeln!(
                out,
                "no dependencies between transactions: nothing to check"
            );
        }
        Explanation::CheckTimeout { phase } => {
            let _ = writeln!(
                out,
                "the time limit ran out while {phase}; the rest was not checked"
            );
        }
    }
    out
}

/// Prose for a whole result: verdict, weakest violated models first, then
/// every anomaly explained (at most [`super::MAX_EXPLANATIONS`] per type).
pub fn render_result(r: &TxnResult) -> String {
    render_result_capped(r, usize::MAX, usize::MAX)
}

/// As [`render_result`], showing at most `per_type` explanations of each
/// anomaly type and `max_steps` steps of each cycle ([`render_capped`]);
/// the counts stay complete. For terminals: nobody reads a thousand cycles.
pub fn render_result_capped(r: &TxnResult, per_type: usize, max_steps: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "valid: {}", r.verdict);
    if !r.not.is_empty() {
        let _ = writeln!(out, "not: {}", r.not.join(", "));
        let _ = writeln!(out, "also not: {}", r.also_not.join(", "));
    }
    for (kind, es) in &r.anomalies {
        let total = r.anomaly_counts.get(kind).copied().unwrap_or(es.len());
        let _ = writeln!(out, "\n== {kind} ({total})");
        for e in es.iter().take(per_type) {
            out.push_str(&render_capped(e, max_steps));
        }
        let shown = es.len().min(per_type);
        if total > shown {
            let _ = writeln!(out, "… and {} more not shown", total - shown);
        }
    }
    out
}
