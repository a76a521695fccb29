//! A small streaming EDN reader for Jepsen / Knossos / Elle histories.
//!
//! Our own rather than a crate because we need line numbers in every error
//! and must stream: a top-level `[op op …]` vector is never built; each op map
//! becomes an [`Event`] as soon as its `}` is read.
//!
//! Accepted containers: one top-level vector or list of op maps, or a bare
//! sequence of op maps (Jepsen writes one per line; a map may span lines).
//!
//! EDN → [`Value`]: `nil` → null; keywords and symbols → strings without
//! the `:` (`:jepsen.client/timeout` → `"jepsen.client/timeout"`); vectors,
//! lists and sets → arrays; maps → objects with stringified keys; integers
//! that fit neither `i64` nor `u64` (or carry `N`) → numbers when they fit,
//! else strings of digits; `M` decimals and ratios `1/2` → floats; chars
//! → one-char strings; `#inst "…"`, `#uuid "…"` and any other tagged literal
//! `#tag v` → just `v`.
//!
//! Op map keys used: `:process` (integer → client, `:nemesis` → nemesis,
//! any other keyword or string → named), `:type` (required), `:f`,
//! `:value` (absent → null), `:time`, `:index`, `:key`, `:node`, `:error`;
//! others are ignored. `:process` and `:f` may be absent (Elle's own
//! example histories omit them): the process is then [`ANONYMOUS`] and `f`
//! is empty.

use super::InputError;
use crate::history::{Event, EventType, History, Process, Sym, Value};
use std::io::BufRead;

/// Deeper nesting than this is an error, not a stack overflow.
pub const MAX_DEPTH: usize = 512;

/// The process name given to op maps without `:process`.
pub const ANONYMOUS: &str = "anonymous";

type Res<T> = Result<T, InputError>;

/// Parses a whole EDN history.
pub fn parse<R: BufRead>(r: R) -> Result<History, InputError> {
    let events = events(r).collect::<Result<Vec<_>, _>>()?;
    Ok(History { events })
}

/// Streams the events of an EDN history; stops after the first error.
pub fn events<R: BufRead>(r: R) -> Events<R> {
    Events {
        rd: Reader::new(r),
        open: None,
        failed: false,
    }
}

/// Reads exactly one EDN form from `s` (surrounding blanks and comments
/// allowed), as a [`Value`].
pub fn parse_value(s: &str) -> Result<Value, InputError> {
    let mut rd = Reader::new(s.as_bytes());
    loop {
        rd.skip_ws()?;
        if rd.peek()?.is_none() {
            return Err(rd.err("expected an EDN value, found end of input"));
        }
        if let Some(v) = rd.read_form(0)? {
            rd.skip_ws()?;
            return match rd.peek()? {
                None => Ok(v),
                Some(_) => Err(rd.err("expected end of input after one EDN value")),
            };
        }
    }
}

/// Iterator over the events of an EDN history.
pub struct Events<R> {
    rd: Reader<R>,
    /// The closing byte and opening line of the top-level `[`/`(` we are in.
    open: Option<(u8, usize)>,
    failed: bool,
}

impl<R: BufRead> Iterator for Events<R> {
    type Item = Result<Event, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_event().transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

impl<R: BufRead> Events<R> {
    fn next_event(&mut self) -> Res<Option<Event>> {
        let rd = &mut self.rd;
        loop {
            rd.skip_ws()?;
            let (line, col) = (rd.line, rd.col);
            let Some(b) = rd.peek()? else {
                return match self.open {
                    Some((close, open_line)) => Err(rd.err(format!(
                        "unexpected end of input: the `{}` opened on line {open_line} is not closed",
                        opener(close) as char
                    ))),
                    None => Ok(None),
                };
            };
            match b {
                _ if self.open.map(|(c, _)| c) == Some(b) => {
                    rd.bump(b);
                    self.open = None;
                }
                b'[' | b'(' if self.open.is_none() => {
                    rd.bump(b);
                    self.open = Some((if b == b'[' { b']' } else { b')' }, line));
                }
                b'{' => {
                    rd.bump(b);
                    return rd.read_op(line).map(Some);
                }
                b'#' => {
                    rd.bump(b);
                    match rd.peek()? {
                        Some(b'_') => {
                            rd.bump(b'_');
                            rd.discard()?;
                        }
                        Some(c) if is_token_byte(c) && c != b'#' => {
                            // `#jepsen.history.Op{…}`: the tagged map is the op.
                            rd.token()?;
                            rd.skip_ws()?;
                            if rd.peek()? == Some(b'{') {
                                rd.bump(b'{');
                                return rd.read_op(line).map(Some);
                            }
                            return Err(InputError::at(
                                line,
                                col,
                                "expected an op map `{…}` after the tag",
                            ));
                        }
                        _ => {
                            return Err(InputError::at(
                                line,
                                col,
                                "expected an op map `{…}`, found a `#` form",
                            ));
                        }
                    }
                }
                _ => {
                    let found = match rd.read_form(1)? {
                        Some(v) => describe(&v),
                        None => continue,
                    };
                    return Err(InputError::at(
                        line,
                        col,
                        format!("expected an op map `{{:type …, :f …}}`, found {found}"),
                    ));
                }
            }
        }
    }
}

fn opener(close: u8) -> u8 {
    match close {
        b']' => b'[',
        b')' => b'(',
        _ => b'{',
    }
}

/// A short description of a value for "found …" messages.
fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("`{cut}…`")
    } else {
        format!("`{s}`")
    }
}

/// Delimiters end tokens; everything else (including non-ASCII bytes, which
/// are checked as UTF-8 with the token) is part of one.
fn is_token_byte(b: u8) -> bool {
    !matches!(
        b,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | b'\x0b'
            | b'\x0c'
            | b','
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'"'
            | b';'
            | b'\\'
    )
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' | b',')
}

/// Which op-map field a key names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Process,
    Type,
    F,
    Value,
    Time,
    Index,
    Key,
    Node,
    Error,
    Other,
}

fn field(name: &[u8]) -> Field {
    match name {
        b"process" => Field::Process,
        b"type" => Field::Type,
        b"f" => Field::F,
        b"value" => Field::Value,
        b"time" => Field::Time,
        b"index" => Field::Index,
        b"key" => Field::Key,
        b"node" => Field::Node,
        b"error" => Field::Error,
        _ => Field::Other,
    }
}

/// An open collection (or prefix) while reading nested forms.
enum Frame {
    /// A vector, list or set, closed by `close`.
    Seq {
        close: u8,
        line: usize,
        items: Vec<Value>,
    },
    /// A map; `key` holds a key still waiting for its value.
    Map {
        line: usize,
        map: serde_json::Map<String, Value>,
        key: Option<String>,
    },
    /// `#tag`: the next value is the value.
    Tag { line: usize },
    /// `#_`: the next value is dropped.
    Discard { line: usize },
}

impl Frame {
    fn seq(close: u8, line: usize) -> Frame {
        Frame::Seq {
            close,
            line,
            items: Vec::new(),
        }
    }

    fn map(line: usize) -> Frame {
        Frame::Map {
            line,
            map: serde_json::Map::new(),
            key: None,
        }
    }
}

/// The byte reader: position tracking and EDN forms.
struct Reader<R> {
    r: R,
    /// Line and 1-based byte column of the next byte.
    line: usize,
    col: usize,
    /// Token bytes, reused to avoid an allocation per token.
    scratch: Vec<u8>,
    /// Open collections of `read_form`, kept for reuse.
    stack: Vec<Frame>,
}

impl<R: BufRead> Reader<R> {
    fn new(r: R) -> Reader<R> {
        Reader {
            r,
            line: 1,
            col: 1,
            scratch: Vec::with_capacity(64),
            stack: Vec::new(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> InputError {
        InputError::at(self.line, self.col, msg)
    }

    #[inline]
    fn peek(&mut self) -> Res<Option<u8>> {
        loop {
            match self.r.fill_buf() {
                Ok(buf) => return Ok(buf.first().copied()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(InputError::io(self.line, &e)),
            }
        }
    }

    /// Consumes the byte `b` that `peek` just returned.
    #[inline]
    fn bump(&mut self, b: u8) {
        self.r.consume(1);
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
    }

    #[inline]
    fn next(&mut self) -> Res<Option<u8>> {
        let b = self.peek()?;
        if let Some(b) = b {
            self.bump(b);
        }
        Ok(b)
    }

    fn eof_in(&self, what: &str, line: usize) -> InputError {
        self.err(format!(
            "unexpected end of input in the {what} started on line {line}"
        ))
    }

    /// Skips whitespace, commas and `;` comments.
    fn skip_ws(&mut self) -> Res<()> {
        loop {
            // Scan the buffer directly: blanks are most of a history's bytes.
            let buf = match self.r.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InputError::io(self.line, &e)),
            };
            let mut n = 0;
            for &b in buf {
                if !is_ws(b) {
                    break;
                }
                n += 1;
                if b == b'\n' {
                    self.line += 1;
                    self.col = 1;
                } else {
                    self.col += 1;
                }
            }
            let more = n == buf.len() && n > 0;
            let next = buf.get(n).copied();
            self.r.consume(n);
            if more {
                continue;
            }
            match next {
                Some(b';') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Res<()> {
        let line = self.line;
        self.scratch.clear();
        while let Some(b) = self.peek()? {
            if b == b'\n' {
                break;
            }
            self.bump(b);
            self.scratch.push(b);
        }
        std::str::from_utf8(&self.scratch).map_err(|e| InputError::not_utf8(line, e))?;
        Ok(())
    }

    /// Reads the form after `#_` and drops it.
    fn discard(&mut self) -> Res<()> {
        let line = self.line;
        loop {
            self.skip_ws()?;
            match self.peek()? {
                None => return Err(self.eof_in("`#_` discard", line)),
                Some(b')' | b']' | b'}') => {
                    return Err(self.err("expected a form to discard after `#_`"));
                }
                Some(_) => {
                    if self.read_form(1)?.is_some() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Reads token bytes into `scratch`, checked to be UTF-8.
    fn token(&mut self) -> Res<()> {
        self.scratch.clear();
        self.token_rest()?;
        // Tokens never span lines, so the current line is the token's.
        self.scratch_str(self.line)?;
        Ok(())
    }

    /// Appends token bytes to `scratch` up to the next delimiter.
    fn token_rest(&mut self) -> Res<()> {
        loop {
            let buf = match self.r.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InputError::io(self.line, &e)),
            };
            let n = buf
                .iter()
                .position(|&b| !is_token_byte(b))
                .unwrap_or(buf.len());
            self.scratch.extend_from_slice(&buf[..n]);
            let done = n < buf.len() || n == 0;
            // Tokens hold no newline: only the column moves.
            self.col += n;
            self.r.consume(n);
            if done {
                return Ok(());
            }
        }
    }

    fn scratch_str(&self, line: usize) -> Res<&str> {
        std::str::from_utf8(&self.scratch).map_err(|e| InputError::not_utf8(line, e))
    }

    /// Reads one form starting at the next byte (blanks already skipped).
    /// `None` when the form was `#_ x` (discarded).
    ///
    /// Iterative, with an explicit stack of open collections, so nesting
    /// costs heap, not call stack; `depth` is how deep the caller already is.
    fn read_form(&mut self, depth: usize) -> Res<Option<Value>> {
        // Reuse one stack allocation across forms.
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        let r = self.read_form_in(&mut stack, depth);
        self.stack = stack;
        r
    }

    fn read_form_in(&mut self, stack: &mut Vec<Frame>, depth: usize) -> Res<Option<Value>> {
        loop {
            let v = match self.step(stack, depth)? {
                Some(v) => v,
                None => continue,
            };
            // Hand the finished value to the innermost open frame; tags and
            // discards close as soon as they get theirs.
            loop {
                match stack.last_mut() {
                    None => return Ok(Some(v)),
                    Some(Frame::Seq { items, .. }) => {
                        items.push(v);
                        break;
                    }
                    Some(Frame::Map { map, key, .. }) => {
                        match key.take() {
                            None => *key = Some(key_string(v)),
                            Some(k) => {
                                map.insert(k, v);
                            }
                        }
                        break;
                    }
                    Some(Frame::Tag { .. }) => {
                        stack.pop();
                    }
                    Some(Frame::Discard { .. }) => {
                        stack.pop();
                        if stack.is_empty() {
                            return Ok(None);
                        }
                        break;
                    }
                }
            }
        }
    }

    /// One step of [`Self::read_form`]: opens a frame (`None`), or returns a
    /// finished value (a leaf, or a collection just closed).
    fn step(&mut self, stack: &mut Vec<Frame>, depth: usize) -> Res<Option<Value>> {
        if let Some(top) = stack.last() {
            self.skip_ws()?;
            let close = match top {
                Frame::Seq { close, .. } => *close,
                Frame::Map { .. } => b'}',
                Frame::Tag { .. } | Frame::Discard { .. } => 0,
            };
            match self.peek()? {
                Some(b) if b == close => {
                    self.bump(b);
                    return match stack.pop() {
                        Some(Frame::Seq { items, .. }) => Ok(Some(Value::Array(items))),
                        Some(Frame::Map { map, key: None, .. }) => Ok(Some(Value::Object(map))),
                        Some(Frame::Map { line, .. }) => Err(self.err(format!(
                            "the map opened on line {line} has a key without a value"
                        ))),
                        _ => Err(self.err("internal: closed a tag")),
                    };
                }
                None | Some(b')' | b']' | b'}') => return Err(self.bad_close(top)?),
                Some(_) => {}
            }
        }
        if depth + stack.len() > MAX_DEPTH {
            return Err(self.err(format!(
                "nesting deeper than {MAX_DEPTH} levels (is the file corrupt?)"
            )));
        }
        let (line, col) = (self.line, self.col);
        let Some(b) = self.next()? else {
            return Err(self.err("unexpected end of input, expected a value"));
        };
        let frame = match b {
            b'[' => Frame::seq(b']', line),
            b'(' => Frame::seq(b')', line),
            b'{' => Frame::map(line),
            b'#' => match self.peek()? {
                Some(b'{') => {
                    self.bump(b'{');
                    Frame::seq(b'}', line)
                }
                Some(b'_') => {
                    self.bump(b'_');
                    Frame::Discard { line }
                }
                Some(b':') => {
                    // `#:ns{:a 1}`: keys keep the names as written, like the
                    // op fields we look for.
                    self.bump(b':');
                    self.token()?;
                    self.skip_ws()?;
                    if self.peek()? != Some(b'{') {
                        return Err(InputError::at(line, col, "expected `{` after `#:ns`"));
                    }
                    self.bump(b'{');
                    Frame::map(line)
                }
                Some(c) if is_token_byte(c) && c != b'#' => {
                    // A tagged literal `#tag v` (`#inst`, `#uuid`, records): the value.
                    self.token()?;
                    Frame::Tag { line }
                }
                _ => return self.read_dispatch_leaf(line, col).map(Some),
            },
            _ => return self.read_leaf(b, line, col).map(Some),
        };
        stack.push(frame);
        Ok(None)
    }

    /// The error for end of input or a wrong closer inside `top`.
    #[cold]
    fn bad_close(&mut self, top: &Frame) -> Res<InputError> {
        let (what, close, line) = match *top {
            Frame::Seq {
                close: b']', line, ..
            } => ("vector", "`]`", line),
            Frame::Seq {
                close: b')', line, ..
            } => ("list", "`)`", line),
            Frame::Seq { line, .. } => ("set", "`}`", line),
            Frame::Map { line, .. } => ("map", "`}`", line),
            Frame::Tag { line } => ("tagged literal", "a value after the tag", line),
            Frame::Discard { line } => ("`#_` discard", "a form to discard", line),
        };
        Ok(match self.peek()? {
            None => self.eof_in(what, line),
            Some(b) => self.err(format!(
                "expected {close} in the {what} opened on line {line}, found `{}`",
                b as char
            )),
        })
    }

    /// A form that holds no other form, whose first byte `b` was consumed.
    fn read_leaf(&mut self, b: u8, line: usize, col: usize) -> Res<Value> {
        match b {
            b'"' => Ok(Value::String(self.read_string(line)?)),
            b':' => {
                self.token()?;
                let name = self.scratch_str(line)?.trim_start_matches(':');
                if name.is_empty() {
                    return Err(InputError::at(
                        line,
                        col,
                        "expected a keyword name after `:`",
                    ));
                }
                Ok(Value::String(name.to_string()))
            }
            b'\\' => Ok(Value::String(self.read_char(line, col)?)),
            b')' | b']' | b'}' => Err(InputError::at(
                line,
                col,
                format!("unexpected `{}` with nothing open", b as char),
            )),
            _ => {
                self.scratch.clear();
                self.scratch.push(b);
                self.token_rest()?;
                self.atom(line, col)
            }
        }
    }

    /// After `#`: a regex `#"…"` or a symbolic value `##Inf`, else an error.
    fn read_dispatch_leaf(&mut self, line: usize, col: usize) -> Res<Value> {
        match self.peek()? {
            Some(b'"') => {
                // A regex: keep its source text.
                self.bump(b'"');
                Ok(Value::String(self.read_string(line)?))
            }
            Some(b'#') => {
                // `##Inf`, `##-Inf`, `##NaN`: JSON has no such numbers.
                self.bump(b'#');
                self.token()?;
                let s = self.scratch_str(line)?;
                match s {
                    "Inf" | "-Inf" | "NaN" => Ok(Value::String(s.to_string())),
                    _ => Err(InputError::at(
                        line,
                        col,
                        format!("unknown symbolic value `##{s}` (expected ##Inf, ##-Inf or ##NaN)"),
                    )),
                }
            }
            _ => Err(InputError::at(
                line,
                col,
                "expected a set `#{`, a discard `#_` or a tag `#name` after `#`",
            )),
        }
    }

    /// Reads the next non-discarded form inside a map, or `None` at its `}`.
    fn map_form(&mut self, line: usize, depth: usize) -> Res<Option<Value>> {
        loop {
            self.skip_ws()?;
            match self.peek()? {
                Some(b'}') => return Ok(None),
                None | Some(b')' | b']') => {
                    return Err(self.bad_close(&Frame::map(line))?);
                }
                Some(_) => {
                    if let Some(v) = self.read_form(depth + 1)? {
                        return Ok(Some(v));
                    }
                }
            }
        }
    }

    /// Reads an op map (its `{` consumed) into an event on `line`.
    fn read_op(&mut self, line: usize) -> Res<Event> {
        let mut ev = Event {
            index: crate::OptU64::NONE,
            time: None,
            process: Process::Nemesis,
            kind: EventType::Invoke,
            f: Sym::default(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
            line,
        };
        let (mut kind, mut process) = (None, None);
        loop {
            self.skip_ws()?;
            let Some(b) = self.peek()? else {
                return Err(self.eof_in("map", line));
            };
            // Keyword keys are matched from the token bytes: no allocation.
            let f = if b == b':' {
                self.bump(b);
                self.token()?;
                field(
                    self.scratch_str(self.line)?
                        .trim_start_matches(':')
                        .as_bytes(),
                )
            } else {
                match self.map_form(line, 1)? {
                    None => break,
                    Some(Value::String(s)) => field(s.as_bytes()),
                    Some(_) => Field::Other,
                }
            };
            self.skip_ws()?;
            let (vline, vcol) = (self.line, self.col);
            let Some(v) = self.map_form(line, 1)? else {
                return Err(self.err(format!(
                    "the op map opened on line {line} has a key without a value"
                )));
            };
            let bad = |what: &str, v: &Value| {
                InputError::at(
                    vline,
                    vcol,
                    format!("expected {what}, found {}", describe(v)),
                )
            };
            match f {
                Field::Process => {
                    process = Some(match v {
                        Value::Number(ref n) => match n.as_u64() {
                            Some(n) => Process::Client(n),
                            None => {
                                return Err(bad(
                                    ":process to be a non-negative integer or a keyword",
                                    &v,
                                ));
                            }
                        },
                        Value::String(s) if s == "nemesis" => Process::Nemesis,
                        Value::String(s) => Process::Named(Sym::new(&s)),
                        _ => {
                            return Err(bad(
                                ":process to be a non-negative integer or a keyword",
                                &v,
                            ));
                        }
                    })
                }
                Field::Type => {
                    kind = Some(
                        match &v {
                            Value::String(s) => EventType::parse(s),
                            _ => None,
                        }
                        .ok_or_else(|| bad(":type to be one of :invoke, :ok, :fail, :info", &v))?,
                    );
                }
                Field::F => {
                    ev.f = match v {
                        Value::String(s) => Sym::new(&s),
                        Value::Null => Sym::default(),
                        _ => return Err(bad(":f to be a keyword", &v)),
                    }
                }
                Field::Value => ev.value = v,
                Field::Time => {
                    ev.time =
                        uint(&v).ok_or_else(|| bad(":time to be a non-negative integer", &v))?
                }
                Field::Index => {
                    ev.index = uint(&v)
                        .ok_or_else(|| bad(":index to be a non-negative integer", &v))?
                        .into()
                }
                Field::Key => ev.key = Some(Box::new(v)),
                Field::Node => {
                    ev.node = match v {
                        Value::Null => None,
                        Value::String(s) => Some(Sym::new(&s)),
                        other => Some(Sym::new(&other.to_string())),
                    }
                }
                Field::Error => ev.error = Some(v).filter(|v| !v.is_null()).map(Box::new),
                Field::Other => {}
            }
        }
        self.bump(b'}');
        ev.process = process.unwrap_or_else(|| Process::Named(Sym::new(ANONYMOUS)));
        ev.kind = kind.ok_or_else(|| {
            InputError::new(
                line,
                "the op map has no :type (expected :invoke, :ok, :fail or :info)",
            )
        })?;
        Ok(ev)
    }

    /// Reads a string body (the opening `"` consumed).
    fn read_string(&mut self, line: usize) -> Res<String> {
        let mut out = Vec::new();
        loop {
            // Copy the plain run up to the next `"` or `\\` in one go.
            let buf = match self.r.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InputError::io(self.line, &e)),
            };
            let n = buf
                .iter()
                .position(|&b| b == b'"' || b == b'\\')
                .unwrap_or(buf.len());
            for &b in &buf[..n] {
                if b == b'\n' {
                    self.line += 1;
                    self.col = 1;
                } else {
                    self.col += 1;
                }
            }
            out.extend_from_slice(&buf[..n]);
            self.r.consume(n);
            let Some(b) = self.next()? else {
                return Err(self.eof_in("string", line));
            };
            match b {
                b'"' => break,
                b'\\' => {
                    let (eline, ecol) = (self.line, self.col - 1);
                    let Some(e) = self.next()? else {
                        return Err(self.eof_in("string", line));
                    };
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => self.unicode_escape(eline, ecol)?,
                        _ => {
                            return Err(InputError::at(
                                eline,
                                ecol,
                                format!(
                                    "unknown string escape `\\{}` (expected \\\" \\\\ \\n \\t \\r \\b \\f or \\uXXXX)",
                                    e.escape_ascii()
                                ),
                            ));
                        }
                    };
                    let mut tmp = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|e| {
            InputError::new(
                line,
                format!(
                    "invalid UTF-8 in the string started on this line (byte {} of it)",
                    e.utf8_error().valid_up_to() + 1
                ),
            )
        })
    }

    fn hex4(&mut self, line: usize, col: usize) -> Res<u32> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = self.next()?.and_then(|b| (b as char).to_digit(16));
            let Some(d) = d else {
                return Err(InputError::at(
                    line,
                    col,
                    "expected four hex digits after `\\u`",
                ));
            };
            n = n * 16 + d;
        }
        Ok(n)
    }

    /// `\uXXXX`, joining a UTF-16 surrogate pair `\uD83D\uDE00` as Clojure
    /// strings (UTF-16 inside) print them.
    fn unicode_escape(&mut self, line: usize, col: usize) -> Res<char> {
        let hi = self.hex4(line, col)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.next()? == Some(b'\\') && self.next()? == Some(b'u') {
                let lo = self.hex4(line, col)?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    if let Some(c) = char::from_u32(c) {
                        return Ok(c);
                    }
                }
            }
            return Err(InputError::at(
                line,
                col,
                "unpaired UTF-16 surrogate in a `\\u` escape",
            ));
        }
        char::from_u32(hi)
            .ok_or_else(|| InputError::at(line, col, "unpaired UTF-16 surrogate in a `\\u` escape"))
    }

    /// A character literal (the `\` consumed): `\a`, `\newline`, `\u00e9`.
    fn read_char(&mut self, line: usize, col: usize) -> Res<String> {
        // The first byte is part of the literal even if it is a delimiter: `\(`.
        let Some(first) = self.next()? else {
            return Err(self.eof_in("character literal", line));
        };
        self.scratch.clear();
        self.scratch.push(first);
        while let Some(b) = self.peek()? {
            if !is_token_byte(b) {
                break;
            }
            self.bump(b);
            self.scratch.push(b);
        }
        let s = self.scratch_str(line)?;
        let c = match s {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            _ if s.chars().count() == 1 => s.chars().next().unwrap_or(' '),
            _ if s.len() == 5 && s.starts_with('u') => u32::from_str_radix(&s[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    InputError::at(
                        line,
                        col,
                        format!("invalid character `\\{}`", s.escape_debug()),
                    )
                })?,
            _ if s.len() >= 2 && s.len() <= 4 && s.starts_with('o') => {
                u32::from_str_radix(&s[1..], 8)
                    .ok()
                    .filter(|&n| n <= 0o377)
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        InputError::at(
                            line,
                            col,
                            format!("invalid character `\\{}`", s.escape_debug()),
                        )
                    })?
            }
            _ => {
                return Err(InputError::at(
                    line,
                    col,
                    format!("unknown character literal `\\{}`", s.escape_debug()),
                ));
            }
        };
        Ok(c.to_string())
    }

    /// A number, `nil`, `true`, `false` or a symbol, from `scratch`.
    fn atom(&self, line: usize, col: usize) -> Res<Value> {
        let s = self.scratch_str(line)?;
        let bytes = s.as_bytes();
        let digits = matches!(bytes, [b'+' | b'-', d, ..] | [d, ..] if d.is_ascii_digit());
        if !digits {
            return Ok(match s {
                "nil" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(s.to_string()),
            });
        }
        number(s).ok_or_else(|| InputError::at(line, col, format!("invalid number `{s}`")))
    }
}

fn key_string(k: Value) -> String {
    match k {
        Value::String(s) => s,
        Value::Null => "nil".to_string(),
        other => other.to_string(),
    }
}

fn uint(v: &Value) -> Option<Option<u64>> {
    match v {
        Value::Null => Some(None),
        Value::Number(n) => n.as_u64().map(Some),
        _ => None,
    }
}

/// Parses an EDN number token that starts with a digit or a sign and a digit.
fn number(s: &str) -> Option<Value> {
    if let Some(int) = s.strip_suffix('N') {
        return integer(int);
    }
    if let Some(dec) = s.strip_suffix('M') {
        return float(dec, s);
    }
    if let Some((a, b)) = s.split_once('/') {
        let (a, b) = (
            a.parse::<i128>().ok()? as f64,
            b.parse::<u128>().ok()? as f64,
        );
        if b == 0.0 {
            return None;
        }
        return serde_json::Number::from_f64(a / b).map(Value::Number);
    }
    let unsigned = s.trim_start_matches(['+', '-']);
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        let n = i64::from_str_radix(hex, 16).ok()?;
        return Some(Value::from(if s.starts_with('-') { -n } else { n }));
    }
    if s.contains(['.', 'e', 'E']) {
        return float(s, s);
    }
    integer(s)
}

fn integer(s: &str) -> Option<Value> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if let Ok(n) = s.parse::<i64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(Value::from(n));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Value::String(s.to_string()));
    }
    None
}

/// A float; one too large for `f64` keeps its text.
fn float(s: &str, text: &str) -> Option<Value> {
    // Rust accepts `inf`/`nan` spellings EDN does not; EDN tokens here always
    // start with a digit or sign+digit, so only digits reach `parse`.
    if s.bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    let f = s.parse::<f64>().ok()?;
    Some(match serde_json::Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None => Value::String(text.to_string()),
    })
}

#[cfg(test)]
mod tests;
