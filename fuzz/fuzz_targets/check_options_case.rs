//! One fuzz case for the checkers' options (issue #16): arbitrary bytes read
//! as a history the way `faultline check -` reads stdin (format detected
//! from a buffer, the stream read once, in small pieces), then checked with
//! options the leading bytes pick: Elle's `--anomalies` (known names and
//! one that is not), `--consistency-models`, `--sequential-keys`,
//! `--linearizable-keys`, writes-follow-reads off, and for
//! linearizability every built-in model with minimal counterexamples on or
//! off, exhaustive or not, split by key or not. Whatever the input: an
//! answer or a typed error, never a panic.
//!
//! Shared by the cargo-fuzz target `check_options` and the stable test
//! `checker/tests/linear_fuzz_options.rs` (which includes this file).

use faultline_checker::consistency::{ANOMALY_IMPLIES, all_models};
use faultline_checker::format::{self, Trickle};
use faultline_checker::linear::{self, Options};
use faultline_checker::model::{ModelKind, ModelSpec};
use faultline_checker::txn::{self, TxnOptions, Workload};
use std::time::Duration;

/// Picks the names whose bit is set in `mask` (bit i: name i, cycling).
fn pick(names: &[&str], mask: u8) -> Vec<String> {
    (0..8)
        .filter(|i| mask & (1 << i) != 0)
        .filter_map(|i| names.get((i * 7) % names.len().max(1)))
        .map(|s| s.to_string())
        .collect()
}

pub fn run(data: &[u8]) {
    let [flags, anomalies, models, chunk, history @ ..] = data else {
        return;
    };
    let bit = |i: u8| flags & (1 << i) != 0;
    let stream = Trickle {
        data: history,
        n: 1 + usize::from(*chunk % 64),
    };
    let Ok((h, _)) = format::parse_reader_detected(stream, None) else {
        return;
    };
    let Ok(paired) = h.pair() else { return };
    let budget = Some(Duration::from_millis(20));

    let mut names: Vec<&str> = ANOMALY_IMPLIES
        .iter()
        .flat_map(|(a, b, _)| [*a, *b])
        .collect();
    names.sort_unstable();
    names.dedup();
    // A name no table knows: an error or ignored, never a panic.
    names.push("G-nonsense");
    let all: Vec<&str> = all_models().into_iter().collect();
    for workload in [Workload::ListAppend, Workload::RwRegister] {
        let mut o = TxnOptions::new(workload);
        o.time_limit = budget;
        o.total_limit = budget;
        o.anomalies = pick(&names, *anomalies);
        if bit(0) {
            o.consistency_models = pick(&all, *models);
        }
        o.sequential_keys = bit(1);
        o.linearizable_keys = bit(2);
        o.wfr_keys = !bit(3);
        let _ = txn::check(&h, &o);
    }
    for kind in ModelKind::ALL {
        let spec = ModelSpec {
            nil_read_is_absent: bit(4),
            ..ModelSpec::new(kind)
        };
        let opts = Options {
            time_limit: budget,
            memory_limit_bytes: 64 << 20,
            threads: 1,
            shrink: !bit(5),
            exhaustive: bit(6),
            split_by_key: !bit(7),
        };
        let _ = linear::check(&paired.operations, Some(&h), &spec, &opts);
    }
}
