//! Where recorded events go: the history file, or memory for tests.

use faultline_checker::{Event, EventType, Process, Value};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Receives every event of a run, in the order they happened (invocations
/// before the call is made, completions after it returned). The runner
/// calls it from one task at a time, already holding its lock.
pub trait HistorySink: Send {
    /// Stores one event. An error stops the run (a history with holes
    /// cannot be checked), and is returned from `run_test`.
    fn record(&mut self, event: &Event) -> io::Result<()>;

    /// Bytes of JSON Lines recorded so far, where the sink knows (the
    /// history's size, reported in `results.json`). Default: unknown.
    fn bytes_written(&self) -> Option<u64> {
        None
    }
}

/// Counts what passes through to `inner`.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `event` as [`write_jsonl`] does and says how many bytes that was.
fn write_counted(out: &mut impl Write, event: &Event) -> io::Result<u64> {
    let mut c = Counting { inner: out, n: 0 };
    write_jsonl(&mut c, event)?;
    Ok(c.n)
}

/// Writes the history as JSON Lines (DESIGN.md § History), flushing after
/// every event so a killed controller still leaves a checkable prefix.
pub struct JsonlSink<W: Write + Send> {
    out: BufWriter<W>,
    bytes: u64,
}

impl JsonlSink<File> {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> io::Result<JsonlSink<File>> {
        Ok(JsonlSink::new(File::create(path)?))
    }
}

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(out: W) -> JsonlSink<W> {
        JsonlSink {
            out: BufWriter::new(out),
            bytes: 0,
        }
    }
}

impl<W: Write + Send> HistorySink for JsonlSink<W> {
    fn record(&mut self, event: &Event) -> io::Result<()> {
        self.bytes += write_counted(&mut self.out, event)?;
        self.out.flush()
    }

    fn bytes_written(&self) -> Option<u64> {
        Some(self.bytes)
    }
}

/// The JSONL form of one event, fields in the order DESIGN.md shows:
/// `{"index":0,"time":1234567,"process":3,"type":"invoke","f":"write","value":2,"node":"n2"}`
/// plus `key` and `error` when present.
#[derive(Serialize)]
struct Line<'a> {
    index: Option<u64>,
    time: Option<u64>,
    process: Value,
    #[serde(rename = "type")]
    kind: EventType,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a Value>,
    value: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
}

/// Writes `event` as one JSON line (with the trailing newline).
pub fn write_jsonl(out: &mut impl Write, event: &Event) -> io::Result<()> {
    let line = Line {
        index: event.index.get(),
        time: event.time,
        process: event.process.to_value(),
        kind: event.kind,
        f: &event.f,
        key: event.key.as_deref(),
        value: &event.value,
        node: event.node.as_deref(),
        error: event.error.as_deref(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// Reads one line written by [`write_jsonl`] back into an [`Event`]
/// (`line` is the 1-based line number to report errors with). The full
/// parser, with Jepsen's quirks, is faultline-checker's; this one reads
/// exactly what the runner writes.
pub fn parse_jsonl(text: &str, line: usize) -> Result<Event, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("line {line}: {e}"))?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .and_then(EventType::parse)
        .ok_or_else(|| format!("line {line}: missing or bad `type`"))?;
    let process = match v.get("process") {
        Some(Value::Number(n)) => Process::Client(
            n.as_u64()
                .ok_or_else(|| format!("line {line}: bad process"))?,
        ),
        Some(Value::String(s)) if s == "nemesis" => Process::Nemesis,
        Some(Value::String(s)) => Process::Named(s.into()),
        _ => return Err(format!("line {line}: missing `process`")),
    };
    Ok(Event {
        index: v.get("index").and_then(Value::as_u64).into(),
        time: v.get("time").and_then(Value::as_u64),
        process,
        kind,
        f: v.get("f").and_then(Value::as_str).unwrap_or("").into(),
        key: v.get("key").cloned().map(Box::new),
        value: v.get("value").cloned().unwrap_or(Value::Null),
        node: v.get("node").and_then(Value::as_str).map(Into::into),
        error: v.get("error").cloned().map(Box::new),
        line,
    })
}

/// Keeps events in memory. Clones share the same list, so keep one clone
/// and pass the other to `run_test`.
#[derive(Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
    /// What the events would take as JSON Lines.
    bytes: Arc<AtomicU64>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A copy of the events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl HistorySink for MemorySink {
    fn record(&mut self, event: &Event) -> io::Result<()> {
        self.events
            .lock()
            .map_err(|_| io::Error::other("memory sink poisoned"))?
            .push(event.clone());
        let n = write_counted(&mut io::sink(), event)?;
        self.bytes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn bytes_written(&self) -> Option<u64> {
        Some(self.bytes.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jsonl_round_trip() {
        let ev = Event {
            index: Some(4).into(),
            time: Some(1234),
            process: Process::Client(3),
            kind: EventType::Info,
            f: "write".into(),
            key: Some(Box::new(json!(7))),
            value: json!(2),
            node: Some("n2".into()),
            error: Some(Box::new(json!("timeout"))),
            line: 5,
        };
        let mut buf = Vec::new();
        write_jsonl(&mut buf, &ev).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(
                r#"{"index":4,"time":1234,"process":3,"type":"info","f":"write","key":7"#
            ),
            "{text}"
        );
        assert_eq!(parse_jsonl(text.trim_end(), 5).unwrap(), ev);
        // Both sinks count the bytes of the line.
        let mut j = JsonlSink::new(Vec::new());
        let mut m = MemorySink::new();
        j.record(&ev).unwrap();
        m.record(&ev).unwrap();
        assert_eq!(j.bytes_written(), Some(text.len() as u64));
        assert_eq!(m.bytes_written(), Some(text.len() as u64));
    }
}
