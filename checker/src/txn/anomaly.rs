//! Anomaly names, typed. Every analyser reports one of these; each prints
//! as Elle's name exactly (`G-single-item`, `incompatible-order`, …), which
//! is also how the lattice tables in [`crate::consistency`] spell them (a
//! test checks the two agree both ways).

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! anomalies {
    ($($(#[$doc:meta])* $v:ident => $name:literal,)*) => {
        /// An anomaly type, by Elle's name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Anomaly {
            $($(#[$doc])* $v,)*
        }

        impl Anomaly {
            /// Every anomaly type.
            pub const ALL: &'static [Anomaly] = &[$(Anomaly::$v,)*];

            /// Elle's name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Anomaly::$v => $name,)*
                }
            }
        }
    };
}

anomalies! {
    /// Write cycle: ww edges only (Adya).
    G0 => "G0",
    G0Process => "G0-process",
    G0Realtime => "G0-realtime",
    /// G1a, G1b or G1c (Adya).
    G1 => "G1",
    G1Process => "G1-process",
    G1Realtime => "G1-realtime",
    /// Aborted read (Adya).
    G1a => "G1a",
    /// Intermediate read (Adya).
    G1b => "G1b",
    /// Circular information flow: ww and wr, at least one wr (Adya).
    G1c => "G1c",
    G1cProcess => "G1c-process",
    G1cRealtime => "G1c-realtime",
    /// Exactly one anti-dependency, possibly on a predicate (Adya).
    GSingle => "G-single",
    GSingleProcess => "G-single-process",
    GSingleRealtime => "G-single-realtime",
    /// Exactly one anti-dependency, on an item (Elle).
    GSingleItem => "G-single-item",
    GSingleItemProcess => "G-single-item-process",
    GSingleItemRealtime => "G-single-item-realtime",
    /// Several anti-dependencies, no two adjacent (Elle).
    GNonadjacent => "G-nonadjacent",
    GNonadjacentProcess => "G-nonadjacent-process",
    GNonadjacentRealtime => "G-nonadjacent-realtime",
    /// As G-nonadjacent, every anti-dependency on an item (Elle).
    GNonadjacentItem => "G-nonadjacent-item",
    GNonadjacentItemProcess => "G-nonadjacent-item-process",
    GNonadjacentItemRealtime => "G-nonadjacent-item-realtime",
    /// A cycle with anti-dependencies (Adya).
    G2 => "G2",
    G2Process => "G2-process",
    G2Realtime => "G2-realtime",
    /// A cycle with item anti-dependencies (Adya).
    G2Item => "G2-item",
    G2ItemProcess => "G2-item-process",
    G2ItemRealtime => "G2-item-realtime",
    /// Adya's snapshot-isolation phenomena. Elle spells them both `GSI…`
    /// (implications) and `G-SI…` (what models proscribe); we keep both.
    Gsi => "GSI",
    Gsia => "GSIa",
    Gsib => "GSIb",
    GDashSi => "G-SI",
    GDashSib => "G-SIb",
    /// Adya's PL-CS, PL-2L, PL-MSR and PL-3U phenomena.
    GCursor => "G-cursor",
    GMonotonic => "G-monotonic",
    GMsr => "G-MSR",
    GUpdate => "G-update",
    /// A read inconsistent with the transaction's own earlier micro-ops
    /// (Cerone's INT).
    Internal => "internal",
    /// A read of a write the same transaction makes only later.
    FutureRead => "future-read",
    /// Two reads of a key that no one version order can produce.
    IncompatibleOrder => "incompatible-order",
    /// A committed write built on an aborted one.
    DirtyUpdate => "dirty-update",
    /// Two committed transactions read one version and each wrote the key.
    LostUpdate => "lost-update",
    WriteSkew => "write-skew",
    /// A list read showing an element twice.
    DuplicateElements => "duplicate-elements",
    /// One value appended to a key twice: the history cannot be checked.
    DuplicateAppends => "duplicate-appends",
    /// A version-order source that would order a key's versions cyclically.
    CyclicVersions => "cyclic-versions",
    PredicateReadMiss => "predicate-read-miss",
    /// A cycle some model forbids exists, though none was found in time
    /// (Elle's `cycle-exists-specs`).
    Pl1CycleExists => "PL-1-cycle-exists",
    Pl2CycleExists => "PL-2-cycle-exists",
    PlSiCycleExists => "PL-SI-cycle-exists",
    Pl299CycleExists => "PL-2.99-cycle-exists",
    Pl3CycleExists => "PL-3-cycle-exists",
    PlSsCycleExists => "PL-SS-cycle-exists",
    StrongSessionPl1CycleExists => "strong-session-PL-1-cycle-exists",
    StrongSessionPl2CycleExists => "strong-session-PL-2-cycle-exists",
    StrongSessionSiCycleExists => "strong-session-snapshot-isolation-cycle-exists",
    StrongSessionSerializableCycleExists => "strong-session-serializable-cycle-exists",
    StrongPl1CycleExists => "strong-PL-1-cycle-exists",
    StrongPl2CycleExists => "strong-PL-2-cycle-exists",
    StrongSiCycleExists => "strong-snapshot-isolation-cycle-exists",
    /// The cycle search ran out of budget: could not tell.
    CycleSearchTimeout => "cycle-search-timeout",
    /// No dependencies between transactions: nothing to check.
    EmptyTransactionGraph => "empty-transaction-graph",
    /// The time limit cut the check short.
    CheckTimeout => "check-timeout",
}

/// The anomaly types that mean "could not tell": they make a verdict
/// `unknown`, never `invalid` (Elle's `unknown-anomaly-types`, plus our
/// time limit, plus `duplicate-appends`, which Elle raises as
/// `:valid? :unknown`). They are not in the lattice.
pub const UNKNOWN: &[Anomaly] = &[
    Anomaly::CycleSearchTimeout,
    Anomaly::EmptyTransactionGraph,
    Anomaly::CheckTimeout,
    Anomaly::DuplicateAppends,
];

/// A name that is not an anomaly type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown anomaly `{0}`")]
pub struct UnknownAnomaly(pub String);

impl Anomaly {
    /// The anomaly named `s` (Elle's spelling; a leading `:` is ignored).
    pub fn parse(s: &str) -> Result<Anomaly, UnknownAnomaly> {
        let name = s.strip_prefix(':').unwrap_or(s);
        Anomaly::ALL
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| UnknownAnomaly(s.to_string()))
    }

    /// Whether this type means "could not tell" ([`UNKNOWN`]).
    pub fn is_unknown(self) -> bool {
        UNKNOWN.contains(&self)
    }

    /// The `-process` or `-realtime` variant of a cycle anomaly, if it has
    /// one.
    pub fn variant(self, suffix: &str) -> Option<Anomaly> {
        Anomaly::parse(&format!("{}-{suffix}", self.name())).ok()
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Anomaly {
    type Err = UnknownAnomaly;
    fn from_str(s: &str) -> Result<Anomaly, UnknownAnomaly> {
        Anomaly::parse(s)
    }
}

impl Serialize for Anomaly {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &a in Anomaly::ALL {
            assert_eq!(Anomaly::parse(a.name()), Ok(a));
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(Anomaly::parse(":G2-item"), Ok(Anomaly::G2Item));
        assert!(Anomaly::parse("G3").is_err());
        assert_eq!(
            Anomaly::GSingleItem.variant("realtime"),
            Some(Anomaly::GSingleItemRealtime)
        );
        assert_eq!(Anomaly::G1a.variant("process"), None);
    }
}
