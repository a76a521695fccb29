//! `render_run` end to end: a run in a store, its history written through
//! the writer, results from a checker, every rendered file checked.

mod common;

use faultline_checker::History;
use faultline_results::{Store, render_run, run_timeline, store};
use serde_json::json;
use std::fs;

fn results() -> serde_json::Value {
    json!({
        "valid": false,
        "anomaly_types": ["G1c", "G-single"],
        "anomalies": {
            "G1c": [{
                "cycle": ["T1", "T2"],
                "explanations": [{
                    "prose": [
                        "T1 < T2 because T2 read T1's append of 3 to key 5",
                        "T2 < T1 because T1 read T2's append of 4 to key 6"
                    ],
                    "svg": "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\"><text x=\"2\" y=\"12\">T1→T2</text></svg>"
                }]
            }],
            "G-single": [{"explanation": "T3 < T4 < T3 <b>with</b> one anti-dependency"}]
        },
        "not": ["read-committed"],
        "also_not": ["serializable", "snapshot-isolation"],
        "keys": {
            "x": {"valid": false, "explanation": "read → 1 cannot follow write 2"},
            "y": {"valid": true}
        },
        "checker_ms": 12
    })
}

#[test]
fn render_run_writes_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path());
    let run = store
        .create_run(
            "etcd-register",
            &json!({"seed": 42, "nodes": ["n1", "n2", "n3"]}),
        )
        .unwrap();
    let h = common::synthetic(2_000);
    let mut w = run.history_writer().unwrap();
    for e in &h.events {
        w.write(e).unwrap();
    }
    w.close().unwrap();
    run.node_dir("n1").unwrap();
    run.write_results(&results()).unwrap();

    render_run(&run, &h, &results(), &Default::default()).unwrap();

    for f in [
        store::LATENCY_RAW_PNG,
        store::LATENCY_QUANTILES_PNG,
        store::RATE_PNG,
    ] {
        let bytes = fs::read(run.file(f)).unwrap();
        assert_eq!(common::png_size(&bytes), (1200, 600), "{f}");
    }
    let report = fs::read_to_string(run.file(store::REPORT_HTML)).unwrap();
    // verdict first
    let v = report.find("verdict invalid").expect("verdict banner");
    assert!(v < report.find("Anomalies").unwrap());
    assert!(report.contains("INVALID"));
    // anomalies: prose lines, trusted SVG inlined, other prose escaped
    assert!(report.contains("T1 &lt; T2 because T2 read T1&#39;s append of 3 to key 5"));
    assert!(report.contains("<div class=\"svg\"><svg xmlns="));
    assert!(report.contains("&lt;b&gt;with&lt;/b&gt;"));
    assert!(report.contains(">read-committed<") && report.contains(">snapshot-isolation<"));
    assert!(report.contains("read → 1 cannot follow write 2"));
    assert!(
        report.contains("checker ms"),
        "unknown fields are shown too"
    );
    // nemesis schedule with what was done to whom
    assert!(report.contains("Nemesis schedule"));
    assert!(report.contains("10.000 s") && report.contains("18.000 s"));
    assert!(report.contains("killed pid 4242"));
    // counts, plots, links
    assert!(report.contains("<td>read</td>") && report.contains("<td>cas</td>"));
    for f in [
        "src=\"latency-raw.png\"",
        "src=\"latency-quantiles.png\"",
        "src=\"rate.png\"",
        "href=\"timeline.html\"",
        "href=\"history.jsonl\"",
        "href=\"test.json\"",
        "href=\"nodes/n1/\"",
    ] {
        assert!(report.contains(f), "{f}");
    }
    assert!(
        report.contains("&quot;seed&quot;: 42"),
        "test.json is shown"
    );
    // self-contained: nothing fetched from anywhere; the report has no
    // script at all, the timeline only its own inline one.
    assert!(!report.contains("<script") && !report.contains("<link"));
    let tl = fs::read_to_string(run.file(store::TIMELINE_HTML)).unwrap();
    for doc in [&report, &tl] {
        assert!(!doc.contains("<script src") && !doc.contains("<link"));
        assert!(!doc.contains("src=\"http") && !doc.contains("url(http"));
    }
    // Every operation is in the data, with outcomes ok/fail/info, the fault
    // window and the nemesis events.
    let data = timeline_data(&tl);
    let n = data["n"].as_u64().unwrap() as usize;
    // Outcomes, one character per operation: 0 ok, 1 fail, 2 info.
    let outcomes = data["o"].as_str().unwrap();
    assert_eq!(outcomes.len(), n);
    assert!(outcomes.contains('0') && outcomes.contains('1') && outcomes.contains('2'));
    assert_eq!(data["wl"][0], "partition");
    assert_eq!(data["ws"][0], 10_000_000);
    assert!(!data["nt"].as_array().unwrap().is_empty());
}

/// The inline JSON data of a timeline page.
fn timeline_data(tl: &str) -> serde_json::Value {
    let start = tl.find("id=\"data\">").expect("data script") + "id=\"data\">".len();
    let end = start + tl[start..].find("</script>").expect("end of data");
    serde_json::from_str(&tl[start..end]).expect("data is JSON")
}

#[test]
fn timeline_holds_every_operation() {
    let h = common::synthetic(80_000);
    let n_ops = h.events.iter().filter(|e| !e.process.is_nemesis()).count() / 2;
    let tl = run_timeline::render_run_timeline("t", &h, &[]);
    assert!(tl.contains(&format!("{n_ops} client operations, all drawn")));
    let data = timeline_data(&tl);
    assert_eq!(data["n"].as_u64(), Some(n_ops as u64));
    for col in ["s", "d", "l", "r", "p", "v"] {
        assert_eq!(data[col].as_array().map(Vec::len), Some(n_ops), "{col}");
    }
    for col in ["o", "f"] {
        assert_eq!(data[col].as_str().map(str::len), Some(n_ops), "{col}");
    }
    // Invocation times decode (deltas summed) to the history's, in µs.
    let first_invoke = h.events.iter().find(|e| !e.process.is_nemesis()).unwrap();
    assert_eq!(data["s"][0].as_u64(), first_invoke.time.map(|t| t / 1000));
}

#[test]
fn histories_without_time_fall_back_to_event_order() {
    let mut h = common::synthetic(200);
    for e in &mut h.events {
        e.time = None;
    }
    let tl = run_timeline::render_run_timeline("t", &h, &[]);
    assert!(tl.contains("x axis is the event order"));
    // and the report of an empty history still renders
    let tmp = tempfile::tempdir().unwrap();
    let run = Store::new(tmp.path()).create_run("t", &json!({})).unwrap();
    render_run(
        run.path(),
        &History::default(),
        &json!({"valid": "unknown", "reason": "no operations"}),
        &Default::default(),
    )
    .unwrap();
    let report = fs::read_to_string(run.file(store::REPORT_HTML)).unwrap();
    assert!(report.contains("UNKNOWN") && report.contains("no operations"));
}

#[test]
fn a_missing_run_dir_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let h = common::synthetic(100);
    let r = render_run(
        tmp.path().join("no/such/run"),
        &h,
        &json!({"valid": true}),
        &Default::default(),
    );
    assert!(r.is_err());
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("no/such/run"), "{msg}");
}
