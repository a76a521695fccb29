//! History parsers: faultline JSON Lines, Jepsen EDN and Porcupine's formats.
//!
//! Every parser streams: it reads one line (JSONL, Porcupine) or one
//! top-level form (EDN) at a time and never holds the whole file as text.
//! Every error is one [`InputError`] naming the line (and, where known, the
//! column) and what was expected there.
//!
//! | format | looks like |
//! |---|---|
//! | `jsonl` | `{"index":0,"process":3,"type":"invoke","f":"write","value":2}` per line |
//! | `edn` | Jepsen `history.edn`: `{:process 0, :type :invoke, :f :read, :value nil}` |
//! | `porcupine-etcd` | `INFO  jepsen.util - 3 :invoke :cas [3 0]` (tabs or spaces) |
//! | `porcupine-kv` | `{:process 0, :type :invoke, :f :get, :key "4", :value nil}` |
//!
//! `porcupine-kv` is valid EDN whose maps carry a `:key`; it is read by the EDN
//! reader and kept as a name only so detection and reports can say what it was.

pub mod edn;
pub mod jsonl;
pub mod porcupine;
pub mod txn_fast;

use crate::history::{History, HistoryError, Paired};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::str::FromStr;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// faultline's own JSON Lines (DESIGN.md, "History").
    Jsonl,
    /// Jepsen / Knossos / Elle `history.edn`.
    Edn,
    /// Porcupine's Jepsen etcd console logs (`INFO  jepsen.util - …`).
    PorcupineEtcd,
    /// Porcupine's kv histories: one EDN map per line with a `:key`.
    PorcupineKv,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Jsonl,
        Format::Edn,
        Format::PorcupineEtcd,
        Format::PorcupineKv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for an unknown format name; lists the known ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown history format `{0}` (expected one of jsonl, edn, porcupine-etcd, porcupine-kv)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// A history that cannot be read, with where.
///
/// Displays as `FILE:LINE[:COL]: message` (or `line LINE[:COL]: message`
/// without a file); line 0 means the problem is not on any one line
/// (the file could not be opened).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    pub file: Option<String>,
    /// 1-based line; 0 when no line applies.
    pub line: usize,
    /// 1-based byte column, when known.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}", self.line)?,
            None => write!(f, "line {}", self.line)?,
        }
        if let Some(col) = self.column {
            write!(f, ":{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl InputError {
    pub fn new(line: usize, message: impl Into<String>) -> InputError {
        InputError {
            file: None,
            line,
            column: None,
            message: message.into(),
        }
    }

    pub fn at(line: usize, column: usize, message: impl Into<String>) -> InputError {
        InputError {
            file: None,
            line,
            column: Some(column),
            message: message.into(),
        }
    }

    /// Names the file, unless a file is already named.
    pub fn in_file(mut self, file: impl Into<String>) -> InputError {
        if self.file.is_none() {
            self.file = Some(file.into());
        }
        self
    }

    pub(crate) fn io(line: usize, e: &std::io::Error) -> InputError {
        InputError::new(line, format!("cannot read: {e}"))
    }

    pub(crate) fn not_utf8(line: usize, e: std::str::Utf8Error) -> InputError {
        // The column of the first bad byte is what helps find it.
        InputError::at(
            line,
            e.valid_up_to() + 1,
            "invalid UTF-8 (histories must be UTF-8 text)",
        )
    }
}

impl From<HistoryError> for InputError {
    fn from(e: HistoryError) -> InputError {
        InputError::new(e.line, e.message)
    }
}

/// Guesses the format from the first few KB of a file.
///
/// `None` when the head is empty (or only blanks and comments) or looks like
/// none of the formats.
pub fn detect(head: &[u8]) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // The last line may be cut off by the head's end; it still has its start.
    let mut first_form_line: Option<&[u8]> = None;
    for line in head.split(|&b| b == b'\n') {
        let t = trim_ascii_start(line);
        if t.is_empty() {
            continue;
        }
        if t.starts_with(b"INFO") && is_etcd_line(t) {
            return Some(Format::PorcupineEtcd);
        }
        if first_form_line.is_none() && !t.starts_with(b";") {
            first_form_line = Some(t);
            if t.starts_with(b"{\"") || t.starts_with(b"{ \"") {
                return Some(Format::Jsonl);
            }
            if t.starts_with(b"{:") && contains(t, b":key ") {
                return Some(Format::PorcupineKv);
            }
        }
    }
    match first_form_line?.first()? {
        b'{' | b'[' | b'(' | b'#' => Some(Format::Edn),
        _ => None,
    }
}

fn trim_ascii_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn is_etcd_line(line: &[u8]) -> bool {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    words.next() == Some(b"INFO")
        && words.next() == Some(b"jepsen.util")
        && words.next() == Some(b"-")
}

/// Parses a whole history from `r` in the given format. Errors carry no file
/// name; [`parse_file`] adds it.
pub fn parse_reader<R: BufRead>(r: R, format: Format) -> Result<History, InputError> {
    match format {
        Format::Jsonl => jsonl::parse(r),
        Format::Edn | Format::PorcupineKv => edn::parse(r),
        Format::PorcupineEtcd => porcupine::parse_etcd(r),
    }
}

/// A UTF-8 byte order mark: not part of any history.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many bytes [`parse_file`] looks at to detect the format.
pub const DETECT_BYTES: usize = 8 * 1024;

/// Parses a history file; `None` detects the format from its head.
///
/// A file that is empty (or only blanks and comments) is an empty history
/// whatever the format: a killed run may leave one.
pub fn parse_file(path: &Path, format: Option<Format>) -> Result<History, InputError> {
    let name = path.display().to_string();
    parse_file_detected(path, format)
        .map(|(h, _)| h)
        .map_err(|e| e.in_file(name))
}

/// Like [`parse_file`], and also says which format was used (`None` for an
/// empty file read with auto-detection).
///
/// The file is opened once and read once, so a pipe, a FIFO or
/// `/dev/stdin` works as well as a regular file.
pub fn parse_file_detected(
    path: &Path,
    format: Option<Format>,
) -> Result<(History, Option<Format>), InputError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| InputError::io(0, &e).in_file(&name))?;
    parse_reader_detected(file, format).map_err(|e| e.in_file(name))
}

/// Parses a history from a stream read once (stdin, a pipe), detecting the
/// format from its head when `format` is `None`. The bytes read to detect
/// the format are kept and handed to the parser before the rest of the
/// stream: sniffing never loses input, so nothing needs to rewind.
///
/// Otherwise as [`parse_file_detected`]: a leading byte order mark is
/// skipped, a blank stream read with detection is an empty history (`None`).
pub fn parse_reader_detected<R: Read>(
    r: R,
    format: Option<Format>,
) -> Result<(History, Option<Format>), InputError> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let (head, detected) = read_head(&mut r, format.is_none())?;
    let format = match (format, detected) {
        (Some(f), _) => f,
        (None, Detected::Format(f)) => f,
        (None, Detected::Blank) => return Ok((History::default(), None)),
        (None, Detected::Unknown) => return Err(unknown_format()),
    };
    let h = parse_reader(Cursor::new(head).chain(r), format)?;
    Ok((h, Some(format)))
}

/// [`parse_reader_detected`] on a history held in memory.
pub fn parse_bytes_detected(
    data: &[u8],
    format: Option<Format>,
) -> Result<(History, Option<Format>), InputError> {
    parse_reader_detected(data, format)
}

/// What parsing within a deadline gave.
#[derive(Debug)]
pub enum Parsed {
    /// The whole history, and the format read (`None`: an empty stream
    /// read with detection).
    Done(History, Option<Format>),
    /// The deadline passed while reading, after about `lines` lines: the
    /// answer is `unknown`, whatever those lines held.
    OutOfTime { lines: usize },
}

/// [`parse_file_detected`] within `deadline` (`faultline check
/// --time-limit`, started before parsing): a history too big to read in
/// the budget stops within one 64 KiB buffer of the limit.
pub fn parse_file_within(
    path: &Path,
    format: Option<Format>,
    deadline: &crate::Deadline,
) -> Result<Parsed, InputError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| InputError::io(0, &e).in_file(&name))?;
    parse_reader_within(file, format, deadline).map_err(|e| e.in_file(name))
}

/// [`parse_reader_detected`] within `deadline` (see [`parse_file_within`]).
pub fn parse_reader_within<R: Read>(
    r: R,
    format: Option<Format>,
    deadline: &crate::Deadline,
) -> Result<Parsed, InputError> {
    match parse_reader_detected(Bounded { inner: r, deadline }, format) {
        Ok((h, f)) => Ok(Parsed::Done(h, f)),
        Err(e) if deadline.ran_out() => Ok(Parsed::OutOfTime {
            lines: e.line.saturating_sub(1),
        }),
        Err(e) => Err(e),
    }
}

/// A reader that fails once its deadline has passed: every parser reads
/// through a buffer, so each refill (64 KiB) looks at the clock and none
/// of them needs a deadline of its own.
struct Bounded<'d, R> {
    inner: R,
    deadline: &'d crate::Deadline,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.deadline.expired() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the time limit ran out",
            ));
        }
        self.inner.read(buf)
    }
}

fn unknown_format() -> InputError {
    InputError::new(
        1,
        "cannot tell the history format (expected JSON Lines `{\"type\":…}`, \
         EDN `{:type …}` maps, or Porcupine `INFO  jepsen.util - …` lines); \
         name it with --format",
    )
}

/// The format [`parse_file`] would detect for the file at `path`; `None`
/// when it is blank, unreadable or of no known format. It reads the head
/// of the file and drops it: for a regular file only (on a pipe the head
/// would be lost; use [`detect_bytes`] on what was read instead).
pub fn detect_path(path: &Path) -> Option<Format> {
    let file = File::open(path).ok()?;
    match read_head(&mut BufReader::new(file), true) {
        Ok((_, Detected::Format(f))) => Some(f),
        _ => None,
    }
}

/// The format [`parse_bytes_detected`] would detect for `data`.
pub fn detect_bytes(data: &[u8]) -> Option<Format> {
    match read_head(&mut { data }, true) {
        Ok((_, Detected::Format(f))) => Some(f),
        _ => None,
    }
}

enum Detected {
    Format(Format),
    /// Only blank lines and `;` comments (or nothing at all).
    Blank,
    Unknown,
}

/// Reads the head of a stream: a leading byte order mark (dropped), then,
/// when `sniff`, whole lines until [`DETECT_BYTES`] past the first line
/// that is neither blank nor a `;` comment, however far into the stream
/// that is. Returns every byte read but the mark (the parser must see them
/// all, or its line numbers would shift) and what the head looks like.
fn read_head<R: BufRead>(r: &mut R, sniff: bool) -> Result<(Vec<u8>, Detected), InputError> {
    let mut head = Vec::new();
    if !sniff {
        // Three bytes, however the stream splits them (a pipe may hand
        // over one at a time); the rest streams straight to the parser.
        r.take(3)
            .read_to_end(&mut head)
            .map_err(|e| InputError::io(1, &e))?;
        if head == BOM {
            head.clear();
        }
        return Ok((head, Detected::Unknown));
    }
    let mut lines = 0;
    // Where the first line that is neither blank nor a comment starts.
    let mut form: Option<usize> = None;
    loop {
        let start = head.len();
        let n = r
            .read_until(b'\n', &mut head)
            .map_err(|e| InputError::io(lines + 1, &e))?;
        if n == 0 {
            break;
        }
        if lines == 0 && head.starts_with(BOM) {
            head.drain(..BOM.len());
        }
        lines += 1;
        if form.is_none() {
            let t = trim_ascii_start(&head[start..]);
            if !t.is_empty() && !t.starts_with(b";") {
                form = Some(start);
            }
        }
        if form.is_some_and(|f| head.len() - f >= DETECT_BYTES) {
            break;
        }
    }
    let detected = match form {
        None => Detected::Blank,
        Some(f) => detect(&head[f..]).map_or(Detected::Unknown, Detected::Format),
    };
    Ok((head, detected))
}

/// Pairs a parsed history's events, naming the file in the error so a caller
/// can print one clear line (`h.jsonl:12: \`ok\` completion … has no matching invoke`).
pub fn check_pairs(history: &History, file: Option<&str>) -> Result<Paired, InputError> {
    history.pair().map_err(|e| {
        let e = InputError::from(e);
        match file {
            Some(f) => e.in_file(f),
            None => e,
        }
    })
}

/// Runs both checkers with every model on a history that parsed: whatever
/// shapes its values have, they answer or return a typed error, never panic.
/// Tiny budgets keep each case fast; a budget ending is `unknown`, not valid.
fn fuzz_checkers(h: &History, ops: &[crate::history::Operation]) {
    use crate::linear::{self, Options};
    use crate::model::{ModelKind, ModelSpec};
    use crate::txn::{self, TxnOptions, Workload};
    use std::time::Duration;
    let budget = Some(Duration::from_millis(50));
    for kind in ModelKind::ALL {
        for nil_absent in [false, true] {
            let mut spec = ModelSpec::new(kind);
            spec.nil_read_is_absent = nil_absent;
            let opts = Options {
                time_limit: budget,
                threads: 1,
                memory_limit_bytes: 64 << 20,
                ..Options::default()
            };
            let _ = linear::check(ops, Some(h), &spec, &opts);
        }
    }
    for w in [Workload::ListAppend, Workload::RwRegister] {
        let mut opts = TxnOptions::new(w);
        opts.time_limit = budget;
        let _ = txn::check(h, &opts);
    }
    let _ = crate::session::check(h, &crate::session::SessionOptions::default());
}

/// Runs every parser on `data` and checks what must hold for any input: no
/// panic, errors and events name lines that exist, and reading through a tiny
/// buffer gives the same result as reading all at once (streaming must not
/// depend on where the buffer splits). Shared by the cargo-fuzz targets in
/// `fuzz/` and the stable random-input test `tests/fuzz_parsers.rs`.
///
/// Panics when an invariant is broken: that is the finding.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8], small_buffer: usize) {
    let _ = detect(data);
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for format in Format::ALL {
        let whole = parse_reader(data, format);
        let chunked = parse_reader(BufReader::with_capacity(small_buffer.max(1), data), format);
        assert_eq!(
            whole, chunked,
            "{format}: result depends on the buffer size"
        );
        match whole {
            Ok(h) => {
                for e in &h.events {
                    assert!(
                        (1..=lines).contains(&e.line),
                        "{format}: event on line {} of {lines}",
                        e.line
                    );
                }
                match check_pairs(&h, None) {
                    Err(e) => assert!((1..=lines).contains(&e.line), "{format}: {e}"),
                    Ok(p) => fuzz_checkers(&h, &p.operations),
                }
            }
            Err(e) => {
                assert!(
                    (1..=lines).contains(&e.line),
                    "{format}: {e} ({lines} lines)"
                );
                assert!(!e.message.is_empty());
                assert!(
                    !e.to_string().contains('\n'),
                    "{format}: two-line error {e:?}"
                );
            }
        }
    }
    fuzz_stream(data, small_buffer);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = edn::parse_value(s);
    }
}

/// A reader that hands out at most `n` bytes per read, as a pipe may (for
/// the fuzz targets and their stable tests).
#[doc(hidden)]
pub struct Trickle<'a> {
    pub data: &'a [u8],
    pub n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

/// What must hold for a history read once from a stream (`faultline check
/// -`, a pipe): detecting its format loses no byte (the result is that of
/// the detected parser on the whole input), and it does not depend on how
/// the stream splits its reads, for auto-detection and for each named
/// format. Part of [`fuzz_check`]; the cargo-fuzz target `parse_stream`
/// runs it alone.
///
/// Panics when an invariant is broken: that is the finding.
#[doc(hidden)]
pub fn fuzz_stream(data: &[u8], chunk: usize) {
    let trickle = || Trickle {
        data,
        n: chunk.max(1),
    };
    let whole = parse_bytes_detected(data, None);
    assert_eq!(
        whole,
        parse_reader_detected(trickle(), None),
        "detection depends on how the stream splits"
    );
    let body = data.strip_prefix(BOM).unwrap_or(data);
    match detect_bytes(data) {
        Some(f) => {
            assert_eq!(
                whole.as_ref().ok().map(|(_, d)| *d),
                whole.is_ok().then_some(Some(f))
            );
            assert_eq!(
                whole.map(|(h, _)| h),
                parse_reader(body, f),
                "{f}: sniffing the format lost input"
            );
        }
        None => assert!(matches!(whole, Ok((_, None)) | Err(_)), "{whole:?}"),
    }
    for f in Format::ALL {
        let named = parse_reader_detected(trickle(), Some(f)).map(|(h, _)| h);
        assert_eq!(
            named,
            parse_reader(body, f),
            "{f}: a named format read from a stream differs"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        }
        let e = "xml".parse::<Format>().unwrap_err();
        assert!(e.to_string().contains("porcupine-etcd"), "{e}");
    }

    #[test]
    fn detects_each_format() {
        assert_eq!(detect(b"{\"type\":\"invoke\"}\n"), Some(Format::Jsonl));
        assert_eq!(
            detect(b"INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
            Some(Format::PorcupineEtcd)
        );
        assert_eq!(
            detect(b"{:process 0, :type :invoke, :f :get, :key \"4\", :value nil}\n"),
            Some(Format::PorcupineKv)
        );
        assert_eq!(
            detect(b"; c\n\n[{:process 0 :type :invoke}]"),
            Some(Format::Edn)
        );
        assert_eq!(detect(b"{:index 0 :type :invoke}"), Some(Format::Edn));
        assert_eq!(detect(b"#jepsen.history.Op{:index 0}"), Some(Format::Edn));
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"hello"), None);
    }

    /// `faultline check -` (#16): a pipe hands over a few bytes per read,
    /// and sniffing the format must not lose them.
    #[test]
    fn a_stream_is_detected_without_losing_its_head() {
        let mut data = b"\xEF\xBB\xBF  \n\n".to_vec();
        data.extend_from_slice(
            b"{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n",
        );
        data.extend_from_slice(b"{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n");
        for n in [1, 2, 3, 7, 4096] {
            let (h, f) = parse_reader_detected(Trickle { data: &data, n }, None).unwrap();
            assert_eq!(f, Some(Format::Jsonl), "reads of {n}");
            assert_eq!(h.events.len(), 2, "reads of {n}");
            assert_eq!(h.events[0].line, 3, "reads of {n}");
        }
        assert_eq!(detect_bytes(&data), Some(Format::Jsonl));
        let edn = b"; comment\n[{:process 0 :type :invoke :f :read :value nil}]";
        let (h, f) = parse_reader_detected(Trickle { data: edn, n: 1 }, None).unwrap();
        assert_eq!((f, h.events[0].line), (Some(Format::Edn), 2));
        let (h, f) = parse_bytes_detected(b"\n ; only a comment\n", None).unwrap();
        assert_eq!((h, f), (History::default(), None));
        let e = parse_bytes_detected(b"hello\n", None).unwrap_err();
        assert!(e.message.contains("cannot tell"), "{e}");
        fuzz_stream(&data, 1);
    }

    #[test]
    fn error_display() {
        let e = InputError::new(12, "expected x").in_file("h.jsonl");
        assert_eq!(e.to_string(), "h.jsonl:12: expected x");
        let e = InputError::at(3, 7, "bad");
        assert_eq!(e.to_string(), "line 3:7: bad");
    }
}
