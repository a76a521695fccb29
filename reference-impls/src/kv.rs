//! The replicated state machine every protocol applies its committed
//! commands to: registers, lists, a set, a counter, bank accounts, a FIFO
//! queue, an id generator and a lock.
//!
//! `apply` must be deterministic — replicas that apply the same commands in
//! the same order must end in the same state and return the same outputs —
//! so it uses ordered maps only. A command that certainly has no effect (a
//! CAS whose compare fails, a transfer from an account without the funds)
//! returns `Err`, which the client reports as `fail`.
//!
//! Retried commands are applied once: the store remembers each client's
//! last applied sequence number and its output (the "session" table of the
//! Raft thesis, §6.3).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub type Key = u64;

/// Uniquely names a client request so a retried command is applied once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    pub client: u64,
    pub seq: u64,
}

/// One micro-operation of a transaction (Elle's list-append and
/// rw-register shapes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Micro {
    /// `["append", k, v]`
    Append { key: Key, value: i64 },
    /// `["r", k, [..]]` on a list.
    ReadList { key: Key },
    /// `["w", k, v]` on a register.
    Write { key: Key, value: i64 },
    /// `["r", k, v]` on a register.
    Read { key: Key },
}

/// A client operation on the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Read {
        key: Key,
    },
    Write {
        key: Key,
        value: i64,
    },
    Cas {
        key: Key,
        from: i64,
        to: i64,
    },
    Txn(Vec<Micro>),
    SetAdd {
        value: i64,
    },
    /// Removes `value` from the set (the CRDT store's OR-Set; the
    /// consensus protocols' plain set removes it too).
    SetRemove {
        value: i64,
    },
    SetRead,
    CounterAdd {
        delta: i64,
    },
    CounterRead,
    /// Creates the accounts if there are none yet (idempotent).
    BankInit {
        balances: Vec<i64>,
    },
    BankTransfer {
        from: u32,
        to: u32,
        amount: i64,
    },
    BankRead,
    Enqueue {
        value: i64,
    },
    Dequeue,
    Drain,
    GenerateId,
    /// Grants the lock to `owner` if free; returns a fencing token that
    /// strictly increases with every grant.
    Acquire {
        owner: u64,
    },
    Release {
        owner: u64,
    },
    /// Saga setup (`faultline-node saga` only): each customer's credit and
    /// each item's stock, unless already set up.
    SagaInit {
        credit: Vec<i64>,
        stock: Vec<i64>,
    },
    /// One order, run as a saga (`faultline-node saga` only).
    SagaOrder(crate::saga::Order),
    /// A restock of one item at the stock service (`faultline-node saga`).
    SagaRestock(crate::saga::Restock),
    /// A top-up of one customer's credit (`faultline-node saga`).
    SagaTopUp(crate::saga::TopUp),
    /// Every service's state and ledger, once the sagas are quiet.
    SagaRead,
    /// Lease lock `lock` (docs/lock.md): grants it to the requesting
    /// client for `lease_ms` if it is free, or if its holder is exactly
    /// `preempt` (token and the request that last granted or renewed it;
    /// the leader fills it in once that lease has expired by its clock).
    /// Returns the fencing token, which increases with every grant.
    LeaseAcquire {
        lock: Key,
        lease_ms: u64,
        #[serde(default)]
        preempt: Option<(u64, RequestId)>,
    },
    /// Extends the lease of the holder of `token` by `lease_ms`.
    LeaseRenew {
        lock: Key,
        token: u64,
        lease_ms: u64,
    },
    /// Frees the lock if `token` holds it.
    LeaseRelease {
        lock: Key,
        token: u64,
    },
    /// Dynamo-style get (`faultline-node dynamo` only, docs/dynamo.md):
    /// every sibling of `key` and their causal context.
    DynGet {
        key: Key,
    },
    /// Dynamo-style put (`faultline-node dynamo` only): `value` supersedes
    /// exactly the versions `context` (from the client's last get of the
    /// key) covers; concurrent versions stay as siblings.
    DynPut {
        key: Key,
        value: i64,
        #[serde(default)]
        context: crate::crdt::VersionVector,
    },
    /// The election service's `leader?` (docs/election.md): this node's
    /// view `{"epoch", "leader", "am_leader"}`, answered by the node itself.
    #[serde(rename = "leader?")]
    Leader,
}

impl Op {
    /// True when applying the op cannot change the store, so a protocol
    /// may serve it without a log entry (ReadIndex, leases).
    pub fn is_read_only(&self) -> bool {
        match self {
            Op::Read { .. }
            | Op::SetRead
            | Op::CounterRead
            | Op::BankRead
            | Op::SagaRead
            | Op::DynGet { .. }
            | Op::Leader => true,
            Op::Txn(ms) => ms
                .iter()
                .all(|m| matches!(m, Micro::Read { .. } | Micro::ReadList { .. })),
            _ => false,
        }
    }
}

/// A replicated command: who asked, and what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub id: RequestId,
    pub op: Op,
}

/// The holder of a lease lock, as replicated (expiry is not: only the
/// leader times leases, on its own clock; see `crate::lock`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The client (`RequestId::client`) holding it.
    pub owner: u64,
    pub token: u64,
    pub lease_ms: u64,
    /// The request that granted or last renewed the lease.
    pub since: RequestId,
}

/// What applying an op returned: `Ok(value)` or a definite failure.
pub type Output = Result<Value, String>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Store {
    registers: BTreeMap<Key, i64>,
    lists: BTreeMap<Key, Vec<i64>>,
    set: BTreeSet<i64>,
    counter: i64,
    accounts: Vec<i64>,
    queue: VecDeque<i64>,
    next_id: u64,
    lock_owner: Option<u64>,
    fencing_token: u64,
    #[serde(default)]
    leases: BTreeMap<Key, LeaseHolder>,
    /// The last fencing token a lease grant handed out.
    #[serde(default)]
    lease_token: u64,
    /// client → (last applied seq, its output): applies each request once.
    sessions: BTreeMap<u64, (u64, Output)>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Applies a committed command once; a retry of the client's latest
    /// request returns the remembered output without applying it again.
    pub fn apply(&mut self, cmd: &Command) -> Output {
        if let Some((seq, out)) = self.sessions.get(&cmd.id.client) {
            if cmd.id.seq == *seq {
                return out.clone();
            }
            if cmd.id.seq < *seq {
                return Err("stale request: the client has moved on".into());
            }
        }
        let out = match &cmd.op {
            Op::LeaseAcquire { .. } | Op::LeaseRenew { .. } | Op::LeaseRelease { .. } => {
                self.apply_lease(cmd)
            }
            op => self.apply_op(op),
        };
        self.sessions
            .insert(cmd.id.client, (cmd.id.seq, out.clone()));
        out
    }

    /// The holder of lease lock `lock`, if any.
    pub fn lease(&self, lock: Key) -> Option<&LeaseHolder> {
        self.leases.get(&lock)
    }

    fn apply_lease(&mut self, cmd: &Command) -> Output {
        match &cmd.op {
            Op::LeaseAcquire {
                lock,
                lease_ms,
                preempt,
            } => {
                let free = match (self.leases.get(lock), preempt) {
                    (None, _) => true,
                    (Some(h), Some((token, since))) => h.token == *token && h.since == *since,
                    (Some(_), None) => false,
                };
                if !free {
                    let h = self.leases.get(lock);
                    return Err(format!(
                        "acquire: lock {lock} is held by client {} (token {})",
                        h.map_or(0, |h| h.owner),
                        h.map_or(0, |h| h.token)
                    ));
                }
                self.lease_token += 1;
                self.leases.insert(
                    *lock,
                    LeaseHolder {
                        owner: cmd.id.client,
                        token: self.lease_token,
                        lease_ms: *lease_ms,
                        since: cmd.id,
                    },
                );
                Ok(json!({"token": self.lease_token, "lease_ms": lease_ms}))
            }
            Op::LeaseRenew {
                lock,
                token,
                lease_ms,
            } => match self.leases.get_mut(lock) {
                Some(h) if h.token == *token => {
                    h.lease_ms = *lease_ms;
                    h.since = cmd.id;
                    Ok(json!({"token": token, "lease_ms": lease_ms}))
                }
                _ => Err(format!("renew: token {token} does not hold lock {lock}")),
            },
            Op::LeaseRelease { lock, token } => match self.leases.get(lock) {
                Some(h) if h.token == *token => {
                    self.leases.remove(lock);
                    Ok(json!({"token": token}))
                }
                _ => Err(format!("release: token {token} does not hold lock {lock}")),
            },
            _ => Err("not a lease op".into()),
        }
    }

    /// Evaluates a read-only op against the current state; `None` if the op
    /// would change state.
    pub fn query(&self, op: &Op) -> Option<Output> {
        if !op.is_read_only() {
            return None;
        }
        let mut scratch = self.clone_for_read(op);
        Some(scratch.apply_op(op))
    }

    // Read-only ops never mutate, but `apply_op` takes `&mut self`; only the
    // parts a read touches are cloned.
    fn clone_for_read(&self, op: &Op) -> Store {
        match op {
            Op::Read { .. } | Op::Txn(_) => Store {
                registers: self.registers.clone(),
                lists: self.lists.clone(),
                ..Store::default()
            },
            Op::SetRead => Store {
                set: self.set.clone(),
                ..Store::default()
            },
            Op::CounterRead => Store {
                counter: self.counter,
                ..Store::default()
            },
            Op::BankRead => Store {
                accounts: self.accounts.clone(),
                ..Store::default()
            },
            _ => Store::default(),
        }
    }

    fn apply_op(&mut self, op: &Op) -> Output {
        match op {
            Op::Read { key } => Ok(json!(self.registers.get(key))),
            Op::Write { key, value } => {
                self.registers.insert(*key, *value);
                Ok(json!(value))
            }
            Op::Cas { key, from, to } => match self.registers.get_mut(key) {
                Some(v) if *v == *from => {
                    *v = *to;
                    Ok(json!([from, to]))
                }
                _ => Err(format!("cas: key {key} is not {from}")),
            },
            Op::Txn(ms) => {
                let mut out = Vec::with_capacity(ms.len());
                for m in ms {
                    out.push(match m {
                        Micro::Append { key, value } => {
                            self.lists.entry(*key).or_default().push(*value);
                            json!(["append", key, value])
                        }
                        Micro::ReadList { key } => {
                            json!(["r", key, self.lists.get(key).cloned().unwrap_or_default()])
                        }
                        Micro::Write { key, value } => {
                            self.registers.insert(*key, *value);
                            json!(["w", key, value])
                        }
                        Micro::Read { key } => json!(["r", key, self.registers.get(key)]),
                    });
                }
                Ok(Value::Array(out))
            }
            Op::SetAdd { value } => {
                self.set.insert(*value);
                Ok(json!(value))
            }
            Op::SetRemove { value } => {
                self.set.remove(value);
                Ok(json!(value))
            }
            Op::SetRead => Ok(json!(self.set)),
            Op::CounterAdd { delta } => {
                self.counter += delta;
                Ok(json!(delta))
            }
            Op::CounterRead => Ok(json!(self.counter)),
            Op::BankInit { balances } => {
                if self.accounts.is_empty() {
                    self.accounts = balances.clone();
                }
                Ok(json!(self.accounts))
            }
            Op::BankTransfer { from, to, amount } => {
                let (f, t) = (*from as usize, *to as usize);
                if f >= self.accounts.len() || t >= self.accounts.len() || f == t {
                    return Err(format!("transfer: bad accounts {from} -> {to}"));
                }
                if self.accounts[f] < *amount {
                    return Err(format!("transfer: account {from} has too little"));
                }
                self.accounts[f] -= amount;
                self.accounts[t] += amount;
                Ok(json!({"from": from, "to": to, "amount": amount}))
            }
            Op::BankRead => Ok(json!(self.accounts)),
            Op::Enqueue { value } => {
                self.queue.push_back(*value);
                Ok(json!(value))
            }
            Op::Dequeue => self
                .queue
                .pop_front()
                .map(|v| json!(v))
                .ok_or_else(|| "dequeue: queue is empty".to_string()),
            Op::Drain => Ok(json!(self.queue.drain(..).collect::<Vec<_>>())),
            Op::GenerateId => {
                self.next_id += 1;
                Ok(json!(self.next_id))
            }
            Op::Acquire { owner } => match self.lock_owner {
                None => {
                    self.lock_owner = Some(*owner);
                    self.fencing_token += 1;
                    Ok(json!(self.fencing_token))
                }
                Some(o) => Err(format!("acquire: held by {o}")),
            },
            Op::Release { owner } => match self.lock_owner {
                Some(o) if o == *owner => {
                    self.lock_owner = None;
                    Ok(json!(null))
                }
                _ => Err(format!("release: not held by {owner}")),
            },
            Op::SagaInit { .. }
            | Op::SagaOrder(_)
            | Op::SagaRestock(_)
            | Op::SagaTopUp(_)
            | Op::SagaRead => {
                Err("saga operations are served by `faultline-node saga` only".into())
            }
            Op::LeaseAcquire { .. } | Op::LeaseRenew { .. } | Op::LeaseRelease { .. } => {
                Err("lease ops need the request id (Store::apply)".into())
            }
            Op::DynGet { .. } | Op::DynPut { .. } => {
                Err("dynamo operations are served by `faultline-node dynamo` only".into())
            }
            Op::Leader => Err("leader? is answered by `faultline-node elect` only".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: u64, seq: u64, op: Op) -> Command {
        Command {
            id: RequestId { client, seq },
            op,
        }
    }

    #[test]
    fn retried_command_applies_once() {
        let mut s = Store::new();
        let c = cmd(1, 1, Op::Txn(vec![Micro::Append { key: 3, value: 7 }]));
        s.apply(&c).unwrap();
        s.apply(&c).unwrap();
        let r = s.query(&Op::Txn(vec![Micro::ReadList { key: 3 }])).unwrap();
        assert_eq!(r.unwrap(), json!([["r", 3, [7]]]));
    }

    #[test]
    fn failed_ops_have_no_effect() {
        let mut s = Store::new();
        assert!(
            s.apply(&cmd(
                1,
                1,
                Op::Cas {
                    key: 1,
                    from: 0,
                    to: 1
                }
            ))
            .is_err()
        );
        assert_eq!(s.query(&Op::Read { key: 1 }).unwrap().unwrap(), json!(null));
        s.apply(&cmd(
            1,
            2,
            Op::BankInit {
                balances: vec![10, 0],
            },
        ))
        .unwrap();
        let t = Op::BankTransfer {
            from: 0,
            to: 1,
            amount: 11,
        };
        assert!(s.apply(&cmd(1, 3, t)).is_err());
        assert_eq!(s.query(&Op::BankRead).unwrap().unwrap(), json!([10, 0]));
    }

    #[test]
    fn fencing_tokens_increase() {
        let mut s = Store::new();
        let a = s.apply(&cmd(1, 1, Op::Acquire { owner: 1 })).unwrap();
        assert!(s.apply(&cmd(2, 1, Op::Acquire { owner: 2 })).is_err());
        s.apply(&cmd(1, 2, Op::Release { owner: 1 })).unwrap();
        let b = s.apply(&cmd(2, 2, Op::Acquire { owner: 2 })).unwrap();
        assert!(b.as_u64() > a.as_u64());
    }

    #[test]
    fn query_refuses_writes() {
        assert!(
            Store::new()
                .query(&Op::Write { key: 1, value: 1 })
                .is_none()
        );
    }
}
