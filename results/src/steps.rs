//! Per-step outcomes over time: for every operation kind (`f`) of a run,
//! and for each saga step an `order` reached, how many completed `ok`,
//! `fail` and `info` in each 10 s window. A workload that went idle (a
//! step that stopped running, or stopped succeeding, while the test went
//! on) shows as a row of empty cells.
//!
//! Computed once, from the history, for every workload ([`step_counts`]);
//! the runner writes it to `results.json` as `steps`, and the report draws
//! it ([`html`]), recomputing it only for a run checked before the field
//! existed ([`of_run`]).
//!
//! # `results.json`'s `steps`
//!
//! | field | meaning |
//! |---|---|
//! | `window_s` | window length, seconds (10) |
//! | `end_s` | time of the last client event, seconds: the last window ends there, so it may be short |
//! | `main_phase_s` | when the clients stopped starting operations (the time limit), if known: windows from there on hold late completions and the final reads, not the workload |
//! | `rows` | one per operation (`kind: "op"`, in order of first invocation) and, after `order`, one per saga step (`kind: "step"`) |
//! | `rows[].ok` / `fail` / `info` | counts per window (`[0, 10)`, `[10, 20)`, … s); an operation counts in the window of its completion, one never completed as `info` in its invocation's |
//!
//! ```json
//! {"window_s": 10, "end_s": 21.4, "main_phase_s": 20.0, "rows": [
//!   {"name": "order", "kind": "op", "ok": [310, 280, 40], "fail": [90, 70, 9], "info": [0, 4, 0]},
//!   {"name": "ship", "kind": "step", "ok": [310, 280, 40], "fail": [60, 55, 7], "info": [0, 0, 0]}]}
//! ```
//!
//! A saga step's outcome comes from the order's answer
//! ([`faultline_checker::saga::step_outcomes`]): `ok` = every step ran;
//! a `fail` names the step that refused; an `info` order is counted on
//! its `order` row only (which step it reached is unknown).

use crate::ops;
use crate::timeline::escape;
use faultline_checker::saga::{SERVICES, step_outcomes};
use faultline_checker::{History, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;

/// Window length, seconds.
pub const WINDOW_S: u64 = 10;

/// `results.json`'s `steps` (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCounts {
    pub window_s: u64,
    pub end_s: f64,
    #[serde(default)]
    pub main_phase_s: Option<f64>,
    pub rows: Vec<StepRow>,
}

/// One operation kind or saga step: outcomes per window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub name: String,
    /// `op` (an operation's `f`) or `step` (a saga step).
    pub kind: String,
    pub ok: Vec<u64>,
    pub fail: Vec<u64>,
    pub info: Vec<u64>,
}

impl StepRow {
    fn new(name: &str, kind: &str) -> StepRow {
        StepRow {
            name: name.to_string(),
            kind: kind.to_string(),
            ok: Vec::new(),
            fail: Vec::new(),
            info: Vec::new(),
        }
    }

    fn add(&mut self, window: usize, o: Outcome) {
        let v = match o {
            Outcome::Ok => &mut self.ok,
            Outcome::Fail => &mut self.fail,
            Outcome::Info => &mut self.info,
        };
        if v.len() <= window {
            v.resize(window + 1, 0);
        }
        v[window] += 1;
    }
}

impl StepCounts {
    /// Number of windows.
    pub fn windows(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|r| [r.ok.len(), r.fail.len(), r.info.len()])
            .max()
            .unwrap_or(0)
    }

    /// Windows that start before the main phase ended (all, when that is
    /// unknown): where an empty cell means the step went idle.
    pub fn main_windows(&self) -> usize {
        let n = self.windows();
        match self.main_phase_s {
            Some(end) => n.min((end / self.window_s.max(1) as f64).ceil() as usize),
            None => n,
        }
    }

    /// The row named `name`.
    pub fn row(&self, name: &str) -> Option<&StepRow> {
        self.rows.iter().find(|r| r.name == name)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `steps` field of a `results.json`, if it has a readable one.
    pub fn from_results(results: &Value) -> Option<StepCounts> {
        serde_json::from_value(results.get("steps")?.clone()).ok()
    }
}

/// Counts every client operation of `history` per [`WINDOW_S`] window by
/// kind and outcome, plus the saga steps of `order`s. Events without a
/// `time` are not counted (a file from elsewhere may lack them).
/// `main_phase_s`: when the clients stopped starting operations, if known.
pub fn step_counts(history: &History, main_phase_s: Option<f64>) -> StepCounts {
    let window_ns = WINDOW_S * 1_000_000_000;
    let mut rows: Vec<StepRow> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut end_ns = 0u64;
    for span in ops::spans(history) {
        let Some(inv) = history.events.get(span.invoke) else {
            continue;
        };
        let done = span.complete.and_then(|c| history.events.get(c));
        let Some(t) = done.and_then(|e| e.time).or(inv.time) else {
            continue;
        };
        end_ns = end_ns.max(t);
        let w = usize::try_from(t / window_ns).unwrap_or(usize::MAX - 1);
        let f = inv.f.as_str();
        let idx = match at.get(f) {
            Some(&i) => i,
            None => {
                let i = rows.len();
                at.insert(f.to_string(), i);
                rows.push(StepRow::new(f, "op"));
                if f == "order" {
                    for s in SERVICES {
                        at.insert(s.to_string(), rows.len());
                        rows.push(StepRow::new(s, "step"));
                    }
                }
                i
            }
        };
        rows[idx].add(w, span.outcome);
        if f == "order" {
            let error = done
                .and_then(|e| e.error.as_deref())
                .and_then(Value::as_str);
            for (s, o) in SERVICES.iter().zip(step_outcomes(span.outcome, error)) {
                if let (Some(o), Some(&i)) = (o, at.get(*s)) {
                    rows[i].add(w, o);
                }
            }
        }
    }
    let mut c = StepCounts {
        window_s: WINDOW_S,
        end_s: end_ns as f64 / 1e9,
        main_phase_s,
        rows,
    };
    // Every row as long as the run, so an idle tail is a 0, not a gap.
    let n = c.windows();
    for r in &mut c.rows {
        for v in [&mut r.ok, &mut r.fail, &mut r.info] {
            v.resize(n, 0);
        }
    }
    c
}

/// The counts a report shows: `results.json`'s, or computed from the
/// history for a run checked before they were recorded.
pub fn of_run(results: &Value, history: &History) -> StepCounts {
    StepCounts::from_results(results).unwrap_or_else(|| {
        let main = results["run"]["main_phase_s"].as_f64();
        step_counts(history, main)
    })
}

/// The report's section for a run: [`html`] of [`of_run`].
pub fn section(results: &Value, history: &History) -> String {
    html(&of_run(results, history))
}

/// The report's section: a table, a row per operation or saga step, a
/// column per window; each cell `ok` (large) and `fail`/`info` (small).
/// A cell of the main phase with no `ok` in a row that has some elsewhere
/// is red: that step went idle or stopped succeeding there. Windows after
/// the main phase (late completions, final reads) are marked and grey.
pub fn html(c: &StepCounts) -> String {
    let mut h = String::new();
    let n = c.windows();
    let main = c.main_windows();
    let _ = writeln!(
        h,
        "<h2 id=\"steps\">Steps over time</h2>\n<p class=\"note\">Per operation (and per \
         saga step of an order): <b>ok</b> <small>fail/info</small> completions per {} s \
         window. Red: none succeeded in that window though some did elsewhere.</p>",
        c.window_s
    );
    if c.rows.is_empty() || n == 0 {
        h.push_str("<p class=\"note\">No timed client operations.</p>\n");
        return h;
    }
    h.push_str("<table class=\"steps\" style=\"border-collapse:collapse\"><tr><th>step</th>");
    for w in 0..n {
        let from = w as u64 * c.window_s;
        let to = (from + c.window_s) as f64;
        let short = w + 1 == n && c.end_s < to;
        let _ = write!(
            h,
            "<th style=\"padding:2px 6px\">{from}–{}{} s{}</th>",
            if short {
                format!("{:.1}", c.end_s)
            } else {
                format!("{to:.0}")
            },
            if short { "*" } else { "" },
            if w >= main { " (after)" } else { "" }
        );
    }
    h.push_str("</tr>\n");
    for r in &c.rows {
        let any_ok = r.ok.iter().any(|&x| x > 0);
        let name = if r.kind == "step" {
            format!("&nbsp;&nbsp;↳ {}", escape(&r.name))
        } else {
            escape(&r.name)
        };
        let _ = write!(h, "<tr><td style=\"padding:2px 6px\">{name}</td>");
        for w in 0..n {
            let get = |v: &[u64]| v.get(w).copied().unwrap_or(0);
            let (ok, fail, info) = (get(&r.ok), get(&r.fail), get(&r.info));
            let bg = if ok > 0 {
                "#e6f4ea"
            } else if any_ok && w < main {
                "#f8d7da"
            } else {
                "#f1f1f1"
            };
            let _ = write!(
                h,
                "<td style=\"padding:2px 6px;text-align:right;background:{bg}\"><b>{ok}</b> \
                 <small>{fail}/{info}</small></td>"
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    if c.end_s < (n as u64 * c.window_s) as f64 {
        h.push_str(
            "<p class=\"note\">* the last window is shorter: the run ended (final reads \
             included) there.</p>\n",
        );
    }
    if main < n {
        h.push_str(
            "<p class=\"note\">(after): the clients had stopped starting operations; these \
             windows hold late completions and the final reads.</p>\n",
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Event, EventType, Process};
    use serde_json::json;

    fn ev(p: u64, kind: EventType, f: &str, t_s: f64, error: Option<&str>) -> Event {
        let mut e = Event::new(Process::Client(p), kind, f, Value::Null);
        e.time = Some((t_s * 1e9) as u64);
        e.error = error.map(|s| Box::new(json!(s)));
        e
    }

    /// Orders over three windows: window 0 has a committed order, one
    /// refused at book-stock and one refused at ship; window 1 only an
    /// order that timed out; window 2 an order committed and a restock
    /// still open at the end (counted `info` where it was invoked). The
    /// ship row is then idle in window 1 and shows it red.
    #[test]
    fn counts_per_window_with_saga_steps() {
        use EventType::{Fail, Info, Invoke, Ok};
        let stock = "saga 2 compensated: book-stock: out of stock: item 1 has Some(0)";
        let ship = "saga 3 compensated: ship: no route to destination 0";
        let events = vec![
            ev(1, Invoke, "order", 0.5, None),
            ev(1, Ok, "order", 1.0, None),
            ev(2, Invoke, "order", 2.0, None),
            ev(2, Fail, "order", 3.0, Some(stock)),
            ev(3, Invoke, "order", 4.0, None),
            ev(3, Fail, "order", 9.9, Some(ship)),
            ev(1, Invoke, "order", 9.5, None),
            ev(1, Info, "order", 14.5, Some("timed out")),
            ev(2, Invoke, "restock", 21.0, None),
            ev(4, Invoke, "order", 20.0, None),
            ev(4, Ok, "order", 23.5, None),
        ];
        let mut nemesis = Event::new(Process::Nemesis, Invoke, "start", json!("kill"));
        nemesis.time = Some(15_000_000_000);
        let mut events = events;
        events.insert(7, nemesis);
        let c = step_counts(&History { events }, Some(20.0));
        assert_eq!(c.window_s, 10);
        assert!((c.end_s - 23.5).abs() < 1e-9, "{}", c.end_s);
        let names: Vec<(&str, &str)> = c
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.kind.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("order", "op"),
                ("reserve-credit", "step"),
                ("book-stock", "step"),
                ("ship", "step"),
                ("restock", "op")
            ]
        );
        let row = |n: &str| {
            let r = c.row(n).expect(n);
            (r.ok.clone(), r.fail.clone(), r.info.clone())
        };
        assert_eq!(row("order"), (vec![1, 0, 1], vec![2, 0, 0], vec![0, 1, 0]));
        assert_eq!(
            row("reserve-credit"),
            (vec![3, 0, 1], vec![0, 0, 0], vec![0, 0, 0])
        );
        assert_eq!(
            row("book-stock"),
            (vec![2, 0, 1], vec![1, 0, 0], vec![0; 3])
        );
        assert_eq!(row("ship"), (vec![1, 0, 1], vec![1, 0, 0], vec![0; 3]));
        assert_eq!(row("restock"), (vec![0; 3], vec![0; 3], vec![0, 0, 1]));
        // The JSON round-trips through results.json.
        let results = json!({"valid": true, "steps": c.to_json()});
        assert_eq!(StepCounts::from_results(&results), Some(c.clone()));
        let h = html(&c);
        assert!(h.contains("20–23.5* s (after)"), "{h}");
        assert_eq!(c.main_windows(), 2);
        // ship in window 1: idle though it ran elsewhere, red.
        assert!(
            h.contains("background:#f8d7da\"><b>0</b> <small>0/0</small>"),
            "{h}"
        );
        assert!(h.contains("↳ ship"), "{h}");
        // A history without times counts nothing, and says so.
        let mut untimed = ev(1, Invoke, "read", 0.0, None);
        untimed.time = None;
        let c = step_counts(
            &History {
                events: vec![untimed],
            },
            None,
        );
        assert!(c.rows.is_empty());
        assert!(html(&c).contains("No timed client operations"));
    }
}
