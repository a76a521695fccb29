use super::*;
use clap::{CommandFactory, Parser};

/// A directory of its own under the system temp dir, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!(
            "faultline-plan-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        Tmp(d)
    }
    fn file(&self, name: &str, body: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, body).expect("write");
        p.display().to_string()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `faultline test ARGS` as the real command line parses it.
fn test_args(args: &[String]) -> TestArgs {
    let argv = ["faultline", "test"]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    match crate::Cli::try_parse_from(argv) {
        Ok(crate::Cli {
            command: crate::Command::Test(a),
        }) => a,
        Ok(other) => panic!("not a test command: {other:?}"),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn plan_of(args: &[String]) -> Plan {
    Plan::from_args(&test_args(args)).unwrap_or_else(|e| panic!("{args:?}: {e:#}"))
}

/// test.json as a run writes it: the plan and what the run learnt.
fn through_test_json(p: &Plan) -> Plan {
    let record = RunRecord {
        plan: p,
        name: p.name(),
        workload_options: WorkloadOptions::new(p.workload),
        checker: Some("cas-register"),
        node_names: vec!["n1".into(), "n2".into()],
        addresses: Some(json!({"n1": "10.0.0.5"})),
        test_index: 2,
        faultline_version: "0.0.0",
        command: vec!["faultline".into(), "test".into()],
        db: [("node", json!({"protocol": "raft"}))]
            .into_iter()
            .collect(),
    };
    let text = serde_json::to_string_pretty(&record).expect("serialise");
    let v: Value = serde_json::from_str(&text).expect("parse");
    assert_eq!(v["plan_version"], PLAN_VERSION, "{text}");
    Plan::from_json(&v, "test.json").unwrap_or_else(|e| panic!("{e:#}\n{text}"))
}

/// Every flag of `faultline test`, given a value other than its
/// default, reaches the plan and comes back from test.json unchanged.
/// A new flag fails here until it has a value below and a line in
/// `Plan::apply` (and a field in `Plan` to hold it).
#[test]
fn every_test_flag_reaches_the_plan_and_round_trips() {
    let tmp = Tmp::new("flags");
    let plan_file = tmp.file(
        "plan.json",
        r#"{"plan_version": 1, "target": "paxos", "concurrency": 9}"#,
    );
    let nodes_file = tmp.file(
        "cluster.toml",
        "nodes = [\"n1=10.0.0.5\", \"n2=10.0.0.6\"]\nuser = \"admin\"\nsudo = true\n",
    );
    // id → (flags the value needs, e.g. its target; the flag and value)
    let values: Vec<(&str, &[&str], Vec<&str>)> = vec![
        ("plan", &[], vec!["--plan", &plan_file]),
        ("target", &[], vec!["--target", "paxos"]),
        ("bugs", &[], vec!["--bug", "minority-quorum", "--bug", "x"]),
        ("node_binary", &[], vec!["--node-binary", "/opt/fl-node"]),
        ("workload", &[], vec!["--workload", "list-append"]),
        ("nemesis", &[], vec!["--nemesis", "partition,kill"]),
        ("nemesis_interval", &[], vec!["--nemesis-interval", "2.5"]),
        ("loss_prob", &[], vec!["--loss-prob", "0.2"]),
        (
            "nemesis_schedule",
            &[],
            vec!["--nemesis-schedule", "s.json"],
        ),
        (
            "nodes",
            &[],
            vec!["--nodes", "n1=root@10.0.0.5,db2.example.org"],
        ),
        ("nodes_file", &[], vec!["--nodes-file", &nodes_file]),
        ("ssh_key", &[], vec!["--ssh-key", "/k/id"]),
        ("known_hosts", &[], vec!["--known-hosts", "/k/known"]),
        ("accept_new_host_keys", &[], vec!["--accept-new-host-keys"]),
        ("sudo", &[], vec!["--sudo"]),
        ("state_dir", &[], vec!["--state-dir", "/var/fl"]),
        ("node_count", &[], vec!["--node-count", "5"]),
        ("concurrency", &[], vec!["--concurrency", "11"]),
        ("rate", &[], vec!["--rate", "250"]),
        ("time_limit", &[], vec!["--time-limit", "7.5"]),
        ("op_timeout", &[], vec!["--op-timeout", "2"]),
        ("seed", &[], vec!["--seed", "4242"]),
        ("test_count", &[], vec!["--test-count", "3"]),
        ("leave_db_running", &[], vec!["--leave-db-running"]),
        ("store", &[], vec!["--store", "/tmp/other-store"]),
        (
            "etcd_read_mode",
            &["--target", "etcd"],
            vec!["--etcd-read-mode", "serializable"],
        ),
        (
            "client_cmd",
            &["--target", "exec"],
            vec!["--client-cmd", "./client"],
        ),
        (
            "db_hooks",
            &["--target", "exec"],
            vec!["--db-hooks", "hooks.toml"],
        ),
        (
            "redis_wait",
            &["--target", "redis"],
            vec!["--redis-wait", "2"],
        ),
        (
            "zk_sync_reads",
            &["--target", "zookeeper"],
            vec!["--zk-sync-reads"],
        ),
        (
            "isolation",
            &["--target", "postgres"],
            vec!["--isolation", "repeatable-read"],
        ),
        ("db_options", &[], vec!["--db-option", "lease-read"]),
        ("lab_dir", &[], vec!["--lab-dir", "/srv/other-lab"]),
        ("check_time_limit", &[], vec!["--check-time-limit", "30"]),
        (
            "max_false_positive_rate",
            &[],
            vec!["--max-false-positive-rate", "0.1"],
        ),
    ];
    let cli = crate::Cli::command();
    let test = cli.find_subcommand("test").expect("the test subcommand");
    let ids: Vec<String> = test
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| id != "help")
        .collect();
    for id in &ids {
        assert!(
            values.iter().any(|(v, _, _)| v == id),
            "`faultline test` has an argument `{id}` this test does not know: give it a \
             value in `values`, and carry it in `Plan::apply`"
        );
    }
    for (id, ctx, flag) in &values {
        assert!(ids.contains(&id.to_string()), "no argument `{id}` any more");
        let ctx: Vec<String> = ctx.iter().map(|s| s.to_string()).collect();
        let given: Vec<String> = ctx
            .iter()
            .cloned()
            .chain(flag.iter().map(|s| s.to_string()))
            .collect();
        let (without, with) = (plan_of(&ctx), plan_of(&given));
        assert_ne!(without, with, "{flag:?} does not reach the plan");
        assert_eq!(
            through_test_json(&with),
            with,
            "{flag:?} is lost in test.json"
        );
    }
    // One plan with most flags at once, too.
    let all: Vec<String> = values
        .iter()
        .filter(|(id, ctx, _)| ctx.is_empty() && !["plan", "nodes_file"].contains(id))
        .flat_map(|(_, _, f)| f.iter().map(|s| s.to_string()))
        .collect();
    let p = plan_of(&all);
    assert_eq!(through_test_json(&p), p);
}

/// Each fault kind is written by its `--nemesis` name and read back.
#[test]
fn every_nemesis_kind_round_trips_by_name() {
    let list = "partition,kill,kill-all,pause,clock,crash,bandwidth,loss,latency,\
                kill-leader,pause-leader,isolate-leader,skew-leader,leader-churn";
    let p = plan_of(&["--nemesis".into(), list.into()]);
    assert_eq!(p.nemesis.len(), 14);
    let v = serde_json::to_value(&p).expect("serialise");
    let names: Vec<&str> = v["nemesis"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names.join(","), list);
    assert_eq!(through_test_json(&p), p);
}

/// Issue 18: without --workload and --nemesis a target runs its own
/// workload (the first it lists) under its standard mix, leader kinds
/// included; `none` and `all` say so explicitly; a kind the target
/// does not take is a usage error; a plan file's values are kept.
#[test]
fn defaults_are_the_targets_workload_and_standard_mix() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for (target, want) in [
        ("twopc", Workload::Bank),
        ("saga", Workload::Saga),
        ("lock", Workload::Fenced),
        ("elect", Workload::Election),
        ("swim", Workload::Membership),
        ("crdt", Workload::Counter),
        ("raft", Workload::Register),
    ] {
        let p = plan_of(&s(&["--target", target]));
        assert_eq!(p.workload, want, "{target}");
        assert!(p.nemesis.contains(&NemesisKind::IsolateLeader), "{target}");
        assert!(p.nemesis.contains(&NemesisKind::Kill), "{target}");
        assert!(!p.nemesis.contains(&NemesisKind::Latency), "{target}");
        // The defaulted plan passes the check (bar the node binary).
        let info = dbs::find(target).expect("target");
        assert_eq!(p.nemesis, info.standard_mix());
    }
    let p = plan_of(&s(&["--target", "raft", "--nemesis", "none"]));
    assert!(p.nemesis.is_empty());
    let p = plan_of(&s(&["--target", "raft", "--nemesis", "all"]));
    assert_eq!(p.nemesis.len(), NemesisKind::ALL.len());
    assert!(p.nemesis.contains(&NemesisKind::Latency));
    let p = plan_of(&s(&["--target", "noop"]));
    assert!(p.nemesis.is_empty() && p.workload == Workload::Register);
    let p = plan_of(&s(&["--target", "etcd"]));
    assert!(
        !p.nemesis.contains(&NemesisKind::KillLeader),
        "{:?}",
        p.nemesis
    );
    // A kind the target does not list: one usage error naming it.
    let p = plan_of(&s(&["--target", "etcd", "--nemesis", "kill-leader"]));
    let e = check(&p).err().expect("refused");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("--nemesis kill-leader: the etcd target does not support it"),
        "{msg}"
    );
    assert!(e.chain().any(|c| c.is::<crate::UsageError>()), "{msg}");
    // A plan file that names its workload and nemesis keeps them.
    let tmp = Tmp::new("defaults");
    let f = tmp.file(
        "p.json",
        r#"{"plan_version": 1, "target": "raft", "workload": "set", "nemesis": []}"#,
    );
    let p = plan_of(&s(&["--plan", &f]));
    assert_eq!((p.workload, p.nemesis.len()), (Workload::Set, 0));
    let f = tmp.file("q.json", r#"{"plan_version": 1, "target": "twopc"}"#);
    let p = plan_of(&s(&["--plan", &f]));
    assert_eq!(p.workload, Workload::Bank);
    assert_eq!(through_test_json(&p), p);
}

/// `test --plan F --flag V`: the flag wins; the file's other values stay.
#[test]
fn a_flag_given_with_a_plan_wins() {
    let tmp = Tmp::new("wins");
    let f = tmp.file(
        "p.json",
        r#"{"plan_version": 1, "target": "postgres", "workload": "list-append",
            "db_options": {"isolation": "repeatable-read", "replicas": "1"},
            "nodes": ["n1=10.0.0.5"], "sudo": true, "time_limit_s": 30, "seed": 3}"#,
    );
    let p = plan_of(&[
        "--plan".into(),
        f,
        "--time-limit".into(),
        "4".into(),
        "--isolation".into(),
        "serializable".into(),
    ]);
    assert_eq!(p.time_limit_s, 4.0);
    assert_eq!(p.seed, Some(3));
    assert_eq!(p.workload, Workload::ListAppend);
    assert_eq!(p.db_options["isolation"], "serializable");
    assert_eq!(p.db_options["replicas"], "1");
    assert_eq!(p.nodes, vec!["n1=10.0.0.5"]);
    assert!(p.sudo);
    // Left out of the file: the flag's default.
    assert_eq!(p.concurrency, 5);
}

#[test]
fn plans_of_other_versions_are_refused_with_a_reason() {
    let e = Plan::from_json(&json!({"target": "etcd", "seed": 1}), "old/test.json").unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("old/test.json has no `plan_version`"), "{e}");
    let e = Plan::from_json(&json!({"plan_version": 2}), "p.json").unwrap_err();
    assert!(
        format!("{e:#}").contains("plan_version 2 is not one"),
        "{e:#}"
    );
    let e =
        Plan::from_json(&json!({"plan_version": 1, "nemesis": ["flood"]}), "p.json").unwrap_err();
    assert!(format!("{e:#}").contains("p.json: "), "{e:#}");
    let e = Plan::from_json(&json!({"plan_version": 1, "concurrency": "x"}), "p.json").unwrap_err();
    assert!(format!("{e:#}").contains("p.json: invalid type"), "{e:#}");
}
