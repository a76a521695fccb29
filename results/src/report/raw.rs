//! The folded detail: the nemesis schedule, counts per operation, other
//! statistics, the files and the raw JSON, formatted for people.

use super::*;
/// Deepest nesting [`human_table`] draws before falling back to JSON.
pub(super) const MAX_DEPTH: usize = 3;

/// Fields as a table for people: durations as durations (by the field's
/// unit suffix), numbers without float noise, nested objects as nested
/// tables, empty values left out.
pub(super) fn human_table(h: &mut String, fields: &[(&String, &Value)], depth: usize) {
    h.push_str("<table class=\"kv\">");
    for (k, v) in fields {
        let _ = write!(h, "<tr><th>{}</th><td>", escape(&k.replace('_', " ")));
        human_value(h, k, v, depth);
        h.push_str("</td></tr>");
    }
    h.push_str("</table>");
}

pub(super) fn human_value(h: &mut String, name: &str, v: &Value, depth: usize) {
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
pub(super) fn other_fields(h: &mut String, r: &Value) {
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
pub(super) const COMMAND_FIELDS: [&str; 7] = [
    "cmd", "cmds", "command", "commands", "exit", "stdout", "stderr",
];

pub(super) fn is_commandish(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| COMMAND_FIELDS.contains(&k.as_str()) || is_commandish(x)),
        Value::Array(a) => a.iter().any(is_commandish),
        _ => false,
    }
}

/// Plain words for a small value: `kind: loss · nodes: n1, n2`.
pub(super) fn plain(v: &Value) -> String {
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
pub(super) fn ran_on(v: &Value) -> Option<String> {
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
pub(super) fn nemesis_value(h: &mut String, v: &Value) {
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

pub(super) fn commands_toggle(h: &mut String, v: &Value) {
    let _ = write!(
        h,
        "<details class=\"cmds\"><summary>commands and output</summary><pre>{}</pre></details>",
        escape(&cut(
            &serde_json::to_string_pretty(v).unwrap_or_default(),
            4000
        ))
    );
}

pub(super) fn nemesis_schedule(h: &mut String, history: &History, windows: &[FaultWindow]) {
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

pub(super) fn counts(h: &mut String, history: &History, spans: &[OpSpan]) {
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

pub(super) fn files(h: &mut String, nodes: &[String]) {
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
pub(super) fn url_segment(s: &str) -> String {
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

pub(super) fn raw(h: &mut String, title: &str, v: Option<&Value>) {
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
