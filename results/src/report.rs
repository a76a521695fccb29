//! `report.html`: what a person reads first after a run.
//!
//! Order: the verdict (big, coloured), the anomalies with their
//! explanations, the models violated, per-key results, the nemesis schedule,
//! counts per operation, the plots, and links to every file of the run. The
//! page is one file with inline CSS (no script, no network); the PNGs and
//! links are relative, so the run directory can be copied anywhere.
//!
//! # `results.json`: what the report reads
//!
//! The checker's output is the contract (STYLE.md: one result, many
//! printers). The report renders whatever of these fields is present and
//! shows anything else generically; it never computes a verdict.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `valid` | `true` / `false` / `"unknown"` | the verdict (`valid?` is accepted too) |
//! | `reason` / `error` | string | why the verdict is `unknown`, or what failed |
//! | `anomaly_types` | array of strings | e.g. `["G1c", "G-single"]` (`anomaly-types` accepted) |
//! | `anomalies` | object (type → list) or array | each anomaly: an object with any of `type`, `explanation` (string or list of lines), `explanations` (list of `{prose/lines/steps, svg}`), `prose`/`lines`/`steps` (list of strings), `svg` (an SVG document produced by faultline), and other fields shown as JSON |
//! | `not` | array of strings | the weakest consistency models the history violates |
//! | `also_not` | array of strings | models that are therefore also violated (`also-not` accepted) |
//! | `keys` | object (key → result) | per-key results (linearizability): each with `valid` and optionally `explanation`, `op`, `prefix`, … |
//!
//! Example:
//!
//! ```json
//! {
//!   "valid": false,
//!   "anomaly_types": ["G1c"],
//!   "anomalies": {"G1c": [{
//!     "cycle": ["T1", "T2"],
//!     "explanations": [{
//!       "prose": ["T1 < T2 because T2 read T1's append of 3 to key 5",
//!                 "T2 < T1 because T1 read T2's append of 4 to key 6"],
//!       "svg": "<svg xmlns=\"http://www.w3.org/2000/svg\" …>…</svg>"
//!     }]
//!   }]},
//!   "not": ["read-committed"],
//!   "also_not": ["serializable", "snapshot-isolation"],
//!   "keys": {"x": {"valid": false, "explanation": "read → 1 cannot follow write 2"}}
//! }
//! ```

use crate::ops::{self, OpSpan};
use crate::plots::FaultWindow;
use crate::store;
use crate::timeline::escape;
use faultline_checker::{EventType, History, Outcome, Verdict};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything the report shows. Built by [`crate::render_run`].
#[derive(Clone, Debug)]
pub struct ReportInput<'a> {
    pub test_name: &'a str,
    /// The run directory's name (its start time).
    pub run_time: &'a str,
    pub history: &'a History,
    pub results: &'a Value,
    pub windows: &'a [FaultWindow],
    /// `test.json`, when readable.
    pub test_json: Option<&'a Value>,
    /// Subdirectories of `nodes/`.
    pub nodes: &'a [String],
    /// Which of the PNGs were written (a plot error must not lose the
    /// report; the missing ones are named instead).
    pub plots: &'a [(&'a str, Result<(), String>)],
}

/// Anomalies drawn per type before "… N more".
const MAX_ANOMALIES_PER_TYPE: usize = 50;
/// Per-key rows drawn before "… N more".
const MAX_KEY_ROWS: usize = 200;
/// Nemesis events listed before "… N more".
const MAX_NEMESIS_ROWS: usize = 1000;
/// Longest JSON value shown inline, in characters.
const MAX_INLINE_JSON: usize = 400;
/// Longest raw `results.json` / `test.json` shown, in bytes.
const MAX_RAW_JSON: usize = 200_000;

/// Renders `report.html`.
pub fn render_report(inp: &ReportInput<'_>) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("{} — {}", inp.test_name, inp.run_time);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>{CSS}</style></head><body>\n\
         <p class=\"crumb\">faultline run · test <b>{}</b> · started {}</p>\n",
        escape(&title),
        escape(inp.test_name),
        escape(inp.run_time)
    );
    verdict_banner(&mut h, inp.results);
    let _ = writeln!(
        h,
        "<p class=\"nav\"><a href=\"{}\">timeline</a> · <a href=\"#nemesis\">nemesis</a> · \
         <a href=\"#operations\">operations</a> · <a href=\"#performance\">plots</a> · \
         <a href=\"{}\">history.jsonl</a> · <a href=\"{}\">test.json</a> · <a href=\"{}\">results.json</a></p>",
        store::TIMELINE_HTML,
        store::HISTORY_JSONL,
        store::TEST_JSON,
        store::RESULTS_JSON
    );
    models(&mut h, inp.results);
    anomalies(&mut h, inp.results);
    keys(&mut h, inp.results);
    crate::blocking::section(&mut h, inp.results);
    other_fields(&mut h, inp.results);
    let spans = ops::spans(inp.history);
    nemesis_schedule(&mut h, inp.history, inp.windows);
    counts(&mut h, inp.history, &spans);
    h.push_str(&crate::steps::section(inp.results, inp.history));
    plots(&mut h, inp.plots);
    files(&mut h, inp.nodes);
    raw(
        &mut h,
        "test.json — every option and the seed",
        inp.test_json,
    );
    raw(&mut h, "results.json", Some(inp.results));
    h.push_str("</body></html>\n");
    h
}

fn verdict_banner(h: &mut String, results: &Value) {
    let (class, word, what) = match store::verdict_of(results) {
        Some(Verdict::Valid) => ("valid", "VALID", "no anomaly was found"),
        Some(Verdict::Invalid) => ("invalid", "INVALID", "the history violates the model"),
        Some(Verdict::Unknown) => (
            "unknown",
            "UNKNOWN",
            "the check did not finish; this is not a pass",
        ),
        None => (
            "unknown",
            "NO VERDICT",
            "results.json states no `valid`; the run may not have been checked",
        ),
    };
    let _ = write!(
        h,
        "<div class=\"verdict {class}\"><span class=\"word\">{word}</span> \
         <span class=\"what\">{}</span>",
        escape(what)
    );
    for field in ["reason", "error", "message"] {
        if let Some(v) = results.get(field) {
            let _ = write!(
                h,
                "<div class=\"reason\">{field}: {}</div>",
                escape(&text_of(v))
            );
        }
    }
    h.push_str("</div>\n");
}

/// Strings as themselves, anything else as compact JSON (truncated).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => compact(other, MAX_INLINE_JSON),
    }
}

fn compact(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

fn field<'v>(v: &'v Value, names: &[&str]) -> Option<&'v Value> {
    names.iter().find_map(|n| v.get(*n))
}

fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(text_of).collect(),
        Value::Null => Vec::new(),
        other => vec![text_of(other)],
    }
}

fn chips(h: &mut String, class: &str, items: &[String]) {
    for it in items {
        let _ = write!(h, "<span class=\"chip {class}\">{}</span> ", escape(it));
    }
}

fn models(h: &mut String, r: &Value) {
    let types = field(r, &["anomaly_types", "anomaly-types"])
        .map(string_list)
        .unwrap_or_default();
    let not = field(r, &["not"]).map(string_list).unwrap_or_default();
    let also = field(r, &["also_not", "also-not"])
        .map(string_list)
        .unwrap_or_default();
    if types.is_empty() && not.is_empty() && also.is_empty() {
        return;
    }
    h.push_str("<section class=\"models\">");
    if !types.is_empty() {
        h.push_str("<p>Anomalies found: ");
        chips(h, "anomaly", &types);
        h.push_str("</p>");
    }
    if !not.is_empty() {
        h.push_str("<p>Violates (weakest first): ");
        chips(h, "not", &not);
        h.push_str("</p>");
    }
    if !also.is_empty() {
        h.push_str("<p>and therefore also: ");
        chips(h, "also", &also);
        h.push_str("</p>");
    }
    h.push_str("</section>\n");
}

fn anomalies(h: &mut String, r: &Value) {
    let Some(a) = r.get("anomalies") else { return };
    // Normalise to (type, list) groups, keeping the checker's order.
    let groups: Vec<(String, Vec<&Value>)> = match a {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let list = match v {
                    Value::Array(xs) => xs.iter().collect(),
                    other => vec![other],
                };
                (k.clone(), list)
            })
            .collect(),
        Value::Array(xs) => {
            let mut by: Vec<(String, Vec<&Value>)> = Vec::new();
            for x in xs {
                let t = x
                    .get("type")
                    .map(text_of)
                    .unwrap_or_else(|| "anomaly".into());
                match by.iter_mut().find(|(k, _)| *k == t) {
                    Some((_, l)) => l.push(x),
                    None => by.push((t, vec![x])),
                }
            }
            by
        }
        Value::Null => return,
        other => vec![("anomalies".into(), vec![other])],
    };
    if groups.iter().all(|(_, l)| l.is_empty()) {
        return;
    }
    h.push_str("<section><h2>Anomalies</h2>\n");
    for (t, list) in &groups {
        let _ = writeln!(
            h,
            "<h3><span class=\"chip anomaly\">{}</span> {} found</h3>",
            escape(t),
            list.len()
        );
        for (i, an) in list.iter().take(MAX_ANOMALIES_PER_TYPE).enumerate() {
            let _ = write!(
                h,
                "<div class=\"anomaly\"><div class=\"n\">#{}</div>",
                i + 1
            );
            anomaly(h, an);
            h.push_str("</div>\n");
        }
        if list.len() > MAX_ANOMALIES_PER_TYPE {
            let _ = writeln!(
                h,
                "<p class=\"note\">… {} more {} anomalies in results.json.</p>",
                list.len() - MAX_ANOMALIES_PER_TYPE,
                escape(t)
            );
        }
    }
    h.push_str("</section>\n");
}

/// Fields of an anomaly that are rendered as prose rather than as JSON.
const PROSE_FIELDS: [&str; 6] = [
    "explanation",
    "explanations",
    "prose",
    "lines",
    "steps",
    "svg",
];

fn anomaly(h: &mut String, an: &Value) {
    let Value::Object(m) = an else {
        let _ = write!(h, "<p class=\"expl\">{}</p>", escape(&text_of(an)));
        return;
    };
    if let Some(e) = m.get("explanation") {
        explanation(h, e);
    }
    for f in ["prose", "lines", "steps"] {
        if let Some(e) = m.get(f) {
            explanation(h, e);
        }
    }
    if let Some(Value::Array(es)) = m.get("explanations") {
        for e in es {
            explanation(h, e);
        }
    } else if let Some(e) = m.get("explanations") {
        explanation(h, e);
    }
    if let Some(Value::String(svg)) = m.get("svg") {
        inline_svg(h, svg);
    }
    let rest: Vec<(&String, &Value)> = m
        .iter()
        .filter(|(k, _)| !PROSE_FIELDS.contains(&k.as_str()) && k.as_str() != "type")
        .collect();
    if !rest.is_empty() {
        h.push_str("<table class=\"kv\">");
        for (k, v) in rest {
            let _ = write!(
                h,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                escape(k),
                escape(&text_of(v))
            );
        }
        h.push_str("</table>");
    }
}

/// An explanation: a string, a list of lines, or an object with prose lines
/// and an SVG.
fn explanation(h: &mut String, e: &Value) {
    match e {
        Value::String(s) => {
            let _ = write!(h, "<p class=\"expl\">{}</p>", escape(s));
        }
        Value::Array(lines) => {
            h.push_str("<ol class=\"why\">");
            for l in lines {
                let _ = write!(h, "<li>{}</li>", escape(&text_of(l)));
            }
            h.push_str("</ol>");
        }
        Value::Object(_) => anomaly(h, e),
        Value::Null => {}
        other => {
            let _ = write!(h, "<p class=\"expl\">{}</p>", escape(&text_of(other)));
        }
    }
}

/// Inlines an SVG that faultline's own checker produced (trusted). Anything
/// that does not look like an SVG document is shown as text instead.
fn inline_svg(h: &mut String, svg: &str) {
    let t = svg.trim_start();
    if t.starts_with("<svg") || t.starts_with("<?xml") {
        let _ = write!(h, "<div class=\"svg\">{svg}</div>");
    } else {
        let _ = write!(h, "<pre>{}</pre>", escape(svg));
    }
}

fn keys(h: &mut String, r: &Value) {
    let Some(Value::Object(keys)) = r.get("keys") else {
        return;
    };
    if keys.is_empty() {
        return;
    }
    let mut rows: Vec<(&String, &Value, Option<Verdict>)> = keys
        .iter()
        .map(|(k, v)| (k, v, store::verdict_of(v)))
        .collect();
    // Invalid first, then unknown, then valid: what needs reading on top.
    rows.sort_by_key(|(_, _, v)| match v {
        Some(Verdict::Invalid) => 0,
        Some(Verdict::Unknown) | None => 1,
        Some(Verdict::Valid) => 2,
    });
    let n_valid = rows.iter().filter(|r| r.2 == Some(Verdict::Valid)).count();
    let _ = write!(
        h,
        "<section><h2>Per key</h2><p>{} keys: {} valid, {} not valid. \
         <a href=\"{}\">timeline of the whole run</a>.</p>\n\
         <table><thead><tr><th>key</th><th>verdict</th><th>explanation</th></tr></thead><tbody>\n",
        rows.len(),
        n_valid,
        rows.len() - n_valid,
        store::TIMELINE_HTML
    );
    for (k, v, verdict) in rows.iter().take(MAX_KEY_ROWS) {
        let (class, word) = verdict_word(*verdict);
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td><code>{}</code></td><td>{word}</td><td>",
            escape(k)
        );
        if let Value::Object(m) = v {
            if let Some(e) = m.get("explanation") {
                explanation(h, e);
            }
            for (f, x) in m {
                if f != "valid" && f != "valid?" && f != "explanation" {
                    let _ = write!(
                        h,
                        "<div class=\"small\"><b>{}</b>: <code>{}</code></div>",
                        escape(f),
                        escape(&text_of(x))
                    );
                }
            }
        } else {
            let _ = write!(h, "<code>{}</code>", escape(&text_of(v)));
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</tbody></table>");
    if rows.len() > MAX_KEY_ROWS {
        let _ = write!(
            h,
            "<p class=\"note\">… {} more keys in results.json.</p>",
            rows.len() - MAX_KEY_ROWS
        );
    }
    h.push_str("</section>\n");
}

fn verdict_word(v: Option<Verdict>) -> (&'static str, &'static str) {
    match v {
        Some(Verdict::Valid) => ("valid", "valid"),
        Some(Verdict::Invalid) => ("invalid", "invalid"),
        Some(Verdict::Unknown) => ("unknown", "unknown"),
        None => ("unknown", "—"),
    }
}

/// Top-level fields the sections above did not show.
fn other_fields(h: &mut String, r: &Value) {
    const SHOWN: [&str; 13] = [
        "blocking",
        "valid",
        "valid?",
        "reason",
        "error",
        "message",
        "anomaly_types",
        "anomaly-types",
        "anomalies",
        "not",
        "also_not",
        "also-not",
        "keys",
    ];
    let Value::Object(m) = r else { return };
    let rest: Vec<_> = m
        .iter()
        .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
        .collect();
    if rest.is_empty() {
        return;
    }
    h.push_str("<section><h2>Other results</h2><table class=\"kv\">");
    for (k, v) in rest {
        let _ = write!(
            h,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(k),
            escape(&text_of(v))
        );
    }
    h.push_str("</table></section>\n");
}

/// Seconds since the test started, for tables.
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn nemesis_schedule(h: &mut String, history: &History, windows: &[FaultWindow]) {
    let events: Vec<_> = history
        .events
        .iter()
        .filter(|e| e.process.is_nemesis())
        .collect();
    h.push_str("<section id=\"nemesis\"><h2>Nemesis schedule</h2>\n");
    if events.is_empty() && windows.is_empty() {
        h.push_str(
            "<p>No faults were injected (no nemesis events in the history).</p></section>\n",
        );
        return;
    }
    if !windows.is_empty() {
        h.push_str(
            "<table><thead><tr><th>fault</th><th>from</th><th>to</th><th>for</th></tr></thead><tbody>",
        );
        for w in windows {
            let _ = write!(
                h,
                "<tr><td><span class=\"chip fault\">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&w.label),
                secs(w.start_ns),
                secs(w.end_ns),
                secs(w.end_ns.saturating_sub(w.start_ns))
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if !events.is_empty() {
        let _ = write!(
            h,
            "<details open><summary>{} nemesis events: what was done to whom</summary>\
             <table><thead><tr><th>time</th><th>type</th><th>f</th><th>node</th><th>value</th><th>error</th></tr></thead><tbody>",
            events.len()
        );
        for e in events.iter().take(MAX_NEMESIS_ROWS) {
            let class = if e.kind == EventType::Info {
                "done"
            } else {
                ""
            };
            let _ = write!(
                h,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                e.time.map(secs).unwrap_or_default(),
                e.kind,
                escape(&e.f),
                escape(e.node.as_deref().unwrap_or("")),
                escape(&text_of(&e.value)),
                e.error
                    .as_ref()
                    .map(|x| escape(&text_of(x)))
                    .unwrap_or_default()
            );
        }
        h.push_str("</tbody></table>");
        if events.len() > MAX_NEMESIS_ROWS {
            let _ = write!(
                h,
                "<p class=\"note\">… {} more in history.jsonl.</p>",
                events.len() - MAX_NEMESIS_ROWS
            );
        }
        h.push_str("</details>");
    }
    h.push_str("</section>\n");
}

fn counts(h: &mut String, history: &History, spans: &[OpSpan]) {
    // f -> [ok, fail, info, open]
    let mut by_f: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for s in spans {
        let c = by_f.entry(history.events[s.invoke].f.as_str()).or_default();
        let i = match (s.outcome, s.complete) {
            (Outcome::Ok, _) => 0,
            (Outcome::Fail, _) => 1,
            (Outcome::Info, Some(_)) => 2,
            (Outcome::Info, None) => 3,
        };
        c[i] += 1;
    }
    let _ = write!(
        h,
        "<section id=\"operations\"><h2>Operations</h2><p>{} client operations, {} events.</p>\
         <table class=\"num\"><thead><tr><th>f</th><th>ok</th><th>fail</th><th>info</th>\
         <th>open at end</th><th>total</th></tr></thead><tbody>",
        spans.len(),
        history.events.len()
    );
    let mut tot = [0usize; 4];
    for (f, c) in &by_f {
        for i in 0..4 {
            tot[i] += c[i];
        }
        row(h, &escape(f), c);
    }
    if by_f.len() > 1 {
        row(h, "<b>all</b>", &tot);
    }
    h.push_str(
        "</tbody></table><p class=\"note\">ok: it happened · fail: it certainly did not · \
         info and open: unknown, it may take effect at any later time, or never.</p></section>\n",
    );

    fn row(h: &mut String, name: &str, c: &[usize; 4]) {
        let _ = write!(
            h,
            "<tr><td>{name}</td><td class=\"ok\">{}</td><td class=\"fail\">{}</td>\
             <td class=\"info\">{}</td><td class=\"info\">{}</td><td>{}</td></tr>",
            c[0],
            c[1],
            c[2],
            c[3],
            c.iter().sum::<usize>()
        );
    }
}

fn plots(h: &mut String, plots: &[(&str, Result<(), String>)]) {
    if plots.is_empty() {
        return;
    }
    h.push_str("<section id=\"performance\"><h2>Performance</h2>\n");
    for (file, r) in plots {
        match r {
            Ok(()) => {
                let _ = writeln!(
                    h,
                    "<figure><a href=\"{0}\"><img src=\"{0}\" alt=\"{0}\" width=\"{1}\" height=\"{2}\"></a></figure>",
                    escape(file),
                    crate::plots::WIDTH,
                    crate::plots::HEIGHT
                );
            }
            Err(e) => {
                let _ = writeln!(
                    h,
                    "<p class=\"note\">{} could not be drawn: {}</p>",
                    escape(file),
                    escape(e)
                );
            }
        }
    }
    h.push_str("</section>\n");
}

fn files(h: &mut String, nodes: &[String]) {
    h.push_str("<section><h2>Files of this run</h2><ul>");
    for (f, what) in [
        (
            store::TIMELINE_HTML,
            "every operation per process over time",
        ),
        (store::HISTORY_JSONL, "the history, one event per line"),
        (store::TEST_JSON, "every option and the seed"),
        (store::RESULTS_JSON, "the checker's result"),
    ] {
        let _ = write!(h, "<li><a href=\"{f}\">{f}</a> — {what}</li>");
    }
    if nodes.is_empty() {
        let _ = write!(h, "<li>{}/ — no node logs were fetched", store::NODES_DIR);
    } else {
        let _ = write!(
            h,
            "<li><a href=\"{0}/\">{0}/</a> — logs fetched from each node",
            store::NODES_DIR
        );
        h.push_str(": ");
        for (i, n) in nodes.iter().enumerate() {
            if i > 0 {
                h.push_str(", ");
            }
            let _ = write!(
                h,
                "<a href=\"{}/{}/\">{}</a>",
                store::NODES_DIR,
                url_segment(n),
                escape(n)
            );
        }
    }
    h.push_str("</li></ul></section>\n");
}

/// Percent-encodes one path segment for an `href` (a node named `a#b`
/// must not become a fragment).
fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn raw(h: &mut String, title: &str, v: Option<&Value>) {
    let Some(v) = v else { return };
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let shown = if text.len() > MAX_RAW_JSON {
        let mut cut = MAX_RAW_JSON;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}\n… ({} bytes in all)", &text[..cut], text.len())
    } else {
        text
    };
    let _ = writeln!(
        h,
        "<details><summary>{}</summary><pre>{}</pre></details>",
        escape(title),
        escape(&shown)
    );
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1260px;color:#222;padding:0 1em}\
h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1em}\
.crumb{color:#666}.nav{margin:.2em 0 1em}\
.verdict{padding:.6em 1em;border-radius:8px;margin:.4em 0 1em}\
.verdict .word{font-size:2.4em;font-weight:700;letter-spacing:.04em;margin-right:.5em}\
.verdict .what{font-size:1.1em}.verdict .reason{margin-top:.3em;font-family:monospace}\
.verdict.valid{background:#dff3dc;color:#185c12;border:2px solid #3a9a30}\
.verdict.invalid{background:#fde0e0;color:#8a1010;border:2px solid #c83030}\
.verdict.unknown{background:#fff1d0;color:#7a5200;border:2px solid #d9a020}\
.chip{display:inline-block;padding:0 .5em;border-radius:1em;font-family:monospace;border:1px solid #999;background:#f4f4f4}\
.chip.anomaly,.chip.not{background:#fde0e0;border-color:#c83030}.chip.also{background:#fff1dc}\
.chip.fault{background:#efe4fb;border-color:#9a70d0}\
.anomaly{border:1px solid #e3c0c0;border-radius:6px;padding:.4em .8em;margin:.5em 0;background:#fffafa}\
.anomaly .n{float:right;color:#999}.expl{font-weight:500}ol.why li{margin:2px 0}\
.svg{overflow-x:auto;margin:.4em 0}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}\
thead th{background:#f3f3f3}table.num td{text-align:right}table.num td:first-child{text-align:left}\
td.ok{color:#185c12}td.fail{color:#8a1010}td.info{color:#7a5200}\
tr.invalid td{background:#fde0e0}tr.unknown td{background:#fff6e0}tr.done td{background:#faf6ff}\
table.kv th{background:#f7f7f7;font-weight:500}code{font-size:.92em;word-break:break-all}\
.small{font-size:.9em;color:#444}.note{color:#666;font-size:.92em}\
figure{margin:.6em 0}img{max-width:100%;height:auto;border:1px solid #ddd}\
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;max-height:40em}";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(results: &Value) -> String {
        let h = History::default();
        render_report(&ReportInput {
            test_name: "t",
            run_time: "20261126T005011.123Z",
            history: &h,
            results,
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
}
