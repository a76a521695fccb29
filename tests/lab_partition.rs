//! Every partition grudge, probed with real TCP between every pair of nodes
//! before, during and after the fault.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Lab, skip};

const PORT: u16 = 7000;

/// (from, to) → connected, probed with `nc -z` from every node to every
/// other node in parallel. Node nS probes port PORT+S: one listener per
/// source, because `nc -lk` has a tiny accept backlog and parallel probes
/// to one listener overflow it (SYN dropped, a false "cut").
fn matrix(lab: &Lab, n: usize) -> BTreeMap<(String, String), bool> {
    let targets: Vec<String> = (1..=n).map(|i| format!("n{i}:{}", lab.addr(i))).collect();
    let cmd = format!(
        "me=$(hostname); for t in {}; do name=${{t%%:*}}; ip=${{t#*:}}; [ \"$name\" = \"$me\" ] && continue; \
         (nc -z -w 1 $ip $(({PORT} + ${{me#n}})) && echo \"$name 1\" || echo \"$name 0\") & done; wait",
        targets.join(" ")
    );
    let mut m = BTreeMap::new();
    for (from, out) in lab.exec_ok("", &cmd) {
        for line in out.lines() {
            let (to, ok) = line.split_once(' ').expect("probe line");
            m.insert((from.clone(), to.to_string()), ok == "1");
        }
    }
    assert_eq!(m.len(), n * (n - 1), "incomplete matrix: {m:?}");
    m
}

fn full(n: usize) -> BTreeMap<(String, String), bool> {
    let mut m = BTreeMap::new();
    for a in 1..=n {
        for b in 1..=n {
            if a != b {
                m.insert((format!("n{a}"), format!("n{b}")), true);
            }
        }
    }
    m
}

/// Expected matrix given the pairs (from, to) that must NOT connect.
fn expect_cut(n: usize, cut: &[(u8, u8)]) -> BTreeMap<(String, String), bool> {
    let mut m = full(n);
    for (a, b) in cut {
        m.insert((format!("n{a}"), format!("n{b}")), false);
    }
    m
}

/// Both directions of every pair across the two groups.
fn between(a: &[u8], b: &[u8]) -> Vec<(u8, u8)> {
    let mut v = Vec::new();
    for x in a {
        for y in b {
            v.push((*x, *y));
            v.push((*y, *x));
        }
    }
    v
}

#[test]
fn every_grudge_gives_the_expected_reachability_then_heals() {
    if skip() {
        return;
    }
    let n = 5;
    let lab = Lab::up("partition", 2, n);
    lab.exec_ok(
        "",
        &format!(
            "for s in $(seq 1 {n}); do setsid nc -lk $(({PORT} + s)) </dev/null >/dev/null 2>&1 & done; true"
        ),
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(matrix(&lab, n), full(n), "before any fault");

    let cases: Vec<(&str, Vec<(u8, u8)>)> = vec![
        ("isolate:n1", between(&[1], &[2, 3, 4, 5])),
        ("halves", between(&[1, 2], &[3, 4, 5])),
        ("bridge", between(&[1, 2], &[4, 5])),
        // Ring n1..n5: each node loses the two nodes opposite it.
        (
            "majorities-ring",
            between(&[1], &[3, 4])
                .into_iter()
                .chain(between(&[2], &[4, 5]))
                .chain(between(&[3], &[5]))
                .collect(),
        ),
        ("components:n1,n3/n2,n4/n5", {
            let mut v = between(&[1, 3], &[2, 4, 5]);
            v.extend(between(&[2, 4], &[5]));
            v
        }),
        // n2 drops NEW from n1: n1 cannot open to n2, n2 still opens to n1.
        ("one-way:n1:n2", vec![(1, 2)]),
    ];
    for (spec, cut) in cases {
        let out = lab.run_ok(&["nemesis", "start", "partition", "--grudge", spec]);
        assert!(out.contains("\"f\":\"start-partition\""), "{out}");
        let got = matrix(&lab, n);
        assert_eq!(got, expect_cut(n, &cut), "during {spec}");
        let out = lab.run_ok(&["nemesis", "heal", "--all"]);
        assert!(out.contains("stop-partition"), "{out}");
        assert_eq!(matrix(&lab, n), full(n), "after healing {spec}");
    }

    // Random halves: the recorded grudge says who was cut; check the matrix
    // against it, and that it splits 2/3.
    let out = lab.run_ok(&["nemesis", "start", "partition", "--grudge", "random-halves"]);
    let ev: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("event")).expect("json");
    let grudge = &ev["value"]["fault"]["grudge"];
    let drops = |a: &str, b: &str| {
        grudge[a]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(b)))
    };
    let mut expected = full(n);
    for ((a, b), ok) in expected.iter_mut() {
        *ok = !drops(a, b) && !drops(b, a);
    }
    let got = matrix(&lab, n);
    assert_eq!(got, expected, "random halves {grudge}");
    let mut side_sizes: BTreeSet<usize> = BTreeSet::new();
    for a in 1..=n {
        let a = format!("n{a}");
        side_sizes.insert(1 + got.iter().filter(|((x, _), ok)| *x == a && **ok).count());
    }
    assert_eq!(side_sizes, BTreeSet::from([2, 3]), "{grudge}");
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_eq!(matrix(&lab, n), full(n), "after random halves");

    // The controller is never cut: every node still answers during a fault.
    lab.run_ok(&["nemesis", "start", "partition", "--grudge", "isolate:n3"]);
    assert_eq!(lab.exec_ok("", "true").len(), n);
    lab.run_ok(&["nemesis", "heal", "--all"]);
    let rules = lab.exec_ok("", "iptables -S | grep -c FAULTLINE || true");
    for (node, c) in rules {
        assert_eq!(c.trim(), "0", "{node} still has faultline rules");
    }

    // Healing with one node unreachable heals the others, fails naming the
    // missing node, and keeps the fault recorded until a heal succeeds.
    lab.run_ok(&["nemesis", "start", "partition", "--grudge", "isolate:n1"]);
    let n5 = lab.lab_json()["nodes"][4]["init_pid"]
        .as_u64()
        .expect("pid") as i32;
    // SAFETY: stops the lab's own n5 sshd, recorded in lab.json.
    unsafe { libc::kill(n5, libc::SIGSTOP) };
    let o = lab.run(&["nemesis", "heal", "--all"]);
    // SAFETY: as above.
    unsafe { libc::kill(n5, libc::SIGCONT) };
    assert_eq!(o.status.code(), Some(3), "{}", common::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("n5"),
        "{}",
        common::text(&o)
    );
    let rules = lab.exec_ok("n1,n2", "iptables -S | grep -c FAULTLINE || true");
    for (node, c) in rules {
        assert_eq!(c.trim(), "0", "{node} not healed while n5 was away");
    }
    assert!(lab.run_ok(&["nemesis", "status"]).contains("partition"));
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert!(!lab.run_ok(&["nemesis", "status"]).contains("partition"));
    assert_eq!(matrix(&lab, n), full(n), "after the late heal");
}
