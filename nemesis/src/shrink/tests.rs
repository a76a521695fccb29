use super::*;
use serde::Deserialize;

/// A schedule entry as `nemesis-schedule.json` holds it (the binary's
/// `Entry` has the same serde form).
#[derive(Clone, Debug, PartialEq, Deserialize)]
struct At {
    start_ms: u64,
    stop_ms: Option<u64>,
    #[serde(flatten)]
    choice: Choice,
}

impl Window for At {
    fn start_ms(&self) -> u64 {
        self.start_ms
    }
    fn stop_ms(&self) -> Option<u64> {
        self.stop_ms
    }
    fn set_stop_ms(&mut self, stop: u64) {
        self.stop_ms = Some(stop);
    }
}

/// A schedule as a raft run under the standard mix recorded it (seed 3,
/// 60 s, interval 5 s), trimmed of information fields.
const RECORDED: &str = r#"{"version": 1, "faults": [
 {"start_ms": 5012, "stop_ms": 10020, "fault": "pause", "node": "n3"},
 {"start_ms": 15031, "stop_ms": 20040, "fault": "loss", "nodes": ["n1","n2","n3"], "probability": 0.2},
 {"start_ms": 25050, "stop_ms": 30061, "fault": "kill", "node": "n1"},
 {"start_ms": 35070, "stop_ms": 40081, "fault": "clock-bump", "node": "n2", "offset": "+12.500"},
 {"start_ms": 45090, "stop_ms": 50101, "fault": "isolate-leader", "node": "n1", "chosen": "leader"},
 {"start_ms": 55110, "stop_ms": 60120, "fault": "partition", "grudge": {"n1": ["n2","n3"], "n2": ["n1"], "n3": ["n1"]}, "one_way": false},
 {"start_ms": 65130, "stop_ms": 70140, "fault": "kill-leader", "node": "n2", "chosen": "leader"},
 {"start_ms": 75150, "fault": "pause-leader", "node": "n3", "chosen": "leader"}
]}"#;

fn recorded() -> Vec<At> {
    #[derive(Deserialize)]
    struct File {
        faults: Vec<At>,
    }
    serde_json::from_str::<File>(RECORDED)
        .expect("schedule")
        .faults
}

/// The synthetic bug: a kill of n1, then an isolation of n1 lasting at
/// least a second, and a run that goes on a second after it heals.
fn bug(c: &Candidate<At>) -> Outcome {
    let kill = c
        .faults
        .iter()
        .position(|f| f.choice == Choice::Kill { node: "n1".into() });
    let iso = c
        .faults
        .iter()
        .position(|f| f.choice == Choice::IsolateLeader { node: "n1".into() });
    match (kill, iso) {
        (Some(k), Some(i)) if k < i => {
            let f = &c.faults[i];
            let stop = f.stop_ms.unwrap_or(c.run_ms);
            if stop - f.start_ms >= 1000 && c.run_ms >= stop + 1000 {
                Outcome::Fails
            } else {
                Outcome::Passes
            }
        }
        _ => Outcome::Passes,
    }
}

fn kinds(c: &Candidate<At>) -> Vec<String> {
    c.faults
        .iter()
        .map(|f| f.choice.kind().to_string())
        .collect()
}

#[test]
fn ddmin_finds_the_two_faults_then_shortens_them_and_the_run() {
    let all = recorded();
    assert_eq!(all.len(), 8);
    let mut asked = 0;
    let r = shrink(&all, 80_000, Limits::default(), |c| {
        asked += 1;
        bug(c)
    });
    assert_eq!(r.tries, asked);
    assert!(r.one_minimal, "{r:?}");
    assert_eq!(kinds(&r.best), ["kill", "isolate-leader"], "{r:?}");
    assert_eq!(bug(&r.best), Outcome::Fails);
    // 1-minimal: without either fault it passes.
    for i in 0..r.best.faults.len() {
        let mut c = r.best.clone();
        c.faults.remove(i);
        assert_eq!(bug(&c), Outcome::Passes, "without fault {i}");
    }
    // The isolation was halved down towards the bug's one second.
    let iso = &r.best.faults[1];
    let len = iso.stop_ms.expect("stop") - iso.start_ms;
    assert!((1000..2000).contains(&len), "{len} ms");
    // The kill, which the bug does not time, went to the minimum.
    let kill = &r.best.faults[0];
    assert_eq!(kill.stop_ms.expect("stop") - kill.start_ms, 500);
    // The run was cut short of its 80 s: to two seconds after the last heal.
    assert_eq!(
        r.best.run_ms,
        iso.stop_ms.expect("stop") + Limits::default().tail_ms
    );
    assert!(r.tries <= Limits::default().max_tries);
    // Deterministic: the same answers give the same result.
    assert_eq!(shrink(&all, 80_000, Limits::default(), bug), r);
}

/// `unknown` is no evidence of failure: a candidate answered unknown is
/// not kept, even where the bug would be.
#[test]
fn unknown_counts_as_passing() {
    let all = recorded();
    // Unknown whenever fewer than four faults remain: the search must stop
    // at four or more, all of which fail.
    let r = shrink(&all, 80_000, Limits::default(), |c| {
        if c.faults.len() < 4 {
            Outcome::Unknown
        } else {
            bug(c)
        }
    });
    assert!(r.best.faults.len() >= 4, "{:?}", kinds(&r.best));
    assert_eq!(bug(&r.best), Outcome::Fails);
    // An oracle that only answers unknown keeps the original schedule.
    let r = shrink(&all, 80_000, Limits::default(), |_| Outcome::Unknown);
    assert_eq!(r.best.faults, all);
    assert_eq!(r.best.run_ms, 80_000);
}

/// A bug that needs no fault shrinks to the empty schedule; the try
/// budget is kept, and a search cut short says it is not 1-minimal.
#[test]
fn no_fault_needed_and_the_budget_is_kept() {
    let all = recorded();
    let r = shrink(&all, 80_000, Limits::default(), |_| Outcome::Fails);
    assert!(r.best.faults.is_empty(), "{:?}", kinds(&r.best));
    assert_eq!(r.best.run_ms, Limits::default().tail_ms);
    let limits = Limits {
        max_tries: 3,
        ..Limits::default()
    };
    let mut n = 0;
    let r = shrink(&all, 80_000, limits, |c| {
        n += 1;
        bug(c)
    });
    assert!(n <= 3 && r.tries == n, "{n} tries");
    assert!(!r.one_minimal);
    assert_eq!(bug(&r.best), Outcome::Fails);
}

#[test]
fn faults_in_words() {
    let all = recorded();
    let w: Vec<String> = all
        .iter()
        .map(|f| describe(&f.choice, f.start_ms, f.stop_ms))
        .collect();
    assert_eq!(w[2], "kill n1 @ 25.1 s → heal @ 30.1 s");
    assert_eq!(w[4], "isolate-leader n1 @ 45.1 s → heal @ 50.1 s");
    assert_eq!(
        w[5],
        "partition n1 -/- n2 n3; n2 -/- n1; n3 -/- n1 @ 55.1 s → heal @ 60.1 s"
    );
    assert_eq!(w[7], "pause-leader n3 @ 75.2 s (healed at the end)");
    assert_eq!(w[1], "loss 20% @ 15.0 s → heal @ 20.0 s");
}

#[test]
fn split_covers_every_index_once() {
    let idx: Vec<usize> = (0..7).collect();
    for n in 1..=7 {
        let parts = split(&idx, n);
        assert_eq!(parts.len(), n);
        assert_eq!(parts.concat(), idx);
        assert!(parts.iter().all(|p| !p.is_empty()));
    }
}
