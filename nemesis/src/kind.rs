//! The fault kinds `--nemesis` takes, in one table: each kind's name (what
//! `--nemesis`, `test.json` and `faultline targets` say) and its help line.
//! Adding a kind starts here (docs/nemesis.md lists the rest).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`NemesisKind`], [`NemesisKind::ALL`], `name` and `help` from
/// one table, so a kind cannot have a variant without a name or help.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $help:literal; )*) => {
        /// One entry of `--nemesis`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum NemesisKind {
            $( $(#[$doc])* $variant, )*
        }

        impl NemesisKind {
            /// Every kind, in the order help lists them.
            pub const ALL: &'static [NemesisKind] = &[$(NemesisKind::$variant),*];

            /// The `--nemesis` name.
            pub fn name(self) -> &'static str {
                match self {
                    $( NemesisKind::$variant => $name, )*
                }
            }

            /// What the kind does, one line for help text.
            pub fn help(self) -> &'static str {
                match self {
                    $( NemesisKind::$variant => $help, )*
                }
            }
        }
    };
}

kinds! {
    Partition = "partition", "a random grudge (isolate one node, halves, one-way halves, \
        majorities ring), or a group the target names cut off";
    Kill = "kill", "SIGKILL the DB on a random node; the heal restarts it";
    /// Every node at once (Jepsen's kill with `:targets :all`): a power
    /// failure of the whole cluster.
    KillAll = "kill-all", "SIGKILL the DB on every node at once (a cluster power failure)";
    Pause = "pause", "SIGSTOP the DB on a random node; the heal sends SIGCONT";
    Clock = "clock", "bump or strobe one random node's clock by 10 ms to 2 min";
    Crash = "crash", "crash a whole lab node; the DB is restarted after it returns";
    Bandwidth = "bandwidth", "limit one link between two nodes to 1mbit";
    Loss = "loss", "drop 5-30% of node-to-node packets";
    Latency = "latency", "delay node-to-node packets by 20-250 ms (lab only)";
    KillLeader = "kill-leader", "SIGKILL the leader; the heal restarts it";
    PauseLeader = "pause-leader", "SIGSTOP the leader until the heal";
    IsolateLeader = "isolate-leader", "cut the leader off from every other node";
    SkewLeader = "skew-leader", "isolate the leader and set its clock back 2-30 s";
    LeaderChurn = "leader-churn", "three leaders in a few seconds: isolate the leader, \
        then its successor, kill the third";
}

impl NemesisKind {
    /// Whether the kind moves a node's clock (needs libfaketime in the lab,
    /// or the clock helper outside it).
    pub fn uses_clock(self) -> bool {
        matches!(self, NemesisKind::Clock | NemesisKind::SkewLeader)
    }

    /// Whether the kind aims at the current leader (the draw wants
    /// [`crate::Cluster::leader`]; without one it hits a random node).
    /// A partition isolates the leader in its isolate-one shape.
    pub fn wants_leader(self) -> bool {
        matches!(
            self,
            NemesisKind::Partition
                | NemesisKind::KillLeader
                | NemesisKind::PauseLeader
                | NemesisKind::IsolateLeader
                | NemesisKind::SkewLeader
                | NemesisKind::LeaderChurn
        )
    }

    /// `partition, kill, …`: every name, for help and errors.
    pub fn names() -> String {
        let v: Vec<&str> = NemesisKind::ALL.iter().map(|k| k.name()).collect();
        v.join(", ")
    }

    /// One line per kind, `  name: help`, for long help.
    pub fn help_list() -> String {
        NemesisKind::ALL
            .iter()
            .map(|k| format!("  {}: {}", k.name(), k.help()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NemesisKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NemesisKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown nemesis `{s}` (expected a comma list of {}, or none)",
                    NemesisKind::names()
                )
            })
    }
}

/// By name, as `--nemesis` takes it.
impl Serialize for NemesisKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for NemesisKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses `partition,kill,pause` or `none` (empty list). Duplicates are dropped.
pub fn parse_list(s: &str) -> Result<Vec<NemesisKind>, String> {
    let s = s.trim();
    if s == "none" || s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let k: NemesisKind = part.trim().parse()?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_name_that_parses_back() {
        let mut seen = std::collections::BTreeSet::new();
        for &k in NemesisKind::ALL {
            assert!(seen.insert(k.name()), "{k:?}: name used twice");
            assert_eq!(k.name().parse::<NemesisKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
            assert_eq!(
                serde_json::from_value::<NemesisKind>(k.name().into()).unwrap(),
                k
            );
            assert!(!k.help().is_empty());
        }
    }

    #[test]
    fn parses_lists() {
        assert_eq!(parse_list("none").unwrap(), vec![]);
        assert_eq!(
            parse_list("partition,kill,pause,kill").unwrap(),
            vec![
                NemesisKind::Partition,
                NemesisKind::Kill,
                NemesisKind::Pause
            ]
        );
        let e = parse_list("partition,bogus").unwrap_err();
        assert!(e.contains("`bogus`") && e.contains("leader-churn"), "{e}");
        assert_eq!(
            parse_list("loss, latency").unwrap(),
            vec![NemesisKind::Loss, NemesisKind::Latency]
        );
        let leader =
            parse_list("kill-leader,pause-leader,isolate-leader,skew-leader,leader-churn").unwrap();
        for k in leader {
            assert!(k.wants_leader());
            // Only the skew moves a clock (so etcd in the lab refuses it).
            assert_eq!(k.uses_clock(), k == NemesisKind::SkewLeader);
        }
        assert!(serde_json::from_value::<NemesisKind>("flood".into()).is_err());
    }
}
