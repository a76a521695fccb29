//! Registers: `register` (read/write), `cas-register` (+ cas) and `kv`
//! (get/put/append on string values; also read/write/cas), plus [`Keyed`],
//! which runs any model on several independent keys in one state.

use super::{ABSENT, Interner, Model, ModelKind, ModelSpec};
use crate::history::{History, Operation, Outcome, Value};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// A compiled register operation over interned value ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegOp {
    /// Read that returned this value.
    Read(u32),
    Write(u32),
    /// Compare-and-set: legal iff current = expected, then set new.
    Cas(u32, u32),
    /// String append (kv): absent + s = s, "a" + "b" = "ab".
    Append(u32),
}

/// State ids with this bit set are append chains (`chains[id & !CHAIN]`),
/// others are interned values.
const CHAIN: u32 = 1 << 31;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<crate::linear::FxHasher>>;

/// A single register; state is the interned id of its value.
///
/// kv appends are hash-consed instead of concatenated: the state after
/// appending `v` to `s` is the chain node `(s, v)`, built in O(1); reads
/// compare a chain with a string by walking it back from the end
/// (memoised). Two chains spelling the same string are distinct states,
/// which only costs some memo sharing, never correctness.
#[derive(Clone, Debug)]
pub struct RegModel {
    /// Which register model, its initial values and `nil` convention.
    pub spec: ModelSpec,
    pub values: Interner,
    empty: u32,
    chains: Vec<(u32, u32)>,
    /// (state, appended) -> chain id, so each chain node is made once.
    appends: FxMap<(u32, u32), u32>,
    /// (chain, value) -> does the chain spell the value?
    equal: FxMap<(u32, u32), bool>,
    /// (state, value) -> is the state's string a prefix of the value's?
    prefix: FxMap<(u32, u32), bool>,
}

impl RegModel {
    /// A fresh register of the kind `spec` names (`register`,
    /// `cas-register` or `kv`).
    pub fn new(spec: &ModelSpec) -> Self {
        let mut values = Interner::default();
        let empty = values.intern(&Value::from(""));
        RegModel {
            spec: spec.clone(),
            values,
            empty,
            chains: Vec::new(),
            appends: FxMap::default(),
            equal: FxMap::default(),
            prefix: FxMap::default(),
        }
    }
}

impl RegModel {
    fn append(&mut self, cur: u32, v: u32) -> Option<u32> {
        if cur == ABSENT || cur == self.empty {
            return Some(v);
        }
        if v == self.empty {
            return Some(cur);
        }
        if cur & CHAIN == 0 && !matches!(self.values.value(cur), Some(Value::String(_))) {
            // Appending to a non-string is not defined: illegal.
            return None;
        }
        if let Some(&r) = self.appends.get(&(cur, v)) {
            return Some(r);
        }
        let r = CHAIN | self.chains.len() as u32;
        self.chains.push((cur, v));
        self.appends.insert((cur, v), r);
        Some(r)
    }

    fn str_of(&self, id: u32) -> &str {
        match self.values.value(id) {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }

    /// Does state `cur` equal value `v`?
    fn equals(&mut self, cur: u32, v: u32) -> bool {
        if cur == v {
            return true;
        }
        if cur & CHAIN == 0 {
            return false;
        }
        if let Some(&e) = self.equal.get(&(cur, v)) {
            return e;
        }
        let e = match self.values.value(v) {
            Some(Value::String(target)) => {
                let mut rest = target.as_str();
                let mut s = cur;
                loop {
                    if s & CHAIN == 0 {
                        break rest == self.str_of(s);
                    }
                    let (p, tail) = self.chains[(s & !CHAIN) as usize];
                    match rest.strip_suffix(self.str_of(tail)) {
                        Some(r) => rest = r,
                        None => break false,
                    }
                    s = p;
                }
            }
            _ => false,
        };
        self.equal.insert((cur, v), e);
        e
    }

    /// Is the string state `cur` spells a prefix of value `v`'s string?
    fn is_prefix(&mut self, cur: u32, v: u32) -> bool {
        if let Some(&e) = self.prefix.get(&(cur, v)) {
            return e;
        }
        let e = match (self.values.value(cur), self.values.value(v)) {
            (_, Some(Value::String(t))) if cur & CHAIN != 0 => {
                t.starts_with(&self.materialize(cur))
            }
            (Some(Value::String(h)), Some(Value::String(t))) => t.starts_with(h.as_str()),
            (None, _) => true,
            _ => false,
        };
        self.prefix.insert((cur, v), e);
        e
    }

    /// Pruning for the register family: a read (or cas) expecting `r` can
    /// become legal only if the state, or the value of a write that may go
    /// first, spells a prefix of `r` that appends can extend (or equals
    /// `r`). A cas among the others could set anything: no pruning.
    pub(crate) fn reachable<'a>(
        &mut self,
        cur: u32,
        target: &RegOp,
        others: impl Iterator<Item = &'a RegOp>,
    ) -> bool {
        let want = match *target {
            RegOp::Read(r) | RegOp::Cas(r, _) => r,
            _ => return true,
        };
        if self.equals(cur, want) {
            return true;
        }
        // Candidate starting points: the state itself, and any value a
        // write could set; appends can then only extend it.
        let mut appends = false;
        let mut writes = Vec::new();
        for o in others {
            match *o {
                RegOp::Cas(..) => return true,
                RegOp::Write(w) if w == want => return true,
                RegOp::Write(w) => writes.push(w),
                RegOp::Append(_) => appends = true,
                RegOp::Read(_) => {}
            }
        }
        appends
            && (self.is_prefix(cur, want) || writes.into_iter().any(|w| self.is_prefix(w, want)))
    }

    /// The string a state spells (for explanations).
    fn materialize(&self, mut s: u32) -> String {
        let mut parts = Vec::new();
        while s & CHAIN != 0 {
            let (p, tail) = self.chains[(s & !CHAIN) as usize];
            parts.push(self.str_of(tail));
            s = p;
        }
        let mut out = self.str_of(s).to_string();
        for p in parts.iter().rev() {
            out.push_str(p);
        }
        out
    }

    /// Human form of a state.
    pub fn show(&self, s: u32) -> String {
        if s & CHAIN != 0 {
            Value::from(self.materialize(s)).to_string()
        } else {
            self.values.show(s)
        }
    }

    /// Applies `op` to a register value.
    pub(crate) fn apply(&mut self, cur: u32, op: &RegOp) -> Option<u32> {
        match *op {
            RegOp::Read(v) => self.equals(cur, v).then_some(cur),
            RegOp::Write(v) => Some(v),
            RegOp::Cas(e, n) => self.equals(cur, e).then_some(n),
            RegOp::Append(v) => self.append(cur, v),
        }
    }

    /// Interns a value; `null` is [`ABSENT`] when `nil_is_absent`.
    pub(crate) fn value_id(&mut self, v: &Value, nil_is_absent: bool) -> u32 {
        if nil_is_absent && v.is_null() {
            ABSENT
        } else {
            self.values.intern(v)
        }
    }

    /// The initial value id of a key (`None`: no key).
    pub(crate) fn initial(&mut self, key: Option<&str>) -> u32 {
        let nil_abs = self.spec.nil_read_is_absent;
        match self.spec.initial_for(key).cloned() {
            Some(v) => self.value_id(&v, nil_abs),
            None if self.spec.kind == ModelKind::Kv => self.values.intern(&Value::from("")),
            None => ABSENT,
        }
    }

    /// Compiles one operation of the register family.
    fn compile_op(&mut self, op: &Operation) -> Result<Option<RegOp>, String> {
        let kind = self.spec.kind;
        let nil_abs = self.spec.nil_read_is_absent;
        let f = op.f.as_str();
        let is_read = f == "read" || (kind == ModelKind::Kv && f == "get");
        let is_write = f == "write" || (kind == ModelKind::Kv && f == "put");
        let is_cas = f == "cas" && kind != ModelKind::Register;
        let is_append = f == "append" && kind == ModelKind::Kv;
        if is_read {
            if op.outcome != Outcome::Ok || (op.value.is_null() && !nil_abs) {
                return Ok(None);
            }
            return Ok(Some(RegOp::Read(self.value_id(&op.value, nil_abs))));
        }
        if is_write {
            return Ok(Some(RegOp::Write(self.value_id(&op.value, nil_abs))));
        }
        if is_cas {
            return match op.value.as_array().map(|a| a.as_slice()) {
                Some([e, n]) => Ok(Some(RegOp::Cas(
                    self.value_id(e, nil_abs),
                    self.value_id(n, nil_abs),
                ))),
                _ => Err("cas value must be a pair [expected new]".into()),
            };
        }
        if is_append {
            if !op.value.is_string() {
                return Err("append value must be a string".into());
            }
            return Ok(Some(RegOp::Append(self.values.intern(&op.value))));
        }
        let allowed = match kind {
            ModelKind::Register => "read, write",
            ModelKind::CasRegister => "read, write, cas",
            _ => "get/read, put/write, append, cas",
        };
        Err(format!(
            "model {kind} has no operation `{f}` (expected {allowed})"
        ))
    }
}

impl Model for RegModel {
    type State = u32;
    type Op = RegOp;

    fn name(&self) -> String {
        self.spec.kind.name().to_string()
    }

    fn compile(&mut self, op: &Operation) -> Result<Option<RegOp>, String> {
        self.compile_op(op)
    }

    fn init(&mut self, key: &str) -> u32 {
        self.initial((key != "_").then_some(key))
    }

    fn explain(
        &self,
        key: &str,
        min: &[&Operation],
        all: &[&Operation],
        history: Option<&History>,
    ) -> Option<String> {
        crate::linear::register_why(&self.spec, key, min, all, history)
    }

    fn step(&mut self, s: &u32, op: &RegOp) -> Option<u32> {
        self.apply(*s, op)
    }

    fn describe(&self, s: &u32) -> String {
        self.show(*s)
    }

    fn is_pure(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_))
    }

    fn may_reach<'a>(
        &mut self,
        s: &u32,
        target: &RegOp,
        others: impl Iterator<Item = &'a RegOp>,
    ) -> bool {
        self.reachable(*s, target, others)
    }

    fn as_register(&self, op: &RegOp) -> Option<RegOp> {
        Some(*op)
    }
}

/// Several independent registers in one state: op = (key index, op). Used
/// when a keyed history is checked without splitting by key: every op is in
/// the one object `_`.
#[derive(Clone, Debug)]
pub struct Keyed<M> {
    pub inner: M,
    pub keys: Vec<String>,
    key_ids: HashMap<String, u32>,
}

impl<M> Keyed<M> {
    pub fn new(inner: M) -> Self {
        Keyed {
            inner,
            keys: Vec::new(),
            key_ids: HashMap::new(),
        }
    }
}

impl Model for Keyed<RegModel> {
    type State = Box<[u32]>;
    type Op = (u32, RegOp);

    fn name(&self) -> String {
        self.inner.name()
    }

    fn partition(&self, _op: &Operation) -> String {
        "_".to_string()
    }

    fn compile(&mut self, op: &Operation) -> Result<Option<Self::Op>, String> {
        let name = key_name(op.key.as_deref());
        let k = match self.key_ids.get(&name) {
            Some(&k) => k,
            None => {
                let k = self.keys.len() as u32;
                self.keys.push(name.clone());
                self.key_ids.insert(name, k);
                k
            }
        };
        Ok(self.inner.compile_op(op)?.map(|o| (k, o)))
    }

    fn init(&mut self, _key: &str) -> Self::State {
        let keys = self.keys.clone();
        keys.iter().map(|k| self.inner.initial(Some(k))).collect()
    }

    fn step(&mut self, s: &Self::State, (k, op): &Self::Op) -> Option<Self::State> {
        let cur = *s.get(*k as usize)?;
        let next = self.inner.apply(cur, op)?;
        if next == cur {
            return Some(s.clone());
        }
        let mut out = s.clone();
        out[*k as usize] = next;
        Some(out)
    }

    fn describe(&self, s: &Self::State) -> String {
        let parts: Vec<String> = self
            .keys
            .iter()
            .zip(s.iter())
            .map(|(k, v)| format!("{k:?}: {}", self.inner.show(*v)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn is_pure(&self, (_, op): &Self::Op) -> bool {
        matches!(op, RegOp::Read(_))
    }

    fn may_reach<'a>(
        &mut self,
        s: &Self::State,
        (k, target): &Self::Op,
        others: impl Iterator<Item = &'a Self::Op>,
    ) -> bool {
        let Some(&cur) = s.get(*k as usize) else {
            return true;
        };
        self.inner.reachable(
            cur,
            target,
            others.filter(|(k2, _)| k2 == k).map(|(_, o)| o),
        )
    }

    fn heap_bytes(s: &Self::State) -> usize {
        s.len() * 4
    }
}

/// The key string an operation is split by: a JSON string as-is, other
/// values as JSON text, no key as `_`.
pub fn key_name(key: Option<&Value>) -> String {
    match key {
        None => "_".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}
