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

/// One line of a history, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The `index` field when the file had one.
    pub index: Option<u64>,
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
            index: None,
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
    pub key: Option<Value>,
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
    /// reports; it does not bound the operation).
    pub info_at: Option<usize>,
}

impl Operation {
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

/// Where one operation's events are: pairing's result before any value is
/// copied or moved. 16 bytes (positions as `u32`, `NONE` for absent): one
/// per operation, alive beside the events and the operations while they
/// are built, so it counts at 10 M operations.
#[derive(Clone, Copy)]
struct Slot {
    invoke: u32,
    complete: u32,
    info_at: u32,
    outcome: Outcome,
}

impl Slot {
    const NONE: u32 = u32::MAX;

    fn invoke(&self) -> usize {
        self.invoke as usize
    }
    fn complete(&self) -> Option<usize> {
        (self.complete != Self::NONE).then_some(self.complete as usize)
    }
    fn info_at(&self) -> Option<usize> {
        (self.info_at != Self::NONE).then_some(self.info_at as usize)
    }
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
        let (slots, nemesis) = self.slots(&crate::Deadline::none())?.expect("no deadline");
        let operations = slots
            .iter()
            .enumerate()
            .map(|(id, s)| {
                let inv = &self.events[s.invoke()];
                let done = s.complete().map(|c| &self.events[c]);
                let ok = s.outcome == Outcome::Ok;
                Operation {
                    id,
                    process: inv.process.clone(),
                    f: inv.f.clone(),
                    key: match (&inv.key, done) {
                        (None, Some(d)) if ok => d.key.as_deref().cloned(),
                        (k, _) => k.as_deref().cloned(),
                    },
                    invoke_value: inv.value.clone(),
                    value: match done {
                        Some(d) if ok => d.value.clone(),
                        _ => inv.value.clone(),
                    },
                    outcome: s.outcome,
                    invoke: s.invoke(),
                    complete: s.complete(),
                    info_at: s.info_at(),
                }
            })
            .collect();
        Ok(Paired {
            operations,
            nemesis,
        })
    }

    /// [`History::pair`] without copying what it need not, within
    /// `deadline`: each client event's `value` and `key` move into its
    /// operation, so afterwards client events keep only what and where and
    /// when they happened (process, type, `f`, index, time, node, error,
    /// line; `value` null, `key` none). The nemesis's
    /// events and `info` completions are untouched. Only a failed or
    /// unknown operation's `value` is a copy (of its invocation's).
    ///
    /// `Ok(None)` when the deadline passed while pairing (checked every
    /// [`crate::Deadline::CHECK_EVERY`] events); the history is then left
    /// as it was.
    pub fn take_pairs(
        &mut self,
        deadline: &crate::Deadline,
    ) -> Result<Option<Paired>, HistoryError> {
        let Some((slots, nemesis)) = self.slots(deadline)? else {
            return Ok(None);
        };
        let mut operations = Vec::with_capacity(slots.len());
        for (id, s) in slots.iter().enumerate() {
            let ok = s.outcome == Outcome::Ok;
            let (mut key, value, f) = match s.complete() {
                Some(c) => {
                    let d = &mut self.events[c];
                    // Pairing checked the completion's `f` is the invocation's.
                    let f = d.f.clone();
                    if ok {
                        (d.key.take().map(|k| *k), std::mem::take(&mut d.value), f)
                    } else {
                        (None, Value::Null, f)
                    }
                }
                None => (None, Value::Null, self.events[s.invoke()].f.clone()),
            };
            let inv = &mut self.events[s.invoke()];
            if let Some(k) = inv.key.take() {
                key = Some(*k);
            }
            let invoke_value = std::mem::take(&mut inv.value);
            let value = if ok { value } else { invoke_value.clone() };
            operations.push(Operation {
                id,
                process: inv.process.clone(),
                f,
                key,
                invoke_value,
                value,
                outcome: s.outcome,
                invoke: s.invoke(),
                complete: s.complete(),
                info_at: s.info_at(),
            });
        }
        Ok(Some(Paired {
            operations,
            nemesis,
        }))
    }

    /// Pairing's structure (see [`History::pair`]), values untouched;
    /// `None` if `deadline` passed.
    #[allow(clippy::type_complexity)]
    fn slots(
        &self,
        deadline: &crate::Deadline,
    ) -> Result<Option<(Vec<Slot>, Vec<usize>)>, HistoryError> {
        if self.events.len() >= Slot::NONE as usize {
            return Err(HistoryError {
                line: self.events.last().map_or(0, |e| e.line),
                message: format!(
                    "{} events: more than this checker pairs ({})",
                    self.events.len(),
                    Slot::NONE - 1
                ),
            });
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(self.events.len() / 2 + 1);
        let mut nemesis = Vec::new();
        // process -> index into slots of its open operation
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
                    let id = slots.len();
                    if let Some(prev) = open.insert(&ev.process, id) {
                        let prev = &self.events[slots[prev].invoke()];
                        return Err(HistoryError {
                            line: ev.line,
                            message: format!(
                                "process {} invokes `{}` while its `{}` invoked on line {} is still open \
                                 (a process runs one operation at a time; after `info` it must take a new id)",
                                ev.process, ev.f, prev.f, prev.line
                            ),
                        });
                    }
                    slots.push(Slot {
                        invoke: pos as u32,
                        complete: Slot::NONE,
                        info_at: Slot::NONE,
                        outcome: Outcome::Info,
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
                    let s = &mut slots[id];
                    let inv = &self.events[s.invoke()];
                    if inv.f != ev.f {
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
                            s.outcome = Outcome::Ok;
                            s.complete = pos as u32;
                        }
                        EventType::Fail => {
                            s.outcome = Outcome::Fail;
                            s.complete = pos as u32;
                        }
                        EventType::Info => {
                            s.outcome = Outcome::Info;
                            s.info_at = pos as u32;
                        }
                        EventType::Invoke => unreachable!("handled above"),
                    }
                }
            }
        }
        Ok(Some((slots, nemesis)))
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
        let (e, o) = (std::mem::size_of::<Event>(), std::mem::size_of::<Operation>());
        eprintln!("Event {e} B, Operation {o} B, Process {} B", std::mem::size_of::<Process>());
        assert!(e <= 128, "Event is {e} bytes");
        assert!(o <= 176, "Operation is {o} bytes");
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
        assert_eq!(moved.operations[0].key, Some(json!("k")), "key of the ok");
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
