//! The JSON Lines fast path (`format::txn_fast`) must give exactly the
//! generic path's result (parse to `History`, `txn::prepare`, check) on
//! every history it accepts, and decline (return `None`) what it cannot
//! represent exactly. Seeds are printed on failure.

use faultline_checker::format::{jsonl, txn_fast};
use faultline_checker::history::{EventType, History};
use faultline_checker::txn::sim::{Isolation, SimOptions, event_json, simulate};
use faultline_checker::txn::{self, TxnOptions, Workload};

fn to_jsonl(h: &History) -> String {
    let mut s = String::new();
    for e in &h.events {
        s.push_str(&event_json(e).to_string());
        s.push('\n');
    }
    s
}

/// The result as JSON, without the timings.
fn comparable(r: &txn::TxnResult) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    for t in ["prepare_ms", "analyze_ms", "graph_ms", "cycle_ms"] {
        v["stats"][t] = serde_json::Value::Null;
    }
    v
}

/// Both paths on `text`; panics (naming `what`) if they differ. Returns
/// whether the fast path accepted the text.
fn same(text: &str, workload: Option<Workload>, models: &[&str], what: &str) -> bool {
    let Some((p, w)) = txn_fast::prepare(text.as_bytes(), workload) else {
        return false;
    };
    if let Some(want) = workload {
        assert_eq!(w, want, "{what}");
    }
    let h = jsonl::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let opts = TxnOptions::new(w).models(models);
    let generic = txn::check(&h, &opts).unwrap_or_else(|e| panic!("{what}: {e}"));
    let fast = txn::check_prepared(&p, &opts, 0.0).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(comparable(&fast), comparable(&generic), "{what}");
    // The same text read from a file, in chunks, with a byte order mark.
    let path = std::env::temp_dir().join(format!(
        "faultline-txn-fast-{}-{}.jsonl",
        std::process::id(),
        what.replace([' ', ','], "_")
    ));
    std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
    // Default chunks, and chunks shorter than a line (lines span chunks).
    for chunk in [4 << 20, 97] {
        let (pf, wf) = txn_fast::prepare_file_chunked(&path, workload, chunk)
            .unwrap_or_else(|| panic!("{what}: file, chunk {chunk}"));
        assert_eq!(wf, w, "{what}");
        let from_file =
            txn::check_prepared(&pf, &opts, 0.0).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            comparable(&from_file),
            comparable(&generic),
            "{what}: file, chunk {chunk}"
        );
    }
    std::fs::remove_file(&path).ok();
    true
}

/// Turns some completions into `info` and `fail`, so the histories also
/// have unknown and aborted transactions (and G1a, dirty updates, …).
fn degrade(h: &mut History, seed: u64) {
    let mut n = seed;
    for e in h.events.iter_mut().filter(|e| e.kind == EventType::Ok) {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match (n >> 33) % 13 {
            0 => e.kind = EventType::Info,
            1 => e.kind = EventType::Fail,
            _ => {}
        }
    }
}

#[test]
fn fast_path_matches_generic_on_simulated_histories() {
    for seed in 0..12u64 {
        for iso in [
            Isolation::Serializable,
            Isolation::SnapshotIsolation,
            Isolation::ReadCommitted,
        ] {
            let o = SimOptions {
                seed,
                txns: 300,
                processes: 5,
                keys: 4,
                max_writes_per_key: 16,
                min_mops: 1,
                max_mops: 4,
                isolation: iso,
                ..SimOptions::default()
            };
            let mut h = simulate(&o);
            if seed % 2 == 1 {
                degrade(&mut h, seed);
            }
            let text = to_jsonl(&h);
            let what = format!("seed {seed}, {iso:?}");
            for models in [
                &["strict-serializable"][..],
                &["read-committed", "snapshot-isolation"],
            ] {
                assert!(
                    same(&text, None, models, &what),
                    "{what}: fast path declined"
                );
            }
        }
    }
}

#[test]
fn fast_path_handles_the_jsonl_variations() {
    // Nemesis events with arbitrary values, named processes, extra and
    // reordered fields, blank lines, CRLF, null reads, info and fail.
    let text = concat!(
        "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\",\"value\":{\"n1\":[\"a\",1.5]}}\n",
        "\n",
        "{\"type\":\"invoke\",\"process\":\"c1\",\"f\":\"txn\",\"value\":[[\"append\",1,1],[\"r\",2,null]],\"node\":\"n1\",\"extra\":[1,{\"x\":\"\\\"\"}]}\r\n",
        "{\"index\":1,\"time\":null,\"process\":2,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",1,null]]}\n",
        "  {\"process\":\"c1\",\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",1,1],[\"r\",2,[]]],\"error\":null}\n",
        "{\"process\":2,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",1,[1]]]}\n",
        "{\"process\":3,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1,2]]}\n",
        "{\"process\":3,\"type\":\"fail\",\"f\":\"txn\",\"value\":[[\"append\",1,2]],\"error\":\"aborted\"}\n",
        "{\"process\":4,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",2,-7],[\"r\",1,null]]}\n",
        "{\"process\":4,\"type\":\"info\",\"f\":\"txn\",\"value\":null}\n",
        "{\"process\":5,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",1,null],[\"r\",2,null]]}\n",
        "{\"process\":5,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",1,[2]],[\"r\",2,null]]}\n",
        "{\"process\":6,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1,3]]}",
    );
    assert!(same(text, None, &["strict-serializable"], "variations"));
    assert!(same(
        text,
        Some(Workload::ListAppend),
        &["read-uncommitted"],
        "variations"
    ));

    let rw = concat!(
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"w\",1,1],[\"r\",2,null]]}\n",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"w\",2,1],[\"r\",1,null]]}\n",
        "{\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"w\",1,1],[\"r\",2,null]]}\n",
        "{\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"w\",2,1],[\"r\",1,null]]}\n",
    );
    let (_, w) = txn_fast::prepare(rw.as_bytes(), None).unwrap();
    assert_eq!(w, Workload::RwRegister);
    assert!(same(rw, None, &["serializable"], "rw-register"));
}

#[test]
fn fast_path_declines_what_it_cannot_represent() {
    let ok = "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1,1]]}\n";
    assert!(txn_fast::prepare(ok.as_bytes(), None).is_some());
    for (what, text) in [
        ("string key", ok.replace("1,1", "\"k\",1")),
        ("float value", ok.replace("1,1", "1,1.0")),
        ("huge value", ok.replace("1,1", "1,9223372036854775808")),
        ("keyword f", ok.replace("\"append\"", "\":append\"")),
        ("other op", ok.replace("\"txn\"", "\"read\"")),
        (
            "duplicate field",
            ok.replace("\"f\":\"txn\"", "\"f\":\"txn\",\"f\":\"txn\""),
        ),
        ("missing type", ok.replace("\"type\":\"invoke\",", "")),
        (
            "negative process",
            ok.replace("\"process\":0", "\"process\":-1"),
        ),
        ("bad json", ok.replace("]]}", "]]")),
        ("escaped name", ok.replace("\"f\"", "\"\\u0066\"")),
        ("non-ascii", ok.replace("\"txn\"", "\"txn\",\"node\":\"é\"")),
        (
            "list write",
            ok.replace("[\"append\",1,1]", "[\"w\",1,[1]]"),
        ),
        ("no micro-ops", ok.replace("[[\"append\",1,1]]", "[]")),
        ("empty", String::new()),
        (
            "unpaired ok",
            ok.replace("invoke", "ok") + &ok.replace("invoke", "ok"),
        ),
    ] {
        assert!(
            txn_fast::prepare(text.as_bytes(), None).is_none(),
            "{what}: {text}"
        );
    }
    // An rw-register micro-op under list-append: the generic path's error.
    let w = ok.replace("\"append\"", "\"w\"");
    assert!(txn_fast::prepare(w.as_bytes(), Some(Workload::ListAppend)).is_none());
}
