//! Pacing: how long a client waits before its next operation, and the
//! measure of how hard failing clients hammered the system.
//!
//! - Between operations, each client waits a uniformly random 0–2× its
//!   share of the interval (Jepsen's `stagger`), at `--rate` or else its
//!   workload's [`Workload::default_rate`].
//! - After a `fail` or `info` (or a failed connect), a client also backs
//!   off ([`Backoff`]): exponentially, with jitter, reset by the next
//!   `ok`, so a client bound to a killed node or refused by a held lock
//!   retries a few times a second, not thousands.
//! - [`FailWindows`] finds the worst client: the most failed operations
//!   (`fail` or `info`) one client completed in any 10 s window.
//!
//! [`Workload::default_rate`]: faultline_workloads::Workload::default_rate

use faultline_workloads::Workload;
use rand::RngExt;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;

/// `faultline test --rate`'s long help: the pacing, and each workload's
/// default rate (from [`Workload::default_rate`], the one table).
pub fn rate_help() -> String {
    format!(
        "Operations per second over all clients. Each client waits a uniformly \
         random 0-2x its share of the interval between operations (Jepsen's \
         stagger), and after a fail or info (or a refused connect) it also \
         backs off, exponentially from {} ms to {} s with jitter, until its \
         next ok. Default per workload: {}",
        BACKOFF_BASE.as_millis(),
        BACKOFF_CAP.as_secs_f64(),
        Workload::default_rates_help()
    )
}

/// The first backoff after an `ok`: short, since most single failures
/// (a compare that did not match, a lock someone else holds) say nothing
/// about the system's health.
pub const BACKOFF_BASE: Duration = Duration::from_millis(10);
/// The longest backoff: a client comes back within a second of a heal.
pub const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Exponential backoff with "equal jitter": after the `n`th failure in a
/// row the wait is uniform in `[d/2, d]` with `d = min(cap, base·2ⁿ⁻¹)`,
/// so each wait is at least as long as the one before (until the cap),
/// clients that failed together do not retry together, and no wait
/// exceeds `cap`.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(BACKOFF_BASE, BACKOFF_CAP)
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// An `ok`: the next failure starts again from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A failure: how long to wait before the next operation.
    pub fn next_wait(&mut self, rng: &mut StdRng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        // 2^(n-1), saturating long before it could overflow.
        let factor = 1u32 << (self.failures - 1).min(20);
        let d = self.base.saturating_mul(factor).min(self.cap);
        d / 2 + d.mul_f64(rng.random_range(0.0..=0.5))
    }
}

/// The sliding window [`FailWindows`] counts over.
pub const FAIL_WINDOW: Duration = Duration::from_secs(10);

/// Per client, the failed completions of the last [`FAIL_WINDOW`], and
/// the worst window seen. Fed in time order (the recorder's order).
#[derive(Clone, Debug)]
pub struct FailWindows {
    window_ns: u64,
    recent: Vec<VecDeque<u64>>,
    /// (failures, client, window start in ns)
    worst: Option<(usize, usize, u64)>,
}

impl Default for FailWindows {
    fn default() -> FailWindows {
        FailWindows::new(FAIL_WINDOW)
    }
}

impl FailWindows {
    pub fn new(window: Duration) -> FailWindows {
        FailWindows {
            window_ns: window.as_nanos().max(1) as u64,
            recent: Vec::new(),
            worst: None,
        }
    }

    /// Client `client` completed an operation as `fail` or `info` at
    /// `time_ns` (since the test started; not before its last one).
    pub fn note(&mut self, client: usize, time_ns: u64) {
        if self.recent.len() <= client {
            self.recent.resize_with(client + 1, VecDeque::new);
        }
        let q = &mut self.recent[client];
        // The window is (time - window, time]: a failure exactly one
        // window earlier has left it.
        while q.front().is_some_and(|&t| t + self.window_ns <= time_ns) {
            q.pop_front();
        }
        q.push_back(time_ns);
        let n = q.len();
        let start = q.front().copied().unwrap_or(time_ns);
        if self.worst.is_none_or(|(w, _, _)| n > w) {
            self.worst = Some((n, client, start));
        }
    }

    /// The worst client's failures in one window, per second of window.
    pub fn worst_per_s(&self) -> f64 {
        let n = self.worst.map_or(0, |w| w.0);
        n as f64 / (self.window_ns as f64 / 1e9)
    }

    /// `{"window_s", "worst_per_s", "client", "failures", "from_s"}`
    /// (`client` and `from_s` null when no client failed).
    pub fn to_json(&self) -> Value {
        json!({
            "window_s": self.window_ns as f64 / 1e9,
            "worst_per_s": self.worst_per_s(),
            "failures": self.worst.map_or(0, |w| w.0),
            "client": self.worst.map(|w| w.1),
            "from_s": self.worst.map(|w| w.2 as f64 / 1e9),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_to_its_cap_and_resets_on_ok() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(640));
        let waits: Vec<Duration> = (0..12).map(|_| b.next_wait(&mut rng)).collect();
        for (n, w) in waits.iter().enumerate() {
            let d = Duration::from_millis(10 << n.min(6));
            assert!(
                *w >= d / 2 && *w <= d,
                "wait {n}: {w:?} not in [{:?}, {d:?}]",
                d / 2
            );
        }
        // Up to the cap, each wait is at least the one before: the lower
        // bound doubles to the last upper bound.
        assert!(waits[..7].windows(2).all(|p| p[1] >= p[0]), "{waits:?}");
        // Bounded: past the cap, every wait is within it.
        assert!(waits[7..].iter().all(|w| *w <= Duration::from_millis(640)));
        assert!(waits[7..].iter().all(|w| *w >= Duration::from_millis(320)));
        assert_eq!(b.failures(), 12);
        b.reset();
        assert_eq!(b.failures(), 0);
        let w = b.next_wait(&mut rng);
        assert!(w <= Duration::from_millis(10), "{w:?}");
    }

    #[test]
    fn backoff_never_overflows_after_many_failures() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut b = Backoff::default();
        for _ in 0..10_000 {
            assert!(b.next_wait(&mut rng) <= BACKOFF_CAP);
        }
    }

    #[test]
    fn backoff_jitter_spreads_clients() {
        let mut rng = StdRng::seed_from_u64(3);
        let waits: std::collections::HashSet<Duration> = (0..20)
            .map(|_| {
                let mut b = Backoff::default();
                b.next_wait(&mut rng);
                b.next_wait(&mut rng)
            })
            .collect();
        assert!(waits.len() > 10, "{waits:?}");
    }

    #[test]
    fn fail_windows_find_the_worst_client_and_window() {
        let s = 1_000_000_000u64;
        let mut f = FailWindows::default();
        assert_eq!(f.worst_per_s(), 0.0);
        assert_eq!(f.to_json()["client"], Value::Null);
        // Client 0: one failure per second for 60 s.
        // Client 2: 500 failures within 1 s at t = 30 s, then quiet.
        let mut events: Vec<(u64, usize)> = (0..60).map(|i| (i * s, 0)).collect();
        events.extend((0..500).map(|i| (30 * s + i * 2_000_000, 2)));
        events.sort();
        for (t, c) in events {
            f.note(c, t);
        }
        assert_eq!(f.worst_per_s(), 50.0);
        let j = f.to_json();
        assert_eq!(
            (j["client"].as_u64(), j["failures"].as_u64()),
            (Some(2), Some(500))
        );
        assert_eq!(j["from_s"], 30.0);
        // Failures exactly a window apart are in different windows.
        let mut f = FailWindows::new(Duration::from_secs(10));
        f.note(0, 0);
        f.note(0, 10 * s);
        assert_eq!(f.to_json()["failures"], 1);
    }
}
