//! faultline-results: what a person reads after a check or a run.
//!
//! - [`timeline`]: a self-contained HTML page of a key that is not
//!   linearizable (operations per process over time, the linearization
//!   reached, the operation that broke it).

pub mod timeline;
