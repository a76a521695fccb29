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
pub use register::{Keyed, RegModel, RegOp, key_name};

use crate::history::{History, Operation, Outcome, Value};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

/// A sequential specification: the trait every built-in model implements,
/// and the one to implement to check histories against your own model
/// (Porcupine's `Model`). [`crate::linear::check_model`] checks a history
/// with it: split into independent objects by [`Model::partition`], each
/// compiled ([`Model::compile`]) into a fresh clone of the model, searched
/// (WGL) under the same time and memory budgets, answering `unknown` when
/// they run out, and shrunk to a minimal counterexample when not
/// linearizable. `checker/examples/user_model.rs` is a complete example.
///
/// A model is a deterministic state machine: `step(state, op)` is the state
/// after `op`, or `None` when `op` is illegal in `state`.
pub trait Model: Clone + Send {
    /// Model state; must be cheap to clone, hash and compare.
    type State: Clone + Eq + Hash + Send + fmt::Debug;
    /// A compiled operation. Equal ops must have equal effects: unknown
    /// (`info`) ops with equal compiled ops are treated as interchangeable.
    type Op: Clone + Eq + Hash + Send + fmt::Debug;
    /// The model's name in results (`"cas-register"`).
    fn name(&self) -> String;
    /// The independent object `op` acts on (P-compositionality: a history
    /// is linearizable iff each object's sub-history is). Default: the
    /// op's key, named by [`key_name`] (`_` without a key).
    fn partition(&self, op: &Operation) -> String {
        key_name(op.key.as_deref())
    }
    /// Compiles one operation of an object, on that object's own clone of
    /// the model. Never called for `fail` operations (they did not happen,
    /// as in Knossos). `Ok(None)`: the op is the identity in every state (an
    /// `ok` read of an unknown value), so it is left out of the search.
    /// `Err`: why the op does not fit the model; the checker names the
    /// line. An `info` op keeps its invocation's value (`Operation::value`).
    fn compile(&mut self, op: &Operation) -> Result<Option<Self::Op>, String>;
    /// The initial state of object `key`, called after its ops compiled.
    fn init(&mut self, key: &str) -> Self::State;
    /// The state after `op`, or `None` when `op` is illegal in `state`.
    /// `&mut self` lets models memoise derived values (kv appends intern the
    /// concatenated string).
    fn step(&mut self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// Human-readable state, for explanations.
    fn describe(&self, state: &Self::State) -> String;
    /// Human-readable operation, for explanations: `get → "x"` for an `ok`
    /// read, `f value` otherwise.
    fn describe_op(&self, op: &Operation) -> String {
        if op.outcome == Outcome::Ok && matches!(op.f.as_str(), "read" | "get" | "r") {
            format!("{} → {}", op.f, crate::linear::short(&op.value))
        } else {
            format!("{} {}", op.f, crate::linear::short(&op.value))
        }
    }
    /// Why a minimal counterexample admits no order, in the model's terms
    /// (`min`: its operations in invocation order; `all`: the object's).
    /// `None`: the checker's generic explanation (real-time facts).
    fn explain(
        &self,
        _key: &str,
        _min: &[&Operation],
        _all: &[&Operation],
        _history: Option<&History>,
    ) -> Option<String> {
        None
    }
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

/// One object's sub-history, compiled: the model (its own clone), the
/// initial state and the ops the search sees, in invocation order.
pub type Problem<M> = (M, <M as Model>::State, Vec<CompiledOp<<M as Model>::Op>>);

/// Compiles object `key`'s operations (`fail` ones are dropped) on a clone
/// of `proto`.
pub fn compile<M: Model>(
    proto: &M,
    key: &str,
    ops: &[&Operation],
    history: Option<&History>,
) -> Result<Problem<M>, ModelError> {
    let mut m = proto.clone();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops.iter().filter(|o| o.outcome != Outcome::Fail) {
        match m.compile(op) {
            Ok(Some(o)) => out.push(CompiledOp::of(op, o)),
            Ok(None) => {}
            Err(message) => return Err(ModelError::new(op, history, message)),
        }
    }
    let init = m.init(key);
    Ok((m, init, out))
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
    pub const fn name(self) -> &'static str {
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

    /// Every CLI name, in [`ModelKind::ALL`]'s order (`--help`'s list).
    pub const NAMES: [&'static str; 8] = {
        let mut names = [""; 8];
        let mut i = 0;
        while i < names.len() {
            names[i] = ModelKind::ALL[i].name();
            i += 1;
        }
        names
    };

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

impl<O> CompiledOp<O> {
    /// `o` compiled from `op`: its id, call and return positions.
    pub fn of(op: &Operation, o: O) -> CompiledOp<O> {
        CompiledOp {
            id: op.id,
            call: op.call(),
            ret: op.ret(),
            ok: op.outcome == Outcome::Ok,
            op: o,
        }
    }
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
