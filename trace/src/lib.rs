//! The observation format of a faultline run, defined once: what a node
//! sent and received (a message trace with Lamport clocks) and what its
//! protocol did (role, term, leader, commit changes).
//!
//! Each node's file is JSON Lines, one [`Record`] per line, in the node's
//! directory of the run (`nodes/<node>/messages.jsonl`):
//!
//! ```text
//! {"node":"n1","lc":41,"at_ms":1796688000123,"kind":"send","to":"n2","type":"Prepare","summary":"ballot:{round:3,node:1},from:5"}
//! {"node":"n2","lc":44,"at_ms":1796688000124,"kind":"recv","from":"n1","sent_lc":41,"type":"Prepare","summary":"ballot:{round:3,node:1},from:5"}
//! {"node":"n1","lc":52,"at_ms":1796688000130,"kind":"event","event":"role","role":"leader","term":3,"leader":"n1","commit":40}
//! ```
//!
//! - `lc` is the node's Lamport clock at the record: a send ticks it and
//!   carries it on the wire; a receive sets it to `max(local, sent_lc) + 1`.
//!   So a receive always has a larger `lc` than its send, on any node.
//! - A send and its receive match on `(from, sent_lc, to)`; a `send` with no
//!   matching `recv` was dropped (queue full, peer down, partition) or is
//!   still in flight when the trace ended.
//! - `at_ms` is the node's wall clock (ms since the epoch), which clock
//!   faults move: order by `lc`, show `at_ms` alongside.
//! - `type` is the message's name in the protocol's words (the variant of
//!   its message enum: `Prepare`, `AppendEntries`, `Ack`), and `summary` its
//!   fields, cut to [`SUMMARY_CHARS`]; see [`describe`].
//!
//! The crate is data only (serde), so faultline-node, the checker-free
//! report code and `faultline hunt` share it without pulling in each other.

use serde::{Deserialize, Serialize};
use std::io::Write;

/// The per-node trace file's name, in the node's data dir and in the run's
/// `nodes/<node>/`.
pub const MESSAGES_FILE: &str = "messages.jsonl";

/// Longest `summary`, in characters (a cut one ends in `…`).
pub const SUMMARY_CHARS: usize = 120;

/// One line of a trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The node that wrote it (`n1`).
    pub node: String,
    /// The node's Lamport clock at this record.
    pub lc: u64,
    /// The node's wall clock, ms since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub body: Body,
}

/// What a [`Record`] says happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// The core sent a message (it may never arrive).
    Send {
        to: String,
        #[serde(rename = "type")]
        ty: String,
        summary: String,
    },
    /// The core received a message sent at the sender's clock `sent_lc`.
    Recv {
        from: String,
        sent_lc: u64,
        #[serde(rename = "type")]
        ty: String,
        summary: String,
    },
    /// A protocol event.
    Event(Observation),
}

/// What the protocol did, as its status shows it: a change of role, term
/// (Raft term, Paxos ballot round, Zab epoch), leader, or commit point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub event: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<u64>,
}

/// Kinds of [`Observation`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The node (re)started; its status as recovered.
    #[default]
    Start,
    /// Its role changed (`follower` → `candidate` → `leader`).
    Role,
    /// Its term/ballot/epoch changed, role unchanged.
    Term,
    /// Only the leader it follows changed.
    Leader,
    /// Its commit point advanced (recorded at most every
    /// [`COMMIT_EVERY_MS`], so a busy node does not flood the trace).
    Commit,
}

/// Least gap between two [`EventKind::Commit`] records of one node.
pub const COMMIT_EVERY_MS: u64 = 100;

impl Record {
    /// The message type of a send or receive.
    pub fn message_type(&self) -> Option<&str> {
        match &self.body {
            Body::Send { ty, .. } | Body::Recv { ty, .. } => Some(ty),
            Body::Event(_) => None,
        }
    }
}

/// A Lamport clock (Lamport 1978, "Time, Clocks, and the Ordering of
/// Events", IR1/IR2): every local event ticks it; a receive first moves it
/// past the sender's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lamport(u64);

impl Lamport {
    pub fn starting_at(lc: u64) -> Lamport {
        Lamport(lc)
    }

    /// The clock's current value.
    pub fn now(&self) -> u64 {
        self.0
    }

    /// A local event or a send (IR1): the new value.
    pub fn tick(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// A receive of a message sent at `sent` (IR2): `max(local, sent) + 1`.
    pub fn receive(&mut self, sent: u64) -> u64 {
        self.0 = self.0.max(sent) + 1;
        self.0
    }
}

/// Name and field summary of a protocol message, taken from its serde form
/// so no protocol lists its messages by hand: a message enum serializes
/// (serde's default, externally tagged) as `"Variant"` or
/// `{"Variant":{fields}}`, and the variant is the name in the paper's words.
///
/// Serialization stops after about `4 * SUMMARY_CHARS` bytes, so a message
/// carrying a thousand entries costs no more than a small one.
pub fn describe<M: Serialize>(msg: &M) -> (String, String) {
    let mut w = Bounded {
        buf: Vec::with_capacity(256),
        cap: 4 * SUMMARY_CHARS,
    };
    // An error here only means the budget ran out.
    let cut = serde_json::to_writer(&mut w, msg).is_err();
    let text = String::from_utf8_lossy(&w.buf);
    let (ty, rest) = if let Some(unit) = text.strip_prefix('"') {
        (unit.split('"').next().unwrap_or(""), "")
    } else if let Some(obj) = text.strip_prefix("{\"") {
        match obj.split_once("\":") {
            Some((ty, rest)) => (ty, rest),
            None => (obj.split('"').next().unwrap_or(""), ""),
        }
    } else {
        ("message", text.as_ref())
    };
    let ty = if ty.is_empty() { "message" } else { ty };
    let mut body: &str = rest;
    if !cut {
        // Drop the enum wrapper's closing brace, then the fields' braces.
        body = body.strip_suffix('}').unwrap_or(body);
        if let Some(b) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
            body = b;
        }
    } else {
        body = body.strip_prefix('{').unwrap_or(body);
    }
    let mut summary: String = body.chars().filter(|c| *c != '"').collect();
    if cut || summary.chars().count() > SUMMARY_CHARS {
        summary = summary.chars().take(SUMMARY_CHARS - 1).collect();
        summary.push('…');
    }
    (ty.to_string(), summary)
}

/// A writer that takes `cap` bytes and then fails, to stop a serializer.
struct Bounded {
    buf: Vec<u8>,
    cap: usize,
}

impl Write for Bounded {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(std::io::Error::other("summary budget"));
        }
        let n = room.min(b.len());
        self.buf.extend_from_slice(&b[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A trace line that is not a [`Record`].
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parses a trace file's text (`file` names it in errors). A last line
/// without its newline is a write cut short by `kill -9` and is skipped.
pub fn parse(text: &str, file: &str) -> Result<Vec<Record>, ParseError> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut out = Vec::new();
    for (i, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r = serde_json::from_str::<Record>(line).map_err(|e| ParseError {
            file: file.to_string(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    enum Msg {
        Prepare {
            ballot: u64,
            from: u64,
        },
        Promise {
            ballot: u64,
            accepted: Vec<(u64, u64, String)>,
        },
        Heartbeat,
        Ack(u64),
    }

    #[test]
    fn lamport_ticks_and_receives_past_the_sender() {
        let mut a = Lamport::default();
        let mut b = Lamport::starting_at(10);
        let sent = a.tick();
        assert_eq!(sent, 1);
        // IR2: the receiver's clock passes both its own and the sender's.
        assert_eq!(b.receive(sent), 11);
        let back = b.tick();
        assert_eq!(a.receive(back), 13);
        assert!(a.now() > back && b.now() > sent);
        // A receive of an old message still moves the clock forward.
        assert_eq!(a.receive(0), 14);
    }

    #[test]
    fn describe_names_the_variant_and_summarises_fields() {
        let (t, s) = describe(&Msg::Prepare { ballot: 3, from: 5 });
        assert_eq!((t.as_str(), s.as_str()), ("Prepare", "ballot:3,from:5"));
        let (t, s) = describe(&Msg::Heartbeat);
        assert_eq!((t.as_str(), s.as_str()), ("Heartbeat", ""));
        let (t, s) = describe(&Msg::Ack(7));
        assert_eq!((t.as_str(), s.as_str()), ("Ack", "7"));
        let (t, s) = describe(&Msg::Promise {
            ballot: 4,
            accepted: vec![(1, 2, "x".into())],
        });
        assert_eq!(t, "Promise");
        assert_eq!(s, "ballot:4,accepted:[[1,2,x]]");
    }

    #[test]
    fn describe_is_bounded_for_huge_messages() {
        let big = Msg::Promise {
            ballot: 9,
            accepted: (0..100_000).map(|i| (i, 1, "value".into())).collect(),
        };
        let (t, s) = describe(&big);
        assert_eq!(t, "Promise");
        assert_eq!(s.chars().count(), SUMMARY_CHARS);
        assert!(s.starts_with("ballot:9,accepted:[[0,1,value]"), "{s}");
        assert!(s.ends_with('…'));
    }

    #[test]
    fn records_round_trip_in_the_documented_shape() {
        let r = Record {
            node: "n1".into(),
            lc: 41,
            at_ms: 5,
            body: Body::Send {
                to: "n2".into(),
                ty: "Prepare".into(),
                summary: "ballot:3".into(),
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"node":"n1","lc":41,"at_ms":5,"kind":"send","to":"n2","type":"Prepare","summary":"ballot:3"}"#
        );
        let e = Record {
            node: "n1".into(),
            lc: 42,
            at_ms: 6,
            body: Body::Event(Observation {
                event: EventKind::Role,
                role: Some("leader".into()),
                term: Some(3),
                leader: Some("n1".into()),
                commit: None,
            }),
        };
        let text = format!(
            "{line}\n{}\n{{\"node\":",
            serde_json::to_string(&e).unwrap()
        );
        // The torn last line (no newline) is skipped.
        assert_eq!(parse(&text, "f").unwrap(), vec![r, e]);
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let e = parse("{\"node\":\"n1\"}\n", "nodes/n1/messages.jsonl").unwrap_err();
        assert!(
            e.to_string().starts_with("nodes/n1/messages.jsonl:1: "),
            "{e}"
        );
    }
}
