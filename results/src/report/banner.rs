//! The verdict banner: the verdict word and one sentence naming the cause,
//! linking to the section that explains it.

use super::*;
pub(super) fn verdict_banner(
    h: &mut String,
    results: &Value,
    groups: &[(String, Vec<&Value>)],
    views: &crate::AnomalyViews,
) {
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
    match (verdict, cause(results, groups, views)) {
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
pub(super) const MAX_CAUSE: usize = 240;

/// The banner's one sentence naming the cause, and the anchor of the
/// section that explains it. The checker's minimal explanation (`views`,
/// from its typed result) comes first, linking to the failure viewer or
/// the first cycle diagram; without it (a run rendered from its files),
/// the sentence is built from `results.json`'s structured data (the
/// failing operation, the minimal counterexample's size, a cycle's
/// transactions), else from its first line of prose.
fn cause(
    results: &Value,
    groups: &[(String, Vec<&Value>)],
    views: &crate::AnomalyViews,
) -> Option<(String, String)> {
    if let Some(c) = &views.cause {
        let anchor = if !views.lin.is_empty() {
            Some(VIEWER_ID.to_string())
        } else {
            views
                .txn
                .first()
                .and_then(|(k, _)| anomaly_anchor(groups, k, 0))
        };
        return Some((cut(c, MAX_CAUSE), anchor.unwrap_or_else(|| "a1".into())));
    }
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
pub(super) fn anomaly_sentence(kind: &str, an: &Value) -> String {
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
pub(super) fn op_phrase(op: &Value) -> String {
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
pub(super) fn lines_of(refs: &[Value]) -> String {
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
