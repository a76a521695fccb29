//! A drawn choice, written as JSON (the history's nemesis value and the
//! schedule file's entry) and read back, builds exactly the node faults
//! the fresh draw builds: for every kind, on random clusters and seeds.

use faultline_nemesis::{Choice, Cluster, DbProcess, FaultEnv, NemesisKind, draw};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn cluster() -> impl Strategy<Value = Cluster> {
    (
        1usize..=7,
        proptest::option::of(0usize..7),
        any::<bool>(),
        proptest::option::of(0.01f64..=1.0),
    )
        .prop_map(|(n, leader, group, loss_prob)| {
            let nodes: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
            Cluster {
                leader: leader.map(|l| nodes[l % n].clone()),
                groups: if group && n >= 2 {
                    vec![("a preference list".into(), nodes[..n / 2 + 1].to_vec())]
                } else {
                    Vec::new()
                },
                loss_prob,
                nodes,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn draw_to_json_and_back_builds_the_same_faults(
        c in cluster(),
        seed in any::<u64>(),
        helper in any::<bool>(),
        background_loss in proptest::option::of(0.0f64..=0.5),
    ) {
        let db = DbProcess {
            pidfile: "/var/run/db.pid".into(),
            restart: c.nodes.iter().map(|n| (n.clone(), format!("start {n}"))).collect(),
        };
        let env = FaultEnv {
            nodes: &c.nodes,
            db: &db,
            clock_helper: helper.then_some("/opt/faultline/faultline-clock"),
            delayer: Some("/usr/local/bin/faultline"),
            background_loss,
        };
        let mut rng = StdRng::seed_from_u64(seed);
        for &kind in NemesisKind::ALL {
            let drawn = match draw(kind, &c, &mut rng) {
                Ok(d) => d,
                // The only cluster a draw refuses: one node, for a kind
                // that cuts links.
                Err(e) => {
                    prop_assert!(
                        matches!(kind, NemesisKind::Bandwidth | NemesisKind::Partition)
                            && c.nodes.len() == 1,
                        "{e}"
                    );
                    continue;
                }
            };
            prop_assert_eq!(drawn.choice.kind(), kind);
            prop_assert_eq!(drawn.choice.check(), Ok(()));
            prop_assert!(drawn.choice.nodes().iter().all(|n| c.nodes.iter().any(|x| x == n)));
            let fresh = drawn.choice.faults(&env);
            prop_assert!(!fresh.is_empty());
            // Through the history value, and through the text of a file.
            let info = drawn.info();
            let back = Choice::from_info(&info).expect("the value reads back");
            prop_assert_eq!(back.faults(&env), fresh.clone());
            let text = serde_json::to_string(&info).expect("serialise");
            let back: Choice = serde_json::from_str(&text).expect("parse");
            prop_assert_eq!(back.faults(&env), fresh);
        }
    }
}
