//! Checking histories against your own model: a bounded FIFO queue, which
//! is not one of the built-in models.
//!
//! `cargo run -p faultline-checker --example user_model`
//!
//! A library user implements [`Model`] (state, compile, step, describe) and
//! calls [`check_model`]: the same WGL search, time and memory budgets
//! (`unknown` when they run out), split by key, and minimal
//! counterexample as the built-in models get. `checker/tests/linear_user_model.rs`
//! checks this model's verdicts.
//!
//! Operations (one queue per `key`; no key is one queue):
//! - `offer x` completes with `true` (enqueued) or `false` (the queue was
//!   full: nothing changed);
//! - `poll` completes with the head, which it removes, or `null` when empty.

use faultline_checker::format::{self, Format};
use faultline_checker::linear::{LinearResult, Options, check_model};
use faultline_checker::{History, Operation, Outcome, Value, Verdict};
use std::process::ExitCode;

/// A FIFO queue holding at most `capacity` elements.
#[derive(Clone, Debug)]
pub struct BoundedQueue {
    pub capacity: usize,
}

/// A compiled queue operation. Elements are kept as their JSON text, so
/// any JSON value can be queued.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueOp {
    /// `offer x` that completed with this answer (`None`: unknown, the op
    /// timed out, so it enqueued if there was room, or never happened).
    Offer(String, Option<bool>),
    /// `poll` that returned this element.
    Poll(String),
    /// `poll` that returned `null`: the queue was empty.
    PollEmpty,
    /// `poll` whose answer is unknown: removes the head, if any.
    PollAny,
}

impl faultline_checker::model::Model for BoundedQueue {
    type State = Vec<String>;
    type Op = QueueOp;

    fn name(&self) -> String {
        format!("bounded-queue({})", self.capacity)
    }

    fn compile(&mut self, op: &Operation) -> Result<Option<QueueOp>, String> {
        let known = op.outcome == Outcome::Ok;
        match op.f.as_str() {
            "offer" => {
                let answer = match (known, &op.value) {
                    (false, _) => None,
                    (true, Value::Bool(b)) => Some(*b),
                    (true, v) => {
                        return Err(format!("offer must complete with true or false, not {v}"));
                    }
                };
                Ok(Some(QueueOp::Offer(op.invoke_value.to_string(), answer)))
            }
            "poll" => Ok(Some(match (known, &op.value) {
                (false, _) => QueueOp::PollAny,
                (true, Value::Null) => QueueOp::PollEmpty,
                (true, v) => QueueOp::Poll(v.to_string()),
            })),
            f => Err(format!(
                "a bounded queue has no operation `{f}` (expected offer, poll)"
            )),
        }
    }

    fn init(&mut self, _key: &str) -> Vec<String> {
        Vec::new()
    }

    fn step(&mut self, q: &Vec<String>, op: &QueueOp) -> Option<Vec<String>> {
        let full = q.len() >= self.capacity;
        match op {
            QueueOp::Offer(_, Some(false)) | QueueOp::Offer(_, None) if full => Some(q.clone()),
            QueueOp::Offer(_, Some(false)) => None,
            QueueOp::Offer(x, _) if !full => {
                let mut n = q.clone();
                n.push(x.clone());
                Some(n)
            }
            QueueOp::Offer(..) => None,
            QueueOp::Poll(x) => (q.first() == Some(x)).then(|| q[1..].to_vec()),
            QueueOp::PollEmpty => q.is_empty().then(Vec::new),
            QueueOp::PollAny => Some(q.get(1..).unwrap_or_default().to_vec()),
        }
    }

    /// `offer 3 → true`: the argument and the answer.
    fn describe_op(&self, op: &Operation) -> String {
        match op.outcome {
            Outcome::Ok => format!("{} {} → {}", op.f, op.invoke_value, op.value),
            _ => format!("{} {}", op.f, op.invoke_value),
        }
    }

    fn describe(&self, q: &Vec<String>) -> String {
        format!("[{}] (capacity {})", q.join(", "), self.capacity)
    }

    /// A refused offer and an empty poll change nothing when legal: the
    /// search places them at once.
    fn is_pure(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Offer(_, Some(false)) | QueueOp::PollEmpty)
    }
}

/// Three clients on a queue of capacity 2: the third offer is refused
/// while the queue is full, then accepted after a poll.
pub const VALID: &str = r#"{"process":0,"type":"invoke","f":"offer","value":1}
{"process":0,"type":"ok","f":"offer","value":true}
{"process":1,"type":"invoke","f":"offer","value":2}
{"process":1,"type":"ok","f":"offer","value":true}
{"process":2,"type":"invoke","f":"offer","value":3}
{"process":2,"type":"ok","f":"offer","value":false}
{"process":0,"type":"invoke","f":"poll","value":null}
{"process":1,"type":"invoke","f":"offer","value":3}
{"process":0,"type":"ok","f":"poll","value":1}
{"process":1,"type":"ok","f":"offer","value":true}
{"process":2,"type":"invoke","f":"poll","value":null}
{"process":2,"type":"ok","f":"poll","value":2}
"#;

/// The same clients, but the queue accepted a third element while it held
/// two (a poll that began later cannot make room in time): not
/// linearizable. The minimal counterexample is the three offers.
pub const INVALID: &str = r#"{"process":0,"type":"invoke","f":"offer","value":1}
{"process":0,"type":"ok","f":"offer","value":true}
{"process":1,"type":"invoke","f":"offer","value":2}
{"process":1,"type":"ok","f":"offer","value":true}
{"process":2,"type":"invoke","f":"offer","value":3}
{"process":2,"type":"ok","f":"offer","value":true}
{"process":0,"type":"invoke","f":"poll","value":null}
{"process":0,"type":"ok","f":"poll","value":1}
"#;

/// Parses a JSONL history and checks it against a queue of `capacity`.
pub fn check_text(text: &str, capacity: usize) -> Result<(History, LinearResult), String> {
    let history =
        format::parse_reader(text.as_bytes(), Format::Jsonl).map_err(|e| e.to_string())?;
    let ops = history.pair().map_err(|e| e.to_string())?.operations;
    let result = check_model(
        &ops,
        Some(&history),
        &BoundedQueue { capacity },
        &Options::default(),
    )
    .map_err(|e| e.to_string())?;
    Ok((history, result))
}

fn main() -> ExitCode {
    for (name, text) in [("valid history", VALID), ("invalid history", INVALID)] {
        match check_text(text, 2) {
            Ok((_, r)) => {
                println!("{name}: {} ({})", r.verdict, r.model);
                for (key, kr) in &r.keys {
                    if kr.verdict == Verdict::Invalid {
                        println!(
                            "  key {key}: minimal counterexample, op ids {:?}",
                            kr.minimal
                        );
                        if let Some(why) = &kr.minimal_explanation {
                            println!("  {why}");
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
