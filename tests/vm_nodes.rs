//! Nodes outside the lab: lab nodes named by address (`root@10.77.4.11`)
//! with an explicit key and known_hosts, and a `--dir` that holds no lab,
//! so exec, nemesis and test take exactly the code path of a VM cluster.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Lab, faultline, skip, text};

const PORT: u16 = 7000;
const NO_LAB: &str = "/srv/faultline-test-vm-no-lab";

struct Vm {
    lab: Lab,
    tmp: PathBuf,
    key: String,
    kh: String,
    nodes_file: String,
    state: String,
}

impl Vm {
    fn new() -> Vm {
        let lab = Lab::up("vm", 4, 3);
        let tmp = std::env::temp_dir().join("faultline-vm-nodes-test");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("tmp");
        let nodes_file = tmp.join("nodes");
        std::fs::write(
            &nodes_file,
            format!(
                "# three lab nodes, named as machines\nv1=root@{}\n\nv2=root@{}:22  # by port\nroot@{}\n",
                lab.addr(1),
                lab.addr(2),
                lab.addr(3)
            ),
        )
        .expect("nodes file");
        assert!(!PathBuf::from(NO_LAB).exists());
        Vm {
            key: format!("{}/id_ed25519", lab.dir),
            kh: format!("{}/known_hosts", lab.dir),
            nodes_file: nodes_file.display().to_string(),
            state: tmp.join("state").display().to_string(),
            lab,
            tmp,
        }
    }

    /// Runs faultline with the VM flags (key, known_hosts, no lab, state
    /// dir) added after the subcommand words in `args[..sub]`.
    fn run(&self, sub: &[&str], args: &[&str]) -> Output {
        let mut v: Vec<&str> = sub.to_vec();
        v.extend([
            "--dir",
            NO_LAB,
            "--ssh-key",
            &self.key,
            "--known-hosts",
            &self.kh,
        ]);
        if sub[0] == "nemesis" {
            v.extend(["--state-dir", &self.state]);
        }
        v.extend(args);
        faultline(&v)
    }

    /// `exec --json` on every node of the nodes file: node → (exit, stdout).
    fn exec(&self, cmd: &str) -> BTreeMap<String, (i64, String)> {
        let o = self.run(
            &["exec"],
            &["--nodes-file", &self.nodes_file, "--json", "--", cmd],
        );
        let mut m = BTreeMap::new();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let node = v["node"].as_str().expect("node").to_string();
            assert!(v.get("error").is_none(), "{node}: {}", v["error"]);
            m.insert(
                node,
                (
                    v["exit"].as_i64().unwrap_or(-1),
                    v["stdout"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
        assert_eq!(m.len(), 3, "exec {cmd:?}: {}", text(&o));
        m
    }

    fn nemesis_ok(&self, sub: &str, args: &[&str]) -> String {
        let mut a = vec!["--nodes-file", self.nodes_file.as_str()];
        a.extend(args);
        let o = self.run(&["nemesis", sub], &a);
        assert!(o.status.success(), "nemesis {sub} {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn addr_of(&self, node: &str) -> String {
        match node {
            "v1" => self.lab.addr(1),
            "v2" => self.lab.addr(2),
            _ => self.lab.addr(3),
        }
    }

    fn names(&self) -> [String; 3] {
        ["v1".into(), "v2".into(), self.lab.addr(3)]
    }

    /// (from, to) → a TCP connection opens, from every node to every other.
    /// Each source probes its own listener port (nc's backlog is tiny).
    fn matrix(&self) -> BTreeMap<(String, String), bool> {
        let names = self.names();
        let mut m = BTreeMap::new();
        for (i, from) in names.iter().enumerate() {
            let targets: Vec<String> = names
                .iter()
                .filter(|t| *t != from)
                .map(|t| format!("{t}/{}", self.addr_of(t)))
                .collect();
            let cmd = format!(
                "for t in {}; do n=${{t%%/*}}; ip=${{t#*/}}; \
                 (nc -z -w 1 $ip {} && echo \"$n 1\" || echo \"$n 0\") & done; wait",
                targets.join(" "),
                PORT + i as u16 + 1
            );
            let o = self.run(
                &["exec"],
                &[
                    "--nodes",
                    &format!("{from}=root@{}", self.addr_of(from)),
                    "--",
                    &cmd,
                ],
            );
            assert!(o.status.success(), "{}", text(&o));
            for line in String::from_utf8_lossy(&o.stdout).lines().skip(1) {
                let (to, ok) = line.split_once(' ').expect("probe line");
                m.insert((from.clone(), to.to_string()), ok == "1");
            }
        }
        assert_eq!(m.len(), 6, "{m:?}");
        m
    }

    /// Whether a UDP datagram from `from` reaches `to`.
    fn udp(&self, from: &str, to: &str) -> bool {
        let at = |n: &str| format!("{n}=root@{}", self.addr_of(n));
        let o = self.run(
            &["exec"],
            &[
                "--nodes",
                &at(to),
                "--",
                "rm -f /tmp/udp.out; setsid nc -u -l 7300 </dev/null >/tmp/udp.out 2>&1 & \
                 echo $! > /tmp/udp.pid; sleep 0.2",
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let o = self.run(
            &["exec"],
            &[
                "--nodes",
                &at(from),
                "--",
                &format!("echo ping | nc -u -w 1 {} 7300", self.addr_of(to)),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let o = self.run(
            &["exec"],
            &[
                "--nodes",
                &at(to),
                "--",
                "sleep 0.3; kill $(cat /tmp/udp.pid); cat /tmp/udp.out",
            ],
        );
        String::from_utf8_lossy(&o.stdout).contains("ping")
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Heal whatever a failed assertion left, then drop the temp dir.
        let _ = self.run(&["nemesis", "heal"], &["--all"]);
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn full(names: &[String]) -> BTreeMap<(String, String), bool> {
    let mut m = BTreeMap::new();
    for a in names {
        for b in names {
            if a != b {
                m.insert((a.clone(), b.clone()), true);
            }
        }
    }
    m
}

fn exec_by_address_names_nodes_and_kills_timeouts(vm: &Vm) {
    let out = vm.exec("hostname");
    let got: Vec<(String, String)> = out
        .into_iter()
        .map(|(n, (code, o))| {
            assert_eq!(code, 0);
            (n, o.trim().to_string())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (vm.lab.addr(3), "n3".to_string()),
            ("v1".into(), "n1".into()),
            ("v2".into(), "n2".into())
        ]
    );

    // --timeout kills the command's whole process group on the node.
    let t0 = Instant::now();
    let o = vm.run(
        &["exec"],
        &[
            "--nodes",
            &format!("v1=root@{}", vm.lab.addr(1)),
            "--timeout",
            "1",
            "--",
            "sleep 30 & sleep 31; echo never",
        ],
    );
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("v1: exec") && err.contains("killed the command"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let left =
        vm.exec("pgrep -x sleep || echo none; ls /tmp/.faultline-exec-* 2>/dev/null | wc -l");
    for (n, (_, o)) in left {
        // The one pgid file left is this probe's own.
        assert_eq!(
            o, "none\n1\n",
            "{n}: a sleep (or its pgid file) survived the timeout"
        );
    }
}

fn ssh_errors_name_the_node(vm: &Vm) {
    // Unreachable: a clear error naming the node, not a hang.
    let t0 = Instant::now();
    let o = vm.run(
        &["exec"],
        &[
            "--nodes",
            &format!("v1=root@{},ghost=root@{}", vm.lab.addr(1), vm.lab.addr(40)),
            "--connect-timeout",
            "1",
            "--",
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("ghost ("), "{}", text(&o));
    assert!(t0.elapsed() < Duration::from_secs(5));

    // Host key mismatch: v2's entry holds v1's key.
    let kh = std::fs::read_to_string(&vm.kh).expect("known_hosts");
    let key1 = kh
        .lines()
        .find(|l| l.starts_with(&format!("{} ", vm.lab.addr(1))))
        .and_then(|l| l.split_once(' '))
        .map(|(_, k)| k.to_string())
        .expect("n1 key");
    let bad = vm.tmp.join("known_hosts.bad");
    std::fs::write(&bad, format!("{} {key1}\n", vm.lab.addr(2))).expect("write");
    let v2 = format!("v2=root@{}", vm.lab.addr(2));
    let bad_s = bad.display().to_string();
    let o = faultline(&[
        "exec",
        "--dir",
        NO_LAB,
        "--ssh-key",
        &vm.key,
        "--known-hosts",
        &bad_s,
        "--nodes",
        &v2,
        "--",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("v2 (") && text(&o).contains("HOST KEY MISMATCH"),
        "{}",
        text(&o)
    );
    // Unknown key: refused, unless --accept-new-host-keys records it.
    let fresh = vm.tmp.join("known_hosts.new");
    let fresh_s = fresh.display().to_string();
    let args = |accept: bool| {
        let mut a = vec![
            "exec",
            "--dir",
            NO_LAB,
            "--ssh-key",
            &vm.key,
            "--known-hosts",
            &fresh_s,
            "--nodes",
            &v2,
        ];
        if accept {
            a.push("--accept-new-host-keys");
        }
        a.extend(["--", "true"]);
        faultline(&a)
    };
    let o = args(false);
    assert!(text(&o).contains("--accept-new-host-keys"), "{}", text(&o));
    assert!(args(true).status.success());
    assert!(
        std::fs::read_to_string(&fresh)
            .expect("recorded")
            .contains(&vm.lab.addr(2))
    );
    assert!(args(false).status.success(), "the recorded key verifies");

    // Bad entries are usage errors naming the file and line.
    let f = vm.tmp.join("bad-nodes");
    std::fs::write(&f, "v1=root@10.77.4.11\nroot@host:notaport\n").expect("write");
    let o = vm.run(
        &["exec"],
        &["--nodes-file", &f.display().to_string(), "--", "true"],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("bad-nodes:2"), "{}", text(&o));
}

fn partition_and_heal_from_the_recorded_state(vm: &Vm) {
    let names = vm.names();
    vm.exec(&format!(
        "for p in {} {} {}; do setsid nc -lk $p </dev/null >/dev/null 2>&1 & done; true",
        PORT + 1,
        PORT + 2,
        PORT + 3
    ));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(vm.matrix(), full(&names), "before");

    let out = vm.nemesis_ok("start", &["partition", "--grudge", "isolate:v1"]);
    assert!(out.contains("\"f\":\"start-partition\""), "{out}");
    let mut want = full(&names);
    for o in &names[1..] {
        want.insert(("v1".into(), o.clone()), false);
        want.insert((o.clone(), "v1".into()), false);
    }
    assert_eq!(vm.matrix(), want, "during isolate:v1");

    // The state records the nodes: status and heal need no --nodes.
    let o = vm.run(&["nemesis", "status"], &[]);
    let st = String::from_utf8_lossy(&o.stdout);
    assert!(
        st.contains("partition") && st.contains("\"v1\""),
        "{}",
        text(&o)
    );
    let state =
        std::fs::read_to_string(format!("{}/nemesis-active.json", vm.state)).expect("state");
    assert!(
        state.contains(&vm.lab.addr(1)) && state.contains("id_ed25519"),
        "{state}"
    );
    let o = vm.run(&["nemesis", "heal"], &["--all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("stop-partition"));
    assert_eq!(vm.matrix(), full(&names), "after heal --all");
    for (n, (_, c)) in vm.exec("iptables -S | grep -c FAULTLINE || true") {
        assert_eq!(c.trim(), "0", "{n} kept rules");
    }
    assert!(!PathBuf::from(format!("{}/nemesis-active.json", vm.state)).exists());

    // One-way random halves: the minority cannot open connections to the
    // majority; the majority still opens connections to the minority (its
    // SYN-ACKs are replies, not NEW). Datagrams are one-way as well.
    let out = vm.nemesis_ok("start", &["partition", "--grudge", "one-way-halves:3"]);
    let ev: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("event")).expect("json");
    assert_eq!(ev["value"]["fault"]["one_way"], true, "{ev}");
    let grudge = ev["value"]["fault"]["grudge"]
        .as_object()
        .expect("grudge")
        .clone();
    let drops = |b: &str, a: &str| {
        grudge
            .get(b)
            .and_then(|v| v.as_array())
            .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(a)))
    };
    let mut want = full(&names);
    for ((a, b), ok) in want.iter_mut() {
        *ok = !drops(b, a);
    }
    assert_eq!(
        want.values().filter(|ok| !**ok).count(),
        2,
        "1 minority x 2 majority: {grudge:?}"
    );
    assert_eq!(vm.matrix(), want, "one-way halves {grudge:?}");
    let ((a, b), _) = want.iter().find(|(_, ok)| !**ok).expect("a cut pair");
    assert!(!vm.udp(a, b), "{a} -> {b} datagrams must be dropped");
    assert!(vm.udp(b, a), "{b} -> {a} datagrams must arrive");
    // The drop rule at the majority node counted the cut traffic.
    let counts =
        vm.exec("iptables -L FAULTLINE-PART -v -n -x | awk '$3==\"DROP\"{s+=$1} END{print s+0}'");
    let dropped: i64 = counts[b].1.trim().parse().expect("count");
    assert!(dropped > 0, "{b} dropped nothing: {counts:?}");
    vm.nemesis_ok("heal", &["--all"]);
    assert_eq!(vm.matrix(), full(&names), "after one-way heal");
}

/// Seconds the receiver needs for 1 MB from `from` to `to`.
fn transfer_secs(vm: &Vm, from: &str, to: &str) -> f64 {
    let at = |n: &str| format!("{n}=root@{}", vm.addr_of(n));
    let o = vm.run(
        &["exec"],
        &[
            "--nodes",
            &at(to),
            "--",
            "rm -f /tmp/bw; setsid sh -c 's=$(date +%s.%N); nc -l 7100 >/dev/null; \
             echo $s $(date +%s.%N) > /tmp/bw' </dev/null >/dev/null 2>&1 & sleep 0.2",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = vm.run(
        &["exec"],
        &[
            "--nodes",
            &at(from),
            "--",
            &format!(
                "head -c 1000000 /dev/zero | nc -N -w 10 {} 7100",
                vm.addr_of(to)
            ),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t0 = Instant::now();
    loop {
        let o = vm.run(
            &["exec"],
            &["--nodes", &at(to), "--", "cat /tmp/bw 2>/dev/null; true"],
        );
        let s = String::from_utf8_lossy(&o.stdout);
        if let Some(l) = s.lines().nth(1).filter(|l| !l.trim().is_empty()) {
            let v: Vec<f64> = l
                .split_whitespace()
                .map(|x| x.parse().expect("num"))
                .collect();
            return v[1] - v[0];
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "transfer never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bandwidth_on_one_link(vm: &Vm) {
    let n3 = vm.lab.addr(3);
    vm.nemesis_ok(
        "start",
        &[
            "bandwidth",
            "--rate",
            "4mbit",
            "--on",
            "v1,v2",
            "--to",
            "v1,v2",
        ],
    );
    let limited = transfer_secs(vm, "v1", "v2");
    let back = transfer_secs(vm, "v2", "v1");
    let other = transfer_secs(vm, "v1", &n3);
    vm.nemesis_ok("heal", &["--all"]);
    let healed = transfer_secs(vm, "v1", "v2");
    println!(
        "1 MB at 4mbit on v1<->v2: {limited:.2} s / back {back:.2} s; v1->n3 {other:.2} s; \
         after heal {healed:.2} s"
    );
    // 8 Mbit at 4 Mbit/s is 2 s. The unshaped times include starting the
    // receiver over SSH (about 0.5 s on a loaded machine).
    assert!(limited > 1.5 && back > 1.5, "{limited} {back}");
    assert!(
        other < 1.2 && other * 2.0 < limited,
        "the other link was slowed: {other:.2} s"
    );
    assert!(healed < 1.2, "still slow after heal: {healed:.2} s");
    for (n, (_, q)) in vm.exec("tc qdisc show dev eth0 root") {
        assert!(!q.contains("fa17:"), "{n}: {q}");
    }
}

fn clock_faults_refuse_this_kernel(vm: &Vm) {
    // Lab nodes share this machine's kernel: the clock helper must refuse
    // (setting their clock would set ours), before anything is recorded.
    let before = std::time::SystemTime::now();
    let o = vm.run(
        &["nemesis", "start"],
        &[
            "clock-bump",
            "--offset",
            "+5",
            "--nodes-file",
            &vm.nodes_file,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("same boot_id"), "{}", text(&o));
    let skew = std::time::SystemTime::now()
        .duration_since(before)
        .expect("our clock went backwards");
    assert!(skew < Duration::from_secs(4), "our clock moved: {skew:?}");
    assert!(!PathBuf::from(format!("{}/nemesis-active.json", vm.state)).exists());
    let o = vm.run(
        &["nemesis", "start"],
        &["crash", "--nodes-file", &vm.nodes_file],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
}

fn test_runs_etcd_on_machines(vm: &Vm) {
    let store = vm.tmp.join("store");
    let store_s = store.display().to_string();
    let o = faultline(&[
        "test",
        "--target",
        "etcd",
        "--workload",
        "register",
        "--lab-dir",
        NO_LAB,
        "--nodes-file",
        &vm.nodes_file,
        "--ssh-key",
        &vm.key,
        "--known-hosts",
        &vm.kh,
        "--state-dir",
        &vm.state,
        "--nemesis",
        "partition,bandwidth",
        "--nemesis-interval",
        "2",
        "--time-limit",
        "6",
        "--concurrency",
        "3",
        "--seed",
        "5",
        "--store",
        &store_s,
    ]);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1) | Some(2)),
        "the run itself failed: {}",
        text(&o)
    );
    let run = std::fs::read_dir(store.join("etcd-register"))
        .expect("run dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("test.json").exists())
        .expect("a run");
    let tj = std::fs::read_to_string(run.join("test.json")).expect("test.json");
    assert!(
        tj.contains("\"v1\"") && tj.contains(&vm.lab.addr(1)),
        "{tj}"
    );
    let h = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let nem: Vec<&str> = h.lines().filter(|l| l.contains("\"nemesis\"")).collect();
    assert!(nem.len() >= 2, "no nemesis events: {}", text(&o));
    assert!(run.join("nodes/v1/etcd.log").exists());
    assert!(
        !PathBuf::from(format!("{}/nemesis-active.json", vm.state)).exists(),
        "left faults"
    );
    for (n, (_, c)) in vm.exec("iptables -S | grep -c FAULTLINE; tc qdisc show | grep -c fa17:") {
        assert_eq!(c, "0\n0\n", "{n} not healed");
    }
}

/// The nsenter transport: same view of a lab node as SSH, timeouts kill,
/// files move both ways; refused for nodes named by address.
fn nsenter_transport(vm: &Vm) {
    let lab = &vm.lab;
    let ssh = lab.run_ok(&["exec", "--", "hostname; ls /proc | grep -c '^[0-9]'"]);
    let t0 = Instant::now();
    let ns = lab.run_ok(&[
        "exec",
        "--transport",
        "nsenter",
        "--",
        "hostname; ls /proc | grep -c '^[0-9]'",
    ]);
    println!("exec on 3 nodes: nsenter {:?}", t0.elapsed());
    // Same hostnames and process-table sizes (sshd's session processes vs
    // nsenter's: both 3-5 pids, never the host's hundreds).
    let lines = |s: &str| -> Vec<String> { s.lines().map(str::to_string).collect() };
    let (a, b) = (lines(&ssh), lines(&ns));
    assert_eq!(a.len(), b.len(), "{ssh}\n{ns}");
    for (x, y) in a.iter().zip(&b) {
        if let (Ok(p), Ok(q)) = (x.parse::<u32>(), y.parse::<u32>()) {
            assert!(p < 10 && q < 10, "{ssh}\n{ns}");
        } else {
            assert_eq!(x, y);
        }
    }
    let t0 = Instant::now();
    let o = lab.run(&[
        "exec",
        "--transport",
        "nsenter",
        "--nodes",
        "n2",
        "--timeout",
        "1",
        "--",
        "sleep 30",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(
        lab.exec_ok("n2", "pgrep -x sleep || echo none")["n2"],
        "none\n"
    );
    let local = vm.tmp.join("payload");
    std::fs::write(&local, b"\x00bin\xffary\n").expect("write");
    let dl = vm.tmp.join("dl");
    let o = lab.run(&[
        "exec",
        "--transport",
        "nsenter",
        "--nodes",
        "n3",
        "--upload",
        &format!("{}:/opt/payload", local.display()),
        "--download",
        &format!("/opt/payload:{}", dl.display()),
        "--",
        "wc -c < /opt/payload",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(dl.join("n3/payload")).expect("dl"),
        b"\x00bin\xffary\n"
    );
    assert_eq!(
        std::fs::read(format!("{}/n3/fs/opt/payload", lab.dir)).expect("in the node's /opt"),
        b"\x00bin\xffary\n"
    );
    let o = vm.run(
        &["exec"],
        &[
            "--transport",
            "nsenter",
            "--nodes-file",
            &vm.nodes_file,
            "--",
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
}

#[test]
fn machines_by_address_exec_faults_and_test() {
    if skip() {
        return;
    }
    let vm = Vm::new();
    exec_by_address_names_nodes_and_kills_timeouts(&vm);
    nsenter_transport(&vm);
    ssh_errors_name_the_node(&vm);
    partition_and_heal_from_the_recorded_state(&vm);
    bandwidth_on_one_link(&vm);
    clock_faults_refuse_this_kernel(&vm);
    test_runs_etcd_on_machines(&vm);
}
