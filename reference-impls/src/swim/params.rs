//! `--option`s of a SWIM member: detector choice, timing and tuning.

use crate::core::Config;

/// Which failure detector a member runs (`--option detector=swim|phi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    Swim,
    Phi,
}

/// Timing and tuning, from `--option`s.
#[derive(Clone, Debug)]
pub struct Params {
    pub detector: Detector,
    pub period_ticks: u64,
    pub ping_timeout_ticks: u64,
    pub k: usize,
    pub suspicion_mult: u64,
    pub retransmit_mult: u64,
    pub push_pull_ticks: u64,
    pub phi_threshold: f64,
}

/// The `--option` names SWIM takes.
pub const OPTIONS: [&str; 8] = [
    "detector",
    "period-ticks",
    "ping-timeout-ticks",
    "k",
    "suspicion-mult",
    "retransmit-mult",
    "push-pull-ticks",
    "phi-threshold",
];

impl Params {
    /// From the config's options; unknown values are an error naming them.
    pub fn from_config(c: &Config) -> Result<Params, String> {
        let num = |name: &str, default: u64| -> Result<u64, String> {
            match c.option(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--option {name}={v}: expected a positive integer")),
            }
        };
        let detector = match c.option("detector") {
            None | Some("swim") => Detector::Swim,
            Some("phi") => Detector::Phi,
            Some(v) => return Err(format!("--option detector={v}: expected swim or phi")),
        };
        let period_ticks = num("period-ticks", 20)?;
        let phi_threshold = match c.option("phi-threshold") {
            None => 8.0,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| *x > 0.0 && x.is_finite())
                .ok_or(format!(
                    "--option phi-threshold={v}: expected a positive number"
                ))?,
        };
        Ok(Params {
            detector,
            period_ticks,
            ping_timeout_ticks: num("ping-timeout-ticks", (period_ticks * 2 / 5).max(1))?
                .min(period_ticks),
            k: num("k", 3)? as usize,
            suspicion_mult: num("suspicion-mult", 4)?,
            retransmit_mult: num("retransmit-mult", 3)?,
            push_pull_ticks: num("push-pull-ticks", period_ticks * 5)?,
            phi_threshold,
        })
    }
}
