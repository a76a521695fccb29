//! The phi-accrual detector (Hayashibara et al., SRDS 2004): per member,
//! the last heartbeat and a window of inter-arrival times; φ from the
//! normal tail in Akka's logistic approximation.

use super::{Message, NodeId, PHI_WINDOW, Params, State, Swim};

/// Phi-accrual state of one member: last arrival and inter-arrival times.
#[derive(Default)]
pub(super) struct Arrivals {
    pub(super) last: Option<u64>,
    pub(super) intervals: Vec<u64>,
}

impl Swim {
    pub(super) fn phi(&self, node: NodeId, p: &Params) -> f64 {
        let Some(a) = self.arrivals.get(&node) else {
            return 0.0;
        };
        let Some(last) = a.last else {
            return 0.0;
        };
        let period = p.period_ticks as f64;
        let (mean, sd) = if a.intervals.is_empty() {
            (period, period / 2.0)
        } else {
            let n = a.intervals.len() as f64;
            let mean = a.intervals.iter().sum::<u64>() as f64 / n;
            let var = a
                .intervals
                .iter()
                .map(|x| (*x as f64 - mean).powi(2))
                .sum::<f64>()
                / n;
            (mean, var.sqrt())
        };
        let sd = sd.max(period / 2.0);
        let t = (self.tick - last) as f64;
        // Akka's logistic approximation of the normal tail.
        let y = (t - mean) / sd;
        let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
        let later = if t > mean {
            e / (1.0 + e)
        } else {
            1.0 - 1.0 / (1.0 + e)
        };
        -later.max(1e-300).log10()
    }

    pub(super) fn phi_tick(&mut self, p: &Params) {
        let targets: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| m.state == State::Alive)
            .map(|(id, _)| *id)
            .collect();
        for t in &targets {
            if self.phi(*t, p) > p.phi_threshold {
                self.suspect(*t);
            }
        }
        if !self.tick.is_multiple_of(p.period_ticks) {
            return;
        }
        self.beats.clear();
        for t in self.live_others() {
            let seq = self.next_seq();
            self.beats.insert(seq, t);
            self.arrivals.entry(t).or_default();
            self.send(t, |updates| Message::Ping { seq, updates });
        }
    }

    pub(super) fn heartbeat(&mut self, from: NodeId) {
        let now = self.tick;
        let a = self.arrivals.entry(from).or_default();
        if let Some(last) = a.last {
            a.intervals.push(now - last);
            if a.intervals.len() > PHI_WINDOW {
                a.intervals.remove(0);
            }
        }
        a.last = Some(now);
    }
}
