//! Replays a key's operations in a given order through its model, naming
//! the state after each: what a failure viewer's step control shows while
//! it walks the linearization the search reached (Porcupine's visualiser
//! shows the same states). Compiles the key exactly as the linearizability
//! check does, so the states are the ones the search saw.

use super::coll::{CollModel, MutexModel};
use super::multi::MultiModel;
use super::register::{Keyed, RegModel};
use super::{CompiledOp, Model, ModelError, ModelKind, ModelSpec, Problem, compile};
use crate::history::{History, Operation};
use std::collections::HashMap;

/// States along a sequence of operations of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The model's state before any operation.
    pub initial: String,
    /// `states[i]`: the state after the first `i + 1` operations of the
    /// order; `None` from the first operation that is illegal in the state
    /// before it (a valid linearization has none).
    pub states: Vec<Option<String>>,
}

/// Replays `order` (operation ids, each one of `ops`) from the initial
/// state of `spec`. `ops` are all the operations of one key, as
/// `linear::check` grouped them; `whole` is true when the check did not
/// split a register-like history by key (its one key `_` is then a map).
/// An id the model leaves out (an unconstrained read) keeps the state.
pub fn replay(
    spec: &ModelSpec,
    ops: &[&Operation],
    whole: bool,
    order: &[usize],
    history: Option<&History>,
) -> Result<Replay, ModelError> {
    let register_family = matches!(
        spec.kind,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
    );
    Ok(match spec.kind {
        _ if register_family && whole => walk(
            object(&Keyed::new(RegModel::new(spec)), ops, history)?,
            order,
        ),
        _ if register_family => walk(object(&RegModel::new(spec), ops, history)?, order),
        ModelKind::Mutex => walk(object(&MutexModel::new(spec)?, ops, history)?, order),
        ModelKind::MultiRegister => walk(object(&MultiModel::new(spec), ops, history)?, order),
        _ => walk(object(&CollModel::new(spec)?, ops, history)?, order),
    })
}

/// The object's problem as `linear::check` compiles it: same model, same
/// object name (the model's partition of the object's first op).
fn object<M: Model>(
    proto: &M,
    ops: &[&Operation],
    history: Option<&History>,
) -> Result<Problem<M>, ModelError> {
    let key = ops
        .first()
        .map_or_else(|| "_".to_string(), |o| proto.partition(o));
    compile(proto, &key, ops, history)
}

fn walk<M: Model>((mut m, init, ops): Problem<M>, order: &[usize]) -> Replay {
    let by_id: HashMap<usize, &CompiledOp<M::Op>> = ops.iter().map(|o| (o.id, o)).collect();
    let initial = m.describe(&init);
    let mut state = Some(init);
    let states = order
        .iter()
        .map(|id| {
            state = match (state.take(), by_id.get(id)) {
                (Some(s), Some(op)) => m.step(&s, &op.op),
                (s, _) => s,
            };
            state.as_ref().map(|s| m.describe(s))
        })
        .collect();
    Replay { initial, states }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_order_and_stop_at_an_illegal_op() {
        let h = crate::format::jsonl::parse(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
             {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
             {\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":2}\n\
             {\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":2}\n\
             {\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
             {\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n"
                .as_bytes(),
        )
        .expect("a history");
        let paired = h.pair().expect("pairs");
        let ops: Vec<&Operation> = paired.operations.iter().collect();
        let spec = ModelSpec::new(ModelKind::CasRegister);
        let r = replay(&spec, &ops, false, &[0, 1, 2], Some(&h)).expect("compiles");
        assert_eq!(r.states[0].as_deref(), Some("1"));
        assert_eq!(r.states[1].as_deref(), Some("2"));
        assert_eq!(r.states[2], None, "read 1 is illegal after write 2");
        let r = replay(&spec, &ops, false, &[1, 0, 2], Some(&h)).expect("compiles");
        assert_eq!(r.states[2].as_deref(), Some("1"));
        assert_ne!(r.initial, "1");
    }
}
