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
    Named(String),
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
    pub f: String,
    /// The key, for formats that carry it beside the value (Porcupine kv,
    /// faultline JSONL's optional `key`). Used to split a history by key.
    pub key: Option<Value>,
    pub value: Value,
    /// The node the client talked to, when recorded.
    pub node: Option<String>,
    /// Diagnostic error of a completion, when recorded.
    pub error: Option<Value>,
    /// 1-based line of the source where this event starts.
    pub line: usize,
}

impl Event {
    /// An event with only what every event has; the optional fields (index,
    /// time, key, node, error) start empty and line at 0 (not from a file).
    pub fn new(process: Process, kind: EventType, f: impl Into<String>, value: Value) -> Event {
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
    pub f: String,
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

impl History {
    /// Pairs invocations with completions, following Jepsen's rules.
    ///
    /// Errors: an `ok` or `fail` without an open invocation of its process,
    /// and an invocation by a process whose previous operation is still open
    /// (a process is single-threaded by definition). An `info` with no open
    /// invocation is a note (Knossos ignores those) and is skipped.
    pub fn pair(&self) -> Result<Paired, HistoryError> {
        use std::collections::HashMap;
        let mut out = Paired::default();
        // process -> index into out.operations of its open operation
        let mut open: HashMap<&Process, usize> = HashMap::new();
        for (pos, ev) in self.events.iter().enumerate() {
            if ev.process.is_nemesis() {
                out.nemesis.push(pos);
                continue;
            }
            match ev.kind {
                EventType::Invoke => {
                    if let Some(&prev) = open.get(&ev.process) {
                        let prev_line = self.events[out.operations[prev].invoke].line;
                        return Err(HistoryError {
                            line: ev.line,
                            message: format!(
                                "process {} invokes `{}` while its `{}` invoked on line {} is still open \
                                 (a process runs one operation at a time; after `info` it must take a new id)",
                                ev.process, ev.f, out.operations[prev].f, prev_line
                            ),
                        });
                    }
                    let id = out.operations.len();
                    out.operations.push(Operation {
                        id,
                        process: ev.process.clone(),
                        f: ev.f.clone(),
                        key: ev.key.clone(),
                        invoke_value: ev.value.clone(),
                        value: ev.value.clone(),
                        outcome: Outcome::Info,
                        invoke: pos,
                        complete: None,
                        info_at: None,
                    });
                    open.insert(&ev.process, id);
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
                    let op = &mut out.operations[id];
                    if op.f != ev.f {
                        return Err(HistoryError {
                            line: ev.line,
                            message: format!(
                                "`{kind}` completion of `{}` by process {} does not match its invoke of `{}` on line {}",
                                ev.f, ev.process, op.f, self.events[op.invoke].line
                            ),
                        });
                    }
                    match kind {
                        EventType::Ok => {
                            op.outcome = Outcome::Ok;
                            op.complete = Some(pos);
                            op.value = ev.value.clone();
                            if op.key.is_none() {
                                op.key = ev.key.clone();
                            }
                        }
                        EventType::Fail => {
                            op.outcome = Outcome::Fail;
                            op.complete = Some(pos);
                        }
                        EventType::Info => {
                            op.outcome = Outcome::Info;
                            op.info_at = Some(pos);
                        }
                        EventType::Invoke => unreachable!("handled above"),
                    }
                }
            }
        }
        Ok(out)
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
