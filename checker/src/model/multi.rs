//! `multi-register`: a map of registers; `txn` ops apply a vector of
//! `[f k v]` micro-ops (`read`/`r`, `write`/`w`) atomically, left to right.

use super::register::key_name;
use super::{ABSENT, Interner, Model, ModelKind, ModelSpec};
use crate::history::{Operation, Outcome, Value};
use std::collections::HashMap;

/// One micro-op on key index `.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MicroOp {
    Read(u32, u32),
    Write(u32, u32),
}

/// State: value id per key index.
#[derive(Clone, Debug)]
pub struct MultiModel {
    pub keys: Vec<String>,
    pub values: Interner,
    key_ids: HashMap<String, u32>,
    spec: ModelSpec,
}

impl MultiModel {
    /// A map of registers; keys named in an object initial state exist
    /// from the start.
    pub fn new(spec: &ModelSpec) -> Self {
        let mut m = MultiModel {
            keys: Vec::new(),
            values: Interner::default(),
            key_ids: HashMap::new(),
            spec: spec.clone(),
        };
        if let Some(Value::Object(init)) = &spec.initial {
            for k in init.keys() {
                m.key_ids.insert(k.clone(), m.keys.len() as u32);
                m.keys.push(k.clone());
            }
        }
        m
    }
}

impl Model for MultiModel {
    type State = Box<[u32]>;
    type Op = Box<[MicroOp]>;

    fn name(&self) -> String {
        ModelKind::MultiRegister.name().to_string()
    }

    fn compile(&mut self, op: &Operation) -> Result<Option<Self::Op>, String> {
        let nil_abs = self.spec.nil_read_is_absent;
        if op.f != "txn" {
            return Err("model multi-register has only `txn` operations".into());
        }
        let Some(micro) = op.value.as_array() else {
            return Err("txn value must be an array of [f k v] micro-ops".into());
        };
        let mut txn = Vec::with_capacity(micro.len());
        for mop in micro {
            let Some([f, k, v]) = mop.as_array().map(|a| a.as_slice()) else {
                return Err("each micro-op must be [f k v]".into());
            };
            let name = key_name(Some(k));
            let k = match self.key_ids.get(&name) {
                Some(&k) => k,
                None => {
                    let k = self.keys.len() as u32;
                    self.keys.push(name.clone());
                    self.key_ids.insert(name, k);
                    k
                }
            };
            let vid = if nil_abs && v.is_null() {
                ABSENT
            } else {
                self.values.intern(v)
            };
            match f.as_str() {
                Some("read" | "r") => {
                    // Unknown read results constrain nothing.
                    if op.outcome == Outcome::Ok && (!v.is_null() || nil_abs) {
                        txn.push(MicroOp::Read(k, vid));
                    }
                }
                Some("write" | "w") => txn.push(MicroOp::Write(k, vid)),
                _ => return Err("micro-op f must be read/r or write/w".into()),
            }
        }
        Ok((!txn.is_empty()).then(|| txn.into_boxed_slice()))
    }

    fn init(&mut self, _key: &str) -> Self::State {
        let nil_abs = self.spec.nil_read_is_absent;
        let keys = self.keys.clone();
        keys.iter()
            .map(|k| match self.spec.initial_for(Some(k)).cloned() {
                Some(v) if !(nil_abs && v.is_null()) => self.values.intern(&v),
                _ => ABSENT,
            })
            .collect()
    }

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

    fn is_pure(&self, txn: &Self::Op) -> bool {
        txn.iter().all(|m| matches!(m, MicroOp::Read(..)))
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
