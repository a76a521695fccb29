//! `faultline check --html` pages in a real headless browser (issue #17,
//! "Done when"): Debian's chromium through chromedriver, a 1400×900
//! viewport, pages opened from disk (file://, no server). For an invalid
//! linearizability history (Porcupine's c10-bad), an invalid transactional
//! one (a G1c list-append cycle of two transactions, and a G-single /
//! G2-item pair from Elle's corpus) and a valid one, the DOM must show in
//! the first 900 px the verdict, the cause sentence (invalid ones) and the
//! failure viewer or cycle diagram; the viewer's step control must walk the
//! linearization; no two text labels of a cycle diagram may overlap.
//! Screenshots go to `target/tmp/check_html_browser/` (printed).
//!
//! Without chromium/chromedriver (scripts/browser-packages.txt) the test
//! prints that it skipped, and fails when CI=true.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{faultline, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use webdriver::Driver;

const W: f64 = 1400.0;
const H: f64 = 900.0;

/// The page rectangle of the first element matching `css` in the visible
/// tab, as (left, top, right, bottom, text).
fn rect(d: &Driver, css: &str) -> (f64, f64, f64, f64, String) {
    let v = d.script(&format!(
        "var e=[].find.call(document.querySelectorAll({css:?}),function(x){{return x.getClientRects().length>0;}});\
         if(!e){{return null;}}var r=e.getBoundingClientRect();\
         return [r.left,r.top,r.right,r.bottom,e.textContent];"
    ));
    let n = |i: usize| {
        v[i].as_f64()
            .unwrap_or_else(|| panic!("no visible {css}: {v}"))
    };
    (
        n(0),
        n(1),
        n(2),
        n(3),
        v[4].as_str().unwrap_or("").to_string(),
    )
}

/// Asserts the element is wholly inside the first `W`×`H` px.
fn on_first_screen(d: &Driver, css: &str) -> String {
    let (l, t, r, b, txt) = rect(d, css);
    assert!(
        l >= 0.0 && t >= 0.0 && r <= W + 0.5 && b <= H + 0.5,
        "{css} is at ({l:.0},{t:.0})–({r:.0},{b:.0}), not within the first {W}×{H} px"
    );
    txt
}

fn check_html(out: &Path, name: &str, input: &str, want_exit: i32) -> PathBuf {
    let page = out.join(format!("{name}.html"));
    let o = faultline(&["check", "--html", page.to_str().expect("utf-8"), input]);
    assert_eq!(o.status.code(), Some(want_exit), "{}", text(&o));
    page
}

fn url(p: &Path) -> String {
    format!(
        "file://{}",
        p.canonicalize().expect("the page exists").display()
    )
}

#[test]
fn check_html_pages_lead_with_the_verdict_and_explain_the_failure() {
    let Some((chromium, chromedriver)) = webdriver::browser() else {
        common::skipped(
            "needs chromium and chromedriver (apt-get install chromium chromium-driver)",
        );
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let corpus = format!("{root}/../shared/corpus");
    let kv_bad = format!("{corpus}/porcupine/test_data/kv/c10-bad.txt");
    let kv_ok = format!("{corpus}/porcupine/test_data/kv/c10-ok.txt");
    let elle = format!("{corpus}/elle/histories/si-without-g-single.edn");
    for f in [&kv_bad, &kv_ok, &elle] {
        if common::skip_without_file(f, "the shared history corpus") {
            return;
        }
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("check_html_browser");
    std::fs::create_dir_all(&out).unwrap();
    println!("pages and screenshots in {}", out.display());
    let lin = check_html(&out, "c10-bad", &kv_bad, 1);
    let g1c = check_html(
        &out,
        "list-append-g1c",
        &format!("{root}/tests/data/list-append-g1c.jsonl"),
        1,
    );
    let gsingle = check_html(&out, "si-without-g-single", &elle, 1);
    let valid = check_html(&out, "c10-ok", &kv_ok, 0);
    for p in [&lin, &g1c, &gsingle, &valid] {
        let html = std::fs::read_to_string(p).unwrap();
        for fetch in [" src=", "<link", "url(http", "@import"] {
            assert!(
                !html.contains(fetch),
                "{}: the page must not fetch anything ({fetch})",
                p.display()
            );
        }
    }

    let d = Driver::start(&chromium, &chromedriver, W as u32, H as u32);
    let inner = d.script("return [window.innerWidth, window.innerHeight]");
    assert_eq!(inner, serde_json::json!([1400, 900]), "viewport");

    // Linearizability: verdict, cause, viewer on the first screen.
    d.go(&url(&lin));
    let verdict = on_first_screen(&d, "#verdict .word");
    assert_eq!(verdict, "INVALID");
    let cause = on_first_screen(&d, "#cause");
    // Which keys are found invalid before the others are cancelled
    // depends on thread timing; the first tab's key leads.
    let first_key = rect(&d, ".linviewer .tab").4;
    assert!(first_key.starts_with("key "), "{first_key}");
    assert!(cause.starts_with(&first_key), "{cause}");
    assert!(cause.contains("line"), "the cause names lines: {cause}");
    on_first_screen(&d, ".keyview:not([hidden]) .chart.cropped svg");
    on_first_screen(&d, ".keyview:not([hidden]) .chart.cropped .op.fail");
    on_first_screen(&d, ".keyview:not([hidden]) .op.min");
    on_first_screen(&d, ".keyview:not([hidden]) .stepper .next");
    on_first_screen(&d, ".keyview:not([hidden]) .stepper .state");
    d.screenshot(&out.join("c10-bad.png"));

    // The step control walks the linearization: each step marks one more
    // operation done, names it and the state after it; the last step is
    // the operation that cannot follow.
    let view = ".keyview:not([hidden])";
    let step_text = |d: &Driver| rect(d, &format!("{view} .step-text")).4;
    let state_text = |d: &Driver| rect(d, &format!("{view} .state")).4;
    let total: u64 = d
        .script(&format!(
            "return JSON.parse(document.querySelector('{view} .lin-data').textContent).steps.length"
        ))
        .as_u64()
        .expect("steps");
    assert!(total >= 2, "key 0 has a linearization to walk");
    assert!(step_text(&d).starts_with("Step 0 of "), "{}", step_text(&d));
    let mut states = vec![state_text(&d)];
    for n in 1..=total {
        d.click(&format!("{view} .next"));
        let t = step_text(&d);
        assert!(t.starts_with(&format!("Step {n} of {}", total + 1)), "{t}");
        let s = state_text(&d);
        assert!(s.starts_with("state after it: "), "{s}");
        states.push(s);
        let marked = d
            .script(&format!(
                "return [document.querySelectorAll('{view} .lin-order li.cur').length, \
                 document.querySelector('{view} .lin-order li.cur').dataset.step]"
            ))
            .clone();
        assert_eq!(marked, serde_json::json!([1, n.to_string()]), "step {n}");
    }
    states.dedup();
    assert!(
        states.len() > 1,
        "the state changes as it walks: {states:?}"
    );
    d.click(&format!("{view} .next"));
    let t = step_text(&d);
    assert!(t.contains("cannot be linearized"), "{t}");
    let failnow = d.script(&format!(
        "return document.querySelectorAll('{view} .chart.cropped .op.failnow').length"
    ));
    assert_eq!(failnow, 1, "the failing op is marked at the last step");
    d.click(&format!("{view} .prev"));
    assert!(step_text(&d).starts_with(&format!("Step {total} of ")));

    // Hover names times, values and lines.
    d.hover(&format!("{view} .chart.cropped .op.fail rect"));
    let hover = rect(&d, &format!("{view} .hover")).4;
    assert!(
        hover.contains("cannot be linearized") && hover.contains("lines "),
        "{hover}"
    );

    // Another key's tab shows its own viewer (keys still searching when
    // one is found invalid may be cancelled, so there may be only one).
    let tabs = d.script("return document.querySelectorAll('.linviewer .tab').length");
    if tabs.as_u64() >= Some(2) {
        d.click(".linviewer .tab[data-tab='1']");
        let shown = d.script(
            "return [].filter.call(document.querySelectorAll('.keyview'),function(v){return !v.hidden;})\
             .map(function(v){return v.dataset.tab;})",
        );
        assert_eq!(shown, serde_json::json!(["1"]));
        on_first_screen(&d, ".keyview:not([hidden]) .chart.cropped .op.fail");
        d.screenshot(&out.join("c10-bad-key1.png"));
    }

    // Transactional: verdict, cause, diagram; labels never overlap.
    for (page, name, kind) in [
        (&g1c, "list-append-g1c", "G1c"),
        (&gsingle, "si-without-g-single", "G-single-item-realtime"),
    ] {
        d.go(&url(page));
        assert_eq!(on_first_screen(&d, "#verdict .word"), "INVALID");
        let cause = on_first_screen(&d, "#cause");
        assert!(cause.starts_with(kind), "{name}: {cause}");
        on_first_screen(&d, "svg.cycle");
        on_first_screen(&d, ".cycle-prose ul.steps");
        let legend = rect(&d, ".txn-legend").4;
        assert!(
            legend.contains("write–read") && !legend.contains("linearized"),
            "{name}: the legend is the transactional one: {legend}"
        );
        // Two curved edges between two transactions.
        let paths = d.script(
            "return [].map.call(document.querySelectorAll('svg.cycle')[0].querySelectorAll('path.edge'),\
             function(p){return p.getAttribute('d');})",
        );
        let paths: Vec<&str> = paths
            .as_array()
            .expect("paths")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(paths.len(), 2, "{name}: {paths:?}");
        assert!(paths.iter().all(|p| p.contains('Q')), "{name}: {paths:?}");
        webdriver::assert_no_label_overlaps(&d, name);
        let nested = d.script("return document.querySelectorAll('li ol, li ul').length");
        assert_eq!(nested, 0, "{name}: steps are a plain list");
        d.screenshot(&out.join(format!("{name}.png")));
    }

    // Valid: a clear VALID verdict, first.
    d.go(&url(&valid));
    assert_eq!(on_first_screen(&d, "#verdict .word"), "VALID");
    let class = d.script("return document.getElementById('verdict').className");
    assert_eq!(class, "verdict valid");
    let sentence = on_first_screen(&d, "#verdict .sentence");
    assert!(sentence.contains("valid (kv"), "{sentence}");
    d.screenshot(&out.join("c10-ok.png"));
}
