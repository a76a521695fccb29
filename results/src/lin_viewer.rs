//! The linearizability failure viewer: one tab per key that is not
//! linearizable; in each, the key's operations as bars per process over
//! time, cropped to the failing window (the minimal counterexample, the
//! operation the search could not pass and those tried in its place) with
//! empty lanes hidden; the minimal counterexample highlighted; a step
//! control that walks the longest linearization the search reached one
//! operation at a time, naming the model state after each, and ends on the
//! operation that cannot follow; hovering a bar shows its invoke and
//! complete times, values and file lines.
//!
//! Like Porcupine's visualiser (which shows, per partition, the partial
//! linearizations and the states along them), but drawn by faultline: the
//! SVG is made here, a few lines of inline script move the step and tabs,
//! and nothing is fetched, so it works from a file with no server.
//!
//! [`LinKeyView::build`] gathers what a key's tab shows from the checker's
//! result (and replays the linearization through the model for the
//! states); [`render`] draws tabs; [`CSS`] and [`JS`] go once per page.
//! A run report can embed the viewer the same way `check --html` does.

use crate::timeline::escape;
use faultline_checker::linear::{KeyResult, key_name};
use faultline_checker::model::ModelSpec;
use faultline_checker::model::replay::replay;
use faultline_checker::{History, Operation, Outcome, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One operation as the viewer draws it.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewOp {
    /// `Operation::id`.
    pub id: usize,
    pub process: String,
    /// Event position of the invocation (the x axis is event order).
    pub start: u64,
    /// Event position of the completion; `None` for an unknown outcome
    /// (`info`): it may take effect any time later, or never.
    pub end: Option<u64>,
    /// Short text on the bar, e.g. `put "x" "a"` or `read → 3`.
    pub label: String,
    /// `ok`, `info` (unknown outcome).
    pub outcome: String,
    /// Times in nanoseconds, when the history has them.
    pub invoke_time: Option<u64>,
    pub complete_time: Option<u64>,
    pub invoke_line: usize,
    pub complete_line: Option<usize>,
    /// Position in the minimal counterexample (1-based, as its prose
    /// numbers it).
    pub minimal: Option<usize>,
    /// A candidate tried in the failing operation's place.
    pub tried: bool,
}

/// One step of the linearization: the op taken, and the state after it
/// (`None` if the model found it illegal, which a search witness never is).
#[derive(Clone, Debug, PartialEq)]
pub struct ViewStep {
    pub op: usize,
    pub state: Option<String>,
}

/// Everything one key's tab shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinKeyView {
    pub key: String,
    pub model: String,
    /// The key's operations that can matter (failed ones never happened).
    pub ops: Vec<ViewOp>,
    pub initial_state: Option<String>,
    /// The longest linearization the search reached, in order.
    pub steps: Vec<ViewStep>,
    /// The operation that cannot be linearized after `steps`.
    pub failing: Option<usize>,
    /// Why the minimal counterexample admits no order (the checker's prose).
    pub minimal_explanation: Option<String>,
    /// The search's own account of where it got stuck.
    pub search_explanation: Option<String>,
}

impl LinKeyView {
    /// Gathers one key's view: `ops` are the checked operations (any keys;
    /// this key's are picked), `spec` and `whole` as the check ran (`whole`
    /// when the history was not split by key), `kr` the key's result and
    /// `anomaly` its entry of the JSON `anomalies` (prose), if any. The
    /// states along the linearization come from replaying it through the
    /// model; when that fails (it should not), the steps carry no states.
    pub fn build(
        key: &str,
        kr: &KeyResult,
        ops: &[Operation],
        history: &History,
        spec: &ModelSpec,
        whole: bool,
        anomaly: Option<&serde_json::Value>,
    ) -> LinKeyView {
        let mine: Vec<&Operation> = ops
            .iter()
            .filter(|o| whole || key_name(o.key.as_deref()) == key)
            .collect();
        let played = replay(spec, &mine, whole, &kr.longest_prefix, Some(history)).ok();
        let steps = kr
            .longest_prefix
            .iter()
            .enumerate()
            .map(|(i, &op)| ViewStep {
                op,
                state: played
                    .as_ref()
                    .and_then(|p| p.states.get(i).cloned().flatten()),
            })
            .collect();
        let event = |i: usize| history.events.get(i);
        let view_ops = mine
            .iter()
            .filter(|o| o.outcome != Outcome::Fail)
            .map(|o| {
                let shown = match o.outcome {
                    Outcome::Ok if o.invoke_value.is_null() || o.invoke_value != o.value => {
                        format!("{} → {}", o.f, o.value)
                    }
                    _ => format!("{} {}", o.f, o.invoke_value),
                };
                let shown = match (&o.key, whole) {
                    (Some(k), true) => format!("{k} {shown}"),
                    _ => shown,
                };
                ViewOp {
                    id: o.id,
                    process: o.process.to_string(),
                    start: o.invoke as u64,
                    end: o.complete.map(|c| c as u64),
                    label: shown,
                    outcome: match o.outcome {
                        Outcome::Ok => "ok",
                        Outcome::Fail => "fail",
                        Outcome::Info => "unknown outcome (info)",
                    }
                    .to_string(),
                    invoke_time: event(o.invoke).and_then(|e| e.time),
                    complete_time: o
                        .complete
                        .or(o.info_at())
                        .and_then(event)
                        .and_then(|e| e.time),
                    invoke_line: event(o.invoke).map_or(0, |e| e.line),
                    complete_line: o.complete.or(o.info_at()).and_then(event).map(|e| e.line),
                    minimal: kr.minimal.iter().position(|&m| m == o.id).map(|i| i + 1),
                    tried: kr.tried.contains(&o.id),
                }
            })
            .collect();
        let text = |f: &str| anomaly.and_then(|a| a[f].as_str()).map(str::to_string);
        LinKeyView {
            key: key.to_string(),
            model: spec.kind.name().to_string(),
            ops: view_ops,
            initial_state: played.map(|p| p.initial),
            steps,
            failing: if kr.verdict == Verdict::Invalid {
                kr.failing_op
            } else {
                None
            },
            minimal_explanation: kr
                .minimal_explanation
                .clone()
                .or_else(|| text("minimal_explanation")),
            search_explanation: text("explanation"),
        }
    }

    /// One sentence for a verdict banner: why the minimal counterexample
    /// admits no order (the checker's minimal explanation lists the
    /// operations, `…: [1] … (lines a–b); [2] … (lines c–d).`, then says
    /// why; the banner keeps the why), naming the key; `note` follows the
    /// key (e.g. " (1 of 8 keys that are not linearizable)").
    pub fn cause<'a>(&'a self, note: &str) -> Option<String> {
        let listed_why = |e: &'a str| {
            e.match_indices("). ")
                .map(|(i, _)| &e[i + 3..])
                .find(|rest| rest.starts_with(|c: char| c.is_uppercase()))
        };
        // Without that shape (shrinking gave up before explaining), the
        // search's own account names the operation it could not pass.
        let why = self
            .minimal_explanation
            .as_deref()
            .and_then(listed_why)
            .or(self.search_explanation.as_deref())
            .or(self.minimal_explanation.as_deref())?;
        // A chain of real-time facts reads better from its conclusion
        // ("These 8 operation(s) admit no order: …"); the tab lists the
        // chain.
        let why = match (why.starts_with("In real time:"), why.find(". These ")) {
            (true, Some(i)) => &why[i + 2..],
            _ => why,
        };
        Some(match self.key.as_str() {
            "_" if note.is_empty() => why.to_string(),
            k => format!("key {k}{note}: {why}"),
        })
    }

    /// The ops that explain the failure: the minimal counterexample, the
    /// failing op and those tried in its place.
    fn interesting(&self, o: &ViewOp) -> bool {
        o.minimal.is_some() || o.tried || Some(o.id) == self.failing
    }

    /// The event window that holds every interesting op, or `None` to
    /// show the whole key.
    fn window(&self) -> Option<(u64, u64)> {
        let mut it = self.ops.iter().filter(|o| self.interesting(o)).peekable();
        it.peek()?;
        let (mut lo, mut hi) = (u64::MAX, 0);
        for o in it {
            lo = lo.min(o.start);
            hi = hi.max(o.end.unwrap_or(o.start));
        }
        Some((lo, hi))
    }
}

/// Drawn at most this many operations for the whole-key view; beyond it
/// only the failing window is drawn.
const MAX_FULL_OPS: usize = 3000;
const LEFT: f64 = 96.0;
const TOP: f64 = 26.0;
const LANE_H: f64 = 30.0;
const BAR_H: f64 = 20.0;
/// Width the chart aims for: a 1400 px window less the margins and the
/// step control beside it. Wider charts scroll, to the failure first.
const TARGET_W: f64 = 860.0;
/// Advance of one 11 px monospace character, rounded up.
const CHAR_W: f64 = 6.9;

fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn fit(label: &str, width: f64) -> Option<String> {
    let n = ((width - 6.0) / CHAR_W).floor();
    if n < 2.0 {
        return None;
    }
    let n = n as usize;
    Some(if label.chars().count() <= n {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(n - 1).collect();
        s.push('…');
        s
    })
}

/// Draws the ops overlapping `window` (all when `None`) as an SVG.
fn chart(v: &LinKeyView, window: Option<(u64, u64)>, class: &str) -> String {
    let shown: Vec<&ViewOp> = v
        .ops
        .iter()
        .filter(|o| match window {
            None => true,
            Some((lo, hi)) => o.start <= hi && o.end.is_none_or(|e| e >= lo),
        })
        .collect();
    // Lanes: only processes with an op in view, in numeric order.
    let mut lanes: Vec<&str> = shown.iter().map(|o| o.process.as_str()).collect();
    lanes.sort_by(|a, b| natural_cmp(a, b));
    lanes.dedup();
    let lane_of: BTreeMap<&str, usize> = lanes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    // Columns: the event positions in view, so a key's chart stays compact
    // in a history of millions of events; clipped to the window.
    let clip = |p: u64| match window {
        Some((lo, hi)) => p.clamp(lo, hi),
        None => p,
    };
    let mut points: Vec<u64> = shown
        .iter()
        .flat_map(|o| std::iter::once(clip(o.start)).chain(o.end.map(clip)))
        .collect();
    points.sort_unstable();
    points.dedup();
    let ncols = points.len().max(1) as f64 + 1.0;
    let col_w = (TARGET_W / ncols).clamp(10.0, 120.0).floor();
    let col = |p: u64| points.partition_point(|&x| x < clip(p)) as f64;
    let width = LEFT + ncols * col_w + 16.0;
    let height = TOP + lanes.len() as f64 * LANE_H + 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"lin {class}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         role=\"img\" aria-label=\"operations per process over time\">\
         <text x=\"{LEFT}\" y=\"14\" class=\"axis\">real time (event order) →{}</text>",
        match window {
            Some(_) if shown.len() < v.ops.len() => " (the failing window)",
            _ => "",
        }
    );
    for (i, p) in lanes.iter().enumerate() {
        let y = TOP + i as f64 * LANE_H;
        let _ = write!(
            s,
            "<text x=\"6\" y=\"{:.0}\" class=\"lane\">process {}</text>\
             <line x1=\"{LEFT}\" x2=\"{:.0}\" y1=\"{:.0}\" y2=\"{:.0}\" class=\"grid\"/>",
            y + BAR_H / 2.0 + 4.0,
            escape(p),
            width - 8.0,
            y + LANE_H - 5.0,
            y + LANE_H - 5.0
        );
    }
    for o in &shown {
        let lane = lane_of.get(o.process.as_str()).copied().unwrap_or(0) as f64;
        let y = TOP + lane * LANE_H;
        let x0 = LEFT + col(o.start) * col_w;
        let open_right = match (o.end, window) {
            (None, _) => true,
            (Some(e), Some((_, hi))) => e > hi,
            _ => false,
        };
        let x1 = match o.end {
            Some(e) if !open_right => LEFT + col(e) * col_w + col_w / 2.0,
            _ => width - 10.0,
        };
        let w = (x1 - x0).max(8.0);
        let mut classes = String::from("op");
        if o.minimal.is_some() {
            classes.push_str(" min");
        }
        if Some(o.id) == v.failing {
            classes.push_str(" fail");
        } else if o.tried {
            classes.push_str(" tried");
        }
        if o.end.is_none() {
            classes.push_str(" open");
        }
        let tag = match o.minimal {
            Some(n) => format!("[{n}] "),
            None if Some(o.id) == v.failing => "✗ ".to_string(),
            None => String::new(),
        };
        let label = format!("{tag}{}", o.label);
        let _ = write!(
            s,
            "<g class=\"{classes}\" data-op=\"{}\"><rect x=\"{x0:.1}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"{BAR_H}\" rx=\"3\"/>",
            o.id
        );
        // A bar too short for its text keeps at least its tag ([n], ✗),
        // or the bare number.
        let bare = tag.trim().trim_start_matches('[').trim_end_matches(']');
        let keep = |t: &String| !t.ends_with('…') || t.chars().count() > tag.chars().count() + 1;
        if let Some(t) = fit(&label, w)
            .filter(keep)
            .or_else(|| fit(tag.trim(), w).filter(keep))
            .or_else(|| {
                (!bare.is_empty())
                    .then(|| bare.to_string())
                    .filter(|b| (b.chars().count() as f64) * CHAR_W <= w)
            })
        {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
                x0 + 3.0,
                y + BAR_H / 2.0 + 4.0,
                escape(&t)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// A time for people; the event's position when the file has no times.
fn time_text(ns: Option<u64>, event: Option<u64>) -> String {
    match (ns, event) {
        (Some(t), _) => format!("at {:.6} s", t as f64 / 1e9),
        (None, Some(e)) => format!("at event {e} (the file has no times)"),
        (None, None) => "—".to_string(),
    }
}

/// The data the script needs for one key, as JSON in the page.
fn key_json(v: &LinKeyView) -> serde_json::Value {
    let ops: serde_json::Map<String, serde_json::Value> = v
        .ops
        .iter()
        .map(|o| {
            let lines = match o.complete_line {
                Some(c) => format!("{}–{c}", o.invoke_line),
                None => o.invoke_line.to_string(),
            };
            (
                o.id.to_string(),
                serde_json::json!({
                    "p": o.process,
                    "label": o.label,
                    "outcome": o.outcome,
                    "invoke": time_text(o.invoke_time, Some(o.start)),
                    "complete": if o.end.is_none() {
                        "never (unknown outcome)".to_string()
                    } else {
                        time_text(o.complete_time, o.end)
                    },
                    "lines": lines,
                    "min": o.minimal,
                    "tried": o.tried,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "initial": v.initial_state,
        "steps": v.steps.iter().map(|s| serde_json::json!([s.op, s.state])).collect::<Vec<_>>(),
        "failing": v.failing,
        "ops": ops,
    })
}

/// The viewer for `views` (one tab each), as an HTML fragment; `id` makes
/// element ids unique when a page holds several viewers.
pub fn render(id: &str, views: &[LinKeyView]) -> String {
    let mut s = String::new();
    if views.is_empty() {
        return s;
    }
    let id = escape(id);
    let _ = write!(s, "<div class=\"linviewer\" id=\"{id}\">");
    s.push_str(LEGEND);
    s.push_str("<div class=\"tabs\" role=\"tablist\">");
    for (i, v) in views.iter().enumerate() {
        let _ = write!(
            s,
            "<button class=\"tab{}\" role=\"tab\" data-tab=\"{i}\">key {}</button>",
            if i == 0 { " active" } else { "" },
            escape(&v.key)
        );
    }
    s.push_str("</div>");
    for (i, v) in views.iter().enumerate() {
        let data = key_json(v).to_string().replace("</", "<\\/");
        let _ = write!(
            s,
            "<div class=\"keyview\" data-tab=\"{i}\"{}><script type=\"application/json\" class=\"lin-data\">{data}</script>",
            if i == 0 { "" } else { " hidden" }
        );
        if let Some(e) = &v.minimal_explanation {
            let _ = write!(s, "<p class=\"why\">{}</p>", escape(e));
        }
        let window = v.window();
        let shown = match window {
            Some((lo, hi)) => v
                .ops
                .iter()
                .filter(|o| o.start <= hi && o.end.is_none_or(|e| e >= lo))
                .count(),
            None => v.ops.len(),
        };
        s.push_str("<div class=\"viewer-row\"><div class=\"chart-col\">");
        let _ = write!(
            s,
            "<div class=\"chart cropped\">{}</div>",
            chart(v, window, "cropped")
        );
        if shown < v.ops.len() && v.ops.len() <= MAX_FULL_OPS {
            let _ = write!(
                s,
                "<label class=\"whole\"><input type=\"checkbox\" class=\"show-whole\"> show all {} operations of key {} (the chart shows {shown} around the failure)</label>\
                 <div class=\"chart full\" hidden>{}</div>",
                v.ops.len(),
                escape(&v.key),
                chart(v, None, "full")
            );
        } else if shown < v.ops.len() {
            let _ = write!(
                s,
                "<p class=\"note\">The chart shows the {shown} operations around the failure of the key's {}.</p>",
                v.ops.len()
            );
        }
        s.push_str(
            "<div class=\"hover\">Hover an operation for its times, values and lines.</div></div>",
        );
        // The step control and the linearization it walks.
        let total = v.steps.len() + usize::from(v.failing.is_some());
        let _ = write!(
            s,
            "<div class=\"stepper\"><div class=\"controls\">\
             <button class=\"first\" title=\"initial state\">« start</button>\
             <button class=\"prev\" title=\"previous operation (←)\">◀ prev</button>\
             <button class=\"next\" title=\"next operation (→)\">next ▶</button>\
             <button class=\"last\" title=\"where it fails\">end »</button>\
             <input class=\"slider\" type=\"range\" min=\"0\" max=\"{total}\" value=\"0\" aria-label=\"step\">\
             </div><div class=\"step-text\" aria-live=\"polite\"></div><div class=\"state\"></div>\
             <ol class=\"lin-order\" start=\"1\">"
        );
        for (n, st) in v.steps.iter().enumerate() {
            let label = v
                .ops
                .iter()
                .find(|o| o.id == st.op)
                .map_or(String::new(), |o| {
                    format!("process {}: {}", o.process, o.label)
                });
            let _ = write!(s, "<li data-step=\"{}\">{}</li>", n + 1, escape(&label));
        }
        if let Some(f) = v.failing.and_then(|f| v.ops.iter().find(|o| o.id == f)) {
            let _ = write!(
                s,
                "<li class=\"fail\" data-step=\"{total}\">✗ process {}: {} — cannot be linearized</li>",
                escape(&f.process),
                escape(&f.label)
            );
        }
        s.push_str("</ol></div></div>");
        if let Some(e) = &v.search_explanation {
            let _ = write!(
                s,
                "<details class=\"detail\"><summary>How the search got stuck</summary><p>{}</p></details>",
                escape(e)
            );
        }
        s.push_str("</div>");
    }
    s.push_str("</div>\n");
    s
}

const LEGEND: &str = "<p class=\"legend\">\
<span class=\"k min\">[n]</span> minimal counterexample: these operations alone admit no order \
<span class=\"k done\">&nbsp;</span> linearized so far (step control) \
<span class=\"k cur\">&nbsp;</span> the current step \
<span class=\"k fail\">✗</span> cannot be linearized \
<span class=\"k tried\">&nbsp;</span> concurrent, tried in its place \
<span class=\"k other\">&nbsp;</span> other operations \
<span class=\"k other open\">&nbsp;</span> unknown outcome (info): may take effect any time later, or never. \
Hover a bar for details; ← → step.</p>";

/// Styles of the viewer (once per page).
pub const CSS: &str = ".linviewer .tabs{display:flex;gap:4px;flex-wrap:wrap;margin:.4em 0}\
.linviewer .tab{border:1px solid #bbb;background:#f3f3f3;padding:3px 10px;border-radius:4px 4px 0 0;cursor:pointer;font:inherit}\
.linviewer .tab.active{background:#fff;border-bottom-color:#fff;font-weight:bold}\
.viewer-row{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}\
.chart-col{flex:1 1 700px;min-width:0}\
.chart{overflow-x:auto;border:1px solid #ddd;background:#fcfcfc;max-width:100%}\
svg.lin text{font:11px 'DejaVu Sans Mono',monospace}.axis{fill:#666}.lane{fill:#333}.grid{stroke:#eee}\
.op rect{fill:#e4e4e4;stroke:#777;stroke-width:1}.op.tried rect{fill:#ffd08a}\
.op.min rect{fill:#9cc3f0;stroke:#1a4f8f;stroke-width:2.5}.op.fail rect{fill:#f08080;stroke:#a00;stroke-width:2.5}\
.op.open rect{stroke-dasharray:4 3}.op.done rect{fill:#b7e1b0}.op.min.done rect{fill:#8fd487}\
.op.cur rect{stroke:#000;stroke-width:3.5}.op.failnow rect{fill:#e33;stroke:#000;stroke-width:3.5}\
.op:hover rect{stroke:#000;stroke-width:2}.op{cursor:default}\
.hover{font:12px monospace;background:#f7f7f7;border:1px solid #ddd;padding:4px 8px;margin-top:4px;min-height:2.6em;white-space:pre-wrap}\
.stepper{flex:0 0 330px;border:1px solid #ccc;padding:6px;background:#fafafa}\
.stepper .controls{display:flex;gap:4px;align-items:center}.stepper .slider{flex:1;min-width:60px}\
.step-text{margin:.4em 0;font-weight:bold}.state{font:12px monospace;background:#fff;border:1px solid #ddd;padding:3px 6px;word-break:break-all}\
.lin-order{max-height:260px;overflow-y:auto;font:12px monospace;margin:.5em 0 0;padding-left:3.2em}\
.lin-order li{cursor:pointer}.lin-order li.cur{background:#ffe97a}.lin-order li.fail{color:#a00}\
.legend .k{display:inline-block;min-width:1.5em;border:1px solid #555;margin:0 4px 0 12px;text-align:center}\
.k.done{background:#b7e1b0}.k.cur{border:3px solid #000}.k.fail{background:#f08080}.k.tried{background:#ffd08a}\
.k.min{background:#9cc3f0}.k.other{background:#e4e4e4}.k.open{border-style:dashed}\
p.why{font-size:1.05em;background:#fff4f4;border-left:4px solid #c00;padding:4px 10px}";

/// The viewer's script (once per page): tabs, the step control, hover.
pub const JS: &str = r#"(function(){
function fmtState(s){return s===null||s===undefined?'(not computed)':s;}
document.querySelectorAll('.linviewer').forEach(function(root){
  var tabs=root.querySelectorAll('.tab'), views=root.querySelectorAll('.keyview');
  tabs.forEach(function(t){t.addEventListener('click',function(){
    tabs.forEach(function(x){x.classList.toggle('active',x===t);});
    views.forEach(function(v){v.hidden=v.dataset.tab!==t.dataset.tab;});
  });});
  views.forEach(function(view){
    var d=JSON.parse(view.querySelector('.lin-data').textContent);
    var total=d.steps.length+(d.failing!==null?1:0), step=0;
    var text=view.querySelector('.step-text'), state=view.querySelector('.state');
    var slider=view.querySelector('.slider'), items=view.querySelectorAll('.lin-order li');
    var hover=view.querySelector('.hover'), stepOf={};
    d.steps.forEach(function(s,i){stepOf[s[0]]=i+1;});
    function bars(id){return view.querySelectorAll('.op[data-op="'+id+'"]');}
    function show(n){
      step=Math.max(0,Math.min(total,n)); slider.value=step; view.dataset.step=step;
      view.querySelectorAll('.op.done,.op.cur,.op.failnow').forEach(function(b){b.classList.remove('done','cur','failnow');});
      for(var i=0;i<Math.min(step,d.steps.length);i++){bars(d.steps[i][0]).forEach(function(b){b.classList.add('done');});}
      items.forEach(function(li){li.classList.toggle('cur',+li.dataset.step===step);});
      var cur=view.querySelector('.lin-order li.cur'); if(cur){cur.scrollIntoView({block:'nearest'});}
      if(step===0){text.textContent='Step 0 of '+total+': before any operation';state.textContent='state: '+fmtState(d.initial);return;}
      if(step<=d.steps.length){
        var s=d.steps[step-1], o=d.ops[s[0]]||{p:'?',label:'?'};
        bars(s[0]).forEach(function(b){b.classList.add('cur');});
        text.textContent='Step '+step+' of '+total+': process '+o.p+' '+o.label+(bars(s[0]).length&&!view.querySelector('.chart.cropped .op[data-op="'+s[0]+'"]')?' (before the window shown)':'');
        state.textContent='state after it: '+fmtState(s[1]);return;
      }
      var f=d.ops[d.failing]||{p:'?',label:'?'};
      bars(d.failing).forEach(function(b){b.classList.add('failnow');});
      var last=d.steps.length?d.steps[d.steps.length-1][1]:d.initial;
      text.textContent='Step '+step+' of '+total+': ✗ process '+f.p+' '+f.label+' cannot be linearized';
      state.textContent='it is illegal in state '+fmtState(last)+', and no order of the operations concurrent with it makes it legal';
    }
    view.querySelector('.first').addEventListener('click',function(){show(0);});
    view.querySelector('.prev').addEventListener('click',function(){show(step-1);});
    view.querySelector('.next').addEventListener('click',function(){show(step+1);});
    view.querySelector('.last').addEventListener('click',function(){show(total);});
    slider.addEventListener('input',function(){show(+slider.value);});
    items.forEach(function(li){li.addEventListener('click',function(){show(+li.dataset.step);});});
    view.addEventListener('keydown',function(e){if(e.key==='ArrowRight'){show(step+1);}if(e.key==='ArrowLeft'){show(step-1);}});
    view.tabIndex=0;
    view.querySelectorAll('.op').forEach(function(b){
      b.addEventListener('mouseenter',function(){
        var o=d.ops[b.dataset.op]; if(!o){return;}
        var roles=[];if(o.min){roles.push('minimal counterexample ['+o.min+']');}
        if(+b.dataset.op===d.failing){roles.push('cannot be linearized');}else if(o.tried){roles.push('tried in its place');}
        var role=roles.join('; ');
        hover.textContent='process '+o.p+': '+o.label+' ('+o.outcome+')'+(role?' — '+role:'')+'\ninvoked '+o.invoke+', completed '+o.complete+' · file lines '+o.lines
          +(stepOf[b.dataset.op]?'\nlinearized as step '+stepOf[b.dataset.op]+'; state after it: '+fmtState(d.steps[stepOf[b.dataset.op]-1][1]):'');
      });
    });
    var whole=view.querySelector('.show-whole');
    if(whole){whole.addEventListener('change',function(){view.querySelector('.chart.full').hidden=!whole.checked;view.querySelector('.chart.cropped').hidden=whole.checked;});}
    show(0);
    // A chart wider than its box opens scrolled to the failing operation,
    // only when it would be off-screen (the lane labels stay in view).
    var box=view.querySelector('.chart.cropped'), f=box&&box.querySelector('.op.fail rect');
    if(f&&box.scrollWidth>box.clientWidth){
      var b=f.getBBox();
      if(b.x+b.width>box.clientWidth){box.scrollLeft=Math.max(0,b.x-box.clientWidth/2);}
    }
  });
});
})();"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: usize, p: &str, s: u64, e: Option<u64>, label: &str) -> ViewOp {
        ViewOp {
            id,
            process: p.into(),
            start: s,
            end: e,
            label: label.into(),
            outcome: "ok".into(),
            invoke_time: None,
            complete_time: None,
            invoke_line: s as usize + 1,
            complete_line: e.map(|e| e as usize + 1),
            minimal: None,
            tried: false,
        }
    }

    fn view() -> LinKeyView {
        let mut ops = vec![
            op(0, "0", 0, Some(1), "write 1"),
            op(1, "5", 2, Some(3), "write 9"),
            op(2, "1", 10, Some(13), "write 2"),
            op(3, "2", 11, Some(14), "read → 1 <x>"),
            op(4, "10", 12, None, "write 7"),
        ];
        ops[2].minimal = Some(1);
        ops[3].minimal = Some(2);
        ops[4].tried = true;
        LinKeyView {
            key: "x".into(),
            model: "cas-register".into(),
            ops,
            initial_state: Some("absent".into()),
            steps: vec![
                ViewStep {
                    op: 0,
                    state: Some("1".into()),
                },
                ViewStep {
                    op: 1,
                    state: Some("9".into()),
                },
                ViewStep {
                    op: 2,
                    state: Some("2".into()),
                },
            ],
            failing: Some(3),
            minimal_explanation: Some("read 1 after write 2".into()),
            search_explanation: None,
        }
    }

    #[test]
    fn the_chart_is_cropped_to_the_failure_and_hides_empty_lanes() {
        let v = view();
        assert_eq!(v.window(), Some((10, 14)));
        let svg = chart(&v, v.window(), "cropped");
        assert!(
            !svg.contains(">process 0<") && !svg.contains(">process 5<"),
            "{svg}"
        );
        assert!(svg.contains(">process 1<") && svg.contains(">process 10<"));
        assert!(svg.contains("class=\"op min fail\" data-op=\"3\""), "{svg}");
        assert!(svg.contains("class=\"op tried open\""));
        assert!(svg.contains("&lt;x&gt;"), "labels escaped");
        let full = chart(&v, None, "full");
        assert!(full.contains(">process 0<"));
    }

    #[test]
    fn the_page_fragment_has_tabs_steps_and_data_for_the_script() {
        let html = render(
            "v1",
            &[
                view(),
                LinKeyView {
                    key: "y".into(),
                    ..view()
                },
            ],
        );
        assert_eq!(html.matches("role=\"tab\"").count(), 2);
        assert!(html.contains("max=\"4\""), "3 steps and the failing op");
        assert!(
            html.contains("<li data-step=\"3\">process 1: write 2</li>"),
            "{html}"
        );
        assert!(html.contains("✗ process 2: read → 1 &lt;x&gt; — cannot be linearized"));
        assert!(
            html.contains("\"steps\":[[0,\"1\"],[1,\"9\"],[2,\"2\"]]"),
            "{html}"
        );
        assert!(html.contains("show all 5 operations"));
    }

    #[test]
    fn the_cause_is_the_why_of_the_minimal_explanation() {
        let mut v = view();
        v.minimal_explanation = Some(
            "Key \"x\": a minimal counterexample has 2 operation(s) (the key's other 3 \
             operation(s) are treated as if they had timed out): [1] process 1's ok write 2 \
             (lines 11–14); [2] process 2's ok read → 1 (lines 12–15). Stale read: [2] \
             returned 1 after [1] wrote 2."
                .into(),
        );
        assert_eq!(
            v.cause("").as_deref(),
            Some("key x: Stale read: [2] returned 1 after [1] wrote 2.")
        );
    }

    #[test]
    fn build_replays_the_searchs_linearization_to_its_final_state() {
        use faultline_checker::linear;
        use faultline_checker::model::{ModelKind, ModelSpec};
        let text = [
            r#"{"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"process":1,"type":"invoke","f":"write","value":2}"#,
            r#"{"process":1,"type":"ok","f":"write","value":2}"#,
            r#"{"process":2,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":2,"type":"ok","f":"read","value":1}"#,
        ]
        .join("\n");
        let h = faultline_checker::format::jsonl::parse(text.as_bytes()).expect("a history");
        let spec = ModelSpec::new(ModelKind::CasRegister);
        let r = linear::check_history(&h, &spec, &linear::Options::default()).expect("checks");
        let (key, kr) = r.keys.iter().next().expect("one key");
        let ops = h.pair().expect("pairs").operations;
        let v = LinKeyView::build(key, kr, &ops, &h, &spec, false, None);
        assert_eq!(v.steps.len(), kr.longest_prefix.len());
        assert!(!v.steps.is_empty());
        assert_eq!(
            v.steps.last().and_then(|s| s.state.clone()),
            kr.final_state,
            "the replay ends where the search got stuck"
        );
        assert_eq!(v.failing, kr.failing_op);
        assert_eq!(
            v.ops.iter().filter(|o| o.minimal.is_some()).count(),
            kr.minimal.len()
        );
        assert!(
            v.cause("").is_some_and(|c| c.contains("line")),
            "{:?}",
            v.cause("")
        );
    }

    #[test]
    fn labels_are_cut_to_their_bar() {
        assert_eq!(fit("write 123456", 40.0).as_deref(), Some("wri…"));
        assert_eq!(fit("w", 40.0).as_deref(), Some("w"));
        assert_eq!(fit("write", 12.0), None);
    }
}
