//! Run control shared with the caller: cancellation, progress counters, and
//! the nemesis hook.

use faultline_checker::Value;
use faultline_workloads::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A shared "stop" flag. Cancelling ends the main phase early; the runner
/// still heals every fault and keeps what it recorded.
#[derive(Clone, Debug)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`Cancel::cancel`] has been called.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // Err only if the sender is gone, which cannot happen: self holds it.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Cancels on the first SIGINT (Ctrl-C). Call inside the runtime.
    pub fn cancel_on_ctrl_c(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                me.cancel();
            }
        })
    }
}

/// Live counters for a progress bar; cheap to read from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    pub invoked: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    started: OnceLock<Instant>,
}

/// A consistent-enough copy of [`Progress`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProgressSnapshot {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub elapsed: Duration,
    /// Completed operations per second since the main phase started.
    pub ops_per_sec: f64,
}

impl Progress {
    pub(crate) fn start(&self) {
        let _ = self.started.set(Instant::now());
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let (ok, fail, info) = (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        );
        let elapsed = self.started.get().map_or(Duration::ZERO, Instant::elapsed);
        let secs = elapsed.as_secs_f64();
        ProgressSnapshot {
            invoked: self.invoked.load(Ordering::Relaxed),
            ok,
            fail,
            info,
            elapsed,
            ops_per_sec: if secs > 0.0 {
                (ok + fail + info) as f64 / secs
            } else {
                0.0
            },
        }
    }
}

/// Drives faults during the main phase. The runner calls [`start`] and
/// [`heal_all`] alternately, one per `nemesis_interval`, and `heal_all`
/// once before the main phase and once after it, always (even when
/// cancelled), so no run leaks a fault.
///
/// Each call is recorded as two `info` events of process `nemesis`: `f`
/// `start`/`heal` with value `null` before the call, and the returned value
/// (what was actually done: the grudge, the PIDs) or the error after it.
///
/// [`start`]: NemesisDriver::start
/// [`heal_all`]: NemesisDriver::heal_all
pub trait NemesisDriver: Send {
    /// Starts the next fault; `t` is the time since the test started.
    fn start(&mut self, t: Duration) -> BoxFuture<'_, Result<Value, String>>;
    /// Heals every fault this driver may have made. Must be idempotent.
    fn heal_all(&mut self) -> BoxFuture<'_, Result<Value, String>>;
    /// When the next main-phase call (start and heal still alternate) is
    /// due, as time since the test started; `None` = one
    /// `nemesis_interval` after the last. A replayed schedule gives its
    /// recorded times; `Duration::MAX` means no further call.
    fn next_due(&self) -> Option<Duration> {
        None
    }
}

/// A nemesis that does nothing (and records that it did nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNemesis;

impl NemesisDriver for NoNemesis {
    fn start(&mut self, _t: Duration) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async { Ok(Value::Null) })
    }

    fn heal_all(&mut self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async { Ok(Value::Null) })
    }
}
