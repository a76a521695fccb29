//! faultline JSON Lines: one event object per line (DESIGN.md, "History").
//!
//! `{"index":0,"time":1234567,"process":3,"type":"invoke","f":"write","value":2,"node":"n2"}`
//!
//! `type`, `process` and `f` are required; `index`, `time`, `value`, `key`,
//! `node`, `error` are optional; other fields are ignored; blank lines are
//! skipped.

use super::InputError;
use crate::history::{Event, EventType, History, Process, Sym, Value};
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::io::BufRead;

/// The wire shape of one line. Everything is optional here so that a missing
/// field gets our message naming it, not serde's.
#[derive(Deserialize)]
struct Line<'a> {
    index: Option<Value>,
    time: Option<Value>,
    #[serde(borrow)]
    process: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    f: Option<Text<'a>>,
    value: Option<Value>,
    key: Option<Value>,
    #[serde(borrow)]
    node: Option<Text<'a>>,
    error: Option<Value>,
}

/// A field that should be a string: borrowed from the line when it has no
/// escapes, so interning a name allocates nothing; anything else is kept
/// as a `Value` for the error message.
enum Text<'a> {
    Str(Cow<'a, str>),
    Other(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Text<'de>, E> {
        Ok(Text::Other(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Text<'de>, E> {
        Ok(Text::Other(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Text<'de>, E> {
        Ok(Text::Other(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Text<'de>, E> {
        Ok(Text::Other(Value::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Text<'de>, E> {
        Ok(Text::Other(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Text::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Text::Other)
    }
}

/// Parses a whole JSONL history.
pub fn parse<R: BufRead>(r: R) -> Result<History, InputError> {
    let events = events(r).collect::<Result<Vec<_>, _>>()?;
    Ok(History { events })
}

/// Streams the events of a JSONL history, one line at a time; stops after
/// the first error.
pub fn events<R: BufRead>(r: R) -> Events<R> {
    Events {
        r,
        buf: Vec::with_capacity(256),
        line: 0,
        failed: false,
    }
}

/// Iterator over the events of a JSONL history.
pub struct Events<R> {
    r: R,
    /// The current line's bytes, reused across lines.
    buf: Vec<u8>,
    line: usize,
    failed: bool,
}

impl<R: BufRead> Iterator for Events<R> {
    type Item = Result<Event, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            self.buf.clear();
            let r = match self.r.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {
                    self.line += 1;
                    parse_line(&self.buf, self.line)
                }
                Err(e) => Err(InputError::io(self.line + 1, &e)),
            };
            match r {
                Ok(None) => {}
                Ok(Some(ev)) => return Some(Ok(ev)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Parses one line (with or without its `\n`); `None` for a blank line.
pub fn parse_line(bytes: &[u8], line: usize) -> Result<Option<Event>, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|e| InputError::not_utf8(line, e))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let raw: Line = serde_json::from_str(text).map_err(|e| json_error(line, &e))?;
    let kind = match raw.kind {
        None => return Err(missing(line, "type")),
        Some(k) => EventType::parse(&k)
            .filter(|_| !k.starts_with(':'))
            .ok_or_else(|| {
                InputError::new(
                    line,
                    format!(
                        "expected \"type\" to be one of invoke, ok, fail, info, found {}",
                        Value::from(k.as_ref())
                    ),
                )
            })?,
    };
    let process = match raw.process {
        None => return Err(missing(line, "process")),
        Some(p) => process(line, p)?,
    };
    let f = match raw.f {
        None => return Err(missing(line, "f")),
        Some(Text::Str(s)) => Sym::new(&s),
        Some(Text::Other(other)) => return Err(expected(line, "f", "a string", &other)),
    };
    let node = match raw.node {
        None | Some(Text::Other(Value::Null)) => None,
        Some(Text::Str(s)) => Some(Sym::new(&s)),
        Some(Text::Other(other)) => return Err(expected(line, "node", "a string", &other)),
    };
    Ok(Some(Event {
        index: uint(line, "index", raw.index)?.into(),
        time: uint(line, "time", raw.time)?,
        process,
        kind,
        f,
        key: raw.key.map(Box::new),
        value: raw.value.unwrap_or(Value::Null),
        node,
        error: raw.error.filter(|e| !e.is_null()).map(Box::new),
        line,
    }))
}

fn process(line: usize, p: Text) -> Result<Process, InputError> {
    match p {
        Text::Other(v @ Value::Number(_)) => v
            .as_u64()
            .map(Process::Client)
            .ok_or_else(|| expected(line, "process", "a non-negative integer or a string", &v)),
        Text::Str(s) if s == "nemesis" => Ok(Process::Nemesis),
        Text::Str(s) => Ok(Process::Named(Sym::new(&s))),
        Text::Other(other) => Err(expected(
            line,
            "process",
            "a non-negative integer or a string",
            &other,
        )),
    }
}

fn uint(line: usize, field: &str, v: Option<Value>) -> Result<Option<u64>, InputError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(ref n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(other) => Err(expected(line, field, "a non-negative integer", &other)),
    }
}

fn missing(line: usize, field: &str) -> InputError {
    InputError::new(line, format!("missing required field \"{field}\""))
}

fn expected(line: usize, field: &str, what: &str, found: &Value) -> InputError {
    InputError::new(
        line,
        format!("expected \"{field}\" to be {what}, found {found}"),
    )
}

/// serde_json's message without its own ` at line 1 column N` suffix: the
/// column goes into the error, the line is ours.
fn json_error(line: usize, e: &serde_json::Error) -> InputError {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    InputError::at(line, e.column(), format!("invalid JSON: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(s: &str) -> Result<Event, InputError> {
        let h = parse(s.as_bytes())?;
        assert_eq!(h.events.len(), 1);
        Ok(h.events.into_iter().next().unwrap())
    }

    #[test]
    fn parses_the_design_example() {
        let e = one(
            r#"{"index":0,"time":1234567,"process":3,"type":"invoke","f":"write","value":2,"node":"n2"}"#,
        )
        .unwrap();
        assert_eq!(e.index, Some(0));
        assert_eq!(e.time, Some(1234567));
        assert_eq!(e.process, Process::Client(3));
        assert_eq!(e.kind, EventType::Invoke);
        assert_eq!(e.f, "write");
        assert_eq!(e.value, json!(2));
        assert_eq!(e.node.as_deref(), Some("n2"));
        assert_eq!(e.line, 1);
    }

    #[test]
    fn optional_and_extra_fields() {
        let h = parse(
            &b"\n{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\",\"extra\":[1]}\n\n\
               {\"process\":\"c1\",\"type\":\"ok\",\"f\":\"get\",\"key\":\"k\",\"value\":\"v\",\"error\":\"e\"}"[..],
        )
        .unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[0].process, Process::Nemesis);
        assert_eq!(h.events[0].value, Value::Null);
        assert_eq!(h.events[0].line, 2);
        assert_eq!(h.events[1].process, Process::Named("c1".into()));
        assert_eq!(h.events[1].key.as_deref(), Some(&json!("k")));
        assert_eq!(h.events[1].error.as_deref(), Some(&json!("e")));
        assert_eq!(h.events[1].line, 4);
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = parse(&b"{\"process\":1,\"type\":\"invoke\",\"f\":\"r\"}\n{\"process\":1,\"type\":\"okay\",\"f\":\"r\"}"[..])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: expected \"type\" to be one of invoke, ok, fail, info, found \"okay\""
        );
        for (field, s) in [
            ("type", r#"{"process":1,"f":"r"}"#),
            ("process", r#"{"type":"ok","f":"r"}"#),
            ("f", r#"{"type":"ok","process":1}"#),
        ] {
            let e = one(s).unwrap_err();
            assert_eq!(e.message, format!("missing required field \"{field}\""));
            assert_eq!(e.line, 1);
        }
        let e = one(r#"{"type":"ok","process":-1,"f":"r"}"#).unwrap_err();
        assert!(e.message.contains("non-negative"), "{e}");
        let e = one(r#"{"type":"ok","process":1,"f":"r","time":"x"}"#).unwrap_err();
        assert!(e.message.contains("\"time\""), "{e}");
        let e = one(r#"{"type":1,"process":1,"f":"r"}"#).unwrap_err();
        assert!(e.message.contains("invalid type: integer `1`"), "{e}");
        let e = one(r#"{"type":"ok","process":1,"#).unwrap_err();
        assert!(e.message.starts_with("invalid JSON: EOF"), "{e}");
        assert!(e.column.is_some());
    }

    #[test]
    fn non_utf8_names_the_line() {
        let e = parse(&b"\n\n{\"type\":\"ok\",\"process\":1,\"f\":\"r\xff\"}\n"[..]).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("UTF-8"), "{e}");
    }
}
