use super::clock::valid_offset;
use super::*;
use crate::grudge;

fn addrs() -> NodeAddrs {
    (1..=5)
        .map(|i| (format!("n{i}"), format!("10.77.0.1{i}")))
        .collect()
}

fn nodes() -> Vec<String> {
    addrs().into_keys().collect()
}

#[test]
fn isolate_rules() {
    let f = Fault::Partition {
        grudge: grudge::isolate(&nodes(), "n1"),
        one_way: false,
    };
    let cmds = f.start_commands(&addrs(), "10.77.0.1").unwrap();
    assert_eq!(cmds.len(), 5);
    let n1 = &cmds["n1"];
    assert!(n1.contains("-s 10.77.0.1 -j RETURN"));
    for i in 2..=5 {
        assert!(n1.contains(&format!("-s 10.77.0.1{i} -j DROP")));
    }
    assert!(cmds["n2"].contains("-s 10.77.0.11 -j DROP"));
    assert!(!cmds["n2"].contains("10.77.0.13"));
    assert_eq!(f.heal_commands().len(), 5);
}

#[test]
fn one_way_uses_conntrack_new() {
    let f = Fault::Partition {
        grudge: grudge::one_way("n1", "n2"),
        one_way: true,
    };
    let cmds = f.start_commands(&addrs(), "10.77.0.1").unwrap();
    assert!(cmds["n2"].contains("-s 10.77.0.11 -m conntrack --ctstate NEW -j DROP"));
    assert!(!cmds.contains_key("n1"));
}

#[test]
fn never_drops_the_controller() {
    let mut a = addrs();
    a.insert("ctl".into(), "10.77.0.1".into());
    let mut g = Grudge::new();
    g.insert("n1".into(), ["ctl".to_string()].into());
    let f = Fault::Partition {
        grudge: g,
        one_way: false,
    };
    assert_eq!(
        f.start_commands(&a, "10.77.0.1"),
        Err(FaultError::DropsController("10.77.0.1".into()))
    );
}

#[test]
fn rejects_bad_values() {
    let a = addrs();
    let bad = [
        Fault::ClockBump {
            nodes: vec!["n1".into()],
            offset: "5; rm -rf /".into(),
            helper: None,
        },
        Fault::ClockBump {
            nodes: vec!["n9".into()],
            offset: "+1".into(),
            helper: None,
        },
        Fault::Loss {
            nodes: vec!["n1".into()],
            probability: 1.5,
        },
        Fault::Bandwidth {
            nodes: vec!["n1".into()],
            rate: "fast".into(),
            dev: "eth0".into(),
            to: vec![],
        },
        Fault::Bandwidth {
            nodes: vec!["n1".into()],
            rate: "1mbit".into(),
            dev: "auto".into(),
            to: vec!["n9".into()],
        },
        Fault::ClockBump {
            nodes: vec!["n1".into()],
            offset: "+1".into(),
            helper: Some("faultline-clock".into()),
        },
        Fault::Pause {
            nodes: vec!["n1".into()],
            target: ProcTarget::Name("a b".into()),
        },
    ];
    for f in bad {
        assert!(f.validate(&a, "10.77.0.1").is_err(), "{f:?}");
    }
}

#[test]
fn offsets() {
    for ok in ["+0", "+5.250", "-0.5s", "+2m", "-1h", "+1d"] {
        assert!(valid_offset(ok), "{ok}");
    }
    for bad in ["5", "+", "+1.", "+a", "+1x", "+1.2.3", "@2020"] {
        assert!(!valid_offset(bad), "{bad}");
    }
}

#[test]
fn clock_bump_writes_atomically() {
    let f = Fault::ClockBump {
        nodes: vec!["n3".into()],
        offset: "+5.250".into(),
        helper: None,
    };
    let c = &f.start_commands(&addrs(), "10.77.0.1").unwrap()["n3"];
    assert!(c.contains("'+5.250' > /tmp/faultline-faketime.rc.tmp && mv -f"));
    assert!(f.heal_commands()["n3"].contains("'+0'"));
}

#[test]
fn latency_exempts_the_controller_and_heals_the_delayer() {
    let f = Fault::Latency {
        nodes: vec!["n1".into()],
        delay_ms: 100,
        binary: "/usr/local/bin/faultline".into(),
    };
    let c = &f.start_commands(&addrs(), "10.77.0.1").unwrap()["n1"];
    assert!(c.contains("nemesis delayer --queue 0 --delay-ms 100"));
    assert!(c.contains("-d 10.77.0.1 -j RETURN"));
    assert!(c.contains("--queue-bypass"));
    let h = &f.heal_commands()["n1"];
    assert!(h.contains("iptables -D OUTPUT -j FAULTLINE-DELAY"));
    assert!(h.contains("kill $(cat /tmp/faultline-delayer.pid)"));
    let bad = Fault::Latency {
        nodes: vec!["n1".into()],
        delay_ms: 100,
        binary: "faultline".into(),
    };
    assert!(bad.validate(&addrs(), "10.77.0.1").is_err());
}

#[test]
fn crash_is_local_and_heals_with_the_restart() {
    let f = Fault::Crash {
        nodes: vec!["n2".into()],
        restart: None,
    };
    assert!(f.is_lab_local());
    assert!(f.start_commands(&addrs(), "10.77.0.1").unwrap().is_empty());
    assert!(f.heal_commands().is_empty());
    assert_eq!(
        serde_json::to_string(&f).unwrap(),
        r#"{"kind":"crash","nodes":["n2"]}"#
    );
    let r = Fault::Crash {
        nodes: vec!["n2".into()],
        restart: Some("start-db".into()),
    };
    assert_eq!(r.heal_commands()["n2"], "start-db");
    let none = Fault::Crash {
        nodes: vec![],
        restart: None,
    };
    assert!(none.validate(&addrs(), "10.77.0.1").is_err());
    let unknown = Fault::Crash {
        nodes: vec!["n9".into()],
        restart: None,
    };
    assert!(unknown.validate(&addrs(), "10.77.0.1").is_err());
}

#[test]
fn offset_spec_in_ms() {
    for (spec, ms) in [
        ("+0", 0),
        ("+5.250", 5250),
        ("-0.5s", -500),
        ("+2m", 120_000),
        ("-1h", -3_600_000),
        ("+1d", 86_400_000),
        ("+0.0004", 0),
        ("+0.0005", 1),
        ("-1.5m", -90_000),
        ("+0.001", 1),
    ] {
        assert_eq!(offset_ms(spec), Some(ms), "{spec}");
    }
    assert_eq!(offset_ms("5"), None);
    assert_eq!(offset_ms("+99999999999999999999d"), None);
}

#[test]
fn clock_helper_commands() {
    let f = Fault::ClockBump {
        nodes: vec!["n1".into()],
        offset: "-2m".into(),
        helper: Some(CLOCK_HELPER.into()),
    };
    let c = &f.start_commands(&addrs(), "10.77.0.1").unwrap()["n1"];
    assert!(
        c.ends_with("/opt/faultline/faultline-clock offset -120000"),
        "{c}"
    );
    assert!(!c.contains("faketime"));
    assert!(f.heal_commands()["n1"].ends_with("faultline-clock reset"));
    let s = Fault::ClockStrobe {
        nodes: vec!["n2".into()],
        delta: "+0.5".into(),
        period_ms: 100,
        duration_s: 3,
        helper: Some(CLOCK_HELPER.into()),
    };
    let c = &s.start_commands(&addrs(), "10.77.0.1").unwrap()["n2"];
    assert!(c.contains("faultline-clock strobe 500 100 3000"), "{c}");
    assert!(heal_everything_command().contains("faultline-clock reset"));
}

#[test]
fn bandwidth_per_link_uses_htb_filters() {
    let f = Fault::Bandwidth {
        nodes: vec!["n1".into(), "n2".into()],
        rate: "4mbit".into(),
        dev: "auto".into(),
        to: vec!["n1".into(), "n2".into()],
    };
    let cmds = f.start_commands(&addrs(), "10.77.0.1").unwrap();
    let n1 = &cmds["n1"];
    assert!(n1.contains("ip -o route get 10.77.0.12"), "{n1}");
    assert!(
        n1.contains("match ip dst 10.77.0.12/32 flowid fa17:2"),
        "{n1}"
    );
    assert!(!n1.contains("10.77.0.11/32"), "a node never limits itself");
    assert!(cmds["n2"].contains("match ip dst 10.77.0.11/32"));
    assert!(f.heal_commands()["n1"].contains("grep -q ' fa17: '"));
    let whole = Fault::Bandwidth {
        nodes: vec!["n1".into()],
        rate: "4mbit".into(),
        dev: "eth0".into(),
        to: vec![],
    };
    let c = &whole.start_commands(&addrs(), "10.77.0.1").unwrap()["n1"];
    assert!(
        c.contains("d=eth0;") && c.contains("root handle fa17: tbf rate 4mbit"),
        "{c}"
    );
}

#[test]
fn controller_lists_are_exempt() {
    let mut a = addrs();
    a.insert("ctl".into(), "10.0.0.9".into());
    let mut g = Grudge::new();
    g.insert("n1".into(), ["ctl".to_string()].into());
    let f = Fault::Partition {
        grudge: g,
        one_way: false,
    };
    assert_eq!(
        f.start_commands(&a, "10.77.0.1,10.0.0.9"),
        Err(FaultError::DropsController("10.0.0.9".into()))
    );
}

#[test]
fn serde_round_trip() {
    let f = Fault::Pause {
        nodes: vec!["n1".into()],
        target: ProcTarget::Name("etcd".into()),
    };
    let s = serde_json::to_string(&f).unwrap();
    assert_eq!(
        s,
        r#"{"kind":"pause","nodes":["n1"],"target":{"name":"etcd"}}"#
    );
    assert_eq!(serde_json::from_str::<Fault>(&s).unwrap(), f);
}
