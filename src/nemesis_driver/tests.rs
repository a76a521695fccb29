//! Unit tests of the lab nemesis: fault choice, partitions, parsing.

use super::*;
use std::collections::BTreeSet;

#[test]
fn loss_prob_is_checked_and_added_to_other_faults() {
    assert_eq!(parse_loss_prob("0.2"), Ok(0.2));
    assert!(
        parse_loss_prob("1.5")
            .unwrap_err()
            .contains("between 0 and 1")
    );
    assert!(parse_loss_prob("x").is_err());
    let nodes = vec!["n1".to_string(), "n2".to_string()];
    let kill = || {
        vec![Fault::Kill {
            nodes: vec!["n1".into()],
            target: ProcTarget::Pidfile("/p".into()),
            restart: None,
        }]
    };
    let (mut f, mut v) = (kill(), json!({"fault": "kill", "node": "n1"}));
    with_background_loss(&mut f, &mut v, &nodes, Some(0.3));
    assert_eq!(f.len(), 2);
    assert!(matches!(&f[1], Fault::Loss { probability, .. } if *probability == 0.3));
    assert_eq!(v["loss"], json!(0.3));
    for p in [None, Some(0.0)] {
        let (mut f, mut v) = (kill(), json!({}));
        with_background_loss(&mut f, &mut v, &nodes, p);
        assert_eq!(f.len(), 1);
        assert!(v.get("loss").is_none());
    }
}

#[test]
fn stale_pidfile_is_dropped_fresh_one_kept() {
    let dir = std::env::temp_dir().join(format!("fl-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("db.pid");
    let cmd = drop_stale_pidfile(f.to_str().unwrap());
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .status()
            .unwrap()
    };
    std::fs::write(&f, "12\n").unwrap();
    assert!(sh(&cmd).success());
    assert!(f.exists(), "a pidfile written after boot was removed");
    assert!(sh(&format!("touch -d 2000-01-01 {}", f.display())).success());
    assert!(sh(&cmd).success());
    assert!(!f.exists(), "a pidfile from before boot was kept");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scheduler_chooses_one_way_partitions_and_records_them() {
    let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let mut rng = StdRng::seed_from_u64(1);
    let mut shapes = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let (f, v) = choose_partition(&nodes, None, &mut rng);
        let shape = v["shape"].as_str().unwrap().to_string();
        let Fault::Partition { grudge, one_way } = &f else {
            panic!("{f:?}")
        };
        assert_eq!(v["grudge"], json!(grudge));
        if shape == "one-way-halves" {
            assert!(*one_way);
            assert_eq!(v["minority"].as_array().unwrap().len(), 2, "{v}");
            // The recorded fault (what the history's info op holds)
            // says it is one way.
            assert_eq!(serde_json::to_value(&f).unwrap()["one_way"], true);
        } else {
            assert!(!*one_way, "{shape}");
        }
        shapes.insert(shape);
    }
    assert_eq!(
        shapes.into_iter().collect::<Vec<_>>(),
        ["halves", "isolate-one", "majorities-ring", "one-way-halves"]
    );
}

#[test]
fn clock_choices_span_ms_to_minutes() {
    let mut rng = StdRng::seed_from_u64(2);
    let (mut min, mut max) = (i64::MAX, 0);
    for _ in 0..300 {
        let (f, _) = choose_clock(
            "n1",
            Some("/opt/faultline/faultline-clock".into()),
            &mut rng,
        );
        let spec = match &f {
            Fault::ClockBump { offset, .. } => offset.clone(),
            Fault::ClockStrobe { delta, .. } => delta.clone(),
            _ => panic!(),
        };
        let ms = faultline_nemesis::fault::offset_ms(&spec).unwrap().abs();
        min = min.min(ms);
        max = max.max(ms);
        assert!(
            f.validate(
                &[("n1".to_string(), "10.0.0.1".to_string())].into(),
                "10.0.0.9"
            )
            .is_ok()
        );
    }
    assert!(min < 50 && max > 60_000, "{min}..{max}");
}

#[test]
fn parses_lists() {
    assert_eq!(parse_list("none").unwrap(), vec![]);
    assert_eq!(
        parse_list("partition,kill,pause,kill").unwrap(),
        vec![
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause
        ]
    );
    assert!(parse_list("partition,bogus").unwrap_err().contains("bogus"));
    assert_eq!(
        parse_list("kill-all,kill").unwrap(),
        vec![NemesisKind::KillAll, NemesisKind::Kill]
    );
    assert_eq!("kill-all".parse::<NemesisKind>(), Ok(NemesisKind::KillAll));
    assert_eq!(parse_list("crash").unwrap(), vec![NemesisKind::Crash]);
    assert_eq!(
        parse_list("loss, latency").unwrap(),
        vec![NemesisKind::Loss, NemesisKind::Latency]
    );
    let leader =
        parse_list("kill-leader,pause-leader,isolate-leader,skew-leader,leader-churn").unwrap();
    assert_eq!(
        leader,
        vec![
            NemesisKind::KillLeader,
            NemesisKind::PauseLeader,
            NemesisKind::IsolateLeader,
            NemesisKind::SkewLeader,
            NemesisKind::LeaderChurn
        ]
    );
    for k in leader {
        assert_eq!(k.name().parse::<NemesisKind>().unwrap(), k);
        // Only the skew moves a clock (so etcd in the lab refuses it).
        assert_eq!(k.uses_clock(), k == NemesisKind::SkewLeader);
    }
}

#[test]
fn a_target_group_is_cut_off_from_the_rest_and_replays() {
    let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let group: Vec<String> = ["n2", "n4", "n5"].map(String::from).to_vec();
    let (f, v) = cut_off_group(&nodes, "the preference list of key 1", &group);
    let Fault::Partition { grudge, one_way } = &f else {
        panic!("{f:?}")
    };
    assert!(!*one_way);
    assert_eq!(v["shape"], "target-group");
    assert_eq!(v["grudge"], json!(grudge));
    // Both ways: each member of the group drops the other side, and back.
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>()
    };
    assert_eq!(grudge["n2"], set(&["n1", "n3"]));
    assert_eq!(grudge["n1"], set(&["n2", "n4", "n5"]));
    assert_eq!(grudge["n3"], set(&["n2", "n4", "n5"]));
    // The recorded info replays as the same partition.
    let c = crate::nemesis_schedule::Choice::from_info(&v).expect("replayable");
    assert_eq!(c.nodes().len(), 5);
}
