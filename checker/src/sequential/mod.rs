//! Sequential consistency (Lamport 1979): is there one total order of all
//! operations, across every key, that keeps each process's own order and
//! is legal for the model? Unlike linearizability there is no real-time
//! constraint, and the property is not local (Herlihy & Wing 1990, §3.3):
//! a history can be sequentially consistent on every key and not as a
//! whole, so keys are searched together ([`search`]).
//!
//! It reuses the linearizability checker's sequential specifications (the
//! open [`Model`] trait: `register`, `cas-register`, `kv`, `set`, the
//! queues, your own) and its conventions: `fail` ops are dropped, `info`
//! ops may take effect (after their process's earlier ops) or never, and a
//! search cut short by [`Options`]' time or memory budget answers
//! `unknown`, never `valid`. When the answer is `invalid`, the history is
//! shrunk to a minimal witness: operations that admit no such order even
//! when every other operation may take effect anywhere, or never.
//!
//! ```
//! use faultline_checker::Verdict;
//! use faultline_checker::linear::Options;
//! use faultline_checker::model::{ModelKind, ModelSpec};
//! // Dekker's store buffer: each process writes one key, then reads the
//! // other's initial value. Each key alone is sequential; the whole is not.
//! let h = faultline_checker::format::jsonl::parse(concat!(
//!     r#"{"process":0,"type":"invoke","f":"write","key":"x","value":1}"#, "\n",
//!     r#"{"process":0,"type":"ok","f":"write","key":"x","value":1}"#, "\n",
//!     r#"{"process":1,"type":"invoke","f":"write","key":"y","value":1}"#, "\n",
//!     r#"{"process":1,"type":"ok","f":"write","key":"y","value":1}"#, "\n",
//!     r#"{"process":0,"type":"invoke","f":"read","key":"y","value":null}"#, "\n",
//!     r#"{"process":0,"type":"ok","f":"read","key":"y","value":0}"#, "\n",
//!     r#"{"process":1,"type":"invoke","f":"read","key":"x","value":null}"#, "\n",
//!     r#"{"process":1,"type":"ok","f":"read","key":"x","value":0}"#, "\n",
//! ).as_bytes()).unwrap();
//! let spec = ModelSpec::new(ModelKind::Register).with_initial(0.into());
//! let r = faultline_checker::sequential::check_history(&h, &spec, &Options::default()).unwrap();
//! assert_eq!(r.verdict, Verdict::Invalid);
//! assert_eq!(r.witness.len(), 4);
//! ```

mod search;
#[cfg(test)]
mod tests;

use crate::history::{History, Operation, Process};
use crate::linear::{LinearError, Options};
use crate::model::{CollModel, Model, ModelKind, ModelSpec, MultiModel, MutexModel, RegModel};
use crate::verdict::Verdict;
use search::Limits;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Explanations name at most this many ops (a witness that shrinking left
/// big is listed whole in `witness`).
const EXPLAIN_OPS: usize = 24;

/// Shrinking gets this long when the check has no time limit of its own.
const DEFAULT_SHRINK_LIMIT: Duration = Duration::from_secs(2);

/// One compiled operation, with its object (`key`, an index into
/// [`Flat::inits`]).
#[derive(Clone, Debug)]
pub(crate) struct FlatOp<O> {
    pub key: u32,
    /// `Operation::id` of the source operation.
    pub id: usize,
    /// Invocation position: program order, and the search's first guess.
    pub call: usize,
    /// `ok` (must take effect) rather than `info` (may, or not).
    pub ok: bool,
    pub op: O,
}

/// Every object's compiled ops in one table, and each process's ops in
/// program order (indices into `ops`).
pub(crate) struct Flat<M: Model> {
    pub models: Vec<M>,
    pub inits: Vec<M::State>,
    pub keys: Vec<String>,
    pub ops: Vec<FlatOp<M::Op>>,
    pub procs: Vec<Vec<u32>>,
}

/// What one search found.
pub(crate) struct Outcome {
    /// `None`: the budget ran out.
    pub verdict: Option<Verdict>,
    pub reason: Option<String>,
    pub states: u64,
    /// A valid total order (op ids of the ops that took effect).
    pub order: Vec<usize>,
}

impl Outcome {
    fn unknown(reason: &str, states: usize) -> Outcome {
        Outcome {
            verdict: None,
            reason: Some(reason.to_string()),
            states: states as u64,
            order: Vec::new(),
        }
    }
}

/// The answer of the sequential-consistency checker.
///
/// JSON (`serde`): `{"valid": true|false|"unknown", "model": "register",
/// "reason": null, "ops": 4, "processes": 2, "keys": 2,
/// "states_explored": 7, "witness": [0, 1, 2, 3], "witness_complete": true,
/// "explanation": "…", "elapsed_ms": 0.1}`; op ids are `Operation::id`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeqResult {
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    pub model: String,
    /// Why the verdict is `unknown` (time or memory budget).
    pub reason: Option<String>,
    /// Operations searched (after dropping failed ops and unconstrained
    /// reads).
    pub ops: usize,
    pub processes: usize,
    pub keys: usize,
    /// Dead configurations memoised.
    pub states_explored: u64,
    /// Valid: one legal total order keeping program order (op ids of the
    /// ops that took effect). Not serialised (it is as long as the
    /// history).
    #[serde(skip)]
    pub order: Vec<usize>,
    /// Invalid: a minimal witness, op ids in invocation order. With every
    /// other op relaxed (free to take effect anywhere, or never) these ops
    /// still admit no order; relaxing any one of them admits one.
    pub witness: Vec<usize>,
    /// `Some(false)`: shrinking ran out of time, so `witness` is a proven
    /// counterexample that may not be minimal.
    pub witness_complete: Option<bool>,
    /// The witness in prose, one line per process.
    pub explanation: Option<String>,
    pub elapsed_ms: f64,
}

/// Pairs `history` and checks it.
pub fn check_history(
    history: &History,
    spec: &ModelSpec,
    opts: &Options,
) -> Result<SeqResult, LinearError> {
    let paired = history.pair()?;
    check(&paired.operations, Some(history), spec, opts)
}

/// Checks paired operations against a built-in model (every key of a
/// keyed model together). `history` only names lines in errors.
pub fn check(
    ops: &[Operation],
    history: Option<&History>,
    spec: &ModelSpec,
    opts: &Options,
) -> Result<SeqResult, LinearError> {
    match spec.kind {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            check_model(ops, history, &RegModel::new(spec), opts)
        }
        ModelKind::Mutex => check_model(ops, history, &MutexModel::new(spec)?, opts),
        ModelKind::MultiRegister => check_model(ops, history, &MultiModel::new(spec), opts),
        ModelKind::Set | ModelKind::UnorderedQueue | ModelKind::FifoQueue => {
            check_model(ops, history, &CollModel::new(spec)?, opts)
        }
    }
}

/// Checks paired operations against `model` for sequential consistency:
/// objects by [`Model::partition`], each compiled on its own clone, all
/// searched together under `opts`' time and memory budgets; an invalid
/// history is shrunk to a minimal witness when `opts.shrink`.
pub fn check_model<M: Model>(
    ops: &[Operation],
    history: Option<&History>,
    model: &M,
    opts: &Options,
) -> Result<SeqResult, LinearError> {
    let start = Instant::now();
    let mut flat = flatten(ops, history, model)?;
    let limits = Limits {
        deadline: opts.time_limit.map(|t| start + t),
        mem_limit: opts.memory_limit_bytes,
    };
    let out = search::search(&mut flat, None, limits);
    let verdict = out.verdict.unwrap_or(Verdict::Unknown);
    let mut r = SeqResult {
        verdict,
        model: model.name(),
        reason: out.reason,
        ops: flat.ops.len(),
        processes: flat.procs.len(),
        keys: flat.keys.len(),
        states_explored: out.states,
        order: if verdict == Verdict::Valid {
            out.order
        } else {
            Vec::new()
        },
        witness: Vec::new(),
        witness_complete: None,
        explanation: None,
        elapsed_ms: 0.0,
    };
    if verdict == Verdict::Invalid {
        let (ids, complete) = if opts.shrink {
            let own = Instant::now() + opts.time_limit.unwrap_or(DEFAULT_SHRINK_LIMIT);
            let deadline = limits.deadline.map_or(own, |d| d.min(own));
            shrink(
                &mut flat,
                Limits {
                    deadline: Some(deadline),
                    ..limits
                },
            )
        } else {
            (flat.ops.iter().map(|o| o.id).collect(), false)
        };
        r.explanation = Some(explain(model, ops, &ids, complete));
        r.witness = ids;
        r.witness_complete = Some(complete);
    }
    r.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(r)
}

/// Compiles every object and lays out each process's program order.
fn flatten<M: Model>(
    ops: &[Operation],
    history: Option<&History>,
    model: &M,
) -> Result<Flat<M>, LinearError> {
    let mut groups: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in ops.iter().filter(|o| !o.process.is_nemesis()) {
        groups.entry(model.partition(op)).or_default().push(op);
    }
    let by_id: HashMap<usize, &Operation> = ops.iter().map(|o| (o.id, o)).collect();
    let mut proc_ids: HashMap<&Process, u32> = HashMap::new();
    let mut flat = Flat {
        models: Vec::new(),
        inits: Vec::new(),
        keys: Vec::new(),
        ops: Vec::new(),
        procs: Vec::new(),
    };
    for (k, g) in &groups {
        let (m, init, compiled) = crate::model::compile(model, k, g, history)?;
        let key = flat.keys.len() as u32;
        flat.models.push(m);
        flat.inits.push(init);
        flat.keys.push(k.clone());
        for c in compiled {
            let Some(src) = by_id.get(&c.id) else {
                continue;
            };
            let n = proc_ids.len() as u32;
            let p = *proc_ids.entry(&src.process).or_insert(n);
            if p as usize == flat.procs.len() {
                flat.procs.push(Vec::new());
            }
            flat.procs[p as usize].push(flat.ops.len() as u32);
            flat.ops.push(FlatOp {
                key,
                id: c.id,
                call: c.call,
                ok: c.ok,
                op: c.op,
            });
        }
    }
    for p in &mut flat.procs {
        p.sort_by_key(|&i| flat.ops[i as usize].call);
    }
    Ok(flat)
}

/// Shrinks an invalid history: relax whole objects, then single ops,
/// keeping each relaxation that leaves it invalid. A relaxation whose
/// search runs out of budget is not kept, so the result is always a proven
/// witness; `false` when time ran out before every op was tried.
fn shrink<M: Model>(flat: &mut Flat<M>, limits: Limits) -> (Vec<usize>, bool) {
    let n = flat.ops.len();
    let mut relaxed = vec![false; n];
    let mut complete = true;
    let out_of_time = || limits.deadline.is_some_and(|d| Instant::now() >= d);
    let mut try_relax = |flat: &mut Flat<M>, relaxed: &mut Vec<bool>, set: &[usize]| {
        let before = relaxed.clone();
        for &i in set {
            relaxed[i] = true;
        }
        match search::search(flat, Some(relaxed), limits).verdict {
            Some(Verdict::Invalid) => {}
            Some(Verdict::Unknown) | None => {
                complete = false;
                *relaxed = before;
            }
            Some(Verdict::Valid) => *relaxed = before,
        }
    };
    for k in 0..flat.keys.len() {
        if out_of_time() {
            break;
        }
        let set: Vec<usize> = (0..n)
            .filter(|&i| flat.ops[i].key as usize == k && !relaxed[i])
            .collect();
        if flat.keys.len() > 1 && !set.is_empty() {
            try_relax(flat, &mut relaxed, &set);
        }
    }
    // Then halves, quarters, … down to single ops (Zeller's ddmin, in
    // its simplest form): big histories shed most ops in a few searches.
    let strict = |relaxed: &[bool]| -> Vec<usize> { (0..n).filter(|&i| !relaxed[i]).collect() };
    let mut size = strict(&relaxed).len() / 2;
    while size >= 1 {
        let chunks: Vec<Vec<usize>> = strict(&relaxed)
            .chunks(size)
            .map(<[usize]>::to_vec)
            .collect();
        for chunk in chunks {
            if out_of_time() {
                return (ids_of(flat, &relaxed), false);
            }
            try_relax(flat, &mut relaxed, &chunk);
        }
        size /= 2;
    }
    (ids_of(flat, &relaxed), complete)
}

/// The ids of the ops not relaxed, in invocation order.
fn ids_of<M: Model>(flat: &Flat<M>, relaxed: &[bool]) -> Vec<usize> {
    let n = flat.ops.len();
    let mut ids: Vec<(usize, usize)> = (0..n)
        .filter(|&i| !relaxed[i])
        .map(|i| (flat.ops[i].call, flat.ops[i].id))
        .collect();
    ids.sort_unstable();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// The witness in prose: each process's witness ops in its order.
fn explain<M: Model>(model: &M, ops: &[Operation], ids: &[usize], complete: bool) -> String {
    let by_id: HashMap<usize, &Operation> = ops.iter().map(|o| (o.id, o)).collect();
    let mut per: BTreeMap<&Process, Vec<String>> = BTreeMap::new();
    for id in ids.iter().take(EXPLAIN_OPS) {
        if let Some(o) = by_id.get(id) {
            let key = o
                .key
                .as_ref()
                .map(|k| format!("{} ", crate::model::key_name(Some(k))))
                .unwrap_or_default();
            let info = if o.outcome == crate::history::Outcome::Info {
                " (info)"
            } else {
                ""
            };
            per.entry(&o.process)
                .or_default()
                .push(format!("{key}{}{info}", model.describe_op(o)));
        }
    }
    let lines: Vec<String> = per
        .iter()
        .map(|(p, v)| format!("process {p}: {}", v.join(", ")))
        .collect();
    format!(
        "Not sequentially consistent: no total order of these {} operation(s) keeps each \
         process's order and is legal for the {}{} — {}.",
        ids.len(),
        model.name(),
        if complete {
            ", and dropping any one of them allows one"
        } else {
            " (shrinking ran out of time: maybe not minimal)"
        },
        lines.join("; "),
    ) + &if ids.len() > EXPLAIN_OPS {
        format!(" (the first {EXPLAIN_OPS} of {} by invocation)", ids.len())
    } else {
        String::new()
    }
}
