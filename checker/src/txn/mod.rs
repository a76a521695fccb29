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

pub mod cycle;
pub mod explain;
pub mod graph;
pub mod list_append;
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

pub use explain::{Explanation, Step, TxnRef};

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
    /// Further anomalies to treat as failures regardless of models.
    pub anomalies: Vec<String>,
    /// Cycle-search budget per strongly connected component (Elle's
    /// `cycle-search-timeout`, default 1000 ms). `None`: unbounded.
    pub time_limit: Option<Duration>,
    /// Budget for the whole cycle search, over every component (the CLI's
    /// `--time-limit`). Components not searched when it runs out are
    /// reported as `cycle-search-timeout`, so the verdict is `unknown`
    /// unless an anomaly was already found. `None`: unbounded.
    pub total_limit: Option<Duration>,
    /// rw-register: assume each key is linearizable, so realtime order of
    /// operations on a key orders its versions.
    pub linearizable_keys: bool,
    /// rw-register: assume each key is sequentially consistent, so each
    /// process's order of operations on a key orders its versions.
    pub sequential_keys: bool,
}

impl TxnOptions {
    pub fn new(workload: Workload) -> TxnOptions {
        TxnOptions {
            workload,
            consistency_models: vec!["strict-serializable".into()],
            anomalies: Vec::new(),
            time_limit: Some(Duration::from_millis(1000)),
            total_limit: None,
            linearizable_keys: false,
            sequential_keys: false,
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

// ---------------------------------------------------------------------------
// Prepared form: interned keys and values, flat micro-op arrays.

/// Fx hash (rustc's): fast for the small integer keys that dominate here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// An interned key or value: integers stay integers; anything else is kept
/// as its JSON text (equality of JSON values).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom {
    Int(i64),
    Other(String),
}

impl Atom {
    fn of(v: &serde_json::Value) -> Atom {
        match v.as_i64() {
            Some(i) => Atom::Int(i),
            None => Atom::Other(v.to_string()),
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Atom::Int(i) => serde_json::Value::from(*i),
            Atom::Other(s) => serde_json::from_str(s).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Small non-negative integers (the common case: Jepsen's generators count
/// keys and values up from 0) are interned through a flat table instead of
/// a hash map.
const DENSE_INTS: i64 = 1 << 22;

/// Maps atoms to dense `u32` ids.
#[derive(Default)]
pub struct Interner {
    /// `dense[i]`: id of the integer `i` (`u32::MAX`: none yet), for
    /// `0 <= i < DENSE_INTS`; grown on demand.
    dense: Vec<u32>,
    /// Other integers get their own map: they hash cheaply.
    ints: FxMap<i64, u32>,
    ids: FxMap<Atom, u32>,
    pub atoms: Vec<Atom>,
}

impl Interner {
    /// The id of the integer `i`.
    #[inline]
    pub fn intern_int(&mut self, i: i64) -> u32 {
        let next = self.atoms.len() as u32;
        let id = if (0..DENSE_INTS).contains(&i) {
            let u = i as usize;
            if u >= self.dense.len() {
                self.dense.resize((u + 1).next_power_of_two(), u32::MAX);
            }
            let slot = &mut self.dense[u];
            if *slot == u32::MAX {
                *slot = next;
            }
            *slot
        } else {
            *self.ints.entry(i).or_insert(next)
        };
        if id == next {
            self.atoms.push(Atom::Int(i));
        }
        id
    }

    #[inline]
    fn intern(&mut self, v: &serde_json::Value) -> u32 {
        if let Some(i) = v.as_i64() {
            return self.intern_int(i);
        }
        let a = Atom::of(v);
        if let Some(&id) = self.ids.get(&a) {
            return id;
        }
        let id = self.atoms.len() as u32;
        self.atoms.push(a.clone());
        self.ids.insert(a, id);
        id
    }

    pub fn value(&self, id: u32) -> serde_json::Value {
        if id == NIL {
            return serde_json::Value::Null;
        }
        self.atoms
            .get(id as usize)
            .map_or(serde_json::Value::Null, Atom::to_value)
    }

    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }
}

/// "No value": a `nil` read (initial state for an ok rw-register read;
/// unknown for an unfinished one).
pub const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MopF {
    Append,
    Write,
    Read,
}

/// One micro-operation. For list reads the list is `pool[list.0..list.0+list.1]`
/// and `val` is 0, or `NIL` when the read's result is unknown.
#[derive(Clone, Copy, Debug)]
pub struct Mop {
    pub f: MopF,
    pub key: u32,
    pub val: u32,
    pub list: (u32, u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    Ok,
    Info,
    Fail,
}

/// A transaction: one paired operation.
#[derive(Clone, Copy, Debug)]
pub struct Txn {
    pub process: u32,
    pub state: TxnState,
    /// Event position of the invocation.
    pub invoke: usize,
    /// Event position of an ok / fail completion (`None`: unknown outcome).
    pub complete: Option<usize>,
    /// Event position whose value is the transaction (the completion for
    /// ok, else the invocation, as [`crate::history::Operation::value`]).
    pub value_at: usize,
    pub mops: (u32, u32),
}

/// Where a prepared history's events came from, to quote them in
/// explanations: a parsed [`History`], or the text of a JSON Lines file
/// read by the fast path ([`crate::format::txn_fast`]), whose events are
/// re-parsed only when an explanation names them.
pub enum Origin<'h> {
    History(&'h History),
    Jsonl {
        text: &'h [u8],
        /// Per event position: the byte offset of its line and its 1-based
        /// line number.
        events: Vec<(u64, u32)>,
    },
    /// A JSON Lines file read in chunks; quoted lines are read again from it.
    JsonlFile {
        path: std::path::PathBuf,
        events: Vec<(u64, u32)>,
    },
}

impl Origin<'_> {
    /// The event at position `pos` (for the JSONL origin, parsed again from
    /// its line; the fast path only accepted lines the generic parser
    /// accepts, so this cannot fail in practice, and a failure degrades to
    /// an event carrying just its line).
    fn event(&self, pos: usize) -> std::borrow::Cow<'_, crate::history::Event> {
        use std::borrow::Cow;
        match self {
            Origin::History(h) => Cow::Borrowed(&h.events[pos]),
            Origin::Jsonl { text, events } => {
                let (off, line) = events[pos];
                let rest = text.get(off as usize..).unwrap_or_default();
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                Cow::Owned(event_of_line(&rest[..end], line))
            }
            Origin::JsonlFile { path, events } => {
                let (off, line) = events[pos];
                let bytes = read_line_at(path, off).unwrap_or_default();
                Cow::Owned(event_of_line(&bytes, line))
            }
        }
    }
}

fn event_of_line(bytes: &[u8], line: u32) -> crate::history::Event {
    match crate::format::jsonl::parse_line(bytes, line as usize) {
        Ok(Some(ev)) => ev,
        _ => {
            let mut ev = crate::history::Event::new(
                Process::Client(0),
                EventType::Info,
                "txn",
                serde_json::Value::Null,
            );
            ev.line = line as usize;
            ev
        }
    }
}

/// The line of the file at `path` starting at byte `off`, without its `\n`.
fn read_line_at(path: &std::path::Path, off: u64) -> Option<Vec<u8>> {
    use std::io::{BufRead, Seek};
    let mut f = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    f.seek(std::io::SeekFrom::Start(off)).ok()?;
    let mut out = Vec::new();
    f.read_until(b'\n', &mut out).ok()?;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    Some(out)
}

/// The history in checkable form.
pub struct Prepared<'h> {
    pub origin: Origin<'h>,
    pub txns: Vec<Txn>,
    pub mops: Vec<Mop>,
    pub pool: Vec<u32>,
    pub keys: Interner,
    pub vals: Interner,
    pub process_count: usize,
}

impl Prepared<'_> {
    pub fn mops_of(&self, t: u32) -> &[Mop] {
        let (s, l) = self.txns[t as usize].mops;
        &self.mops[s as usize..(s + l) as usize]
    }

    pub fn list(&self, m: &Mop) -> &[u32] {
        &self.pool[m.list.0 as usize..(m.list.0 + m.list.1) as usize]
    }

    /// A reference to transaction `t` for explanations.
    pub fn txn_ref(&self, t: u32) -> TxnRef {
        let tx = &self.txns[t as usize];
        let ev = self.origin.event(tx.complete.unwrap_or(tx.invoke));
        TxnRef {
            op: t as usize,
            index: ev.index,
            line: ev.line,
            process: self.origin.event(tx.invoke).process.to_value(),
            outcome: match tx.state {
                TxnState::Ok => Outcome::Ok,
                TxnState::Fail => Outcome::Fail,
                TxnState::Info => Outcome::Info,
            },
            value: self.origin.event(tx.value_at).value.clone(),
        }
    }
}

/// Pairs invocations with completions by Jepsen's rules (as
/// [`History::pair`], with the same errors) but by event position only, so
/// no value is copied; then interns each transaction's micro-ops.
/// Operations whose `f` is neither `txn` nor empty (some tools omit it) are
/// not transactions.
pub fn prepare(history: &History, workload: Workload) -> Result<Prepared<'_>, TxnError> {
    let events = &history.events;
    let mut procs: FxMap<&Process, u32> = FxMap::default();
    // Per process id: the open operation's index in `ops`.
    let mut open: Vec<usize> = Vec::new();
    // (invoke, completion, kind of completion)
    let mut ops: Vec<(usize, Option<usize>, EventType, u32)> =
        Vec::with_capacity(events.len() / 2 + 1);
    for (pos, ev) in events.iter().enumerate() {
        if ev.process.is_nemesis() {
            continue;
        }
        let np = procs.len() as u32;
        let pid = *procs.entry(&ev.process).or_insert(np);
        if pid as usize >= open.len() {
            open.push(usize::MAX);
        }
        let slot = open[pid as usize];
        let err = |message: String| {
            TxnError::History(HistoryError {
                line: ev.line,
                message,
            })
        };
        if ev.kind == EventType::Invoke {
            if slot != usize::MAX {
                let prev = &events[ops[slot].0];
                return Err(err(format!(
                    "process {} invokes `{}` while its `{}` invoked on line {} is still open \
                     (a process runs one operation at a time; after `info` it must take a new id)",
                    ev.process, ev.f, prev.f, prev.line
                )));
            }
            open[pid as usize] = ops.len();
            ops.push((pos, None, EventType::Info, pid));
            continue;
        }
        if slot == usize::MAX {
            if ev.kind == EventType::Info {
                continue;
            }
            return Err(err(format!(
                "`{}` completion of `{}` by process {} has no matching invoke",
                ev.kind, ev.f, ev.process
            )));
        }
        let inv = &events[ops[slot].0];
        if inv.f != ev.f {
            return Err(err(format!(
                "`{}` completion of `{}` by process {} does not match its invoke of `{}` on line {}",
                ev.kind, ev.f, ev.process, inv.f, inv.line
            )));
        }
        ops[slot].1 = Some(pos);
        ops[slot].2 = ev.kind;
        open[pid as usize] = usize::MAX;
    }

    let mut p = Prepared {
        origin: Origin::History(history),
        txns: Vec::with_capacity(ops.len()),
        mops: Vec::with_capacity(ops.len() * 3),
        pool: Vec::new(),
        keys: Interner::default(),
        vals: Interner::default(),
        process_count: procs.len(),
    };
    for (invoke, done, kind, process) in ops {
        let inv = &events[invoke];
        if !(inv.f == "txn" || inv.f.is_empty()) {
            continue;
        }
        let (state, complete, value_at) = match (kind, done) {
            (EventType::Ok, Some(c)) => (TxnState::Ok, Some(c), c),
            (EventType::Fail, Some(c)) => (TxnState::Fail, Some(c), invoke),
            _ => (TxnState::Info, None, invoke),
        };
        let line = events[done.unwrap_or(invoke)].line;
        let bad = |message: String| TxnError::Malformed { line, message };
        let mops_json = match &events[value_at].value {
            serde_json::Value::Array(a) => a,
            // An unknown outcome may carry anything; if its invocation was
            // not a list either, it did nothing we can see.
            serde_json::Value::Null => continue,
            other => {
                return Err(bad(format!(
                    "transaction value must be a list of micro-ops, got {other}"
                )));
            }
        };
        let start = p.mops.len() as u32;
        for (i, m) in mops_json.iter().enumerate() {
            let parts = m
                .as_array()
                .filter(|a| a.len() == 3)
                .ok_or_else(|| bad(format!("micro-op {i} must be [f, key, value], got {m}")))?;
            let f = parts[0]
                .as_str()
                .map(|s| s.strip_prefix(':').unwrap_or(s))
                .ok_or_else(|| {
                    bad(format!(
                        "micro-op {i}: f must be a string, got {}",
                        parts[0]
                    ))
                })?;
            let f = match (f, workload) {
                ("append", Workload::ListAppend) => MopF::Append,
                ("w", Workload::RwRegister) => MopF::Write,
                ("r", _) => MopF::Read,
                _ => {
                    return Err(bad(format!(
                        "micro-op {i}: `{f}` is not a {} micro-op",
                        match workload {
                            Workload::ListAppend => "list-append (append, r)",
                            Workload::RwRegister => "rw-register (w, r)",
                        }
                    )));
                }
            };
            let key = p.keys.intern(&parts[1]);
            let v = &parts[2];
            let mop = match (f, workload) {
                (MopF::Read, Workload::ListAppend) => match v {
                    // A completed read of nil: the key does not exist yet,
                    // i.e. the empty list (as Elle). Unfinished: unknown.
                    serde_json::Value::Null if state == TxnState::Ok => Mop {
                        f,
                        key,
                        val: 0,
                        list: (0, 0),
                    },
                    serde_json::Value::Null => Mop {
                        f,
                        key,
                        val: NIL,
                        list: (0, 0),
                    },
                    serde_json::Value::Array(xs) => {
                        let s = p.pool.len() as u32;
                        for x in xs {
                            let id = p.vals.intern(x);
                            p.pool.push(id);
                        }
                        Mop {
                            f,
                            key,
                            val: 0,
                            list: (s, xs.len() as u32),
                        }
                    }
                    other => {
                        return Err(bad(format!(
                            "micro-op {i}: a list-append read must be a list or nil, got {other}"
                        )));
                    }
                },
                (MopF::Read, _) if v.is_null() => Mop {
                    f,
                    key,
                    val: NIL,
                    list: (0, 0),
                },
                _ if v.is_null() => {
                    return Err(bad(format!("micro-op {i}: a write of nil")));
                }
                _ => Mop {
                    f,
                    key,
                    val: p.vals.intern(v),
                    list: (0, 0),
                },
            };
            p.mops.push(mop);
        }
        p.txns.push(Txn {
            process,
            state,
            invoke,
            complete,
            value_at,
            mops: (start, p.mops.len() as u32 - start),
        });
    }
    Ok(p)
}

/// Anomalies found so far, by type.
pub type Found = BTreeMap<String, Vec<Explanation>>;

pub(crate) fn add(found: &mut Found, kind: &str, e: Explanation) {
    found.entry(kind.to_string()).or_default().push(e);
}

/// Workload-specific analysis kept for explaining edges.
pub enum Analysis {
    ListAppend(list_append::Analysis),
    RwRegister(rw_register::Analysis),
}

/// Checks a transactional history against `opts.consistency_models`.
pub fn check(history: &History, opts: &TxnOptions) -> Result<TxnResult, TxnError> {
    // An unknown model is reported before any complaint about the history.
    consistency::validate_models(&opts.consistency_models)?;
    let t0 = Instant::now();
    let p = prepare(history, opts.workload)?;
    check_prepared(&p, opts, ms(t0))
}

/// Checks an already prepared history (from [`prepare`] or the JSONL fast
/// path); `prepare_ms` is reported as the preparation time.
pub fn check_prepared(
    p: &Prepared,
    opts: &TxnOptions,
    prepare_ms: f64,
) -> Result<TxnResult, TxnError> {
    // The total budget counts from here: preparing (parsing) is not search.
    let deadline = opts.total_limit.map(|d| Instant::now() + d);
    let models = consistency::validate_models(&opts.consistency_models)?;
    let mut prohibited = consistency::anomalies_prohibited_by(&models);
    prohibited.extend(
        consistency::all_anomalies_implying(opts.anomalies.iter().map(String::as_str))
            .into_iter()
            .map(String::from),
    );
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

    let t1 = Instant::now();
    let mut found = Found::new();
    let mut buf = graph::EdgeBuf::default();
    let analysis = match opts.workload {
        Workload::ListAppend => Analysis::ListAppend(list_append::analyze(p, &mut buf, &mut found)),
        Workload::RwRegister => {
            Analysis::RwRegister(rw_register::analyze(p, opts, &mut buf, &mut found))
        }
    };
    stats.analyze_ms = ms(t1);

    let t2 = Instant::now();
    let wants = |suffix: &str| prohibited.iter().any(|a| a.ends_with(suffix));
    if wants("-process") || wants("-realtime") {
        graph::process_edges(p, &mut buf);
    }
    if wants("-realtime") {
        graph::realtime_edges(p, &mut buf);
    }
    let g = graph::Graph::build(p.txns.len(), buf);
    stats.edges = g.edge_count();
    let sccs = g.sccs();
    stats.sccs = sccs.len();
    stats.largest_scc = sccs.iter().map(Vec::len).max().unwrap_or(0);
    stats.graph_ms = ms(t2);

    let t3 = Instant::now();
    if g.edge_count() == 0 {
        add(
            &mut found,
            "empty-transaction-graph",
            Explanation::EmptyGraph,
        );
    }
    cycle::search(
        p,
        &analysis,
        &g,
        &sccs,
        &prohibited,
        cycle::Budget {
            per_search: opts.time_limit,
            total: deadline,
        },
        &mut found,
    );
    stats.cycle_ms = ms(t3);

    Ok(result(found, &prohibited, stats))
}

const UNKNOWN_TYPES: &[&str] = &["cycle-search-timeout", "empty-transaction-graph"];

fn result(mut found: Found, prohibited: &BTreeSet<String>, stats: TxnStats) -> TxnResult {
    // Report what the requested models care about, plus reasons for unknown.
    found.retain(|k, _| prohibited.contains(k) || UNKNOWN_TYPES.contains(&k.as_str()));
    let anomaly_types: Vec<String> = found.keys().cloned().collect();
    let verdict = if anomaly_types.iter().any(|a| prohibited.contains(a)) {
        Verdict::Invalid
    } else if anomaly_types.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Unknown
    };
    let real: Vec<&str> = anomaly_types
        .iter()
        .map(String::as_str)
        .filter(|a| !UNKNOWN_TYPES.contains(a))
        .collect();
    let b = consistency::boundary(&real);
    let anomaly_counts = found.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    for v in found.values_mut() {
        v.truncate(MAX_EXPLANATIONS);
    }
    TxnResult {
        verdict,
        anomaly_types,
        not: b.not.into_iter().collect(),
        also_not: b.also_not.into_iter().collect(),
        anomalies: found,
        anomaly_counts,
        stats,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
