//! faultline-results: what a person reads after a check or a run.
//!
//! - [`store`]: the on-disk store of runs (`store/<test>/<timestamp>/`), the
//!   flushed `history.jsonl` writer, `results.json`, and the run listing.
//! - [`timeline`]: a self-contained HTML page of a key that is not
//!   linearizable (operations per process over time, the linearization
//!   reached, the operation that broke it).

mod ops;
pub mod plots;
pub mod store;
pub mod timeline;

pub use store::{HistoryWriter, RunDir, RunSummary, Store, StoreError};
