//! `timeline.html` for a whole run: every client operation as a bar in its
//! process's lane, over real time (`time`, drawn in seconds), with fault
//! windows shaded and the nemesis's events on a lane of their own.
//!
//! Colours: green `ok`, red `fail`, orange `info` (drawn up to the `info`
//! event; its effect may still come later), grey dashed for operations still
//! open at the end. Every bar has a tooltip with the operation's details.
//!
//! One self-contained file (inline SVG and CSS, no script, no network). At
//! most [`MAX_OPS`] operations are drawn, the first in invocation order; the
//! page says so when it cuts. When the history has no times, the x axis is
//! the event order instead, and the page says that too.

use crate::ops::{self, OpSpan};
use crate::plots::FaultWindow;
use crate::report::secs;
use crate::timeline::escape;
use faultline_checker::{History, Outcome, Process};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Most operations drawn (browsers slow down on much larger SVGs).
pub const MAX_OPS: usize = 20_000;

const LEFT: f64 = 110.0;
const TOP: f64 = 46.0;
const LANE_H: f64 = 18.0;
const BAR_H: f64 = 12.0;
const RIGHT: f64 = 30.0;

/// Renders the run's timeline page.
pub fn render_run_timeline(title: &str, history: &History, windows: &[FaultWindow]) -> String {
    let ev = &history.events;
    let spans = ops::spans(history);
    let total = spans.len();
    let drawn: &[OpSpan] = &spans[..total.min(MAX_OPS)];
    // Real time when every event has it; event order otherwise (mixing the
    // two would misplace bars).
    let timed = !ev.is_empty() && ev.iter().all(|e| e.time.is_some());
    let at = |pos: usize| -> f64 {
        if timed {
            ev[pos].time.unwrap_or(0) as f64
        } else {
            pos as f64
        }
    };
    let end = if timed {
        let last = ev.iter().filter_map(|e| e.time).max().unwrap_or(0);
        last.max(windows.iter().map(|w| w.end_ns).max().unwrap_or(0)) as f64
    } else {
        ev.len() as f64
    }
    .max(1.0);

    // Lanes: the nemesis (when present), then processes in numeric order.
    let has_nemesis = ev.iter().any(|e| e.process.is_nemesis());
    let mut procs: Vec<&Process> = drawn.iter().map(|s| &ev[s.invoke].process).collect();
    procs.sort();
    procs.dedup();
    let first_lane = usize::from(has_nemesis);
    let lane_of: BTreeMap<&Process, usize> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| (*p, i + first_lane))
        .collect();
    let n_lanes = procs.len() + first_lane;

    // Width: about 4 px per operation in the busiest lane, so bars stay
    // visible; the chart scrolls sideways.
    let mut per_lane: BTreeMap<&Process, usize> = BTreeMap::new();
    for s in drawn {
        *per_lane.entry(&ev[s.invoke].process).or_default() += 1;
    }
    let busiest = per_lane.values().copied().max().unwrap_or(0);
    let plot_w = (busiest as f64 * 4.0).clamp(1000.0, 40_000.0);
    let width = LEFT + plot_w + RIGHT;
    let height = TOP + n_lanes as f64 * LANE_H + 10.0;
    let x = |v: f64| LEFT + v / end * plot_w;

    let mut h = String::with_capacity(256 + drawn.len() * 260);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    let _ = writeln!(
        h,
        "<p>{} client operations in {} lanes{}. <a href=\"report.html\">back to the report</a></p>",
        total,
        procs.len(),
        if timed {
            format!(", {} of real time", secs(end as u64))
        } else {
            String::new()
        }
    );
    if total > drawn.len() {
        let _ = writeln!(
            h,
            "<p class=\"warn\">Showing the first {} of {} operations (in invocation order); \
             the rest are in history.jsonl.</p>",
            drawn.len(),
            total
        );
    }
    if !timed {
        h.push_str(
            "<p class=\"warn\">This history has no <code>time</code> on every event: \
             the x axis is the event order, not real time.</p>\n",
        );
    }
    h.push_str(LEGEND);
    let _ = writeln!(
        h,
        "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" \
         height=\"{height:.0}\" font-family=\"monospace\" font-size=\"10\" role=\"img\" \
         aria-label=\"operations per process over time\">"
    );

    // Axis: round ticks, about one per 120 px.
    let step = nice_step(end / (plot_w / 120.0));
    let mut t = 0.0;
    let bottom = height - 6.0;
    while t <= end + step * 1e-9 {
        let px = x(t);
        let label = if timed {
            fmt_secs(t / 1e9)
        } else {
            format!("{t:.0}")
        };
        let _ = write!(
            h,
            "<line class=\"tick\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{}\" y2=\"{bottom:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{}\">{label}</text>",
            TOP - 6.0,
            px + 2.0,
            TOP - 10.0
        );
        t += step;
    }
    let _ = writeln!(
        h,
        "<text class=\"axis\" x=\"4\" y=\"{}\">{}</text>",
        TOP - 10.0,
        if timed { "time (s) →" } else { "event →" }
    );

    // Fault windows behind everything, with their names.
    if timed {
        for w in windows {
            let (x0, x1) = (x(w.start_ns as f64), x(w.end_ns as f64));
            let _ = write!(
                h,
                "<g class=\"fault\"><title>{} from {} to {}</title>\
                 <rect x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{:.1}\"/>\
                 <text x=\"{:.1}\" y=\"{}\">{}</text></g>",
                escape(&w.label),
                secs(w.start_ns),
                secs(w.end_ns),
                TOP - 4.0,
                (x1 - x0).max(1.0),
                height - TOP - 2.0,
                x0 + 3.0,
                TOP + 6.0,
                escape(&w.label)
            );
        }
        h.push('\n');
    }

    // Lane labels and rules.
    let lane_y = |i: usize| TOP + i as f64 * LANE_H;
    if has_nemesis {
        let _ = write!(
            h,
            "<text class=\"lane\" x=\"6\" y=\"{:.1}\">nemesis</text>",
            lane_y(0) + BAR_H
        );
    }
    for (p, &i) in &lane_of {
        let _ = write!(
            h,
            "<text class=\"lane\" x=\"6\" y=\"{:.1}\">process {}</text>\
             <line class=\"rule\" x1=\"{LEFT}\" x2=\"{:.0}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            lane_y(i) + BAR_H,
            escape(&p.to_string()),
            width - RIGHT,
            lane_y(i) + LANE_H - 2.0,
            lane_y(i) + LANE_H - 2.0
        );
    }
    h.push('\n');

    // Nemesis events as ticks on their lane.
    if has_nemesis {
        for (pos, e) in ev
            .iter()
            .enumerate()
            .filter(|(_, e)| e.process.is_nemesis())
        {
            let px = x(at(pos));
            let _ = write!(
                h,
                "<g class=\"nem {}\"><title>nemesis {} {} at {}: {}</title>\
                 <rect x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"{BAR_H}\"/></g>",
                e.kind,
                e.kind,
                escape(&e.f),
                e.time.map(secs).unwrap_or_else(|| format!("event {pos}")),
                escape(&short(&e.value, 300)),
                px - 2.0,
                lane_y(0) + 2.0
            );
        }
        h.push('\n');
    }

    for s in drawn {
        let inv = &ev[s.invoke];
        let lane = lane_of.get(&inv.process).copied().unwrap_or(first_lane);
        let x0 = x(at(s.invoke));
        let x1 = s.complete.map(|c| x(at(c))).unwrap_or(width - RIGHT);
        let w = (x1 - x0).max(1.5);
        let class = match (s.outcome, s.complete) {
            (Outcome::Ok, _) => "ok",
            (Outcome::Fail, _) => "fail",
            (Outcome::Info, Some(_)) => "info",
            (Outcome::Info, None) => "open",
        };
        let done = s.complete.map(|c| &ev[c]);
        let value = match (s.outcome, done) {
            (Outcome::Ok, Some(d)) => {
                format!("{} → {}", short(&inv.value, 80), short(&d.value, 80))
            }
            _ => short(&inv.value, 80),
        };
        let mut tip = format!(
            "process {} {} {}\n{}",
            inv.process,
            inv.f,
            value,
            ops::outcome_str(s.outcome)
        );
        if s.complete.is_none() {
            tip.push_str(" (open at end: unknown)");
        }
        if let Some(k) = &inv.key {
            let _ = write!(tip, "\nkey {}", short(k, 80));
        }
        if let (Some(t0), Some(t1)) = (inv.time, done.and_then(|d| d.time)) {
            let _ = write!(
                tip,
                "\n{} → {} ({:.3} ms)",
                secs(t0),
                secs(t1),
                t1.saturating_sub(t0) as f64 / 1e6
            );
        } else if let Some(t0) = inv.time {
            let _ = write!(tip, "\ninvoked at {}", secs(t0));
        }
        if let Some(n) = &inv.node {
            let _ = write!(tip, "\nnode {n}");
        }
        if let Some(err) = done.and_then(|d| d.error.as_ref()) {
            let _ = write!(tip, "\nerror {}", short(err, 200));
        }
        let _ = write!(tip, "\nline {}", inv.line);
        let y = lane_y(lane) + 2.0;
        let _ = write!(
            h,
            "<g class=\"op {class}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" \
             width=\"{w:.1}\" height=\"{BAR_H}\"/>",
            escape(&tip)
        );
        // Text only where it fits; about 6.5 px per character at 10 px.
        if w >= 40.0 {
            let label = format!("{} {}", inv.f, value);
            let fit = ((w - 6.0) / 6.5) as usize;
            let label: String = if label.chars().count() > fit {
                label
                    .chars()
                    .take(fit.saturating_sub(1))
                    .chain(['…'])
                    .collect()
            } else {
                label
            };
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x0 + 3.0,
                y + BAR_H - 2.5,
                escape(&label)
            );
        }
        h.push_str("</g>\n");
    }
    h.push_str("</svg></div>\n</body></html>\n");
    h
}

/// A value as compact text, cut to `max` characters.
fn short(v: &serde_json::Value, max: usize) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max).chain(['…']).collect()
    }
}

/// 1, 2 or 5 × 10^k, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

fn fmt_secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

const LEGEND: &str = "<p class=\"legend\"><span class=\"k ok\"></span>ok: it happened \
<span class=\"k fail\"></span>fail: it did not \
<span class=\"k info\"></span>info: unknown, may take effect later or never \
<span class=\"k open\"></span>open at the end \
<span class=\"k fault\"></span>fault active. Hover a bar for details.</p>\n";

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}\
.chart{overflow:auto;border:1px solid #ddd;background:#fcfcfc;max-height:85vh}\
svg text{font:10px monospace}.axis{fill:#555}.lane{fill:#333}\
.tick{stroke:#e6e6e6}.rule{stroke:#f0f0f0}\
.fault rect{fill:#9a70d0;fill-opacity:.13}.fault text{fill:#5a3090;font:11px sans-serif}\
.op rect{stroke-width:.6}.op text{fill:#111;pointer-events:none}\
.op.ok rect{fill:#9fd898;stroke:#3a8a30}.op.fail rect{fill:#f29b9b;stroke:#b02020}\
.op.info rect{fill:#ffc870;stroke:#b07000}.op.open rect{fill:#e8e8e8;stroke:#888;stroke-dasharray:3 2}\
.op:hover rect{stroke:#000;stroke-width:1.5}\
.nem rect{fill:#7a40c0}.nem.invoke rect{fill:#c8b0e8}\
.warn{background:#fff1d0;border:1px solid #d9a020;padding:.3em .6em;display:inline-block}\
.legend .k{display:inline-block;width:1.6em;height:.9em;border:1px solid #555;margin:0 4px 0 12px;vertical-align:middle}\
.k.ok{background:#9fd898}.k.fail{background:#f29b9b}.k.info{background:#ffc870}\
.k.open{background:#e8e8e8;border-style:dashed}.k.fault{background:#e6dcf4}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_seconds_are_round() {
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(fmt_secs(2.5), "2.5");
        assert_eq!(fmt_secs(10.0), "10");
    }
}
