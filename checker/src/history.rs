//! The history model: events as recorded, and operations paired from them.
//!
//! A history is a sequence of *events* in real-time order (the order of the
//! file, never the `time` field: Jepsen's `:time` is not monotone in file
//! order). Each client process is single-threaded: an `invoke`, then at most
//! one completion of the same process:
//!
//! - `ok`: it happened, between its invocation and this event;
//! - `fail`: it certainly did not happen;
//! - `info`: unknown — it may take effect at any time after its invocation,
//!   or never. An invocation still open at the end of the history is treated
//!   the same way.
//!
//! The nemesis's own events (`process: "nemesis"`) are kept for reports but
//! never paired into client operations.

use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::sym::Sym;

/// Values are JSON values. EDN keywords become strings, EDN sets become arrays,
/// integers beyond `i64`/`u64` become strings of their digits.
pub type Value = serde_json::Value;

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// Parses `invoke`, `ok`, `fail`, `info` (with or without a leading `:`).
    pub fn parse(s: &str) -> Option<EventType> {
        match s.strip_prefix(':').unwrap_or(s) {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who emitted an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client worker, by number.
    Client(u64),
    /// A client worker named by a string (some tools name their clients).
    Named(Sym),
    /// The fault injector; its events are never client operations.
    Nemesis,
}

impl Process {
    pub fn is_nemesis(&self) -> bool {
        matches!(self, Process::Nemesis)
    }

    /// JSON form: a number, `"nemesis"`, or the name.
    pub fn to_value(&self) -> Value {
        match self {
            Process::Client(n) => Value::from(*n),
            Process::Named(s) => Value::from(s.as_str()),
            Process::Nemesis => Value::from("nemesis"),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Named(s) => f.write_str(s),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// An optional `u64` in 8 bytes, not `Option<u64>`'s 16: `u64::MAX` is
/// none (an index that large reads as none). Reads like an `Option`
/// (`get`, `unwrap_or`, `is_some`, compares with `Option<u64>`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OptU64(u64);

impl OptU64 {
    pub const NONE: OptU64 = OptU64(u64::MAX);

    pub fn get(self) -> Option<u64> {
        (self.0 != u64::MAX).then_some(self.0)
    }
    pub fn is_some(self) -> bool {
        self.0 != u64::MAX
    }
    pub fn is_none(self) -> bool {
        self.0 == u64::MAX
    }
    pub fn unwrap_or(self, default: u64) -> u64 {
        self.get().unwrap_or(default)
    }
}

impl Default for OptU64 {
    fn default() -> OptU64 {
        OptU64::NONE
    }
}
impl From<Option<u64>> for OptU64 {
    fn from(v: Option<u64>) -> OptU64 {
        OptU64(v.unwrap_or(u64::MAX))
    }
}
impl From<u64> for OptU64 {
    fn from(v: u64) -> OptU64 {
        OptU64(v)
    }
}
impl From<OptU64> for Option<u64> {
    fn from(v: OptU64) -> Option<u64> {
        v.get()
    }
}
impl PartialEq<Option<u64>> for OptU64 {
    fn eq(&self, other: &Option<u64>) -> bool {
        self.get() == *other
    }
}
impl fmt::Debug for OptU64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}
impl Serialize for OptU64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

/// One line of a history, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The `index` field when the file had one ([`OptU64`]: an event is
    /// 120 bytes, not 128; 160 MB at 20 M events).
    pub index: OptU64,
    /// Nanoseconds since the test started, when the file had them.
    pub time: Option<u64>,
    pub process: Process,
    pub kind: EventType,
    /// Operation name without any leading `:` (`read`, `write`, `cas`, `txn`, …).
    pub f: Sym,
    /// The key, for formats that carry it beside the value (Porcupine kv,
    /// faultline JSONL's optional `key`). Used to split a history by key.
    /// Boxed: most events have none, and a `Value` is 32 bytes.
    pub key: Option<Box<Value>>,
    pub value: Value,
    /// The node the client talked to, when recorded.
    pub node: Option<Sym>,
    /// Diagnostic error of a completion, when recorded (boxed, as `key`).
    pub error: Option<Box<Value>>,
    /// 1-based line of the source where this event starts.
    pub line: usize,
}

impl Event {
    /// An event with only what every event has; the optional fields (index,
    /// time, key, node, error) start empty and line at 0 (not from a file).
    pub fn new(process: Process, kind: EventType, f: impl Into<Sym>, value: Value) -> Event {
        Event {
            index: OptU64::NONE,
            time: None,
            process,
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
            line: 0,
        }
    }
}

/// A parsed history: its events in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened; `Operation::value` is what the completion returned.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may have happened at any time after its invocation, or
    /// never. Also used for invocations left open at the end.
    Info,
}

/// An invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Position of this operation in the paired list.
    pub id: usize,
    pub process: Process,
    pub f: Sym,
    /// The invocation's key (else the `ok` completion's), boxed as an
    /// event's: most operations have none.
    pub key: Option<Box<Value>>,
    /// The invocation's value (the argument).
    pub invoke_value: Value,
    /// For `ok`: the completion's value (reads learn their result here).
    /// For `fail` and `info`: the invocation's value, since a timed-out
    /// completion often carries a marker such as `:timed-out` instead.
    pub value: Value,
    pub outcome: Outcome,
    /// Event position (index into `History::events`) of the invocation.
    pub invoke: usize,
    /// Event position of the completion; `None` when the outcome is unknown
    /// (an `info` completion, or still open at the end): it returns "at
    /// infinity".
    pub complete: Option<usize>,
    /// Event position of the `info` completion when there was one (for
    /// reports; it does not bound the operation): see
    /// [`Operation::info_at`]. A `u32` (`NO_EVENT` for none) so that an
    /// operation is 136 bytes, not 152: 160 MB at 10 M operations.
    info: u32,
}

/// [`Operation`]'s `info` when there was no `info` completion; pairing
/// refuses histories of this many events or more.
const NO_EVENT: u32 = u32::MAX;

impl Operation {
    /// Event position of the `info` completion when there was one (for
    /// reports; it does not bound the operation).
    pub fn info_at(&self) -> Option<usize> {
        (self.info != NO_EVENT).then_some(self.info as usize)
    }

    /// The real-time interval as event positions: `[call, ret)`, with
    /// `usize::MAX` for operations that never certainly returned.
    pub fn call(&self) -> usize {
        self.invoke
    }

    pub fn ret(&self) -> usize {
        self.complete.unwrap_or(usize::MAX)
    }

    /// True when this operation completed before `other` was invoked.
    pub fn precedes(&self, other: &Operation) -> bool {
        self.ret() < other.call()
    }
}

/// A history problem that makes it impossible to check, with the line it
/// was found on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct HistoryError {
    pub line: usize,
    pub message: String,
}

/// The result of pairing: client operations in invocation order, and the
/// nemesis's events (positions into `History::events`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Paired {
    pub operations: Vec<Operation>,
    pub nemesis: Vec<usize>,
}

/// FxHash (rustc's hasher): process ids are small and trusted-shape keys,
/// so SipHash's DoS resistance buys nothing and costs most of pairing's
/// lookups on a history of millions of events.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    #[inline]
    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

impl History {
    /// Pairs invocations with completions, following Jepsen's rules. The
    /// events are left whole: every operation gets its own copy of its
    /// values. A caller done with the events' values should use
    /// [`History::take_pairs`], which moves them instead.
    ///
    /// Errors: an `ok` or `fail` without an open invocation of its process,
    /// and an invocation by a process whose previous operation is still open
    /// (a process is single-threaded by definition). An `info` with no open
    /// invocation is a note (Knossos ignores those) and is skipped.
    pub fn pair(&self) -> Result<Paired, HistoryError> {
        let Some(mut paired) = self.skeleton(&crate::Deadline::none())? else {
            unreachable!("no deadline")
        };
        for op in &mut paired.operations {
            let inv = &self.events[op.invoke];
            let done = op.complete.map(|c| &self.events[c]);
            let ok = op.outcome == Outcome::Ok;
            op.key = match (&inv.key, done) {
                (None, Some(d)) if ok => d.key.clone(),
                (k, _) => k.clone(),
            };
            op.invoke_value = inv.value.clone();
            op.value = match done {
                Some(d) if ok => d.value.clone(),
                _ => inv.value.clone(),
            };
        }
        Ok(paired)
    }

    /// [`History::pair`] without copying what it need not, within
    /// `deadline`: each client event's `value` and `key` move into its
    /// operation, so afterwards client events keep only what and where and
    /// when they happened (process, type, `f`, index, time, node, error,
    /// line; `value` null, `key` none). The nemesis's events and `info`
    /// completions are untouched. Only a failed or unknown operation's
    /// `value` is a copy (of its invocation's).
    ///
    /// `Ok(None)` when the deadline passed while pairing (checked every
    /// [`crate::Deadline::CHECK_EVERY`] events); the history is then left
    /// as it was.
    pub fn take_pairs(
        &mut self,
        deadline: &crate::Deadline,
    ) -> Result<Option<Paired>, HistoryError> {
        let Some(mut paired) = self.skeleton(deadline)? else {
            return Ok(None);
        };
        for op in &mut paired.operations {
            let ok = op.outcome == Outcome::Ok;
            if let (true, Some(c)) = (ok, op.complete) {
                let d = &mut self.events[c];
                op.key = d.key.take();
                op.value = std::mem::take(&mut d.value);
            }
            let inv = &mut self.events[op.invoke];
            if inv.key.is_some() {
                op.key = inv.key.take();
            }
            op.invoke_value = std::mem::take(&mut inv.value);
            if !ok {
                op.value = op.invoke_value.clone();
            }
        }
        Ok(Some(paired))
    }

    /// Pairing's structure (see [`History::pair`]): every operation with
    /// its process, `f`, outcome and event positions, but no key and null
    /// values yet; `None` if `deadline` passed. The operations are built
    /// here, not from a list of positions, so pairing 10 M operations holds
    /// the events and the operations and nothing else.
    fn skeleton(&self, deadline: &crate::Deadline) -> Result<Option<Paired>, HistoryError> {
        if self.events.len() >= NO_EVENT as usize {
            return Err(HistoryError {
                line: self.events.last().map_or(0, |e| e.line),
                message: format!(
                    "{} events: more than pairing handles ({})",
                    self.events.len(),
                    NO_EVENT - 1
                ),
            });
        }
        let mut operations: Vec<Operation> = Vec::with_capacity(self.events.len() / 2 + 1);
        let mut nemesis = Vec::new();
        // process -> index into operations of its open operation
        let mut open: FxHashMap<&Process, usize> = FxHashMap::default();
        for (pos, ev) in self.events.iter().enumerate() {
            if deadline.tick() {
                return Ok(None);
            }
            if ev.process.is_nemesis() {
                nemesis.push(pos);
                continue;
            }
            match ev.kind {
                EventType::Invoke => {
                    let id = operations.len();
                    if let Some(prev) = open.insert(&ev.process, id) {
                        let prev = &self.events[operations[prev].invoke];
                        return Err(HistoryError {
                            line: ev.line,
                            message: format!(
                                "process {} invokes `{}` while its `{}` invoked on line {} is still open \
                                 (a process runs one operation at a time; after `info` it must take a new id)",
                                ev.process, ev.f, prev.f, prev.line
                            ),
                        });
                    }
                    operations.push(Operation {
                        id,
                        process: ev.process.clone(),
                        f: ev.f.clone(),
                        key: None,
                        invoke_value: Value::Null,
                        value: Value::Null,
                        outcome: Outcome::Info,
                        invoke: pos,
                        complete: None,
                        info: NO_EVENT,
                    });
                }
                kind => {
                    let Some(id) = open.remove(&ev.process) else {
                        if kind == EventType::Info {
                            continue;
                        }
                        return Err(HistoryError {
                            line: ev.line,
                            message: format!(
                                "`{kind}` completion of `{}` by process {} has no matching invoke",
                                ev.f, ev.process
                            ),
                        });
                    };
                    let op = &mut operations[id];
                    if op.f != ev.f {
                        let inv = &self.events[op.invoke];
                        return Err(HistoryError {
                            line: ev.line,
                            message: format!(
                                "`{kind}` completion of `{}` by process {} does not match its invoke of `{}` on line {}",
                                ev.f, ev.process, inv.f, inv.line
                            ),
                        });
                    }
                    match kind {
                        EventType::Ok => {
                            op.outcome = Outcome::Ok;
                            op.complete = Some(pos);
                        }
                        EventType::Fail => {
                            op.outcome = Outcome::Fail;
                            op.complete = Some(pos);
                        }
                        EventType::Info => {
                            op.outcome = Outcome::Info;
                            op.info = pos as u32;
                        }
                        EventType::Invoke => unreachable!("handled above"),
                    }
                }
            }
        }
        Ok(Some(Paired {
            operations,
            nemesis,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(line: usize, p: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            line,
            ..Event::new(Process::Client(p), kind, f, value)
        }
    }

    /// A 10 M-operation history is 20 M events and 10 M operations: these
    /// sizes are most of `faultline check`'s memory on one
    /// (BENCHMARKS.md, "Workload checkers at scale").
    #[test]
    fn events_and_operations_stay_compact() {
        let (e, o) = (
            std::mem::size_of::<Event>(),
            std::mem::size_of::<Operation>(),
        );
        eprintln!(
            "Event {e} B, Operation {o} B, Process {} B",
            std::mem::size_of::<Process>()
        );
        assert!(e <= 120, "Event is {e} bytes");
        assert!(o <= 136, "Operation is {o} bytes");
    }

    #[test]
    fn pairs_ok_fail_info_and_open() {
        use EventType::*;
        let h = History {
            events: vec![
                ev(1, 0, Invoke, "read", Value::Null),
                ev(2, 1, Invoke, "write", json!(3)),
                ev(3, 0, Ok, "read", json!(3)),
                ev(4, 1, Info, "write", json!("timed-out")),
                ev(5, 2, Invoke, "cas", json!([1, 2])),
                ev(6, 2, Fail, "cas", json!([1, 2])),
                ev(7, 3, Invoke, "write", json!(9)),
            ],
        };
        let p = h.pair().unwrap();
        assert_eq!(p.operations.len(), 4);
        assert_eq!(p.operations[0].outcome, Outcome::Ok);
        assert_eq!(p.operations[0].value, json!(3));
        assert_eq!(p.operations[0].ret(), 2);
        assert_eq!(p.operations[1].outcome, Outcome::Info);
        assert_eq!(
            p.operations[1].value,
            json!(3),
            "info keeps the invoke's value"
        );
        assert_eq!(p.operations[1].ret(), usize::MAX);
        assert_eq!(p.operations[2].outcome, Outcome::Fail);
        assert_eq!(
            p.operations[3].outcome,
            Outcome::Info,
            "open at end is info"
        );
    }

    #[test]
    fn take_pairs_moves_what_pair_copies() {
        use EventType::*;
        let mut h = History {
            events: vec![
                ev(1, 0, Invoke, "read", Value::Null),
                ev(2, 1, Invoke, "write", json!({"v": 3})),
                ev(3, 0, Ok, "read", json!([3])),
                ev(4, 1, Info, "write", json!("timed-out")),
                ev(5, 2, Invoke, "cas", json!([1, 2])),
                ev(6, 2, Fail, "cas", json!("no")),
                ev(7, 3, Invoke, "write", json!(9)),
            ],
        };
        h.events[2].key = Some(Box::new(json!("k")));
        h.events[4].key = Some(Box::new(json!(5)));
        let mut n = ev(8, 0, Info, "start", json!("partition"));
        n.process = Process::Nemesis;
        h.events.push(n);
        let copied = h.pair().unwrap();
        let moved = h.take_pairs(&crate::Deadline::none()).unwrap().unwrap();
        assert_eq!(copied, moved);
        assert_eq!(
            moved.operations[0].key.as_deref(),
            Some(&json!("k")),
            "key of the ok"
        );
        // Invocations and ok completions gave their values; a fail's or
        // an info's own value is not the operation's and stays.
        for i in [0, 1, 2, 4, 6] {
            assert!(h.events[i].value.is_null(), "event {i}");
        }
        assert_eq!(h.events[3].value, json!("timed-out"));
        assert_eq!(h.events[0].f, "read", "an invocation keeps its f");
        assert_eq!(h.events[5].value, json!("no"));
        assert_eq!(h.events[7].value, json!("partition"), "nemesis untouched");
    }

    #[test]
    fn take_pairs_stops_at_the_deadline_leaving_the_history_whole() {
        let mut h = History {
            events: (0..100_000)
                .flat_map(|i| {
                    [
                        ev(2 * i, i as u64, EventType::Invoke, "w", json!(i)),
                        ev(2 * i + 1, i as u64, EventType::Ok, "w", json!(i)),
                    ]
                })
                .collect(),
        };
        let before = h.clone();
        let dl = crate::Deadline::after(Some(std::time::Duration::ZERO));
        assert_eq!(h.take_pairs(&dl).unwrap(), None);
        assert!(dl.ran_out());
        assert_eq!(h, before);
    }

    #[test]
    fn ok_without_invoke_names_the_line() {
        let h = History {
            events: vec![ev(7, 4, EventType::Ok, "read", json!(1))],
        };
        let e = h.pair().unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.message.contains("no matching invoke"), "{e}");
    }

    #[test]
    fn double_invoke_is_an_error() {
        let h = History {
            events: vec![
                ev(1, 4, EventType::Invoke, "read", Value::Null),
                ev(2, 4, EventType::Invoke, "read", Value::Null),
            ],
        };
        assert_eq!(h.pair().unwrap_err().line, 2);
    }

    #[test]
    fn nemesis_events_are_not_operations() {
        let mut n = ev(1, 0, EventType::Info, "start", json!("partition"));
        n.process = Process::Nemesis;
        let h = History { events: vec![n] };
        let p = h.pair().unwrap();
        assert!(p.operations.is_empty());
        assert_eq!(p.nemesis, vec![0]);
    }
}
