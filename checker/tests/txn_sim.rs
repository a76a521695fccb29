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
        ..SimOptions::default()
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

fn stale(seed: u64, txns: usize) -> SimOptions {
    SimOptions {
        seed,
        txns,
        isolation: Isolation::StaleReads,
        max_lag: 2000,
        ..SimOptions::default()
    }
}

#[test]
fn stale_reads_store_is_one_giant_invalid_component() {
    // The generator of the 100,000-transaction SCC benchmark, scaled down.
    for seed in 0..3 {
        let h = simulate(&stale(seed, 5000));
        let r = txn::check(
            &h,
            &TxnOptions::new(Workload::ListAppend).models(&["serializable"]),
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(r.verdict, Verdict::Invalid, "seed {seed}: {}", r.prose());
        // Most of it: the first and last few lags' worth of transactions
        // have no stale reads pointing back at them (at 100,000
        // transactions, 99,988 are in the component).
        assert!(
            r.stats.largest_scc >= 3750,
            "seed {seed}: largest component {} of 5000",
            r.stats.largest_scc
        );
    }
}

#[test]
fn time_limit_bounds_the_whole_check_of_a_giant_component() {
    // 20,000 transactions in one component. How long the unbounded check
    // takes depends on the machine (on an idle CI runner it finished inside
    // 400 ms), so try budgets from loose to tight: every run must answer
    // (invalid or unknown, never valid) within its budget plus slack, and
    // at least one budget must actually be reached, or this tests nothing.
    let h = simulate(&stale(7, 20_000));
    let mut reached = Vec::new();
    for ms in [400u64, 100, 25, 5, 1] {
        let limit = std::time::Duration::from_millis(ms);
        let mut o = TxnOptions::new(Workload::ListAppend);
        o.time_limit = None;
        o.total_limit = Some(limit);
        let t = std::time::Instant::now();
        let r = txn::check(&h, &o).unwrap();
        let took = t.elapsed();
        assert_ne!(r.verdict, Verdict::Valid, "{ms} ms: {:?}", r.anomaly_types);
        // Slack for the explanations of cycles found just before the deadline.
        assert!(
            took < limit + std::time::Duration::from_millis(600),
            "took {took:?} with a {limit:?} limit"
        );
        if r.anomaly_types
            .iter()
            .any(|a| a == "cycle-search-timeout" || a == "check-timeout")
        {
            reached.push(ms);
        }
    }
    assert!(
        !reached.is_empty(),
        "no budget down to 1 ms was ever reached, so this test tests nothing"
    );
}

#[test]
fn serializable_rw_register_store_is_valid_and_read_committed_is_not() {
    for seed in 0..10 {
        let o = SimOptions {
            workload: Workload::RwRegister,
            ..opts(seed, Isolation::Serializable)
        };
        let r = txn::check(&simulate(&o), &TxnOptions::new(Workload::RwRegister))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(r.verdict, Verdict::Valid, "seed {seed}: {}", r.prose());
    }
    let invalid = (0..10).filter(|&seed| {
        let o = SimOptions {
            workload: Workload::RwRegister,
            ..opts(seed, Isolation::ReadCommitted)
        };
        txn::check(&simulate(&o), &TxnOptions::new(Workload::RwRegister))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
            .verdict
            == Verdict::Invalid
    });
    assert!(
        invalid.count() > 0,
        "no read-committed seed in 0..10 was caught"
    );
}
