//! `mutex`, `set`, `unordered-queue` and `fifo-queue`.

use super::{Interner, Model, ModelError, ModelKind, ModelSpec};
use crate::history::{History, Operation, Outcome, Value};

/// `acquire` / `release` of one lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MutexOp {
    Acquire,
    Release,
}

/// State: locked?
#[derive(Clone, Debug, Default)]
pub struct MutexModel {
    /// Locked at the start?
    pub locked: bool,
}

impl MutexModel {
    /// The mutex `spec` describes (initial state `true`/`false` or
    /// `"locked"`/`"unlocked"`; default unlocked).
    pub fn new(spec: &ModelSpec) -> Result<Self, ModelError> {
        let locked = match &spec.initial {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "locked" || s == "unlocked" => s == "locked",
            Some(v) => {
                return Err(ModelError {
                    line: 0,
                    message: format!("mutex initial state must be true/false, got {v}"),
                });
            }
        };
        Ok(MutexModel { locked })
    }
}

impl Model for MutexModel {
    type State = bool;
    type Op = MutexOp;

    fn name(&self) -> String {
        ModelKind::Mutex.name().to_string()
    }

    fn compile(&mut self, op: &Operation) -> Result<Option<MutexOp>, String> {
        match op.f.as_str() {
            "acquire" | "lock" => Ok(Some(MutexOp::Acquire)),
            "release" | "unlock" => Ok(Some(MutexOp::Release)),
            f => Err(format!(
                "model mutex has no operation `{f}` (expected acquire, release)"
            )),
        }
    }

    fn init(&mut self, _key: &str) -> bool {
        self.locked
    }

    fn step(&mut self, locked: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!locked).then_some(true),
            MutexOp::Release => locked.then_some(false),
        }
    }

    fn describe(&self, locked: &bool) -> String {
        if *locked { "locked" } else { "unlocked" }.to_string()
    }
}

/// Which collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollKind {
    Set,
    UnorderedQueue,
    FifoQueue,
}

/// A compiled collection operation over interned element ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CollOp {
    /// `add` (set) / `enqueue` (queues).
    Insert(u32),
    /// Set `read`: the exact set, sorted.
    Read(Box<[u32]>),
    /// `dequeue` that returned this element.
    Dequeue(u32),
    /// `ok` dequeue of nothing: legal iff empty.
    DequeueEmpty,
    /// Unknown dequeue on a FIFO queue: removes the head if any.
    DequeueAny,
}

/// State: the elements, sorted (set: no duplicates; unordered queue: a
/// multiset) or in queue order (FIFO).
#[derive(Clone, Debug)]
pub struct CollModel {
    pub kind: CollKind,
    pub values: Interner,
    /// The initial elements (interned in `values`).
    initial: Vec<u32>,
}

impl CollModel {
    /// The collection `spec` describes (`set`, `unordered-queue`, or any
    /// other kind: `fifo-queue`); initial state an array, default empty.
    pub fn new(spec: &ModelSpec) -> Result<Self, ModelError> {
        let kind = match spec.kind {
            ModelKind::Set => CollKind::Set,
            ModelKind::UnorderedQueue => CollKind::UnorderedQueue,
            _ => CollKind::FifoQueue,
        };
        let mut m = CollModel {
            kind,
            values: Interner::default(),
            initial: Vec::new(),
        };
        match &spec.initial {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                let mut init = Vec::new();
                for v in a {
                    let id = m.values.intern(v);
                    init = m.step(&init, &CollOp::Insert(id)).unwrap_or(init);
                }
                m.initial = init;
            }
            Some(v) => {
                return Err(ModelError {
                    line: 0,
                    message: format!("{} initial state must be an array, got {v}", spec.kind),
                });
            }
        }
        Ok(m)
    }

    fn model_kind(&self) -> ModelKind {
        match self.kind {
            CollKind::Set => ModelKind::Set,
            CollKind::UnorderedQueue => ModelKind::UnorderedQueue,
            CollKind::FifoQueue => ModelKind::FifoQueue,
        }
    }
}

impl Model for CollModel {
    type State = Vec<u32>;
    type Op = CollOp;

    fn name(&self) -> String {
        self.model_kind().name().to_string()
    }

    fn compile(&mut self, op: &Operation) -> Result<Option<CollOp>, String> {
        let kind = self.kind;
        let ok = op.outcome == Outcome::Ok;
        Ok(match (kind, op.f.as_str()) {
            (CollKind::Set, "add")
            | (CollKind::UnorderedQueue | CollKind::FifoQueue, "enqueue") => {
                Some(CollOp::Insert(self.values.intern(&op.value)))
            }
            (CollKind::Set, "read") => {
                if !ok || op.value.is_null() {
                    None
                } else if let Some(a) = op.value.as_array() {
                    let mut ids: Vec<u32> = a.iter().map(|v| self.values.intern(v)).collect();
                    // Sorted, duplicates kept: a state never holds one,
                    // so a read listing an element twice is illegal in
                    // every state (Porcupine's TestSetModel, Knossos's
                    // set model compare the read with the set as is).
                    ids.sort_unstable();
                    Some(CollOp::Read(ids.into()))
                } else {
                    return Err("set read must return an array (the whole set)".into());
                }
            }
            (CollKind::UnorderedQueue | CollKind::FifoQueue, "dequeue") => {
                match (ok, op.value.is_null(), kind) {
                    (true, true, _) => Some(CollOp::DequeueEmpty),
                    (_, false, _) => Some(CollOp::Dequeue(self.values.intern(&op.value))),
                    // Removing an unknown element can never enable another
                    // unordered-queue op, so "never happened" covers it.
                    (false, true, CollKind::UnorderedQueue) => None,
                    (false, true, _) => Some(CollOp::DequeueAny),
                }
            }
            (_, f) => {
                let allowed = match kind {
                    CollKind::Set => "add, read",
                    _ => "enqueue, dequeue",
                };
                return Err(format!(
                    "model {} has no operation `{f}` (expected {allowed})",
                    self.model_kind()
                ));
            }
        })
    }

    fn init(&mut self, _key: &str) -> Vec<u32> {
        self.initial.clone()
    }

    fn explain(
        &self,
        _key: &str,
        min: &[&Operation],
        all: &[&Operation],
        history: Option<&History>,
    ) -> Option<String> {
        crate::linear::coll_why(self.model_kind(), min, all, history)
    }

    fn step(&mut self, s: &Vec<u32>, op: &CollOp) -> Option<Vec<u32>> {
        match op {
            CollOp::Insert(x) => {
                let mut n = s.clone();
                match self.kind {
                    CollKind::Set => {
                        if let Err(i) = n.binary_search(x) {
                            n.insert(i, *x);
                        }
                    }
                    CollKind::UnorderedQueue => {
                        let i = n.partition_point(|y| y <= x);
                        n.insert(i, *x);
                    }
                    CollKind::FifoQueue => n.push(*x),
                }
                Some(n)
            }
            CollOp::Read(set) => (**set == **s).then(|| s.clone()),
            CollOp::Dequeue(x) => {
                let i = match self.kind {
                    CollKind::FifoQueue => (s.first() == Some(x)).then_some(0)?,
                    _ => s.binary_search(x).ok()?,
                };
                let mut n = s.clone();
                n.remove(i);
                Some(n)
            }
            CollOp::DequeueEmpty => s.is_empty().then(Vec::new),
            CollOp::DequeueAny => (!s.is_empty()).then(|| s[1..].to_vec()),
        }
    }

    fn is_pure(&self, op: &CollOp) -> bool {
        matches!(op, CollOp::Read(_) | CollOp::DequeueEmpty)
    }

    fn describe(&self, s: &Vec<u32>) -> String {
        let parts: Vec<String> = s.iter().map(|x| self.values.show(*x)).collect();
        format!("[{}]", parts.join(", "))
    }

    fn heap_bytes(s: &Vec<u32>) -> usize {
        s.capacity() * 4
    }
}
