//! Shared by the integration tests (and `examples/gen_workload.rs`).

pub mod workloads;
