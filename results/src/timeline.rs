//! A self-contained HTML page that shows why one key is not linearizable.
//!
//! Operations are bars, one lane per process, over real time (event order);
//! the linearization the search reached is numbered in order; the operation
//! that could not be linearized is red; the concurrent operations that were
//! tried in its place are orange. Operations whose outcome is unknown (`info`)
//! run to the right edge: they may take effect at any later time, or never.
//!
//! The page is one file with inline SVG and CSS — it opens from disk with no
//! server and no network — and every bar has a tooltip with the operation's
//! process, values and source line. This module only renders: it computes no
//! verdict (the checker did that).

use std::collections::BTreeMap;
use std::fmt::Write;

/// What a bar means in the explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// In the minimal counterexample, as its `[n]` (1-based): the ops the
    /// explanation names first.
    Minimal(usize),
    /// Part of the longest linearizable prefix, at this position (0-based).
    Linearized(usize),
    /// The operation that cannot be linearized.
    Failing,
    /// Concurrent with the failing operation; tried and rejected in its place.
    Tried,
    /// Anything else on this key.
    Other,
}

/// One operation, as the timeline draws it.
#[derive(Clone, Debug)]
pub struct TimelineOp {
    pub process: String,
    /// Position of the invocation in real-time order (event index or time).
    pub start: u64,
    /// Position of the completion; `None` when the outcome is unknown.
    pub end: Option<u64>,
    /// Short text drawn on the bar, e.g. `write 3` or `read → 3`.
    pub label: String,
    /// Longer text for the tooltip and the table (values, line in the file).
    pub detail: String,
    pub role: Role,
}

/// One key's timeline with the prose that explains it.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Page title, e.g. `etcd_000.log — key "x" — not linearizable`.
    pub title: String,
    /// Explanation lines, shown above the chart in order.
    pub explanation: Vec<String>,
    pub ops: Vec<TimelineOp>,
    /// Figures drawn by faultline itself (SVG markup, e.g. an anomaly's
    /// dependency cycle), embedded as they are: trusted, never user text.
    pub figures: Vec<String>,
}

const LANE_H: u32 = 34;
const BAR_H: u32 = 22;
const COL_W: u32 = 26;
const LEFT: u32 = 90;
const TOP: u32 = 30;

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

/// Renders one or more timelines into a single HTML document.
pub fn render_html(page_title: &str, timelines: &[Timeline]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>{}</style></head><body>\n<h1>{}</h1>\n",
        escape(page_title),
        CSS,
        escape(page_title)
    );
    html.push_str(LEGEND);
    for t in timelines {
        render_one(&mut html, t);
    }
    html.push_str("</body></html>\n");
    html
}

fn render_one(html: &mut String, t: &Timeline) {
    let _ = write!(
        html,
        "<section><h2>{}</h2>\n<ol class=\"why\">",
        escape(&t.title)
    );
    for line in &t.explanation {
        let _ = write!(html, "<li>{}</li>", escape(line));
    }
    html.push_str("</ol>\n");
    for fig in &t.figures {
        let _ = writeln!(html, "<figure>{fig}</figure>");
    }
    if t.ops.is_empty() {
        html.push_str("</section>\n");
        return;
    }

    // Lanes: processes in numeric order where they are numbers.
    let mut lanes: Vec<&str> = t.ops.iter().map(|o| o.process.as_str()).collect();
    lanes.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    });
    lanes.dedup();
    let lane_of: BTreeMap<&str, usize> = lanes.iter().enumerate().map(|(i, p)| (*p, i)).collect();

    // Columns: only the positions this key uses, so a key's chart stays
    // compact even in a history of millions of events.
    let mut points: Vec<u64> = t
        .ops
        .iter()
        .flat_map(|o| std::iter::once(o.start).chain(o.end))
        .collect();
    points.sort_unstable();
    points.dedup();
    let col = |p: u64| points.partition_point(|&x| x < p) as u32;
    let ncols = points.len() as u32 + 1;
    let width = LEFT + ncols * COL_W + 20;
    let height = TOP + lanes.len() as u32 * LANE_H + 10;

    let _ = writeln!(
        html,
        "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" aria-label=\"operations per process over time\">"
    );
    let _ = writeln!(
        html,
        "<text x=\"{LEFT}\" y=\"16\" class=\"axis\">real time (event order) →</text>"
    );
    for (i, p) in lanes.iter().enumerate() {
        let y = TOP + i as u32 * LANE_H;
        let _ = writeln!(
            html,
            "<text x=\"8\" y=\"{}\" class=\"lane\">process {}</text>\
             <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" class=\"grid\"/>",
            y + BAR_H / 2 + 5,
            escape(p),
            width - 10,
            y + LANE_H - 4,
            y + LANE_H - 4
        );
    }
    for op in &t.ops {
        let lane = lane_of.get(op.process.as_str()).copied().unwrap_or(0) as u32;
        let y = TOP + lane * LANE_H;
        let x0 = LEFT + col(op.start) * COL_W;
        let x1 = match op.end {
            Some(e) => LEFT + col(e) * COL_W + COL_W / 2,
            None => width - 12,
        };
        let w = x1.saturating_sub(x0).max(8);
        let (class, tag) = match op.role {
            Role::Minimal(n) => ("min", format!("[{n}] ")),
            Role::Linearized(n) => ("lin", format!("#{} ", n + 1)),
            Role::Failing => ("fail", "✗ ".to_string()),
            Role::Tried => ("tried", String::new()),
            Role::Other => ("other", String::new()),
        };
        let open = if op.end.is_none() { " open" } else { "" };
        let _ = writeln!(
            html,
            "<g class=\"op {class}{open}\"><title>{}</title>\
             <rect x=\"{x0}\" y=\"{y}\" width=\"{w}\" height=\"{BAR_H}\" rx=\"3\"/>\
             <text x=\"{}\" y=\"{}\">{}</text></g>",
            escape(&op.detail),
            x0 + 4,
            y + BAR_H / 2 + 4,
            escape(&format!("{tag}{}", op.label))
        );
    }
    html.push_str("</svg></div>\n");

    // The same facts as a table, for reading and for copying.
    html.push_str(
        "<table><thead><tr><th>role</th><th>process</th><th>operation</th><th>detail</th></tr></thead><tbody>\n",
    );
    let mut rows: Vec<&TimelineOp> = t.ops.iter().filter(|o| o.role != Role::Other).collect();
    rows.sort_by_key(|o| match o.role {
        Role::Minimal(n) => (0, n),
        Role::Linearized(n) => (1, n),
        Role::Failing => (2, 0),
        Role::Tried => (3, 0),
        Role::Other => (4, 0),
    });
    for o in rows {
        let role = match o.role {
            Role::Minimal(n) => format!("minimal counterexample [{n}]"),
            Role::Linearized(n) => format!("linearized #{}", n + 1),
            Role::Failing => "cannot be linearized".into(),
            Role::Tried => "tried instead".into(),
            Role::Other => String::new(),
        };
        let _ = writeln!(
            html,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            match o.role {
                Role::Minimal(_) => "min",
                Role::Failing => "fail",
                Role::Tried => "tried",
                _ => "lin",
            },
            escape(&role),
            escape(&o.process),
            escape(&o.label),
            escape(&o.detail)
        );
    }
    html.push_str("</tbody></table></section>\n");
}

const LEGEND: &str = "<p class=\"legend\"><span class=\"k min\">[n]</span> minimal counterexample \
<span class=\"k lin\">#n</span> linearized, in order \
<span class=\"k fail\">✗</span> cannot be linearized \
<span class=\"k tried\">&nbsp;</span> concurrent, tried in its place \
<span class=\"k other\">&nbsp;</span> other operations \
<span class=\"k other open\">&nbsp;</span> unknown outcome (info): may take effect any time later, or never. \
Hover a bar for details.</p>\n";

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}\
.chart{overflow-x:auto;border:1px solid #ddd;padding:4px;background:#fcfcfc}\
svg text{font:11px monospace}.axis{fill:#666}.lane{fill:#333}\
.grid{stroke:#eee}\
.op rect{stroke:#555;stroke-width:1}\
.op.lin rect{fill:#b7e1b0}.op.fail rect{fill:#f08080;stroke:#a00;stroke-width:2}\
.op.tried rect{fill:#ffd08a}.op.min rect{fill:#9cc3f0;stroke:#1a4f8f;stroke-width:3}.op.other rect{fill:#e4e4e4}\
.op.open rect{stroke-dasharray:4 3}\
.op:hover rect{stroke:#000;stroke-width:2}\
table{border-collapse:collapse;margin-top:.8em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\
tr.fail td{background:#fde0e0}tr.min td{background:#dcebfb}tr.tried td{background:#fff1dc}\
.legend .k{display:inline-block;min-width:1.5em;border:1px solid #555;margin:0 4px 0 12px;text-align:center}\
.k.lin{background:#b7e1b0}.k.fail{background:#f08080}.k.tried{background:#ffd08a}.k.min{background:#9cc3f0}.k.other{background:#e4e4e4}\
.k.open{border-style:dashed}ol.why li{margin:2px 0}";

#[cfg(test)]
mod tests {
    use super::*;

    fn op(p: &str, s: u64, e: Option<u64>, label: &str, role: Role) -> TimelineOp {
        TimelineOp {
            process: p.into(),
            start: s,
            end: e,
            label: label.into(),
            detail: format!("{label} <line 3>"),
            role,
        }
    }

    #[test]
    fn renders_roles_escapes_and_open_ops() {
        let t = Timeline {
            title: "key \"x\" — not linearizable".into(),
            explanation: vec!["read → 1 cannot follow write 2".into()],
            ops: vec![
                op("0", 0, Some(1), "write 1", Role::Linearized(0)),
                op("1", 2, Some(3), "write 2", Role::Linearized(1)),
                op("2", 4, Some(5), "read → 1", Role::Failing),
                op("10", 1, None, "write 9", Role::Tried),
            ],
            figures: Vec::new(),
        };
        let html = render_html("check", &[t]);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("#1 write 1") && html.contains("#2 write 2"));
        assert!(html.contains("class=\"op fail\""));
        assert!(
            html.contains("class=\"op tried open\""),
            "info op drawn open-ended"
        );
        assert!(html.contains("&lt;line 3&gt;"), "details are escaped");
        assert!(html.contains("key &quot;x&quot;"));
        // process lanes in numeric order: 0, 1, 2, 10
        let p2 = html.find(">process 2<").unwrap();
        let p10 = html.find(">process 10<").unwrap();
        assert!(p2 < p10);
        assert!(!html.contains("<script"), "opens with no server or script");
    }
}
