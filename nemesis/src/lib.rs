//! faultline-nemesis: the fault catalog, grudges, and the node-side
//! commands that make and heal each fault.
//!
//! Everything here is pure: a [`Fault`] is a value, and turning it into
//! shell commands needs only a map of node names to addresses. Running the
//! commands (over SSH) and remembering which faults are active is the
//! caller's job (see the `faultline` binary).
//!
//! - [`grudge`]: who drops whom, with pure builders.
//! - [`fault`]: the fault catalog and per-node start/heal commands.
//! - [`event`]: the history record of each start/heal.
//! - [`kind`]: the `--nemesis` kinds, names and help, in one table.
//! - [`choice`]: a drawn fault as data ([`Choice`]), the pure [`draw`], and
//!   the one builder of its node faults ([`Choice::faults`]).
//! - [`shrink`]: delta debugging of a failing schedule (pure; the oracle
//!   that replays a candidate is the caller's).

pub mod choice;
pub mod event;
pub mod fault;
pub mod grudge;
pub mod kind;
pub mod shrink;

pub use choice::{Choice, Cluster, DbProcess, DrawError, Drawn, FaultEnv, draw};
pub use event::NemesisEvent;
pub use fault::{Fault, FaultError, NodeAddrs, ProcTarget};
pub use grudge::Grudge;
pub use kind::{NemesisKind, parse_list};
