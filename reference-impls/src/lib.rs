//! faultline-node: the bundled protocol implementations that faultline
//! deploys to nodes and then tries to break.
//!
//! Every protocol has the same shape (see `STYLE.md`, after etcd's raft and
//! raft-rs):
//!
//! - a **pure core** implementing [`core::Core`]: inputs (a tick, a peer
//!   message, a client request) go in through `step`; `ready()` hands back a
//!   batch of durable records, messages and client replies. No sockets, no
//!   clocks but the ones passed in, no unseeded randomness — so every core is
//!   tested by [`sim`] without a network, under drops, duplicates,
//!   reorderings, partitions and crash-restarts;
//! - the replicated state machine, [`kv::Store`], shared by all protocols so
//!   every workload (register, list-append, set, …) works on every protocol;
//! - a thin I/O shell (TCP, the write-ahead log with fsync, the client API)
//!   that runs any core.
//!
//! Seeded bugs are named in [`bugs`]; a core consults its [`core::Config`]'s
//! bug set at the exact line where the mistake would be made.

#[cfg(test)]
mod bug_search;
pub mod bugs;
pub mod chain;
pub mod core;
pub mod crdt;
pub mod dynamo;
pub mod elect;
pub mod kv;
pub mod lock;
pub mod paxos;
pub mod pb;
pub mod quorum;
pub mod raft;
pub mod registry;
pub mod ring;
pub mod saga;
pub mod shell;
pub mod sim;
pub mod swim;
pub mod twopc;
pub mod zab;
