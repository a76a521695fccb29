//! Unit tests of the lab nemesis driver. Drawing choices and building
//! their faults is tested in the nemesis crate (`choice::tests`,
//! `nemesis/tests/draw_replay.rs`).

use super::*;

#[test]
fn loss_prob_is_checked() {
    assert_eq!(parse_loss_prob("0.2"), Ok(0.2));
    assert!(
        parse_loss_prob("1.5")
            .unwrap_err()
            .contains("between 0 and 1")
    );
    assert!(parse_loss_prob("x").is_err());
}

/// The progress bar's line names the fault and its node or shape.
#[test]
fn active_fault_is_described_by_node_or_shape() {
    let mut rng = <StdRng as SeedableRng>::seed_from_u64(1);
    let cluster = Cluster {
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        leader: Some("n2".into()),
        ..Cluster::default()
    };
    let kill = draw(NemesisKind::KillLeader, &cluster, &mut rng).unwrap();
    assert_eq!(describe(&kill.info()), "kill-leader n2");
    for _ in 0..20 {
        let p = faultline_nemesis::choice::draw_partition(&cluster.nodes, None, &mut rng);
        let want = match &p.isolated {
            Some(n) => format!("partition isolate {n}"),
            None => format!("partition {}", p.shape.unwrap()),
        };
        assert_eq!(describe(&p.info()), want);
    }
    let all = draw(NemesisKind::KillAll, &cluster, &mut rng).unwrap();
    assert_eq!(describe(&all.info()), "kill-all");
}
