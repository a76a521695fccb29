//! Where a single-object history sits on the consistency spectrum:
//! linearizable → sequential → causal → PRAM → the four session guarantees,
//! and, beside them, eventual convergence. Each model gets `holds`,
//! `violated` (with a witness) or `unknown`, and the strongest model that
//! holds is named.
//!
//! The lattice is not restated here: the implications are the single-object
//! edges of [`crate::consistency::MODEL_IMPLIES`] (Bailis et al. 2013,
//! "Highly Available Transactions", Fig. 2; Viotti & Vukolić 2016).
//! Models are checked strongest first, and a model implied by one that
//! holds is not checked again (`implied_by`). The other way round, a model
//! still `unknown` whose implied model is violated is violated too.
//!
//! Who decides each rung: linearizability ([`crate::linear`], Knossos/WGL),
//! sequential consistency ([`crate::sequential`]), causal, PRAM and the
//! session guarantees ([`crate::session`]: unique written values, read/write
//! registers and grow-only sets), eventual convergence
//! ([`crate::crdt::convergence_paired`]: final reads after the last update
//! agree across nodes). Convergence is not implied by the safety models in a
//! finite history (a sequentially consistent process may read a stale value
//! forever), so it is always checked.

use crate::consistency::all_implied_models;
use crate::history::{History, HistoryError, Operation};
use crate::linear::{LinearError, Options};
use crate::model::ModelSpec;
use crate::verdict::Verdict;
use crate::{Deadline, session};
use serde::Serialize;
use std::time::Instant;

/// The models placed, strongest first (the order checks run in).
pub const RUNGS: &[&str] = &[
    "linearizable",
    "sequential",
    "causal",
    "PRAM",
    "writes-follow-reads",
    "read-your-writes",
    "monotonic-reads",
    "monotonic-writes",
];

/// Eventual convergence: beside the lattice, always checked.
pub const EVENTUAL: &str = "eventual";

/// One model's placement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    pub model: String,
    /// `true` (holds), `false` (violated), `"unknown"`.
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    /// Not checked: decided by this model's verdict through the lattice.
    pub implied_by: Option<String>,
    /// Why `unknown` (budget, or the check does not apply to these ops).
    pub reason: Option<String>,
    /// Violated: op ids (`Operation::id`) of a witness.
    pub witness: Vec<usize>,
    pub explanation: Option<String>,
}

/// The answer: one placement per model in [`RUNGS`] then [`EVENTUAL`].
///
/// JSON: `{"valid": false, "model": "register", "strongest": "sequential",
/// "spectrum": [{"model": "linearizable", "valid": false, "implied_by": null,
/// "reason": null, "witness": [0, 3], "explanation": "…"}, …],
/// "elapsed_ms": 1.2}`; `valid` is linearizability's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spectrum {
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    pub model: String,
    /// The strongest model of [`RUNGS`] that holds (`None`: none holds, or
    /// none could be decided).
    pub strongest: Option<String>,
    pub spectrum: Vec<Placement>,
    pub elapsed_ms: f64,
}

impl Spectrum {
    /// The placement of `model`.
    pub fn get(&self, model: &str) -> Option<&Placement> {
        self.spectrum.iter().find(|p| p.model == model)
    }

    /// One line per model: `linearizable  violated  — …`.
    pub fn prose(&self) -> String {
        let mut s = String::new();
        for p in &self.spectrum {
            let what = match p.verdict {
                Verdict::Valid => "holds",
                Verdict::Invalid => "violated",
                Verdict::Unknown => "unknown",
            };
            let why = match (&p.implied_by, &p.reason, &p.explanation) {
                (Some(m), _, _) if p.verdict == Verdict::Valid => format!(" (implied: {m} holds)"),
                (Some(m), _, _) => format!(" (implied: {m} is violated)"),
                (None, Some(r), _) => format!(": {r}"),
                (None, None, Some(e)) => format!(": {e}"),
                _ => String::new(),
            };
            s.push_str(&format!("  {:<20} {what}{why}\n", p.model));
        }
        s
    }
}

/// Why a history could not be placed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpectrumError {
    #[error(transparent)]
    Linear(#[from] LinearError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

fn placement(model: &str, verdict: Verdict) -> Placement {
    Placement {
        model: model.to_string(),
        verdict,
        implied_by: None,
        reason: None,
        witness: Vec::new(),
        explanation: None,
    }
}

/// Places `history` on the spectrum for the register-like `spec` (the
/// linearizability and sequential checks use it; the session and
/// convergence checks read the operations as they are). `opts`' time
/// limit applies to each search.
pub fn check(
    history: &History,
    spec: &ModelSpec,
    opts: &Options,
) -> Result<Spectrum, SpectrumError> {
    let start = Instant::now();
    let paired = history.pair()?;
    let ops = &paired.operations;
    let mut done: Vec<Option<Placement>> = vec![None; RUNGS.len()];
    for (i, &m) in RUNGS.iter().enumerate() {
        if done[i].is_some() {
            continue;
        }
        let p = match m {
            "linearizable" => linearizable(history, ops, spec, opts)?,
            "sequential" => sequential(history, ops, spec, opts)?,
            _ => session_model(history, &paired, m, opts),
        };
        if p.verdict == Verdict::Valid {
            for implied in all_implied_models([m]) {
                if let Some(j) = RUNGS.iter().position(|r| *r == implied)
                    && done[j].is_none()
                    && j != i
                {
                    let mut q = placement(implied, Verdict::Valid);
                    q.implied_by = Some(m.to_string());
                    done[j] = Some(q);
                }
            }
        }
        done[i] = Some(p);
    }
    let mut spectrum: Vec<Placement> = done.into_iter().flatten().collect();
    // A model still unknown is violated when a model it implies is.
    for i in 0..spectrum.len() {
        if spectrum[i].verdict != Verdict::Unknown {
            continue;
        }
        let weaker = all_implied_models([RUNGS[i]]);
        if let Some(v) = spectrum.iter().find(|q| {
            q.verdict == Verdict::Invalid
                && q.model != RUNGS[i]
                && weaker.contains(q.model.as_str())
        }) {
            let by = v.model.clone();
            let p = &mut spectrum[i];
            p.verdict = Verdict::Invalid;
            p.reason = None;
            p.implied_by = Some(by);
        }
    }
    spectrum.push(eventual(history, &paired, opts));
    let strongest = spectrum
        .iter()
        .take(RUNGS.len())
        .find(|p| p.verdict == Verdict::Valid)
        .map(|p| p.model.clone());
    Ok(Spectrum {
        verdict: spectrum[0].verdict,
        model: spec.kind.name().to_string(),
        strongest,
        spectrum,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}

fn linearizable(
    history: &History,
    ops: &[Operation],
    spec: &ModelSpec,
    opts: &Options,
) -> Result<Placement, SpectrumError> {
    let r = crate::linear::check(ops, Some(history), spec, opts)?;
    let mut p = placement("linearizable", r.verdict);
    if let Some((k, kr)) = r.keys.iter().find(|(_, kr)| kr.verdict == Verdict::Invalid) {
        p.witness = kr.minimal.clone();
        p.explanation = kr
            .minimal_explanation
            .clone()
            .or_else(|| Some(format!("key {k:?} is not linearizable")));
    } else if r.verdict == Verdict::Unknown {
        p.reason = r.keys.values().find_map(|kr| kr.reason.clone());
    }
    Ok(p)
}

fn sequential(
    history: &History,
    ops: &[Operation],
    spec: &ModelSpec,
    opts: &Options,
) -> Result<Placement, SpectrumError> {
    let r = crate::sequential::check(ops, Some(history), spec, opts)?;
    let mut p = placement("sequential", r.verdict);
    p.reason = r.reason;
    p.witness = r.witness;
    p.explanation = r.explanation;
    Ok(p)
}

fn session_model(
    history: &History,
    paired: &crate::history::Paired,
    model: &str,
    opts: &Options,
) -> Placement {
    let so = session::SessionOptions {
        models: vec![model.to_string()],
    };
    match session::check_paired(history, paired, &so, &Deadline::after(opts.time_limit)) {
        Ok(r) => {
            let mut p = placement(model, r.verdict);
            if let Some(v) = r.anomalies.values().flatten().next() {
                p.witness = v.ops.iter().map(|o| o.op).collect();
                p.explanation = Some(v.explanation.clone());
            }
            if r.verdict == Verdict::Unknown {
                p.reason = Some(r.reasons.join(" "));
            }
            p
        }
        Err(e) => {
            let mut p = placement(model, Verdict::Unknown);
            p.reason = Some(format!("the session checker does not apply: {e}"));
            p
        }
    }
}

fn eventual(history: &History, paired: &crate::history::Paired, opts: &Options) -> Placement {
    let deadline = Deadline::after(opts.time_limit);
    match crate::crdt::convergence_paired(history, paired, None, &deadline) {
        Ok(r) => {
            let nodes = r.json["stats"]["final_read_nodes"].as_u64().unwrap_or(0);
            if nodes < 2 {
                // Without two named replicas among the final reads their
                // disagreement may be an in-flight write landing between
                // them (a linearizable history can show it): not judged.
                let mut p = placement(EVENTUAL, Verdict::Unknown);
                p.reason = Some(format!(
                    "the final reads name {nodes} node(s) (the `node` field): \
                     agreement between replicas was not tested"
                ));
                return p;
            }
            let mut p = placement(EVENTUAL, r.verdict);
            // `anomalies` maps each type to its list.
            let first = r.json["anomalies"]
                .as_object()
                .and_then(|m| m.values().find_map(|l| l.as_array()?.first()))
                .cloned();
            // Its anomalies name ops by line, not id: the prose is the witness.
            if let Some(a) = first {
                p.explanation = a["explanation"]
                    .as_str()
                    .or(a["message"].as_str())
                    .map(str::to_string);
            }
            if r.verdict != Verdict::Invalid {
                p.reason = r.json["reason"].as_str().map(str::to_string);
            }
            p
        }
        Err(e) => {
            let mut p = placement(EVENTUAL, Verdict::Unknown);
            p.reason = Some(format!("the convergence check does not apply: {e}"));
            p
        }
    }
}
