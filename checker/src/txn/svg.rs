//! SVG rendering of a cycle explanation, drawn by hand: transactions as
//! boxes on a circle, dependencies as labelled arrows between them. Reads
//! only the explanation data.

use super::explain::Explanation;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The cycle as a standalone SVG document; `None` for non-cycle anomalies.
pub fn render_cycle(e: &Explanation) -> Option<String> {
    let Explanation::Cycle {
        r#type,
        txns,
        steps,
        ..
    } = e
    else {
        return None;
    };
    let n = txns.len().max(1);
    let (bw, bh) = (70.0, 28.0);
    let r = 60.0 + 30.0 * n as f64;
    let size = 2.0 * r + 200.0;
    let (cx, cy) = (size / 2.0, size / 2.0 + 10.0);
    let pos = |i: usize| {
        let a = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
        (cx + r * a.cos(), cy + r * a.sin())
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size:.0}" height="{:.0}" font-family="sans-serif" font-size="12">"#,
        size + 20.0
    );
    s.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>"##);
    let _ = write!(
        s,
        r#"<text x="10" y="18" font-size="14" font-weight="bold">{}</text>"#,
        esc(r#type)
    );
    for st in steps {
        let ((x1, y1), (x2, y2)) = (pos(st.from), pos(st.to));
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        // Shorten the arrow so it meets the box borders, not centres.
        let shrink = |ux: f64, uy: f64| {
            (bw / 2.0 / ux.abs().max(1e-9)).min(bh / 2.0 / uy.abs().max(1e-9)) + 2.0
        };
        let d = shrink(ux, uy);
        let (sx, sy, ex, ey) = (x1 + ux * d, y1 + uy * d, x2 - ux * d, y2 - uy * d);
        let color = match st.kind.as_str() {
            "ww" => "#1f77b4",
            "wr" => "#2ca02c",
            "rw" => "#d62728",
            "process" => "#9467bd",
            _ => "#7f7f7f",
        };
        let _ = write!(
            s,
            r#"<line x1="{sx:.1}" y1="{sy:.1}" x2="{ex:.1}" y2="{ey:.1}" stroke="{color}" stroke-width="2" marker-end="url(#arrow)"/>"#
        );
        let mut label = st.kind.as_str().to_string();
        if let Some(k) = &st.key {
            let _ = write!(label, " k={k}");
        }
        if let Some(v) = &st.value {
            let _ = write!(label, " v={v}");
        }
        // Label beside the midpoint, offset along the normal.
        let (mx, my) = ((sx + ex) / 2.0 - uy * 12.0, (sy + ey) / 2.0 + ux * 12.0);
        let _ = write!(
            s,
            r#"<text x="{mx:.1}" y="{my:.1}" text-anchor="middle" fill="{color}">{}</text>"#,
            esc(&label)
        );
    }
    for (i, t) in txns.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = write!(
            s,
            r##"<g><title>{}</title><rect x="{:.1}" y="{:.1}" width="{bw}" height="{bh}" rx="5" fill="#fff" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">T{}</text></g>"##,
            esc(&t.value.to_string()),
            x - bw / 2.0,
            y - bh / 2.0,
            y + 4.0,
            i + 1
        );
    }
    s.push_str("</svg>");
    Some(s)
}
