//! Seeded bugs: realistic mistakes from the literature that a core makes
//! when its [`crate::core::Config`] enables them (`--bug NAME`), so the
//! checker has something real to catch.

/// A seeded bug: its `--bug` name and what it gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bug {
    pub protocol: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// Every protocol's table of seeded bugs: each protocol module defines
/// `pub const BUGS: &[Bug]` and is listed here.
const TABLES: &[&[Bug]] = &[
    crate::raft::BUGS,
    crate::paxos::BUGS,
    crate::zab::BUGS,
    crate::twopc::BUGS,
    crate::saga::BUGS,
    crate::crdt::BUGS,
    crate::lock::BUGS,
    crate::pb::BUGS,
    crate::dynamo::BUGS,
    crate::chain::BUGS,
    crate::elect::BUGS,
    crate::swim::BUGS,
];

/// Every seeded bug.
pub fn all() -> impl Iterator<Item = &'static Bug> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// The bugs of one protocol.
pub fn of(protocol: &str) -> impl Iterator<Item = &'static Bug> + '_ {
    all().filter(move |b| b.protocol == protocol)
}

/// Checks `--bug` names against the protocol's list.
pub fn validate(protocol: &str, names: &[String]) -> Result<(), String> {
    for n in names {
        if !of(protocol).any(|b| b.name == n) {
            let known: Vec<_> = of(protocol).map(|b| b.name).collect();
            return Err(format!(
                "unknown bug `{n}` for {protocol} (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    Ok(())
}
