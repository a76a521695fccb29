//! Histories from a simulated store: serializable stores must check valid;
//! snapshot isolation must show G2-item but never G-single; read committed
//! must show G-single or lost updates. Seeds are printed on failure.

use faultline_checker::Verdict;
use faultline_checker::txn::sim::{Isolation, SimOptions, simulate};
use faultline_checker::txn::{self, TxnOptions, Workload};

fn opts(seed: u64, isolation: Isolation) -> SimOptions {
    SimOptions {
        seed,
        txns: 400,
        processes: 5,
        keys: 4,
        max_writes_per_key: 16,
        min_mops: 1,
        max_mops: 4,
        isolation,
    }
}

fn check(seed: u64, iso: Isolation) -> txn::TxnResult {
    let h = simulate(&opts(seed, iso));
    txn::check(&h, &TxnOptions::new(Workload::ListAppend))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
}

#[test]
fn serializable_store_is_valid() {
    for seed in 0..20 {
        let r = check(seed, Isolation::Serializable);
        assert_eq!(r.verdict, Verdict::Valid, "seed {seed}: {}", r.prose());
    }
}

#[test]
fn snapshot_isolation_store_shows_g2_item_never_g_single() {
    let mut saw_g2 = false;
    for seed in 0..20 {
        let r = check(seed, Isolation::SnapshotIsolation);
        for t in &r.anomaly_types {
            assert!(
                !t.starts_with("G-single")
                    && !t.starts_with("G0")
                    && !t.starts_with("G1")
                    && t != "lost-update",
                "seed {seed}: {t}\n{}",
                r.prose()
            );
        }
        saw_g2 |= r.anomaly_types.iter().any(|t| t == "G2-item");
        let si = txn::check(
            &simulate(&opts(seed, Isolation::SnapshotIsolation)),
            &TxnOptions::new(Workload::ListAppend).models(&["snapshot-isolation"]),
        )
        .unwrap();
        assert_eq!(si.verdict, Verdict::Valid, "seed {seed}: {}", si.prose());
    }
    assert!(saw_g2, "no seed in 0..20 produced G2-item");
}

#[test]
fn read_committed_store_shows_g_single_or_lost_update() {
    for seed in 0..10 {
        let r = check(seed, Isolation::ReadCommitted);
        assert!(
            r.anomaly_types
                .iter()
                .any(|t| t.starts_with("G-single") || t == "lost-update"),
            "seed {seed}: {:?}",
            r.anomaly_types
        );
        assert_eq!(r.verdict, Verdict::Invalid, "seed {seed}");
    }
}
