//! Porcupine's Jepsen etcd console logs (`corpus/FORMATS.md`, `porcupine-etcd`).
//!
//! Only lines `INFO<ws>jepsen.util<ws>-<ws><process><ws><type><ws><f><ws><value>`
//! are events (line order is event order); every other line is ignored.
//! Values: `nil`, integers, `[3 0]`, keywords such as `:timed-out`.
//!
//! Timeouts: `:info … :timed-out` becomes an `info` event with a null value
//! (pairing keeps the invocation's argument), and `:fail :read :timed-out`
//! becomes an `info` event too: a read that timed out is unknown, not failed.

use super::InputError;
use crate::history::{Event, EventType, History, Process, Value};
use std::io::BufRead;

/// Parses a whole Porcupine etcd log.
pub fn parse_etcd<R: BufRead>(mut r: R) -> Result<History, InputError> {
    let mut events = Vec::new();
    let mut buf = Vec::with_capacity(128);
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| InputError::io(line_no + 1, &e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = std::str::from_utf8(&buf).map_err(|e| InputError::not_utf8(line_no, e))?;
        if let Some(ev) = etcd_line(text, line_no)? {
            events.push(ev);
        }
    }
    Ok(History { events })
}

/// Splits off the first blank-separated word.
fn word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(|c: char| c.is_whitespace()).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Parses one line; `None` when it is not an event line.
///
/// A line is an event line when it starts `INFO jepsen.util -` and the next
/// word is a process (an integer or `:nemesis`); Jepsen also logs prose under
/// `jepsen.util`, which is skipped. From there on the line must be well formed.
pub fn etcd_line(text: &str, line: usize) -> Result<Option<Event>, InputError> {
    let Some(("INFO", rest)) = word(text) else {
        return Ok(None);
    };
    let Some(("jepsen.util", rest)) = word(rest) else {
        return Ok(None);
    };
    let Some(("-", rest)) = word(rest) else {
        return Ok(None);
    };
    let Some((p, rest)) = word(rest) else {
        return Ok(None);
    };
    let process = match p {
        ":nemesis" => Process::Nemesis,
        _ => match p.parse::<u64>() {
            Ok(n) => Process::Client(n),
            Err(_) => return Ok(None),
        },
    };
    let Some((t, rest)) = word(rest) else {
        return Err(InputError::new(
            line,
            "expected a type (:invoke, :ok, :fail or :info) after the process",
        ));
    };
    let kind = t
        .strip_prefix(':')
        .and_then(EventType::parse)
        .ok_or_else(|| {
            InputError::new(
                line,
                format!("expected the type to be one of :invoke, :ok, :fail, :info, found `{t}`"),
            )
        })?;
    let Some((f, rest)) = word(rest) else {
        return Err(InputError::new(
            line,
            "expected an operation (:read, :write, :cas) after the type",
        ));
    };
    let Some(f) = f.strip_prefix(':').filter(|f| !f.is_empty()) else {
        return Err(InputError::new(
            line,
            format!("expected the operation to be a keyword such as :read, found `{f}`"),
        ));
    };
    let raw = rest.trim();
    let mut value = value(raw).ok_or_else(|| {
        InputError::new(
            line,
            format!("expected a value (nil, an integer, [a b] or a keyword), found `{raw}`"),
        )
    })?;
    let timed_out = value.as_str() == Some("timed-out");
    let kind = match kind {
        // FORMATS.md: timed-out reads are logged as failures but are unknown.
        EventType::Fail if timed_out && f == "read" => EventType::Info,
        k => k,
    };
    if kind == EventType::Info && timed_out {
        value = Value::Null;
    }
    Ok(Some(Event {
        index: crate::OptU64::NONE,
        time: None,
        process,
        kind,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: timed_out.then(|| Box::new(Value::from("timed-out"))),
        line,
    }))
}

/// `nil`, an integer, a keyword (as a string without `:`), or `[…]` of those.
fn value(s: &str) -> Option<Value> {
    if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return inner
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array);
    }
    scalar(s)
}

fn scalar(s: &str) -> Option<Value> {
    if s == "nil" {
        return Some(Value::Null);
    }
    if let Some(k) = s.strip_prefix(':') {
        return (!k.is_empty()).then(|| Value::from(k));
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(Value::from(n));
    }
    s.parse::<u64>().ok().map(Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(s: &str) -> Event {
        etcd_line(s, 1).unwrap().unwrap()
    }

    #[test]
    fn event_lines() {
        let e = ev("INFO  jepsen.util - 3\t:invoke\t:cas\t[3 0]\n");
        assert_eq!(e.process, Process::Client(3));
        assert_eq!(e.kind, EventType::Invoke);
        assert_eq!(e.f, "cas");
        assert_eq!(e.value, json!([3, 0]));
        let e = ev("INFO  jepsen.util - 12  :ok    :read   nil");
        assert_eq!(e.value, Value::Null);
        assert_eq!(e.kind, EventType::Ok);
        let e = ev("INFO jepsen.util - 0 :ok :read 4");
        assert_eq!(e.value, json!(4));
    }

    #[test]
    fn timeouts() {
        let e = ev("INFO  jepsen.util - 1\t:info\t:write\t:timed-out");
        assert_eq!((e.kind, e.value.clone()), (EventType::Info, Value::Null));
        assert_eq!(e.error.as_deref(), Some(&json!("timed-out")));
        let e = ev("INFO  jepsen.util - 1\t:fail\t:read\t:timed-out");
        assert_eq!((e.kind, e.value), (EventType::Info, Value::Null));
        let e = ev("INFO  jepsen.util - 1\t:fail\t:cas\t[1 2]");
        assert_eq!(e.kind, EventType::Fail);
    }

    #[test]
    fn other_lines_are_ignored() {
        for s in [
            "",
            "DEBUG something",
            "INFO  jepsen.core - Run complete",
            "INFO  jepsen.util - Waiting for nodes",
        ] {
            assert_eq!(etcd_line(s, 1).unwrap(), None, "{s}");
        }
    }

    #[test]
    fn bad_event_lines_are_errors() {
        for s in [
            "INFO  jepsen.util - 1\t:okay\t:read\tnil",
            "INFO  jepsen.util - 1\t:ok",
            "INFO  jepsen.util - 1\t:ok\tread\tnil",
            "INFO  jepsen.util - 1\t:ok\t:read\t[1 x]",
            "INFO  jepsen.util - 1\t:ok\t:read\t",
        ] {
            let e = etcd_line(s, 7).unwrap_err();
            assert_eq!(e.line, 7, "{s}");
        }
        let e =
            parse_etcd(&b"INFO  jepsen.util - 1\t:ok\t:read\tnil\nINFO \xff\n"[..]).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
