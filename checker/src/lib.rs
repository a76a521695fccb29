//! faultline-checker: decides whether a recorded history is consistent.
//!
//! A pure library: no async runtime, no I/O beyond reading a history.
//!
//! - [`format`]: history parsers (JSONL, Jepsen EDN, Porcupine) and format detection.
//! - [`history`]: events, and operations paired from them by Jepsen's rules.
//! - [`verdict`]: `valid` / `invalid` / `unknown`.
//! - [`model`]: sequential specifications (registers, kv, mutex, set, queues).
//! - [`linear`]: the linearizability checker (WGL search, split by key).
//! - [`session`]: session guarantees and causal consistency of register histories.
//! - [`set_full`]: the set workload's check (lost and unexpected elements).
//! - [`txn`], [`consistency`]: Elle-style transactional checking and the model lattice.

pub mod format;
pub mod history;
pub mod linear;
pub mod model;
pub mod verdict;

pub use format::{Format, InputError};
pub use history::{Event, EventType, History, Operation, Outcome, Process, Value};
pub use verdict::Verdict;
pub mod consistency;
pub mod session;
pub mod set_full;
pub mod txn;
