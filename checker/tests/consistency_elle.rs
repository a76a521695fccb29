//! Our lattice against Elle's, edge by edge. The three tables below are
//! transcribed from jepsen-io/elle `src/elle/consistency_model.clj`
//! (`implied-anomalies`, `models`, `direct-proscribed-anomalies`), in
//! Elle's own spelling (`PL-2`, `strong-session-PL-1`, …); model names go
//! through our aliases. Each Elle edge must hold in ours (transitively),
//! each of our edges must follow from Elle's, and the boundary every
//! anomaly draws must be Elle's. There is no deliberate difference in the
//! tables (docs/checker-notes.md, "Transactions", lists those elsewhere).

use faultline_checker::consistency::{
    self, ANOMALY_IMPLIES, DIRECT_PROSCRIBED, MODEL_IMPLIES, canonical_model,
};
use faultline_checker::txn::Anomaly;
use std::collections::{BTreeSet, VecDeque};

type Dag = &'static [(&'static str, &'static [&'static str])];

const ELLE_IMPLIED_ANOMALIES: Dag = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

const ELLE_MODELS: Dag = &[
    ("causal-cerone", &["read-atomic"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    ("conflict-serializable", &["view-serializable"]),
    ("cursor-stability", &["read-committed", "PL-2"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("PL-2", &["PL-1"]),
    ("PL-3", &["repeatable-read", "update-serializable"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("monotonic-view", &["PL-2"]),
    ("monotonic-snapshot-read", &["PL-2"]),
    ("parallel-snapshot-isolation", &["causal-cerone", "ROLA"]),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("ROLA", &["read-atomic"]),
    (
        "serializable",
        &["repeatable-read", "snapshot-isolation", "view-serializable"],
    ),
    ("session-serializable", &["1SR"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "strict-serializable",
        &[
            "PL-3",
            "serializable",
            "linearizable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    ("strong-session-PL-1", &["PL-1"]),
    ("strong-session-PL-2", &["PL-2", "strong-session-PL-1"]),
    ("strong-PL-1", &["strong-session-PL-1"]),
    ("strong-PL-2", &["strong-session-PL-2", "strong-PL-1"]),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-PL-2"],
    ),
    ("strong-serializable", &["session-serializable"]),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-PL-2"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

const ELLE_DIRECT_PROSCRIBED: Dag = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    (
        "PL-3",
        &["G1", "G2", "predicate-read-miss", "PL-3-cycle-exists"],
    ),
    ("PL-2", &["G1", "PL-2-cycle-exists"]),
    (
        "PL-1",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "PL-1-cycle-exists",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    ("serializable", &["internal"]),
    (
        "snapshot-isolation",
        &[
            "internal",
            "G1",
            "G-SI",
            "G-nonadjacent",
            "PL-SI-cycle-exists",
        ],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    (
        "repeatable-read",
        &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"],
    ),
    ("ROLA", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
    (
        "strong-session-PL-1",
        &["strong-session-PL-1-cycle-exists", "G0-process"],
    ),
    (
        "strong-session-PL-2",
        &["strong-session-PL-2-cycle-exists", "G1c-process"],
    ),
    ("strong-PL-1", &["strong-PL-1-cycle-exists", "G0-realtime"]),
    ("strong-PL-2", &["strong-PL-2-cycle-exists", "G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    ("update-serializable", &["G1", "G-update"]),
];

fn elle_edges(dag: Dag, canon: fn(&str) -> &str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for (a, bs) in dag {
        for b in *bs {
            out.push((canon(a), canon(b)));
        }
    }
    out
}

fn same(s: &str) -> &str {
    s
}

fn closure(edges: &[(&str, &str)], start: &[&str], forward: bool) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = start.iter().map(|s| s.to_string()).collect();
    while let Some(x) = queue.pop_front() {
        if !seen.insert(x.clone()) {
            continue;
        }
        for (a, b) in edges {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            if *from == x {
                queue.push_back(to.to_string());
            }
        }
    }
    seen
}

fn ours(table: &[(&str, &str, &str)]) -> Vec<(&'static str, &'static str)> {
    // The tables are 'static; re-borrow their names as such.
    table
        .iter()
        .map(|(a, b, _)| {
            let a: &'static str = Box::leak(a.to_string().into_boxed_str());
            let b: &'static str = Box::leak(b.to_string().into_boxed_str());
            (a, b)
        })
        .collect()
}

#[test]
fn every_elle_anomaly_implication_holds() {
    for (a, b) in elle_edges(ELLE_IMPLIED_ANOMALIES, same) {
        let implied = consistency::all_implied_anomalies([a]);
        assert!(implied.contains(b), "Elle: {a} → {b}; ours: {implied:?}");
    }
}

#[test]
fn every_elle_model_implication_holds() {
    for (a, b) in elle_edges(ELLE_MODELS, canonical_model) {
        let implied = consistency::all_implied_models([a]);
        assert!(implied.contains(b), "Elle: {a} → {b}; ours: {implied:?}");
    }
}

#[test]
fn every_elle_prohibition_holds() {
    for (m, a) in elle_edges(ELLE_DIRECT_PROSCRIBED, same) {
        let m = canonical_model(m);
        let p = consistency::anomalies_prohibited_by(&[m]);
        assert!(p.contains(a), "Elle: {m} forbids {a}");
    }
}

#[test]
fn every_edge_of_ours_follows_from_elle() {
    let elle_a = elle_edges(ELLE_IMPLIED_ANOMALIES, same);
    for (a, b) in ours(ANOMALY_IMPLIES) {
        let reach = closure(&elle_a, &[a], true);
        assert!(reach.contains(b), "ours: {a} → {b}, not in Elle");
    }
    let elle_m = elle_edges(ELLE_MODELS, canonical_model);
    for (a, b) in ours(MODEL_IMPLIES) {
        let reach = closure(&elle_m, &[a], true);
        assert!(reach.contains(b), "ours: {a} → {b}, not in Elle");
    }
    let elle_p = elle_edges(ELLE_DIRECT_PROSCRIBED, same);
    for (m, a) in ours(DIRECT_PROSCRIBED) {
        // Elle: m forbids a if some model m implies forbids an anomaly
        // that a implies.
        let below = closure(&elle_m, &[m], true);
        let implied = closure(&elle_a, &[a], true);
        let holds = elle_p
            .iter()
            .any(|(pm, pa)| below.contains(canonical_model(pm)) && implied.contains(*pa));
        assert!(holds, "ours: {m} forbids {a}, not in Elle");
    }
}

/// Elle's `boundary`, computed from the transcribed tables.
fn elle_boundary(anomaly: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let elle_a = elle_edges(ELLE_IMPLIED_ANOMALIES, same);
    let elle_m = elle_edges(ELLE_MODELS, canonical_model);
    let elle_p = elle_edges(ELLE_DIRECT_PROSCRIBED, same);
    let implied = closure(&elle_a, &[anomaly], true);
    let direct: Vec<&str> = elle_p
        .iter()
        .filter(|(_, a)| implied.contains(*a))
        .map(|(m, _)| canonical_model(m))
        .collect();
    let impossible = closure(&elle_m, &direct, false);
    let mut not = BTreeSet::new();
    let mut also_not = BTreeSet::new();
    for m in &impossible {
        let below = closure(&elle_m, &[m.as_str()], true);
        if below.iter().any(|x| x != m && impossible.contains(x)) {
            also_not.insert(m.clone());
        } else {
            not.insert(m.clone());
        }
    }
    (not, also_not)
}

#[test]
fn every_anomaly_draws_elles_boundary() {
    for &a in Anomaly::ALL.iter().filter(|a| !a.is_unknown()) {
        let (not, also_not) = elle_boundary(a.name());
        let b = consistency::boundary(&[a.name()]);
        assert_eq!(b.not, not, "{a}: not");
        assert_eq!(b.also_not, also_not, "{a}: also-not");
    }
    // The history of issue #16: one item anti-dependency in a cycle.
    let b = consistency::boundary(&["G-single-item"]);
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(b.not, set(&["consistent-view", "repeatable-read"]));
}

/// Every name the analysers can emit is in the lattice (or is one of the
/// "could not tell" types, which no model forbids), and every anomaly the
/// lattice names parses.
#[test]
fn anomaly_names_match_the_lattice() {
    let mut lattice: BTreeSet<&str> = BTreeSet::new();
    for (a, b, _) in ANOMALY_IMPLIES {
        lattice.insert(a);
        lattice.insert(b);
    }
    for (_, a, _) in DIRECT_PROSCRIBED {
        lattice.insert(a);
    }
    for name in &lattice {
        assert!(Anomaly::parse(name).is_ok(), "lattice names {name}");
    }
    for a in Anomaly::ALL {
        assert_eq!(
            lattice.contains(a.name()),
            !a.is_unknown(),
            "{a}: in the lattice iff it is not a could-not-tell type"
        );
    }
}
