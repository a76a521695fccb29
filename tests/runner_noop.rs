//! The runner against the in-process noop target: histories pair, process
//! ids follow the rules, timeouts become `info`, cancellation still heals.

use faultline::runner::{
    Cancel, JsonlSink, MemorySink, NemesisDriver, RunConfig, RunControl, RunError, parse_jsonl,
    run_test,
};
use faultline_checker::{Event, EventType, History, Outcome, Process, Value};
use faultline_targets::noop::{Delays, NoopTarget};
use faultline_workloads::{BoxFuture, Workload, WorkloadOptions};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn cfg(w: Workload, concurrency: usize, secs: f64) -> RunConfig {
    let mut c = RunConfig::new(
        WorkloadOptions::new(w),
        vec!["n1".into(), "n2".into(), "n3".into()],
    );
    c.concurrency = concurrency;
    c.time_limit = Duration::from_secs_f64(secs);
    c.recovery = Duration::from_millis(10);
    c.op_timeout = Duration::from_secs(1);
    c.seed = 42;
    c
}

fn read_jsonl(path: &std::path::Path) -> History {
    let text = std::fs::read_to_string(path).expect("read history");
    let events = text
        .lines()
        .enumerate()
        .map(|(i, l)| parse_jsonl(l, i + 1).expect("valid line"))
        .collect();
    History { events }
}

fn client_processes(h: &History) -> BTreeSet<u64> {
    h.events
        .iter()
        .filter_map(|e| match e.process {
            Process::Client(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Index and time increase in file order; every client event has a node.
fn assert_well_formed(h: &History) {
    let mut last_time = 0;
    for (i, e) in h.events.iter().enumerate() {
        assert_eq!(e.index, Some(i as u64));
        let t = e.time.expect("time");
        assert!(t >= last_time, "time went backwards at {i}");
        last_time = t;
        if !e.process.is_nemesis() {
            assert!(e.node.is_some(), "event {i} has no node");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_history_pairs_from_jsonl() {
    let path = std::env::temp_dir().join(format!("faultline-runner-{}.jsonl", std::process::id()));
    let sink = JsonlSink::create(&path).expect("create history");
    let out = run_test(
        cfg(Workload::ListAppend, 4, 0.5),
        Arc::new(NoopTarget::new()),
        sink,
        RunControl::default(),
    )
    .await
    .expect("run");
    let h = read_jsonl(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.events as usize, h.events.len());
    assert!(out.ok > 100, "{out:?}");
    assert_eq!((out.info, out.cancelled), (0, false));
    assert_well_formed(&h);
    let paired = h.pair().expect("history pairs");
    assert_eq!(
        client_processes(&h),
        (0..4).collect(),
        "one process per worker"
    );
    assert!(paired.operations.iter().all(|o| o.outcome == Outcome::Ok));
    // Heal before and after the main phase: two calls, two events each.
    assert_eq!(paired.nemesis.len(), 4);
    // Workers spread over the nodes.
    let nodes: BTreeSet<_> = h.events.iter().filter_map(|e| e.node.clone()).collect();
    assert_eq!(nodes.len(), 3);
    // Reads see the appends: some read returns a non-empty list.
    let read_something = paired.operations.iter().any(|o| {
        o.value
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m[0] == "r" && m[2].as_array().is_some_and(|l| !l.is_empty()))
    });
    assert!(read_something);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_gets_a_final_read_with_every_add() {
    let sink = MemorySink::new();
    let out = run_test(
        cfg(Workload::Set, 3, 0.3),
        Arc::new(NoopTarget::new()),
        sink.clone(),
        RunControl::default(),
    )
    .await
    .expect("run");
    assert_eq!(out.final_reads_ok, Some(true));
    let h = History {
        events: sink.events(),
    };
    let paired = h.pair().expect("pairs");
    let last = paired.operations.last().expect("ops");
    assert_eq!((last.f.as_str(), last.outcome), ("read", Outcome::Ok));
    let added: BTreeSet<u64> = paired
        .operations
        .iter()
        .filter(|o| o.f == "add" && o.outcome == Outcome::Ok)
        .filter_map(|o| o.value.as_u64())
        .collect();
    let read: BTreeSet<u64> = last
        .value
        .as_array()
        .expect("read value is a list")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(!added.is_empty());
    assert_eq!(added, read);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_become_info_with_fresh_processes() {
    let n = 4u64;
    let mut c = cfg(Workload::Register, n as usize, 1.0);
    c.op_timeout = Duration::from_millis(30);
    let target = NoopTarget::with_delays(Delays {
        probability: 0.2,
        delay: Duration::from_millis(100),
        seed: 1,
    });
    let sink = MemorySink::new();
    let out = run_test(c, Arc::new(target), sink.clone(), RunControl::default())
        .await
        .expect("run");
    assert!(out.info > 0 && out.ok > 0, "{out:?}");
    let h = History {
        events: sink.events(),
    };
    assert_well_formed(&h);
    h.pair().expect("pairs: no process reused while open");
    // Per worker slot (process mod n): after an info, the next invocation
    // is by process + n; otherwise by the same process.
    let mut last: HashMap<u64, (u64, EventType)> = HashMap::new();
    for e in &h.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            if let Some(&(prev, kind)) = last.get(&(p % n)) {
                let want = if kind == EventType::Info {
                    prev + n
                } else {
                    prev
                };
                assert_eq!(p, want, "slot {}: after {kind} by {prev}", p % n);
            }
        } else if e.kind == EventType::Info {
            assert_eq!(e.error.as_deref(), Some(&Value::from("timeout")));
        }
        last.insert(p % n, (p, e.kind));
    }
    assert!(client_processes(&h).iter().any(|&p| p >= n));
}

/// Counts calls and records what it was asked to do.
struct CountingNemesis {
    starts: Arc<AtomicU32>,
    heals: Arc<AtomicU32>,
}

impl NemesisDriver for CountingNemesis {
    fn start(&mut self, t: Duration) -> BoxFuture<'_, Result<Value, String>> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(Value::from(format!("fault at {}ms", t.as_millis()))) })
    }

    fn heal_all(&mut self) -> BoxFuture<'_, Result<Value, String>> {
        self.heals.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Value::from("healed")) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_early_and_heals() {
    let (starts, heals) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let mut c = cfg(Workload::Set, 3, 60.0);
    c.nemesis_interval = Some(Duration::from_millis(40));
    c.rate = Some(500.0);
    let cancel = Cancel::new();
    let ctl = RunControl {
        cancel: cancel.clone(),
        nemesis: Box::new(CountingNemesis {
            starts: Arc::clone(&starts),
            heals: Arc::clone(&heals),
        }),
        ..RunControl::default()
    };
    let sink = MemorySink::new();
    let began = Instant::now();
    let run = tokio::spawn(run_test(c, Arc::new(NoopTarget::new()), sink.clone(), ctl));
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let out = run.await.expect("join").expect("run");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "took {:?}",
        began.elapsed()
    );
    assert!(out.cancelled);
    assert_eq!(
        out.final_reads_ok, None,
        "final reads are skipped when cancelled"
    );
    assert!(starts.load(Ordering::SeqCst) >= 1);
    // Heal at setup, heals between starts, and the final heal.
    assert!(heals.load(Ordering::SeqCst) >= 2);
    let events: Vec<Event> = sink.events();
    let last_nemesis = events
        .iter()
        .rev()
        .find(|e| e.process.is_nemesis())
        .expect("nemesis");
    assert_eq!(last_nemesis.f, "heal");
    assert_eq!(last_nemesis.value, Value::from("healed"));
    History { events }.pair().expect("pairs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_bounds_throughput() {
    let mut c = cfg(Workload::Counter, 4, 1.0);
    c.rate = Some(200.0);
    let out = run_test(
        c,
        Arc::new(NoopTarget::new()),
        MemorySink::new(),
        RunControl::default(),
    )
    .await
    .expect("run");
    let n = out.ok + out.fail + out.info;
    assert!((120..=280).contains(&n), "{n} ops at 200/s for 1 s");
}

/// A target that runs only the register workload (etcd runs them all).
struct RegisterOnly;

impl faultline_targets::Target for RegisterOnly {
    fn name(&self) -> &str {
        "register-only"
    }

    fn workloads(&self) -> &[Workload] {
        &[Workload::Register]
    }

    fn client<'a>(
        &'a self,
        _node: &'a str,
        _opts: &'a faultline_targets::ClientOpts,
    ) -> BoxFuture<'a, Result<Box<dyn faultline_targets::Client>, faultline_targets::TargetError>>
    {
        Box::pin(async { Err(faultline_targets::TargetError::Other("never opened".into())) })
    }
}

#[tokio::test]
async fn unsupported_workload_is_an_error_before_anything_runs() {
    let sink = MemorySink::new();
    let err = run_test(
        cfg(Workload::Bank, 1, 1.0),
        Arc::new(RegisterOnly),
        sink.clone(),
        RunControl::default(),
    )
    .await
    .expect_err("bank on a register-only target");
    assert!(matches!(err, RunError::Target(_)), "{err}");
    assert!(err.to_string().contains("register"), "{err}");
    assert!(sink.events().is_empty());
}

/// A nemesis whose faults cannot be made: errors are recorded and counted,
/// and the run goes on.
struct BrokenNemesis;

impl NemesisDriver for BrokenNemesis {
    fn start(&mut self, _t: Duration) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async { Err("iptables: not found".to_string()) })
    }

    fn heal_all(&mut self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async { Ok(Value::Null) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_errors_are_recorded_and_counted() {
    let mut c = cfg(Workload::Register, 2, 0.3);
    c.nemesis_interval = Some(Duration::from_millis(50));
    let ctl = RunControl {
        nemesis: Box::new(BrokenNemesis),
        ..RunControl::default()
    };
    let sink = MemorySink::new();
    let out = run_test(c, Arc::new(NoopTarget::new()), sink.clone(), ctl)
        .await
        .expect("a failing nemesis does not fail the run");
    assert!(out.nemesis_errors >= 1, "{out:?}");
    assert!(out.ok > 0);
    let errors: Vec<Event> = sink
        .events()
        .into_iter()
        .filter(|e| e.process.is_nemesis() && e.error.is_some())
        .collect();
    assert_eq!(errors.len() as u64, out.nemesis_errors);
    assert_eq!(
        errors[0].error.as_deref(),
        Some(&Value::from("iptables: not found"))
    );
}

/// Fails after `n` events, like a full disk.
struct FullDisk(u32);

impl faultline::runner::HistorySink for FullDisk {
    fn record(&mut self, _e: &Event) -> std::io::Result<()> {
        if self.0 == 0 {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.0 -= 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_error_stops_the_run_and_is_returned() {
    let began = Instant::now();
    let err = run_test(
        cfg(Workload::Register, 2, 30.0),
        Arc::new(NoopTarget::new()),
        FullDisk(100),
        RunControl::default(),
    )
    .await
    .expect_err("sink error");
    assert!(matches!(err, RunError::Sink(_)), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert!(began.elapsed() < Duration::from_secs(5));
}
