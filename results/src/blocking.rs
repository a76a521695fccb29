//! 2PC's blocking window in the report: the `blocking` field of a twopc
//! run's results.json (computed by the runner from the participants' logs,
//! see `faultline_targets::twopc::blocking_window`) as a summary table and
//! a timeline — the coordinator's faults in one lane, each participant's
//! long prepared periods in its own — so the "single point of blocking"
//! shows: the bars line up with the coordinator's downtime. Reads only.

use crate::timeline::escape;
use serde_json::Value;
use std::fmt::Write;

const W: f64 = 960.0;
const LEFT: f64 = 110.0;
const LANE: f64 = 26.0;
const TOP: f64 = 22.0;

/// The section, when `results` has a `blocking` field.
pub fn section(h: &mut String, results: &Value) {
    let Some(b) = results.get("blocking").filter(|b| b.is_object()) else {
        return;
    };
    let num = |k: &str| b[k].as_u64().unwrap_or(0);
    let _ = write!(
        h,
        "<section id=\"blocking\"><h2>2PC blocking window</h2>\
         <p>{}</p><table class=\"kv\">\
         <tr><th>prepared periods</th><td>{} ({} committed, {} recovered after a restart)</td></tr>\
         <tr><th>blocked, median / p99 / max</th><td>{} / {} / {} ms</td></tr>\
         <tr><th>overlapping a coordinator fault</th><td>{}</td></tr></table>",
        escape(b["about"].as_str().unwrap_or("")),
        num("periods"),
        num("committed"),
        num("recovered"),
        num("median_ms"),
        num("p99_ms"),
        num("max_ms"),
        num("in_coordinator_faults"),
    );
    let faults = b["coordinator_faults"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !faults.is_empty() {
        h.push_str(
            "<table class=\"kv\"><tr><th>coordinator fault</th><th>from (s)</th>\
             <th>lasted (ms)</th><th>prepared periods overlapping</th><th>longest (ms)</th>\
             <th>prepared when it struck</th><th>longest of those (ms)</th></tr>",
        );
        for f in &faults {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                escape(f["fault"].as_str().unwrap_or("fault")),
                f["start_s"].as_f64().unwrap_or(0.0),
                f["down_ms"].as_u64().unwrap_or(0),
                f["blocked"].as_u64().unwrap_or(0),
                f["max_blocked_ms"]
                    .as_u64()
                    .map_or("–".to_string(), |m| m.to_string()),
                f["caught"].as_u64().unwrap_or(0),
                f["max_caught_ms"]
                    .as_u64()
                    .map_or("–".to_string(), |m| m.to_string()),
            );
        }
        h.push_str("</table>");
    }
    h.push_str(&timeline_svg(b, &faults));
    h.push_str("</section>\n");
}

/// Lanes: the coordinator's faults, then one per participant with its
/// periods of at least `listed_from_ms` (blue committed, orange aborted).
fn timeline_svg(b: &Value, faults: &[Value]) -> String {
    let long = b["long"].as_array().cloned().unwrap_or_default();
    let mut nodes: Vec<String> = long
        .iter()
        .filter_map(|p| p["node"].as_str().map(str::to_string))
        .collect();
    nodes.sort();
    nodes.dedup();
    let span = |v: &Value| {
        (
            v["start_s"].as_f64().unwrap_or(0.0),
            v["end_s"].as_f64().unwrap_or(0.0),
        )
    };
    let t_end = long
        .iter()
        .chain(faults)
        .map(|v| span(v).1)
        .fold(1.0_f64, f64::max);
    let x = |t: f64| LEFT + (t.max(0.0) / t_end) * (W - LEFT - 10.0);
    let height = TOP + LANE * (nodes.len() as f64 + 1.0) + 24.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<div class=\"svg\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" \
         height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <text x=\"{LEFT}\" y=\"14\">prepared periods ≥ {} ms against the coordinator's faults \
         (seconds since the start)</text>",
        b["listed_from_ms"].as_u64().unwrap_or(0)
    );
    let lane_y = |i: usize| TOP + LANE * i as f64;
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{}\">n1 faults</text>",
        lane_y(0) + 16.0
    );
    for f in faults {
        let (a, e) = span(f);
        let _ = write!(
            s,
            "<rect class=\"coord-fault\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"20\" \
             fill=\"#d62728\" fill-opacity=\"0.35\"><title>{} {a:.2}–{e:.2} s</title></rect>",
            x(a),
            lane_y(0) + 2.0,
            (x(e) - x(a)).max(1.0),
            escape(f["fault"].as_str().unwrap_or("fault"))
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let y = lane_y(i + 1);
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{}\">{} blocked</text>",
            y + 16.0,
            escape(n)
        );
        for p in long.iter().filter(|p| p["node"].as_str() == Some(n)) {
            let (a, e) = span(p);
            let committed = p["committed"].as_bool() == Some(true);
            let _ = write!(
                s,
                "<rect class=\"blocked\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"20\" \
                 fill=\"{}\"><title>{} {} {} ms ({})</title></rect>",
                x(a),
                y + 2.0,
                (x(e) - x(a)).max(1.0),
                if committed { "#1f77b4" } else { "#ff7f0e" },
                escape(n),
                escape(p["tid"].as_str().unwrap_or("")),
                p["ms"].as_u64().unwrap_or(0),
                if committed { "committed" } else { "aborted" }
            );
        }
    }
    // The time axis: a tick every whole second or every 5/10 s.
    let axis_y = TOP + LANE * (nodes.len() as f64 + 1.0) + 4.0;
    let step = if t_end > 60.0 {
        10.0
    } else if t_end > 15.0 {
        5.0
    } else {
        1.0
    };
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#888\"/>",
        W - 10.0
    );
    let mut t = 0.0;
    while t <= t_end {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.0}</text>",
            x(t),
            axis_y + 14.0
        );
        t += step;
    }
    s.push_str("</svg></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_blocked_periods_against_the_coordinator_faults() {
        let r = json!({"valid": true, "blocking": {
        "about": "a < b", "periods": 3, "committed": 1, "recovered": 0,
        "median_ms": 4, "p99_ms": 1500, "max_ms": 1510, "in_coordinator_faults": 2,
        "listed_from_ms": 50,
        "coordinator_faults": [{"fault": "kill", "start_s": 1.5, "end_s": 3.0,
            "down_ms": 1500, "blocked": 2, "max_blocked_ms": 1510}],
        "long": [
            {"node": "n2", "tid": "1.2", "start_s": 1.49, "end_s": 3.0, "ms": 1510, "committed": false},
            {"node": "n3", "tid": "1.2", "start_s": 1.5, "end_s": 2.99, "ms": 1490, "committed": true}
        ]}});
        let mut h = String::new();
        section(&mut h, &r);
        assert!(h.contains("2PC blocking window"), "{h}");
        assert!(h.contains("a &lt; b"), "escaped: {h}");
        assert!(h.contains("4 / 1500 / 1510 ms"), "{h}");
        assert_eq!(h.matches("class=\"coord-fault\"").count(), 1, "{h}");
        assert_eq!(h.matches("class=\"blocked\"").count(), 2, "{h}");
        assert!(h.contains("n2 blocked") && h.contains("n3 blocked"), "{h}");
        let mut none = String::new();
        section(&mut none, &json!({"valid": true}));
        assert!(none.is_empty());
    }
}
