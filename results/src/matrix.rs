//! `faultline matrix`'s outputs: `summary.json` (the [`Summary`], the
//! contract) and its two printers, `junit.xml` ([`junit_xml`]) and
//! `summary.html` ([`summary_html`]). The matrix itself (running the
//! plans) is in the binary; these only read a summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

/// One combination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub target: String,
    pub workload: String,
    pub nemesis: String,
    pub seed: u64,
}

impl Cell {
    pub fn label(&self) -> String {
        format!(
            "{} {} nemesis={} seed={}",
            self.target, self.workload, self.nemesis, self.seed
        )
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Valid,
    Invalid,
    Unknown,
    /// Setup, SSH or the cluster failed, or `test` refused the options.
    Failed,
    /// Not started: the matrix was interrupted.
    NotRun,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Unknown => "unknown",
            Status::Failed => "failed",
            Status::NotRun => "not-run",
        }
    }
    /// invalid > failed > unknown (and not run) > valid.
    pub fn rank(self) -> u8 {
        match self {
            Status::Valid => 0,
            Status::Unknown | Status::NotRun => 1,
            Status::Failed => 2,
            Status::Invalid => 3,
        }
    }
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Valid => 0,
            Status::Invalid => 1,
            Status::Unknown | Status::NotRun => 2,
            Status::Failed => 3,
        }
    }
    pub fn from_exit(code: Option<i32>) -> Status {
        match code {
            Some(0) => Status::Valid,
            Some(1) => Status::Invalid,
            Some(2) => Status::Unknown,
            _ => Status::Failed,
        }
    }
}

/// One run's outcome, as summary.json lists it.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub cell: Cell,
    pub status: Status,
    /// `faultline test`'s exit code (`None`: killed by a signal, or not run).
    pub exit_code: Option<i32>,
    pub anomaly_types: Vec<String>,
    /// Why it is unknown or failed.
    pub reason: Option<String>,
    /// The run directory in the store, and its path relative to the store.
    pub run_dir: Option<PathBuf>,
    pub run_path: Option<String>,
    pub report: Option<PathBuf>,
    /// The run's stdout+stderr, relative to the matrix directory.
    pub log: String,
    pub duration_s: f64,
}

/// The whole matrix, as summary.json holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub file: PathBuf,
    pub started: String,
    pub duration_s: f64,
    pub store: PathBuf,
    pub interrupted: bool,
    pub worst: Status,
    pub exit_code: u8,
    pub counts: BTreeMap<&'static str, usize>,
    pub report_url: Option<String>,
    pub runs: Vec<CellResult>,
}

/// Text safe inside XML: escaped, and without characters XML 1.0 forbids
/// (terminal escapes from a log would make the file unreadable).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Where a run's report is linked from the matrix directory's files:
/// `report_url` when set, else relative (`../../<test>/<time>/report.html`,
/// the store layout), else the absolute path.
fn report_link(s: &Summary, r: &CellResult) -> Option<String> {
    let rp = r.run_path.as_ref()?;
    Some(match &s.report_url {
        Some(u) => format!("{}/runs/{rp}/report.html", u.trim_end_matches('/')),
        None => format!("../../{rp}/report.html"),
    })
}

/// `junit.xml`: one testsuite, one testcase per run.
pub fn junit_xml(s: &Summary) -> String {
    let count = |st: &[Status]| s.runs.iter().filter(|r| st.contains(&r.status)).count();
    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        x,
        "<testsuites name=\"faultline matrix {n}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" \
         skipped=\"{k}\" time=\"{d:.3}\">",
        n = xml(&s.name),
        t = s.runs.len(),
        f = count(&[Status::Invalid]),
        e = count(&[Status::Unknown, Status::Failed]),
        k = count(&[Status::NotRun]),
        d = s.duration_s
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{n}\" timestamp=\"{ts}\" tests=\"{t}\" failures=\"{f}\" \
         errors=\"{e}\" skipped=\"{k}\" time=\"{d:.3}\">",
        n = xml(&s.name),
        ts = xml(&s.started),
        t = s.runs.len(),
        f = count(&[Status::Invalid]),
        e = count(&[Status::Unknown, Status::Failed]),
        k = count(&[Status::NotRun]),
        d = s.duration_s
    );
    for r in &s.runs {
        let c = &r.cell;
        let _ = write!(
            x,
            "    <testcase classname=\"faultline.{t}.{w}\" name=\"nemesis={n} seed={seed}\" \
             time=\"{d:.3}\"",
            t = xml(&c.target),
            w = xml(&c.workload),
            n = xml(&c.nemesis),
            seed = c.seed,
            d = r.duration_s
        );
        let link = report_link(s, r);
        let mut detail = String::new();
        if let Some(rep) = &r.report {
            let _ = writeln!(detail, "report: {}", rep.display());
        }
        if let Some(l) = &link {
            let _ = writeln!(detail, "link: {l}");
        }
        let _ = writeln!(detail, "log: {}", r.log);
        let _ = writeln!(
            detail,
            "exit code: {}",
            r.exit_code.map_or("none".into(), |c| c.to_string())
        );
        let body = match r.status {
            Status::Valid => None,
            Status::Invalid => {
                let types = if r.anomaly_types.is_empty() {
                    "no anomaly types recorded (see the report)".to_string()
                } else {
                    r.anomaly_types.join(", ")
                };
                Some(format!(
                    "<failure type=\"invalid\" message=\"invalid: {}{}\">{}</failure>",
                    xml(&types),
                    link.as_ref()
                        .map(|l| format!(" — {}", xml(l)))
                        .unwrap_or_default(),
                    xml(&format!("anomalies: {types}\n{detail}"))
                ))
            }
            Status::Unknown | Status::Failed => Some(format!(
                "<error type=\"{}\" message=\"{}: {}\">{}</error>",
                r.status.name(),
                r.status.name(),
                xml(r.reason.as_deref().unwrap_or("see the log")),
                xml(&detail)
            )),
            Status::NotRun => Some(format!(
                "<skipped message=\"{}\"/>",
                xml(r.reason.as_deref().unwrap_or("not run"))
            )),
        };
        match body {
            None => {
                let _ = writeln!(
                    x,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml(&detail)
                );
            }
            Some(b) => {
                let _ = writeln!(x, ">\n      {b}\n    </testcase>");
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// `summary.html`: the matrix as a table, linking each report and log.
pub fn summary_html(s: &Summary) -> String {
    use crate::timeline::escape;
    let colour = |st: Status| match st {
        Status::Valid => "#2e7d32",
        Status::Invalid => "#c62828",
        Status::Unknown => "#ef6c00",
        Status::Failed => "#6a1b9a",
        Status::NotRun => "#9e9e9e",
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>matrix {n} — {t}</title>\
         <style>body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
         td,th{{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}}\
         .b{{color:#fff;border-radius:3px;padding:1px 6px}}</style></head><body>\n\
         <h1>matrix {n}</h1>\n<p>started {t} · {runs} runs in {d:.0} s · worst \
         <span class=\"b\" style=\"background:{c}\">{w}</span> (exit {x}){i} · \
         <a href=\"summary.json\">summary.json</a> · <a href=\"junit.xml\">junit.xml</a></p>\n<p>",
        n = escape(&s.name),
        t = escape(&crate::serve::display_time(&s.started)),
        runs = s.runs.len(),
        d = s.duration_s,
        c = colour(s.worst),
        w = s.worst.name(),
        x = s.exit_code,
        i = if s.interrupted { " · interrupted" } else { "" },
    );
    for (k, v) in &s.counts {
        let _ = write!(h, "{v} {k} · ");
    }
    h.push_str(
        "</p>\n<table><tr><th>#</th><th>target</th><th>workload</th><th>nemesis</th><th>seed</th>\
         <th>verdict</th><th>anomalies / reason</th><th>time</th><th>report</th><th>log</th></tr>\n",
    );
    for (i, r) in s.runs.iter().enumerate() {
        let c = &r.cell;
        let what = if r.anomaly_types.is_empty() {
            r.reason.clone().unwrap_or_default()
        } else {
            r.anomaly_types.join(", ")
        };
        let report = report_link(s, r)
            .map(|l| format!("<a href=\"{}\">report</a>", escape(&l)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"b\" \
             style=\"background:{}\">{}</span></td><td>{}</td><td>{:.1} s</td><td>{report}</td>\
             <td><a href=\"{}\">log</a></td></tr>",
            i + 1,
            escape(&c.target),
            escape(&c.workload),
            escape(&c.nemesis),
            c.seed,
            colour(r.status),
            r.status.name(),
            escape(&what),
            r.duration_s,
            escape(&r.log),
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}
