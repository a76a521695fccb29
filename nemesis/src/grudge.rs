//! Grudges: a map from a node to the set of nodes whose packets it drops.
//!
//! Builders follow Jepsen's `nemesis.clj` (`bisect`, `complete-grudge`,
//! `bridge`, `majorities-ring`) and are pure, so their shape is unit tested
//! without a cluster.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::SliceRandom;

/// node → nodes it drops (INPUT from them). Nodes with nothing to drop may
/// be absent.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// Splits `nodes` into two halves; the first is the smaller one when the
/// count is odd (a minority and a majority).
pub fn bisect(nodes: &[String]) -> (Vec<String>, Vec<String>) {
    let mid = nodes.len() / 2;
    (nodes[..mid].to_vec(), nodes[mid..].to_vec())
}

/// Every node drops every node outside its own component.
/// Nodes in no component are left alone (they drop nothing and nobody in a
/// component drops them).
pub fn complete_grudge(components: &[Vec<String>]) -> Grudge {
    let mut g = Grudge::new();
    for (i, comp) in components.iter().enumerate() {
        let others: BTreeSet<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, c)| c.iter().cloned())
            .filter(|n| !comp.contains(n))
            .collect();
        for n in comp {
            g.entry(n.clone())
                .or_default()
                .extend(others.iter().cloned());
        }
    }
    g.retain(|_, v| !v.is_empty());
    g
}

/// Two halves in the given order.
pub fn halves(nodes: &[String]) -> Grudge {
    let (a, b) = bisect(nodes);
    complete_grudge(&[a, b])
}

/// Two halves after a shuffle with `rng` (seed it to replay).
pub fn random_halves<R: Rng + ?Sized>(nodes: &[String], rng: &mut R) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    halves(&shuffled)
}

/// `node` alone against everyone else.
pub fn isolate(nodes: &[String], node: &str) -> Grudge {
    let rest: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
    complete_grudge(&[vec![node.to_string()], rest])
}

/// Two halves joined by one bridge node that sees both sides
/// (the middle node in the given order).
pub fn bridge(nodes: &[String]) -> Grudge {
    if nodes.len() < 3 {
        return Grudge::new();
    }
    let mid = nodes.len() / 2;
    let left = &nodes[..mid];
    let right = &nodes[mid + 1..];
    let mut g = Grudge::new();
    for l in left {
        g.insert(l.clone(), right.iter().cloned().collect());
    }
    for r in right {
        g.insert(r.clone(), left.iter().cloned().collect());
    }
    g
}

/// Nodes on a ring, each seeing itself and its nearest neighbours: every node
/// sees a majority, but no two nodes see the same one (for 5 nodes).
/// Symmetric because ring distance is.
pub fn majorities_ring(nodes: &[String]) -> Grudge {
    let n = nodes.len();
    let majority = n / 2 + 1;
    let radius = majority / 2; // 2*radius+1 >= majority
    let mut g = Grudge::new();
    for (i, a) in nodes.iter().enumerate() {
        let drops: BTreeSet<String> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| {
                let d = i.abs_diff(*j);
                d.min(n - d) > radius
            })
            .map(|(_, b)| b.clone())
            .collect();
        if !drops.is_empty() {
            g.insert(a.clone(), drops);
        }
    }
    g
}

/// `to` drops packets from `from`: with a one-way (conntrack NEW) partition,
/// `from` can no longer open connections to `to`, while `to` still reaches `from`.
pub fn one_way(from: &str, to: &str) -> Grudge {
    let mut g = Grudge::new();
    g.insert(to.to_string(), BTreeSet::from([from.to_string()]));
    g
}

/// Random halves cut one way (Jepsen's one-way variant of
/// `partition-random-halves`): every node of the larger half drops packets
/// from every node of the smaller one, and nothing else. With a one-way
/// (conntrack NEW) partition the minority can no longer open connections to
/// the majority while the majority still reaches the minority; with plain
/// drops TCP fails both ways but datagrams still flow majority → minority.
pub fn one_way_random_halves<R: Rng + ?Sized>(nodes: &[String], rng: &mut R) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let (minority, majority) = bisect(&shuffled);
    let mut g = Grudge::new();
    if minority.is_empty() {
        return g;
    }
    for m in majority {
        g.insert(m, minority.iter().cloned().collect());
    }
    g
}

/// Whether a TCP connection from `a` to `b` can be opened under `g`.
/// Two-sided drops cut both directions (the handshake needs both); a
/// one-way (NEW-only) drop at `b` cuts only connections opened by `a`.
pub fn can_connect(g: &Grudge, one_way: bool, a: &str, b: &str) -> bool {
    let drops = |x: &str, y: &str| g.get(x).is_some_and(|s| s.contains(y));
    if one_way {
        !drops(b, a)
    } else {
        !drops(b, a) && !drops(a, b)
    }
}

/// Parses a grudge spec against the node list:
/// `halves`, `random-halves[:SEED]`, `isolate:N`, `majorities-ring`, `bridge`,
/// `one-way:FROM:TO`, `one-way-halves[:SEED]`, `components:n1,n2/n3,n4,n5`,
/// `none`.
pub fn parse(spec: &str, nodes: &[String]) -> Result<Grudge, String> {
    let (kind, arg) = match spec.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (spec, None),
    };
    let known = |n: &str| -> Result<String, String> {
        if nodes.iter().any(|x| x == n) {
            Ok(n.to_string())
        } else {
            Err(format!(
                "unknown node {n:?} in grudge {spec:?} (nodes: {})",
                nodes.join(",")
            ))
        }
    };
    match (kind, arg) {
        ("none", None) => Ok(Grudge::new()),
        ("halves" | "bisect", None) => Ok(halves(nodes)),
        ("random-halves", None) => Ok(random_halves(nodes, &mut rand::rng())),
        ("random-halves", Some(seed)) => {
            use rand::SeedableRng;
            let seed: u64 = seed.parse().map_err(|_| format!("bad seed {seed:?}"))?;
            Ok(random_halves(
                nodes,
                &mut rand::rngs::StdRng::seed_from_u64(seed),
            ))
        }
        ("one-way-halves", None) => Ok(one_way_random_halves(nodes, &mut rand::rng())),
        ("one-way-halves", Some(seed)) => {
            use rand::SeedableRng;
            let seed: u64 = seed.parse().map_err(|_| format!("bad seed {seed:?}"))?;
            Ok(one_way_random_halves(
                nodes,
                &mut rand::rngs::StdRng::seed_from_u64(seed),
            ))
        }
        ("isolate", Some(n)) => Ok(isolate(nodes, &known(n)?)),
        ("majorities-ring", None) => Ok(majorities_ring(nodes)),
        ("bridge", None) => Ok(bridge(nodes)),
        ("one-way", Some(arg)) => {
            let (from, to) = arg
                .split_once(':')
                .ok_or_else(|| format!("one-way needs FROM:TO, got {arg:?}"))?;
            Ok(one_way(&known(from)?, &known(to)?))
        }
        ("components", Some(arg)) => {
            let comps = arg
                .split('/')
                .map(|c| c.split(',').map(known).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()?;
            Ok(complete_grudge(&comps))
        }
        _ => Err(format!(
            "unknown grudge {spec:?}: use halves, random-halves[:SEED], isolate:NODE, \
             majorities-ring, bridge, one-way:FROM:TO, one-way-halves[:SEED], \
             components:A,B/C,D"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn symmetric(g: &Grudge) -> bool {
        g.iter()
            .all(|(a, bs)| bs.iter().all(|b| g.get(b).is_some_and(|s| s.contains(a))))
    }

    /// The set of nodes `a` can talk to (itself included).
    fn sees(g: &Grudge, all: &[String], a: &str) -> usize {
        all.iter().filter(|b| can_connect(g, false, a, b)).count()
    }

    #[test]
    fn bisect_minority_first() {
        let (a, b) = bisect(&nodes(5));
        assert_eq!(a, vec!["n1", "n2"]);
        assert_eq!(b, vec!["n3", "n4", "n5"]);
    }

    #[test]
    fn halves_is_symmetric_and_one_side_is_majority() {
        let ns = nodes(5);
        let g = halves(&ns);
        assert!(symmetric(&g));
        assert_eq!(sees(&g, &ns, "n1"), 2);
        assert_eq!(sees(&g, &ns, "n5"), 3);
    }

    #[test]
    fn random_halves_is_seeded_and_symmetric() {
        use rand::SeedableRng;
        let ns = nodes(5);
        let a = random_halves(&ns, &mut rand::rngs::StdRng::seed_from_u64(7));
        let b = random_halves(&ns, &mut rand::rngs::StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert!(symmetric(&a));
        let mut sizes: Vec<usize> = ns.iter().map(|n| sees(&a, &ns, n)).collect();
        sizes.sort();
        assert_eq!(sizes, vec![2, 2, 3, 3, 3]);
    }

    #[test]
    fn isolate_cuts_one_node() {
        let ns = nodes(5);
        let g = isolate(&ns, "n3");
        assert!(symmetric(&g));
        assert_eq!(g["n3"].len(), 4);
        assert_eq!(g["n1"], BTreeSet::from(["n3".to_string()]));
        assert_eq!(sees(&g, &ns, "n3"), 1);
        assert_eq!(sees(&g, &ns, "n1"), 4);
    }

    #[test]
    fn majorities_ring_every_node_sees_a_majority_and_views_differ() {
        for n in 3..=9 {
            let ns = nodes(n);
            let g = majorities_ring(&ns);
            assert!(symmetric(&g), "n={n}");
            for a in &ns {
                assert!(sees(&g, &ns, a) > n / 2, "n={n} {a}");
            }
            if n >= 4 {
                assert!(!g.is_empty(), "n={n}: ring must cut something");
            }
        }
        let ns = nodes(5);
        let g = majorities_ring(&ns);
        assert_eq!(
            g["n1"],
            BTreeSet::from(["n3".to_string(), "n4".to_string()])
        );
    }

    #[test]
    fn bridge_node_sees_everyone() {
        let ns = nodes(5);
        let g = bridge(&ns);
        assert!(symmetric(&g));
        assert!(!g.contains_key("n3"));
        assert_eq!(sees(&g, &ns, "n3"), 5);
        assert_eq!(sees(&g, &ns, "n1"), 3);
        assert!(!can_connect(&g, false, "n1", "n5"));
    }

    #[test]
    fn complete_grudge_three_components() {
        let g = complete_grudge(&[
            vec!["a".into()],
            vec!["b".into(), "c".into()],
            vec!["d".into()],
        ]);
        assert!(symmetric(&g));
        assert_eq!(g["b"], BTreeSet::from(["a".to_string(), "d".to_string()]));
    }

    #[test]
    fn one_way_is_not_symmetric() {
        let g = one_way("n1", "n2");
        assert!(!symmetric(&g));
        assert!(!can_connect(&g, true, "n1", "n2"));
        assert!(can_connect(&g, true, "n2", "n1"));
        assert!(!can_connect(&g, false, "n2", "n1"));
    }

    #[test]
    fn one_way_halves_cut_minority_to_majority_only() {
        use rand::SeedableRng;
        let ns = nodes(5);
        for seed in 0..20 {
            let g = one_way_random_halves(&ns, &mut rand::rngs::StdRng::seed_from_u64(seed));
            assert!(!symmetric(&g));
            let majority: Vec<&String> = g.keys().collect();
            assert_eq!(majority.len(), 3, "seed {seed}: {g:?}");
            let minority: BTreeSet<&String> = g.values().flatten().collect();
            assert_eq!(minority.len(), 2);
            for a in &ns {
                for b in &ns {
                    let cut = minority.contains(a) && majority.contains(&b);
                    assert_eq!(can_connect(&g, true, a, b), !cut, "{a}->{b} seed {seed}");
                }
            }
        }
        assert_eq!(
            parse("one-way-halves:4", &ns),
            Ok(one_way_random_halves(
                &ns,
                &mut rand::rngs::StdRng::seed_from_u64(4)
            ))
        );
    }

    #[test]
    fn parse_specs() {
        let ns = nodes(5);
        assert_eq!(parse("isolate:n2", &ns), Ok(isolate(&ns, "n2")));
        assert_eq!(parse("bridge", &ns), Ok(bridge(&ns)));
        assert_eq!(parse("one-way:n1:n2", &ns), Ok(one_way("n1", "n2")));
        assert_eq!(parse("components:n1,n2/n3,n4,n5", &ns), Ok(halves(&ns)));
        assert!(parse("isolate:n9", &ns).is_err());
        assert!(parse("wat", &ns).is_err());
        assert_eq!(parse("random-halves:3", &ns), parse("random-halves:3", &ns));
    }
}
