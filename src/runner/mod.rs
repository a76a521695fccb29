//! The test runner: concurrent clients, faults, and the recorded history.
//!
//! [`run_test`] runs one test in phases:
//!
//! 1. **setup**: check the target supports the workload, heal (so no fault
//!    from an earlier run survives), run [`Client::setup`] once, open one
//!    client per worker (worker `i` talks to `nodes[i % nodes.len()]`);
//! 2. **main**: `concurrency` workers invoke generated operations until
//!    `time_limit` (or cancellation), paced (at `rate`, else the
//!    workload's default rate) and backing off after failures
//!    ([`pace`]); the
//!    [`NemesisDriver`] alternates `start`/`heal_all` every
//!    `nemesis_interval`;
//! 3. **heal**: `heal_all`, always, even when cancelled;
//! 4. **recovery**: wait `recovery` so the system can settle;
//! 5. **final reads** for workloads that need them (set, bank, queue),
//!    retried until one is `ok`; on one node, or on every node (one client
//!    bound to each) when the target asks for it
//!    ([`Target::final_reads_per_node`]: AP stores, judged for convergence).
//!    Per-node reads are repeated in rounds, `recovery` apart, while the
//!    nodes' answers differ (at most [`CONVERGENCE_ROUNDS`]): a replica still
//!    working off a backlog is lagging, not divergent; the convergence
//!    checkers judge each node's last final read;
//! 6. **teardown**: close clients.
//!
//! Cancellation skips 4 and 5 but still heals and returns what was recorded.
//!
//! Every event is stamped with `index` (file order), `time` (ns since the
//! test started, from the controller's monotonic clock), `process` and the
//! `node` the client used, and goes to a [`HistorySink`]. A worker whose
//! operation ends `info` (including a runner timeout) takes a fresh process
//! id (old + concurrency) and a fresh client, as a process is single-threaded.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faultline::runner::RunError> {
//! use faultline::runner::{run_test, JsonlSink, RunConfig, RunControl};
//! use faultline_targets::noop::NoopTarget;
//! use faultline_workloads::{Workload, WorkloadOptions};
//! use std::sync::Arc;
//!
//! let cfg = RunConfig::new(WorkloadOptions::new(Workload::ListAppend), vec!["n1".into()]);
//! let sink = JsonlSink::create("history.jsonl".as_ref())?;
//! let ctl = RunControl::default();
//! ctl.cancel.cancel_on_ctrl_c();
//! let outcome = run_test(cfg, Arc::new(NoopTarget::new()), sink, ctl).await?;
//! println!("{} ok", outcome.ok);
//! # Ok(()) }
//! ```

mod control;
pub mod pace;
mod sink;

pub use control::{Cancel, NemesisDriver, NoNemesis, Progress, ProgressSnapshot};
pub use pace::{Backoff, FailWindows};
pub use sink::{HistorySink, JsonlSink, MemorySink, parse_jsonl, write_jsonl};

use faultline_checker::{Event, EventType, Outcome, Process, Value};
use faultline_targets::{ClientOpts, Target, TargetError};
use faultline_workloads::{Client, Generator, Op, WorkloadOptions, generator};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::sleep_until;

/// Everything that defines a run. Plain data, so it can be stored in
/// `test.json` and a run repeated with the same seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    pub workload: WorkloadOptions,
    /// Node names handed to `Target::client`; workers are spread over them.
    pub nodes: Vec<String>,
    /// Number of worker processes (≥ 1).
    pub concurrency: usize,
    /// Length of the main phase.
    pub time_limit: Duration,
    /// Total operations per second across all workers; `None` = the
    /// workload's [`Workload::default_rate`]. Each worker waits a uniformly
    /// random 0–2× its share of the interval (seeded), so workers do not
    /// march in lockstep (Jepsen's `stagger`); after a failure it also
    /// backs off ([`Backoff`]).
    ///
    /// [`Workload::default_rate`]: faultline_workloads::Workload::default_rate
    pub rate: Option<f64>,
    /// Per-operation timeout; the operation is then recorded as `info`.
    pub op_timeout: Duration,
    /// Seeds the operation generator and the rate jitter.
    pub seed: u64,
    /// Time between nemesis actions (start, heal, start, …); `None` = no
    /// faults during the main phase (healing still happens).
    pub nemesis_interval: Option<Duration>,
    /// Wait after healing before the final reads.
    pub recovery: Duration,
    /// Attempts per final read before giving up.
    pub final_read_attempts: u32,
}

impl RunConfig {
    /// Defaults: concurrency 5, 60 s, the workload's rate, 5 s op timeout, seed 0,
    /// no nemesis, 5 s recovery, 10 final-read attempts.
    pub fn new(workload: WorkloadOptions, nodes: Vec<String>) -> RunConfig {
        RunConfig {
            workload,
            nodes,
            concurrency: 5,
            time_limit: Duration::from_secs(60),
            rate: None,
            op_timeout: Duration::from_secs(5),
            seed: 0,
            nemesis_interval: None,
            recovery: Duration::from_secs(5),
            final_read_attempts: 10,
        }
    }
}

/// Hooks the caller keeps a handle to: cancellation, progress counters, and
/// the nemesis. `RunControl::default()` has a fresh flag, fresh counters,
/// and [`NoNemesis`].
pub struct RunControl {
    pub cancel: Cancel,
    pub progress: Arc<Progress>,
    pub nemesis: Box<dyn NemesisDriver>,
}

impl Default for RunControl {
    fn default() -> RunControl {
        RunControl {
            cancel: Cancel::new(),
            progress: Arc::new(Progress::default()),
            nemesis: Box::new(NoNemesis),
        }
    }
}

/// What happened, in numbers. The history itself went to the sink.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    /// Events recorded (client and nemesis).
    pub events: u64,
    /// Client completions by type (main phase and final reads).
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Length of the main phase.
    pub main_phase: Duration,
    /// True when the run was cancelled before its time limit.
    pub cancelled: bool,
    /// Nemesis calls that returned an error (recorded in the history).
    pub nemesis_errors: u64,
    /// `Some(true)` when every final read succeeded, `Some(false)` when one
    /// gave up, `None` when the workload needs none or they were skipped.
    pub final_reads_ok: Option<bool>,
    /// How the clients were paced, and what that cost and wrote.
    pub pacing: Pacing,
}

/// The pacing of a run and its measured effect (`results.json`'s
/// `run.pacing`).
#[derive(Clone, Debug)]
pub struct Pacing {
    /// Operations per second over all clients the schedule aimed at.
    pub rate: f64,
    /// True when that was the workload's default (no `--rate`).
    pub default_rate: bool,
    /// Waits after a failure (`fail`, `info` or a failed connect), and
    /// their total length.
    pub backoffs: u64,
    pub backoff: Duration,
    /// The history's size as JSON Lines, where the sink knows it.
    pub history_bytes: Option<u64>,
    /// The worst client's failed operations in any 10 s window.
    pub fails: FailWindows,
}

impl PartialEq for Pacing {
    fn eq(&self, o: &Pacing) -> bool {
        self.to_json() == o.to_json()
    }
}

impl Pacing {
    /// `{"rate", "default_rate", "backoffs", "backoff_s", "history_bytes",
    /// "fail_rate": {"window_s", "worst_per_s", "failures", "client",
    /// "from_s"}}`; `client` is the worker slot (process mod concurrency).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "rate": self.rate,
            "default_rate": self.default_rate,
            "backoffs": self.backoffs,
            "backoff_s": self.backoff.as_secs_f64(),
            "history_bytes": self.history_bytes,
            "fail_rate": self.fails.to_json(),
        })
    }
}

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("bad run configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("setup failed: {0}")]
    Setup(String),
    #[error("cannot record the history: {0}")]
    Sink(#[from] io::Error),
}

/// Serialises events into the sink: one lock gives each event its index
/// and its time, so both increase in file order.
struct Recorder {
    start: Instant,
    inner: Mutex<RecorderInner>,
    cancel: Cancel,
    /// Client processes map to worker slots modulo this.
    concurrency: u64,
}

struct RecorderInner {
    sink: Box<dyn HistorySink>,
    next_index: u64,
    error: Option<io::Error>,
    fails: FailWindows,
}

impl Recorder {
    /// Stamps `event` with its index and time and hands it to the sink.
    fn record(&self, mut event: Event) {
        let Ok(mut inner) = self.inner.lock() else {
            self.cancel.cancel();
            return;
        };
        if inner.error.is_some() {
            return;
        }
        let index = inner.next_index;
        event.index = Some(index).into();
        // Taken under the lock, so times increase in file order.
        event.time = Some(self.start.elapsed().as_nanos() as u64);
        event.line = index as usize + 1;
        if let (EventType::Fail | EventType::Info, Process::Client(p)) =
            (event.kind, &event.process)
        {
            let slot = (p % self.concurrency.max(1)) as usize;
            inner.fails.note(slot, event.time.unwrap_or(0));
        }
        match inner.sink.record(&event) {
            Ok(()) => inner.next_index += 1,
            Err(e) => {
                // Without a complete history the run is worthless: stop.
                inner.error = Some(e);
                self.cancel.cancel();
            }
        }
    }

    /// Events recorded, the history's size and the failure windows.
    fn finish(&self) -> Result<(u64, Option<u64>, FailWindows), RunError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| RunError::Sink(io::Error::other("recorder poisoned")))?;
        match inner.error.take() {
            Some(e) => Err(RunError::Sink(e)),
            None => Ok((
                inner.next_index,
                inner.sink.bytes_written(),
                inner.fails.clone(),
            )),
        }
    }
}

/// An event without index and time (the recorder adds those).
fn event(
    process: Process,
    kind: EventType,
    f: &str,
    key: Option<&Value>,
    value: &Value,
    node: Option<&str>,
    error: Option<&str>,
) -> Event {
    Event {
        index: Default::default(),
        time: None,
        process,
        kind,
        f: f.into(),
        key: key.cloned().map(Box::new),
        value: value.clone(),
        node: node.map(Into::into),
        error: error.map(|e| Box::new(Value::from(e))),
        line: 0,
    }
}

/// State every worker shares.
struct Shared {
    recorder: Recorder,
    generator: Mutex<Box<dyn Generator>>,
    progress: Arc<Progress>,
    cancel: Cancel,
    target: Arc<dyn Target>,
    opts: ClientOpts,
    concurrency: u64,
    op_timeout: Duration,
    /// Backoffs taken, and their total in ns.
    backoffs: AtomicU64,
    backoff_ns: AtomicU64,
}

/// A worker's client and current process id.
struct Worker {
    index: usize,
    node: String,
    process: u64,
    client: Option<Box<dyn Client>>,
}

impl Shared {
    /// Invokes one op as `w`'s current process and records both events;
    /// the outcome, and the `ok` completion's value (the generator follows
    /// it, the final reads compare replicas' answers). After an `info`,
    /// `w` gets a new process id and loses its client.
    async fn invoke_value(&self, w: &mut Worker, op: &Op) -> (Outcome, Value) {
        let Some(client) = w.client.as_mut() else {
            return (Outcome::Fail, Value::Null);
        };
        let process = Process::Client(w.process);
        let node = Some(w.node.as_str());
        self.recorder.record(event(
            process.clone(),
            EventType::Invoke,
            &op.f,
            op.key.as_ref(),
            &op.value,
            node,
            None,
        ));
        self.progress.invoked.fetch_add(1, Ordering::Relaxed);
        let done = tokio::select! {
            r = tokio::time::timeout(self.op_timeout, client.invoke(op)) => match r {
                Ok(c) => c,
                Err(_) => faultline_workloads::Completion::info("timeout"),
            },
            // Stop promptly on Ctrl-C; the op's fate is unknown.
            _ = self.cancel.cancelled() => faultline_workloads::Completion::info("cancelled"),
        };
        let (kind, counter) = match done.outcome {
            Outcome::Ok => (EventType::Ok, &self.progress.ok),
            Outcome::Fail => (EventType::Fail, &self.progress.fail),
            Outcome::Info => (EventType::Info, &self.progress.info),
        };
        // fail/info record the invocation's value (the checker's convention).
        let value = if done.outcome == Outcome::Ok {
            &done.value
        } else {
            &op.value
        };
        self.recorder.record(event(
            process,
            kind,
            &op.f,
            op.key.as_ref(),
            value,
            node,
            done.error.as_deref(),
        ));
        counter.fetch_add(1, Ordering::Relaxed);
        if done.outcome == Outcome::Info {
            if let Some(mut c) = w.client.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), c.close()).await;
            }
            w.process += self.concurrency;
        }
        (done.outcome, done.value)
    }

    /// Makes sure `w` has a client, retrying until `deadline` or cancel.
    /// Opening must not change state, so failures are not recorded; each
    /// one backs off like a failed operation (a dead node's refused
    /// connect must not become a hot loop).
    async fn ensure_client(
        &self,
        w: &mut Worker,
        deadline: Instant,
        backoff: &mut Backoff,
        rng: &mut StdRng,
    ) -> bool {
        while w.client.is_none() {
            match self.target.client(&w.node, &self.opts).await {
                Ok(c) => w.client = Some(c),
                Err(_) => {
                    let wait = backoff.next_wait(rng);
                    if !self.back_off(wait, deadline).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Waits `wait` after a failure, counted in the run's pacing; false
    /// when cancelled or `deadline` came first (the wait is cut there).
    async fn back_off(&self, wait: Duration, deadline: Instant) -> bool {
        let now = Instant::now();
        if self.cancel.is_cancelled() || now >= deadline {
            return false;
        }
        let wait = wait.min(deadline - now);
        self.backoffs.fetch_add(1, Ordering::Relaxed);
        self.backoff_ns
            .fetch_add(wait.as_nanos() as u64, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.cancel.cancelled() => return false,
        }
        Instant::now() < deadline
    }
}

/// How far behind its rate schedule a worker may catch up.
const MAX_RATE_LAG: Duration = Duration::from_millis(10);

/// The main-phase loop of one worker: wait for the next slot of the
/// stagger schedule (`interval` on average), or longer after a failure
/// (the backoff), then invoke the next operation and tell the generator
/// how it ended.
async fn run_worker(
    shared: Arc<Shared>,
    mut w: Worker,
    deadline: Instant,
    interval: Duration,
    seed: u64,
) -> Worker {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (w.index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut backoff = Backoff::default();
    let mut next_at = tokio::time::Instant::now();
    let end = tokio::time::Instant::from_std(deadline);
    loop {
        if shared.cancel.is_cancelled() || Instant::now() >= deadline {
            break;
        }
        next_at += interval.mul_f64(rng.random_range(0.0..2.0));
        let now = tokio::time::Instant::now();
        // Timer sleeps overshoot to the next millisecond, so a worker
        // that is a little behind runs without sleeping to catch up;
        // one far behind (a slow operation, a backoff) starts afresh, no
        // burst.
        if now.saturating_duration_since(next_at) > MAX_RATE_LAG {
            next_at = now;
        }
        if next_at > now {
            tokio::select! {
                _ = sleep_until(next_at.min(end)) => {}
                _ = shared.cancel.cancelled() => break,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if !shared
            .ensure_client(&mut w, deadline, &mut backoff, &mut rng)
            .await
        {
            break;
        }
        let op = match shared.generator.lock() {
            Ok(mut g) => g.next_op_for(w.index, shared.recorder.start.elapsed()),
            Err(_) => break,
        };
        let (outcome, value) = shared.invoke_value(&mut w, &op).await;
        if let Ok(mut g) = shared.generator.lock() {
            g.completed(
                w.index,
                &op,
                outcome,
                &value,
                shared.recorder.start.elapsed(),
            );
        }
        if outcome == Outcome::Ok {
            backoff.reset();
        } else {
            let wait = backoff.next_wait(&mut rng);
            if !shared.back_off(wait, deadline).await {
                break;
            }
        }
        // An in-process client can answer without ever being pending, and
        // then this loop would hold its thread until the deadline and starve
        // the other workers: give the scheduler a turn.
        tokio::task::yield_now().await;
    }
    w
}

async fn nemesis_call(
    recorder: &Recorder,
    nemesis: &mut dyn NemesisDriver,
    start: Option<Duration>,
) -> bool {
    let f = if start.is_some() { "start" } else { "heal" };
    recorder.record(event(
        Process::Nemesis,
        EventType::Info,
        f,
        None,
        &Value::Null,
        None,
        None,
    ));
    let res = match start {
        Some(t) => nemesis.start(t).await,
        None => nemesis.heal_all().await,
    };
    match res {
        Ok(v) => {
            recorder.record(event(
                Process::Nemesis,
                EventType::Info,
                f,
                None,
                &v,
                None,
                None,
            ));
            true
        }
        Err(e) => {
            recorder.record(event(
                Process::Nemesis,
                EventType::Info,
                f,
                None,
                &Value::Null,
                None,
                Some(&e),
            ));
            false
        }
    }
}

/// The workers that do the final reads: the first worker, or with
/// `per_node` one worker bound to each node — an existing one when some
/// worker talks to that node, else a fresh one (its process id above every
/// id in use; final reads run one at a time, so ids cannot overlap).
/// They are moved out of `workers`; the caller puts them back for teardown.
/// Rounds of per-node final reads at most (see `run_test`'s step 5): the
/// first after `recovery`, each later one another `recovery` on.
const CONVERGENCE_ROUNDS: u32 = 4;

/// `v` with every array sorted (by its elements' JSON text), so that two
/// replicas' answers that differ only in order compare equal: the final
/// reads of AP stores return sets (elements, siblings) in no set order.
fn canonical(v: Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut a: Vec<Value> = a.into_iter().map(canonical).collect();
            a.sort_by_cached_key(|x| x.to_string());
            Value::Array(a)
        }
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, canonical(x))).collect()),
        other => other,
    }
}

fn final_readers(workers: &mut Vec<Worker>, nodes: &[String], per_node: bool) -> Vec<Worker> {
    if !per_node {
        return if workers.is_empty() {
            Vec::new()
        } else {
            vec![workers.remove(0)]
        };
    }
    let concurrency = workers.len();
    let mut next_process = workers.iter().map(|w| w.process + 1).max().unwrap_or(0);
    let mut out = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        match workers.iter().position(|w| &w.node == node) {
            Some(p) => out.push(workers.remove(p)),
            None => {
                out.push(Worker {
                    index: concurrency + i,
                    node: node.clone(),
                    process: next_process,
                    client: None,
                });
                next_process += 1;
            }
        }
    }
    out
}

/// Runs one test; see the module docs for the phases. Call it inside a
/// tokio runtime (multi-thread for real targets). Returns counts; the
/// history went to `sink`.
pub async fn run_test(
    cfg: RunConfig,
    target: Arc<dyn Target>,
    sink: impl HistorySink + 'static,
    ctl: RunControl,
) -> Result<RunOutcome, RunError> {
    if cfg.nodes.is_empty() {
        return Err(RunError::Config("no nodes".into()));
    }
    if cfg.concurrency == 0 {
        return Err(RunError::Config("concurrency must be at least 1".into()));
    }
    if let Some(r) = cfg.rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(RunError::Config(format!("rate must be positive, not {r}")));
    }
    target.check_supports(cfg.workload.workload)?;
    let RunControl {
        cancel,
        progress,
        mut nemesis,
    } = ctl;
    let mut nemesis_errors = 0u64;
    let opts = ClientOpts {
        workload: cfg.workload.clone(),
        timeout: cfg.op_timeout,
    };
    let shared = Arc::new(Shared {
        recorder: Recorder {
            start: Instant::now(),
            inner: Mutex::new(RecorderInner {
                sink: Box::new(sink),
                next_index: 0,
                error: None,
                fails: FailWindows::default(),
            }),
            cancel: cancel.clone(),
            concurrency: cfg.concurrency as u64,
        },
        generator: Mutex::new(generator(&cfg.workload, cfg.seed)),
        progress: Arc::clone(&progress),
        cancel: cancel.clone(),
        target: Arc::clone(&target),
        opts,
        concurrency: cfg.concurrency as u64,
        op_timeout: cfg.op_timeout,
        backoffs: AtomicU64::new(0),
        backoff_ns: AtomicU64::new(0),
    });

    // 1. setup. Heal first: a fault left by an earlier run would skew this one.
    if !nemesis_call(&shared.recorder, nemesis.as_mut(), None).await {
        nemesis_errors += 1;
    }
    let setup = async {
        let mut c = target.client(&cfg.nodes[0], &shared.opts).await?;
        let r = tokio::time::timeout(cfg.op_timeout * 2, c.setup()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), c.close()).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(RunError::Setup(e)),
            Err(_) => return Err(RunError::Setup("client setup timed out".into())),
        }
        let mut workers = Vec::with_capacity(cfg.concurrency);
        for i in 0..cfg.concurrency {
            let node = cfg.nodes[i % cfg.nodes.len()].clone();
            let client = target.client(&node, &shared.opts).await?;
            workers.push(Worker {
                index: i,
                node,
                process: i as u64,
                client: Some(client),
            });
        }
        Ok(workers)
    };
    let workers = match setup.await {
        Ok(w) => w,
        Err(e) => {
            // Heal on both ends, even when setup fails.
            nemesis_call(&shared.recorder, nemesis.as_mut(), None).await;
            shared.recorder.finish()?;
            return Err(e);
        }
    };

    // 2. main phase
    progress.start();
    let main_start = Instant::now();
    let deadline = main_start + cfg.time_limit;
    let rate = cfg
        .rate
        .unwrap_or_else(|| cfg.workload.workload.default_rate());
    let interval = Duration::from_secs_f64(cfg.concurrency as f64 / rate);
    let mut handles = Vec::with_capacity(workers.len());
    for w in workers {
        handles.push(tokio::spawn(run_worker(
            Arc::clone(&shared),
            w,
            deadline,
            interval,
            cfg.seed,
        )));
    }
    if let Some(iv) = cfg.nemesis_interval {
        let mut active = false;
        let mut next = tokio::time::Instant::now() + iv;
        let end = tokio::time::Instant::from_std(deadline);
        loop {
            let due = match nemesis.next_due() {
                Some(d) => shared.recorder.start.checked_add(d).map_or(end, Into::into),
                None => next,
            };
            tokio::select! {
                _ = sleep_until(due.min(end)) => {}
                _ = cancel.cancelled() => break,
            }
            if Instant::now() >= deadline || cancel.is_cancelled() {
                break;
            }
            let t = shared.recorder.start.elapsed();
            let start = if active { None } else { Some(t) };
            if !nemesis_call(&shared.recorder, nemesis.as_mut(), start).await {
                nemesis_errors += 1;
            }
            active = !active;
            next += iv;
        }
    }
    let mut workers = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(w) => workers.push(w),
            // A panicking client must not stop the heal below.
            Err(e) => errln!("faultline: a worker stopped abnormally: {e}"),
        }
    }
    let main_phase = main_start.elapsed();
    let cancelled = cancel.is_cancelled();

    // 3. heal, always
    if !nemesis_call(&shared.recorder, nemesis.as_mut(), None).await {
        nemesis_errors += 1;
    }

    // 4. recovery and 5. final reads, unless cancelled
    let per_node = target.final_reads_per_node();
    let mut final_ops = shared
        .generator
        .lock()
        .map(|g| g.final_ops())
        .unwrap_or_default();
    if per_node && final_ops.is_empty() {
        // Convergence is judged from each replica's final value, even for
        // workloads (counter) that need no final read on one node.
        final_ops.push(Op::new("read", None, Value::Null));
    }
    let mut final_reads_ok = None;
    if !cancelled && !final_ops.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep(cfg.recovery) => {}
            _ = cancel.cancelled() => {}
        }
        if !cancel.is_cancelled() {
            let mut readers = final_readers(&mut workers, &cfg.nodes, per_node);
            let mut all_ok = !readers.is_empty();
            // Per-node final reads come in rounds: a replica that is still
            // working off a backlog (it was paused, or is slow) can answer
            // before it has merged what the others have, which is lag, not
            // divergence. While the replicas' answers differ, wait out the
            // recovery period again and read every node again, up to
            // `CONVERGENCE_ROUNDS`; the checker judges each node's last one.
            let rounds = if per_node { CONVERGENCE_ROUNDS } else { 1 };
            for round in 1..=rounds {
                let mut answers: Vec<Vec<Value>> = Vec::with_capacity(readers.len());
                all_ok = !readers.is_empty();
                let give_up = Instant::now() + cfg.op_timeout * cfg.final_read_attempts.max(1) * 2;
                let mut rng = StdRng::seed_from_u64(cfg.seed);
                for w in readers.iter_mut() {
                    let mut backoff = Backoff::default();
                    let mut mine = Vec::with_capacity(final_ops.len());
                    for op in &final_ops {
                        let mut ok = false;
                        for _ in 0..cfg.final_read_attempts.max(1) {
                            if cancel.is_cancelled()
                                || !shared
                                    .ensure_client(w, give_up, &mut backoff, &mut rng)
                                    .await
                            {
                                break;
                            }
                            let (outcome, v) = shared.invoke_value(w, op).await;
                            if outcome == Outcome::Ok {
                                mine.push(canonical(v));
                                ok = true;
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        all_ok &= ok;
                    }
                    answers.push(mine);
                }
                let agree = answers.windows(2).all(|p| p[0] == p[1]);
                if agree || !all_ok || round == rounds || cancel.is_cancelled() {
                    break;
                }
                errln!(
                    "faultline: final reads disagree (round {round} of {rounds}); \
                     reading every node again in {:.1} s",
                    cfg.recovery.as_secs_f64()
                );
                tokio::select! {
                    _ = tokio::time::sleep(cfg.recovery) => {}
                    _ = cancel.cancelled() => {}
                }
            }
            workers.extend(readers);
            final_reads_ok = Some(all_ok);
        }
    }

    // 6. teardown
    for w in &mut workers {
        if let Some(mut c) = w.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), c.close()).await;
        }
    }
    let (events, history_bytes, fails) = shared.recorder.finish()?;
    let snap = progress.snapshot();
    Ok(RunOutcome {
        events,
        ok: snap.ok,
        fail: snap.fail,
        info: snap.info,
        main_phase,
        cancelled,
        nemesis_errors,
        final_reads_ok,
        pacing: Pacing {
            rate,
            default_rate: cfg.rate.is_none(),
            backoffs: shared.backoffs.load(Ordering::Relaxed),
            backoff: Duration::from_nanos(shared.backoff_ns.load(Ordering::Relaxed)),
            history_bytes,
            fails,
        },
    })
}

#[cfg(test)]
mod tests;
