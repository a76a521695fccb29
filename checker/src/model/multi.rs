//! `multi-register`: a map of registers; `txn` ops apply a vector of
//! `[f k v]` micro-ops (`read`/`r`, `write`/`w`) atomically, left to right.

use super::register::{Problem, key_name, wrap_op};
use super::{ABSENT, Interner, Model, ModelError, ModelSpec};
use crate::history::{History, Operation, Outcome, Value};
use std::collections::HashMap;

/// One micro-op on key index `.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MicroOp {
    Read(u32, u32),
    Write(u32, u32),
}

/// State: value id per key index.
#[derive(Clone, Debug, Default)]
pub struct MultiModel {
    pub keys: Vec<String>,
    pub values: Interner,
}

impl Model for MultiModel {
    type State = Box<[u32]>;
    type Op = Box<[MicroOp]>;

    fn step(&mut self, s: &Self::State, txn: &Self::Op) -> Option<Self::State> {
        let mut n = s.clone();
        for m in txn.iter() {
            match *m {
                MicroOp::Read(k, v) => {
                    if *n.get(k as usize)? != v {
                        return None;
                    }
                }
                MicroOp::Write(k, v) => *n.get_mut(k as usize)? = v,
            }
        }
        Some(n)
    }

    fn describe(&self, s: &Self::State) -> String {
        let parts: Vec<String> = self
            .keys
            .iter()
            .zip(s.iter())
            .map(|(k, v)| format!("{k:?}: {}", self.values.show(*v)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn heap_bytes(s: &Self::State) -> usize {
        s.len() * 4
    }
}

pub(crate) fn compile_multi(
    spec: &ModelSpec,
    ops: &[&Operation],
    history: Option<&History>,
) -> Result<Problem<MultiModel>, ModelError> {
    let mut m = MultiModel::default();
    let mut key_ids: HashMap<String, u32> = HashMap::new();
    let nil_abs = spec.nil_read_is_absent;
    // Keys named in the initial state exist from the start.
    if let Some(Value::Object(init)) = &spec.initial {
        for k in init.keys() {
            key_ids.insert(k.clone(), m.keys.len() as u32);
            m.keys.push(k.clone());
        }
    }
    let mut out = Vec::new();
    for op in ops.iter().filter(|o| o.outcome != Outcome::Fail) {
        let err = |msg: &str| Err(ModelError::new(op, history, msg.to_string()));
        if op.f != "txn" {
            return err("model multi-register has only `txn` operations");
        }
        let Some(micro) = op.value.as_array() else {
            return err("txn value must be an array of [f k v] micro-ops");
        };
        let mut txn = Vec::with_capacity(micro.len());
        for mop in micro {
            let Some([f, k, v]) = mop.as_array().map(|a| a.as_slice()) else {
                return err("each micro-op must be [f k v]");
            };
            let name = key_name(Some(k));
            let k = *key_ids.entry(name.clone()).or_insert_with(|| {
                m.keys.push(name);
                (m.keys.len() - 1) as u32
            });
            let vid = if nil_abs && v.is_null() {
                ABSENT
            } else {
                m.values.intern(v)
            };
            match f.as_str() {
                Some("read" | "r") => {
                    // Unknown read results constrain nothing.
                    if op.outcome == Outcome::Ok && (!v.is_null() || nil_abs) {
                        txn.push(MicroOp::Read(k, vid));
                    }
                }
                Some("write" | "w") => txn.push(MicroOp::Write(k, vid)),
                _ => return err("micro-op f must be read/r or write/w"),
            }
        }
        if !txn.is_empty() {
            out.push(wrap_op(op, txn.into_boxed_slice()));
        }
    }
    let init: Box<[u32]> = m
        .keys
        .clone()
        .iter()
        .map(|k| match spec.initial_for(Some(k)) {
            Some(v) if !(nil_abs && v.is_null()) => m.values.intern(v),
            _ => ABSENT,
        })
        .collect();
    Ok((m, init, out))
}
