//! Every lab a test brings up has its own net: test binaries run in
//! parallel, each test in a binary on its own thread, and `Lab::up` first
//! tears down whatever holds its bridge (`flbr{net}`). Two files on one net
//! (e2e_saga and e2e_twopc both had 31) tear each other's clusters down
//! mid-run; the per-name lock file does not help across names.
//!
//! Scans tests/*.rs (no root needed) for `Lab::up(name, net, nodes)` calls
//! and fails on a net used under two lock names (so by two files, or by two
//! tests of one file that may run at once), on a lock name used on two
//! nets (they would share `/srv/faultline-test-{name}`), and on a net that
//! is not a literal in 1..=254 (0 is `faultline lab up`'s default).

use std::collections::BTreeMap;
use std::path::Path;

/// One `Lab::up` call site.
#[derive(Debug)]
struct Call {
    file: String,
    line: usize,
    name: String,
    net: String,
}

/// The `Lab::up` calls in one file's source.
fn calls(file: &str, src: &str) -> Vec<Call> {
    // Built, so this file's own text does not match.
    let needle = format!("{}::up(", "Lab");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = src[at..].find(&needle) {
        let start = at + i + needle.len();
        at = start;
        let line_start = src[..start].rfind('\n').map_or(0, |n| n + 1);
        if src[line_start..start].trim_start().starts_with("//") {
            continue;
        }
        let Some(end) = src[start..].find(')') else {
            continue;
        };
        let args: Vec<&str> = src[start..start + end].split(',').map(str::trim).collect();
        out.push(Call {
            file: file.to_string(),
            line: src[..start].lines().count(),
            name: args.first().unwrap_or(&"").trim_matches('"').to_string(),
            net: args.get(1).unwrap_or(&"").to_string(),
        });
    }
    out
}

/// Problems with a set of call sites, one line each.
fn problems(calls: &[Call]) -> Vec<String> {
    let mut bad = Vec::new();
    let mut by_net: BTreeMap<u8, Vec<&Call>> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for c in calls {
        match c.net.parse::<u8>() {
            Ok(n @ 1..=254) => by_net.entry(n).or_default().push(c),
            _ => bad.push(format!(
                "{}:{}: net {:?} must be a literal in 1..=254",
                c.file, c.line, c.net
            )),
        }
        by_name.entry(&c.name).or_default().push(c);
    }
    let sites = |v: &[&Call]| {
        v.iter()
            .map(|c| format!("{}:{} ({:?}, {})", c.file, c.line, c.name, c.net))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (net, v) in &by_net {
        if v.iter().any(|c| c.name != v[0].name) {
            bad.push(format!("net {net} is shared: {}", sites(v)));
        }
    }
    for (name, v) in &by_name {
        if v.iter().any(|c| c.net != v[0].net) {
            bad.push(format!("lock name {name:?} is on two nets: {}", sites(v)));
        }
    }
    bad
}

#[test]
fn every_lab_test_has_its_own_net() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut all = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/") {
        let p = e.expect("dir entry").path();
        // This file's own examples are not labs.
        if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("lab_nets.rs") {
            let src = std::fs::read_to_string(&p).expect("read test file");
            let file = p.file_name().expect("name").to_string_lossy().into_owned();
            all.extend(calls(&file, &src));
        }
    }
    // The scan found the labs (a changed call syntax would find none).
    assert!(all.len() >= 20, "only {} Lab::up calls found", all.len());
    let bad = problems(&all);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_shared_net_is_found() {
    let a = "let lab = Lab::up(\"sagaw\", 31, 3);\n// Lab::up(\"x\", 31, 3) in a comment\n";
    let b = "fn t() {\n    let lab = Lab::up(\n        \"twopcw\",\n        31,\n        3,\n    );\n}\n";
    let mut c = calls("e2e_saga.rs", a);
    c.extend(calls("e2e_twopc.rs", b));
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(
        (c[1].name.as_str(), c[1].net.as_str(), c[1].line),
        ("twopcw", "31", 2)
    );
    let bad = problems(&c);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("net 31 is shared")
            && bad[0].contains("e2e_saga.rs:1")
            && bad[0].contains("e2e_twopc.rs:2"),
        "{bad:?}"
    );
    // One name on two nets, and a net that is not a literal.
    let c = calls(
        "x.rs",
        "Lab::up(\"a\", 5, 3);\nLab::up(\"a\", 6, 3);\nLab::up(\"b\", NET, 3);\n",
    );
    let bad = problems(&c);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter().any(|l| l.contains("\"NET\" must be a literal")),
        "{bad:?}"
    );
    assert!(
        bad.iter()
            .any(|l| l.contains("lock name \"a\" is on two nets")),
        "{bad:?}"
    );
}
