//! The prepared form of a transaction history: interned keys and values,
//! flat micro-op arrays, and where each transaction came from — built
//! once by [`prepare`], read by every analysis.

use super::*;

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
    /// A JSON Lines file read in chunks; quoted lines are read again from it
    /// (kept open: a long cycle quotes hundreds of thousands of lines).
    JsonlFile {
        file: std::fs::File,
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
            Origin::JsonlFile { file, events } => {
                let (off, line) = events[pos];
                let bytes = read_line_at(file, off).unwrap_or_default();
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

/// The line of `file` starting at byte `off`, without its `\n`.
pub(crate) fn read_line_at(file: &std::fs::File, off: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut out = Vec::new();
    let mut piece = [0u8; 4096];
    loop {
        let n = file.read_at(&mut piece, off + out.len() as u64).ok()?;
        if n == 0 {
            return Some(out);
        }
        if let Some(i) = piece[..n].iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&piece[..i]);
            return Some(out);
        }
        out.extend_from_slice(&piece[..n]);
    }
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
        let at = tx.complete.unwrap_or(tx.invoke);
        // Each distinct event is fetched once: for the JSONL origins every
        // fetch reads and parses a line.
        let ev = self.origin.event(at);
        let inv = (tx.invoke != at).then(|| self.origin.event(tx.invoke));
        let value = if tx.value_at == at {
            ev.value.clone()
        } else if tx.value_at == tx.invoke
            && let Some(inv) = &inv
        {
            inv.value.clone()
        } else {
            self.origin.event(tx.value_at).value.clone()
        };
        TxnRef {
            op: t as usize,
            index: ev.index.get(),
            line: ev.line,
            process: inv.as_ref().unwrap_or(&ev).process.to_value(),
            outcome: match tx.state {
                TxnState::Ok => Outcome::Ok,
                TxnState::Fail => Outcome::Fail,
                TxnState::Info => Outcome::Info,
            },
            value,
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
