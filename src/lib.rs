//! faultline as a library: what the `faultline` binary is built from.
//!
//! - [`runner`]: runs a test (workers, nemesis hook, history recording).

pub mod runner;
