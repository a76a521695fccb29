//! `mutex`, `set`, `unordered-queue` and `fifo-queue`.

use super::register::{Problem, wrap_op};
use super::{Compiled, Interner, Model, ModelError, ModelKind, ModelSpec};
use crate::history::{History, Operation, Outcome, Value};

/// `acquire` / `release` of one lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexOp {
    Acquire,
    Release,
}

/// State: locked?
#[derive(Clone, Debug, Default)]
pub struct MutexModel;

impl Model for MutexModel {
    type State = bool;
    type Op = MutexOp;

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

pub(crate) fn compile_mutex(
    spec: &ModelSpec,
    ops: &[&Operation],
    history: Option<&History>,
) -> Result<Problem<MutexModel>, ModelError> {
    let init = match &spec.initial {
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
    let mut out = Vec::new();
    for op in ops.iter().filter(|o| o.outcome != Outcome::Fail) {
        let o = match op.f.as_str() {
            "acquire" | "lock" => MutexOp::Acquire,
            "release" | "unlock" => MutexOp::Release,
            f => {
                return Err(ModelError::new(
                    op,
                    history,
                    format!("model mutex has no operation `{f}` (expected acquire, release)"),
                ));
            }
        };
        out.push(wrap_op(op, o));
    }
    Ok((MutexModel, init, out))
}

/// Which collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollKind {
    Set,
    UnorderedQueue,
    FifoQueue,
}

/// A compiled collection operation over interned element ids.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl Model for CollModel {
    type State = Vec<u32>;
    type Op = CollOp;

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

    fn describe(&self, s: &Vec<u32>) -> String {
        let parts: Vec<String> = s.iter().map(|x| self.values.show(*x)).collect();
        format!("[{}]", parts.join(", "))
    }

    fn heap_bytes(s: &Vec<u32>) -> usize {
        s.capacity() * 4
    }
}

pub(crate) fn compile_coll(
    spec: &ModelSpec,
    ops: &[&Operation],
    history: Option<&History>,
) -> Result<Problem<CollModel>, ModelError> {
    let kind = match spec.kind {
        ModelKind::Set => CollKind::Set,
        ModelKind::UnorderedQueue => CollKind::UnorderedQueue,
        _ => CollKind::FifoQueue,
    };
    let mut m = CollModel {
        kind,
        values: Interner::default(),
    };
    let mut init = Vec::new();
    match &spec.initial {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for v in a {
                let id = m.values.intern(v);
                init = m.step(&init, &CollOp::Insert(id)).unwrap_or(init);
            }
        }
        Some(v) => {
            return Err(ModelError {
                line: 0,
                message: format!("{} initial state must be an array, got {v}", spec.kind),
            });
        }
    }
    let mut out = Vec::new();
    for op in ops.iter().filter(|o| o.outcome != Outcome::Fail) {
        let ok = op.outcome == Outcome::Ok;
        let err = |m: String| Err(ModelError::new(op, history, m));
        let c = match (kind, op.f.as_str()) {
            (CollKind::Set, "add")
            | (CollKind::UnorderedQueue | CollKind::FifoQueue, "enqueue") => {
                Compiled::Op(CollOp::Insert(m.values.intern(&op.value)))
            }
            (CollKind::Set, "read") => {
                if !ok || op.value.is_null() {
                    Compiled::Skip
                } else if let Some(a) = op.value.as_array() {
                    let mut ids: Vec<u32> = a.iter().map(|v| m.values.intern(v)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Compiled::Op(CollOp::Read(ids.into()))
                } else {
                    return err("set read must return an array (the whole set)".into());
                }
            }
            (CollKind::UnorderedQueue | CollKind::FifoQueue, "dequeue") => {
                match (ok, op.value.is_null(), kind) {
                    (true, true, _) => Compiled::Op(CollOp::DequeueEmpty),
                    (_, false, _) => Compiled::Op(CollOp::Dequeue(m.values.intern(&op.value))),
                    // Removing an unknown element can never enable another
                    // unordered-queue op, so "never happened" covers it.
                    (false, true, CollKind::UnorderedQueue) => Compiled::Skip,
                    (false, true, _) => Compiled::Op(CollOp::DequeueAny),
                }
            }
            (_, f) => {
                let allowed = match kind {
                    CollKind::Set => "add, read",
                    _ => "enqueue, dequeue",
                };
                return err(format!(
                    "model {} has no operation `{f}` (expected {allowed})",
                    spec.kind
                ));
            }
        };
        if let Compiled::Op(o) = c {
            out.push(wrap_op(op, o));
        }
    }
    Ok((m, init, out))
}
