//! Session guarantees and causal consistency: for each guarantee a minimal
//! violating history and a valid near-twin, then simulated stores.

use faultline_checker::linear::generator::Rng;
use faultline_checker::session::{self, SessionError, SessionOptions, SessionResult};
use faultline_checker::{Event, EventType, History, Process, Value, Verdict};
use serde_json::json;

/// One completed operation: (process, "w" | "r" | "a", key, value); `null`
/// reads a register's initial version; "a" adds an element to a set, whose
/// reads return lists.
type Op = (u64, &'static str, &'static str, Value);

fn event(line: usize, p: u64, kind: EventType, f: &str, key: &str, value: Value) -> Event {
    Event {
        index: Default::default(),
        time: None,
        process: Process::Client(p),
        kind,
        f: f.into(),
        key: Some(Box::new(json!(key))),
        value,
        node: None,
        error: None,
        line,
    }
}

/// Each op invoked and completed `ok` in turn (lines 1, 2, 3, …).
fn history(ops: &[Op]) -> History {
    let mut events = Vec::new();
    for (p, f, k, v) in ops {
        let f = match *f {
            "w" => "write",
            "a" => "add",
            _ => "read",
        };
        let arg = if f == "read" { Value::Null } else { v.clone() };
        events.push(event(events.len() + 1, *p, EventType::Invoke, f, k, arg));
        events.push(event(events.len() + 1, *p, EventType::Ok, f, k, v.clone()));
    }
    History { events }
}

fn check(ops: &[Op], models: &[&str]) -> SessionResult {
    let opts = SessionOptions {
        models: models.iter().map(|s| s.to_string()).collect(),
    };
    session::check(&history(ops), &opts).expect("checks")
}

fn check_all(ops: &[Op]) -> SessionResult {
    check(ops, &["causal"])
}

fn assert_only(r: &SessionResult, kind: &str) {
    assert_eq!(r.verdict, Verdict::Invalid, "{r:#?}");
    assert_eq!(r.anomaly_types, vec![kind.to_string()], "{}", r.prose());
}

fn assert_valid(r: &SessionResult) {
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
}

#[test]
fn read_your_writes() {
    let bad = [(0, "w", "x", json!(1)), (0, "r", "x", Value::Null)];
    let r = check_all(&bad);
    assert_only(&r, "read-your-writes");
    let v = &r.anomalies["read-your-writes"][0];
    assert_eq!(v.ops.iter().map(|o| o.line).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        v.explanation,
        "process 0 wrote 1 to key x (line 1) then read the initial value (null) (line 3), \
         an older version: read-your-writes violated"
    );
    assert_valid(&check_all(&[
        (0, "w", "x", json!(1)),
        (0, "r", "x", json!(1)),
    ]));

    // An older version, not only the initial one.
    let older = [
        (1, "w", "x", json!(4)),
        (0, "r", "x", json!(4)),
        (0, "w", "x", json!(5)),
        (0, "r", "x", json!(4)),
    ];
    assert_only(&check(&older, &["read-your-writes"]), "read-your-writes");
    // A concurrent write is not older: it may be ordered after ours.
    let concurrent = [
        (1, "w", "x", json!(4)),
        (0, "w", "x", json!(5)),
        (0, "r", "x", json!(4)),
    ];
    assert_valid(&check_all(&concurrent));
}

#[test]
fn monotonic_reads() {
    let bad = [
        (1, "w", "x", json!(1)),
        (1, "w", "x", json!(2)),
        (0, "r", "x", json!(2)),
        (0, "r", "x", json!(1)),
    ];
    let r = check(&bad, &["monotonic-reads"]);
    assert_only(&r, "monotonic-reads");
    assert!(
        r.prose()
            .contains("process 0 read 2 from key x (line 5) then read 1 (line 7)"),
        "{}",
        r.prose()
    );
    let good = [
        (1, "w", "x", json!(1)),
        (1, "w", "x", json!(2)),
        (0, "r", "x", json!(1)),
        (0, "r", "x", json!(2)),
    ];
    assert_valid(&check_all(&good));
}

#[test]
fn monotonic_writes() {
    let bad = [
        (1, "w", "x", json!(1)),
        (1, "w", "y", json!(1)),
        (0, "r", "y", json!(1)),
        (0, "r", "x", Value::Null),
    ];
    assert_only(&check_all(&bad), "monotonic-writes");
    assert_only(&check(&bad, &["PRAM"]), "monotonic-writes");
    // Not a violation of read-your-writes or monotonic reads alone.
    assert_valid(&check(&bad, &["read-your-writes", "monotonic-reads"]));
    let mut good = bad.clone();
    good[3].3 = json!(1);
    assert_valid(&check_all(&good));
}

#[test]
fn writes_follow_reads() {
    let bad = [
        (2, "w", "x", json!(1)),
        (1, "r", "x", json!(1)),
        (1, "w", "y", json!(1)),
        (0, "r", "y", json!(1)),
        (0, "r", "x", Value::Null),
    ];
    let r = check_all(&bad);
    assert_only(&r, "writes-follow-reads");
    assert_eq!(
        r.anomalies["writes-follow-reads"][0]
            .ops
            .iter()
            .map(|o| o.line)
            .collect::<Vec<_>>(),
        [1, 3, 5, 7, 9]
    );
    assert_valid(&check(&bad, &["PRAM"]));
    let mut good = bad.clone();
    good[4].3 = json!(1);
    assert_valid(&check_all(&good));
}

#[test]
fn transitive_stale_read_is_causal_only() {
    let bad = [
        (3, "w", "x", json!(1)),
        (2, "r", "x", json!(1)),
        (2, "w", "z", json!(1)),
        (1, "r", "z", json!(1)),
        (1, "w", "y", json!(1)),
        (0, "r", "y", json!(1)),
        (0, "r", "x", Value::Null),
    ];
    assert_only(&check_all(&bad), "causal-stale-read");
    assert_valid(&check(&bad, &["PRAM", "writes-follow-reads"]));
    let mut good = bad.clone();
    good[6].3 = json!(1);
    assert_valid(&check_all(&good));
}

#[test]
fn cyclic_causal_order() {
    let bad = [
        (0, "r", "x", json!(1)),
        (0, "w", "y", json!(1)),
        (1, "r", "y", json!(1)),
        (1, "w", "x", json!(1)),
    ];
    let r = check_all(&bad);
    assert_only(&r, "cyclic-causal-order");
    assert_eq!(r.anomalies["cyclic-causal-order"][0].ops.len(), 4);
    let mut good = bad.clone();
    good[0].3 = Value::Null;
    assert_valid(&check_all(&good));

    // A cycle does not hide a stale read elsewhere.
    let mut both = bad.to_vec();
    both.extend([(2, "w", "z", json!(1)), (2, "r", "z", Value::Null)]);
    let r = check_all(&both);
    assert_eq!(
        r.anomaly_types,
        ["cyclic-causal-order", "read-your-writes"],
        "{}",
        r.prose()
    );
    // Asked only for read-your-writes, the cycle's reads stay unjudged.
    let r = check(&bad, &["read-your-writes"]);
    assert_eq!(r.verdict, Verdict::Unknown, "{r:#?}");
}

#[test]
fn sets_each_guarantee_and_twin() {
    let cases: Vec<(&str, Vec<Op>)> = vec![
        (
            "read-your-writes",
            vec![(0, "a", "x", json!(1)), (0, "r", "x", json!([]))],
        ),
        (
            "monotonic-reads",
            vec![
                (1, "a", "x", json!(1)),
                (0, "r", "x", json!([1])),
                (0, "r", "x", json!([])),
            ],
        ),
        (
            "monotonic-writes",
            vec![
                (1, "a", "x", json!(1)),
                (1, "a", "y", json!(2)),
                (0, "r", "y", json!([2])),
                (0, "r", "x", json!([])),
            ],
        ),
        (
            "writes-follow-reads",
            vec![
                (2, "a", "x", json!(1)),
                (1, "r", "x", json!([1])),
                (1, "a", "y", json!(2)),
                (0, "r", "y", json!([2])),
                (0, "r", "x", json!([])),
            ],
        ),
    ];
    for (kind, bad) in cases {
        let r = check_all(&bad);
        assert_only(&r, kind);
        assert!(r.prose().contains("missing 1"), "{}", r.prose());
        let mut good = bad.clone();
        if let Some(last) = good.last_mut() {
            last.3 = json!([1]);
        }
        assert_valid(&check_all(&good));
    }
    // A concurrent add need not be seen yet.
    assert_valid(&check_all(&[
        (1, "a", "x", json!(1)),
        (0, "a", "x", json!(2)),
        (0, "r", "x", json!([2])),
    ]));
    let cycle = [
        (0, "r", "x", json!([1])),
        (0, "a", "y", json!(2)),
        (1, "r", "y", json!([2])),
        (1, "a", "x", json!(1)),
    ];
    assert_only(&check_all(&cycle), "cyclic-causal-order");
}

#[test]
fn malformed_set_ops_name_their_line() {
    let opts = SessionOptions::default();
    let h = history(&[(0, "a", "x", json!(1)), (0, "r", "x", json!(1))]);
    let e = session::check(&h, &opts).unwrap_err();
    assert!(matches!(e, SessionError::Op { line: 3, .. }), "{e}");
    let h = history(&[(0, "a", "x", json!(1)), (0, "w", "x", json!(2))]);
    let e = session::check(&h, &opts).unwrap_err();
    assert!(matches!(e, SessionError::Op { line: 3, .. }), "{e}");
}

#[test]
fn garbage_read_and_ambiguous_values() {
    let r = check_all(&[(0, "w", "x", json!(1)), (1, "r", "x", json!(9))]);
    assert_only(&r, "garbage-read");
    let dup = [
        (0, "w", "x", json!(1)),
        (1, "w", "x", json!(1)),
        (2, "r", "x", json!(1)),
    ];
    let r = check_all(&dup);
    assert_eq!(r.verdict, Verdict::Unknown, "{r:#?}");
    assert!(r.reasons[0].contains("twice"), "{:?}", r.reasons);
}

#[test]
fn nothing_to_check_is_unknown() {
    let r = check_all(&[(0, "w", "x", json!(1))]);
    assert_eq!(r.verdict, Verdict::Unknown);
}

#[test]
fn malformed_ops_name_their_line() {
    let mut h = history(&[(0, "w", "x", json!(1))]);
    h.events
        .push(event(3, 1, EventType::Invoke, "cas", "x", json!([1, 2])));
    let e = session::check(&h, &SessionOptions::default()).unwrap_err();
    assert!(matches!(e, SessionError::Op { line: 3, .. }), "{e}");
    let bad_model = SessionOptions {
        models: vec!["no-such-model".into()],
    };
    assert!(session::check(&h, &bad_model).is_err());
}

#[test]
fn info_write_then_new_process() {
    let mut h = history(&[]);
    h.events
        .push(event(1, 0, EventType::Invoke, "write", "x", json!(1)));
    h.events
        .push(event(2, 0, EventType::Info, "write", "x", json!(1)));
    h.events
        .push(event(3, 1, EventType::Invoke, "read", "x", Value::Null));
    h.events
        .push(event(4, 1, EventType::Ok, "read", "x", json!(1)));
    let r = session::check(&h, &SessionOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
}

#[test]
fn info_write_may_take_effect_after_later_ops() {
    // The process goes on under the same id after its write timed out: the
    // write may not have happened yet when it reads.
    let mut h = history(&[]);
    h.events
        .push(event(1, 0, EventType::Invoke, "write", "x", json!(1)));
    h.events
        .push(event(2, 0, EventType::Info, "write", "x", json!(1)));
    h.events
        .push(event(3, 0, EventType::Invoke, "read", "x", Value::Null));
    h.events
        .push(event(4, 0, EventType::Ok, "read", "x", Value::Null));
    let r = session::check(&h, &SessionOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    assert_eq!(r.stats.processes, 1);
}

#[test]
fn json_shape() {
    let r = check_all(&[(0, "w", "x", json!(1)), (0, "r", "x", Value::Null)]);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["anomaly_types"], json!(["read-your-writes"]));
    assert_eq!(v["anomalies"]["read-your-writes"][0]["process"], json!(0));
    assert_eq!(v["anomalies"]["read-your-writes"][0]["key"], json!("x"));
    assert_eq!(v["stats"]["reads_checked"], json!(1));
}

/// How a simulated store answers reads.
#[derive(Clone, Copy, Debug)]
enum Store {
    /// One copy: a read returns the latest write (linearizable).
    SingleCopy,
    /// With this probability a read returns any earlier version of its key.
    Stale(f64),
    /// Replicas apply prefixes of one write log, asynchronously; a write
    /// first catches its replica up to the log's end. `sticky`: a worker
    /// always talks to the same replica (causally consistent); otherwise each
    /// operation picks a random replica.
    Prefix { sticky: bool },
}

/// A simulated store: 4 workers issue reads and writes on 3 keys;
/// operations overlap and take effect at their completion. Some writes time
/// out (`info`, taking effect or not) and their worker continues under a new
/// process id.
/// With `sets`, writes are adds to grow-only sets and a read returns every
/// element its replica (or the stale prefix) holds.
fn simulate(seed: u64, store: Store, sets: bool) -> History {
    let mut rng = Rng(seed);
    let (workers, keys, n_ops, replicas) = (4u64, 3u64, 60, 3u64);
    let mut log: Vec<(u64, Value)> = Vec::new();
    let mut applied: Vec<usize> = vec![0; replicas as usize];
    let mut process: Vec<u64> = (0..workers).collect();
    let mut next_process = workers;
    // Per worker: the pending (f, key, value).
    let mut pending: Vec<Option<(&str, u64, Value)>> = vec![None; workers as usize];
    let mut events = Vec::new();
    let mut next_value = 1;
    let mut issued = 0;
    while issued < n_ops || pending.iter().any(Option::is_some) {
        // Asynchronous replication: some replica learns a little more.
        let lagging = rng.below(replicas) as usize;
        applied[lagging] = (applied[lagging] + rng.below(2) as usize).min(log.len());
        let w = rng.below(workers) as usize;
        let replica = match store {
            Store::Prefix { sticky: true } => w % replicas as usize,
            Store::Prefix { sticky: false } => rng.below(replicas) as usize,
            _ => 0,
        };
        let line = events.len() + 1;
        let key = |k: u64| format!("k{k}");
        match pending[w].take() {
            None if issued < n_ops => {
                issued += 1;
                let k = rng.below(keys);
                let (f, v) = if rng.chance(0.5) {
                    next_value += 1;
                    (if sets { "add" } else { "write" }, json!(next_value))
                } else {
                    ("read", Value::Null)
                };
                events.push(event(
                    line,
                    process[w],
                    EventType::Invoke,
                    f,
                    &key(k),
                    v.clone(),
                ));
                pending[w] = Some((f, k, v));
            }
            None => {}
            Some((f @ ("write" | "add"), k, v)) => {
                let timed_out = rng.chance(0.1);
                if !timed_out || rng.chance(0.5) {
                    log.push((k, v.clone()));
                    applied[replica] = log.len();
                }
                if timed_out {
                    events.push(event(line, process[w], EventType::Info, f, &key(k), v));
                    process[w] = next_process;
                    next_process += 1;
                } else {
                    events.push(event(line, process[w], EventType::Ok, f, &key(k), v));
                }
            }
            Some((_, k, _)) => {
                // The log prefix this read sees.
                let upto = match store {
                    Store::SingleCopy => log.len(),
                    Store::Stale(p) if rng.chance(p) => rng.below(log.len() as u64 + 1) as usize,
                    Store::Stale(_) => log.len(),
                    Store::Prefix { .. } => applied[replica],
                };
                let mut mine = log[..upto]
                    .iter()
                    .filter(|(lk, _)| *lk == k)
                    .map(|(_, v)| v);
                let v = if sets {
                    Value::from(mine.cloned().collect::<Vec<_>>())
                } else {
                    mine.next_back().cloned().unwrap_or(Value::Null)
                };
                events.push(event(line, process[w], EventType::Ok, "read", &key(k), v));
            }
        }
    }
    History { events }
}

fn jsonl(h: &History) -> String {
    faultline_checker::linear::generator::to_jsonl(h)
}

/// Checks seeds `0..300` of a store; panics with the seed and history when
/// `bad` holds; odd seeds are set histories. Returns how many seeds found
/// each anomaly type, as "type (register|set)".
fn run_seeds(
    store: Store,
    bad: impl Fn(&SessionResult) -> bool,
) -> std::collections::BTreeMap<String, usize> {
    let mut caught = std::collections::BTreeMap::new();
    for seed in 0..300 {
        let sets = seed % 2 == 1;
        let h = simulate(seed, store, sets);
        let r = session::check(&h, &SessionOptions::default()).expect("checks");
        assert!(
            !bad(&r),
            "seed {seed}, {store:?}, sets: {sets}: {}\n{}\n{}",
            r.verdict,
            r.prose(),
            jsonl(&h)
        );
        for t in r.anomaly_types {
            let shape = if sets { "set" } else { "register" };
            *caught.entry(format!("{t} ({shape})")).or_default() += 1;
        }
    }
    caught
}

#[test]
fn single_copy_store_is_always_valid() {
    run_seeds(Store::SingleCopy, |r| r.verdict != Verdict::Valid);
}

#[test]
fn sticky_replicated_prefix_store_is_causal() {
    run_seeds(Store::Prefix { sticky: true }, |r| {
        r.verdict != Verdict::Valid
    });
}

#[test]
fn stale_stores_are_caught() {
    for store in [Store::Stale(0.4), Store::Prefix { sticky: false }] {
        let caught = run_seeds(store, |_| false);
        for kind in [
            "read-your-writes (register)",
            "monotonic-reads (register)",
            "read-your-writes (set)",
            "monotonic-reads (set)",
        ] {
            assert!(
                caught.get(kind).copied().unwrap_or(0) > 0,
                "{store:?}: no seed in 0..300 found {kind}: {caught:?}"
            );
        }
    }
}
