//! The consistency-model lattice, as three edge tables (after Elle's
//! `elle.consistency-model`): which model implies which, which anomaly
//! implies which, and which anomalies a model directly proscribes. Every
//! edge cites its source. Queries ([`boundary`], [`anomalies_prohibited_by`])
//! walk the tables; nothing else encodes the theory.
//!
//! Sources: Adya, "Weak Consistency" (1999); Adya, Liskov, O'Neil,
//! "Generalized Isolation Level Definitions" (2000); Bailis et al., "Highly
//! Available Transactions" (2013); Cerone, Bernardi, Gotsman, "A Framework
//! for Transactional Consistency Models with Atomic Visibility" (2015);
//! Cerone, Gotsman, "Analysing Snapshot Isolation" (2016); Daudjee, Salem,
//! "Lazy Database Replication with Snapshot Isolation" (2006); Bernstein et
//! al., "Concurrency Control and Recovery" (1987); Kleppmann, "Hermitage";
//! Liu et al., "ROLA"; Kingsbury, Alvaro, "Elle" (2020).

use std::collections::{BTreeSet, HashSet, VecDeque};

/// `(a, b, source)`: a history satisfying model `a` also satisfies `b`.
pub const MODEL_IMPLIES: &[(&str, &str, &str)] = &[
    ("causal-cerone", "read-atomic", "Cerone"),
    ("consistent-view", "cursor-stability", "Adya"),
    ("consistent-view", "monotonic-view", "Adya"),
    ("cursor-stability", "read-committed", "Bailis, Adya"),
    ("forward-consistent-view", "consistent-view", "Adya"),
    (
        "read-committed",
        "read-uncommitted",
        "Adya (PL-2 implies PL-1)",
    ),
    ("serializable", "repeatable-read", "Adya, SQL"),
    ("serializable", "update-serializable", "Adya"),
    ("serializable", "snapshot-isolation", "Bailis, Cerone"),
    ("serializable", "view-serializable", "Bernstein"),
    ("update-serializable", "forward-consistent-view", "Adya"),
    ("monotonic-atomic-view", "read-committed", "Bailis"),
    ("monotonic-view", "read-committed", "Adya"),
    ("monotonic-snapshot-read", "read-committed", "Adya"),
    ("parallel-snapshot-isolation", "causal-cerone", "Cerone"),
    ("parallel-snapshot-isolation", "ROLA", "ROLA"),
    ("prefix", "causal-cerone", "Cerone"),
    ("read-atomic", "monotonic-atomic-view", "Cerone"),
    ("repeatable-read", "cursor-stability", "Adya"),
    ("repeatable-read", "monotonic-atomic-view", "Bailis"),
    ("ROLA", "read-atomic", "ROLA"),
    ("snapshot-isolation", "forward-consistent-view", "Adya"),
    ("snapshot-isolation", "monotonic-atomic-view", "Bailis"),
    ("snapshot-isolation", "monotonic-snapshot-read", "Adya"),
    (
        "snapshot-isolation",
        "parallel-snapshot-isolation",
        "Cerone",
    ),
    ("snapshot-isolation", "prefix", "Cerone"),
    ("strict-serializable", "serializable", "Adya, Bailis"),
    // Elle: strong-serializable (our strict-serializable) → session-serializable.
    (
        "strict-serializable",
        "session-serializable",
        "Zuikeviciute",
    ),
    ("session-serializable", "1SR", "Zuikeviciute"),
    ("strict-serializable", "linearizable", "Bailis"),
    ("strict-serializable", "snapshot-isolation", "Adya"),
    ("strict-serializable", "strong-snapshot-isolation", "Elle"),
    (
        "strict-serializable",
        "strong-session-serializable",
        "Daudjee",
    ),
    (
        "strong-session-read-uncommitted",
        "read-uncommitted",
        "Elle",
    ),
    ("strong-session-read-committed", "read-committed", "Elle"),
    (
        "strong-session-read-committed",
        "strong-session-read-uncommitted",
        "Elle",
    ),
    (
        "strong-read-uncommitted",
        "strong-session-read-uncommitted",
        "Elle",
    ),
    (
        "strong-read-committed",
        "strong-session-read-committed",
        "Elle",
    ),
    ("strong-read-committed", "strong-read-uncommitted", "Elle"),
    ("strong-session-serializable", "serializable", "Daudjee"),
    (
        "strong-session-serializable",
        "strong-session-snapshot-isolation",
        "Daudjee",
    ),
    (
        "strong-session-snapshot-isolation",
        "snapshot-isolation",
        "Daudjee, Cerone-SI",
    ),
    (
        "strong-session-snapshot-isolation",
        "strong-session-read-committed",
        "Elle",
    ),
    (
        "strong-snapshot-isolation",
        "strong-session-snapshot-isolation",
        "Daudjee",
    ),
    ("strong-snapshot-isolation", "strong-read-committed", "Elle"),
    // Single-object models.
    ("linearizable", "sequential", "Bailis"),
    ("sequential", "causal", "Bailis"),
    ("causal", "writes-follow-reads", "Bailis"),
    ("causal", "PRAM", "Bailis"),
    ("PRAM", "monotonic-reads", "Bailis"),
    ("PRAM", "monotonic-writes", "Bailis"),
    ("PRAM", "read-your-writes", "Bailis"),
];

/// `(a, b, source)`: a history exhibiting anomaly `a` also exhibits `b`.
pub const ANOMALY_IMPLIES: &[(&str, &str, &str)] = &[
    ("G0", "G1c", "Adya"),
    ("G0", "G0-process", "trivial"),
    ("G0-process", "G1c-process", "Adya"),
    ("G0-process", "G0-realtime", "processes are single-threaded"),
    ("G0-realtime", "G1c-realtime", "Adya"),
    ("G1a", "G1", "Adya"),
    ("G1b", "G1", "Adya"),
    ("G1c", "G1", "Adya"),
    ("G1c", "G1c-process", "trivial"),
    (
        "G1c-process",
        "G1c-realtime",
        "processes are single-threaded",
    ),
    ("G1c-process", "G1-process", "Adya"),
    ("G1c-realtime", "G1-realtime", "Adya"),
    ("G1", "G1-process", "trivial"),
    ("G1-process", "G1-realtime", "processes are single-threaded"),
    // The item variants: every anti-dependency on an item, none on a
    // predicate. A cycle with an item anti-dependency is G2-item, which
    // PL-2.99 (repeatable read) forbids.
    ("G-single-item", "G-single", "Elle"),
    ("G-single-item", "G-single-item-process", "trivial"),
    ("G-single-item", "G-nonadjacent-item", "Elle"),
    ("G-single-item-process", "G-single-process", "Elle"),
    (
        "G-single-item-process",
        "G-single-item-realtime",
        "processes are single-threaded",
    ),
    (
        "G-single-item-process",
        "G-nonadjacent-item-process",
        "Elle",
    ),
    ("G-single-item-realtime", "G-single-realtime", "Elle"),
    (
        "G-single-item-realtime",
        "G-nonadjacent-item-realtime",
        "Elle",
    ),
    ("G-nonadjacent-item", "G-nonadjacent", "Elle"),
    ("G-nonadjacent-item", "G2-item", "Adya"),
    (
        "G-nonadjacent-item",
        "G-nonadjacent-item-process",
        "trivial",
    ),
    (
        "G-nonadjacent-item-process",
        "G-nonadjacent-process",
        "Elle",
    ),
    ("G-nonadjacent-item-process", "G2-item-process", "Adya"),
    (
        "G-nonadjacent-item-process",
        "G-nonadjacent-item-realtime",
        "processes are single-threaded",
    ),
    ("G-nonadjacent-item-realtime", "G2-item-realtime", "Adya"),
    (
        "G-nonadjacent-item-realtime",
        "G-nonadjacent-realtime",
        "Elle",
    ),
    ("G-single", "G-nonadjacent", "Elle"),
    ("G-single", "GSIb", "Adya"),
    ("G-single", "G-single-process", "trivial"),
    ("G-single-process", "G-nonadjacent-process", "Elle"),
    (
        "G-single-process",
        "G-single-realtime",
        "processes are single-threaded",
    ),
    ("G-single-realtime", "G-nonadjacent-realtime", "Elle"),
    ("G-nonadjacent", "G2", "Adya"),
    ("G-nonadjacent", "G-nonadjacent-process", "trivial"),
    ("G-nonadjacent-process", "G2-process", "Adya"),
    (
        "G-nonadjacent-process",
        "G-nonadjacent-realtime",
        "processes are single-threaded",
    ),
    ("G-nonadjacent-realtime", "G2-realtime", "Adya"),
    ("G2", "G2-process", "trivial"),
    ("G2-item", "G2", "Adya"),
    ("G2-item", "G2-item-process", "trivial"),
    ("G2-item-process", "G2-process", "Adya"),
    (
        "G2-item-process",
        "G2-item-realtime",
        "processes are single-threaded",
    ),
    ("G2-item-realtime", "G2-realtime", "Adya"),
    ("G2-process", "G2-realtime", "processes are single-threaded"),
    ("GSIa", "GSI", "Adya"),
    ("GSIb", "GSI", "Adya"),
    // Two reads that cannot come from one timeline: one of them saw a write
    // that was never committed in the other's order.
    ("incompatible-order", "G1a", "Elle"),
    // A read of a write from later in the same transaction: a trivial cycle.
    ("future-read", "G1c", "Elle"),
    // A committed write built on an aborted one: a dirty read, for writes.
    ("dirty-update", "G1a", "Elle"),
    ("lost-update", "write-skew", "Bailis"),
    ("lost-update", "G2-item", "Adya"),
    ("write-skew", "G2", "Hermitage"),
];

/// `(model, anomaly, source)`: the model forbids the anomaly outright
/// (weaker models' prohibitions are inherited through [`MODEL_IMPLIES`]).
pub const DIRECT_PROSCRIBED: &[(&str, &str, &str)] = &[
    ("causal-cerone", "internal", "Cerone"),
    ("causal-cerone", "G1a", "Cerone"),
    ("cursor-stability", "G1", "Adya"),
    ("cursor-stability", "G-cursor", "Adya"),
    ("cursor-stability", "lost-update", "Adya, Bailis"),
    ("monotonic-view", "G1", "Adya"),
    ("monotonic-view", "G-monotonic", "Adya"),
    ("monotonic-snapshot-read", "G1", "Adya"),
    ("monotonic-snapshot-read", "G-MSR", "Adya"),
    ("consistent-view", "G1", "Adya"),
    ("consistent-view", "G-single", "Adya"),
    ("forward-consistent-view", "G1", "Adya"),
    ("forward-consistent-view", "G-SIb", "Adya"),
    ("parallel-snapshot-isolation", "internal", "Cerone"),
    ("parallel-snapshot-isolation", "G1a", "Cerone"),
    ("serializable", "G1", "Adya"),
    ("serializable", "G2", "Adya"),
    ("serializable", "internal", "Cerone"),
    ("serializable", "PL-3-cycle-exists", "Adya"),
    // A predicate read that missed a version when every version matched it.
    ("serializable", "predicate-read-miss", "Elle"),
    ("read-committed", "G1", "Adya"),
    ("read-committed", "PL-2-cycle-exists", "Adya"),
    ("read-uncommitted", "G0", "Adya"),
    ("read-uncommitted", "duplicate-elements", "Elle"),
    (
        "read-uncommitted",
        "cyclic-versions",
        "Adya: version orders are total",
    ),
    ("read-uncommitted", "PL-1-cycle-exists", "Adya"),
    ("prefix", "internal", "Cerone"),
    ("prefix", "G1a", "Cerone"),
    ("snapshot-isolation", "internal", "Cerone"),
    ("snapshot-isolation", "G1", "Adya"),
    ("snapshot-isolation", "G-SI", "Adya"),
    ("snapshot-isolation", "G-nonadjacent", "Cerone-SI"),
    ("snapshot-isolation", "PL-SI-cycle-exists", "Adya"),
    ("read-atomic", "internal", "Cerone"),
    ("read-atomic", "G1a", "Cerone"),
    ("read-atomic", "future-read", "Cerone"),
    ("repeatable-read", "G1", "Adya"),
    ("repeatable-read", "G2-item", "Adya"),
    ("repeatable-read", "PL-2.99-cycle-exists", "Adya"),
    ("repeatable-read", "lost-update", "Bailis"),
    ("ROLA", "lost-update", "ROLA"),
    ("strict-serializable", "G1", "Adya"),
    ("strict-serializable", "G1c-realtime", "Adya"),
    ("strict-serializable", "G2-realtime", "Adya"),
    ("strict-serializable", "PL-SS-cycle-exists", "Adya"),
    ("strong-session-read-uncommitted", "G0-process", "Elle"),
    (
        "strong-session-read-uncommitted",
        "strong-session-PL-1-cycle-exists",
        "Elle",
    ),
    (
        "strong-session-read-committed",
        "strong-session-PL-2-cycle-exists",
        "Elle",
    ),
    (
        "strong-read-uncommitted",
        "strong-PL-1-cycle-exists",
        "Elle",
    ),
    ("strong-read-committed", "strong-PL-2-cycle-exists", "Elle"),
    ("strong-session-read-committed", "G1c-process", "Elle"),
    ("strong-read-uncommitted", "G0-realtime", "Elle"),
    ("strong-read-committed", "G1c-realtime", "Elle"),
    ("strong-session-snapshot-isolation", "internal", "Daudjee"),
    ("strong-session-snapshot-isolation", "G1-process", "Daudjee"),
    (
        "strong-session-snapshot-isolation",
        "G-nonadjacent-process",
        "Cerone-SI",
    ),
    (
        "strong-session-snapshot-isolation",
        "strong-session-snapshot-isolation-cycle-exists",
        "Elle",
    ),
    ("strong-snapshot-isolation", "internal", "Daudjee"),
    ("strong-snapshot-isolation", "G1-realtime", "Daudjee"),
    (
        "strong-snapshot-isolation",
        "G-nonadjacent-realtime",
        "Daudjee",
    ),
    (
        "strong-snapshot-isolation",
        "strong-snapshot-isolation-cycle-exists",
        "Elle",
    ),
    ("strong-session-serializable", "G1-process", "Daudjee"),
    ("strong-session-serializable", "G2-process", "Daudjee"),
    (
        "strong-session-serializable",
        "strong-session-serializable-cycle-exists",
        "Elle",
    ),
    ("update-serializable", "G1", "Adya"),
    ("update-serializable", "G-update", "Adya"),
];

/// Other names for the same models (Adya's PL-n levels), mapped to ours.
pub const MODEL_ALIASES: &[(&str, &str)] = &[
    ("PL-1", "read-uncommitted"),
    ("PL-2", "read-committed"),
    ("PL-2.99", "repeatable-read"),
    ("PL-3", "serializable"),
    ("conflict-serializable", "serializable"),
    ("PL-SI", "snapshot-isolation"),
    ("PL-SS", "strict-serializable"),
    ("strong-serializable", "strict-serializable"),
    ("PL-CS", "cursor-stability"),
    ("PL-2+", "consistent-view"),
    ("PL-FCV", "forward-consistent-view"),
    ("PL-MSR", "monotonic-snapshot-read"),
    ("PL-2L", "monotonic-view"),
    ("PL-3U", "update-serializable"),
    ("strong-session-PL-1", "strong-session-read-uncommitted"),
    ("strong-session-PL-2", "strong-session-read-committed"),
    ("strong-PL-1", "strong-read-uncommitted"),
    ("strong-PL-2", "strong-read-committed"),
];

/// The model's name in our tables, resolving aliases (and a leading `:`).
pub fn canonical_model(name: &str) -> &str {
    let name = name.strip_prefix(':').unwrap_or(name);
    MODEL_ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map_or(name, |(_, m)| m)
}

/// Every model named in the tables.
pub fn all_models() -> BTreeSet<&'static str> {
    MODEL_IMPLIES
        .iter()
        .flat_map(|(a, b, _)| [*a, *b])
        .chain(DIRECT_PROSCRIBED.iter().map(|(m, _, _)| *m))
        .collect()
}

/// An unknown model name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown consistency model `{0}`")]
pub struct UnknownModel(pub String);

/// Checks every name and returns canonical names.
pub fn validate_models<S: AsRef<str>>(models: &[S]) -> Result<Vec<String>, UnknownModel> {
    let all = all_models();
    models
        .iter()
        .map(|m| {
            let c = canonical_model(m.as_ref());
            if all.contains(c) {
                Ok(c.to_string())
            } else {
                Err(UnknownModel(m.as_ref().to_string()))
            }
        })
        .collect()
}

/// Breadth-first closure over an edge table, forward (`a → b`) or backward.
fn closure<'a>(
    table: &'a [(&'a str, &'a str, &'a str)],
    start: impl IntoIterator<Item = &'a str>,
    forward: bool,
) -> BTreeSet<&'a str> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = start.into_iter().collect();
    while let Some(x) = queue.pop_front() {
        if !seen.insert(x) {
            continue;
        }
        for (a, b, _) in table {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            if *from == x && !seen.contains(to) {
                queue.push_back(to);
            }
        }
    }
    seen
}

/// Models implied by any of `models` (including themselves).
pub fn all_implied_models<'a>(models: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    closure(MODEL_IMPLIES, models, true)
}

/// Anomalies implied by any of `anomalies` (including themselves).
pub fn all_implied_anomalies<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    closure(ANOMALY_IMPLIES, anomalies, true)
}

/// Anomalies that would imply any of `anomalies` (including themselves).
pub fn all_anomalies_implying<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    closure(ANOMALY_IMPLIES, anomalies, false)
}

/// Every anomaly that must be absent for all `models` to hold.
pub fn anomalies_prohibited_by<S: AsRef<str>>(models: &[S]) -> BTreeSet<String> {
    let models: Vec<&str> = models.iter().map(|m| canonical_model(m.as_ref())).collect();
    let implied = all_implied_models(models);
    let direct = DIRECT_PROSCRIBED
        .iter()
        .filter(|(m, _, _)| implied.contains(m))
        .map(|(_, a, _)| *a);
    all_anomalies_implying(direct)
        .into_iter()
        .map(String::from)
        .collect()
}

/// Models that cannot hold given these anomalies were found.
pub fn anomalies_to_impossible_models<S: AsRef<str>>(anomalies: &[S]) -> BTreeSet<String> {
    let implied = all_implied_anomalies(anomalies.iter().map(|a| a.as_ref()));
    let direct: Vec<&str> = DIRECT_PROSCRIBED
        .iter()
        .filter(|(_, a, _)| implied.contains(a))
        .map(|(m, _, _)| *m)
        .collect();
    closure(MODEL_IMPLIES, direct, false)
        .into_iter()
        .map(String::from)
        .collect()
}

/// The boundary a set of anomalies draws through the lattice.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Boundary {
    /// The weakest models ruled out: no other ruled-out model is implied by them.
    pub not: BTreeSet<String>,
    /// Every other ruled-out (stronger) model.
    pub also_not: BTreeSet<String>,
}

/// Given found anomaly types, the weakest violated models and the rest.
pub fn boundary<S: AsRef<str>>(anomalies: &[S]) -> Boundary {
    let impossible = anomalies_to_impossible_models(anomalies);
    let mut b = Boundary::default();
    for m in &impossible {
        // `m` is weakest unless it implies another impossible model.
        let below = all_implied_models([m.as_str()]);
        let weakest = !below.iter().any(|x| *x != m && impossible.contains(*x));
        if weakest {
            b.not.insert(m.clone());
        } else {
            b.also_not.insert(m.clone());
        }
    }
    b
}

/// True when no table has a cycle (each must be a DAG).
pub fn tables_are_acyclic() -> bool {
    [MODEL_IMPLIES, ANOMALY_IMPLIES].iter().all(|t| {
        t.iter().all(|(a, b, _)| {
            let mut reach: HashSet<&str> = closure(t, [*b], true).into_iter().collect();
            reach.remove(b);
            !reach.contains(a) && a != b
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(xs: &[&str]) -> BTreeSet<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lattice_is_a_dag_and_ordered() {
        assert!(tables_are_acyclic());
        let below = all_implied_models(["strict-serializable"]);
        for m in [
            "serializable",
            "snapshot-isolation",
            "repeatable-read",
            "read-committed",
            "read-uncommitted",
            "linearizable",
            "PRAM",
        ] {
            assert!(below.contains(m), "{m}");
        }
        assert!(!all_implied_models(["serializable"]).contains("strict-serializable"));
    }

    #[test]
    fn boundaries_match_elle() {
        assert_eq!(boundary(&["G2-item"]).not, set(&["repeatable-read"]));
        assert_eq!(boundary(&["G0"]).not, set(&["read-uncommitted"]));
        assert_eq!(boundary(&["G-single"]).not, set(&["consistent-view"]));
        assert!(
            boundary(&["G-single"])
                .also_not
                .contains("snapshot-isolation")
        );
        assert_eq!(
            boundary(&["G2-item-realtime"]).not,
            set(&["strict-serializable"])
        );
        assert_eq!(
            boundary(&["G-single-realtime"]).not,
            set(&["strong-snapshot-isolation"])
        );
        let b = boundary(&["G2-item"]);
        assert!(b.also_not.contains("serializable") && b.also_not.contains("strict-serializable"));
    }

    #[test]
    fn prohibitions() {
        let p = anomalies_prohibited_by(&["snapshot-isolation"]);
        assert!(p.contains("G-single") && p.contains("G0") && p.contains("internal"));
        assert!(!p.contains("G2-item"));
        let p = anomalies_prohibited_by(&["strict-serializable"]);
        assert!(p.contains("G2-item-realtime") && p.contains("G0-process"));
        assert_eq!(validate_models(&["PL-3"]).unwrap(), vec!["serializable"]);
        assert!(validate_models(&["nope"]).is_err());
    }
}
