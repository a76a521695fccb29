//! The space-time diagram of a run's messages (Lamport 1978, fig. 1): a
//! vertical line per node, time running down in Lamport order, a slanted
//! arrow per message from its send to its receive, coloured by message type
//! with a legend; a send nobody received is dashed and ends in ✕. Protocol
//! events (role, term, leader changes) are dots on their node's line,
//! client operations are bars beside the line of the node they went to,
//! fault windows shaded bands; the left margin gives each row's Lamport
//! clock and wall time since the test started.
//!
//! A pure function of parsed records ([`trace_svg`]); every arrow is a
//! `<g class="msg">` whose `data-*` attributes (type, from, to, send-lc,
//! recv-lc, y1, y2) say what it draws, for tests and scripts.

use crate::trace::{TraceData, TraceWindow, View, select};
use faultline_checker::Outcome;
use faultline_trace::{Body, Record};
use std::collections::BTreeMap;
use std::fmt::Write;

const LEFT: f64 = 170.0;
const LANE_W: f64 = 230.0;
const TOP: f64 = 120.0;
const ROW_H: f64 = 18.0;
const BOTTOM: f64 = 40.0;
/// Client operations drawn at most (bars beside the lanes).
const MAX_OPS: usize = 300;

/// Colours for message types, in order of their names.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22",
];

/// The diagram of `data` cut to `window`, as a standalone SVG document.
pub fn trace_svg(data: &TraceData, window: &TraceWindow) -> String {
    let v = select(data, window);
    Diagram::new(&v, data).render()
}

struct Diagram<'a> {
    v: &'a View<'a>,
    data: &'a TraceData,
    /// Lamport clock → row.
    rows: BTreeMap<u64, usize>,
    /// Per row: its wall time (running max, so it only grows).
    row_ms: Vec<u64>,
    colours: BTreeMap<&'a str, &'static str>,
    base_ms: u64,
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

impl<'a> Diagram<'a> {
    fn new(v: &'a View<'a>, data: &'a TraceData) -> Diagram<'a> {
        let mut at: BTreeMap<u64, u64> = BTreeMap::new();
        let mut note = |r: &Record| {
            at.entry(r.lc).or_insert(r.at_ms);
        };
        for m in &v.messages {
            note(m.send);
            if let Some(r) = m.recv {
                note(r);
            }
        }
        for e in &v.events {
            note(e);
        }
        let mut rows = BTreeMap::new();
        let mut row_ms = Vec::new();
        let mut hi = 0;
        for (i, (lc, ms)) in at.into_iter().enumerate() {
            rows.insert(lc, i);
            hi = ms.max(hi);
            row_ms.push(hi);
        }
        let mut types: Vec<&str> = v.messages.iter().map(|m| m.ty()).collect();
        types.sort_unstable();
        types.dedup();
        let colours = types
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, PALETTE[i % PALETTE.len()]))
            .collect();
        let base_ms = data
            .t0_ms
            .or_else(|| data.records.iter().map(|r| r.at_ms).min())
            .unwrap_or(0);
        Diagram {
            v,
            data,
            rows,
            row_ms,
            colours,
            base_ms,
        }
    }

    fn lane_x(&self, node: &str) -> Option<f64> {
        self.v
            .nodes
            .iter()
            .position(|n| n == node)
            .map(|i| LEFT + LANE_W / 2.0 + i as f64 * LANE_W)
    }

    fn y(&self, lc: u64) -> f64 {
        TOP + self.rows.get(&lc).copied().unwrap_or(0) as f64 * ROW_H
    }

    /// The y of wall time `ms`: the first row at or after it.
    fn y_at(&self, ms: u64) -> f64 {
        let i = self.row_ms.partition_point(|t| *t < ms);
        TOP + i as f64 * ROW_H
    }

    fn secs(&self, ms: u64) -> String {
        format!("{:+.3} s", (ms as f64 - self.base_ms as f64) / 1000.0)
    }

    fn render(&self) -> String {
        let lanes = self.v.nodes.len().max(1) as f64;
        let width = LEFT + lanes * LANE_W + 20.0;
        let height = TOP + (self.rows.len().max(1) as f64 + 1.0) * ROW_H + BOTTOM;
        let bottom = height - BOTTOM;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="trace" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
        );
        s.push_str("<defs>");
        for (t, c) in &self.colours {
            let _ = write!(
                s,
                r#"<marker id="ah-{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>"#,
                id = esc(t)
            );
        }
        s.push_str("</defs>");
        s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
        self.header(&mut s, width);
        self.faults(&mut s, width, bottom);
        // Lanes.
        for n in &self.v.nodes {
            let x = self.lane_x(n).unwrap_or(LEFT);
            let _ = write!(
                s,
                r##"<g class="lane" data-node="{n}"><text x="{x}" y="{ty}" text-anchor="middle" font-weight="bold" font-size="13">{n}</text><line x1="{x}" y1="{y1}" x2="{x}" y2="{bottom}" stroke="#444" stroke-width="1.5"/></g>"##,
                n = esc(n),
                ty = TOP - 22.0,
                y1 = TOP - 14.0,
            );
        }
        self.row_labels(&mut s);
        self.ops(&mut s);
        self.messages(&mut s);
        self.events(&mut s);
        s.push_str("</svg>\n");
        s
    }

    fn header(&self, s: &mut String, width: f64) {
        let _ = write!(
            s,
            r#"<text x="10" y="18" font-size="14" font-weight="bold">Messages in Lamport order: {shown} of {total}</text>"#,
            shown = self.v.messages.len(),
            total = self.v.total
        );
        if self.v.cut() > 0 {
            let _ = write!(
                s,
                r##"<text class="cut-note" x="10" y="36" fill="#b00">{cut} later messages not drawn (at most {max} per view): narrow it with --from/--to, --nodes or --types</text>"##,
                cut = self.v.cut(),
                max = self.v.messages.len(),
            );
        } else if self.v.messages.is_empty() {
            s.push_str(r##"<text class="cut-note" x="10" y="36" fill="#b00">no messages in this window</text>"##);
        }
        // Legend.
        let mut x = 10.0;
        let y = 58.0;
        s.push_str(r#"<g class="legend">"#);
        for (t, c) in &self.colours {
            let _ = write!(
                s,
                r#"<g class="legend-type" data-type="{t}"><line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="{c}" stroke-width="2.5"/><text x="{tx}" y="{ty}">{t}</text></g>"#,
                t = esc(t),
                x2 = x + 22.0,
                tx = x + 26.0,
                ty = y + 4.0
            );
            x += 34.0 + 7.0 * t.len() as f64;
            if x > width - 150.0 {
                break;
            }
        }
        let y2 = y + 20.0;
        let _ = write!(
            s,
            r##"<line x1="10" y1="{y2}" x2="32" y2="{y2}" stroke="#555" stroke-width="1.5" stroke-dasharray="4 3"/><text x="36" y="{t}">sent, never received (✕)</text><rect x="200" y="{r}" width="5" height="12" fill="#2ca02c"/><rect x="207" y="{r}" width="5" height="12" fill="#d62728"/><rect x="214" y="{r}" width="5" height="12" fill="#ff7f0e"/><text x="224" y="{t}">client op: ok / fail / info</text><rect x="400" y="{r}" width="22" height="12" fill="#f4b6b6" fill-opacity="0.5"/><text x="426" y="{t}">fault window</text><circle cx="530" cy="{y2}" r="4" fill="black"/><text x="538" y="{t}">protocol event</text>"##,
            t = y2 + 4.0,
            r = y2 - 6.0
        );
        s.push_str("</g>");
    }

    fn faults(&self, s: &mut String, width: f64, bottom: f64) {
        let (Some(first), Some(last)) = (self.row_ms.first(), self.row_ms.last()) else {
            return;
        };
        for f in &self.data.faults {
            if f.end_ms < *first || f.start_ms > *last {
                continue;
            }
            let y1 = self.y_at(f.start_ms).max(TOP - 8.0);
            let y2 = self.y_at(f.end_ms).min(bottom);
            let _ = write!(
                s,
                r##"<g class="fault"><rect x="{LEFT}" y="{y1}" width="{w}" height="{h}" fill="#f4b6b6" fill-opacity="0.35"/><text x="{tx}" y="{ty}" fill="#a33" text-anchor="end">{l} {a}…{b}</text></g>"##,
                w = width - LEFT - 10.0,
                h = (y2 - y1).max(2.0),
                tx = width - 14.0,
                ty = y1 + 12.0,
                l = esc(&f.label),
                a = self.secs(f.start_ms),
                b = self.secs(f.end_ms),
            );
        }
    }

    fn row_labels(&self, s: &mut String) {
        for (lc, row) in &self.rows {
            let y = TOP + *row as f64 * ROW_H + 4.0;
            let _ = write!(
                s,
                r##"<text x="8" y="{y}" fill="#666" font-size="10">lc {lc}</text><text x="{x}" y="{y}" fill="#666" font-size="10" text-anchor="end">{t}</text>"##,
                x = LEFT - 50.0,
                t = self.secs(self.row_ms[*row]),
            );
        }
    }

    fn ops(&self, s: &mut String) {
        let (Some(first), Some(last)) = (self.row_ms.first(), self.row_ms.last()) else {
            return;
        };
        let mut drawn = 0;
        for op in &self.data.ops {
            let end = op.end_ms.unwrap_or(*last);
            if end < *first || op.start_ms > *last {
                continue;
            }
            let Some(x) = op.node.as_deref().and_then(|n| self.lane_x(n)) else {
                continue;
            };
            let x = x - 14.0 - 4.0 * (drawn % 5) as f64;
            let y1 = self.y_at(op.start_ms);
            let y2 = self.y_at(end).max(y1 + 3.0);
            let (c, o) = match op.outcome {
                Outcome::Ok => ("#2ca02c", "ok"),
                Outcome::Fail => ("#d62728", "fail"),
                Outcome::Info => ("#ff7f0e", "info"),
            };
            let _ = write!(
                s,
                r#"<rect class="op" x="{x}" y="{y1}" width="3" height="{h}" fill="{c}"><title>{l}: {o} ({a} … {b})</title></rect>"#,
                h = y2 - y1,
                l = esc(&op.label),
                a = self.secs(op.start_ms),
                b = op.end_ms.map_or("never".to_string(), |e| self.secs(e)),
            );
            drawn += 1;
            if drawn >= MAX_OPS {
                break;
            }
        }
    }

    fn messages(&self, s: &mut String) {
        for m in &self.v.messages {
            let (Some(x1), Some(x2)) = (self.lane_x(&m.send.node), self.lane_x(m.to())) else {
                continue;
            };
            let ty = m.ty();
            let c = self.colours.get(ty).copied().unwrap_or("#000");
            let y1 = self.y(m.send.lc);
            let summary = match &m.send.body {
                Body::Send { summary, .. } => summary.as_str(),
                _ => "",
            };
            match m.recv {
                Some(r) => {
                    let y2 = self.y(r.lc);
                    let _ = write!(
                        s,
                        r#"<g class="msg" data-type="{t}" data-from="{f}" data-to="{to}" data-send-lc="{sl}" data-recv-lc="{rl}" data-y1="{y1}" data-y2="{y2}"><title>{t} {f}→{to}, lc {sl}→{rl}, {a}→{b}: {sum}</title><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{c}" stroke-width="1.6" marker-end="url(#ah-{t})"/><text x="{tx}" y="{ty}" fill="{c}" font-size="10">{t}</text></g>"#,
                        t = esc(ty),
                        f = esc(&m.send.node),
                        to = esc(m.to()),
                        sl = m.send.lc,
                        rl = r.lc,
                        a = self.secs(m.send.at_ms),
                        b = self.secs(r.at_ms),
                        sum = esc(summary),
                        tx = x1 + (x2 - x1) * 0.12 + if x2 > x1 { 2.0 } else { -30.0 },
                        ty = y1 + (y2 - y1) * 0.12 - 2.0,
                    );
                }
                None => {
                    // Dashed a third of the way, ending in ✕.
                    let (ex, ey) = (x1 + (x2 - x1) * 0.35, y1 + ROW_H * 0.9);
                    let _ = write!(
                        s,
                        r#"<g class="msg undelivered" data-type="{t}" data-from="{f}" data-to="{to}" data-send-lc="{sl}" data-y1="{y1}"><title>{t} {f}→{to}, lc {sl}, {a}: never received: {sum}</title><line x1="{x1}" y1="{y1}" x2="{ex}" y2="{ey}" stroke="{c}" stroke-width="1.6" stroke-dasharray="4 3"/><path d="M{a1},{b1} L{a2},{b2} M{a1},{b2} L{a2},{b1}" stroke="{c}" stroke-width="2"/></g>"#,
                        t = esc(ty),
                        f = esc(&m.send.node),
                        to = esc(m.to()),
                        sl = m.send.lc,
                        a = self.secs(m.send.at_ms),
                        sum = esc(summary),
                        a1 = ex - 4.0,
                        a2 = ex + 4.0,
                        b1 = ey - 4.0,
                        b2 = ey + 4.0,
                    );
                }
            }
        }
    }

    fn events(&self, s: &mut String) {
        for e in &self.v.events {
            let (Some(x), Body::Event(o)) = (self.lane_x(&e.node), &e.body) else {
                continue;
            };
            let y = self.y(e.lc);
            let what = format!(
                "{} t{}{}",
                o.role.as_deref().unwrap_or("?"),
                o.term.unwrap_or(0),
                o.commit.map(|c| format!(" c{c}")).unwrap_or_default()
            );
            let _ = write!(
                s,
                r#"<g class="event" data-node="{n}" data-lc="{lc}"><circle cx="{x}" cy="{y}" r="4" fill="black"/><text x="{tx}" y="{ty}" font-size="10">{w}</text><title>{n} {k:?} at lc {lc}, {a}: {w}</title></g>"#,
                n = esc(&e.node),
                lc = e.lc,
                tx = x + 6.0,
                ty = y + 4.0,
                w = esc(&what),
                k = o.event,
                a = self.secs(e.at_ms),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tests::duel;
    use crate::trace::{ClientOp, Fault};

    /// `(attributes)` of every `<g class="msg…">` in `svg`.
    fn arrows(svg: &str) -> Vec<BTreeMap<String, String>> {
        svg.split("<g class=\"msg")
            .skip(1)
            .map(|g| {
                let head = &g[..g.find('>').unwrap()];
                let mut m = BTreeMap::new();
                if head.starts_with(" undelivered") {
                    m.insert("undelivered".to_string(), String::new());
                }
                for part in head.split(" data-").skip(1) {
                    let (k, v) = part.split_once("=\"").unwrap();
                    m.insert(k.to_string(), v[..v.find('"').unwrap()].to_string());
                }
                m
            })
            .collect()
    }

    fn num(m: &BTreeMap<String, String>, k: &str) -> f64 {
        m[k].parse().unwrap()
    }

    #[test]
    fn every_arrow_runs_down_from_its_send_to_its_receive() {
        let d = duel();
        let svg = trace_svg(&d, &TraceWindow::default());
        let a = arrows(&svg);
        assert_eq!(a.len(), 11);
        let delivered: Vec<_> = a
            .iter()
            .filter(|m| !m.contains_key("undelivered"))
            .collect();
        assert_eq!(delivered.len(), 10);
        for m in &delivered {
            assert!(num(m, "recv-lc") > num(m, "send-lc"), "{m:?}");
            // No receive drawn above (or level with) its send.
            assert!(num(m, "y2") > num(m, "y1"), "{m:?}");
        }
        let lost: Vec<_> = a.iter().filter(|m| m.contains_key("undelivered")).collect();
        assert_eq!(lost.len(), 1);
        assert_eq!(
            (lost[0]["type"].as_str(), lost[0]["to"].as_str()),
            ("Accept", "n3")
        );
        // Drawn in Lamport order of their sends.
        let lcs: Vec<f64> = a.iter().map(|m| num(m, "send-lc")).collect();
        assert!(lcs.windows(2).all(|w| w[0] <= w[1]), "{lcs:?}");
        // A legend entry per type, a lane per node, the leader event.
        for t in ["Accept", "Heartbeat", "Prepare", "Promise"] {
            assert!(
                svg.contains(&format!("class=\"legend-type\" data-type=\"{t}\"")),
                "{t}"
            );
        }
        assert_eq!(svg.matches("<g class=\"lane\"").count(), 3);
        assert!(svg.contains("leader t2"));
        assert!(!svg.contains("cut-note"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    }

    #[test]
    fn the_cut_is_said_and_counted() {
        let d = duel();
        let w = TraceWindow {
            max_arrows: 4,
            ..TraceWindow::default()
        };
        let svg = trace_svg(&d, &w);
        assert_eq!(arrows(&svg).len(), 4);
        assert!(svg.contains("7 later messages not drawn"), "{svg}");
        assert!(svg.contains("--from/--to, --nodes or --types"));
    }

    #[test]
    fn ops_and_faults_are_overlaid_and_text_is_escaped() {
        let mut d = duel();
        d.ops.push(ClientOp {
            label: "write <3>".into(),
            node: Some("n1".into()),
            start_ms: 1_005,
            end_ms: Some(1_020),
            outcome: Outcome::Ok,
        });
        d.faults.push(Fault {
            label: "partition".into(),
            start_ms: 1_010,
            end_ms: 1_016,
        });
        let svg = trace_svg(&d, &TraceWindow::default());
        assert_eq!(svg.matches("<rect class=\"op\"").count(), 1);
        assert!(svg.contains("write &lt;3&gt;: ok"));
        assert_eq!(svg.matches("<g class=\"fault\"").count(), 1);
        assert!(svg.contains("partition +0.110 s"), "{svg}");
    }
}
