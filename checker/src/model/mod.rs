//! Sequential specifications for the linearizability checker.
//!
//! A model is a deterministic state machine: `step(state, op)` is the state
//! after `op`, or `None` when `op` is illegal in `state`. Operations are
//! *compiled* once from JSON into a compact form: values are interned into
//! `u32` ids, so states are small integers or short sorted vectors that are
//! cheap to clone, hash and compare during the WGL search.
//!
//! Supported models (CLI names): `register`, `cas-register`, `kv`, `mutex`,
//! `set`, `unordered-queue`, `fifo-queue`, `multi-register`. Operation names
//! follow Jepsen/Knossos (`read`, `write`, `cas [expected new]`, `txn`, …).
//!
//! Conventions shared by every model:
//! - `fail` operations certainly did not happen and are dropped (Knossos).
//! - An operation whose step is the identity in every state (an `ok` read of
//!   unknown value, any `info` read) is dropped: it can be linearized anywhere
//!   in its interval without affecting the rest, so it only costs search.
//! - `info` operations keep their invocation's argument; the search may
//!   linearize them at any point after their call, or never.

pub(crate) mod coll;
pub(crate) mod multi;
pub(crate) mod register;
pub mod replay;

pub use coll::{CollKind, CollModel, CollOp, MutexModel, MutexOp};
pub use multi::{MicroOp, MultiModel};
pub use register::{Keyed, RegModel, RegOp};

use crate::history::{History, Operation, Outcome, Value};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

/// A sequential specification the search can run.
pub trait Model: Send {
    /// Model state; must be cheap to clone, hash and compare.
    type State: Clone + Eq + Hash + Send + fmt::Debug;
    /// A compiled operation.
    type Op: Send + fmt::Debug;
    /// The state after `op`, or `None` when `op` is illegal in `state`.
    /// `&mut self` lets models memoise derived values (kv appends intern the
    /// concatenated string).
    fn step(&mut self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// Human-readable state, for explanations.
    fn describe(&self, state: &Self::State) -> String;
    /// True for observers: ops whose step is the identity whenever it is
    /// legal (reads). The search linearizes a legal observer at once without
    /// trying alternatives: moving it earlier, to a point where it is legal
    /// and all ops that precede it are done, cannot break any completion.
    fn is_pure(&self, _op: &Self::Op) -> bool {
        false
    }
    /// Could `target` become legal from `state` by applying some of
    /// `others` first? Used to prune: the search calls it for the op whose
    /// return comes first, with the ops that may still go before it. Must
    /// never answer `false` when the answer is yes; `true` is always safe.
    fn may_reach<'a>(
        &mut self,
        _state: &Self::State,
        _target: &Self::Op,
        _others: impl Iterator<Item = &'a Self::Op>,
    ) -> bool
    where
        Self::Op: 'a,
    {
        true
    }
    /// Heap bytes owned by a state (for the memory budget).
    fn heap_bytes(_state: &Self::State) -> usize {
        0
    }
    /// The op as a plain register op, for pruning optional ops when
    /// shrinking (see `linear/minimal.rs`); `None` when it is anything else.
    fn as_register(&self, _op: &Self::Op) -> Option<RegOp> {
        None
    }
}

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Register,
    CasRegister,
    Kv,
    Mutex,
    Set,
    UnorderedQueue,
    FifoQueue,
    MultiRegister,
}

impl ModelKind {
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::UnorderedQueue,
        ModelKind::FifoQueue,
        ModelKind::MultiRegister,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::FifoQueue => "fifo-queue",
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// Parses a CLI name (`cas-register`, `kv`, …).
    pub fn parse(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model plus its options.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Initial state as JSON. `None`: registers *absent* (distinct from every
    /// value; `kv` keys start as `""` as in Porcupine), empty set/queues,
    /// unlocked mutex. For keyed models an object gives per-key initial
    /// values (`{"x":0,"y":0}`); any other value applies to every key.
    pub initial: Option<Value>,
    /// How an `ok` read of `null` is judged. `false` (Knossos): the value is
    /// unknown, the read constrains nothing. `true` (Porcupine's etcd
    /// tests): `null` means the key is absent, and writing `null` deletes it.
    pub nil_read_is_absent: bool,
}

impl ModelSpec {
    /// Knossos conventions: default initial state, `nil` read unconstrained.
    pub fn new(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            kind,
            initial: None,
            nil_read_is_absent: false,
        }
    }

    /// Porcupine's etcd tests: cas-register starting absent, `nil` = absent.
    pub fn porcupine_etcd() -> ModelSpec {
        ModelSpec {
            kind: ModelKind::CasRegister,
            initial: None,
            nil_read_is_absent: true,
        }
    }

    /// Porcupine's kv tests: get/put/append, every key starts as `""`.
    pub fn porcupine_kv() -> ModelSpec {
        ModelSpec::new(ModelKind::Kv)
    }

    pub fn with_initial(mut self, initial: Value) -> ModelSpec {
        self.initial = Some(initial);
        self
    }

    /// The initial value of `key` for register-like models.
    pub(crate) fn initial_for(&self, key: Option<&str>) -> Option<&Value> {
        match (&self.initial, key) {
            (Some(Value::Object(m)), Some(k)) => m.get(k),
            (Some(Value::Object(_)), None) => None,
            (Some(v), _) => Some(v),
            (None, _) => None,
        }
    }
}

/// An operation whose shape does not fit the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ModelError {
    /// 1-based line of the operation's invocation (0 if unknown).
    pub line: usize,
    pub message: String,
}

impl ModelError {
    pub(crate) fn new(op: &Operation, history: Option<&History>, message: String) -> ModelError {
        let line = op_line(op, history);
        ModelError {
            line,
            message: format!(
                "{} of `{}` by process {} (value {}): {message}",
                outcome_word(op.outcome),
                op.f,
                op.process,
                op.value
            ),
        }
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// Source line of an operation's invocation, 0 when unknown.
pub fn op_line(op: &Operation, history: Option<&History>) -> usize {
    history
        .and_then(|h| h.events.get(op.invoke))
        .map_or(0, |e| e.line)
}

/// A compiled operation: what the search needs of it.
#[derive(Clone, Debug)]
pub struct CompiledOp<O> {
    /// `Operation::id` of the source operation.
    pub id: usize,
    /// Event position of the invocation.
    pub call: usize,
    /// Event position of the completion; `usize::MAX` for `info`.
    pub ret: usize,
    /// `true` for `ok` operations (must be linearized), `false` for `info`.
    pub ok: bool,
    pub op: O,
}

/// Result of compiling one operation.
pub(crate) enum Compiled<O> {
    Op(O),
    /// Identity in every state: leave it out of the search.
    Skip,
}

/// Value ids: `ABSENT` is reserved for "no value" (a never-written register).
pub const ABSENT: u32 = 0;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum IKey {
    Null,
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    Json(Box<str>),
}

/// Interns JSON values into dense `u32` ids (`0` is [`ABSENT`]).
#[derive(Clone, Debug)]
pub struct Interner {
    ids: HashMap<IKey, u32>,
    values: Vec<Option<Value>>,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            ids: HashMap::new(),
            values: vec![None],
        }
    }
}

impl Interner {
    pub fn intern(&mut self, v: &Value) -> u32 {
        let key = match v {
            Value::Null => IKey::Null,
            Value::Bool(b) => IKey::Bool(*b),
            Value::Number(n) if n.is_i64() => IKey::Int(n.as_i64().unwrap_or_default()),
            Value::String(s) => IKey::Str(s.as_str().into()),
            other => IKey::Json(other.to_string().into()),
        };
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(Some(v.clone()));
        self.ids.insert(key, id);
        id
    }

    pub fn value(&self, id: u32) -> Option<&Value> {
        self.values.get(id as usize).and_then(|v| v.as_ref())
    }

    /// Human form: the JSON text, or `absent`.
    pub fn show(&self, id: u32) -> String {
        match self.value(id) {
            Some(v) => v.to_string(),
            None => "absent".to_string(),
        }
    }
}
