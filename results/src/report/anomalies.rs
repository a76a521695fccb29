//! Each anomaly with its explanation and diagram, the consistency models
//! violated, and the per-key results.

use super::*;
use crate::{AnomalyViews, cycle, lin_viewer};

/// Every `line` in an anomaly (op references anywhere in it), for the
/// timeline link.
pub(super) fn all_lines(v: &Value, out: &mut Vec<u64>) {
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

pub(super) fn models(h: &mut String, r: &Value) {
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
pub(super) fn anomaly_groups(r: &Value) -> Vec<(String, Vec<&Value>)> {
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

/// The id of the failure viewer in `report.html` (the banner links to it).
pub(super) const VIEWER_ID: &str = "viewer";

/// The anchor of anomaly `idx` (0-based) of type `kind`: anomalies are
/// numbered a1, a2, … in page order (at most
/// [`MAX_ANOMALIES_PER_TYPE`] per type are drawn).
pub(super) fn anomaly_anchor(
    groups: &[(String, Vec<&Value>)],
    kind: &str,
    idx: usize,
) -> Option<String> {
    let mut n = 0;
    for (t, list) in groups {
        let drawn = list.len().min(MAX_ANOMALIES_PER_TYPE);
        if t == kind {
            return (idx < drawn).then(|| format!("a{}", n + idx + 1));
        }
        n += drawn;
    }
    None
}

/// Whether the failure viewer has a tab for this anomaly
/// (linearizability: the anomaly's `key`).
fn in_viewer(an: &Value, views: &AnomalyViews) -> bool {
    an.get("key")
        .map(text_of)
        .is_some_and(|k| views.lin.iter().any(|v| v.key == k))
}

pub(super) fn anomalies(h: &mut String, groups: &[(String, Vec<&Value>)], views: &AnomalyViews) {
    if groups.is_empty() {
        return;
    }
    h.push_str("<section id=\"anomalies\"><h2>Anomalies</h2>\n");
    if !views.txn.is_empty() {
        h.push_str(&cycle::legend_html());
    }
    // Anchors a1, a2, … in page order; the banner links to a1.
    let mut n = 0;
    let mut viewer_drawn = false;
    for (t, list) in groups {
        let _ = writeln!(
            h,
            "<h3><span class=\"chip anomaly\">{}</span> {} found</h3>",
            escape(t),
            list.len()
        );
        // Linearizability: one viewer, a tab per failing key, above the
        // anomalies it draws.
        if !viewer_drawn && list.iter().any(|an| in_viewer(an, views)) {
            viewer_drawn = true;
            h.push_str(&lin_viewer::render(VIEWER_ID, &views.lin));
        }
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
            // The viewer's tab already says what the prose would.
            let drawn = anomaly_view(h, t, i, views) || (viewer_drawn && in_viewer(an, views));
            anomaly(h, an, drawn);
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
    if views.txn_total > views.txn.len() {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} transactional anomalies found; diagrams are drawn for the first {}.</p>",
            views.txn_total,
            views.txn.len()
        );
    }
    h.push_str("</section>\n");
    if viewer_drawn {
        let _ = write!(h, "<script>{}</script>", lin_viewer::JS);
    }
}

/// The transactional cycle diagram and its prose for anomaly `idx` of
/// type `kind`, when the checker's typed result has it (`views`); says
/// whether it drew one. (The linearizability viewer is drawn once per
/// page, above its anomalies.)
fn anomaly_view(h: &mut String, kind: &str, idx: usize, views: &AnomalyViews) -> bool {
    match views.txn_nth(kind, idx) {
        Some(e) => {
            h.push_str(&cycle::anomaly_body(e));
            true
        }
        None => false,
    }
}

/// Fields of an anomaly that are rendered as prose rather than as JSON.
pub(super) const PROSE_FIELDS: [&str; 7] = [
    "explanation",
    "minimal_explanation",
    "explanations",
    "prose",
    "lines",
    "steps",
    "svg",
];

/// One anomaly's JSON for people; with `drawn` (its diagram and prose
/// are above) only the data, folded.
pub(super) fn anomaly(h: &mut String, an: &Value, drawn: bool) {
    let Value::Object(m) = an else {
        let _ = write!(h, "<p class=\"expl\">{}</p>", escape(&text_of(an)));
        return;
    };
    if !drawn {
        anomaly_prose(h, m);
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

/// An anomaly's prose fields, and a transactional cycle's data as lists.
fn anomaly_prose(h: &mut String, m: &serde_json::Map<String, Value>) {
    // A transactional cycle as data (kind "cycle"): its transactions and
    // one line per edge (when no diagram was drawn for it).
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
}

/// An explanation: a string, a list of lines, or an object with prose lines
/// and an SVG.
pub(super) fn explanation(h: &mut String, e: &Value) {
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
        Value::Object(_) => anomaly(h, e, false),
        Value::Null => {}
        other => {
            let _ = write!(h, "<p class=\"expl\">{}</p>", escape(&text_of(other)));
        }
    }
}

/// Inlines an SVG that faultline's own checker produced (trusted). Anything
/// that does not look like an SVG document is shown as text instead.
pub(super) fn inline_svg(h: &mut String, svg: &str) {
    let t = svg.trim_start();
    if t.starts_with("<svg") || t.starts_with("<?xml") {
        let _ = write!(h, "<div class=\"svg\">{svg}</div>");
    } else {
        let _ = write!(h, "<pre>{}</pre>", escape(svg));
    }
}

pub(super) fn keys(h: &mut String, r: &Value) {
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
