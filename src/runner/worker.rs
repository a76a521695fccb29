//! The workers: one client each, invoking the generator's operations and
//! recording both events; the nemesis calls; the final reads.

use super::*;

/// State every worker shares.
pub(super) struct Shared {
    pub(super) recorder: Recorder,
    pub(super) generator: Mutex<Box<dyn Generator>>,
    pub(super) progress: Arc<Progress>,
    pub(super) cancel: Cancel,
    pub(super) target: Arc<dyn Target>,
    pub(super) opts: ClientOpts,
    pub(super) concurrency: u64,
    pub(super) op_timeout: Duration,
    /// Backoffs taken, and their total in ns.
    pub(super) backoffs: AtomicU64,
    pub(super) backoff_ns: AtomicU64,
}

/// A worker's client and current process id.
pub(super) struct Worker {
    pub(super) index: usize,
    pub(super) node: String,
    pub(super) process: u64,
    pub(super) client: Option<Box<dyn Client>>,
}

impl Shared {
    /// Invokes one op as `w`'s current process and records both events;
    /// the outcome, and the `ok` completion's value (the generator follows
    /// it, the final reads compare replicas' answers). After an `info`,
    /// `w` gets a new process id and loses its client.
    pub(super) async fn invoke_value(&self, w: &mut Worker, op: &Op) -> (Outcome, Value) {
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
    pub(super) async fn ensure_client(
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
    pub(super) async fn back_off(&self, wait: Duration, deadline: Instant) -> bool {
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
pub(super) const MAX_RATE_LAG: Duration = Duration::from_millis(10);

/// The main-phase loop of one worker: wait for the next slot of the
/// stagger schedule (`interval` on average), or longer after a failure
/// (the backoff), then invoke the next operation and tell the generator
/// how it ended.
pub(super) async fn run_worker(
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

pub(super) async fn nemesis_call(
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

/// Rounds of per-node final reads at most (see `run_test`'s step 5): the
/// first after `recovery`, each later one another `recovery` on.
pub(super) const CONVERGENCE_ROUNDS: u32 = 4;

/// `v` with every array sorted (by its elements' JSON text), so that two
/// replicas' answers that differ only in order compare equal: the final
/// reads of AP stores return sets (elements, siblings) in no set order.
pub(super) fn canonical(v: Value) -> Value {
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

/// The workers that do the final reads: the first worker, or with
/// `per_node` one worker bound to each node — an existing one when some
/// worker talks to that node, else a fresh one (its process id above every
/// id in use; final reads run one at a time, so ids cannot overlap).
/// They are moved out of `workers`; the caller puts them back for teardown.
pub(super) fn final_readers(
    workers: &mut Vec<Worker>,
    nodes: &[String],
    per_node: bool,
) -> Vec<Worker> {
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
