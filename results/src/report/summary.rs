//! The summary card (what ran, counts, throughput, latency, each fault
//! window against the healthy baseline) and the plots.

use super::*;
/// Operation counts, throughput and latency of a run, overall and per
/// fault window against the healthy baseline (ops invoked outside every
/// window). Measurements of the history for the card; no verdict.
pub(super) struct RunStats {
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
pub(super) struct WindowStats {
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
    pub(super) fn new(history: &History, spans: &[OpSpan], windows: &[FaultWindow]) -> RunStats {
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
pub(super) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
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
pub(super) fn sig3(x: f64) -> String {
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

pub(super) fn percent(x: f64) -> String {
    let p = x * 100.0;
    if p > 99.95 && p < 100.0 {
        // 99.97 % must not read as 100 %.
        format!("{p:.2} %")
    } else {
        format!("{} %", sig3(p))
    }
}

/// What ran (from test.json, or the runner's `run` field) and how it went.
pub(super) fn summary_card(h: &mut String, inp: &ReportInput<'_>, s: &RunStats) {
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

pub(super) fn plots(h: &mut String, plots: &[(&str, Result<(), String>)]) {
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
