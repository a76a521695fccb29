//! Elle-style transactional consistency checking (Kingsbury & Alvaro, "Elle:
//! Inferring Isolation Anomalies from Experimental Observations", 2020).
//!
//! A history of transactions — lists of micro-operations over keys — is
//! turned into a dependency graph (ww / wr / rw edges inferred from version
//! orders, plus process and realtime edges); its strongly connected
//! components are searched for cycles, each classified as an Adya anomaly
//! (G0, G1c, G-single, …). Non-cycle anomalies (G1a, G1b, internal, …) are
//! found directly. The anomalies found, mapped through the consistency-model
//! lattice ([`crate::consistency`]), give the verdict and the weakest
//! violated models.
//!
//! Two workloads: list-append (`["append",k,v]`, `["r",k,[…]]`), where reads
//! reveal a key's whole version order, and rw-register (`["w",k,v]`,
//! `["r",k,v]`), where version orders are inferred from weaker evidence.

pub mod anomaly;
pub mod cycle;
pub mod explain;
pub mod graph;
pub mod list_append;
mod prepare;
pub mod rw_register;
pub mod sim;
pub mod svg;

use crate::consistency;
use crate::history::{EventType, History, HistoryError, Outcome, Process};
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

pub use anomaly::{Anomaly, UnknownAnomaly};
pub use explain::{Explanation, Step, TxnRef};
pub use prepare::*;

/// Which kind of transactions the history holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    ListAppend,
    RwRegister,
}

impl Workload {
    /// `list-append` or `rw-register` (Elle's names; a leading `:` is ignored).
    pub fn parse(s: &str) -> Option<Workload> {
        match s.strip_prefix(':').unwrap_or(s) {
            "list-append" | "append" => Some(Workload::ListAppend),
            "rw-register" | "wr" => Some(Workload::RwRegister),
            _ => None,
        }
    }
}

/// Options for [`check`].
#[derive(Clone, Debug)]
pub struct TxnOptions {
    pub workload: Workload,
    /// Models the history is expected to satisfy (Elle's names or Adya's
    /// `PL-n` aliases). Default `["strict-serializable"]`.
    pub consistency_models: Vec<String>,
    /// Further anomalies to treat as failures regardless of models, with
    /// every anomaly that implies one of them (Elle's `:anomalies`). With
    /// `consistency_models` empty, exactly these are checked.
    pub anomalies: Vec<String>,
    /// Cycle-search budget per strongly connected component (Elle's
    /// `cycle-search-timeout`, default 1000 ms). `None`: unbounded.
    pub time_limit: Option<Duration>,
    /// Budget for the whole check, counted from the start of
    /// [`check_prepared`] (or [`check`]'s parsing): analysis, graph,
    /// cycle search and explanations. Work not done when it runs out is
    /// reported as `cycle-search-timeout` (components not searched) or
    /// `check-timeout` (analysis cut short), so the verdict is `unknown`
    /// unless an anomaly was already found. `None`: unbounded.
    pub total_limit: Option<Duration>,
    /// An absolute deadline for the whole check (the CLI's `--time-limit`,
    /// counted from when it started reading the file, so parsing counts
    /// too); combined with `total_limit`, the earlier wins.
    pub deadline: Option<Instant>,
    /// rw-register: assume each key is linearizable, so realtime order of
    /// operations on a key orders its versions.
    pub linearizable_keys: bool,
    /// rw-register: assume each key is sequentially consistent, so each
    /// process's order of operations on a key orders its versions.
    pub sequential_keys: bool,
    /// rw-register: a transaction that read `v1` of a key and then wrote
    /// `v2` orders `v1` before `v2` (Elle's `wfr-keys?`). On by default,
    /// unlike Elle: a database that lets a transaction overwrite a version
    /// older than the one it read has lost that version anyway.
    pub wfr_keys: bool,
}

impl TxnOptions {
    pub fn new(workload: Workload) -> TxnOptions {
        TxnOptions {
            workload,
            consistency_models: vec!["strict-serializable".into()],
            anomalies: Vec::new(),
            time_limit: Some(Duration::from_millis(1000)),
            total_limit: None,
            deadline: None,
            linearizable_keys: false,
            sequential_keys: false,
            wfr_keys: true,
        }
    }

    pub fn models(mut self, models: &[&str]) -> TxnOptions {
        self.consistency_models = models.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// Why a history could not be checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// A transaction's value is not a list of well-formed micro-operations.
    #[error("line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    UnknownModel(#[from] consistency::UnknownModel),
    #[error(transparent)]
    UnknownAnomaly(#[from] UnknownAnomaly),
}

/// Counts and timings, for reports and benchmarks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TxnStats {
    pub txns: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    pub keys: usize,
    pub edges: usize,
    pub sccs: usize,
    pub largest_scc: usize,
    pub prepare_ms: f64,
    pub analyze_ms: f64,
    pub graph_ms: f64,
    pub cycle_ms: f64,
}

/// The outcome of [`check`]. Serializes as
/// `{"valid": true|false|"unknown", "anomaly_types": [...], "not": [...],
/// "also_not": [...], "anomalies": {type: [explanation, ...]}, "stats": {...}}`.
#[derive(Clone, Debug, Serialize)]
pub struct TxnResult {
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    pub anomaly_types: Vec<String>,
    pub not: Vec<String>,
    pub also_not: Vec<String>,
    /// At most [`MAX_EXPLANATIONS`] explanations per anomaly type: a
    /// broken store can produce hundreds of thousands, which nobody reads
    /// and which would cost more to print than to find.
    pub anomalies: BTreeMap<String, Vec<Explanation>>,
    /// How many of each type were found, including those not explained.
    pub anomaly_counts: BTreeMap<String, usize>,
    pub stats: TxnStats,
}

/// Explanations kept per anomaly type (the count is always complete).
pub const MAX_EXPLANATIONS: usize = 1000;

impl TxnResult {
    /// Human-readable explanation of every anomaly (see [`explain::render`]).
    pub fn prose(&self) -> String {
        explain::render_result(self)
    }
}

/// Anomalies found so far, by type: every one counted, the first
/// [`MAX_EXPLANATIONS`] of each type explained. Explanations are built only
/// when kept: a broken store can show hundreds of thousands of anomalies,
/// and explaining one quotes its transactions from the file.
#[derive(Default)]
pub struct Found {
    explained: BTreeMap<Anomaly, Vec<Explanation>>,
    counts: BTreeMap<Anomaly, usize>,
}

impl Found {
    /// Counts one anomaly of `kind`, explaining it with `e` if fewer than
    /// [`MAX_EXPLANATIONS`] of that kind are explained yet.
    pub fn add(&mut self, kind: Anomaly, e: impl FnOnce() -> Explanation) {
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        if *n <= MAX_EXPLANATIONS {
            self.explained.entry(kind).or_default().push(e());
        }
    }

    /// The kinds found so far.
    pub fn kinds(&self) -> impl Iterator<Item = Anomaly> + '_ {
        self.counts.keys().copied()
    }

    pub fn contains(&self, kind: Anomaly) -> bool {
        self.counts.contains_key(&kind)
    }
}

/// Checks a deadline cheaply in hot loops: the clock is read only every
/// 1024 calls to [`Deadline::passed`], and once passed it stays passed.
pub struct Deadline {
    at: Option<Instant>,
    calls: u32,
    passed: bool,
}

impl Deadline {
    pub fn new(at: Option<Instant>) -> Deadline {
        Deadline {
            at,
            calls: 0,
            passed: false,
        }
    }

    /// Whether the deadline has passed (read from the clock now and then).
    #[inline]
    pub fn passed(&mut self) -> bool {
        if self.passed {
            return true;
        }
        self.calls = self.calls.wrapping_add(1);
        if self.calls & 1023 == 1 {
            self.passed = self.passed_now();
        }
        self.passed
    }

    /// Whether the deadline has passed, reading the clock.
    pub fn passed_now(&mut self) -> bool {
        self.passed = self.passed || self.at.is_some_and(|d| Instant::now() >= d);
        self.passed
    }

    pub fn at(&self) -> Option<Instant> {
        self.at
    }
}

/// The phase the time limit cut short, as a `check-timeout` explanation.
fn timed_out(found: &mut Found, phase: &str) {
    found.add(Anomaly::CheckTimeout, || Explanation::CheckTimeout {
        phase: phase.to_string(),
    });
}

/// Workload-specific analysis kept for explaining edges.
pub enum Analysis {
    ListAppend(list_append::Analysis),
    RwRegister(rw_register::Analysis),
}

/// Checks a transactional history against `opts.consistency_models`.
pub fn check(history: &History, opts: &TxnOptions) -> Result<TxnResult, TxnError> {
    // An unknown model is reported before any complaint about the history.
    prohibited_by(opts)?;
    let t0 = Instant::now();
    let mut opts = opts.clone();
    if let Some(total) = opts.total_limit.take() {
        // Preparing counts against the total budget here.
        opts.deadline = earliest(opts.deadline, Some(t0 + total));
    }
    let p = prepare(history, opts.workload)?;
    check_prepared(&p, &opts, ms(t0))
}

/// The result of a check the time limit stopped before it began, during
/// `phase` (say, reading a huge file): `unknown`, with a `check-timeout`.
pub fn unfinished(opts: &TxnOptions, phase: &str) -> Result<TxnResult, TxnError> {
    let prohibited = prohibited_by(opts)?;
    let mut found = Found::default();
    timed_out(&mut found, phase);
    Ok(result(found, &prohibited, TxnStats::default()))
}

/// Every anomaly that fails the check: those `opts.consistency_models`
/// forbid, and `opts.anomalies` with every anomaly implying one of them
/// (Elle's `prohibited-anomaly-types`). Unknown names are errors.
pub fn prohibited_by(opts: &TxnOptions) -> Result<BTreeSet<String>, TxnError> {
    let models = consistency::validate_models(&opts.consistency_models)?;
    let mut prohibited = consistency::anomalies_prohibited_by(&models);
    let named = opts
        .anomalies
        .iter()
        .map(|a| Anomaly::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    prohibited.extend(
        consistency::all_anomalies_implying(named.iter().map(|a| a.name()))
            .into_iter()
            .map(String::from),
    );
    Ok(prohibited)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Checks an already prepared history (from [`prepare`] or the JSONL fast
/// path); `prepare_ms` is reported as the preparation time.
pub fn check_prepared(
    p: &Prepared,
    opts: &TxnOptions,
    prepare_ms: f64,
) -> Result<TxnResult, TxnError> {
    let mut deadline = Deadline::new(earliest(
        opts.deadline,
        opts.total_limit.map(|d| Instant::now() + d),
    ));
    let prohibited = prohibited_by(opts)?;
    let mut stats = TxnStats {
        txns: p.txns.len(),
        ..TxnStats::default()
    };
    for t in &p.txns {
        match t.state {
            TxnState::Ok => stats.ok += 1,
            TxnState::Info => stats.info += 1,
            TxnState::Fail => stats.fail += 1,
        }
    }
    stats.keys = p.keys.len();
    stats.prepare_ms = prepare_ms;

    let mut found = Found::default();
    // Each phase checks the deadline as it goes; one cut short skips the
    // rest, and `check-timeout` keeps the verdict from being `valid`.
    if deadline.passed_now() {
        timed_out(&mut found, "reading the history");
        return Ok(result(found, &prohibited, stats));
    }
    let t1 = Instant::now();
    let mut buf = graph::EdgeBuf::default();
    let analysis = match opts.workload {
        Workload::ListAppend => {
            list_append::analyze(p, &mut buf, &mut found, &mut deadline).map(Analysis::ListAppend)
        }
        Workload::RwRegister => rw_register::analyze(p, opts, &mut buf, &mut found, &mut deadline)
            .map(Analysis::RwRegister),
    };
    stats.analyze_ms = ms(t1);
    let Some(analysis) = analysis else {
        timed_out(&mut found, "inferring dependencies");
        return Ok(result(found, &prohibited, stats));
    };
    if found.contains(Anomaly::DuplicateAppends) {
        // The history is refused, as Elle's `verify-unique-appends` does.
        return Ok(result(found, &prohibited, stats));
    }

    let t2 = Instant::now();
    let wants = |suffix: &str| prohibited.iter().any(|a| a.ends_with(suffix));
    if wants("-process") || wants("-realtime") {
        graph::process_edges(p, &mut buf);
    }
    if wants("-realtime") {
        graph::realtime_edges(p, &mut buf);
    }
    let graph_cut = |mut found: Found, stats: TxnStats| {
        timed_out(&mut found, "building the dependency graph");
        Ok(result(found, &prohibited, stats))
    };
    if deadline.passed_now() {
        return graph_cut(found, stats);
    }
    let Some(g) = graph::Graph::build_by(p.txns.len(), buf, deadline.at()) else {
        return graph_cut(found, stats);
    };
    stats.edges = g.edge_count();
    let Some(sccs) = g.sccs_by(deadline.at()) else {
        return graph_cut(found, stats);
    };
    stats.sccs = sccs.len();
    stats.largest_scc = sccs.iter().map(Vec::len).max().unwrap_or(0);
    stats.graph_ms = ms(t2);

    let t3 = Instant::now();
    if g.edge_count() == 0 {
        found.add(Anomaly::EmptyTransactionGraph, || Explanation::EmptyGraph);
    }
    cycle::search(
        p,
        &analysis,
        &g,
        &sccs,
        &prohibited,
        cycle::Budget {
            per_search: opts.time_limit,
            total: deadline.at(),
        },
        &mut found,
    );
    stats.cycle_ms = ms(t3);

    Ok(result(found, &prohibited, stats))
}

/// Anomaly types that mean "could not tell", never "invalid" by themselves.
pub const UNKNOWN_TYPES: &[Anomaly] = anomaly::UNKNOWN;

fn result(found: Found, prohibited: &BTreeSet<String>, stats: TxnStats) -> TxnResult {
    // Report what the requested models care about, plus reasons for unknown.
    let keep = |k: &Anomaly| prohibited.contains(k.name()) || k.is_unknown();
    let Found { explained, counts } = found;
    // `not` / `also-not` come from every anomaly found, reported or not,
    // as Elle's `result-map` (`friendly-boundary` of all anomalies): a
    // G1b found while checking for G2 still shows the history is not read
    // committed. Nothing is said when nothing reportable was found.
    let all_real: Vec<&'static str> = counts
        .keys()
        .filter(|a| !a.is_unknown())
        .map(|a| a.name())
        .collect();
    let explained: BTreeMap<String, Vec<Explanation>> = explained
        .into_iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.name().to_string(), v))
        .collect();
    let counts: BTreeMap<String, usize> = counts
        .into_iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.name().to_string(), v))
        .collect();
    let anomaly_types: Vec<String> = counts.keys().cloned().collect();
    let verdict = if anomaly_types.iter().any(|a| prohibited.contains(a)) {
        Verdict::Invalid
    } else if anomaly_types.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Unknown
    };
    let real: &[&str] = if anomaly_types.is_empty() {
        &[]
    } else {
        &all_real
    };
    let b = consistency::boundary(real);
    TxnResult {
        verdict,
        anomaly_types,
        not: b.not.into_iter().collect(),
        also_not: b.also_not.into_iter().collect(),
        anomalies: explained,
        anomaly_counts: counts,
        stats,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
