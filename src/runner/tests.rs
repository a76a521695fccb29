//! The runner's pacing against a node that is down: the backoff bounds how
//! often a client fails (and reconnects), and never stretches the time
//! limit or delays cancellation.

use super::*;
use faultline_workloads::{BoxFuture, Completion, Workload};
use std::sync::atomic::AtomicU32;

/// A node that is down from the second client on: the first clients
/// (opened at setup) answer every operation `fail` ("connection
/// refused") or, with `info`, `info` once; opening another client fails.
struct DownTarget {
    info: bool,
    opened: AtomicU32,
    opens_after_setup: Arc<AtomicU32>,
    setup_clients: u32,
}

impl DownTarget {
    fn new(info: bool, setup_clients: u32) -> DownTarget {
        DownTarget {
            info,
            opened: AtomicU32::new(0),
            opens_after_setup: Arc::new(AtomicU32::new(0)),
            setup_clients,
        }
    }
}

struct DownClient {
    info: bool,
}

impl Client for DownClient {
    fn invoke<'a>(&'a mut self, _: &'a Op) -> BoxFuture<'a, Completion> {
        let c = if self.info {
            Completion::info("connection reset")
        } else {
            Completion::fail("connection refused")
        };
        Box::pin(async move { c })
    }
}

impl Target for DownTarget {
    fn name(&self) -> &str {
        "down"
    }
    fn workloads(&self) -> &[Workload] {
        &[Workload::Counter]
    }
    fn client<'a>(
        &'a self,
        node: &'a str,
        _: &'a ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn Client>, TargetError>> {
        let n = self.opened.fetch_add(1, Ordering::SeqCst);
        let r = if n < self.setup_clients {
            Ok(Box::new(DownClient { info: self.info }) as Box<dyn Client>)
        } else {
            self.opens_after_setup.fetch_add(1, Ordering::SeqCst);
            Err(TargetError::Open {
                node: node.to_string(),
                message: "connection refused".into(),
            })
        };
        Box::pin(async move { r })
    }
}

fn cfg(secs: f64) -> RunConfig {
    let mut c = RunConfig::new(
        WorkloadOptions::new(Workload::Counter),
        vec!["n1".into(), "n2".into()],
    );
    c.concurrency = 3;
    c.time_limit = Duration::from_secs_f64(secs);
    c.recovery = Duration::from_millis(10);
    // Unbounded by the schedule: only the backoff paces.
    c.rate = Some(1e6);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_clients_back_off_within_the_time_limit() {
    // Setup opens one client (for `setup`) and one per worker.
    let target = DownTarget::new(false, 4);
    let sink = MemorySink::new();
    let began = Instant::now();
    let out = run_test(
        cfg(2.0),
        Arc::new(target),
        sink.clone(),
        RunControl::default(),
    )
    .await
    .expect("run");
    assert!(
        began.elapsed() < Duration::from_millis(2600),
        "{:?}",
        began.elapsed()
    );
    // Waits of 5-10, 10-20, … ms: about 9 failures each in 2 s, where an
    // unpaced loop makes tens of thousands.
    assert!(out.fail >= 3 * 5 && out.fail <= 3 * 12, "{out:?}");
    assert_eq!(out.ok, 0);
    let p = &out.pacing;
    assert_eq!((p.rate, p.default_rate), (1e6, false));
    assert!(p.backoffs >= out.fail, "{p:?}");
    assert!(p.fails.worst_per_s() <= 1.2, "{p:?}");
    let events = sink.events();
    assert_eq!(p.history_bytes, {
        let mut n = 0;
        for e in &events {
            let mut v = Vec::new();
            write_jsonl(&mut v, e).expect("serialises");
            n += v.len() as u64;
        }
        Some(n)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connects_back_off_too() {
    // Every operation is `info`, so each worker needs a new client, and
    // every open after setup is refused.
    let target = Arc::new(DownTarget::new(true, 4));
    let opens = Arc::clone(&target.opens_after_setup);
    let out = run_test(cfg(1.5), target, MemorySink::new(), RunControl::default())
        .await
        .expect("run");
    assert_eq!(out.info, 3, "{out:?}");
    let n = opens.load(Ordering::SeqCst);
    // About 8 tries each in 1.5 s; a 100 ms fixed retry would be 15.
    assert!((3..=3 * 10).contains(&n), "{n} refused opens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_cuts_a_backoff_short() {
    let target = DownTarget::new(false, 4);
    let ctl = RunControl::default();
    let cancel = ctl.cancel.clone();
    let began = Instant::now();
    let run = tokio::spawn(run_test(
        cfg(30.0),
        Arc::new(target),
        MemorySink::new(),
        ctl,
    ));
    // By 1.5 s every worker is in a backoff of ~0.3-1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cancel.cancel();
    let out = run.await.expect("joins").expect("run");
    assert!(out.cancelled);
    assert!(
        began.elapsed() < Duration::from_millis(1800),
        "{:?}",
        began.elapsed()
    );
}
