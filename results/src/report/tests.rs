use super::*;
use serde_json::json;

fn page(results: &Value) -> String {
    let h = History::default();
    render_report(&ReportInput {
        test_name: "t",
        run_time: "20261126T005011.123Z",
        history: &h,
        results,
        views: &crate::AnomalyViews::default(),
        windows: &[],
        test_json: None,
        nodes: &[],
        plots: &[],
    })
}

#[test]
fn verdicts_are_read_from_valid() {
    assert!(page(&json!({"valid": true})).contains("verdict valid"));
    assert!(page(&json!({"valid": false})).contains("verdict invalid"));
    let u = page(&json!({"valid": "unknown", "reason": "search budget exhausted"}));
    assert!(u.contains("verdict unknown") && u.contains("search budget exhausted"));
    assert!(page(&json!({})).contains("NO VERDICT"));
}

#[test]
fn keys_sort_naturally_and_valid_ones_fold_into_one_line() {
    let mut names = vec!["10", "2", "k10", "k9", "1", "100", "k09"];
    names.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(names, ["1", "2", "10", "100", "k9", "k09", "k10"]);
    let mut keys = serde_json::Map::new();
    for i in 0..144 {
        keys.insert(
            i.to_string(),
            json!({"valid": true, "failing_op": null, "tried": []}),
        );
    }
    keys.insert(
        "7".into(),
        json!({"valid": false, "explanation": "read 1 after write 2"}),
    );
    let p = page(&json!({"valid": false, "keys": keys}));
    assert!(p.contains("143 keys valid"), "one folded line");
    assert_eq!(
        p.matches("<div class=\"key ").count(),
        1,
        "only key 7 expanded"
    );
    let section = &p[p.find("id=\"keys\"").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert!(
        !section.contains("failing_op"),
        "empty search detail is not shown"
    );
    // The banner names key 7 and links to it.
    assert!(
        p.contains("href=\"#k7\">key 7: read 1 after write 2</a>"),
        "{p}"
    );
    assert!(p.contains("id=\"k7\""));
}

#[test]
fn the_cause_names_the_operation_and_its_lines() {
    let p = page(&json!({"valid": false, "anomalies": [{
        "type": "nonlinearizable", "key": "5",
        "op": {"id": 3, "process": 7, "f": "read", "value": 4, "line": 524},
        "minimal": [{"id": 1, "line": 20, "returned_line": 21},
                    {"id": 3, "line": 524, "returned_line": 547}],
        "minimal_explanation": "Key \"5\": a minimal counterexample has 2 operation(s): …"
    }]}));
    assert!(
        p.contains(
            "href=\"#a1\">key 5: process 7&#39;s read → 4 (lines 524–547) cannot be \
                    linearized; 2 operation(s) suffice to show it (lines 20, 524)</a>"
        ),
        "{p}"
    );
    assert!(p.contains("id=\"a1\""));
    assert!(p.contains("timeline.html#lines=20,21,524,547"));
}

#[test]
fn numbers_read_as_people_write_them() {
    assert_eq!(human_duration(850.0), "850 ns");
    assert_eq!(human_duration(41_700.0), "41.7 µs");
    assert_eq!(human_duration(9_895_866.999), "9.9 ms");
    assert_eq!(human_duration(60.5e9), "60.5 s");
    assert_eq!(human_duration(185e9), "3 min 05 s");
    assert_eq!(sig3(9.895866999999999), "9.9");
    assert_eq!(sig3(147.2), "147");
    assert_eq!(percent(0.9997), "99.97 %");
    let mut h = String::new();
    human_value(&mut h, "analyze_ms", &json!(9.895866999999999), 0);
    assert_eq!(h, "9.9 ms");
}

#[test]
fn nemesis_commands_hide_behind_a_toggle() {
    let mut h = String::new();
    nemesis_value(
        &mut h,
        &json!({"fault": "loss", "nodes": {"n1": {"exit": 0, "stderr": "", "stdout": "148"},
                                           "n2": {"exit": 1, "stderr": "no", "stdout": ""}}}),
    );
    let (shown, folded) = h.split_once("<details").expect("a toggle");
    assert!(shown.contains("fault: loss") && shown.contains("ran on n1, n2 (n2 exit 1)"));
    assert!(!shown.contains("stdout") && folded.contains("stdout"));
}

#[test]
fn node_links_are_percent_encoded() {
    assert_eq!(url_segment("n1"), "n1");
    assert_eq!(url_segment("a#b c"), "a%23b%20c");
}

#[test]
fn svg_is_inlined_only_when_it_is_svg() {
    let p = page(&json!({"valid": false, "anomalies": [
        {"type": "G1c", "svg": "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"3\"/></svg>"},
        {"type": "G1c", "svg": "<script>alert(1)</script>"}
    ]}));
    assert!(p.contains("<div class=\"svg\"><svg xmlns"));
    assert!(!p.contains("<script>alert"));
    assert!(p.contains("&lt;script&gt;"));
}

#[test]
fn the_failure_viewer_is_embedded_and_the_cause_links_to_it() {
    let view = crate::lin_viewer::LinKeyView {
        key: "5".into(),
        model: "cas-register".into(),
        minimal_explanation: Some("Stale read at line 9.".into()),
        ..Default::default()
    };
    let views = crate::AnomalyViews {
        lin: vec![view],
        cause: Some("key 5: Stale read at line 9.".into()),
        ..Default::default()
    };
    let results = json!({"valid": false, "anomaly_types": ["nonlinearizable"],
        "anomalies": {"nonlinearizable": [{"key": "5", "op": {"line": 9},
            "minimal_explanation": "Stale read at line 9."}]}});
    let h = History::default();
    let p = render_report(&ReportInput {
        test_name: "t",
        run_time: "r",
        history: &h,
        results: &results,
        views: &views,
        windows: &[],
        test_json: None,
        nodes: &[],
        plots: &[],
    });
    assert!(
        p.contains("href=\"#viewer\">key 5: Stale read at line 9.</a>"),
        "{p}"
    );
    assert!(p.contains("<div class=\"linviewer\" id=\"viewer\">"));
    assert!(p.contains("<script>") && p.contains(".linviewer .tabs"));
    // The tab says it; the anomaly's entry does not repeat it.
    assert_eq!(
        p.matches("<p class=\"why\">Stale read at line 9.</p>")
            .count(),
        1
    );
    assert!(!p.contains("<p class=\"expl\">Stale read"), "{p}");
    // Without typed views (a stored run), no viewer and no script.
    let old = page(&results);
    assert!(!old.contains("linviewer") && !old.contains("<script>"));
    assert!(old.contains("<p class=\"expl\">Stale read at line 9.</p>"));
}
