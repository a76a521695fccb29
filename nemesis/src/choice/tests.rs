//! Unit tests of drawing choices and building their faults.

use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn db() -> DbProcess {
    DbProcess {
        pidfile: "/run/db.pid".into(),
        restart: nodes(5)
            .into_iter()
            .map(|n| (n.clone(), format!("start-db {n}")))
            .collect(),
    }
}

fn env<'a>(nodes: &'a [String], db: &'a DbProcess) -> FaultEnv<'a> {
    FaultEnv {
        nodes,
        db,
        clock_helper: None,
        delayer: None,
        background_loss: None,
    }
}

#[test]
fn partitions_come_in_every_shape_and_record_one_way() {
    let nodes = nodes(5);
    let mut rng = StdRng::seed_from_u64(1);
    let mut shapes = BTreeSet::new();
    for _ in 0..200 {
        let d = draw_partition(&nodes, None, &mut rng);
        let Choice::Partition { one_way, .. } = &d.choice else {
            panic!("{d:?}")
        };
        let shape = d.shape.expect("a shape");
        assert_eq!(*one_way, shape == "one-way-halves", "{shape}");
        // The election checker times elections after faults on the node
        // the value names as `isolated`.
        assert_eq!(d.isolated.is_some(), shape == "isolate-one", "{shape}");
        if let Some(n) = &d.isolated {
            assert_eq!(d.info()["isolated"], json!(n));
            assert_eq!(d.choice.nodes().len(), 5);
        }
        // The history value says it is one way, and reads back as such.
        assert_eq!(d.info()["one_way"], *one_way);
        assert_eq!(Choice::from_info(&d.info()), Some(d.choice.clone()));
        shapes.insert(shape);
    }
    assert_eq!(
        shapes.into_iter().collect::<Vec<_>>(),
        ["halves", "isolate-one", "majorities-ring", "one-way-halves"]
    );
}

#[test]
fn a_known_leader_is_the_node_leader_kinds_hit() {
    let cluster = Cluster {
        nodes: nodes(3),
        leader: Some("n3".into()),
        ..Cluster::default()
    };
    let mut rng = StdRng::seed_from_u64(4);
    for k in [
        NemesisKind::KillLeader,
        NemesisKind::PauseLeader,
        NemesisKind::IsolateLeader,
        NemesisKind::SkewLeader,
        NemesisKind::LeaderChurn,
    ] {
        let d = draw(k, &cluster, &mut rng).unwrap();
        assert_eq!(d.choice.nodes(), ["n3"].into(), "{k}");
        assert_eq!(d.chosen, Some("leader"));
        assert_eq!(d.choice.kind(), k);
    }
    let no_leader = Cluster {
        leader: None,
        ..cluster
    };
    let d = draw(NemesisKind::KillLeader, &no_leader, &mut rng).unwrap();
    assert!(d.chosen.unwrap().starts_with("random node"), "{d:?}");
}

#[test]
fn clock_choices_span_ms_to_minutes_and_validate() {
    let mut rng = StdRng::seed_from_u64(2);
    let (mut min, mut max) = (i64::MAX, 0);
    let (nodes, db) = (nodes(1), db());
    let env = FaultEnv {
        clock_helper: Some("/opt/faultline/faultline-clock"),
        ..env(&nodes, &db)
    };
    for _ in 0..300 {
        let c = draw_clock("n1", &mut rng);
        let spec = match &c {
            Choice::ClockBump { offset, .. } => offset.clone(),
            Choice::ClockStrobe { delta, .. } => delta.clone(),
            _ => panic!("{c:?}"),
        };
        let ms = offset_ms(&spec).unwrap().abs();
        (min, max) = (min.min(ms), max.max(ms));
        let addrs = [("n1".to_string(), "10.0.0.1".to_string())].into();
        for f in c.faults(&env) {
            assert_eq!(f.validate(&addrs, "10.0.0.9"), Ok(()));
        }
    }
    assert!(min < 50 && max > 60_000, "{min}..{max}");
}

#[test]
fn a_target_group_is_cut_off_from_the_rest_both_ways() {
    let nodes = nodes(5);
    let group: Vec<String> = ["n2", "n4", "n5"].map(String::from).to_vec();
    let d = cut_off_group(&nodes, "the preference list of key 1", &group);
    let Choice::Partition { grudge, one_way } = &d.choice else {
        panic!("{d:?}")
    };
    assert!(!*one_way);
    assert_eq!(d.info()["shape"], "target-group");
    assert_eq!(d.info()["what"], "the preference list of key 1");
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(grudge["n2"], set(&["n1", "n3"]));
    assert_eq!(grudge["n1"], set(&["n2", "n4", "n5"]));
    assert_eq!(grudge["n3"], set(&["n2", "n4", "n5"]));
    // A cluster with groups draws them about half the time.
    let cluster = Cluster {
        nodes: nodes.clone(),
        groups: vec![("key 1".into(), group)],
        ..Cluster::default()
    };
    let mut rng = StdRng::seed_from_u64(5);
    let groups = (0..100)
        .filter(|_| {
            draw(NemesisKind::Partition, &cluster, &mut rng)
                .unwrap()
                .shape
                == Some("target-group")
        })
        .count();
    assert!((30..=70).contains(&groups), "{groups} of 100");
}

#[test]
fn composite_choices_build_their_parts_in_order() {
    let (nodes, db) = (nodes(5), db());
    let env = env(&nodes, &db);
    // kill-all: a kill per node, each with the node's own restart.
    let c = Choice::from_info(&json!({"fault": "kill-all", "nodes": ["n1", "n3"]})).unwrap();
    assert_eq!(c.kind(), NemesisKind::KillAll);
    let kills: Vec<_> = c
        .faults(&env)
        .into_iter()
        .map(|f| match f {
            Fault::Kill { nodes, restart, .. } => (nodes, restart),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kills,
        vec![
            (vec!["n1".to_string()], Some("start-db n1".to_string())),
            (vec!["n3".to_string()], Some("start-db n3".to_string())),
        ]
    );
    assert!(
        Choice::KillAll { nodes: vec![] }
            .check()
            .unwrap_err()
            .contains("empty")
    );
    let c = Choice::SkewLeader {
        node: "n1".into(),
        offset: "-3.000".into(),
    };
    let f = c.faults(&env);
    assert!(
        matches!(&f[..], [Fault::Partition { grudge, .. }, Fault::ClockBump { offset, .. }]
            if grudge == &grudge::isolate(&nodes, "n1") && offset == "-3.000"),
        "{f:?}"
    );
    // A crash's restart drops a stale pidfile first.
    let f = Choice::Crash { node: "n2".into() }.faults(&env);
    assert!(
        matches!(&f[..], [Fault::Crash { restart: Some(r), .. }]
            if r.starts_with("b=$(awk") && r.ends_with("; start-db n2")),
        "{f:?}"
    );
    assert_eq!(Choice::from_info(&Value::Null), None);
}

#[test]
fn background_loss_joins_every_fault_but_a_loss() {
    let (nodes, db) = (nodes(2), db());
    let env = FaultEnv {
        background_loss: Some(0.3),
        ..env(&nodes, &db)
    };
    let f = Choice::Kill { node: "n1".into() }.faults(&env);
    assert_eq!(f.len(), 2);
    assert!(matches!(&f[1], Fault::Loss { probability, nodes: on }
        if *probability == 0.3 && on == &nodes));
    let loss = Choice::Loss {
        nodes: nodes.clone(),
        probability: 0.1,
    };
    assert_eq!(loss.faults(&env).len(), 1);
    for p in [None, Some(0.0)] {
        let env = FaultEnv {
            background_loss: p,
            ..env
        };
        assert_eq!(Choice::Kill { node: "n1".into() }.faults(&env).len(), 1);
    }
}

#[test]
fn draws_refuse_clusters_too_small() {
    let mut rng = StdRng::seed_from_u64(0);
    let empty = Cluster::default();
    assert_eq!(
        draw(NemesisKind::Kill, &empty, &mut rng).unwrap_err(),
        DrawError::NoNodes(NemesisKind::Kill)
    );
    let one = Cluster {
        nodes: nodes(1),
        ..Cluster::default()
    };
    let e = draw(NemesisKind::Bandwidth, &one, &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "bandwidth needs two nodes");
}

#[test]
fn stale_pidfile_is_dropped_fresh_one_kept() {
    let dir = std::env::temp_dir().join(format!("fl-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("db.pid");
    let cmd = drop_stale_pidfile(f.to_str().unwrap());
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .status()
            .unwrap()
    };
    std::fs::write(&f, "12\n").unwrap();
    assert!(sh(&cmd).success());
    assert!(f.exists(), "a pidfile written after boot was removed");
    assert!(sh(&format!("touch -d 2000-01-01 {}", f.display())).success());
    assert!(sh(&cmd).success());
    assert!(!f.exists(), "a pidfile from before boot was kept");
    std::fs::remove_dir_all(&dir).unwrap();
}
