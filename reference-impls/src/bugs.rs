//! Seeded bugs: realistic mistakes from the literature that a core makes
//! when its [`crate::core::Config`] enables them (`--bug NAME`), so the
//! checker has something real to catch.
//!
//! Each protocol declares its bugs once, with [`seeded_bugs!`]: that one
//! declaration is the `--bug` table (`BUGS`), the simulator-only table
//! (`SIM_ONLY_BUGS`) and the typed `Bugs` struct the core reads (one `bool`
//! per bug), so a core asks `self.bugs.commit_old_term`, not a string, and
//! a misspelt bug is a compile error instead of a bug silently switched
//! off. The protocols themselves are listed in [`crate::registry`].

/// A seeded bug: its `--bug` name and what it gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bug {
    pub protocol: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// Declares a protocol's seeded bugs: `pub const BUGS`, `pub const
/// SIM_ONLY_BUGS` and `pub struct Bugs` with one field per bug.
///
/// ```ignore
/// crate::seeded_bugs! {
///     "raft";
///     vote_without_log_check = "vote-without-log-check": "grants votes …";
///     sim_only: commit_old_term = "commit-old-term": "commits by counting …";
/// }
/// ```
///
/// Simulator-only bugs are honoured by the core but refused as `--bug`
/// (no lab run exposes them; their simulator tests are the check). The
/// registry test checks that every name is its field with `-` for `_`.
#[macro_export]
macro_rules! seeded_bugs {
    (
        $proto:literal;
        $( $f:ident = $n:literal : $d:literal ),* $(,)? ;
        sim_only: $( $sf:ident = $sn:literal : $sd:literal ),* $(,)?
    ) => {
        /// The seeded bugs a `--bug NAME` may enable.
        pub const BUGS: &[$crate::bugs::Bug] = &[
            $( $crate::bugs::Bug { protocol: $proto, name: $n, description: $d } ),*
        ];

        /// Seeded bugs the core honours but `--bug` refuses: no lab run
        /// exposes them, so their simulator tests are the check.
        pub const SIM_ONLY_BUGS: &[$crate::bugs::Bug] = &[
            $( $crate::bugs::Bug { protocol: $proto, name: $sn, description: $sd } ),*
        ];

        /// Which seeded bugs a node has (all off by default): one field per
        /// entry of [`BUGS`] and [`SIM_ONLY_BUGS`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Bugs {
            $( pub $f: bool, )*
            $( pub $sf: bool, )*
        }

        impl Bugs {
            /// From bug names (`--bug` and simulator-only ones alike);
            /// an unknown name is an error listing the known ones.
            pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Bugs, String> {
                #[allow(unused_mut)]
                let mut b = Bugs::default();
                for n in names {
                    match n.as_ref() {
                        $( $n => b.$f = true, )*
                        $( $sn => b.$sf = true, )*
                        other => return Err($crate::bugs::unknown($proto, other)),
                    }
                }
                Ok(b)
            }

            /// The bugs of `config`. The shell validates `--bug` names
            /// before a core starts, so an unknown name here is a test's
            /// typo, and panics rather than leave the bug silently off.
            pub fn from_config(config: &$crate::core::Config) -> Bugs {
                let names: Vec<&String> = config.bugs.iter().collect();
                match Bugs::from_names(&names) {
                    Ok(b) => b,
                    Err(e) => panic!("{e}"),
                }
            }

            /// The names of the bugs that are on, in declaration order.
            pub fn names(&self) -> Vec<&'static str> {
                #[allow(unused_mut)]
                let mut v = Vec::new();
                $( if self.$f { v.push($n); } )*
                $( if self.$sf { v.push($sn); } )*
                v
            }

            /// Each bug's name and field name (for the registry test).
            pub fn fields() -> Vec<(&'static str, &'static str)> {
                vec![ $( ($n, stringify!($f)), )* $( ($sn, stringify!($sf)), )* ]
            }
        }
    };
}

/// The error for a bug `name` that `protocol` does not have.
pub fn unknown(protocol: &str, name: &str) -> String {
    let known: Vec<_> = of(protocol).map(|b| b.name).collect();
    let sim = if sim_only_of(protocol).any(|b| b.name == name) {
        " (a simulator-only bug: no lab run exposes it)"
    } else {
        ""
    };
    format!(
        "unknown bug `{name}`{sim} for {protocol} (known: {})",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Every `--bug`, of every protocol in the registry.
pub fn all() -> impl Iterator<Item = &'static Bug> {
    crate::registry::PROTOCOLS
        .iter()
        .flat_map(|p| p.bugs.iter())
}

/// The `--bug`s of one protocol.
pub fn of(protocol: &str) -> impl Iterator<Item = &'static Bug> + '_ {
    crate::registry::find(protocol)
        .into_iter()
        .flat_map(|p| p.bugs.iter())
}

/// The simulator-only bugs of one protocol.
pub fn sim_only_of(protocol: &str) -> impl Iterator<Item = &'static Bug> + '_ {
    crate::registry::find(protocol)
        .into_iter()
        .flat_map(|p| p.sim_only_bugs.iter())
}

/// Checks `--bug` names against the protocol's list (simulator-only bugs
/// are refused, saying so).
pub fn validate(protocol: &str, names: &[String]) -> Result<(), String> {
    for n in names {
        if !of(protocol).any(|b| b.name == n) {
            return Err(unknown(protocol, n));
        }
    }
    Ok(())
}
