//! Operations, completions, and the client contract.

use faultline_checker::{Outcome, Value};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future. Client methods return these (rather than being
/// `async fn`) so that `Box<dyn Client>` works.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One operation to invoke: what the history's `invoke` event records.
///
/// `f` names the operation (`read`, `write`, `cas`, `txn`, `add`,
/// `transfer`, …, see [`crate::Workload`]); `key` is set for workloads with
/// independent keys (register); `value` is the argument (`null` for reads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    pub value: Value,
    /// Set by a generator that sends the operation knowing the system
    /// should refuse it (the `fenced` workload's stale-token write, which
    /// a correct storage rejects and a client that skips fencing gets
    /// accepted): the client sends it instead of refusing it locally. Not
    /// part of the `invoke` event; the client's completion says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expect_refusal: bool,
}

impl Op {
    pub fn new(f: impl Into<String>, key: Option<Value>, value: Value) -> Op {
        Op {
            f: f.into(),
            key,
            value,
            expect_refusal: false,
        }
    }

    /// True when the operation cannot change state. Clients use this to
    /// classify timeouts: a timed-out read may be `fail`, a write must be
    /// `info`.
    pub fn is_read_only(&self) -> bool {
        match self.f.as_str() {
            "read" => true,
            "txn" => self.value.as_array().is_some_and(|mops| {
                mops.iter()
                    .all(|m| m.get(0).and_then(Value::as_str) == Some("r"))
            }),
            _ => false,
        }
    }
}

/// How a client says an operation ended.
///
/// - `Ok`: it happened; `value` is the result (a read's value, a txn with
///   its reads filled in, or the argument echoed for writes).
/// - `Fail`: it certainly did not take effect; `value` is ignored and the
///   history records the invocation's value.
/// - `Info`: unknown, it may take effect at any time or never.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub outcome: Outcome,
    pub value: Value,
    /// Why it failed or is unknown; recorded as the event's `error`.
    pub error: Option<String>,
}

impl Completion {
    pub fn ok(value: Value) -> Completion {
        Completion {
            outcome: Outcome::Ok,
            value,
            error: None,
        }
    }

    pub fn fail(error: impl Into<String>) -> Completion {
        Completion {
            outcome: Outcome::Fail,
            value: Value::Null,
            error: Some(error.into()),
        }
    }

    pub fn info(error: impl Into<String>) -> Completion {
        Completion {
            outcome: Outcome::Info,
            value: Value::Null,
            error: Some(error.into()),
        }
    }
}

/// A connection to the system under test, used by one worker process at a
/// time. Targets create clients (`Target::client` in faultline-targets,
/// which is the *open* step).
///
/// # Contract
///
/// - **Opening must not change test state.** Creating a client only
///   connects (or not even that: connecting lazily is fine). Anything that
///   writes data belongs in [`Client::setup`].
/// - [`Client::setup`] runs once per test, on one client, before the main
///   phase (e.g. to create bank accounts). It must be idempotent.
/// - [`Client::invoke`] executes one [`Op`] and classifies the result:
///   - `ok` only when the operation certainly happened;
///   - `fail` **only when it certainly had no effect** (connection refused
///     before the request was sent, a CAS whose compare failed, a guarded
///     transaction that was rejected, a timed-out *read*);
///   - `info` for everything else: a timed-out or reset *write*, an error
///     you cannot classify. When in doubt, `info`: a wrong `fail` makes the
///     checker report false anomalies, a wrong `info` only costs search time.
/// - The runner enforces its own per-operation timeout by dropping the
///   future (recorded as `info`), so `invoke` must be cancel-safe in the
///   sense that dropping it leaves the client usable or the runner opens a
///   fresh one (it does after every `info`).
/// - A client is used by one task at a time (`&mut self`); after an `info`
///   the runner closes it and opens a new client for a new process id.
pub trait Client: Send {
    /// Once-per-test setup (idempotent). The default does nothing.
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Executes `op` and says how it ended (see the trait docs).
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion>;

    /// Releases connections. Must not change test state. Default: nothing.
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_only_ops() {
        assert!(Op::new("read", None, Value::Null).is_read_only());
        assert!(!Op::new("write", None, json!(1)).is_read_only());
        assert!(Op::new("txn", None, json!([["r", 1, null], ["r", 2, null]])).is_read_only());
        assert!(!Op::new("txn", None, json!([["r", 1, null], ["append", 2, 3]])).is_read_only());
    }
}
