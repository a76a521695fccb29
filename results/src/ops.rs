//! Operations as the renderers see them: invocations paired with whatever
//! completion they got, tolerantly.
//!
//! `History::pair` rejects malformed histories (the checker must), but a
//! report of a broken or killed run should still draw what is there, so this
//! pairing never fails: a completion with no open invocation is skipped, and
//! an invocation that replaces an open one leaves the old one open.

use faultline_checker::{EventType, History, Outcome, Process};
use std::collections::HashMap;

/// One client operation for drawing and counting.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpan {
    /// Event position of the invocation.
    pub invoke: usize,
    /// Event position of its completion (`ok`, `fail` or `info`); `None`
    /// when it was still open at the end of the history.
    pub complete: Option<usize>,
    /// `Info` for both an `info` completion and an open invocation.
    pub outcome: Outcome,
}

/// Client operations in invocation order.
pub fn spans(history: &History) -> Vec<OpSpan> {
    let mut out: Vec<OpSpan> = Vec::new();
    let mut open: HashMap<&Process, usize> = HashMap::new();
    for (pos, ev) in history.events.iter().enumerate() {
        if ev.process.is_nemesis() {
            continue;
        }
        let outcome = match ev.kind {
            EventType::Invoke => {
                open.insert(&ev.process, out.len());
                out.push(OpSpan {
                    invoke: pos,
                    complete: None,
                    outcome: Outcome::Info,
                });
                continue;
            }
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            EventType::Info => Outcome::Info,
        };
        if let Some(i) = open.remove(&ev.process) {
            out[i].complete = Some(pos);
            out[i].outcome = outcome;
        }
    }
    out
}

/// `ok`, `fail`, `info` as text.
pub fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::Event;
    use serde_json::Value;

    fn ev(p: Process, kind: EventType) -> Event {
        Event {
            index: Default::default(),
            time: None,
            process: p,
            kind,
            f: "read".into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
            line: 0,
        }
    }

    #[test]
    fn pairs_tolerantly() {
        use EventType::*;
        let h = History {
            events: vec![
                ev(Process::Client(1), Ok), // stray completion: skipped
                ev(Process::Client(0), Invoke),
                ev(Process::Nemesis, Info),
                ev(Process::Client(1), Invoke),
                ev(Process::Client(0), Fail),
                ev(Process::Client(1), Info),
                ev(Process::Client(2), Invoke),
            ],
        };
        let s = spans(&h);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].invoke, s[0].complete, s[0].outcome),
            (1, Some(4), Outcome::Fail)
        );
        assert_eq!((s[1].complete, s[1].outcome), (Some(5), Outcome::Info));
        assert_eq!((s[2].complete, s[2].outcome), (None, Outcome::Info));
    }
}
