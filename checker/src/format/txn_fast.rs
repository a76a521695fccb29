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
//!
//! Files are read in chunks, never whole. Only completions' micro-ops are
//! kept; an invocation's are re-read from its line at the end, for the few
//! transactions that did not complete `ok`.

use crate::txn::{Interner, Mop, MopF, NIL, Origin, Prepared, Txn, TxnState, Workload};
use std::io::Read;
use std::path::Path;

/// Why the fast path gave up; the generic path decides instead.
struct Bail;

type R<T> = Result<T, Bail>;

/// A list read's `val` while scanning (`NIL`: a `null` read).
const LIST: u32 = u32::MAX - 1;

/// A transaction's value: a range of micro-ops, or `null`.
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
    /// The ok completion's micro-ops; for other outcomes only whether the
    /// invocation's value was `null` (its micro-ops are re-read later).
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

/// Prepares a JSON Lines transactional history held in memory (`text`
/// without a byte order mark) for `workload`, or for the workload its
/// micro-ops imply when `None` (as `faultline check` infers it: list-append
/// if any transaction appends, else rw-register). `None` when the fast path
/// cannot represent the history exactly; the caller then takes the generic
/// path.
pub fn prepare(text: &[u8], workload: Option<Workload>) -> Option<(Prepared<'_>, Workload)> {
    let mut s = Scan::new(text.len());
    s.chunk(text, 0).ok()?;
    let (p, w) = s
        .finish(workload, |off| Some(line_at(text, off).to_vec()))
        .ok()?;
    Some((
        Prepared {
            origin: Origin::Jsonl { text, events: p.1 },
            ..p.0
        },
        w,
    ))
}

/// As [`prepare`], reading the file at `path` in chunks (a leading byte
/// order mark is skipped). `None` also when the file cannot be read.
pub fn prepare_file(
    path: &Path,
    workload: Option<Workload>,
) -> Option<(Prepared<'static>, Workload)> {
    prepare_file_chunked(path, workload, 4 << 20)
}

/// What [`prepare_file_by`] made of a file (one per file: boxing the
/// large variant would buy nothing).
#[allow(clippy::large_enum_variant)]
pub enum FileOutcome {
    Prepared(Prepared<'static>, Workload),
    /// The fast path cannot represent the file: take the generic path.
    Declined,
    /// The deadline passed before the file was read.
    TimedOut,
}

/// As [`prepare_file`], giving up at `deadline` (checked after each 1 MB
/// chunk, a few milliseconds of work), so a time limit covers reading a
/// huge file too.
pub fn prepare_file_by(
    path: &Path,
    workload: Option<Workload>,
    deadline: Option<std::time::Instant>,
) -> FileOutcome {
    match prepare_file_inner(path, workload, 1 << 20, deadline) {
        Ok((p, w)) => FileOutcome::Prepared(p, w),
        Err(Stop::Bail) => FileOutcome::Declined,
        Err(Stop::TimedOut) => FileOutcome::TimedOut,
    }
}

/// [`prepare_file`] reading `chunk` bytes at a time (tests use tiny ones).
#[doc(hidden)]
pub fn prepare_file_chunked(
    path: &Path,
    workload: Option<Workload>,
    chunk: usize,
) -> Option<(Prepared<'static>, Workload)> {
    prepare_file_inner(path, workload, chunk, None).ok()
}

/// Why [`prepare_file_inner`] stopped.
enum Stop {
    /// The fast path cannot represent the file (or cannot read it).
    Bail,
    TimedOut,
}

impl From<Bail> for Stop {
    fn from(_: Bail) -> Stop {
        Stop::Bail
    }
}

fn prepare_file_inner(
    path: &Path,
    workload: Option<Workload>,
    chunk: usize,
    deadline: Option<std::time::Instant>,
) -> Result<(Prepared<'static>, Workload), Stop> {
    use std::os::unix::fs::FileExt;
    let mut f = std::fs::File::open(path).map_err(|_| Stop::Bail)?;
    let len = f.metadata().map_err(|_| Stop::Bail)?.len() as usize;
    let mut s = Scan::new(len);
    let mut buf = vec![0u8; chunk.max(16)];
    // Bytes of an unfinished line carried to the front of `buf`.
    let mut carry = 0usize;
    // File offset of `buf[0]`; a byte order mark is skipped.
    let mut base = 0u64;
    let mut bom = [0u8; 3];
    if f.read_at(&mut bom, 0).map_err(|_| Stop::Bail)? == 3 && bom == *b"\xEF\xBB\xBF" {
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(3)).map_err(|_| Stop::Bail)?;
        base = 3;
    }
    loop {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(Stop::TimedOut);
        }
        let n = match f.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Stop::Bail),
        };
        let filled = carry + n;
        let end = if n == 0 {
            filled
        } else {
            match buf[..filled].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if filled == buf.len() => {
                    // A line longer than the buffer: grow it.
                    buf.resize(buf.len() * 2, 0);
                    carry = filled;
                    continue;
                }
                None => 0,
            }
        };
        s.chunk(&buf[..end], base)?;
        if n == 0 {
            break;
        }
        buf.copy_within(end..filled, 0);
        carry = filled - end;
        base += end as u64;
    }
    if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
        return Err(Stop::TimedOut);
    }
    let ((p, events), w) = s.finish(workload, |off| crate::txn::read_line_at(&f, off))?;
    Ok((
        Prepared {
            origin: Origin::JsonlFile { file: f, events },
            ..p
        },
        w,
    ))
}

/// The line starting at byte `off` of `text`, without its `\n`.
fn line_at(text: &[u8], off: u64) -> &[u8] {
    let rest = text.get(off as usize..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    &rest[..end]
}

/// A cursor over one chunk of whole lines.
struct Cur<'b> {
    b: &'b [u8],
    i: usize,
}

impl<'b> Cur<'b> {
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
    fn simple_str(&mut self) -> R<&'b [u8]> {
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
}

/// Scanning state: pairs, processes, micro-ops with provisional ids.
struct Scan {
    line: u32,
    events: Vec<(u64, u32)>,
    ops: Vec<RawOp>,
    /// Per process id: its open operation's index in `ops`, or `u32::MAX`.
    open: Vec<u32>,
    client_ids: crate::txn::FxMap<u64, u32>,
    named_ids: std::collections::HashMap<Vec<u8>, u32>,
    mops: Vec<Mop>,
    pool: Vec<u32>,
    /// Provisional ids, in file order; [`Scan::finish`] renumbers them in
    /// `txn::prepare`'s order.
    keys: Interner,
    vals: Interner,
}

impl Scan {
    fn new(len: usize) -> Scan {
        Scan {
            line: 0,
            events: Vec::with_capacity(len / 128),
            ops: Vec::with_capacity(len / 256),
            open: Vec::new(),
            client_ids: Default::default(),
            named_ids: Default::default(),
            mops: Vec::with_capacity(len / 128),
            pool: Vec::with_capacity(len / 16),
            keys: Interner::default(),
            vals: Interner::default(),
        }
    }

    /// Whole lines (the last may lack its `\n` only at the end of input);
    /// `base` is the file offset of `b[0]`.
    fn chunk(&mut self, b: &[u8], base: u64) -> R<()> {
        if !b.is_ascii() {
            return Err(Bail);
        }
        let mut c = Cur { b, i: 0 };
        while c.i < b.len() {
            self.line += 1;
            c.ws();
            match c.peek() {
                b'\n' => {
                    c.i += 1;
                    continue;
                }
                0 if c.i >= b.len() => break,
                _ => {}
            }
            let start = base + c.i as u64;
            self.event(&mut c, start, true)?;
            c.ws();
            match c.peek() {
                b'\n' => c.i += 1,
                0 if c.i >= b.len() => {}
                _ => return Err(Bail),
            }
        }
        Ok(())
    }

    /// One event line: `{...}`.
    fn event(&mut self, c: &mut Cur, start: u64, pair: bool) -> R<()> {
        c.eat(b'{')?;
        let mut seen = 0u16;
        let mut kind = None;
        let mut proc = None;
        let mut is_txn = false;
        let mut value = NULL_VALUE;
        // A value that is not a list of micro-ops (fine for the nemesis).
        let mut other_value = false;
        let mops_mark = (self.mops.len(), self.pool.len());
        c.ws();
        if c.peek() == b'}' {
            return Err(Bail);
        }
        loop {
            let name = c.simple_str()?;
            c.eat(b':')?;
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
                1 | 2 => c.uint_or_null()?,
                4 => {
                    c.ws();
                    proc = Some(if c.peek() == b'"' {
                        let s = c.simple_str()?;
                        if s == b"nemesis" {
                            Proc::Nemesis
                        } else {
                            Proc::Named(s.to_vec())
                        }
                    } else {
                        if c.peek() == b'-' {
                            return Err(Bail);
                        }
                        Proc::Client(c.int()? as u64)
                    });
                }
                8 => {
                    kind = Some(match c.simple_str()? {
                        b"invoke" => Kind::Invoke,
                        b"ok" => Kind::Ok,
                        b"fail" => Kind::Fail,
                        b"info" => Kind::Info,
                        _ => return Err(Bail),
                    });
                }
                16 => is_txn = c.simple_str()? == b"txn",
                32 => {
                    c.ws();
                    if c.peek() == b'n' {
                        c.lit(b"null")?;
                    } else {
                        let at = c.i;
                        match self.txn_value(c) {
                            Ok(v) => value = v,
                            Err(Bail) => {
                                c.i = at;
                                self.drop_mops(mops_mark);
                                c.skip_value()?;
                                other_value = true;
                            }
                        }
                    }
                }
                128 => {
                    c.ws();
                    if c.peek() == b'n' {
                        c.lit(b"null")?;
                    } else {
                        c.simple_str()?;
                    }
                }
                _ => c.skip_value()?,
            }
            c.ws();
            match c.peek() {
                b',' => c.i += 1,
                b'}' => {
                    c.i += 1;
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
        if !pair {
            // Re-reading an invocation for its micro-ops: they are kept.
            return if proc != Proc::Nemesis && is_txn && !other_value && !value.null {
                Ok(())
            } else {
                Err(Bail)
            };
        }
        let pos = self.events.len() as u32;
        self.events.push((start, self.line));
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
            // Only whether the value is null is kept: most transactions
            // complete ok, and their completion's micro-ops are the ones
            // checked. The others' are re-read in `finish`.
            self.drop_mops(mops_mark);
            self.ops.push(RawOp {
                invoke: pos,
                complete: None,
                state: TxnState::Info,
                process: pid,
                value: RawValue {
                    start: 0,
                    len: 0,
                    null: value.null,
                },
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
                // An ok completion's value is the transaction's.
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
    fn txn_value(&mut self, c: &mut Cur) -> R<RawValue> {
        c.eat(b'[')?;
        let start = self.mops.len() as u32;
        c.ws();
        if c.peek() == b']' {
            c.i += 1;
            return Ok(RawValue {
                start,
                len: 0,
                null: false,
            });
        }
        loop {
            c.eat(b'[')?;
            let f = match c.simple_str()? {
                b"append" => MopF::Append,
                b"r" => MopF::Read,
                b"w" => MopF::Write,
                _ => return Err(Bail),
            };
            c.eat(b',')?;
            let key = c.int()?;
            c.eat(b',')?;
            c.ws();
            let key = self.keys.intern_int(key);
            let (val, list) = match c.peek() {
                b'n' => {
                    c.lit(b"null")?;
                    (NIL, (0, 0))
                }
                b'[' => {
                    c.i += 1;
                    let s = self.pool.len();
                    c.ws();
                    if c.peek() == b']' {
                        c.i += 1;
                    } else {
                        loop {
                            let x = c.int()?;
                            self.pool.push(self.vals.intern_int(x));
                            c.ws();
                            match c.peek() {
                                b',' => c.i += 1,
                                b']' => {
                                    c.i += 1;
                                    break;
                                }
                                _ => return Err(Bail),
                            }
                        }
                    }
                    let len = u32::try_from(self.pool.len() - s).map_err(|_| Bail)?;
                    (LIST, (s as u32, len))
                }
                _ => (self.vals.intern_int(c.int()?), (0, 0)),
            };
            c.eat(b']')?;
            self.mops.push(Mop { f, key, val, list });
            c.ws();
            match c.peek() {
                b',' => c.i += 1,
                b']' => {
                    c.i += 1;
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

    /// Re-reads the invocations of transactions that did not complete ok,
    /// infers the workload, and renumbers keys and values in the order
    /// `txn::prepare` interns them, so both paths give the same ids.
    #[allow(clippy::type_complexity)]
    fn finish(
        mut self,
        workload: Option<Workload>,
        mut line: impl FnMut(u64) -> Option<Vec<u8>>,
    ) -> R<((Prepared<'static>, Vec<(u64, u32)>), Workload)> {
        let ops = std::mem::take(&mut self.ops);
        if ops.is_empty() {
            return Err(Bail);
        }
        // (op, its value's micro-ops) for transactions with a value.
        let mut used: Vec<(usize, u32, u32)> = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            if op.value.null {
                continue;
            }
            if op.state == TxnState::Ok {
                used.push((i, op.value.start, op.value.len));
                continue;
            }
            let (off, _) = self.events[op.invoke as usize];
            let text = line(off).ok_or(Bail)?;
            let mut c = Cur { b: &text, i: 0 };
            let before = self.mops.len() as u32;
            self.event(&mut c, off, false)?;
            used.push((i, before, self.mops.len() as u32 - before));
        }
        let (mut any_append, mut any_mop) = (false, false);
        for &(_, s, l) in &used {
            for m in &self.mops[s as usize..(s + l) as usize] {
                any_mop = true;
                any_append |= m.f == MopF::Append;
            }
        }
        let workload = match workload {
            Some(w) => w,
            None if any_append => Workload::ListAppend,
            None if any_mop => Workload::RwRegister,
            // No micro-ops at all: the generic path names the model.
            None => return Err(Bail),
        };
        let mut keys = Interner::default();
        let mut vals = Interner::default();
        let mut rk = vec![u32::MAX; self.keys.len()];
        let mut rv = vec![u32::MAX; self.vals.len()];
        let remap = |r: &mut [u32], from: &Interner, to: &mut Interner, id: u32| -> u32 {
            let slot = &mut r[id as usize];
            if *slot == u32::MAX {
                let crate::txn::Atom::Int(i) = from.atoms[id as usize] else {
                    unreachable!("the fast path interns integers only")
                };
                *slot = to.intern_int(i);
            }
            *slot
        };
        let mut txns = Vec::with_capacity(used.len());
        for (i, s, l) in used {
            let op = &ops[i];
            for m in &mut self.mops[s as usize..(s + l) as usize] {
                m.key = remap(&mut rk, &self.keys, &mut keys, m.key);
                match (m.f, workload) {
                    (MopF::Read, Workload::ListAppend) => match m.val {
                        LIST => {
                            let (ps, pl) = m.list;
                            for x in &mut self.pool[ps as usize..(ps + pl) as usize] {
                                *x = remap(&mut rv, &self.vals, &mut vals, *x);
                            }
                            m.val = 0;
                        }
                        // A completed read of nil is the empty list; an
                        // unfinished one is unknown (as txn::prepare).
                        NIL if op.state == TxnState::Ok => m.val = 0,
                        NIL => {}
                        _ => return Err(Bail),
                    },
                    (MopF::Read, Workload::RwRegister) => match m.val {
                        LIST => return Err(Bail),
                        NIL => {}
                        v => m.val = remap(&mut rv, &self.vals, &mut vals, v),
                    },
                    (MopF::Append, Workload::ListAppend) | (MopF::Write, Workload::RwRegister) => {
                        if m.val == NIL || m.val == LIST {
                            return Err(Bail);
                        }
                        m.val = remap(&mut rv, &self.vals, &mut vals, m.val);
                    }
                    _ => return Err(Bail),
                }
            }
            let value_at = if op.state == TxnState::Ok {
                op.complete.ok_or(Bail)?
            } else {
                op.invoke
            };
            txns.push(Txn {
                process: op.process,
                state: op.state,
                invoke: op.invoke as usize,
                complete: match op.state {
                    TxnState::Info => None,
                    _ => op.complete.map(|c| c as usize),
                },
                value_at: value_at as usize,
                mops: (s, l),
            });
        }
        let p = Prepared {
            origin: Origin::Jsonl {
                text: &[],
                events: Vec::new(),
            },
            txns,
            mops: self.mops,
            pool: self.pool,
            keys,
            vals,
            process_count: self.open.len(),
        };
        Ok(((p, self.events), workload))
    }
}
