//! The index page and directory listings of `faultline serve`: one
//! self-contained HTML file each (inline CSS, SVG and a few lines of script
//! for the filters; nothing fetched from the network).
//!
//! Filters (target, workload, verdict, free text) run in the browser over
//! the rows' `data-*` attributes and mirror themselves into the query
//! string, so `/?verdict=invalid` is a link to the failures. Trends are per
//! test, oldest to newest: a pass/fail strip (one square per run, linking
//! to its report) and sparklines of throughput and median latency.

use super::{Index, RunInfo, display_time};
use crate::timeline::escape;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Runs per test drawn in the trend strip and sparklines (the newest).
pub const TREND_RUNS: usize = 60;

/// Colour of a verdict, shared by badges and the strip.
fn colour(verdict: &str) -> &'static str {
    match verdict {
        "valid" => "#2e7d32",
        "invalid" => "#c62828",
        "unknown" => "#ef6c00",
        _ => "#9e9e9e",
    }
}

fn options(h: &mut String, id: &str, label: &str, values: &[&str]) {
    let _ = write!(
        h,
        "<label>{label} <select id=\"f-{id}\" name=\"{id}\"><option value=\"\">all</option>"
    );
    for v in values {
        let _ = write!(h, "<option>{}</option>", escape(v));
    }
    h.push_str("</select></label>\n");
}

fn distinct<'a>(runs: &'a [RunInfo], f: impl Fn(&'a RunInfo) -> &'a str) -> Vec<&'a str> {
    let mut v: Vec<&str> = runs.iter().map(f).filter(|s| !s.is_empty()).collect();
    v.sort();
    v.dedup();
    v
}

/// Renders the index of every run. `store_label` names the store (its
/// path) in the heading.
pub fn render_index(idx: &Index, store_label: &str) -> String {
    let mut h = String::with_capacity(16 * 1024 + idx.runs.len() * 700);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>faultline runs</title>\n<style>{CSS}</style></head><body>\n\
         <h1>faultline runs</h1>\n<p class=\"sub\">store <code>{}</code> · {} runs · \
         <a href=\"/index.json\">index.json</a></p>\n",
        escape(store_label),
        idx.runs.len()
    );
    if idx.runs.is_empty() {
        h.push_str(
            "<p>No runs in this store yet. Run <code>faultline test --store DIR</code> \
             and reload.</p>\n",
        );
    }

    h.push_str("<form id=\"filters\" onsubmit=\"return false\">\n");
    options(
        &mut h,
        "target",
        "target",
        &distinct(&idx.runs, |r| &r.target),
    );
    options(
        &mut h,
        "workload",
        "workload",
        &distinct(&idx.runs, |r| &r.workload),
    );
    options(
        &mut h,
        "verdict",
        "verdict",
        &["valid", "invalid", "unknown", "incomplete"],
    );
    let _ = write!(
        h,
        "<label>text <input id=\"f-q\" name=\"q\" type=\"search\" \
         placeholder=\"test, nemesis, anomaly, seed…\"></label>\n\
         <span id=\"count\">{n} of {n} runs</span></form>\n",
        n = idx.runs.len()
    );

    if !idx.matrices.is_empty() {
        h.push_str("<h2>Matrix runs</h2>\n<ul class=\"matrices\">\n");
        for m in &idx.matrices {
            let _ = writeln!(
                h,
                "<li><a href=\"/runs/{p}/summary.html\">{t}</a> · {n} runs · worst \
                 <span class=\"badge\" style=\"background:{c}\">{w}</span> · \
                 <a href=\"/runs/{p}/junit.xml\">junit.xml</a></li>",
                p = escape(&m.path),
                t = escape(&display_time(&m.time)),
                n = m.runs.map_or("?".into(), |n| n.to_string()),
                w = escape(m.worst.as_deref().unwrap_or("?")),
                c = colour(m.worst.as_deref().unwrap_or("")),
            );
        }
        h.push_str("</ul>\n");
    }

    trends(&mut h, &idx.runs);
    table(&mut h, &idx.runs);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    h
}

fn trends(h: &mut String, runs: &[RunInfo]) {
    // Oldest first per test (runs come newest first).
    let mut by_test: BTreeMap<&str, Vec<&RunInfo>> = BTreeMap::new();
    for r in runs.iter().rev() {
        by_test.entry(&r.test).or_default().push(r);
    }
    if by_test.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Trends</h2>\n<p class=\"sub\">per test, oldest → newest (last runs only): \
         verdicts, ops/s, median latency</p>\n<table class=\"trends\">\n",
    );
    for (test, rs) in by_test {
        let rs = &rs[rs.len().saturating_sub(TREND_RUNS)..];
        let _ = write!(
            h,
            "<tr class=\"trend\" data-test=\"{}\"><th>{}</th><td>",
            escape(test),
            escape(test)
        );
        strip(h, rs);
        h.push_str("</td><td>");
        sparkline(
            h,
            "ops/s",
            &rs.iter().map(|r| r.ops_per_sec).collect::<Vec<_>>(),
            "",
        );
        h.push_str("</td><td>");
        sparkline(
            h,
            "p50",
            &rs.iter().map(|r| r.latency_p50_ms).collect::<Vec<_>>(),
            " ms",
        );
        h.push_str("</td></tr>\n");
    }
    h.push_str("</table>\n");
}

/// One square per run, coloured by verdict, linking to its report.
fn strip(h: &mut String, rs: &[&RunInfo]) {
    let w = rs.len() * 10;
    let _ = write!(
        h,
        "<svg class=\"strip\" width=\"{w}\" height=\"16\" viewBox=\"0 0 {w} 16\" \
         role=\"img\" aria-label=\"verdicts\">"
    );
    for (i, r) in rs.iter().enumerate() {
        let _ = write!(
            h,
            "<a href=\"/runs/{p}/report.html\"><rect x=\"{x}\" y=\"1\" width=\"8\" \
             height=\"14\" rx=\"1\" fill=\"{c}\"><title>{t}: {v}{a}</title></rect></a>",
            p = escape(&r.path),
            x = i * 10,
            c = colour(r.verdict_word()),
            t = escape(&display_time(&r.time)),
            v = escape(r.verdict_word()),
            a = if r.anomaly_types.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&r.anomaly_types.join(", ")))
            },
        );
    }
    h.push_str("</svg>");
}

/// A sparkline of the values present (gaps are skipped), with the last
/// value and the range as text.
fn sparkline(h: &mut String, label: &str, values: &[Option<f64>], unit: &str) {
    let pts: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v)))
        .collect();
    let Some(&(_, last)) = pts.last() else {
        let _ = write!(h, "<span class=\"spark-none\">{label}: —</span>");
        return;
    };
    let (lo, hi) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, v)| {
        (lo.min(v), hi.max(v))
    });
    let (w, ht) = (120.0, 20.0);
    let n = values.len().max(2) - 1;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let coords: Vec<String> = pts
        .iter()
        .map(|&(i, v)| {
            let x = i as f64 * w / n as f64;
            let y = ht - 1.0 - (v - lo) / span * (ht - 2.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        h,
        "<svg class=\"spark\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" \
         role=\"img\" aria-label=\"{label}\"><polyline fill=\"none\" stroke=\"#1565c0\" \
         stroke-width=\"1.5\" points=\"{}\"/>",
        coords.join(" ")
    );
    if let Some(last) = coords.last() {
        let (x, y) = last.split_once(',').unwrap_or(("0", "0"));
        let _ = write!(
            h,
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"2\" fill=\"#1565c0\"/>"
        );
    }
    let _ = write!(
        h,
        "</svg> <span class=\"spark-label\">{label} {} <small>({}–{})</small></span>",
        num(last, unit),
        num(lo, unit),
        num(hi, unit)
    );
}

fn num(v: f64, unit: &str) -> String {
    if v >= 100.0 {
        format!("{v:.0}{unit}")
    } else if v >= 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.2}{unit}")
    }
}

fn table(h: &mut String, runs: &[RunInfo]) {
    h.push_str(
        "<h2>Runs</h2>\n<table id=\"runs\"><thead><tr><th>time (UTC)</th><th>test</th>\
         <th>target</th><th>workload</th><th>nemesis</th><th>seed</th><th>verdict</th>\
         <th>anomalies</th><th>ops/s</th><th>p50</th><th>files</th></tr></thead><tbody>\n",
    );
    for r in runs {
        let nemesis = if r.nemesis.is_empty() {
            "none".to_string()
        } else {
            r.nemesis.join(",")
        };
        let seed = r.seed.map(|s| s.to_string()).unwrap_or_default();
        let mut anomalies = r.anomaly_types.join(", ");
        if anomalies.is_empty()
            && let Some(reason) = &r.reason
        {
            anomalies = reason.chars().take(120).collect();
        }
        let text = format!(
            "{} {} {} {} {} {} {} {} {} {}",
            r.test,
            r.time,
            r.target,
            r.workload,
            nemesis,
            seed,
            r.verdict_word(),
            r.anomaly_types.join(" "),
            r.bugs.join(" "),
            r.reason.as_deref().unwrap_or("")
        )
        .to_lowercase();
        let time = escape(&display_time(&r.time));
        let p = escape(&r.path);
        let time_cell = if r.has_report {
            format!("<a class=\"report\" href=\"/runs/{p}/report.html\">{time}</a>")
        } else {
            time
        };
        let _ = writeln!(
            h,
            "<tr class=\"run\" data-test=\"{test}\" data-target=\"{target}\" \
             data-workload=\"{workload}\" data-verdict=\"{verdict}\" data-text=\"{text}\">\
             <td>{time_cell}</td><td>{test}</td><td>{target}{bugs}</td><td>{workload}</td>\
             <td>{nemesis}</td><td>{seed}</td><td><span class=\"badge\" \
             style=\"background:{c}\">{verdict}</span></td><td class=\"anom\">{anomalies}</td>\
             <td class=\"n\">{ops}</td><td class=\"n\">{lat}</td>\
             <td><a href=\"/runs/{p}/\">files</a> · <a href=\"/zip/{p}.zip\">zip</a></td></tr>",
            test = escape(&r.test),
            target = escape(&r.target),
            bugs = if r.bugs.is_empty() {
                String::new()
            } else {
                format!(" <small>bug {}</small>", escape(&r.bugs.join(",")))
            },
            workload = escape(&r.workload),
            verdict = escape(r.verdict_word()),
            text = escape(&text),
            nemesis = escape(&nemesis),
            c = colour(r.verdict_word()),
            anomalies = escape(&anomalies),
            ops = r.ops_per_sec.map(|v| num(v, "")).unwrap_or_default(),
            lat = r.latency_p50_ms.map(|v| num(v, " ms")).unwrap_or_default(),
        );
    }
    h.push_str("</tbody></table>\n");
}

/// A directory of a run (`nodes/`, or a run without a report): its files
/// with sizes. `rel` is the directory's path under the store; entries are
/// (name, is_dir, size).
pub fn render_dir_listing(rel: &str, entries: &[(String, bool, u64)]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title>\n<style>{CSS}</style></head><body>\n\
         <p class=\"sub\"><a href=\"/\">all runs</a></p><h1>{t}</h1>\n<table>\n",
        t = escape(rel)
    );
    for (name, is_dir, size) in entries {
        let n = escape(name);
        let slash = if *is_dir { "/" } else { "" };
        let _ = writeln!(
            h,
            "<tr><td><a href=\"{n}{slash}\">{n}{slash}</a></td><td class=\"n\">{}</td></tr>",
            if *is_dir {
                String::new()
            } else {
                size.to_string()
            }
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{margin:0 0 .2em}h2{margin:1.2em 0 .4em;font-size:1.15em}\
.sub{color:#666;margin:.2em 0}\
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;\
text-align:left;vertical-align:middle}\
#runs th{background:#f5f5f5;position:sticky;top:0}\
.n{text-align:right;font-variant-numeric:tabular-nums}\
.badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px}\
.anom{max-width:28em;color:#b71c1c}\
#filters{display:flex;gap:1em;flex-wrap:wrap;align-items:center;background:#fafafa;\
padding:.6em;border:1px solid #eee;border-radius:4px}\
#count{color:#555}.trends th{font-weight:600}.spark-label{color:#555;font-size:12px}\
.spark-none{color:#999;font-size:12px}tr[hidden]{display:none}";

const SCRIPT: &str = "
(function(){
  var keys=['target','workload','verdict','q'];
  function el(k){return document.getElementById('f-'+k);}
  function apply(){
    var f={};keys.forEach(function(k){f[k]=el(k).value;});
    var q=f.q.trim().toLowerCase(), n=0, tests={};
    var rows=document.querySelectorAll('tr.run');
    rows.forEach(function(r){
      var ok=(!f.target||r.dataset.target===f.target)&&
        (!f.workload||r.dataset.workload===f.workload)&&
        (!f.verdict||r.dataset.verdict===f.verdict)&&
        (!q||q.split(/\\s+/).every(function(w){return r.dataset.text.indexOf(w)>=0;}));
      r.hidden=!ok; if(ok){n++;tests[r.dataset.test]=1;}
    });
    document.querySelectorAll('tr.trend').forEach(function(t){t.hidden=!tests[t.dataset.test];});
    document.getElementById('count').textContent=n+' of '+rows.length+' runs';
    var u=new URLSearchParams();
    keys.forEach(function(k){if(f[k])u.set(k,f[k]);});
    var s=u.toString();
    history.replaceState(null,'',s?'?'+s:location.pathname);
  }
  var p=new URLSearchParams(location.search);
  keys.forEach(function(k){
    var v=p.get(k); var e=el(k);
    if(v!==null){
      if(e.tagName==='SELECT'&&![].some.call(e.options,function(o){return o.value===v;})){
        var o=document.createElement('option');o.textContent=v;e.appendChild(o);}
      e.value=v;}
    e.addEventListener('input',apply);e.addEventListener('change',apply);
  });
  apply();
})();
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::MatrixInfo;

    fn run(test: &str, time: &str, verdict: &str, ops: Option<f64>) -> RunInfo {
        RunInfo {
            test: test.into(),
            time: time.into(),
            path: format!("{test}/{time}"),
            target: test.split('-').next().unwrap_or("").into(),
            workload: "register".into(),
            nemesis: vec!["partition".into()],
            seed: Some(3),
            bugs: vec![],
            verdict: match verdict {
                "valid" => Some(faultline_checker::Verdict::Valid),
                "invalid" => Some(faultline_checker::Verdict::Invalid),
                "unknown" => Some(faultline_checker::Verdict::Unknown),
                _ => None,
            },
            anomaly_types: if verdict == "invalid" {
                vec!["G1c".into()]
            } else {
                vec![]
            },
            reason: None,
            ops_per_sec: ops,
            latency_p50_ms: ops.map(|o| o / 100.0),
            has_report: true,
        }
    }

    #[test]
    fn index_has_rows_filters_trends_and_escapes() {
        let idx = Index {
            runs: vec![
                run(
                    "raft-register",
                    "20261126T020000.000Z",
                    "invalid",
                    Some(50.0),
                ),
                run(
                    "etcd-register",
                    "20261126T010000.000Z",
                    "valid",
                    Some(200.0),
                ),
                run("etcd-register", "20261126T000000.000Z", "valid", None),
                run("<x>-register", "20261125T000000.000Z", "unknown", Some(1.0)),
            ],
            matrices: vec![MatrixInfo {
                time: "20261126T030000.000Z".into(),
                path: "matrix/20261126T030000.000Z".into(),
                worst: Some("invalid".into()),
                runs: Some(8),
            }],
        };
        let page = render_index(&idx, "store");
        assert_eq!(page.matches("<tr class=\"run\"").count(), 4);
        assert_eq!(page.matches("<tr class=\"trend\"").count(), 3);
        assert!(page.contains("<option>etcd</option>") && page.contains("<option>raft</option>"));
        assert!(page.contains("id=\"f-verdict\"") && page.contains("id=\"f-q\""));
        assert!(page.contains(
            "href=\"/runs/raft-register/20261126T020000.000Z/report.html\">2026-11-26 02:00:00Z"
        ));
        assert!(page.contains("/zip/etcd-register/20261126T010000.000Z.zip"));
        assert!(page.contains("/runs/matrix/20261126T030000.000Z/summary.html"));
        // Nothing from the store reaches the page unescaped.
        assert!(!page.contains("<x>") && page.contains("&lt;x&gt;"));
        // etcd-register's strip has two squares; one run has no ops/s, so
        // its sparkline has one point.
        let etcd = page
            .split("data-test=\"etcd-register\"><th>")
            .nth(1)
            .and_then(|s| s.split("</tr>").next())
            .unwrap();
        assert_eq!(etcd.matches("<rect").count(), 2);
        assert!(etcd.contains("ops/s 200"), "{etcd}");
    }

    #[test]
    fn sparkline_scales_into_its_box() {
        let mut h = String::new();
        sparkline(
            &mut h,
            "ops/s",
            &[Some(1.0), None, Some(3.0), Some(2.0)],
            "",
        );
        assert!(h.contains("points=\"0.0,19.0 80.0,1.0 120.0,10.0\""), "{h}");
        let mut h = String::new();
        sparkline(&mut h, "p50", &[None, None], " ms");
        assert!(h.contains("p50: —"));
        let mut h = String::new();
        sparkline(&mut h, "p50", &[Some(5.0)], " ms");
        assert!(h.contains("p50 5.00 ms"), "{h}");
    }

    #[test]
    fn listing_links_relative() {
        let page = render_dir_listing(
            "etcd-register/x/nodes",
            &[("n1".into(), true, 0), ("a&b.log".into(), false, 12)],
        );
        assert!(page.contains("<a href=\"n1/\">n1/</a>"));
        assert!(page.contains("<a href=\"a&amp;b.log\">a&amp;b.log</a>"));
    }
}
