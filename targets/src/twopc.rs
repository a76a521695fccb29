//! Two-phase commit (`faultline-node twopc`) as a target: the same server
//! binary, deployment ([`NodeDb`]) and client ([`crate::node::NodeTarget`])
//! as the replication protocols, but only the bank workload — node 1
//! coordinates and every node holds a shard of the accounts, so a transfer
//! is a distributed transaction across one or two shards and a read is a
//! read-only transaction taking shared locks on every shard (see
//! `faultline_node::twopc` and docs/twopc.md).
//!
//! ```
//! let t = faultline_targets::twopc::info();
//! assert_eq!(t.name, "twopc");
//! assert!(t.bugs.iter().any(|(b, _)| *b == "decide-before-log"));
//! ```

use crate::db::{Db, DbContext, TargetInfo};
use crate::node::NodeDb;
use faultline_checker::history::{EventType, History};
use serde_json::{Value, json};
use std::path::Path;

pub const PROTOCOL: &str = "twopc";

/// The catalogue row.
pub fn info() -> TargetInfo {
    crate::node::node_info(PROTOCOL, build)
}

fn build(_: &str, ctx: &DbContext) -> Result<Box<dyn Db>, String> {
    crate::db::check_options(PROTOCOL, &ctx.options, &[])?;
    let d = NodeDb::from_ctx(PROTOCOL, ctx)?;
    Ok(Box::new(d))
}

/// Prepared periods shorter than this are only counted, not listed one by
/// one in results.json (a run has thousands of a few ms each).
pub const LISTED_MS: u64 = 50;

/// One participant's prepared (in-doubt) period, from its node log's
/// `note {"blocked":…}` lines ([`faultline_node::core::Core::notes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    pub node: String,
    pub tid: String,
    /// The node's wall clock (ms since the epoch) at the yes vote, and at
    /// the decision. Under the clock nemesis these are the faked clock.
    pub start_ms: u64,
    pub end_ms: u64,
    pub committed: bool,
    /// The vote was recovered from the log after the participant's own
    /// restart (the period then starts at the restart).
    pub recovered: bool,
}

/// The blocked periods in one node's log.
pub fn parse_periods(node: &str, log: &str) -> Vec<Period> {
    log.lines()
        .filter_map(|l| l.split_once(": note ").map(|(_, j)| j))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter_map(|n| {
            let tid = n.get("blocked")?.as_str()?.to_string();
            let end_ms = n.get("at_ms")?.as_u64()?;
            // 0: decided before the first tick after a restart.
            let start_ms = match n.get("since_ms").and_then(Value::as_u64) {
                Some(0) | None => end_ms,
                Some(s) => s.min(end_ms),
            };
            Some(Period {
                node: node.to_string(),
                tid,
                start_ms,
                end_ms,
                committed: n.get("committed").and_then(Value::as_bool) == Some(true),
                recovered: n.get("recovered").and_then(Value::as_bool) == Some(true),
            })
        })
        .collect()
}

/// A fault that left the coordinator unable to decide: it was killed,
/// paused, crashed or cut off (seconds since the history's start, from the
/// nemesis completions of its start and its heal).
#[derive(Clone, Debug, PartialEq)]
pub struct CoordinatorFault {
    pub fault: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// The windows in `history` where a fault hit `coordinator`.
pub fn coordinator_faults(history: &History, coordinator: &str) -> Vec<CoordinatorFault> {
    let mut out = Vec::new();
    let mut open: Option<CoordinatorFault> = None;
    let last = history.events.iter().filter_map(|e| e.time).max();
    for e in &history.events {
        let (true, EventType::Info, Some(t)) = (e.process.is_nemesis(), e.kind, e.time) else {
            continue;
        };
        let t = t as f64 / 1e9;
        let v = &e.value;
        if e.f == "start" && !v.is_null() {
            let hits = v["node"] == coordinator
                || v["isolated"] == coordinator
                || v["grudge"]
                    .get(coordinator)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            if hits {
                open = Some(CoordinatorFault {
                    fault: v["fault"].as_str().unwrap_or("fault").to_string(),
                    start_s: t,
                    end_s: t,
                });
            }
        } else if e.f == "heal"
            && !v.is_null()
            && let Some(mut f) = open.take()
        {
            f.end_s = t;
            out.push(f);
        }
    }
    if let (Some(mut f), Some(l)) = (open, last) {
        f.end_s = l as f64 / 1e9;
        out.push(f);
    }
    out
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

/// 2PC's blocking window of one run, for results.json's `blocking` field:
/// every participant's prepared periods (`t0_ms`: the controller's wall
/// clock at the history's time 0), their count and median / p99 / max
/// length, and for each fault on the coordinator the periods it overlapped
/// (`blocked`) and those already prepared when it struck (`caught`), with
/// the longest of each — while the coordinator is down a prepared
/// participant can neither commit nor abort, so a caught one lasts about
/// as long as the fault.
pub fn blocking_window(periods: &[Period], faults: &[CoordinatorFault], t0_ms: u64) -> Value {
    let rel = |ms: u64| (ms as f64 - t0_ms as f64) / 1000.0;
    let mut lens: Vec<u64> = periods.iter().map(|p| p.end_ms - p.start_ms).collect();
    lens.sort_unstable();
    let per_fault: Vec<Value> = faults
        .iter()
        .map(|f| {
            let over: Vec<&Period> = periods
                .iter()
                .filter(|p| rel(p.start_ms) <= f.end_s && rel(p.end_ms) >= f.start_s)
                .collect();
            let max = over.iter().map(|p| p.end_ms - p.start_ms).max();
            // Prepared when the fault struck (it had voted before, and no
            // decision came before the fault was in place): these wait.
            let caught: Vec<&&Period> = over
                .iter()
                .filter(|p| rel(p.start_ms) <= f.start_s && rel(p.end_ms) > f.start_s)
                .collect();
            json!({
                "fault": f.fault,
                "start_s": f.start_s,
                "end_s": f.end_s,
                "down_ms": ((f.end_s - f.start_s) * 1000.0).round() as u64,
                "blocked": over.len(),
                "max_blocked_ms": max,
                "caught": caught.len(),
                "max_caught_ms": caught.iter().map(|p| p.end_ms - p.start_ms).max(),
            })
        })
        .collect();
    let in_faults = periods
        .iter()
        .filter(|p| {
            faults
                .iter()
                .any(|f| rel(p.start_ms) <= f.end_s && rel(p.end_ms) >= f.start_s)
        })
        .count();
    let listed: Vec<Value> = periods
        .iter()
        .filter(|p| p.end_ms - p.start_ms >= LISTED_MS)
        .map(|p| {
            json!({
                "node": p.node, "tid": p.tid,
                "start_s": rel(p.start_ms), "end_s": rel(p.end_ms),
                "ms": p.end_ms - p.start_ms,
                "committed": p.committed, "recovered": p.recovered,
            })
        })
        .collect();
    json!({
        "about": "prepared (in-doubt) periods of the participants, from their logs: \
                  a participant that voted yes may neither commit nor abort until it \
                  hears the coordinator's decision",
        "t0_unix_ms": t0_ms,
        "periods": periods.len(),
        "committed": periods.iter().filter(|p| p.committed).count(),
        "recovered": periods.iter().filter(|p| p.recovered).count(),
        "median_ms": quantile(&lens, 0.5),
        "p99_ms": quantile(&lens, 0.99),
        "max_ms": lens.last().copied().unwrap_or(0),
        "in_coordinator_faults": in_faults,
        "coordinator_faults": per_fault,
        "listed_from_ms": LISTED_MS,
        "long": listed,
    })
}

/// [`blocking_window`] of a stored run: the node logs under
/// `run_dir/nodes/*/node.log` and the coordinator, node 1 (`n1`). `None`
/// when no log holds a note (an older faultline-node, or no log fetched).
pub fn blocking_of_run(run_dir: &Path, history: &History, t0_ms: u64) -> Option<Value> {
    let mut periods = Vec::new();
    let rd = std::fs::read_dir(run_dir.join("nodes")).ok()?;
    let mut dirs: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    dirs.sort_by_key(|e| e.file_name());
    for d in dirs {
        let node = d.file_name().to_string_lossy().into_owned();
        if let Ok(log) = std::fs::read_to_string(d.path().join("node.log")) {
            periods.extend(parse_periods(&node, &log));
        }
    }
    if periods.is_empty() {
        return None;
    }
    let faults = coordinator_faults(history, "n1");
    Some(blocking_window(&periods, &faults, t0_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_twopc_cluster_and_refuses_what_it_lacks() {
        let mut ctx = DbContext {
            nodes: vec![
                ("n1".into(), "10.77.19.11".into()),
                ("n2".into(), "10.77.19.12".into()),
            ],
            bugs: vec!["vote-before-log".into()],
            binary: Some("faultline-node".into()),
            ..DbContext::default()
        };
        let db = build(PROTOCOL, &ctx).unwrap();
        let cmd = db.start_command("n2").unwrap();
        assert!(cmd.contains("faultline-node twopc --id 2"), "{cmd}");
        assert!(cmd.contains("--bug vote-before-log"), "{cmd}");
        ctx.bugs = vec!["stale-read".into()];
        let e = build(PROTOCOL, &ctx).err().unwrap();
        assert!(
            e.contains("stale-read") && e.contains("vote-before-log"),
            "{e}"
        );
        ctx.bugs.clear();
        ctx.options.insert("lease-read".into(), "true".into());
        assert!(build(PROTOCOL, &ctx).is_err());
        assert!(crate::db::find(PROTOCOL).is_some());
    }

    /// A real twopc cluster on loopback (shell threads in this process) and
    /// the node client running the bank workload through it: setup, a
    /// transfer across two shards, an overdraft refused, a snapshot read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bank_through_a_loopback_cluster() {
        use crate::node::{NodeConfig, NodeTarget};
        use crate::{ClientOpts, Target};
        use faultline_workloads::{Completion, Op, Outcome, Workload, WorkloadOptions};
        use serde_json::json;
        let cluster = crate::loopback::start::<faultline_node::twopc::TwoPc>(
            PROTOCOL,
            "twopc",
            3,
            (50, 5),
            &[],
        );
        let target = NodeTarget::new(NodeConfig {
            protocol: PROTOCOL.into(),
            members: cluster.members.clone(),
        });
        let mut w = WorkloadOptions::new(Workload::Bank);
        w.accounts = 4;
        w.total_balance = 40;
        let opts = ClientOpts::new(w);
        // A participant's client follows the hint to the coordinator.
        let mut c = target.client("n3", &opts).await.unwrap();
        c.setup().await.unwrap();
        let t = json!({"from": 1, "to": 2, "amount": 3});
        assert_eq!(
            c.invoke(&Op::new("transfer", None, t.clone())).await,
            Completion::ok(t)
        );
        let over = json!({"from": 0, "to": 1, "amount": 11});
        let o = c.invoke(&Op::new("transfer", None, over)).await;
        assert_eq!(o.outcome, Outcome::Fail, "{o:?}");
        let r = c
            .invoke(&Op::new("read", None, serde_json::Value::Null))
            .await;
        assert_eq!(
            r,
            Completion::ok(json!({"0": 10, "1": 7, "2": 13, "3": 10}))
        );
        let _ = std::fs::remove_dir_all(&cluster.base);
    }

    #[test]
    fn blocking_window_lines_prepared_periods_up_with_coordinator_faults() {
        use faultline_checker::format::{Format, parse_reader};
        let log2 = "\
10:00:00.000 n2 twopc: starting: peers …
10:00:01.020 n2 twopc: note {\"blocked\":\"1.1\",\"since_ms\":1000,\"ticks\":1,\"committed\":true,\"recovered\":false,\"at_ms\":1020}
10:00:03.500 n2 twopc: note {\"blocked\":\"1.2\",\"since_ms\":1990,\"ticks\":150,\"committed\":false,\"recovered\":false,\"at_ms\":3500}
garbage: note {not json
10:00:03.510 n2 twopc: note {\"blocked\":\"2.1\",\"since_ms\":0,\"ticks\":0,\"committed\":true,\"recovered\":true,\"at_ms\":3510}
";
        let mut p = parse_periods("n2", log2);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!((p[1].start_ms, p[1].end_ms), (1990, 3500));
        assert_eq!(p[2].start_ms, p[2].end_ms, "no tick yet: zero length");
        p.extend(parse_periods("n3", "x n3 twopc: note {\"blocked\":\"1.2\",\"since_ms\":1995,\"ticks\":150,\"committed\":false,\"recovered\":false,\"at_ms\":3490}"));
        // History time 0 is wall clock 0.5 s; n1 killed from 1.5 s to 3 s.
        let h = parse_reader(
            r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"start","value":null}
{"index":1,"time":1500000000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","node":"n1"}}
{"index":2,"time":2900000000,"process":"nemesis","type":"info","f":"heal","value":null}
{"index":3,"time":3000000000,"process":"nemesis","type":"info","f":"heal","value":{"healed":[]}}
{"index":4,"time":3100000000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","node":"n2"}}
{"index":5,"time":3200000000,"process":"nemesis","type":"info","f":"heal","value":{"healed":[]}}
"#
            .as_bytes(),
            Format::Jsonl,
        )
        .unwrap();
        let f = coordinator_faults(&h, "n1");
        assert_eq!(f.len(), 1, "only n1's kill: {f:?}");
        assert_eq!((f[0].start_s, f[0].end_s), (1.5, 3.0));
        let b = blocking_window(&p, &f, 500);
        assert_eq!(b["periods"], 4);
        assert_eq!(b["max_ms"], 1510);
        assert_eq!(b["median_ms"], 20);
        assert_eq!(b["in_coordinator_faults"], 2);
        assert_eq!(b["coordinator_faults"][0]["blocked"], 2);
        assert_eq!(b["coordinator_faults"][0]["max_blocked_ms"], 1510);
        assert_eq!(b["coordinator_faults"][0]["down_ms"], 1500);
        assert_eq!(b["coordinator_faults"][0]["caught"], 2);
        assert_eq!(b["coordinator_faults"][0]["max_caught_ms"], 1510);
        assert_eq!(b["long"].as_array().map(Vec::len), Some(2));
        assert_eq!(b["long"][0]["start_s"], 1.49);
    }
}
