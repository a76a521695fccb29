//! Unit tests of the recorded nemesis schedule: parsing, replay, rebuilt faults.

use super::*;
use faultline_nemesis::{DbProcess, Fault, FaultEnv};
use serde_json::json;

fn nodes() -> Vec<String> {
    (1..=5).map(|i| format!("n{i}")).collect()
}

fn db() -> DbProcess {
    DbProcess {
        pidfile: "/run/db.pid".into(),
        restart: nodes()
            .into_iter()
            .map(|n| (n.clone(), format!("start-db {n}")))
            .collect(),
    }
}

fn parse(s: &str) -> Result<Schedule, String> {
    Schedule::parse(s, Path::new("run/nemesis-schedule.json")).map_err(|e| e.to_string())
}

const GOOD: &str = r#"{"version": 1, "faults": [
    {"start_ms": 2000, "stop_ms": 4000, "fault": "kill", "node": "n2"},
    {"start_ms": 6000, "stop_ms": 8000, "fault": "partition",
     "grudge": {"n1": ["n2"], "n2": ["n1"]}, "shape": "halves"},
    {"start_ms": 10000, "fault": "skew-leader", "node": "n3", "offset": "-4.250",
     "chosen": "leader"}
]}"#;

#[test]
fn parses_a_schedule_and_ignores_information_fields() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.faults.len(), 3);
    assert_eq!(s.faults[0].choice, Choice::Kill { node: "n2".into() });
    assert_eq!(s.faults[2].stop_ms, None);
    assert_eq!(s.faults[2].chosen.as_deref(), Some("leader"));
    let kinds = [
        NemesisKind::Kill,
        NemesisKind::Partition,
        NemesisKind::SkewLeader,
    ];
    s.check_kinds(&kinds).unwrap();
    s.check_nodes(&nodes()).unwrap();
    // Written and read back: the same schedule.
    let text = serde_json::to_string(&FileOut {
        version: VERSION,
        faults: &s.faults,
    })
    .unwrap();
    assert_eq!(parse(&text).unwrap().faults, s.faults);
}

#[test]
fn bad_schedules_name_the_file_and_the_entry() {
    let cases = [
        // Truncated JSON.
        (&GOOD[..80], "run/nemesis-schedule.json: EOF while parsing"),
        ("[]", "no `version`"),
        (r#"{"version": 2, "faults": []}"#, "version 2"),
        (r#"{"version": 1}"#, "no `faults` list"),
        (
            r#"{"version": 1, "faults": [{"start_ms": 1, "fault": "explode", "node": "n1"}]}"#,
            "faults[0]: unknown variant `explode`",
        ),
        (
            r#"{"version": 1, "faults": [{"start_ms": 1, "fault": "kill"}]}"#,
            "faults[0]: missing field `node`",
        ),
        (
            r#"{"version": 1, "faults": [{"fault": "kill", "node": "n1"}]}"#,
            "faults[0]: missing field `start_ms`",
        ),
        (
            r#"{"version": 1, "faults": [{"start_ms": 1, "stop_ms": 2, "fault": "kill",
               "node": "n1"}, {"start_ms": 9, "fault": "clock-bump", "node": "n1",
               "offset": "soon"}]}"#,
            "faults[1]: offset `soon` is not a clock offset",
        ),
        (
            r#"{"version": 1, "faults": [{"start_ms": 5, "stop_ms": 2, "fault": "kill",
               "node": "n1"}]}"#,
            "faults[0]: stop_ms 2 is before start_ms 5",
        ),
        (
            r#"{"version": 1, "faults": [{"start_ms": 1, "fault": "kill", "node": "n1"},
               {"start_ms": 9, "fault": "kill", "node": "n1"}]}"#,
            "faults[0]: no stop_ms",
        ),
        (
            r#"{"version": 1, "faults": [{"start_ms": 1, "stop_ms": 10, "fault": "kill",
               "node": "n1"}, {"start_ms": 9, "fault": "kill", "node": "n1"}]}"#,
            "faults[1]: start_ms 9 is before the previous fault's stop_ms 10",
        ),
        (
            r#"{"version": 1, "faults": [{"start_ms": 1, "fault": "bandwidth",
               "link": ["n1", "n1"], "rate": "1mbit"}]}"#,
            "faults[0]: `link` must name two different nodes",
        ),
    ];
    for (text, want) in cases {
        let e = parse(text).unwrap_err();
        assert!(e.contains(want), "{e}\n  wanted: {want}");
        assert!(e.starts_with("run/nemesis-schedule.json: "), "{e}");
    }
}

#[test]
fn unknown_nodes_and_kinds_outside_nemesis_are_refused() {
    let s = parse(GOOD).unwrap();
    let three: Vec<String> = nodes()[..2].to_vec();
    let e = s.check_nodes(&three).unwrap_err().to_string();
    assert!(
        e.ends_with("faults[2]: unknown node `n3` (the test's nodes: n1, n2)"),
        "{e}"
    );
    let e = s.check_kinds(&[NemesisKind::Kill]).unwrap_err().to_string();
    assert!(
        e.ends_with("faults[1]: a partition fault, but the test's --nemesis is kill"),
        "{e}"
    );
}

/// Loss and latency entries (as the driver records them) rebuild the
/// faults with the same nodes and values; bad values are refused.
#[test]
fn loss_and_latency_round_trip() {
    let loss = serde_json::json!({"fault": "loss", "nodes": ["n1", "n2"], "probability": 0.2});
    let c = Choice::from_info(&loss).unwrap();
    assert_eq!(c.kind(), NemesisKind::Loss);
    let (nodes, db) = (nodes(), db());
    let env = FaultEnv {
        nodes: &nodes,
        db: &db,
        clock_helper: None,
        delayer: None,
        background_loss: None,
    };
    assert_eq!(
        c.faults(&env),
        vec![Fault::Loss {
            nodes: vec!["n1".into(), "n2".into()],
            probability: 0.2
        }]
    );
    let lat = serde_json::json!({"fault": "latency", "nodes": ["n3"], "delay_ms": 50});
    let c = Choice::from_info(&lat).unwrap();
    assert_eq!(c.kind(), NemesisKind::Latency);
    assert_eq!(
        c.faults(&FaultEnv {
            delayer: Some("/usr/bin/faultline"),
            ..env
        }),
        vec![Fault::Latency {
            nodes: vec!["n3".into()],
            delay_ms: 50,
            binary: "/usr/bin/faultline".into()
        }]
    );
    let e = parse(
        r#"{"version": 1, "faults": [{"start_ms": 1, "fault": "loss",
           "nodes": ["n1"], "probability": 1.5}]}"#,
    )
    .unwrap_err();
    assert!(
        e.contains("faults[0]: `probability` 1.5 is not in (0, 1]"),
        "{e}"
    );
}

/// A schedule as this format's first writers wrote it (before the
/// choices moved to the nemesis crate) still reads: a strobe without
/// `duration_s` runs the fixed 10 s; partitions without `one_way` are two
/// way; the information fields of the start values are ignored.
#[test]
fn schedules_from_stored_runs_still_read() {
    let old = r#"{"version": 1, "faults": [
        {"start_ms": 1000, "stop_ms": 2000, "fault": "clock-strobe", "node": "n1",
         "delta": "+0.250", "period_ms": 100},
        {"start_ms": 3000, "stop_ms": 4000, "fault": "partition", "shape": "isolate-one",
         "isolated": "n2", "chosen": "leader", "grudge": {"n2": ["n1"], "n1": ["n2"]}},
        {"start_ms": 5000, "stop_ms": 6000, "fault": "bandwidth", "link": ["n1", "n2"],
         "rate": "1mbit"},
        {"start_ms": 7000, "fault": "leader-churn", "node": "n2", "chosen": "leader",
         "steps": [{"at_ms": 0, "isolate": "n2"}]}
    ]}"#;
    let s = parse(old).unwrap();
    let choices: Vec<&Choice> = s.faults.iter().map(|e| &e.choice).collect();
    assert_eq!(
        choices,
        [
            &Choice::ClockStrobe {
                node: "n1".into(),
                delta: "+0.250".into(),
                period_ms: 100,
                duration_s: 10
            },
            &Choice::Partition {
                grudge: faultline_nemesis::grudge::isolate(&nodes()[..2], "n2"),
                one_way: false
            },
            &Choice::Bandwidth {
                link: vec!["n1".into(), "n2".into()],
                rate: "1mbit".into()
            },
            &Choice::LeaderChurn { node: "n2".into() },
        ]
    );
    s.check_kinds(&[
        NemesisKind::Clock,
        NemesisKind::Partition,
        NemesisKind::Bandwidth,
        NemesisKind::LeaderChurn,
    ])
    .unwrap();
}

#[test]
fn following_steps_through_starts_and_heals() {
    let dir = std::env::temp_dir().join(format!("fl-sched-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(SCHEDULE_JSON);
    let mut log = Log::new(out.clone(), Some(parse(GOOD).unwrap()));
    // The setup heal comes before any start and passes nothing.
    log.healing();
    assert_eq!(log.next_due(), Some(Duration::from_millis(2000)));
    let Next::Replay(c) = log.next_fault(Duration::from_millis(2001)) else {
        panic!()
    };
    assert_eq!(c.kind(), NemesisKind::Kill);
    log.started(
        Duration::from_millis(2001),
        &json!({"fault": "kill", "node": "n2", "replayed": true}),
        None,
    );
    assert_eq!(log.next_due(), Some(Duration::from_millis(4000)));
    log.healing();
    assert_eq!(log.next_due(), Some(Duration::from_millis(6000)));
    assert!(matches!(
        log.next_fault(Duration::ZERO),
        Next::Replay(Choice::Partition { .. })
    ));
    log.healing();
    assert!(matches!(
        log.next_fault(Duration::ZERO),
        Next::Replay(Choice::SkewLeader { .. })
    ));
    // The last fault ends with the run: no further call is due.
    assert_eq!(log.next_due(), Some(Duration::MAX));
    log.healing();
    assert_eq!(log.next_fault(Duration::ZERO), Next::Done);
    // What was recorded is a schedule again.
    let back = Schedule::load(&out).unwrap();
    assert_eq!(back.faults.len(), 1);
    assert_eq!(back.faults[0].start_ms, 2001);
    assert!(back.faults[0].stop_ms.is_some());
    assert_eq!(
        Log::new(dir.join("x.json"), None).next_fault(Duration::ZERO),
        Next::Fresh,
        "not replaying"
    );
    // Written before any fault: an empty schedule, followed as such.
    let empty = Schedule::load(&dir.join("x.json")).unwrap();
    assert!(empty.faults.is_empty());
    let log = Log::new(dir.join("y.json"), Some(empty));
    assert_eq!(log.next_due(), Some(Duration::MAX));
    std::fs::remove_dir_all(&dir).unwrap();
}
