//! `report.html`: what a person reads first after a run.
//!
//! Order: the verdict banner with one sentence naming the cause (the
//! checker's minimal explanation, linking to the viewer or diagram that
//! shows it); a summary card in human units (what ran, counts, throughput,
//! latency, and each fault window's availability and latency against the
//! healthy baseline); the plots; each anomaly with its explanation and
//! diagram — the linearizability failure viewer (a tab per failing key, a
//! step control over the linearization) and each transactional cycle's
//! diagram, drawn from the checker's typed result ([`crate::AnomalyViews`])
//! when the caller has it; per-key results (only the non-valid ones
//! expanded, keys in natural order); then, folded: the nemesis schedule,
//! counts per operation, other statistics, the files and the raw JSON.
//!
//! Submodules by job: `banner`, `summary` (the card and plots),
//! `anomalies` (anomalies, models, per-key results), `raw` (the folded
//! detail). The page is one file with inline CSS, and the viewer's inline
//! script when it has one (no network); the PNGs and links are relative,
//! so the run directory can be copied anywhere.
//!
//! The full `results.json` contract is docs/results.md.
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

mod anomalies;
mod banner;
mod raw;
mod summary;
#[cfg(test)]
mod tests;
use anomalies::*;
use banner::*;
pub(crate) use raw::secs;
use raw::*;
use summary::*;

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
    /// The failure viewer's and cycle diagrams' data, from the checker's
    /// typed result (empty for a run rendered from its files alone).
    pub views: &'a crate::AnomalyViews,
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
///
/// Top to bottom, in the order a reader asks: did it pass and why not (the
/// banner's cause sentence links to the anomaly it names); what ran and how
/// the system behaved under each fault (the summary card); the plots; each
/// anomaly with its explanation; per-key results (only the non-valid ones
/// expanded); then the detail, folded.
pub fn render_report(inp: &ReportInput<'_>) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("{} — {}", inp.test_name, inp.run_time);
    // The viewer's and diagrams' styles, only on a page that has them.
    let (lin_css, cycle_css) = if inp.views.is_empty() {
        ("", "")
    } else {
        (crate::lin_viewer::CSS, crate::cycle::CSS)
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>{CSS}{lin_css}{cycle_css}</style></head><body>\n\
         <p class=\"crumb\">faultline run · test <b>{}</b> · started {}</p>\n",
        escape(&title),
        escape(inp.test_name),
        escape(inp.run_time)
    );
    let groups = anomaly_groups(inp.results);
    verdict_banner(&mut h, inp.results, &groups, inp.views);
    // Links only to the sections this page has.
    let mut nav = format!(
        "<a href=\"{}\">timeline of every operation</a>",
        store::TIMELINE_HTML
    );
    if !groups.is_empty() {
        nav.push_str(" · <a href=\"#anomalies\">anomalies</a>");
    }
    if inp.results["keys"]
        .as_object()
        .is_some_and(|k| !k.is_empty())
    {
        nav.push_str(" · <a href=\"#keys\">per key</a>");
    }
    let _ = writeln!(
        h,
        "<p class=\"nav\">{nav} · <a href=\"#nemesis\">nemesis</a> · <a href=\"#operations\">operations</a> · \
         <a href=\"{}\">history.jsonl</a> · <a href=\"{}\">test.json</a> · <a href=\"{}\">results.json</a></p>",
        store::HISTORY_JSONL,
        store::TEST_JSON,
        store::RESULTS_JSON
    );
    let spans = ops::spans(inp.history);
    let stats = RunStats::new(inp.history, &spans, inp.windows);
    summary_card(&mut h, inp, &stats);
    plots(&mut h, inp.plots);
    models(&mut h, inp.results);
    anomalies(&mut h, &groups, inp.views);
    // Per-step counts of a saga run, beside the other per-check results.
    h.push_str(&crate::steps::section(inp.results, inp.history));
    keys(&mut h, inp.results);
    crate::blocking::section(&mut h, inp.results);
    nemesis_schedule(&mut h, inp.history, inp.windows);
    counts(&mut h, inp.history, &spans);
    other_fields(&mut h, inp.results);
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

fn first_sentence(s: &str) -> String {
    let s = s.trim();
    match s.find(". ") {
        Some(i) => s[..=i].to_string(),
        None => s.to_string(),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
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

/// Orders `k2` before `k10`: digit runs compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let ta = na
                    .iter()
                    .position(|&c| c != b'0')
                    .map_or(&na[na.len()..], |i| &na[i..]);
                let tb = nb
                    .iter()
                    .position(|&c| c != b'0')
                    .map_or(&nb[nb.len()..], |i| &nb[i..]);
                let o = ta.len().cmp(&tb.len()).then(ta.cmp(tb)).then(da.cmp(&db));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn key_anchor(k: &str, keys: &serde_json::Map<String, Value>) -> String {
    let mut names: Vec<&String> = keys.keys().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let i = names.iter().position(|n| n.as_str() == k).unwrap_or(0);
    format!("k{i}")
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn verdict_word(v: Option<Verdict>) -> (&'static str, &'static str) {
    match v {
        Some(Verdict::Valid) => ("valid", "valid"),
        Some(Verdict::Invalid) => ("invalid", "invalid"),
        Some(Verdict::Unknown) => ("unknown", "unknown"),
        None => ("unknown", "—"),
    }
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:1em auto;max-width:1300px;color:#222;padding:0 1em}\
h2{font-size:1.2em;margin-top:1.4em;border-bottom:1px solid #ddd}h3{font-size:1em}\
.crumb{color:#666;margin:.2em 0}.nav{margin:.2em 0 .6em;font-size:.92em}\
.verdict{padding:.5em 1em;border-radius:8px;margin:.3em 0 .5em}\
.verdict .word{font-size:2.2em;font-weight:700;letter-spacing:.04em;margin-right:.3em;vertical-align:middle}\
.verdict .what{font-size:1.15em}.verdict a.cause{font-size:1.15em;color:inherit;font-weight:500}\
.verdict .reason{margin-top:.3em}\
.verdict.valid{background:#dff3dc;color:#185c12;border:2px solid #3a9a30}\
.verdict.invalid{background:#fde0e0;color:#8a1010;border:2px solid #c83030}\
.verdict.unknown{background:#fff1d0;color:#7a5200;border:2px solid #d9a020}\
.card{border:1px solid #ddd;border-radius:8px;padding:.4em .8em;background:#fafafa}\
.facts{display:flex;flex-wrap:wrap;gap:.2em 1.6em}.facts b{color:#555;font-weight:600;margin-right:.3em}\
.facts .ok{color:#185c12}.facts .fail{color:#8a1010}.facts .info{color:#7a5200}\
table.faults{margin:.4em 0 0;font-size:.92em}tr.low td{background:#fde0e0}\
.plots{display:grid;grid-template-columns:1fr 1fr;gap:.5em;margin-top:.6em}\
.chip{display:inline-block;padding:0 .5em;border-radius:1em;font-family:monospace;border:1px solid #999;background:#f4f4f4}\
.chip.anomaly,.chip.not{background:#fde0e0;border-color:#c83030}.chip.also{background:#fff1dc}\
.chip.fault{background:#efe4fb;border-color:#9a70d0}\
.anomaly,.key{border:1px solid #e3c0c0;border-radius:6px;padding:.4em .8em;margin:.5em 0;background:#fffafa}\
.key.unknown{border-color:#e0c890;background:#fffcf2}\
.anomaly .n{float:right;color:#999}.lead{font-weight:600}.expl{font-weight:500}ol.why li{margin:2px 0}\
:target{outline:3px solid #c83030}\
.svg{overflow-x:auto;margin:.4em 0}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}\
thead th{background:#f3f3f3}table.num td{text-align:right}table.num td:first-child{text-align:left}\
td.ok{color:#185c12}td.fail{color:#8a1010}td.info{color:#7a5200}\
tr.invalid td{background:#fde0e0}tr.unknown td{background:#fff6e0}tr.done td{background:#faf6ff}\
table.kv th{background:#f7f7f7;font-weight:500}table.kv table.kv{margin:0}code{font-size:.92em;word-break:break-all}\
details.cmds summary{color:#666;font-size:.9em;cursor:pointer}summary{cursor:pointer}\
.small{font-size:.9em;color:#444}.note{color:#666;font-size:.92em}\
figure{margin:0}img{max-width:100%;height:auto;border:1px solid #ddd}\
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;max-height:40em}";
