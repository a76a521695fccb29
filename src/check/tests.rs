//! The run report's data from a check: `faultline test` renders
//! `report.html` from what [`analyze`] returns, so an invalid history must
//! come back with the failure viewer's or the cycle diagrams' typed data
//! and the cause sentence, and a valid one with none.

use super::*;

fn history(name: &str) -> History {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    format::parse_file(&p, Some(Format::Jsonl)).expect("a fixture")
}

#[test]
fn analyze_returns_the_views_the_run_report_draws() {
    let lin = analyze(&history("register-bad.jsonl"), "cas-register", "h", None).unwrap();
    assert_eq!(lin.verdict, Verdict::Invalid);
    assert!(!lin.views.lin.is_empty(), "a viewer tab per failing key");
    assert!(
        lin.views
            .lin
            .iter()
            .all(|v| !v.steps.is_empty() || v.failing.is_some()),
        "each tab has a linearization to walk"
    );
    let cause = lin.views.cause.as_deref().expect("a cause sentence");
    // The minimal explanation's "why", naming lines of the file.
    assert!(cause.contains("line "), "{cause}");

    let txn = analyze(&history("list-append-g1c.jsonl"), "list-append", "h", None).unwrap();
    assert_eq!(txn.verdict, Verdict::Invalid);
    assert!(matches!(
        txn.views.txn.first(),
        Some((k, faultline_checker::txn::explain::Explanation::Cycle { .. })) if k == "G1c"
    ));
    let cause = txn.views.cause.as_deref().expect("a cause sentence");
    assert!(cause.starts_with("G1c: a dependency cycle"), "{cause}");

    let ok = analyze(&history("register-ok.jsonl"), "cas-register", "h", None).unwrap();
    assert_eq!(ok.verdict, Verdict::Valid);
    assert!(ok.views.is_empty() && ok.views.cause.is_none());
}
