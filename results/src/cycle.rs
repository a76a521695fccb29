//! A transactional anomaly as a person reads it: the dependency cycle as a
//! diagram (transactions as boxes, each edge an arrow labelled with its
//! kind and the key and value that prove it), the transactions and the
//! prose steps beside it as plain lists, and the legend of edge kinds.
//!
//! Edges of a two-transaction cycle are drawn as two curves bending to
//! opposite sides, so neither hides the other; every edge bends away from
//! the centre. Labels start at their edge's apex and are then pushed apart
//! until no two boxes overlap (nor a label and a transaction): the boxes
//! are measured with a monospace font, so the browser draws the text inside
//! them. Renders only: the checker's explanation decides everything.

use crate::timeline::escape;
use faultline_checker::txn::Workload;
use faultline_checker::txn::explain::{EdgeKind, Explanation, Step, describe_step};
use std::fmt::Write;

/// Cycles longer than this are explained in prose only: a diagram of
/// hundreds of boxes explains nothing.
pub const MAX_DIAGRAM_TXNS: usize = 16;

const FONT_PX: f64 = 12.0;
/// Advance of one character of the 12 px monospace font, rounded up
/// (DejaVu Sans Mono: 7.22 px), so the browser's text fits in the box.
const CHAR_W: f64 = 7.6;
const LINE_H: f64 = 15.0;
const LABEL_CHARS: usize = 30;
const BOX_W: f64 = 56.0;
const BOX_H: f64 = 30.0;

/// Colour of an edge kind, shared by the diagram and the legend.
fn colour(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Ww => "#1f77b4",
        EdgeKind::Wr => "#2ca02c",
        EdgeKind::Rw => "#d62728",
        EdgeKind::Process => "#9467bd",
        EdgeKind::Realtime => "#6b6b6b",
    }
}

/// What each edge kind means, for the legend (Adya's dependency kinds plus
/// Elle's process and realtime orders).
const KINDS: [(EdgeKind, &str); 5] = [
    (
        EdgeKind::Ww,
        "write–write: T2 overwrote (or appended after) T1's write",
    ),
    (EdgeKind::Wr, "write–read: T2 read T1's write"),
    (
        EdgeKind::Rw,
        "read–write (anti-dependency): T1 read a version that T2's write replaced",
    ),
    (
        EdgeKind::Process,
        "process order: T1 finished before T2 began on the same process",
    ),
    (
        EdgeKind::Realtime,
        "real time: T1 completed before T2 was invoked",
    ),
];

/// The legend that belongs to transactional anomalies.
pub fn legend_html() -> String {
    let mut s = String::from(
        "<div class=\"legend txn-legend\"><b>How to read a cycle:</b> each box is a \
         transaction; an arrow T1 → T2 means T1 must come before T2 in any serial order. \
         A cycle of such arrows means no serial order exists.<ul>",
    );
    for (k, what) in KINDS {
        let _ = write!(
            s,
            "<li><span class=\"edge-key\" style=\"border-color:{}\">{}</span> {}</li>",
            colour(k),
            k.as_str(),
            escape(what)
        );
    }
    s.push_str("</ul></div>\n");
    s
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn v(x: &Option<serde_json::Value>) -> String {
    x.as_ref()
        .map_or_else(|| "nil".to_string(), serde_json::Value::to_string)
}

/// The two label lines of an edge: its kind, then the key and value that
/// prove it.
fn label_lines(s: &Step, workload: Workload, process: &serde_json::Value) -> (String, String) {
    let key = v(&s.key);
    match s.kind {
        EdgeKind::Ww => (
            format!("ww  key {key}"),
            format!("{} then {}", v(&s.value), v(&s.other)),
        ),
        EdgeKind::Wr => (format!("wr  key {key}"), format!("read {}", v(&s.value))),
        EdgeKind::Rw => {
            let saw = match (&s.other, workload) {
                (None | Some(serde_json::Value::Null), Workload::ListAppend) => "[]".to_string(),
                (o, Workload::ListAppend) => format!("…{}", v(o)),
                (o, Workload::RwRegister) => v(o),
            };
            (
                format!("rw  key {key}"),
                format!("saw {saw}, missed {}", v(&s.value)),
            )
        }
        EdgeKind::Process => (
            format!("process {process}"),
            format!("T{} then T{}", s.from + 1, s.to + 1),
        ),
        EdgeKind::Realtime => (
            "realtime".to_string(),
            format!("T{} ended, T{} began", s.from + 1, s.to + 1),
        ),
    }
}

#[derive(Clone, Copy, Debug)]
struct Rect {
    cx: f64,
    cy: f64,
    w: f64,
    h: f64,
}

impl Rect {
    /// Overlap along x and y (both positive when they overlap), with `gap`.
    fn overlap(&self, o: &Rect, gap: f64) -> (f64, f64) {
        (
            (self.w + o.w) / 2.0 + gap - (self.cx - o.cx).abs(),
            (self.h + o.h) / 2.0 + gap - (self.cy - o.cy).abs(),
        )
    }
}

/// Pushes `labels` apart from each other and from `fixed` until nothing
/// overlaps (or the rounds run out; each round moves every overlapping pair
/// apart along its shallower axis, so it converges fast in practice).
fn separate(labels: &mut [Rect], fixed: &[Rect]) {
    const GAP: f64 = 4.0;
    for _ in 0..500 {
        let mut moved = false;
        for i in 0..labels.len() {
            for f in fixed {
                let (ox, oy) = labels[i].overlap(f, GAP);
                if ox > 0.0 && oy > 0.0 {
                    moved = true;
                    if oy <= ox {
                        labels[i].cy += if labels[i].cy >= f.cy { oy } else { -oy };
                    } else {
                        labels[i].cx += if labels[i].cx >= f.cx { ox } else { -ox };
                    }
                }
            }
            for j in i + 1..labels.len() {
                let (ox, oy) = labels[i].overlap(&labels[j], GAP);
                if ox > 0.0 && oy > 0.0 {
                    moved = true;
                    // Ties (same centre) move i up and j down.
                    if oy <= ox {
                        let d = oy / 2.0 + 0.5;
                        let up = labels[i].cy <= labels[j].cy;
                        labels[i].cy += if up { -d } else { d };
                        labels[j].cy += if up { d } else { -d };
                    } else {
                        let d = ox / 2.0 + 0.5;
                        let left = labels[i].cx <= labels[j].cx;
                        labels[i].cx += if left { -d } else { d };
                        labels[j].cx += if left { d } else { -d };
                    }
                }
            }
        }
        if !moved {
            return;
        }
    }
}

/// Where a line from a box's centre towards `(tx, ty)` leaves the box.
fn box_exit(cx: f64, cy: f64, tx: f64, ty: f64) -> (f64, f64) {
    let (dx, dy) = (tx - cx, ty - cy);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (dx / len, dy / len);
    let t = (BOX_W / 2.0 / ux.abs().max(1e-9)).min(BOX_H / 2.0 / uy.abs().max(1e-9)) + 3.0;
    (cx + ux * t, cy + uy * t)
}

/// The cycle diagram as inline SVG (class `cycle`); `None` for anomalies
/// that are not cycles or cycles too long to draw.
pub fn cycle_svg(e: &Explanation) -> Option<String> {
    let Explanation::Cycle {
        workload,
        txns,
        steps,
        ..
    } = e
    else {
        return None;
    };
    let n = txns.len();
    if n == 0 || n > MAX_DIAGRAM_TXNS {
        return None;
    }
    // Boxes on a circle, T1 on the left for two, at the top otherwise;
    // adjacent boxes far enough apart for a label between them.
    let r = if n <= 2 {
        150.0
    } else {
        (120.0f64).max(115.0 / (std::f64::consts::PI / n as f64).sin())
    };
    let pos: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = if n <= 2 {
                std::f64::consts::PI * (1.0 + i as f64)
            } else {
                -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64
            };
            (r * a.cos(), r * a.sin())
        })
        .collect();
    let fixed: Vec<Rect> = pos
        .iter()
        .map(|&(cx, cy)| Rect {
            cx,
            cy,
            w: BOX_W,
            h: BOX_H,
        })
        .collect();

    struct Edge {
        kind: EdgeKind,
        path: String,
        lines: (String, String),
        full: String,
    }
    let mut edges = Vec::new();
    let mut labels = Vec::new();
    let mut extent: Vec<(f64, f64)> = Vec::new();
    for s in steps {
        let (Some(&(x0, y0)), Some(&(x2, y2))) = (pos.get(s.from), pos.get(s.to)) else {
            continue;
        };
        let (dx, dy) = (x2 - x0, y2 - y0);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        // Left-hand normal; flipped to point away from the centre, which
        // for two boxes (centre on the chord) leaves the two directions
        // bending to opposite sides.
        let (mut nx, mut ny) = (dy / len, -dx / len);
        let (mx, my) = ((x0 + x2) / 2.0, (y0 + y2) / 2.0);
        if nx * mx + ny * my < -1e-6 {
            nx = -nx;
            ny = -ny;
        }
        let bend = if n <= 2 { 70.0 } else { 0.2 * len };
        let (cx, cy) = (mx + nx * bend, my + ny * bend);
        let (sx, sy) = box_exit(x0, y0, cx, cy);
        let (ex, ey) = box_exit(x2, y2, cx, cy);
        // The curve's apex (t = 1/2 of the quadratic Bézier).
        let (ax, ay) = (
            0.25 * sx + 0.5 * cx + 0.25 * ex,
            0.25 * sy + 0.5 * cy + 0.25 * ey,
        );
        let process = txns
            .get(s.from)
            .map(|t| t.process.clone())
            .unwrap_or_default();
        let (l1, l2) = label_lines(s, *workload, &process);
        let (l1, l2) = (short(&l1, LABEL_CHARS), short(&l2, LABEL_CHARS));
        let chars = l1.chars().count().max(l2.chars().count()) as f64;
        let (w, h) = (chars * CHAR_W + 10.0, 2.0 * LINE_H + 6.0);
        labels.push(Rect {
            cx: ax + nx * (h / 2.0 + 6.0),
            cy: ay + ny * (h / 2.0 + 6.0),
            w,
            h,
        });
        extent.push((cx, cy));
        edges.push(Edge {
            kind: s.kind,
            path: format!("M{sx:.1},{sy:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}"),
            lines: (l1, l2),
            full: describe_step(s, *workload),
        });
    }
    separate(&mut labels, &fixed);

    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let rects = labels.iter().chain(fixed.iter());
    for b in rects {
        x0 = x0.min(b.cx - b.w / 2.0);
        x1 = x1.max(b.cx + b.w / 2.0);
        y0 = y0.min(b.cy - b.h / 2.0);
        y1 = y1.max(b.cy + b.h / 2.0);
    }
    for &(x, y) in &extent {
        // The curve stays within half-way to its control point.
        let (x, y) = (x * 0.75, y * 0.75);
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let pad = 12.0;
    let (vx, vy, vw, vh) = (x0 - pad, y0 - pad, x1 - x0 + 2.0 * pad, y1 - y0 + 2.0 * pad);

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"cycle\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"{vx:.1} {vy:.1} {vw:.1} {vh:.1}\" \
         width=\"{vw:.0}\" height=\"{vh:.0}\" role=\"img\" aria-label=\"dependency cycle of {n} transactions\">"
    );
    s.push_str("<defs>");
    for (k, _) in KINDS {
        let _ = write!(
            s,
            "<marker id=\"arr-{k}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
             markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{c}\"/></marker>",
            k = k.as_str(),
            c = colour(k)
        );
    }
    s.push_str("</defs>");
    for e in &edges {
        let dash = match e.kind {
            EdgeKind::Process | EdgeKind::Realtime => " stroke-dasharray=\"6 4\"",
            _ => "",
        };
        let _ = write!(
            s,
            "<path class=\"edge {k}\" d=\"{p}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash} \
             marker-end=\"url(#arr-{k})\"><title>{t}</title></path>",
            k = e.kind.as_str(),
            p = e.path,
            c = colour(e.kind),
            t = escape(&e.full)
        );
    }
    for (i, (&(x, y), t)) in pos.iter().zip(txns).enumerate() {
        let _ = write!(
            s,
            "<g class=\"txn\"><title>T{} = {} (process {}, line {})</title>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"#fff\" stroke=\"#333\" stroke-width=\"1.5\"/>\
             <text class=\"label\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">T{}</text></g>",
            i + 1,
            escape(&t.value.to_string()),
            escape(&t.process.to_string()),
            t.line,
            x - BOX_W / 2.0,
            y - BOX_H / 2.0,
            y + FONT_PX / 2.0 - 2.0,
            i + 1
        );
    }
    for (e, b) in edges.iter().zip(&labels) {
        let (lx, ty) = (b.cx - b.w / 2.0, b.cy - b.h / 2.0);
        let _ = write!(
            s,
            "<g class=\"edge-label\"><title>{t}</title>\
             <rect x=\"{lx:.1}\" y=\"{ty:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"4\" fill=\"#fff\" \
             fill-opacity=\"0.92\" stroke=\"{c}\"/>\
             <text class=\"label\" x=\"{tx:.1}\" y=\"{y1:.1}\" fill=\"{c}\">\
             <tspan x=\"{tx:.1}\" y=\"{y1:.1}\" font-weight=\"bold\">{a}</tspan>\
             <tspan x=\"{tx:.1}\" y=\"{y2:.1}\">{b2}</tspan></text></g>",
            t = escape(&e.full),
            w = b.w,
            h = b.h,
            c = colour(e.kind),
            tx = lx + 5.0,
            y1 = ty + 3.0 + LINE_H - 3.0,
            y2 = ty + 3.0 + 2.0 * LINE_H - 3.0,
            a = escape(&e.lines.0),
            b2 = escape(&e.lines.1),
        );
    }
    s.push_str("</svg>");
    Some(s)
}

/// One anomaly as HTML: a heading, then the diagram beside the
/// transactions and the steps (plain lists: the step sentences carry no
/// numbers of their own), or the prose for anomalies that are not cycles.
pub fn anomaly_html(kind: &str, e: &Explanation) -> String {
    let mut s = String::new();
    let _ = write!(s, "<section class=\"anomaly\"><h3>{}</h3>", escape(kind));
    s.push_str(&anomaly_body(e));
    s.push_str("</section>\n");
    s
}

/// [`anomaly_html`] without its section and heading, for a page that
/// frames each anomaly itself (the run report).
pub fn anomaly_body(e: &Explanation) -> String {
    let mut s = String::new();
    match e {
        Explanation::Cycle {
            workload,
            txns,
            steps,
            ..
        } => {
            s.push_str("<div class=\"cycle-row\">");
            match cycle_svg(e) {
                Some(svg) => {
                    let _ = write!(s, "<figure class=\"cycle-fig\">{svg}</figure>");
                }
                None => {
                    let _ = write!(
                        s,
                        "<p class=\"note\">A cycle of {} transactions: too long to draw; the steps say it all.</p>",
                        txns.len()
                    );
                }
            }
            s.push_str("<div class=\"cycle-prose\"><p>Transactions:</p><ul class=\"txns\">");
            for (i, t) in txns.iter().enumerate() {
                let _ = write!(
                    s,
                    "<li><b>T{}</b> = <code>{}</code> (process {}, line {})</li>",
                    i + 1,
                    escape(&t.value.to_string()),
                    escape(&t.process.to_string()),
                    t.line
                );
            }
            s.push_str("</ul><p>Why they form a cycle:</p><ul class=\"steps\">");
            for (i, st) in steps.iter().enumerate() {
                let last = i + 1 == steps.len() && i > 0;
                let _ = write!(
                    s,
                    "<li>{}{}{}</li>",
                    if last { "However, " } else { "" },
                    escape(&describe_step(st, *workload)),
                    if last { ": a contradiction." } else { ";" }
                );
            }
            s.push_str("</ul></div></div>");
        }
        other => {
            let _ = write!(
                s,
                "<p>{}</p>",
                escape(faultline_checker::txn::explain::render(other).trim())
            );
        }
    }
    s
}

/// One sentence naming an anomaly's cause, for a verdict banner.
pub fn cause_sentence(kind: &str, e: &Explanation) -> String {
    match e {
        Explanation::Cycle {
            workload,
            txns,
            steps,
            ..
        } => {
            let parts: Vec<String> = steps
                .iter()
                .take(3)
                .map(|s| describe_step(s, *workload))
                .collect();
            let end = if steps.len() > 3 { "; …" } else { "." };
            format!(
                "{kind}: a dependency cycle of {} transactions — {}{end}",
                txns.len(),
                parts.join("; ")
            )
        }
        other => format!(
            "{kind}: {}",
            faultline_checker::txn::explain::render(other).trim()
        ),
    }
}

pub const CSS: &str = ".cycle-row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}\
.cycle-fig{margin:0;border:1px solid #ddd;background:#fff;max-width:100%;overflow:auto}\
svg.cycle text{font:12px/1 'DejaVu Sans Mono',monospace}\
.cycle-prose{flex:1;min-width:320px}.cycle-prose ul{margin:.2em 0 .8em;padding-left:1.2em}\
.cycle-prose li{margin:2px 0}\
.edge-key{display:inline-block;min-width:4.5em;border-bottom:3px solid;font:12px monospace;margin-right:.4em}\
.txn-legend ul{list-style:none;padding-left:0;margin:.3em 0}";

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::txn::explain::TxnRef;
    use serde_json::json;

    fn txn(op: usize, value: serde_json::Value) -> TxnRef {
        TxnRef {
            op,
            index: None,
            line: op + 1,
            process: json!(op),
            outcome: faultline_checker::Outcome::Ok,
            value,
        }
    }

    fn g1c() -> Explanation {
        Explanation::Cycle {
            r#type: "G1c".into(),
            workload: Workload::ListAppend,
            txns: vec![
                txn(0, json!([["append", "x", 1], ["r", "y", [1]]])),
                txn(1, json!([["append", "y", 1], ["r", "x", [1]]])),
            ],
            steps: vec![
                Step {
                    from: 0,
                    to: 1,
                    kind: EdgeKind::Wr,
                    key: Some(json!("x")),
                    value: Some(json!(1)),
                    other: None,
                },
                Step {
                    from: 1,
                    to: 0,
                    kind: EdgeKind::Wr,
                    key: Some(json!("y")),
                    value: Some(json!(1)),
                    other: None,
                },
            ],
        }
    }

    /// Label boxes as drawn: (x, y, w, h) of each edge label's rect.
    fn label_boxes(svg: &str) -> Vec<(f64, f64, f64, f64)> {
        svg.split("<g class=\"edge-label\">")
            .skip(1)
            .map(|g| {
                let attr = |name: &str| -> f64 {
                    let at = g.find(&format!(" {name}=\"")).expect("attribute") + name.len() + 3;
                    g[at..]
                        .split('"')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .expect("number")
                };
                (attr("x"), attr("y"), attr("width"), attr("height"))
            })
            .collect()
    }

    #[test]
    fn two_transaction_cycle_curves_apart_with_separate_labels() {
        let svg = cycle_svg(&g1c()).expect("a diagram");
        let paths: Vec<&str> = svg
            .split("<path class=\"edge")
            .skip(1)
            .map(|p| p.split("\" fill").next().unwrap_or(""))
            .collect();
        assert_eq!(paths.len(), 2);
        assert!(paths.iter().all(|p| p.contains(" Q")), "curved: {paths:?}");
        assert_ne!(paths[0], paths[1]);
        let b = label_boxes(&svg);
        assert_eq!(b.len(), 2);
        let apart = b[0].1 + b[0].3 <= b[1].1 || b[1].1 + b[1].3 <= b[0].1;
        assert!(apart, "labels overlap: {b:?}");
        assert!(svg.contains(">wr  key &quot;x&quot;<") && svg.contains(">read 1<"));
    }

    #[test]
    fn labels_of_a_crowded_cycle_never_overlap() {
        // Six transactions with long labels.
        let txns: Vec<TxnRef> = (0..6).map(|i| txn(i, json!([["w", "k", i]]))).collect();
        let steps: Vec<Step> = (0..6)
            .map(|i| Step {
                from: i,
                to: (i + 1) % 6,
                kind: [EdgeKind::Ww, EdgeKind::Rw, EdgeKind::Realtime][i % 3],
                key: Some(json!("a-rather-long-key-name-here")),
                value: Some(json!(i * 1000)),
                other: Some(json!(i)),
            })
            .collect();
        let e = Explanation::Cycle {
            r#type: "G2-item".into(),
            workload: Workload::RwRegister,
            txns,
            steps,
        };
        let svg = cycle_svg(&e).expect("a diagram");
        let b = label_boxes(&svg);
        assert_eq!(b.len(), 6);
        for i in 0..b.len() {
            for j in i + 1..b.len() {
                let (p, q) = (b[i], b[j]);
                let overlap =
                    p.0 < q.0 + q.2 && q.0 < p.0 + p.2 && p.1 < q.1 + q.3 && q.1 < p.1 + p.3;
                assert!(!overlap, "labels {i} and {j} overlap: {p:?} {q:?}");
            }
        }
    }

    #[test]
    fn steps_are_a_plain_list_and_the_legend_is_transactional() {
        let html = anomaly_html("G1c", &g1c());
        assert!(
            html.contains("<ul class=\"steps\"><li>T2 observed"),
            "{html}"
        );
        assert!(!html.contains("1. "), "no numbers inside the list: {html}");
        let legend = legend_html();
        assert!(legend.contains("write–read") && !legend.contains("linearized"));
        let cause = cause_sentence("G1c", &g1c());
        assert!(
            cause.starts_with("G1c: a dependency cycle of 2 transactions"),
            "{cause}"
        );
    }
}
