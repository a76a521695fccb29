use super::*;
use serde_json::json;

fn parse(t: &str) -> MatrixFile {
    toml::from_str(t).expect("parse")
}

#[test]
fn cells_cover_the_product_minus_excludes() {
    let m = parse(
        r#"
        targets = ["etcd", "noop"]
        workloads = ["register", "list-append"]
        nemeses = ["none", ["partition", "kill"]]
        seeds = [1, 2]
        [[exclude]]
        target = "noop"
        nemesis = "partition,kill"
        "#,
    );
    let c = cells(&m, 9);
    // 2×2×2×2 = 16, minus noop × 2 workloads × partition,kill × 2 seeds
    assert_eq!(c.len(), 12);
    assert_eq!(c[0].label(), "etcd register nemesis=none seed=1");
    assert_eq!(c[3].nemesis, "partition,kill");
    assert!(!c.iter().any(|c| c.target == "noop" && c.nemesis != "none"));
    let m = parse("targets = [\"noop\"]\nworkloads = [\"set\"]\n");
    assert_eq!(
        cells(&m, 9),
        vec![Cell {
            target: "noop".into(),
            workload: "set".into(),
            nemesis: "none".into(),
            seed: 9
        }]
    );
}

#[test]
fn bad_files_name_the_file_and_line() {
    let d = tempfile_dir();
    let p = d.join("m.toml");
    std::fs::write(
        &p,
        "targets = [\"etcd\"]\nworkloads = [\"register\"]\ntime_limt = 5\n",
    )
    .unwrap();
    let e = format!("{:#}", load(&p).unwrap_err());
    assert!(
        e.contains("m.toml") && e.contains("time_limt") && e.contains("line 3"),
        "{e}"
    );
    std::fs::write(&p, "targets = []\nworkloads = [\"register\"]\n").unwrap();
    assert!(format!("{:#}", load(&p).unwrap_err()).contains("`targets` is empty"));
    std::fs::write(
        &p,
        "targets = [\"raft\"]\nworkloads = [\"set\"]\nbugs = { paxos = [\"x\"] }\n",
    )
    .unwrap();
    assert!(format!("{:#}", load(&p).unwrap_err()).contains("not in `targets`"));
    let _ = std::fs::remove_dir_all(&d);
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "faultline-matrix-unit-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn args_and_inline_nodes() {
    let m = parse(
        r#"
        targets = ["paxos"]
        workloads = ["register"]
        time_limit = 5
        nemesis_interval = 2
        nodes = ["n1=10.0.0.5", "n2=10.0.0.6"]
        user = "admin"
        port = 2222
        key = "keys/id"
        sudo = true
        bugs = { paxos = ["minority-quorum"] }
        args = ["--concurrency", "3"]
        "#,
    );
    let c = &cells(&m, 1)[0];
    let base = base_plan(&m, Path::new("/etc/nightly"), Path::new("/s")).unwrap();
    let p = cell_plan(&m, &base, c).unwrap();
    let want = Plan {
        target: "paxos".into(),
        workload: faultline_workloads::Workload::Register,
        nemesis: vec![],
        seed: Some(1),
        store: "/s".into(),
        time_limit_s: 5.0,
        nemesis_interval_s: 2.0,
        bugs: vec!["minority-quorum".into()],
        // user and port fill the entries; the key is the file's.
        nodes: vec![
            "n1=admin@10.0.0.5:2222".into(),
            "n2=admin@10.0.0.6:2222".into(),
        ],
        node_count: 2,
        ssh_key: Some("/etc/nightly/keys/id".into()),
        sudo: true,
        ..Plan::default()
    };
    assert_eq!(p, want);
    // A cell's nemesis set is the plan's kinds.
    let c2 = Cell {
        nemesis: "partition,kill".into(),
        ..c.clone()
    };
    let p2 = cell_plan(&m, &base, &c2).unwrap();
    assert_eq!(
        serde_json::to_value(&p2).unwrap()["nemesis"],
        json!(["partition", "kill"])
    );
    let t: toml::Table =
        toml::from_str(&nodes_toml(&m, Path::new("/etc/nightly")).unwrap()).unwrap();
    assert_eq!(t["user"].as_str(), Some("admin"));
    assert_eq!(t["port"].as_integer(), Some(2222));
    assert_eq!(t["key"].as_str(), Some("/etc/nightly/keys/id"));
    assert_eq!(t["nodes"].as_array().map(Vec::len), Some(2));
}

fn result(status: Status, types: &[&str], reason: Option<&str>) -> CellResult {
    CellResult {
        cell: Cell {
            target: "raft".into(),
            workload: "list-append".into(),
            nemesis: "partition,kill".into(),
            seed: 3,
        },
        status,
        exit_code: Some(status.exit_code().into()),
        anomaly_types: types.iter().map(|s| s.to_string()).collect(),
        reason: reason.map(str::to_string),
        run_dir: Some("/s/raft-list-append/20261126T000000.000Z".into()),
        run_path: Some("raft-list-append/20261126T000000.000Z".into()),
        report: Some("/s/raft-list-append/20261126T000000.000Z/report.html".into()),
        log: "logs/001.log".into(),
        duration_s: 1.5,
    }
}

#[test]
fn junit_counts_and_worst() {
    let m = MatrixFile::default();
    let rs = vec![
        result(Status::Valid, &[], None),
        result(Status::Invalid, &["G1c", "G-single"], None),
        result(
            Status::Unknown,
            &[],
            Some("checker budget <spent> \u{1b}[0m"),
        ),
        result(Status::Failed, &[], Some("ssh: n2 unreachable")),
        result(Status::NotRun, &[], Some("interrupted")),
    ];
    let s = summarize(
        "nightly",
        Path::new("m.toml"),
        "20261126T000000.000Z",
        Instant::now(),
        Path::new("/s"),
        &m,
        &rs,
        true,
    );
    assert_eq!(s.worst, Status::Invalid);
    assert_eq!(s.exit_code, 1);
    assert_eq!(s.counts["invalid"], 1);
    assert_eq!(s.counts["not-run"], 1);
    let x = junit_xml(&s);
    assert!(
        x.contains("tests=\"5\" failures=\"1\" errors=\"2\" skipped=\"1\""),
        "{x}"
    );
    assert!(x.contains(
        "<failure type=\"invalid\" message=\"invalid: G1c, G-single — ../../raft-list-append/20261126T000000.000Z/report.html\">"
    ), "{x}");
    assert!(x.contains("checker budget &lt;spent&gt; ?[0m"), "{x}");
    assert!(!x.contains('\u{1b}'));
    assert_eq!(x.matches("<testcase ").count(), 5);
    let h = summary_html(&s);
    assert_eq!(h.matches("<tr><td>").count(), 5);

    // Failed outranks unknown; all valid is exit 0.
    let s2 = summarize(
        "n",
        Path::new("m"),
        "t",
        Instant::now(),
        Path::new("/s"),
        &m,
        &[
            result(Status::Unknown, &[], None),
            result(Status::Failed, &[], None),
        ],
        false,
    );
    assert_eq!((s2.worst, s2.exit_code), (Status::Failed, 3));
    let s3 = summarize(
        "n",
        Path::new("m"),
        "t",
        Instant::now(),
        Path::new("/s"),
        &m,
        &[result(Status::Valid, &[], None)],
        false,
    );
    assert_eq!(s3.exit_code, 0);
    let m4 = MatrixFile {
        report_url: Some("http://ci:8080/".into()),
        ..MatrixFile::default()
    };
    let s4 = summarize(
        "n",
        Path::new("m"),
        "t",
        Instant::now(),
        Path::new("/s"),
        &m4,
        &[result(Status::Invalid, &["G0"], None)],
        false,
    );
    assert!(
        junit_xml(&s4)
            .contains("http://ci:8080/runs/raft-list-append/20261126T000000.000Z/report.html")
    );
}
