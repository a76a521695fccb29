//! Fast path for transactional JSON Lines histories: bytes straight into the
//! transactional checker's prepared form ([`crate::txn::Prepared`]), with no
//! [`crate::history::Event`] or `serde_json::Value` per event.
//!
//! The generic path (parse every line into a `Value`, pair, then intern)
//! spends most of its time and memory on values it throws away: a
//! million-transaction list-append history is 2 M events and several GB of
//! `Value`s. Here each line is scanned once; micro-ops are kept as integers
//! and interned afterwards in exactly the order [`crate::txn::prepare`]
//! interns them, so ids, edges and explanations are the same.
//!
//! Only what the fast path can represent exactly is accepted: ASCII lines
//! holding one JSON object, every client operation a `txn` whose
//! micro-ops are `["append"|"r"|"w", int, int|null|[int…]]`, integers
//! within `i64`. Anything else (other operations, non-integer keys or
//! values, escapes in names, malformed lines, pairing errors, …) returns
//! `None`, and the caller takes the generic path, which accepts or rejects
//! the file with its usual messages. Explanations re-parse the few lines
//! they quote with [`super::jsonl::parse_line`].

use crate::txn::{Interner, Mop, MopF, NIL, Origin, Prepared, Txn, TxnState, Workload};

/// Why the fast path gave up; the generic path decides instead.
struct Bail;

type R<T> = Result<T, Bail>;

/// A micro-op as read, before interning.
#[derive(Clone, Copy)]
struct RawMop {
    f: MopF,
    kind: RawKind,
    key: i64,
    /// The integer value, or the start of the list in the raw pool.
    v: i64,
    len: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RawKind {
    Null,
    Int,
    List,
}

/// A transaction's value: a range of raw micro-ops, or `null`.
#[derive(Clone, Copy)]
struct RawValue {
    start: u32,
    len: u32,
    null: bool,
}

const NULL_VALUE: RawValue = RawValue {
    start: 0,
    len: 0,
    null: true,
};

/// One paired operation.
struct RawOp {
    invoke: u32,
    complete: Option<u32>,
    state: TxnState,
    process: u32,
    value: RawValue,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Proc {
    Client(u64),
    Named(Vec<u8>),
    Nemesis,
}

/// Prepares a JSON Lines transactional history (`text` without a byte order
/// mark) for `workload`, or for the workload its micro-ops imply when
/// `None` (as `faultline check` infers it: list-append if any transaction
/// appends, else rw-register). `None` when the fast path cannot represent
/// the history exactly; the caller then takes the generic path.
pub fn prepare(text: &[u8], workload: Option<Workload>) -> Option<(Prepared<'_>, Workload)> {
    if !text.is_ascii() {
        return None;
    }
    let mut s = Scan::new(text);
    s.run().ok()?;
    // As `faultline check` infers the model from the operations' values.
    let used = s
        .ops
        .iter()
        .filter(|o| !o.value.null)
        .flat_map(|o| &s.mops[o.value.start as usize..(o.value.start + o.value.len) as usize]);
    let (mut any_append, mut any_mop) = (false, false);
    for m in used {
        any_mop = true;
        any_append |= m.f == MopF::Append;
    }
    let inferred = if any_append {
        Workload::ListAppend
    } else if any_mop {
        Workload::RwRegister
    } else {
        // No micro-ops at all: the generic path names the model.
        return None;
    };
    let workload = workload.unwrap_or(inferred);
    let p = s.finish(workload).ok()?;
    Some((p, workload))
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line: u32,
    events: Vec<(u64, u32)>,
    ops: Vec<RawOp>,
    /// Per process id: its open operation's index in `ops`, or `u32::MAX`.
    open: Vec<u32>,
    client_ids: crate::txn::FxMap<u64, u32>,
    named_ids: std::collections::HashMap<Vec<u8>, u32>,
    mops: Vec<RawMop>,
    pool: Vec<i64>,
}

impl<'a> Scan<'a> {
    fn new(b: &'a [u8]) -> Scan<'a> {
        Scan {
            b,
            i: 0,
            line: 0,
            events: Vec::with_capacity(b.len() / 128),
            ops: Vec::with_capacity(b.len() / 256),
            open: Vec::new(),
            client_ids: Default::default(),
            named_ids: Default::default(),
            mops: Vec::with_capacity(b.len() / 64),
            pool: Vec::new(),
        }
    }

    #[inline]
    fn peek(&self) -> u8 {
        self.b.get(self.i).copied().unwrap_or(0)
    }

    /// Skips JSON whitespace within a line.
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\t' || c == b'\r' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> R<()> {
        self.ws();
        if self.peek() == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// A string without escapes or control characters; its bytes.
    #[inline]
    fn simple_str(&mut self) -> R<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            if c == b'"' {
                self.i += 1;
                return Ok(&self.b[start..self.i - 1]);
            }
            if c == b'\\' || c < 0x20 {
                return Err(Bail);
            }
            self.i += 1;
        }
        Err(Bail)
    }

    fn lit(&mut self, word: &[u8]) -> R<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// A JSON integer that fits `i64` (no fraction, exponent, leading zero).
    #[inline]
    fn int(&mut self) -> R<i64> {
        self.ws();
        let neg = self.peek() == b'-';
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            let d = (c - b'0') as i64;
            v = v
                .checked_mul(10)
                .and_then(|v| {
                    if neg {
                        v.checked_sub(d)
                    } else {
                        v.checked_add(d)
                    }
                })
                .ok_or(Bail)?;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return Err(Bail);
        }
        if matches!(self.peek(), b'.' | b'e' | b'E') {
            return Err(Bail);
        }
        Ok(v)
    }

    /// A non-negative integer or `null`, as `index` and `time` must be.
    fn uint_or_null(&mut self) -> R<()> {
        self.ws();
        if self.peek() == b'n' {
            return self.lit(b"null");
        }
        if self.peek() == b'-' {
            return Err(Bail);
        }
        self.int().map(drop)
    }

    /// Skips any JSON value, checked by serde_json (rare fields only).
    fn skip_value(&mut self) -> R<()> {
        self.ws();
        let start = self.i;
        let mut depth = 0usize;
        loop {
            let c = self.peek();
            match c {
                0 | b'\n' => return Err(Bail),
                b'"' => {
                    self.i += 1;
                    loop {
                        match self.peek() {
                            0 | b'\n' => return Err(Bail),
                            b'\\' => self.i += 2,
                            b'"' => {
                                self.i += 1;
                                break;
                            }
                            _ => self.i += 1,
                        }
                    }
                    if self.i > self.b.len() {
                        return Err(Bail);
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    self.i += 1;
                }
                b']' | b'}' if depth > 0 => {
                    depth -= 1;
                    self.i += 1;
                }
                b',' | b']' | b'}' if depth == 0 => break,
                _ => self.i += 1,
            }
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.b[start..self.i])
            .map(drop)
            .map_err(|_| Bail)
    }

    fn run(&mut self) -> R<()> {
        while self.i < self.b.len() {
            self.line += 1;
            self.ws();
            match self.peek() {
                b'\n' => {
                    self.i += 1;
                    continue;
                }
                0 if self.i >= self.b.len() => break,
                _ => {}
            }
            let start = self.i;
            self.event(start)?;
            self.ws();
            match self.peek() {
                b'\n' => self.i += 1,
                0 if self.i >= self.b.len() => {}
                _ => return Err(Bail),
            }
        }
        Ok(())
    }

    /// One event line: `{...}`.
    fn event(&mut self, start: usize) -> R<()> {
        self.eat(b'{')?;
        let mut seen = 0u16;
        let mut kind = None;
        let mut proc = None;
        let mut is_txn = false;
        let mut value = NULL_VALUE;
        // A value that is not a list of micro-ops (fine for the nemesis).
        let mut other_value = false;
        let mops_mark = (self.mops.len(), self.pool.len());
        self.ws();
        if self.peek() == b'}' {
            return Err(Bail);
        }
        loop {
            let name = self.simple_str()?;
            self.eat(b':')?;
            let bit = match name {
                b"index" => 1,
                b"time" => 2,
                b"process" => 4,
                b"type" => 8,
                b"f" => 16,
                b"value" => 32,
                b"key" => 64,
                b"node" => 128,
                b"error" => 256,
                _ => 0,
            };
            if bit & seen != 0 {
                // serde rejects duplicate fields.
                return Err(Bail);
            }
            seen |= bit;
            match bit {
                1 | 2 => self.uint_or_null()?,
                4 => {
                    self.ws();
                    proc = Some(if self.peek() == b'"' {
                        let s = self.simple_str()?;
                        if s == b"nemesis" {
                            Proc::Nemesis
                        } else {
                            Proc::Named(s.to_vec())
                        }
                    } else {
                        if self.peek() == b'-' {
                            return Err(Bail);
                        }
                        Proc::Client(self.int()? as u64)
                    });
                }
                8 => {
                    kind = Some(match self.simple_str()? {
                        b"invoke" => Kind::Invoke,
                        b"ok" => Kind::Ok,
                        b"fail" => Kind::Fail,
                        b"info" => Kind::Info,
                        _ => return Err(Bail),
                    });
                }
                16 => is_txn = self.simple_str()? == b"txn",
                32 => {
                    self.ws();
                    if self.peek() == b'n' {
                        self.lit(b"null")?;
                    } else {
                        let at = self.i;
                        match self.txn_value() {
                            Ok(v) => value = v,
                            Err(Bail) => {
                                self.i = at;
                                self.drop_mops(mops_mark);
                                self.skip_value()?;
                                other_value = true;
                            }
                        }
                    }
                }
                128 => {
                    self.ws();
                    if self.peek() == b'n' {
                        self.lit(b"null")?;
                    } else {
                        self.simple_str()?;
                    }
                }
                _ => self.skip_value()?,
            }
            self.ws();
            match self.peek() {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    break;
                }
                _ => return Err(Bail),
            }
        }
        // type, process and f are required.
        if seen & (4 | 8 | 16) != (4 | 8 | 16) {
            return Err(Bail);
        }
        let (Some(kind), Some(proc)) = (kind, proc) else {
            return Err(Bail);
        };
        let pos = self.events.len() as u32;
        self.events.push((start as u64, self.line));
        if proc == Proc::Nemesis {
            // Any value is fine for the nemesis (txn_value bailed on
            // non-transaction values, which is merely conservative).
            self.drop_mops(mops_mark);
            return Ok(());
        }
        if !is_txn || other_value {
            return Err(Bail);
        }
        let pid = self.process_id(proc);
        let slot = self.open[pid as usize];
        if kind == Kind::Invoke {
            if slot != u32::MAX {
                return Err(Bail);
            }
            self.open[pid as usize] = self.ops.len() as u32;
            self.ops.push(RawOp {
                invoke: pos,
                complete: None,
                state: TxnState::Info,
                process: pid,
                value,
            });
            return Ok(());
        }
        if slot == u32::MAX {
            if kind == Kind::Info {
                self.drop_mops(mops_mark);
                return Ok(());
            }
            return Err(Bail);
        }
        self.open[pid as usize] = u32::MAX;
        let op = &mut self.ops[slot as usize];
        match kind {
            Kind::Ok => {
                op.state = TxnState::Ok;
                op.complete = Some(pos);
                op.value = value;
            }
            Kind::Fail => {
                op.state = TxnState::Fail;
                op.complete = Some(pos);
                self.drop_mops(mops_mark);
            }
            _ => self.drop_mops(mops_mark),
        }
        Ok(())
    }

    /// Forgets micro-ops parsed for a value no transaction uses.
    fn drop_mops(&mut self, (m, p): (usize, usize)) {
        self.mops.truncate(m);
        self.pool.truncate(p);
    }

    /// Process ids in order of first appearance, as `txn::prepare`.
    fn process_id(&mut self, p: Proc) -> u32 {
        let next = self.open.len() as u32;
        let id = match p {
            Proc::Client(n) => *self.client_ids.entry(n).or_insert(next),
            Proc::Named(s) => *self.named_ids.entry(s).or_insert(next),
            Proc::Nemesis => unreachable!("nemesis events are not paired"),
        };
        if id == next {
            self.open.push(u32::MAX);
        }
        id
    }

    /// `[[f, k, v], …]`.
    fn txn_value(&mut self) -> R<RawValue> {
        self.eat(b'[')?;
        let start = self.mops.len() as u32;
        self.ws();
        if self.peek() == b']' {
            self.i += 1;
            return Ok(RawValue {
                start,
                len: 0,
                null: false,
            });
        }
        loop {
            self.eat(b'[')?;
            let f = match self.simple_str()? {
                b"append" => MopF::Append,
                b"r" => MopF::Read,
                b"w" => MopF::Write,
                _ => return Err(Bail),
            };
            self.eat(b',')?;
            let key = self.int()?;
            self.eat(b',')?;
            self.ws();
            let (kind, v, len) = match self.peek() {
                b'n' => {
                    self.lit(b"null")?;
                    (RawKind::Null, 0, 0)
                }
                b'[' => {
                    self.i += 1;
                    let s = self.pool.len();
                    self.ws();
                    if self.peek() == b']' {
                        self.i += 1;
                    } else {
                        loop {
                            let x = self.int()?;
                            self.pool.push(x);
                            self.ws();
                            match self.peek() {
                                b',' => self.i += 1,
                                b']' => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return Err(Bail),
                            }
                        }
                    }
                    let len = u32::try_from(self.pool.len() - s).map_err(|_| Bail)?;
                    (RawKind::List, s as i64, len)
                }
                _ => (RawKind::Int, self.int()?, 0),
            };
            self.eat(b']')?;
            self.mops.push(RawMop {
                f,
                kind,
                key,
                v,
                len,
            });
            self.ws();
            match self.peek() {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    break;
                }
                _ => return Err(Bail),
            }
        }
        let len = self.mops.len() as u32 - start;
        Ok(RawValue {
            start,
            len,
            null: false,
        })
    }

    /// Interns the transactions' micro-ops in `txn::prepare`'s order.
    fn finish(self, workload: Workload) -> R<Prepared<'a>> {
        let Scan {
            b,
            events,
            ops,
            open,
            mops: raw,
            pool: raw_pool,
            ..
        } = self;
        if ops.is_empty() {
            return Err(Bail);
        }
        let mut keys = Interner::default();
        let mut vals = Interner::default();
        let mut txns = Vec::with_capacity(ops.len());
        let mut mops = Vec::with_capacity(raw.len());
        let mut pool = Vec::with_capacity(raw_pool.len());
        for op in ops {
            if op.value.null {
                continue;
            }
            let value_at = if op.state == TxnState::Ok {
                op.complete.ok_or(Bail)?
            } else {
                op.invoke
            };
            let complete = match op.state {
                TxnState::Info => None,
                _ => op.complete,
            };
            let start = mops.len() as u32;
            let ms = &raw[op.value.start as usize..(op.value.start + op.value.len) as usize];
            for m in ms {
                let key = keys.intern_int(m.key);
                let mop = match (m.f, workload, m.kind) {
                    (MopF::Read, Workload::ListAppend, RawKind::Null) => Mop {
                        f: MopF::Read,
                        key,
                        val: if op.state == TxnState::Ok { 0 } else { NIL },
                        list: (0, 0),
                    },
                    (MopF::Read, Workload::ListAppend, RawKind::List) => {
                        let s = pool.len() as u32;
                        for &x in &raw_pool[m.v as usize..m.v as usize + m.len as usize] {
                            pool.push(vals.intern_int(x));
                        }
                        Mop {
                            f: MopF::Read,
                            key,
                            val: 0,
                            list: (s, m.len),
                        }
                    }
                    (MopF::Read, Workload::RwRegister, RawKind::Null) => Mop {
                        f: MopF::Read,
                        key,
                        val: NIL,
                        list: (0, 0),
                    },
                    (MopF::Read, Workload::RwRegister, RawKind::Int)
                    | (MopF::Append, Workload::ListAppend, RawKind::Int)
                    | (MopF::Write, Workload::RwRegister, RawKind::Int) => Mop {
                        f: m.f,
                        key,
                        val: vals.intern_int(m.v),
                        list: (0, 0),
                    },
                    // Errors, or values interned as JSON text: generic path.
                    _ => return Err(Bail),
                };
                mops.push(mop);
            }
            txns.push(Txn {
                process: op.process,
                state: op.state,
                invoke: op.invoke as usize,
                complete: complete.map(|c| c as usize),
                value_at: value_at as usize,
                mops: (start, mops.len() as u32 - start),
            });
        }
        Ok(Prepared {
            origin: Origin::Jsonl { text: b, events },
            txns,
            mops,
            pool,
            keys,
            vals,
            process_count: open.len(),
        })
    }
}
