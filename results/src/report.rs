//! `report.html`: what a person reads first after a run.
//!
//! Order: the verdict banner with one sentence naming the cause (linking to
//! the anomaly it names); a summary card in human units (what ran, counts,
//! throughput, latency, and each fault window's availability and latency
//! against the healthy baseline); the plots; each anomaly with its
//! explanation; per-key results (only the non-valid ones expanded, keys in
//! natural order); then, folded: the nemesis schedule, counts per
//! operation, other statistics, the files and the raw JSON. The page is one
//! file with inline CSS (no script, no network); the PNGs and links are
//! relative, so the run directory can be copied anywhere.
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
///
/// Top to bottom, in the order a reader asks: did it pass and why not (the
/// banner's cause sentence links to the anomaly it names); what ran and how
/// the system behaved under each fault (the summary card); the plots; each
/// anomaly with its explanation; per-key results (only the non-valid ones
/// expanded); then the detail, folded.
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
    let groups = anomaly_groups(inp.results);
    verdict_banner(&mut h, inp.results, &groups);
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
    anomalies(&mut h, &groups, inp.history);
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

fn verdict_banner(h: &mut String, results: &Value, groups: &[(String, Vec<&Value>)]) {
    let verdict = store::verdict_of(results);
    let (class, word, what) = match verdict {
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
        "<div class=\"verdict {class}\" id=\"verdict\"><span class=\"word\">{word}</span> "
    );
    match (verdict, cause(results, groups)) {
        (Some(Verdict::Invalid), Some((sentence, anchor))) => {
            let _ = write!(
                h,
                "<span class=\"what\">— </span><a class=\"cause\" href=\"#{anchor}\">{}</a>",
                escape(&sentence)
            );
        }
        _ => {
            let _ = write!(h, "<span class=\"what\">{}</span>", escape(what));
        }
    }
    for field in ["reason", "reasons", "error", "message"] {
        if let Some(v) = results.get(field).filter(|v| !v.is_null()) {
            for r in string_list(v) {
                let _ = write!(h, "<div class=\"reason\">{}</div>", escape(&r));
            }
        }
    }
    h.push_str("</div>\n");
}

/// Longest cause sentence in the banner, in characters.
const MAX_CAUSE: usize = 240;

/// The banner's one sentence naming the cause, and the anchor of the
/// section that explains it. Built from the checker's structured data (the
/// failing operation, the minimal counterexample's size, a cycle's
/// transactions) where present, else from its first line of prose.
fn cause(results: &Value, groups: &[(String, Vec<&Value>)]) -> Option<(String, String)> {
    if let Some((t, an)) = groups
        .iter()
        .find_map(|(t, l)| l.first().map(|a| (t.as_str(), *a)))
    {
        return Some((cut(&anomaly_sentence(t, an), MAX_CAUSE), "a1".into()));
    }
    if let Some(Value::Object(keys)) = results.get("keys") {
        let mut bad: Vec<(&String, &Value)> = keys
            .iter()
            .filter(|(_, v)| store::verdict_of(v) == Some(Verdict::Invalid))
            .collect();
        bad.sort_by(|a, b| natural_cmp(a.0, b.0));
        if let Some((k, v)) = bad.first() {
            let why = v
                .get("explanation")
                .or_else(|| v.get("reason"))
                .map(|e| first_sentence(&string_list(e).join(" ")))
                .unwrap_or_else(|| "not valid".into());
            return Some((
                cut(&format!("key {k}: {why}"), MAX_CAUSE),
                key_anchor(k, keys),
            ));
        }
    }
    None
}

/// One sentence for one anomaly: who did what, where in the file.
fn anomaly_sentence(kind: &str, an: &Value) -> String {
    let key = an.get("key").map(text_of);
    let key_prefix = key
        .as_ref()
        .map(|k| format!("key {k}: "))
        .unwrap_or_default();
    // Linearizability: the operation that cannot be linearized.
    if let Some(op) = an.get("op").filter(|o| o.is_object()) {
        // The op reference may carry only its invocation line; the minimal
        // counterexample's copy of it has the completion's too.
        let mut op = op.clone();
        if op.get("returned_line").is_none()
            && let Some(r) = an
                .get("minimal")
                .and_then(Value::as_array)
                .and_then(|m| {
                    m.iter()
                        .find(|m| m.get("id").is_some() && m.get("id") == op.get("id"))
                })
                .and_then(|m| m.get("returned_line"))
            && let Some(o) = op.as_object_mut()
        {
            o.insert("returned_line".into(), r.clone());
        }
        let mut s = format!("{key_prefix}{} cannot be linearized", op_phrase(&op));
        if let Some(Value::Array(min)) = an
            .get("minimal")
            .filter(|m| m.as_array().is_some_and(|a| !a.is_empty()))
        {
            let _ = write!(
                s,
                "; {} operation(s) suffice to show it (lines {})",
                min.len(),
                lines_of(min)
            );
        }
        return s;
    }
    // Transactions: a cycle of transactions.
    if let Some(Value::Array(txns)) = an.get("txns")
        && !txns.is_empty()
    {
        let t = an.get("type").map(text_of).unwrap_or_else(|| kind.into());
        let what = match an.get("kind").and_then(Value::as_str) {
            Some("cycle") => format!("a dependency cycle of {} transactions", txns.len()),
            _ => format!("{} transactions", txns.len()),
        };
        return format!("{t}: {what} (lines {})", lines_of(txns));
    }
    let prose = [
        "minimal_explanation",
        "explanation",
        "message",
        "prose",
        "lines",
        "steps",
    ]
    .iter()
    .find_map(|f| an.get(*f).filter(|v| !v.is_null()))
    .map(|v| string_list(v).join(" "));
    let prose = prose.or_else(|| {
        let first = an.get("explanations")?.as_array()?.first()?;
        ["prose", "lines", "steps"]
            .iter()
            .find_map(|f| first.get(*f))
            .map(|v| string_list(v).join(" "))
    });
    let mut s = format!("{kind}: ");
    if let Some(op) = an.get("op").or_else(|| an.get("op_ref")) {
        let _ = write!(s, "{}: ", op_phrase(op));
    }
    match prose {
        Some(p) => s.push_str(&first_sentence(&p)),
        None => s.push_str(&key_prefix),
    }
    s.trim_end_matches([':', ' ']).to_string()
}

/// "process 7's read → 3 (lines 524–547)" from an op reference.
fn op_phrase(op: &Value) -> String {
    let mut s = String::new();
    if let Some(p) = op.get("process") {
        let _ = write!(s, "process {}'s ", text_of(p));
    }
    let f = op.get("f").and_then(Value::as_str).unwrap_or("operation");
    s.push_str(f);
    if let Some(v) = op.get("value").filter(|v| !v.is_null()) {
        // A read's value is what it returned.
        let arrow = if f.contains("read") { " →" } else { "" };
        let _ = write!(s, "{arrow} {}", cut(&text_of(v), 40));
    }
    match (
        op.get("line").and_then(Value::as_u64),
        op.get("returned_line").and_then(Value::as_u64),
    ) {
        (Some(a), Some(b)) if b != a => {
            let _ = write!(s, " (lines {a}–{b})");
        }
        (Some(a), _) => {
            let _ = write!(s, " (line {a})");
        }
        _ => {}
    }
    s
}

/// "3, 9, 12" from op references with a `line`.
fn lines_of(refs: &[Value]) -> String {
    let mut ls: Vec<u64> = refs
        .iter()
        .filter_map(|r| r.get("line").and_then(Value::as_u64))
        .collect();
    ls.sort_unstable();
    ls.dedup();
    let shown: Vec<String> = ls.iter().take(6).map(u64::to_string).collect();
    let more = if ls.len() > 6 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// Every `line` in an anomaly (op references anywhere in it), for the
/// timeline link.
fn all_lines(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if (k == "line" || k == "returned_line")
                    && let Some(l) = x.as_u64()
                {
                    out.push(l);
                } else {
                    all_lines(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all_lines(x, out)),
        _ => {}
    }
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

/// Operation counts, throughput and latency of a run, overall and per
/// fault window against the healthy baseline (ops invoked outside every
/// window). Measurements of the history for the card; no verdict.
struct RunStats {
    ok: usize,
    fail: usize,
    info: usize,
    open: usize,
    /// First to last event time, ns (0 without times).
    duration_ns: u64,
    /// Latencies of `ok` operations, ns, sorted.
    ok_latency: Vec<u64>,
    healthy: WindowStats,
    windows: Vec<(FaultWindow, WindowStats)>,
}

#[derive(Default)]
struct WindowStats {
    ok: usize,
    completed: usize,
    /// Sorted latencies of `ok` operations invoked in the window, ns.
    latency: Vec<u64>,
}

impl WindowStats {
    fn add(&mut self, outcome: Outcome, latency: Option<u64>) {
        self.completed += 1;
        if outcome == Outcome::Ok {
            self.ok += 1;
            self.latency.extend(latency);
        }
    }
    fn availability(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.ok as f64 / self.completed as f64)
    }
}

impl RunStats {
    fn new(history: &History, spans: &[OpSpan], windows: &[FaultWindow]) -> RunStats {
        let ev = &history.events;
        let times: Vec<u64> = ev.iter().filter_map(|e| e.time).collect();
        let duration_ns = match (times.iter().min(), times.iter().max()) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        };
        let mut s = RunStats {
            ok: 0,
            fail: 0,
            info: 0,
            open: 0,
            duration_ns,
            ok_latency: Vec::new(),
            healthy: WindowStats::default(),
            windows: windows
                .iter()
                .map(|w| (w.clone(), WindowStats::default()))
                .collect(),
        };
        for sp in spans {
            let Some(c) = sp.complete else {
                s.open += 1;
                continue;
            };
            let t0 = ev[sp.invoke].time;
            let lat = t0.zip(ev[c].time).map(|(a, b)| b.saturating_sub(a));
            match sp.outcome {
                Outcome::Ok => {
                    s.ok += 1;
                    s.ok_latency.extend(lat);
                }
                Outcome::Fail => s.fail += 1,
                Outcome::Info => s.info += 1,
            }
            let Some(t0) = t0 else { continue };
            let mut faulty = false;
            for (w, ws) in &mut s.windows {
                if t0 >= w.start_ns && t0 < w.end_ns {
                    ws.add(sp.outcome, lat);
                    faulty = true;
                }
            }
            if !faulty {
                s.healthy.add(sp.outcome, lat);
            }
        }
        s.ok_latency.sort_unstable();
        s.healthy.latency.sort_unstable();
        for (_, ws) in &mut s.windows {
            ws.latency.sort_unstable();
        }
        s
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// A duration for people: `850 µs`, `12.3 ms`, `4.52 s`, `3 min 05 s`.
pub(crate) fn human_duration(ns: f64) -> String {
    let ns = ns.max(0.0);
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{} µs", sig3(ns / 1e3))
    } else if ns < 1e9 {
        format!("{} ms", sig3(ns / 1e6))
    } else if ns < 120e9 {
        format!("{} s", sig3(ns / 1e9))
    } else {
        let s = (ns / 1e9).round() as u64;
        if s < 7200 {
            format!("{} min {:02} s", s / 60, s % 60)
        } else {
            format!("{} h {:02} min", s / 3600, (s / 60) % 60)
        }
    }
}

/// Three significant digits, no float noise: 9.895866999 → 9.9, 123.4 → 123.
fn sig3(x: f64) -> String {
    let a = x.abs();
    let decimals = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn percent(x: f64) -> String {
    let p = x * 100.0;
    if p > 99.95 && p < 100.0 {
        // 99.97 % must not read as 100 %.
        format!("{p:.2} %")
    } else {
        format!("{} %", sig3(p))
    }
}

/// What ran (from test.json, or the runner's `run` field) and how it went.
fn summary_card(h: &mut String, inp: &ReportInput<'_>, s: &RunStats) {
    let null = Value::Null;
    let t = inp.test_json.unwrap_or(&null);
    let run = inp.results.get("run").unwrap_or(&null);
    let pick = |names: &[&str]| -> Option<String> {
        names
            .iter()
            .find_map(|n| t.get(*n).or_else(|| run.get(*n)))
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::Array(a) if a.is_empty() => "none".to_string(),
                Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(", "),
                other => text_of(other),
            })
    };
    let mut rows: Vec<(&str, String)> = Vec::new();
    for (label, names) in [
        ("target", &["target"][..]),
        ("workload", &["workload"][..]),
        ("nemesis", &["nemesis"][..]),
        ("seed", &["seed"][..]),
        ("nodes", &["nodes"][..]),
        ("clients", &["concurrency"][..]),
    ] {
        match pick(names) {
            // "no nemesis" says something; "no nodes" (in-process) does not.
            Some(v) if v == "none" && label != "nemesis" => {}
            Some(v) => rows.push((label, v)),
            None => {}
        }
    }
    if s.duration_ns > 0 {
        rows.push(("duration", human_duration(s.duration_ns as f64)));
    }
    let completed = s.ok + s.fail + s.info;
    let mut ops = format!(
        "<span class=\"ok\">{} ok</span> · <span class=\"fail\">{} fail</span> · <span class=\"info\">{} info</span>",
        s.ok, s.fail, s.info
    );
    if s.open > 0 {
        let _ = write!(ops, " · {} open at the end", s.open);
    }
    h.push_str("<section class=\"card\" id=\"summary\"><div class=\"facts\">");
    for (k, v) in &rows {
        let _ = write!(h, "<div><b>{k}</b> {}</div>", escape(v));
    }
    let _ = write!(h, "<div><b>operations</b> {ops}</div>");
    if s.duration_ns > 0 && completed > 0 {
        let _ = write!(
            h,
            "<div><b>throughput</b> {} ops/s</div>",
            sig3(completed as f64 / (s.duration_ns as f64 / 1e9))
        );
    }
    if let (Some(p50), Some(p99)) = (quantile(&s.ok_latency, 0.5), quantile(&s.ok_latency, 0.99)) {
        let _ = write!(
            h,
            "<div><b>latency of ok ops</b> p50 {} · p99 {}</div>",
            human_duration(p50 as f64),
            human_duration(p99 as f64)
        );
    }
    h.push_str("</div>");
    if !s.windows.is_empty() {
        h.push_str(
            "<table class=\"faults\"><thead><tr><th>fault window</th><th>from</th><th>for</th>\
             <th>ops</th><th>available</th><th>p50 latency</th></tr></thead><tbody>",
        );
        let base_p50 = quantile(&s.healthy.latency, 0.5);
        let row = |h: &mut String, name: String, from: String, dur: String, ws: &WindowStats| {
            let avail = ws
                .availability()
                .map(percent)
                .unwrap_or_else(|| "no op completed".into());
            let p50 = quantile(&ws.latency, 0.5);
            let lat = match (p50, base_p50) {
                (Some(p), Some(b)) if b > 0 && name != "healthy" => format!(
                    "{} ({}× healthy)",
                    human_duration(p as f64),
                    sig3(p as f64 / b as f64)
                ),
                (Some(p), _) => human_duration(p as f64),
                (None, _) => "—".into(),
            };
            let bad = ws.availability().is_some_and(|a| a < 0.5);
            let _ = write!(
                h,
                "<tr{}><td>{name}</td><td>{from}</td><td>{dur}</td><td>{}</td><td>{avail}</td><td>{lat}</td></tr>",
                if bad { " class=\"low\"" } else { "" },
                ws.completed
            );
        };
        row(
            h,
            "healthy".into(),
            "—".into(),
            "outside every fault".into(),
            &s.healthy,
        );
        for (w, ws) in &s.windows {
            row(
                h,
                format!("<span class=\"chip fault\">{}</span>", escape(&w.label)),
                secs(w.start_ns),
                human_duration(w.end_ns.saturating_sub(w.start_ns) as f64),
                ws,
            );
        }
        h.push_str(
            "</tbody></table><p class=\"note\">available: share of <code>ok</code> among the \
             operations invoked in the window that completed; latency of those <code>ok</code> \
             operations, against the healthy baseline.</p>",
        );
    } else {
        h.push_str("<p class=\"note\">No fault windows: the nemesis injected nothing.</p>");
    }
    h.push_str("</section>\n");
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

/// `anomalies` as (type, list) groups in the checker's order, whether it is
/// an object of type → list or a list of objects with a `type`.
fn anomaly_groups(r: &Value) -> Vec<(String, Vec<&Value>)> {
    let Some(a) = r.get("anomalies") else {
        return Vec::new();
    };
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
        Value::Null => Vec::new(),
        other => vec![("anomalies".into(), vec![other])],
    };
    groups.into_iter().filter(|(_, l)| !l.is_empty()).collect()
}

fn anomalies(h: &mut String, groups: &[(String, Vec<&Value>)], history: &History) {
    if groups.is_empty() {
        return;
    }
    h.push_str("<section id=\"anomalies\"><h2>Anomalies</h2>\n");
    // Anchors a1, a2, … in page order; the banner links to a1.
    let mut n = 0;
    for (t, list) in groups {
        let _ = writeln!(
            h,
            "<h3><span class=\"chip anomaly\">{}</span> {} found</h3>",
            escape(t),
            list.len()
        );
        for (i, an) in list.iter().take(MAX_ANOMALIES_PER_TYPE).enumerate() {
            n += 1;
            let _ = write!(
                h,
                "<div class=\"anomaly\" id=\"a{n}\"><div class=\"n\">{} #{}</div>\
                 <p class=\"lead\">{}</p>",
                escape(t),
                i + 1,
                escape(&anomaly_sentence(t, an))
            );
            let mut lines = Vec::new();
            all_lines(an, &mut lines);
            lines.sort_unstable();
            lines.dedup();
            if !lines.is_empty() {
                lines.truncate(200);
                let ls: Vec<String> = lines.iter().map(u64::to_string).collect();
                let _ = write!(
                    h,
                    "<p class=\"small\"><a href=\"{}#lines={}\">show these operations on the timeline</a></p>",
                    store::TIMELINE_HTML,
                    ls.join(",")
                );
            }
            anomaly_view(h, t, an, history);
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

/// Where the interactive explanations plug in: the linearizability failure
/// viewer (a tab per failing key, the step control over the linearization)
/// and the transactional cycle diagrams that `check --html` draws (issue
/// #17 items 2–3, their own `results/` modules). They render into `h` from
/// the anomaly's JSON and the run's history, above the generic fields
/// [`anomaly`] prints; the page has no script yet, so one they need comes
/// with their markup.
fn anomaly_view(_h: &mut String, _kind: &str, _anomaly: &Value, _history: &History) {}

/// Fields of an anomaly that are rendered as prose rather than as JSON.
const PROSE_FIELDS: [&str; 7] = [
    "explanation",
    "minimal_explanation",
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
    // A transactional cycle as data (kind "cycle"): its transactions and
    // one line per edge, until the cycle view plugs in above.
    let cycle = m.get("txns").and_then(Value::as_array).zip(
        m.get("steps").and_then(Value::as_array).filter(|st| {
            st.iter()
                .all(|x| x.get("from").is_some() && x.get("to").is_some())
        }),
    );
    if let Some((txns, steps)) = cycle {
        h.push_str("<ul class=\"why\">");
        for (i, t) in txns.iter().enumerate() {
            let _ = write!(
                h,
                "<li>T{} = line {}, process {}: <code>{}</code></li>",
                i + 1,
                t.get("line").map(text_of).unwrap_or_default(),
                t.get("process").map(text_of).unwrap_or_default(),
                escape(&cut(&t.get("value").map(text_of).unwrap_or_default(), 200))
            );
        }
        h.push_str("</ul><ul class=\"why\">");
        let t = |v: Option<&Value>| v.and_then(Value::as_u64).map(|n| n + 1).unwrap_or(0);
        for st in steps {
            let mut line = format!(
                "T{} → T{}: {}",
                t(st.get("from")),
                t(st.get("to")),
                st.get("kind").map(text_of).unwrap_or_default()
            );
            for (f, label) in [("key", "key"), ("value", "value"), ("other", "saw")] {
                if let Some(x) = st.get(f).filter(|x| !x.is_null()) {
                    let _ = write!(line, ", {label} {}", text_of(x));
                }
            }
            let _ = write!(h, "<li>{}</li>", escape(&line));
        }
        h.push_str("</ul>");
    }
    // The minimal counterexample explains best; the search detail follows.
    let prose_steps = if cycle.is_some() { "" } else { "steps" };
    for f in [
        "minimal_explanation",
        "explanation",
        "prose",
        "lines",
        prose_steps,
    ] {
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
        .filter(|(k, v)| {
            !PROSE_FIELDS.contains(&k.as_str()) && k.as_str() != "type" && !v.is_null()
        })
        .collect();
    if !rest.is_empty() {
        h.push_str("<details><summary>the anomaly's data</summary>");
        human_table(h, &rest, 0);
        h.push_str("</details>");
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

fn keys(h: &mut String, r: &Value) {
    let Some(Value::Object(keys)) = r.get("keys") else {
        return;
    };
    if keys.is_empty() {
        return;
    }
    let mut names: Vec<&String> = keys.keys().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let mut not_valid: Vec<(usize, &String, Option<Verdict>)> = Vec::new();
    let mut valid: Vec<&String> = Vec::new();
    for (i, k) in names.iter().enumerate() {
        match store::verdict_of(&keys[k.as_str()]) {
            Some(Verdict::Valid) => valid.push(k),
            v => not_valid.push((i, k, v)),
        }
    }
    // Invalid first, then unknown; each in natural key order.
    not_valid.sort_by_key(|(i, _, v)| (*v != Some(Verdict::Invalid), *i));
    let _ = writeln!(
        h,
        "<section id=\"keys\"><h2>Per key</h2><p>{} keys: {} valid, {} not valid.</p>",
        names.len(),
        valid.len(),
        not_valid.len()
    );
    for (i, k, verdict) in not_valid.iter().take(MAX_KEY_ROWS) {
        let (class, word) = verdict_word(*verdict);
        let v = &keys[k.as_str()];
        let _ = write!(
            h,
            "<div class=\"key {class}\" id=\"k{i}\"><h3>key <code>{}</code> — {word}</h3>",
            escape(k)
        );
        if let Value::Object(m) = v {
            for f in ["reason", "explanation"] {
                if let Some(e) = m.get(f).filter(|e| !e.is_null()) {
                    explanation(h, e);
                }
            }
            let rest: Vec<(&String, &Value)> = m
                .iter()
                .filter(|(f, x)| {
                    !["valid", "valid?", "explanation", "reason"].contains(&f.as_str())
                        && !is_empty_value(x)
                })
                .collect();
            if !rest.is_empty() {
                h.push_str("<details><summary>search detail</summary>");
                human_table(h, &rest, 0);
                h.push_str("</details>");
            }
        } else {
            let _ = write!(h, "<code>{}</code>", escape(&text_of(v)));
        }
        h.push_str("</div>\n");
    }
    if not_valid.len() > MAX_KEY_ROWS {
        let _ = write!(
            h,
            "<p class=\"note\">… {} more keys that are not valid in results.json.</p>",
            not_valid.len() - MAX_KEY_ROWS
        );
    }
    if !valid.is_empty() {
        let _ = write!(
            h,
            "<details class=\"valid-keys\"><summary>{} {} valid</summary><p>",
            valid.len(),
            if valid.len() == 1 { "key" } else { "keys" }
        );
        for (i, k) in valid.iter().enumerate() {
            if i > 0 {
                h.push_str(", ");
            }
            let _ = write!(h, "<code>{}</code>", escape(k));
        }
        h.push_str("</p></details>");
    }
    h.push_str("</section>\n");
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

/// Deepest nesting [`human_table`] draws before falling back to JSON.
const MAX_DEPTH: usize = 3;

/// Fields as a table for people: durations as durations (by the field's
/// unit suffix), numbers without float noise, nested objects as nested
/// tables, empty values left out.
fn human_table(h: &mut String, fields: &[(&String, &Value)], depth: usize) {
    h.push_str("<table class=\"kv\">");
    for (k, v) in fields {
        let _ = write!(h, "<tr><th>{}</th><td>", escape(&k.replace('_', " ")));
        human_value(h, k, v, depth);
        h.push_str("</td></tr>");
    }
    h.push_str("</table>");
}

fn human_value(h: &mut String, name: &str, v: &Value, depth: usize) {
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let unit = [
                ("_ns", 1.0),
                ("_us", 1e3),
                ("_ms", 1e6),
                ("_s", 1e9),
                ("_secs", 1e9),
            ]
            .iter()
            .find(|(suffix, _)| name.ends_with(suffix))
            .map(|(_, f)| *f);
            let text = match unit {
                Some(f) => human_duration(x * f),
                None if n.is_f64() => sig3(x),
                None => n.to_string(),
            };
            let _ = write!(h, "{}", escape(&text));
        }
        Value::Object(m) if depth < MAX_DEPTH && !m.is_empty() => {
            let rest: Vec<(&String, &Value)> =
                m.iter().filter(|(_, x)| !is_empty_value(x)).collect();
            human_table(h, &rest, depth + 1);
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> = a.iter().map(text_of).collect();
            let _ = write!(h, "{}", escape(&cut(&items.join(", "), MAX_INLINE_JSON)));
        }
        Value::String(s) => {
            let _ = write!(h, "{}", escape(s));
        }
        other => {
            let _ = write!(h, "<code>{}</code>", escape(&text_of(other)));
        }
    }
}

/// Top-level fields the sections above did not show, folded.
fn other_fields(h: &mut String, r: &Value) {
    const SHOWN: [&str; 15] = [
        "blocking",
        "steps",
        "valid",
        "valid?",
        "reason",
        "reasons",
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
        .filter(|(k, v)| !SHOWN.contains(&k.as_str()) && !is_empty_value(v))
        .collect();
    if rest.is_empty() {
        return;
    }
    h.push_str(
        "<section><details><summary>Other results: statistics of the check and the run</summary>",
    );
    human_table(h, &rest, 0);
    h.push_str("</details></section>\n");
}

/// Seconds since the test started, for tables.
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// Fields of a nemesis event's value that hold what ran on the nodes (the
/// shell commands and their output): shown behind a toggle.
const COMMAND_FIELDS: [&str; 7] = [
    "cmd", "cmds", "command", "commands", "exit", "stdout", "stderr",
];

fn is_commandish(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| COMMAND_FIELDS.contains(&k.as_str()) || is_commandish(x)),
        Value::Array(a) => a.iter().any(is_commandish),
        _ => false,
    }
}

/// Plain words for a small value: `kind: loss · nodes: n1, n2`.
fn plain(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, x)| !is_empty_value(x))
            .map(|(k, x)| format!("{}: {}", k.replace('_', " "), plain(x)))
            .collect::<Vec<_>>()
            .join(" · "),
        Value::Array(a) if a.iter().any(Value::is_object) => {
            a.iter().map(plain).collect::<Vec<_>>().join("; ")
        }
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => text_of(other),
    }
}

/// "ran on n1, n2, n3" (and any non-zero exit) for a node → command-result
/// map such as `{"n1": {"exit": 0, "stdout": …}}`.
fn ran_on(v: &Value) -> Option<String> {
    let m = v.as_object()?;
    let mut failed = Vec::new();
    for (node, r) in m {
        let exit = r.get("exit")?;
        if exit.as_i64() != Some(0) {
            failed.push(format!("{node} exit {}", text_of(exit)));
        }
    }
    let nodes: Vec<&str> = m.keys().map(String::as_str).collect();
    let mut s = format!("ran on {}", nodes.join(", "));
    if !failed.is_empty() {
        let _ = write!(s, " ({})", failed.join(", "));
    }
    Some(s)
}

/// A nemesis event's value for people: its plain fields, with whatever ran
/// on the nodes (commands, exit codes, output) folded away.
fn nemesis_value(h: &mut String, v: &Value) {
    match v {
        Value::Null => {}
        Value::String(s) => {
            let _ = write!(h, "{}", escape(s));
        }
        Value::Object(m) => {
            let mut shown = Vec::new();
            let mut folded = serde_json::Map::new();
            for (k, x) in m {
                if COMMAND_FIELDS.contains(&k.as_str()) || is_commandish(x) {
                    if let Some(r) = ran_on(x) {
                        shown.push(r);
                    }
                    folded.insert(k.clone(), x.clone());
                } else if !is_empty_value(x) {
                    shown.push(format!("{}: {}", k.replace('_', " "), cut(&plain(x), 160)));
                }
            }
            let _ = write!(h, "{}", escape(&shown.join(" · ")));
            if !folded.is_empty() {
                commands_toggle(h, &Value::Object(folded));
            }
        }
        other if is_commandish(other) => commands_toggle(h, other),
        other => {
            let _ = write!(h, "{}", escape(&cut(&plain(other), 200)));
        }
    }
}

fn commands_toggle(h: &mut String, v: &Value) {
    let _ = write!(
        h,
        "<details class=\"cmds\"><summary>commands and output</summary><pre>{}</pre></details>",
        escape(&cut(
            &serde_json::to_string_pretty(v).unwrap_or_default(),
            4000
        ))
    );
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
                human_duration(w.end_ns.saturating_sub(w.start_ns) as f64)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if !events.is_empty() {
        let _ = write!(
            h,
            "<details><summary>{} nemesis events: what was done to whom</summary>\
             <table class=\"nem\"><thead><tr><th>time</th><th>type</th><th>f</th><th>node</th><th>what</th><th>error</th></tr></thead><tbody>",
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
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>",
                e.time.map(secs).unwrap_or_default(),
                e.kind,
                escape(&e.f),
                escape(e.node.as_deref().unwrap_or("")),
            );
            nemesis_value(h, &e.value);
            let _ = write!(
                h,
                "</td><td>{}</td></tr>",
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
    // Latency and rate side by side first (they fit the first screen);
    // quantiles after.
    h.push_str("<section id=\"performance\" class=\"plots\">\n");
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
}
