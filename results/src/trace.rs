//! A run's message traces, read back and cut to a view: the data behind
//! `faultline trace` and the space-time diagram ([`crate::trace_svg`]).
//!
//! [`load_run`] reads every `nodes/<node>/messages.jsonl`
//! ([`faultline_trace::Record`]), the client operations and fault windows
//! of `history.jsonl`, and the run's start on the wall clock
//! (`results.json` `run.t0_unix_ms`) that puts both on one time axis.
//! [`select`] matches each send with its receive and keeps what a
//! [`TraceWindow`] asks for.

use crate::plots::fault_windows;
use faultline_checker::{History, Outcome};
use faultline_trace::{Body, MESSAGES_FILE, Record};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Arrows per diagram unless told otherwise: more are unreadable.
pub const MAX_ARROWS: usize = 200;

/// A client operation on the wall clock (ms since the Unix epoch).
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOp {
    /// `write 3`, `read → 2`.
    pub label: String,
    pub node: Option<String>,
    pub start_ms: u64,
    /// `None`: never certainly returned (info or still open).
    pub end_ms: Option<u64>,
    pub outcome: Outcome,
}

/// A fault's active span on the wall clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub label: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Everything a diagram is drawn from.
#[derive(Clone, Debug, Default)]
pub struct TraceData {
    pub records: Vec<Record>,
    pub ops: Vec<ClientOp>,
    pub faults: Vec<Fault>,
    /// The test's start on the wall clock, when the run recorded it.
    pub t0_ms: Option<u64>,
}

/// What part of a trace to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceWindow {
    /// Wall-clock bounds (ms since the epoch), inclusive.
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    /// Only these nodes (empty: all).
    pub nodes: Vec<String>,
    /// Only these message types (empty: all).
    pub types: Vec<String>,
    pub max_arrows: usize,
}

impl Default for TraceWindow {
    fn default() -> Self {
        TraceWindow {
            from_ms: None,
            to_ms: None,
            nodes: Vec::new(),
            types: Vec::new(),
            max_arrows: MAX_ARROWS,
        }
    }
}

/// A run's trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceLoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] faultline_trace::ParseError),
    #[error("{0}")]
    History(String),
    #[error(
        "{0}: no nodes/*/{MESSAGES_FILE} (only runs of faultline's own protocols, made since the trace exists, have one)"
    )]
    NoTrace(String),
}

/// Reads a run directory's traces, history and start time. Node names are
/// the run's directory names (`nodes/<name>/`), for records and peers alike.
pub fn load_run(run: &Path) -> Result<TraceData, TraceLoadError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| TraceLoadError::Io { path, source }
    };
    let nodes_dir = run.join("nodes");
    let mut dirs: Vec<_> = std::fs::read_dir(&nodes_dir)
        .map_err(io(&nodes_dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(MESSAGES_FILE).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(TraceLoadError::NoTrace(run.display().to_string()));
    }
    let mut records = Vec::new();
    let mut rename = HashMap::new();
    for d in dirs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let f = d.join(MESSAGES_FILE);
        let text = std::fs::read_to_string(&f).map_err(io(&f))?;
        let rs = faultline_trace::parse(&text, &f.display().to_string())?;
        if let Some(r) = rs.first() {
            rename.insert(r.node.clone(), name);
        }
        records.extend(rs);
    }
    let renamed = |n: &mut String| {
        if let Some(to) = rename.get(n.as_str()) {
            n.clone_from(to);
        }
    };
    for r in &mut records {
        renamed(&mut r.node);
        match &mut r.body {
            Body::Send { to, .. } => renamed(to),
            Body::Recv { from, .. } => renamed(from),
            Body::Event(o) => {
                if let Some(l) = o.leader.as_mut() {
                    renamed(l);
                }
            }
        }
    }
    let t0_ms = std::fs::read_to_string(run.join(crate::store::RESULTS_JSON))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["run"]["t0_unix_ms"].as_u64())
        .filter(|t| *t > 0);
    let mut data = TraceData {
        records,
        t0_ms,
        ..TraceData::default()
    };
    let hist = run.join(crate::store::HISTORY_JSONL);
    if let (Some(t0), true) = (t0_ms, hist.is_file()) {
        let h = faultline_checker::format::parse_file(&hist, None)
            .map_err(|e| TraceLoadError::History(e.to_string()))?;
        overlay(&h, t0, &mut data);
    }
    Ok(data)
}

/// The client operations and fault windows of `h`, on the wall clock.
pub fn overlay(h: &History, t0_ms: u64, data: &mut TraceData) {
    let at = |ns: u64| t0_ms + ns / 1_000_000;
    if let Ok(p) = h.pair() {
        for op in p.operations {
            let inv = &h.events[op.invoke];
            let Some(start) = inv.time else { continue };
            let end = op.complete.and_then(|c| h.events[c].time);
            let value = match op.outcome {
                Outcome::Ok if op.value != op.invoke_value => {
                    format!("{} → {}", op.invoke_value, op.value)
                }
                _ => op.invoke_value.to_string(),
            };
            data.ops.push(ClientOp {
                label: format!("{} {value}", op.f),
                node: inv.node.as_deref().map(str::to_string),
                start_ms: at(start),
                end_ms: end.map(at),
                outcome: op.outcome,
            });
        }
    }
    data.faults = fault_windows(h)
        .into_iter()
        .map(|w| Fault {
            label: w.label,
            start_ms: at(w.start_ns),
            end_ms: at(w.end_ns),
        })
        .collect();
}

/// A message in a view: its send, and its receive when there was one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub send: &'a Record,
    pub recv: Option<&'a Record>,
}

impl Message<'_> {
    pub fn ty(&self) -> &str {
        self.send.message_type().unwrap_or("")
    }

    pub fn to(&self) -> &str {
        match &self.send.body {
            Body::Send { to, .. } => to,
            _ => "",
        }
    }
}

/// What a window selects.
#[derive(Clone, Debug, Default)]
pub struct View<'a> {
    /// Lanes, in order.
    pub nodes: Vec<String>,
    /// In Lamport order of their sends, at most `max_arrows`.
    pub messages: Vec<Message<'a>>,
    /// Protocol events in the window.
    pub events: Vec<&'a Record>,
    /// Messages the window held before the cut to `max_arrows`.
    pub total: usize,
}

impl View<'_> {
    /// Messages left out by the cut.
    pub fn cut(&self) -> usize {
        self.total - self.messages.len()
    }
}

/// Matches sends with receives (on sender, its clock, receiver) and keeps
/// what `w` asks for: messages sent in the window between shown nodes, of
/// the asked types, the first `max_arrows` in Lamport order.
pub fn select<'a>(data: &'a TraceData, w: &TraceWindow) -> View<'a> {
    let in_time =
        |r: &Record| w.from_ms.is_none_or(|f| r.at_ms >= f) && w.to_ms.is_none_or(|t| r.at_ms <= t);
    let all_nodes: BTreeSet<&str> = data.records.iter().map(|r| r.node.as_str()).collect();
    let nodes: Vec<String> = all_nodes
        .iter()
        .filter(|n| w.nodes.is_empty() || w.nodes.iter().any(|x| x == *n))
        .map(|n| n.to_string())
        .collect();
    let shown = |n: &str| nodes.iter().any(|x| x == n);
    let mut recvs: HashMap<(&str, u64, &str), &Record> = HashMap::new();
    for r in &data.records {
        if let Body::Recv { from, sent_lc, .. } = &r.body {
            recvs.insert((from.as_str(), *sent_lc, r.node.as_str()), r);
        }
    }
    let mut messages: Vec<Message> = data
        .records
        .iter()
        .filter(|r| in_time(r) && shown(&r.node))
        .filter_map(|r| match &r.body {
            Body::Send { to, ty, .. }
                if shown(to) && (w.types.is_empty() || w.types.iter().any(|t| t == ty)) =>
            {
                Some(Message {
                    send: r,
                    recv: recvs.get(&(r.node.as_str(), r.lc, to.as_str())).copied(),
                })
            }
            _ => None,
        })
        .collect();
    messages.sort_by(|a, b| (a.send.lc, &a.send.node).cmp(&(b.send.lc, &b.send.node)));
    let total = messages.len();
    messages.truncate(w.max_arrows);
    let mut events: Vec<&Record> = data
        .records
        .iter()
        .filter(|r| matches!(r.body, Body::Event(_)) && in_time(r) && shown(&r.node))
        .collect();
    // Events within the span of the kept messages only, so a cut view is
    // not stretched by events far after its last arrow.
    if total > messages.len()
        && let Some(last) = messages.iter().map(|m| m.send.lc).max()
    {
        events.retain(|e| e.lc <= last);
    }
    events.sort_by(|a, b| (a.lc, &a.node).cmp(&(b.lc, &b.node)));
    View {
        nodes,
        messages,
        events,
        total,
    }
}

/// Messages per (type, from, to): sent and received; over the whole window
/// (not cut to `max_arrows`).
pub fn counts(data: &TraceData, w: &TraceWindow) -> BTreeMap<(String, String, String), (u64, u64)> {
    let all = TraceWindow {
        max_arrows: usize::MAX,
        ..w.clone()
    };
    let mut out = BTreeMap::new();
    for m in select(data, &all).messages {
        let e = out
            .entry((m.ty().to_string(), m.send.node.clone(), m.to().to_string()))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::from(m.recv.is_some());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use faultline_trace::{EventKind, Lamport, Observation};

    /// A small cluster's trace built with real Lamport clocks: `n1` runs
    /// for leader (Prepare to n2, n3; Promises back; then Accepts), and
    /// the Accept to n3 is lost.
    pub(crate) fn duel() -> TraceData {
        let mut c: BTreeMap<&str, Lamport> =
            ["n1", "n2", "n3"].map(|n| (n, Lamport::default())).into();
        let mut rs = Vec::new();
        let mut t = 1_000u64;
        let mut send = |rs: &mut Vec<Record>,
                        c: &mut BTreeMap<&str, Lamport>,
                        from: &str,
                        to: &str,
                        ty: &str,
                        recv: bool| {
            t += 1;
            let lc = c.get_mut(from).unwrap().tick();
            rs.push(Record {
                node: from.into(),
                lc,
                at_ms: t,
                body: Body::Send {
                    to: to.into(),
                    ty: ty.into(),
                    summary: format!("{ty} from {from}"),
                },
            });
            if recv {
                t += 1;
                let rl = c.get_mut(to).unwrap().receive(lc);
                rs.push(Record {
                    node: to.into(),
                    lc: rl,
                    at_ms: t,
                    body: Body::Recv {
                        from: from.into(),
                        sent_lc: lc,
                        ty: ty.into(),
                        summary: format!("{ty} from {from}"),
                    },
                });
            }
        };
        // n3 is busy first, so its clock runs ahead.
        for _ in 0..5 {
            send(&mut rs, &mut c, "n3", "n2", "Heartbeat", true);
        }
        send(&mut rs, &mut c, "n1", "n2", "Prepare", true);
        send(&mut rs, &mut c, "n1", "n3", "Prepare", true);
        send(&mut rs, &mut c, "n2", "n1", "Promise", true);
        send(&mut rs, &mut c, "n3", "n1", "Promise", true);
        let lc = c.get_mut("n1").unwrap().tick();
        rs.push(Record {
            node: "n1".into(),
            lc,
            at_ms: 1_018,
            body: Body::Event(Observation {
                event: EventKind::Role,
                role: Some("leader".into()),
                term: Some(2),
                leader: Some("n1".into()),
                commit: Some(0),
            }),
        });
        send(&mut rs, &mut c, "n1", "n2", "Accept", true);
        send(&mut rs, &mut c, "n1", "n3", "Accept", false);
        TraceData {
            records: rs,
            t0_ms: Some(900),
            ..TraceData::default()
        }
    }

    #[test]
    fn select_matches_sends_with_receives_and_finds_the_lost_one() {
        let d = duel();
        let v = select(&d, &TraceWindow::default());
        assert_eq!(v.nodes, ["n1", "n2", "n3"]);
        assert_eq!(v.total, 11);
        let lost: Vec<_> = v.messages.iter().filter(|m| m.recv.is_none()).collect();
        assert_eq!(lost.len(), 1);
        assert_eq!((lost[0].ty(), lost[0].to()), ("Accept", "n3"));
        for m in &v.messages {
            if let Some(r) = m.recv {
                assert!(r.lc > m.send.lc, "{m:?}");
            }
        }
        assert_eq!(v.events.len(), 1);
    }

    #[test]
    fn windows_filter_by_type_node_time_and_cut_with_a_count() {
        let d = duel();
        let w = TraceWindow {
            types: vec!["Prepare".into(), "Promise".into()],
            ..TraceWindow::default()
        };
        let c = counts(&d, &w);
        assert_eq!(c[&("Prepare".into(), "n1".into(), "n3".into())], (1, 1));
        assert_eq!(c.len(), 4);
        let w = TraceWindow {
            nodes: vec!["n1".into(), "n2".into()],
            ..TraceWindow::default()
        };
        let v = select(&d, &w);
        assert!(
            v.messages
                .iter()
                .all(|m| m.to() != "n3" && m.send.node != "n3")
        );
        let w = TraceWindow {
            max_arrows: 3,
            ..TraceWindow::default()
        };
        let v = select(&d, &w);
        assert_eq!((v.messages.len(), v.cut()), (3, 8));
        let w = TraceWindow {
            from_ms: Some(1_019),
            ..TraceWindow::default()
        };
        assert!(select(&d, &w).messages.iter().all(|m| m.ty() == "Accept"));
    }
}
