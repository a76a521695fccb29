//! The workload catalogue: operations, checkers, required capabilities.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A workload: a family of operations and the checker that judges them.
///
/// | workload | ops (`f`) | checker | model |
/// |---|---|---|---|
/// | `register` | `read`, `write`, `cas` per `key` | linearizable register (WGL, per key) | linearizable |
/// | `list-append` | `txn` of `append`/`r` | Elle list-append | strict-serializable |
/// | `rw-register` | `txn` of `w`/`r` | Elle rw-register | strict-serializable |
/// | `set` | `add`, final `read` | set | linearizable (no lost adds) |
/// | `bank` | `transfer`, `read` (all balances), final `read` | bank (totals conserved, no negative balances) | snapshot-isolation |
/// | `counter` | `add`, `read` | counter (read within bounds) | linearizable |
/// | `queue` | `enqueue`, `dequeue`, final `drain` | total-queue (no loss, no duplicates) | linearizable |
/// | `unique-ids` | `generate` | unique-ids | unique |
/// | `lock` | `acquire`, `release` | lock (mutual exclusion: linearizable mutex; fencing tokens increase) | linearizable |
/// | `saga` | `order` (one saga over three services), `restock`, `top-up`, final `read` (ledgers) | saga (committed or fully compensated, applied once, terminated, conserved with the supplies) | saga |
/// | `fenced` | `acquire`, `renew`, `release` of a lease per `key`, `write` through a fenced storage, final `read` | fenced (lease holders exclusive; no stale-token write accepted) | fenced |
/// | `siblings` | `write` of unique values (with the causal context of the process' last `read` of the key), `read` of every sibling, per `key`; final `read`s | siblings (no acknowledged write lost; no superseded sibling returned) | siblings |
/// | `election` | `leader?` polled on every node: its view `{node, epoch, leader, am_leader}` | election (one leader per epoch; epochs never go back; time to elect) | election |
/// | `membership` | `members` (the client's node's membership view), final `members` on every node | detector (detection time, false suspicions; no failure missed, no live member left dead) | detector |
///
/// The checkers live in faultline-checker under the same names
/// (`bank`, `counter`, `queue`, `unique_ids`, `lock`); docs/workloads.md
/// says what each checks and what a target must support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Register,
    ListAppend,
    RwRegister,
    Set,
    Bank,
    Counter,
    Queue,
    UniqueIds,
    Lock,
    Saga,
    Fenced,
    Siblings,
    Election,
    Membership,
}

/// Something a target's client must be able to do for a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Read one key.
    Read,
    /// Blind write of one key.
    Write,
    /// Compare-and-set on one key's value.
    CompareAndSet,
    /// Atomic multi-key transactions (read and write several keys).
    Transaction,
    /// Append to a list value.
    Append,
    /// Add to a set and read the whole set.
    SetAdd,
    /// Atomic transfer between two accounts and a consistent read of all.
    Transfer,
    /// Increment a counter.
    Increment,
    /// FIFO enqueue/dequeue.
    Queue,
    /// Generate a cluster-unique id.
    UniqueId,
    /// Acquire/release a mutual-exclusion lock.
    Lock,
    /// Run an order as a saga over several services, and read their ledgers.
    Saga,
    /// Leases with fencing tokens, and a storage that checks them.
    FencedLease,
    /// Tell which node this node believes leads, and in which epoch.
    LeaderView,
    /// Answer this node's membership view (member → alive/suspect/dead).
    Membership,
}

impl Workload {
    pub const ALL: [Workload; 14] = [
        Workload::Register,
        Workload::ListAppend,
        Workload::RwRegister,
        Workload::Set,
        Workload::Bank,
        Workload::Counter,
        Workload::Queue,
        Workload::UniqueIds,
        Workload::Lock,
        Workload::Saga,
        Workload::Fenced,
        Workload::Siblings,
        Workload::Election,
        Workload::Membership,
    ];

    /// The name used on the command line and in `test.json`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
            Workload::Set => "set",
            Workload::Bank => "bank",
            Workload::Counter => "counter",
            Workload::Queue => "queue",
            Workload::UniqueIds => "unique-ids",
            Workload::Lock => "lock",
            Workload::Saga => "saga",
            Workload::Fenced => "fenced",
            Workload::Siblings => "siblings",
            Workload::Election => "election",
            Workload::Membership => "membership",
        }
    }

    /// The checker (in faultline-checker) this workload's history goes to.
    pub fn checker(self) -> &'static str {
        match self {
            Workload::Register => "linearizable-register",
            Workload::ListAppend => "elle-list-append",
            Workload::RwRegister => "elle-rw-register",
            Workload::Set => "set",
            Workload::Bank => "bank",
            Workload::Counter => "counter",
            Workload::Queue => "queue",
            Workload::UniqueIds => "unique-ids",
            Workload::Lock => "lock",
            Workload::Saga => "saga",
            Workload::Fenced => "fenced",
            Workload::Siblings => "siblings",
            Workload::Election => "election",
            Workload::Membership => "detector",
        }
    }

    /// The strongest consistency model the workload checks by default.
    pub fn consistency_model(self) -> &'static str {
        match self {
            Workload::ListAppend | Workload::RwRegister => "strict-serializable",
            Workload::Bank => "snapshot-isolation",
            Workload::UniqueIds => "unique",
            Workload::Saga => "saga",
            Workload::Fenced => "fenced",
            Workload::Siblings => "siblings",
            Workload::Election => "election",
            Workload::Membership => "detector",
            _ => "linearizable",
        }
    }

    /// What a target must support to run this workload.
    pub fn capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Workload::Register => &[Read, Write, CompareAndSet],
            Workload::ListAppend => &[Transaction, Append],
            Workload::RwRegister => &[Transaction, Read, Write],
            Workload::Set => &[SetAdd],
            Workload::Bank => &[Transfer, Transaction],
            Workload::Counter => &[Increment, Read],
            Workload::Queue => &[Queue],
            Workload::UniqueIds => &[UniqueId],
            Workload::Lock => &[Lock],
            Workload::Saga => &[Saga],
            Workload::Fenced => &[FencedLease],
            Workload::Siblings => &[Read, Write],
            Workload::Election => &[LeaderView],
            Workload::Membership => &[Membership],
        }
    }

    /// True when the history needs final reads after the faults are healed
    /// (the checker compares what was added against what is finally there).
    pub fn needs_final_read(self) -> bool {
        matches!(
            self,
            Workload::Set
                | Workload::Bank
                | Workload::Queue
                | Workload::Saga
                | Workload::Fenced
                | Workload::Siblings
                | Workload::Membership
        )
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown workload name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown workload `{0}` (known: {known})",
    known = Workload::ALL.map(Workload::name).join(", ")
)]
pub struct UnknownWorkload(pub String);

impl FromStr for Workload {
    type Err = UnknownWorkload;
    fn from_str(s: &str) -> Result<Workload, UnknownWorkload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
    }
}

/// A workload and its knobs. Everything here is recorded in `test.json`,
/// so a run can be repeated with the same seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadOptions {
    pub workload: Workload,
    /// Keys in use at once (register, list-append, rw-register). Small
    /// numbers make more contention, which finds more anomalies.
    pub active_keys: u32,
    /// Operations (register) or writes (txn workloads) per key before the
    /// key is retired for a fresh one: keeps each key's history small
    /// enough for the linearizability search.
    pub ops_per_key: u32,
    /// Longest transaction (micro-ops), at least 1.
    pub max_txn_len: u32,
    /// Bank: number of accounts (ids `0..accounts`).
    pub accounts: u32,
    /// Bank: the sum of all balances, spread evenly at setup.
    pub total_balance: i64,
    /// Set: remove elements too, drawn like the adds from a small universe
    /// so elements come back after removes (an OR-Set's workload; the
    /// target asks for it). Off: every add is a fresh element, no removes.
    #[serde(default)]
    pub set_removes: bool,
    /// Register: reads and blind writes of unique values over a fixed set
    /// of `active_keys` keys (no CAS, no key rotation), then a final read
    /// of every key — what a last-writer-wins register can promise and
    /// the session/convergence checks need (a read names the one write it
    /// saw). The CRDT target asks for it.
    #[serde(default)]
    pub register_blind_writes: bool,
}

impl WorkloadOptions {
    /// Defaults close to Jepsen's and Elle's.
    pub fn new(workload: Workload) -> WorkloadOptions {
        WorkloadOptions {
            workload,
            active_keys: 5,
            ops_per_key: 200,
            max_txn_len: 5,
            accounts: 5,
            total_balance: 100,
            set_removes: false,
            register_blind_writes: false,
        }
    }

    /// Initial balances for the bank workload: `total_balance` spread evenly,
    /// the remainder on account 0.
    pub fn initial_balances(&self) -> Vec<i64> {
        let n = i64::from(self.accounts.max(1));
        let each = self.total_balance / n;
        let mut v = vec![each; n as usize];
        v[0] += self.total_balance - each * n;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(json, format!("\"{}\"", w.name()));
        }
        assert!("nope".parse::<Workload>().is_err());
    }

    #[test]
    fn balances_sum_to_total() {
        let mut o = WorkloadOptions::new(Workload::Bank);
        o.accounts = 3;
        o.total_balance = 100;
        assert_eq!(o.initial_balances().iter().sum::<i64>(), 100);
    }
}
