//! Elle's own test histories (../shared/corpus/elle, MANIFEST.tsv) with the
//! verdicts Elle's tests assert. Skipped, with a message, when the corpus is
//! absent.

// The one skip path (a failure under CI=true): tests/common/skip.rs.
#[path = "../../tests/common/skip.rs"]
mod skip;

use faultline_checker::Verdict;
use faultline_checker::format::parse_file;
use faultline_checker::history::History;
use faultline_checker::txn::{self, TxnOptions, Workload};
use std::path::PathBuf;
use std::time::Duration;

fn history(name: &str) -> Option<History> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/elle/histories"
    ));
    let path = dir.join(name);
    if !path.exists() {
        skip::skipped(&format!("{} not found (the shared corpus)", path.display()));
        return None;
    }
    Some(parse_file(&path, None).unwrap_or_else(|e| panic!("{name}: {e}")))
}

#[test]
fn si_without_g_single() {
    let Some(h) = history("si-without-g-single.edn") else {
        return;
    };
    let opts =
        TxnOptions::new(Workload::ListAppend).models(&["snapshot-isolation", "repeatable-read"]);
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.anomaly_types, ["G2-item"], "{}", r.prose());
    assert_eq!(r.not, ["repeatable-read"]);
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn cyclic_versions_valid_with_linearizable_keys() {
    let Some(h) = history("cyclic-versions.edn") else {
        return;
    };
    let mut opts = TxnOptions::new(Workload::RwRegister).models(&["strong-snapshot-isolation"]);
    opts.linearizable_keys = true;
    let r = txn::check(&h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.prose());
}

#[test]
fn paper_example_checks() {
    // No verdict asserted upstream; it must at least be checkable.
    let Some(h) = history("paper-example.edn") else {
        return;
    };
    let r = txn::check(&h, &TxnOptions::new(Workload::ListAppend)).unwrap();
    eprintln!("paper-example: {:?} {:?}", r.verdict, r.anomaly_types);
}

#[test]
fn huge_scc() {
    // Upstream (1000 ms budget): G2-item-realtime, cycle-search-timeout and
    // strong-snapshot-isolation-cycle-exists; not = strong-snapshot-isolation.
    // What we find depends on speed; assert what is stable.
    let Some(h) = history("huge-scc.edn") else {
        return;
    };
    let mut opts = TxnOptions::new(Workload::ListAppend);
    opts.time_limit = Some(Duration::from_millis(1000));
    let r = txn::check(&h, &opts).unwrap();
    eprintln!(
        "huge-scc: {:?} not={:?} stats={:?}",
        r.anomaly_types, r.not, r.stats
    );
    assert_eq!(r.verdict, Verdict::Invalid);
    assert!(
        r.not
            .iter()
            .chain(&r.also_not)
            .any(|m| m == "strong-snapshot-isolation"),
        "{:?}",
        r.not
    );
    assert!(
        r.not.contains(&"strong-snapshot-isolation".to_string())
            || r.anomaly_types.iter().any(|t| t.ends_with("-realtime"))
    );
}

#[test]
#[ignore = "prints a sample result; run with --ignored --nocapture"]
fn show_sample() {
    let Some(h) = history("si-without-g-single.edn") else {
        return;
    };
    let opts =
        TxnOptions::new(Workload::ListAppend).models(&["snapshot-isolation", "repeatable-read"]);
    let r = txn::check(&h, &opts).unwrap();
    println!("{}", r.prose());
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    for e in r.anomalies.values().flatten() {
        if let Some(svg) = faultline_checker::txn::svg::render_cycle(e) {
            println!("{svg}");
        }
    }
}
