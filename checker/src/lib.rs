//! faultline-checker: decides whether a recorded history is consistent.
//!
//! A pure library: no async runtime, no I/O beyond reading a history.
//!
//! - [`format`]: history parsers (JSONL, Jepsen EDN, Porcupine) and format detection.
//! - [`history`]: events, and operations paired from them by Jepsen's rules.
//! - [`verdict`]: `valid` / `invalid` / `unknown`.

pub mod format;
pub mod history;
pub mod verdict;

pub use history::{Event, EventType, History, Operation, Outcome, Process, Value};
pub use verdict::Verdict;
pub mod consistency;
pub mod txn;
