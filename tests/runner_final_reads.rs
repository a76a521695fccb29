//! Final reads on every node (`Target::final_reads_per_node`, the CRDT
//! target's capability): after the heal the runner reads each node through
//! a client bound to it — also nodes no worker used — and the history then
//! has one final read per node, which `crdt-convergence` needs. While the
//! nodes' answers differ the runner reads them all again (a lagging
//! replica), and the checker judges each node's last answer.

use faultline::runner::{MemorySink, RunConfig, RunControl, run_test};
use faultline_checker::{EventType, History, Process, Verdict};
use faultline_targets::noop::NoopTarget;
use faultline_targets::{Client, ClientOpts, Target, TargetError};
use faultline_workloads::{BoxFuture, Completion, Op, Outcome, Workload, WorkloadOptions};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The noop store, asking for per-node final reads; n3's first `.2`
/// reads answer as a replica that has not merged anything yet.
struct PerNode(NoopTarget, bool, u32);

/// A client whose first `stale` ok reads answer -1.
struct Lagging {
    inner: Box<dyn Client>,
    stale: u32,
}

impl Client for Lagging {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            let c = self.inner.invoke(op).await;
            if op.f == "read" && c.outcome == Outcome::Ok && self.stale > 0 {
                self.stale -= 1;
                return Completion::ok(json!(-1));
            }
            c
        })
    }
}

impl Target for PerNode {
    fn name(&self) -> &str {
        "per-node"
    }
    fn workloads(&self) -> &[Workload] {
        self.0.workloads()
    }
    fn client<'a>(
        &'a self,
        node: &'a str,
        opts: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        Box::pin(async move {
            let c = self.0.client(node, opts).await?;
            Ok(if node == "n3" && self.2 > 0 {
                Box::new(Lagging {
                    inner: c,
                    stale: self.2,
                }) as Box<dyn Client>
            } else {
                c
            })
        })
    }
    fn final_reads_per_node(&self) -> bool {
        self.1
    }
}

fn run(w: Workload, per_node: bool) -> History {
    run_lagging(w, per_node, 0)
}

/// A run where n3's first `stale` reads lag.
fn run_lagging(w: Workload, per_node: bool, stale: u32) -> History {
    let mut c = RunConfig::new(
        WorkloadOptions::new(w),
        vec!["n1".into(), "n2".into(), "n3".into()],
    );
    // Two workers for three nodes: n3 is read by a fresh final reader.
    c.concurrency = 2;
    c.time_limit = Duration::from_millis(300);
    c.recovery = Duration::from_millis(10);
    c.seed = 5;
    let sink = MemorySink::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let target = Arc::new(PerNode(NoopTarget::new(), per_node, stale));
    let out = rt
        .block_on(run_test(c, target, sink.clone(), RunControl::default()))
        .expect("run");
    let want = (per_node || w.needs_final_read()).then_some(true);
    assert_eq!(out.final_reads_ok, want);
    History {
        events: sink.events(),
    }
}

/// (node, process) of the ok reads after the last nemesis event.
fn final_reads(h: &History) -> Vec<(String, u64)> {
    let last = h
        .events
        .iter()
        .rposition(|e| e.process.is_nemesis())
        .expect("the heal");
    h.events[last..]
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == "read")
        .filter_map(|e| match e.process {
            Process::Client(p) => Some((e.node.as_deref().unwrap_or_default().to_string(), p)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_node_is_read_after_the_heal_and_convergence_is_judged() {
    let h = run(Workload::Counter, true);
    let finals = final_reads(&h);
    let nodes: Vec<&str> = finals.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    // The fresh reader's process id is new.
    let procs: BTreeSet<u64> = finals.iter().map(|(_, p)| *p).collect();
    assert_eq!(procs.len(), 3);
    assert!(finals[2].1 >= 2, "{finals:?}");
    let r = faultline_checker::crdt::check_convergence(&h, None).expect("pairs");
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
}

#[test]
fn other_targets_keep_one_final_read_and_none_for_counters() {
    let h = run(Workload::Set, false);
    assert_eq!(final_reads(&h).len(), 1);
    let h = run(Workload::Counter, false);
    assert!(final_reads(&h).is_empty());
    // Without per-node reads convergence cannot be judged: unknown.
    let r = faultline_checker::crdt::check_convergence(&h, None).expect("pairs");
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.text);
}

#[test]
fn a_lagging_replica_is_read_again_and_judged_by_its_last_answer() {
    // One stale answer: a second round, where n3 agrees: valid.
    let h = run_lagging(Workload::Counter, true, 1);
    let nodes: Vec<String> = final_reads(&h).into_iter().map(|(n, _)| n).collect();
    assert_eq!(nodes, ["n1", "n2", "n3", "n1", "n2", "n3"]);
    let r = faultline_checker::crdt::check_convergence(&h, None).expect("pairs");
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.text);
    // A replica that never catches up: four rounds, then divergent.
    let h = run_lagging(Workload::Counter, true, u32::MAX);
    assert_eq!(final_reads(&h).len(), 12);
    let r = faultline_checker::crdt::check_convergence(&h, None).expect("pairs");
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.text);
    // (-1 is also below every possible count: out-of-bounds too.)
    assert!(
        r.json["anomaly_types"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("divergent"))),
        "{}",
        r.text
    );
}
