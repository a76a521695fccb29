//! What `hunt` learns from a run: its history abstracted into a few
//! discrete *behaviour states*, one per fault window, and the transitions
//! between consecutive windows. A state is what a client could see while
//! the fault was on: how available the system was, how many operations
//! were left unknown, how much slower it answered, how many nodes answered
//! (a leader change shows as a second node answering), what errors came
//! back, and whether the nemesis could do what it was asked.
//!
//! This is the black-box half of Mallory's abstraction (Meng et al., CCS
//! 2023, §4: states from observed events, new states rewarded). The
//! system's own events (`nodes/<node>/events.jsonl`: roles, terms,
//! truncations) are not recorded yet; they will be more [`Features`] of
//! the same window, hashed into the same state.
//!
//! Pure: reads a history's text, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// What one fault window showed, in buckets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Features {
    /// The fault kind (`kill`, `isolate-leader`, …), `none` before the
    /// first fault.
    pub fault: String,
    /// Share of completions that were `ok`: 0 none, 1 < 50 %, 2 < 90 %, 3 more.
    pub availability: u8,
    /// Share of `info` completions: 0 none, 1 < 10 %, 2 more.
    pub unknown: u8,
    /// Median latency against the run's: 0 < 1.5×, 1 < 4×, 2 more.
    pub slowdown: u8,
    /// Distinct nodes that answered `ok`: 0, 1, 2 (or more).
    pub answering: u8,
    /// The errors seen, normalised (digits dropped), at most three.
    pub errors: Vec<String>,
    /// The nemesis reported an error starting the fault.
    pub nemesis_error: bool,
}

impl Features {
    /// The state's name (stable across runs: the coverage key).
    pub fn key(&self) -> String {
        format!(
            "{}|a{}|u{}|s{}|n{}|e[{}]{}",
            self.fault,
            self.availability,
            self.unknown,
            self.slowdown,
            self.answering,
            self.errors.join(","),
            if self.nemesis_error {
                "|nemesis-error"
            } else {
                ""
            }
        )
    }
}

/// A run's behaviour: its windows' states, in order (coverage counts
/// each state and each pair of consecutive states: `hunt`'s `novelty`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Behaviour {
    pub windows: Vec<Features>,
}

#[derive(Default)]
struct Window {
    fault: String,
    nemesis_error: bool,
    ok: usize,
    fail: usize,
    info: usize,
    latencies: Vec<u64>,
    nodes: BTreeSet<String>,
    errors: BTreeSet<String>,
}

fn bucket(x: f64, edges: &[f64]) -> u8 {
    edges.iter().take_while(|e| x >= **e).count() as u8
}

fn median(v: &mut [u64]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// An error's class: its first few words, digits and addresses dropped.
fn error_class(e: &str) -> String {
    e.split_whitespace()
        .take(3)
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphabetic() || *c == '-' || *c == '_')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The behaviour of a history (JSON Lines, as `history.jsonl`). Lines that
/// are not JSON objects are skipped: a killed run's last line may be cut.
pub fn behaviour(history: &str) -> Behaviour {
    let mut windows: Vec<Window> = vec![Window {
        fault: "none".into(),
        ..Window::default()
    }];
    let mut pending: BTreeMap<String, u64> = BTreeMap::new();
    let mut all_latencies = Vec::new();
    for line in history.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let time = v.get("time").and_then(Value::as_u64).unwrap_or(0);
        let typ = v.get("type").and_then(Value::as_str).unwrap_or("");
        let process = match v.get("process") {
            Some(Value::String(s)) => s.clone(),
            Some(p) => p.to_string(),
            None => continue,
        };
        if process == "nemesis" {
            let f = v.get("f").and_then(Value::as_str).unwrap_or("");
            let value = v.get("value").unwrap_or(&Value::Null);
            let err = v.get("error").is_some_and(|e| !e.is_null());
            // Each call is recorded twice: before (null value) and after.
            if f == "start" && (!value.is_null() || err) {
                let fault = value
                    .get("fault")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                windows.push(Window {
                    fault,
                    nemesis_error: err,
                    ..Window::default()
                });
            } else if f == "heal" && value.is_null() && !err {
                windows.push(Window {
                    fault: "healed".into(),
                    ..Window::default()
                });
            }
            continue;
        }
        let Some(w) = windows.last_mut() else {
            continue;
        };
        match typ {
            "invoke" => {
                pending.insert(process, time);
            }
            "ok" | "fail" | "info" => {
                if let Some(t0) = pending.remove(&process) {
                    let l = time.saturating_sub(t0);
                    w.latencies.push(l);
                    all_latencies.push(l);
                }
                match typ {
                    "ok" => {
                        w.ok += 1;
                        if let Some(n) = v.get("node").and_then(Value::as_str) {
                            w.nodes.insert(n.to_string());
                        }
                    }
                    "fail" => w.fail += 1,
                    _ => w.info += 1,
                }
                if let Some(e) = v.get("error").and_then(Value::as_str) {
                    w.errors.insert(error_class(e));
                }
            }
            _ => {}
        }
    }
    let overall = median(&mut all_latencies).unwrap_or(1).max(1) as f64;
    let windows = windows
        .into_iter()
        .filter(|w| w.ok + w.fail + w.info > 0 || w.fault != "healed")
        .map(|mut w| {
            let n = (w.ok + w.fail + w.info).max(1) as f64;
            let ok = w.ok as f64 / n;
            let slow = median(&mut w.latencies).map_or(0.0, |m| m as f64 / overall);
            Features {
                availability: if w.ok == 0 {
                    0
                } else {
                    1 + bucket(ok, &[0.5, 0.9])
                },
                unknown: if w.info == 0 {
                    0
                } else {
                    1 + bucket(w.info as f64 / n, &[0.1])
                },
                slowdown: bucket(slow, &[1.5, 4.0]),
                answering: w.nodes.len().min(2) as u8,
                errors: w.errors.into_iter().take(3).collect(),
                nemesis_error: w.nemesis_error,
                fault: w.fault,
            }
        })
        .collect();
    Behaviour { windows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(v: Value) -> String {
        v.to_string()
    }

    /// A history with one kill window that took the system down and one
    /// isolation that moved the answers to another node.
    fn history() -> String {
        use serde_json::json;
        let mut h = Vec::new();
        let mut t = 0u64;
        let mut op = |h: &mut Vec<String>, p: u64, typ: &str, node: &str, err: Option<&str>, dt| {
            h.push(line(
                json!({"process": p, "type": "invoke", "f": "write", "time": t}),
            ));
            t += dt;
            let mut v = json!({"process": p, "type": typ, "f": "write", "time": t, "node": node});
            if let Some(e) = err {
                v["error"] = json!(e);
            }
            h.push(line(v));
        };
        for _ in 0..10 {
            op(&mut h, 0, "ok", "n1", None, 1_000_000);
        }
        h.push(line(
            json!({"process": "nemesis", "type": "info", "f": "start", "value": null}),
        ));
        h.push(line(
            json!({"process": "nemesis", "type": "info", "f": "start",
            "value": {"fault": "kill", "node": "n1"}}),
        ));
        for _ in 0..4 {
            op(
                &mut h,
                0,
                "info",
                "n1",
                Some("timeout after 5000 ms"),
                50_000_000,
            );
        }
        h.push(line(
            json!({"process": "nemesis", "type": "info", "f": "heal", "value": null}),
        ));
        h.push(line(
            json!({"process": "nemesis", "type": "info", "f": "heal", "value": {}}),
        ));
        h.push(line(
            json!({"process": "nemesis", "type": "info", "f": "start", "value": null}),
        ));
        h.push(line(
            json!({"process": "nemesis", "type": "info", "f": "start",
            "value": {"fault": "isolate-leader", "node": "n1"}}),
        ));
        op(&mut h, 0, "ok", "n2", None, 1_000_000);
        op(&mut h, 0, "ok", "n3", None, 1_000_000);
        op(&mut h, 0, "fail", "n1", Some("not leader 3"), 1_000_000);
        h.push("{\"process\": 0, \"ty".into());
        h.join("\n")
    }

    #[test]
    fn windows_are_abstracted_into_states() {
        let b = behaviour(&history());
        let keys: Vec<String> = b.windows.iter().map(Features::key).collect();
        assert_eq!(
            keys,
            [
                "none|a3|u0|s0|n1|e[]",
                "kill|a0|u2|s2|n0|e[timeout after]",
                "isolate-leader|a2|u0|s0|n2|e[not leader]",
            ],
            "{b:#?}"
        );
        // The same history is the same behaviour; another is not.
        assert_eq!(behaviour(&history()), b);
        assert_ne!(behaviour(&history().replace("\"n3\"", "\"n2\"")), b);
    }
}
