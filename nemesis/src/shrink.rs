//! Shrinking a failing fault schedule to its essence: delta debugging
//! (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing
//! Input", TSE 2002: `ddmin`) over the schedule's faults, then shorter
//! faults, then a shorter run, keeping each step only while the oracle
//! still says the run fails.
//!
//! Pure: the oracle (`faultline shrink` replays the run with the
//! candidate schedule) is the caller's. A candidate the oracle answers
//! [`Outcome::Unknown`] for counts as passing: an unfinished check is no
//! evidence that the failure is still there. The search is deterministic
//! (same schedule, same answers → same result), and each candidate is
//! asked for once (answers are remembered).

use std::collections::BTreeMap;

use crate::choice::Choice;

/// The oracle's answer for one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The run with this schedule is invalid: the bug is still there.
    Fails,
    /// Valid.
    Passes,
    /// Unknown (or the run itself failed): treated as [`Outcome::Passes`].
    Unknown,
}

/// A fault with its times, as a schedule holds it (ms since the test
/// started; `stop_ms` `None` for a fault the run's end heals).
pub trait Window: Clone {
    fn start_ms(&self) -> u64;
    fn stop_ms(&self) -> Option<u64>;
    fn set_stop_ms(&mut self, stop: u64);
}

/// A candidate: which faults, with which times, over how long a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate<T> {
    pub faults: Vec<T>,
    /// The run's length (its `--time-limit`), ms.
    pub run_ms: u64,
}

/// Limits of a shrink.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// At most this many oracle calls (each is a replay: seconds).
    pub max_tries: usize,
    /// No fault is made shorter than this.
    pub min_fault_ms: u64,
    /// The run ends at least this long after the last fault's heal (the
    /// clients need time to see what the fault left behind).
    pub tail_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_tries: 40,
            min_fault_ms: 500,
            tail_ms: 2_000,
        }
    }
}

/// The result of [`shrink`].
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk<T> {
    /// The smallest candidate seen to fail (the original when none did).
    pub best: Candidate<T>,
    /// Oracle calls made.
    pub tries: usize,
    /// The fault list is 1-minimal: removing any one fault passed. False
    /// when the try budget ran out first.
    pub one_minimal: bool,
}

struct Search<'a, T, F> {
    all: &'a [T],
    run_ms: u64,
    oracle: F,
    limits: Limits,
    tries: usize,
    /// A subset went unasked for lack of tries.
    exhausted: bool,
    /// Answers for fault subsets (indices into `all`) at their own times.
    seen: BTreeMap<Vec<usize>, bool>,
}

impl<T: Window, F: FnMut(&Candidate<T>) -> Outcome> Search<'_, T, F> {
    fn out_of_tries(&self) -> bool {
        self.tries >= self.limits.max_tries
    }

    fn ask(&mut self, c: &Candidate<T>) -> bool {
        self.tries += 1;
        (self.oracle)(c) == Outcome::Fails
    }

    /// Whether the faults `idx` (original times, original run) fail.
    fn fails(&mut self, idx: &[usize]) -> bool {
        if let Some(&f) = self.seen.get(idx) {
            return f;
        }
        if self.out_of_tries() {
            self.exhausted = true;
            return false;
        }
        let c = Candidate {
            faults: idx.iter().map(|&i| self.all[i].clone()).collect(),
            run_ms: self.run_ms,
        };
        let f = self.ask(&c);
        self.seen.insert(idx.to_vec(), f);
        f
    }

    /// `ddmin`: a 1-minimal failing subset of `idx` (which fails), unless
    /// the tries run out (then the second value is false).
    fn ddmin(&mut self, mut idx: Vec<usize>) -> (Vec<usize>, bool) {
        let mut n = 2usize;
        while idx.len() >= 2 {
            let chunks = split(&idx, n);
            let mut reduced = false;
            // A chunk alone fails: keep it, start over at granularity 2.
            for c in &chunks {
                if self.fails(c) {
                    idx = c.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
            }
            if !reduced && n > 2 {
                // A complement fails: drop that chunk.
                for i in 0..chunks.len() {
                    let comp: Vec<usize> = chunks
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .flat_map(|(_, c)| c.iter().copied())
                        .collect();
                    if self.fails(&comp) {
                        idx = comp;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
            }
            if !reduced {
                if n >= idx.len() {
                    break;
                }
                n = (2 * n).min(idx.len());
            }
            if self.exhausted {
                return (idx, false);
            }
        }
        // A lone fault is needed only if the run without faults passes.
        if idx.len() == 1 && self.fails(&[]) {
            idx.clear();
        }
        (idx, !self.exhausted)
    }
}

/// `idx` in `n` nearly equal consecutive chunks.
fn split(idx: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.min(idx.len()).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = start + (idx.len() - start) / (n - i);
        out.push(idx[start..end].to_vec());
        start = end;
    }
    out
}

/// Shrinks `faults` (a run of `run_ms` that failed) with `oracle`: ddmin
/// over the faults, then each fault halved while it still fails (down to
/// [`Limits::min_fault_ms`]), then the run cut to
/// [`Limits::tail_ms`] after the last heal, or halfway there. The original
/// is not asked again: the caller saw it fail.
pub fn shrink<T, F>(faults: &[T], run_ms: u64, limits: Limits, oracle: F) -> Shrunk<T>
where
    T: Window,
    F: FnMut(&Candidate<T>) -> Outcome,
{
    let mut s = Search {
        all: faults,
        run_ms,
        oracle,
        limits,
        tries: 0,
        exhausted: false,
        seen: BTreeMap::new(),
    };
    let every: Vec<usize> = (0..faults.len()).collect();
    s.seen.insert(every.clone(), true);
    let (idx, one_minimal) = s.ddmin(every);
    let mut best = Candidate {
        faults: idx.iter().map(|&i| faults[i].clone()).collect(),
        run_ms,
    };
    // Shorter faults: halve each while the candidate still fails.
    for i in 0..best.faults.len() {
        while !s.out_of_tries() {
            let f = &best.faults[i];
            let Some(stop) = f.stop_ms() else { break };
            let len = stop.saturating_sub(f.start_ms());
            let shorter = (len / 2).max(limits.min_fault_ms);
            if shorter >= len {
                break;
            }
            let mut c = best.clone();
            let start = c.faults[i].start_ms();
            c.faults[i].set_stop_ms(start + shorter);
            if s.ask(&c) {
                best = c;
            } else {
                break;
            }
        }
    }
    // A shorter run: the tail after the last heal, else halfway there
    // (most bugs show right after the heal).
    let floor = best
        .faults
        .iter()
        .map(|f| f.stop_ms().unwrap_or(f.start_ms()))
        .max()
        .unwrap_or(0)
        + limits.tail_ms;
    for run_ms in [floor, floor + run_ms.saturating_sub(floor) / 2] {
        if run_ms >= best.run_ms || s.out_of_tries() {
            continue;
        }
        let c = Candidate {
            run_ms,
            ..best.clone()
        };
        if s.ask(&c) {
            best = c;
            break;
        }
    }
    Shrunk {
        best,
        tries: s.tries,
        one_minimal,
    }
}

/// A fault in words, with its times: `isolate-leader n1 @ 3.2 s → heal @
/// 8.2 s`, `partition n1 | n2 n3 @ …` (one-way: `n1 -/-> n2 n3`).
pub fn describe(choice: &Choice, start_ms: u64, stop_ms: Option<u64>) -> String {
    let what = match choice {
        Choice::Partition { grudge, one_way } => {
            // Who drops whom, one `a -/- b c` per node that drops any.
            let parts: Vec<String> = grudge
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| {
                    let v: Vec<&str> = v.iter().map(String::as_str).collect();
                    format!(
                        "{k} {} {}",
                        if *one_way { "-/->" } else { "-/-" },
                        v.join(" ")
                    )
                })
                .collect();
            format!("partition {}", parts.join("; "))
        }
        Choice::ClockBump { node, offset } => format!("clock {node} {offset} s"),
        Choice::ClockStrobe {
            node,
            delta,
            period_ms,
            ..
        } => format!("clock-strobe {node} {delta} s every {period_ms} ms"),
        Choice::SkewLeader { node, offset } => format!("skew-leader {node} {offset} s"),
        Choice::Loss { probability, .. } => format!("loss {:.0}%", probability * 100.0),
        Choice::Latency { delay_ms, .. } => format!("latency {delay_ms} ms"),
        Choice::Bandwidth { link, rate } => format!("bandwidth {} {rate}", link.join("-")),
        Choice::KillAll { .. } => "kill-all".into(),
        other => {
            let nodes: Vec<&str> = other.nodes().into_iter().collect();
            format!("{} {}", other.kind(), nodes.join(" "))
        }
    };
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    match stop_ms {
        Some(stop) => format!("{what} @ {} → heal @ {}", secs(start_ms), secs(stop)),
        None => format!("{what} @ {} (healed at the end)", secs(start_ms)),
    }
}

#[cfg(test)]
mod tests;
