//! The one list of protocols `faultline-node` runs.
//!
//! Adding a protocol means: its module (a [`Core`] plus a
//! [`crate::seeded_bugs!`] declaration) and **one entry in [`PROTOCOLS`]**.
//! `faultline-node --list`, `faultline-node NAME`, the bug checks, and the
//! `faultline targets` catalogue (the targets crate builds the node rows
//! from here) all read this list; adding a bug means one line in the
//! protocol's `seeded_bugs!`.

use crate::bugs::Bug;
use crate::core::Core;
use crate::shell::{self, Options};

/// A protocol `faultline-node` can run.
#[derive(Clone, Copy)]
pub struct Protocol {
    /// The subcommand (`faultline-node raft`) and target name.
    pub name: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// Its `--bug`s.
    pub bugs: &'static [Bug],
    /// Bugs its core honours that `--bug` refuses (simulator tests only).
    pub sim_only_bugs: &'static [Bug],
    /// The `--option` names it reads (others are ignored by the core).
    pub options: &'static [&'static str],
    /// The workloads its clients speak, by `--workload` name.
    pub workloads: &'static [&'static str],
    /// A replicated log of the key-value store: one row of the generic
    /// `node` target (the other protocols have a target of their own).
    pub replicated_log: bool,
    /// Checks (and normalises) the options and bugs beyond their names.
    pub prepare: fn(&mut Options) -> Result<(), String>,
    /// Runs the server until it stops.
    pub run: fn(Options) -> Result<(), String>,
}

/// The key-value workloads every replicated log runs.
const KV: &[&str] = &[
    "register",
    "list-append",
    "rw-register",
    "set",
    "bank",
    "counter",
    "queue",
    "unique-ids",
    "lock",
];

fn run<C: Core>(opts: Options) -> Result<(), String> {
    shell::run::<C>(opts).map_err(|e| e.to_string())
}

fn nothing(_: &mut Options) -> Result<(), String> {
    Ok(())
}

/// Every protocol, in the order `faultline-node --list` shows them.
pub const PROTOCOLS: &[Protocol] = &[
    Protocol {
        name: "raft",
        about: "Raft: randomized elections, pipelined replication, ReadIndex reads, snapshots",
        bugs: crate::raft::BUGS,
        sim_only_bugs: crate::raft::SIM_ONLY_BUGS,
        options: &["lease-read", "pre-vote", "snapshot-entries"],
        workloads: KV,
        replicated_log: true,
        prepare: nothing,
        run: run::<crate::raft::Raft>,
    },
    Protocol {
        name: "paxos",
        about: "Multi-Paxos: stable leader skipping phase 1, pipelined accepts, gap no-ops",
        bugs: crate::paxos::BUGS,
        sim_only_bugs: crate::paxos::SIM_ONLY_BUGS,
        options: &[],
        workloads: KV,
        replicated_log: true,
        prepare: nothing,
        run: run::<crate::paxos::Paxos>,
    },
    Protocol {
        name: "zab",
        about: "Zab: fast leader election, discovery, synchronization and broadcast phases",
        bugs: crate::zab::BUGS,
        sim_only_bugs: crate::zab::SIM_ONLY_BUGS,
        options: &[],
        workloads: KV,
        replicated_log: true,
        prepare: nothing,
        run: run::<crate::zab::Zab>,
    },
    Protocol {
        name: "single",
        about: "a fixed primary replicating synchronously to every member (scaffolding for the shell; no failover)",
        bugs: &[],
        sim_only_bugs: &[],
        options: &[],
        workloads: KV,
        replicated_log: true,
        prepare: nothing,
        run: run::<shell::single::Single>,
    },
    Protocol {
        name: "pb",
        about: crate::pb::ABOUT,
        bugs: crate::pb::BUGS,
        sim_only_bugs: crate::pb::SIM_ONLY_BUGS,
        options: &["mode"],
        workloads: KV,
        replicated_log: true,
        prepare: prepare_pb,
        run: run::<crate::pb::Pb>,
    },
    Protocol {
        name: "chain",
        about: crate::chain::ABOUT,
        bugs: crate::chain::BUGS,
        sim_only_bugs: crate::chain::SIM_ONLY_BUGS,
        options: &[],
        workloads: KV,
        replicated_log: true,
        prepare: nothing,
        run: run::<crate::chain::Chain>,
    },
    Protocol {
        name: "twopc",
        about: crate::twopc::ABOUT,
        bugs: crate::twopc::BUGS,
        sim_only_bugs: crate::twopc::SIM_ONLY_BUGS,
        options: &[],
        workloads: &["bank"],
        replicated_log: false,
        prepare: nothing,
        run: run::<crate::twopc::TwoPc>,
    },
    Protocol {
        name: "saga",
        about: crate::saga::ABOUT,
        bugs: crate::saga::BUGS,
        sim_only_bugs: crate::saga::SIM_ONLY_BUGS,
        options: &["mode"],
        workloads: &["saga"],
        replicated_log: false,
        prepare: nothing,
        run: run::<crate::saga::Saga>,
    },
    Protocol {
        name: "crdt",
        about: crate::crdt::ABOUT,
        bugs: crate::crdt::BUGS,
        sim_only_bugs: crate::crdt::SIM_ONLY_BUGS,
        options: &["gossip-ticks", "fanout"],
        workloads: &["counter", "set", "register"],
        replicated_log: false,
        prepare: nothing,
        run: run::<crate::crdt::CrdtStore>,
    },
    Protocol {
        name: "lock",
        about: crate::lock::ABOUT,
        bugs: crate::lock::BUGS,
        sim_only_bugs: crate::lock::SIM_ONLY_BUGS,
        options: &["tick-ms", "max-lease-ms", "storage-port", "storage-node"],
        workloads: &["fenced"],
        replicated_log: false,
        prepare: nothing,
        run: crate::lock::run_node,
    },
    Protocol {
        name: "dynamo",
        about: crate::dynamo::ABOUT,
        bugs: crate::dynamo::BUGS,
        sim_only_bugs: crate::dynamo::SIM_ONLY_BUGS,
        options: &crate::dynamo::OPTIONS,
        workloads: &["siblings", "register"],
        replicated_log: false,
        prepare: prepare_dynamo,
        run: run::<crate::dynamo::DynamoStore>,
    },
    Protocol {
        name: "elect",
        about: crate::elect::ABOUT,
        bugs: crate::elect::BUGS,
        sim_only_bugs: crate::elect::SIM_ONLY_BUGS,
        options: &["algo"],
        workloads: &["election"],
        replicated_log: false,
        prepare: prepare_elect,
        run: run::<crate::elect::Elect>,
    },
    Protocol {
        name: "swim",
        about: crate::swim::ABOUT,
        bugs: crate::swim::BUGS,
        sim_only_bugs: crate::swim::SIM_ONLY_BUGS,
        options: &crate::swim::OPTIONS,
        workloads: &["membership"],
        replicated_log: false,
        prepare: prepare_swim,
        run: run::<crate::swim::Swim>,
    },
];

/// The protocol named `name`.
pub fn find(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().find(|p| p.name == name)
}

/// Every protocol's name, for messages.
pub fn names() -> Vec<&'static str> {
    PROTOCOLS.iter().map(|p| p.name).collect()
}

/// `algo=` must name an algorithm, and every bug must apply to it.
fn prepare_elect(o: &mut Options) -> Result<(), String> {
    let algo = o
        .options
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix("algo="))
        .unwrap_or("bully");
    crate::elect::Algo::parse(algo)
        .map_err(|e| format!("--option {e}"))
        .and_then(|a| crate::elect::validate_bugs(a, &o.bugs))
}

fn prepare_pb(o: &mut Options) -> Result<(), String> {
    match o.options.iter().find_map(|o| o.strip_prefix("mode=")) {
        Some(m) => crate::pb::Mode::parse(m)
            .map(|_| ())
            .map_err(|e| format!("--option {e}")),
        None => Ok(()),
    }
}

fn prepare_swim(o: &mut Options) -> Result<(), String> {
    crate::swim::Params::from_config(&o.config()).map(|_| ())
}

/// `--option n=3,r=2,w=2` is three options.
fn prepare_dynamo(o: &mut Options) -> Result<(), String> {
    o.options = o
        .options
        .iter()
        .flat_map(|o| o.split(','))
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect();
    crate::dynamo::Params::from_config(&o.config()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every protocol's bugs parse into its typed `Bugs`, every name
    /// round-trips (name → field → name), every name is its field with
    /// `-` for `_`, and no name is both a `--bug` and simulator-only.
    #[test]
    fn every_bug_round_trips_through_its_typed_struct() {
        macro_rules! check {
            ($m:path, $name:literal) => {{
                use $m as m;
                let p = find($name).expect($name);
                assert_eq!(p.bugs, m::BUGS, "{}", $name);
                assert_eq!(p.sim_only_bugs, m::SIM_ONLY_BUGS, "{}", $name);
                let all: Vec<&str> = m::BUGS
                    .iter()
                    .chain(m::SIM_ONLY_BUGS)
                    .map(|b| b.name)
                    .collect();
                assert_eq!(m::Bugs::default().names(), Vec::<&str>::new());
                for n in &all {
                    let b = m::Bugs::from_names(&[n]).expect(n);
                    assert_eq!(b.names(), vec![*n], "{}", $name);
                    assert_ne!(b, m::Bugs::default());
                }
                let every = m::Bugs::from_names(&all).unwrap();
                assert_eq!(every.names(), all, "{}", $name);
                for (n, f) in m::Bugs::fields() {
                    assert_eq!(n.replace('-', "_"), f, "{}", $name);
                }
                let e = m::Bugs::from_names(&["no-such-bug"]).unwrap_err();
                assert!(e.contains("no-such-bug") && e.contains($name), "{e}");
                for b in m::BUGS.iter().chain(m::SIM_ONLY_BUGS) {
                    assert_eq!(b.protocol, $name);
                    assert!(!b.description.is_empty());
                }
                let mut sorted = all.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), all.len(), "{}: a name twice", $name);
                1
            }};
        }
        let checked = check!(crate::raft, "raft")
            + check!(crate::paxos, "paxos")
            + check!(crate::zab, "zab")
            + check!(crate::pb, "pb")
            + check!(crate::chain, "chain")
            + check!(crate::twopc, "twopc")
            + check!(crate::saga, "saga")
            + check!(crate::crdt, "crdt")
            + check!(crate::lock, "lock")
            + check!(crate::dynamo, "dynamo")
            + check!(crate::elect, "elect")
            + check!(crate::swim, "swim");
        // Every protocol with bugs is checked above ("single" has none).
        let with_bugs = PROTOCOLS
            .iter()
            .filter(|p| !p.bugs.is_empty() || !p.sim_only_bugs.is_empty())
            .count();
        assert_eq!(checked, with_bugs);
    }

    #[test]
    fn names_are_unique_and_validation_refuses_sim_only_bugs() {
        let mut names = names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PROTOCOLS.len());
        assert!(crate::bugs::validate("raft", &["ack-before-commit".into()]).is_ok());
        let e = crate::bugs::validate("raft", &["commit-old-term".into()]).unwrap_err();
        assert!(e.contains("simulator-only"), "{e}");
        let e = crate::bugs::validate("raft", &["ack-before-comit".into()]).unwrap_err();
        assert!(e.contains("known: vote-without-log-check"), "{e}");
        assert_eq!(
            crate::bugs::all().count(),
            PROTOCOLS.iter().map(|p| p.bugs.len()).sum::<usize>()
        );
    }

    /// A typo in a test's bug name panics instead of leaving the bug off.
    #[test]
    #[should_panic(expected = "unknown bug `ack-before-comit`")]
    fn a_misspelt_bug_in_a_config_panics() {
        let mut c = crate::core::Config::new(1, vec![1]);
        c.bugs.insert("ack-before-comit".into());
        let _ = crate::raft::Bugs::from_config(&c);
    }
}
