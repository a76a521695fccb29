//! faultline-workloads: what the clients do during a test.
//!
//! - [`Workload`]: the workloads faultline knows, the checker and the
//!   consistency model each one is judged by, and the [`Capability`]s a
//!   target must have to run it.
//! - [`generator`]: seeded operation generators, one per workload.
//! - [`Client`]: the trait a target implements to execute operations, and
//!   its contract ([`Op`] in, [`Completion`] out).
//!
//! ```
//! use faultline_workloads::{generator, Workload, WorkloadOptions};
//! let opts = WorkloadOptions::new(Workload::ListAppend);
//! let mut g = generator(&opts, 42);
//! let op = g.next_op();
//! assert_eq!(op.f, "txn");
//! ```

mod client;
mod generate;
mod workload;

pub use client::{BoxFuture, Client, Completion, Op};
pub use generate::{Generator, SIBLING_KEYS, generator};
pub use workload::{Capability, Workload, WorkloadOptions};

/// Re-exported so targets and the runner speak the checker's vocabulary.
pub use faultline_checker::{Outcome, Value};
