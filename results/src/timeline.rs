//! The page `faultline check --html` writes: a verdict banner first (VALID /
//! INVALID / UNKNOWN with its reason, and for an invalid history one
//! sentence naming the cause, from the checker's minimal explanation),
//! then per file what proves it: the linearizability failure viewer
//! ([`crate::lin_viewer`]) for keys that are not linearizable, each
//! transactional anomaly with its cycle diagram ([`crate::cycle`]), and
//! the checker's own text, folded.
//!
//! The page is one file with inline SVG, CSS and script — it opens from
//! disk with no server and no network. This module only renders: the
//! checker decided everything it shows.

use crate::{AnomalyViews, cycle, lin_viewer};
use faultline_checker::Verdict;
use std::fmt::Write;

/// What the page shows of one checked file.
#[derive(Clone, Debug)]
pub struct CheckFile {
    /// The file as named on the command line.
    pub file: String,
    /// The model or workload checked, e.g. `kv`, `list-append`.
    pub model: String,
    pub verdict: Verdict,
    /// The check's one-line summary (`FILE: invalid (kv, 803 ops, …)`).
    pub summary: String,
    /// For an invalid file: one sentence naming the cause.
    pub cause: Option<String>,
    /// For an unknown file: why (a budget ran out, nothing to check).
    pub reason: Option<String>,
    /// The rest of the check's text output (shown folded).
    pub details: String,
    /// What the failure viewer and the cycle diagrams draw.
    pub views: AnomalyViews,
}

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn verdict_word(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Valid => ("VALID", "valid"),
        Verdict::Invalid => ("INVALID", "invalid"),
        Verdict::Unknown => ("UNKNOWN", "unknown"),
    }
}

/// The sentence beside the verdict word for one file.
fn sentence(f: &CheckFile) -> String {
    match f.verdict {
        Verdict::Invalid => f
            .cause
            .clone()
            .unwrap_or_else(|| format!("{}: see below.", f.summary)),
        Verdict::Unknown => format!(
            "{} — {}",
            f.file,
            f.reason.as_deref().unwrap_or("the check did not finish")
        ),
        Verdict::Valid => f.summary.clone(),
    }
}

/// The whole page for the files of one `check --html`.
pub fn render_check_page(title: &str, files: &[CheckFile]) -> String {
    let worst = files.iter().fold(Verdict::Valid, |w, f| w.worst(f.verdict));
    let (word, class) = verdict_word(worst);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{word} — {}</title>\n<style>{CSS}{}{}</style></head><body>\n",
        escape(title),
        lin_viewer::CSS,
        cycle::CSS
    );
    // The answer first: the verdict and, when it is not valid, why.
    let lead = files.iter().find(|f| f.verdict == worst);
    let _ = write!(
        html,
        "<div class=\"verdict {class}\" id=\"verdict\" role=\"status\"><span class=\"word\">{word}</span>"
    );
    if let Some(f) = lead {
        let id = if worst == Verdict::Invalid {
            " id=\"cause\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<span class=\"sentence\"{id}>{}</span>",
            escape(&sentence(f))
        );
    }
    if files.len() > 1 {
        let count = |v| files.iter().filter(|f| f.verdict == v).count();
        let _ = write!(
            html,
            "<span class=\"counts\">{} files: {} valid, {} invalid, {} unknown</span>",
            files.len(),
            count(Verdict::Valid),
            count(Verdict::Invalid),
            count(Verdict::Unknown)
        );
    }
    html.push_str("</div>\n");
    let _ = writeln!(html, "<p class=\"title\">{}</p>", escape(title));
    let lin_any = files.iter().any(|f| !f.views.lin.is_empty());
    let txn_any = files.iter().any(|f| !f.views.txn.is_empty());
    if txn_any {
        html.push_str(&cycle::legend_html());
    }
    for (i, f) in files.iter().enumerate() {
        let (w, c) = verdict_word(f.verdict);
        html.push_str("<section class=\"file\">");
        if files.len() > 1 {
            let _ = write!(
                html,
                "<h2><span class=\"badge {c}\">{w}</span> {}</h2>",
                escape(&f.file)
            );
            if f.verdict != Verdict::Valid {
                let _ = write!(html, "<p class=\"file-cause\">{}</p>", escape(&sentence(f)));
            }
        }
        if !f.views.lin.is_empty() {
            html.push_str(&lin_viewer::render(&format!("lin{i}"), &f.views.lin));
        }
        if !f.views.txn.is_empty() {
            if f.views.txn_total > f.views.txn.len() {
                let _ = write!(
                    html,
                    "<p class=\"note\">{} anomalies found; the first {} are drawn (the JSON output has them all).</p>",
                    f.views.txn_total,
                    f.views.txn.len()
                );
            }
            for (kind, e) in &f.views.txn {
                html.push_str(&cycle::anomaly_html(kind, e));
            }
        }
        if f.verdict == Verdict::Valid && files.len() == 1 {
            let _ = write!(
                html,
                "<p class=\"valid-note\">No anomaly: every check of {} ({}) passed.</p>",
                escape(&f.file),
                escape(&f.model)
            );
        }
        let _ = write!(
            html,
            "<details class=\"raw\"><summary>The checker's output for {}</summary><pre>{}\n{}</pre></details>",
            escape(&f.file),
            escape(&f.summary),
            escape(f.details.trim_end())
        );
        html.push_str("</section>\n");
    }
    if lin_any {
        let _ = write!(html, "<script>{}</script>", lin_viewer::JS);
    }
    html.push_str("</body></html>\n");
    html
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1em 1.5em;color:#222}\
h2{font-size:1.1em;margin-top:1.2em}h3{font-size:1.05em;margin:.8em 0 .3em}\
.verdict{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4em 1em;padding:.6em 1em;border-radius:6px;font-size:1.15em}\
.verdict .word{font-weight:800;font-size:1.5em;letter-spacing:.04em}\
.verdict.valid{background:#e3f6e0;border:2px solid #2a8a2a}.verdict.valid .word{color:#1d6d1d}\
.verdict.invalid{background:#fde6e6;border:2px solid #c00}.verdict.invalid .word{color:#b00}\
.verdict.unknown{background:#fff4d6;border:2px solid #c90}.verdict.unknown .word{color:#8a6100}\
.verdict .counts{font-size:.85em;color:#444}\
.title{color:#666;margin:.3em 0 .6em;font-size:.9em}\
.badge{font-size:.8em;padding:1px 6px;border-radius:3px;color:#fff}.badge.valid{background:#2a8a2a}\
.badge.invalid{background:#c00}.badge.unknown{background:#b80}\
.note{color:#555}.valid-note{color:#1d6d1d}details.raw{margin-top:1em}details.raw pre{white-space:pre-wrap;font-size:12px}\
.legend{font-size:.9em;color:#333}";

#[cfg(test)]
mod tests {
    use super::*;

    fn file(verdict: Verdict) -> CheckFile {
        CheckFile {
            file: "h.jsonl".into(),
            model: "cas-register".into(),
            verdict,
            summary: "h.jsonl: valid (cas-register, 4 ops, 1 key(s); 0.1 ms)".into(),
            cause: Some("Key \"x\": read 1 <after> write 2.".into()),
            reason: Some("the time limit ran out".into()),
            details: String::new(),
            views: AnomalyViews::default(),
        }
    }

    #[test]
    fn the_verdict_comes_first_with_its_cause_or_reason() {
        let html = render_check_page("faultline check h.jsonl", &[file(Verdict::Invalid)]);
        let banner = html.find("id=\"verdict\"").expect("a banner");
        assert!(banner < html.find("<section").expect("a section"));
        assert!(html.contains("<span class=\"word\">INVALID</span>"));
        assert!(html.contains("id=\"cause\">Key &quot;x&quot;: read 1 &lt;after&gt; write 2.<"));
        let html = render_check_page("t", &[file(Verdict::Valid)]);
        assert!(html.contains("class=\"verdict valid\"") && html.contains(">VALID<"));
        assert!(!html.contains("id=\"cause\""));
        let html = render_check_page("t", &[file(Verdict::Unknown)]);
        assert!(html.contains(">UNKNOWN<") && html.contains("the time limit ran out"));
    }

    #[test]
    fn several_files_show_the_worst_verdict_and_counts() {
        let html = render_check_page("t", &[file(Verdict::Valid), file(Verdict::Invalid)]);
        assert!(html.contains("class=\"verdict invalid\""));
        assert!(html.contains("2 files: 1 valid, 1 invalid, 0 unknown"));
        assert!(!html.contains("<script"), "no viewer, no script");
    }
}
