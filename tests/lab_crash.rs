//! The crash fault: a whole lab node dies (every process, sshd included)
//! and comes back as `lab up` started it, with its files but a fresh
//! process table; healed by `nemesis heal --all`, by `nemesis run`, and
//! after a crash nobody recorded.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, skip, text};

fn netns_pids(ns: &str) -> String {
    let o = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// n2's (unshare, init) pids from lab.json.
fn n2_pids(lab: &Lab) -> (u32, u32) {
    let v = lab.lab_json();
    let n = &v["nodes"][1];
    assert_eq!(n["name"], "n2");
    let pid = |k: &str| n[k].as_u64().expect("pid") as u32;
    (pid("unshare_pid"), pid("init_pid"))
}

/// `lab status --json` health of each node: name → alive && sshd.
fn status_up(lab: &Lab) -> Vec<(String, bool)> {
    let o = lab.run(&["lab", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status json");
    v["health"]
        .as_array()
        .expect("health")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("").to_string(),
                h["alive"] == true && h["sshd"] == true,
            )
        })
        .collect()
}

fn assert_n2_down(lab: &Lab) {
    assert_eq!(netns_pids(&lab.netns("n2")), "", "n2's netns not empty");
    let t0 = Instant::now();
    let o = lab.run(&["exec", "--nodes", "n2", "--", "true"]);
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        !o.status.success(),
        "exec on crashed n2 worked: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("n2"),
        "error does not name n2: {}",
        text(&o)
    );
    assert!(secs < 15.0, "exec on crashed n2 took {secs:.1} s");
    println!("exec on crashed n2 failed in {secs:.2} s");
    let other = lab.exec_ok("n1,n3", "hostname");
    assert_eq!(other["n1"].trim(), "n1");
    assert_eq!(other["n3"].trim(), "n3");
    let st = lab.run(&["lab", "status"]);
    assert!(!st.status.success(), "lab status ok with n2 down");
    let out = String::from_utf8_lossy(&st.stdout);
    let n2 = out
        .lines()
        .find(|l| l.trim_start().starts_with("n2 "))
        .unwrap_or_else(|| panic!("no n2 in status: {out}"));
    assert!(n2.ends_with("down"), "n2 status: {n2}");
    assert_eq!(
        status_up(lab),
        vec![
            ("n1".to_string(), true),
            ("n2".to_string(), false),
            ("n3".to_string(), true)
        ]
    );
}

/// n2 is back: ssh (host key verified against known_hosts), its files,
/// its hostname, and none of its old processes.
fn assert_n2_back(lab: &Lab) {
    let out = lab.exec_ok(
        "n2",
        "hostname; cat /opt/crash-marker; pgrep -x sleep || echo no-sleep",
    );
    let lines: Vec<&str> = out["n2"].lines().collect();
    assert_eq!(lines, ["n2", "written before the crash", "no-sleep"]);
    assert!(status_up(lab).iter().all(|(_, up)| *up), "not all up");
    lab.run_ok(&["lab", "status"]);
    assert!(!netns_pids(&lab.netns("n2")).is_empty());
}

fn plant(lab: &Lab) {
    lab.exec_ok(
        "n2",
        "echo 'written before the crash' > /opt/crash-marker; \
         setsid sleep 1000 </dev/null >/dev/null 2>&1 & true",
    );
    let out = lab.exec_ok("n2", "pgrep -x sleep");
    assert!(!out["n2"].trim().is_empty(), "sleep not running");
}

#[test]
fn crash_a_whole_node_and_bring_it_back() {
    if skip() {
        return;
    }
    let lab = Lab::up("crash", 8, 3);
    let mut seen = lab.pids();
    let hostkey = std::fs::read(format!("{}/n2/ssh_host_ed25519_key.pub", lab.dir)).expect("key");
    let history = format!("{}/crash-history.jsonl", lab.dir);

    // Usage errors touch nothing.
    let o = lab.run(&["nemesis", "start", "crash"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let o = lab.run(&["nemesis", "start", "crash", "--nodes", "n9"]);
    assert!(
        !o.status.success() && text(&o).contains("n9"),
        "{}",
        text(&o)
    );

    // 1. Recorded crash, healed by `heal --all` from another process (as
    //    after a dead controller).
    plant(&lab);
    let old = n2_pids(&lab);
    let t0 = Instant::now();
    lab.run_ok(&[
        "nemesis",
        "start",
        "crash",
        "--nodes",
        "n2",
        "--history",
        &history,
    ]);
    println!("crash took {:.2} s", t0.elapsed().as_secs_f64());
    let st = lab.run_ok(&["nemesis", "status"]);
    assert!(st.contains("\"crash\""), "not recorded: {st}");
    for p in [old.0, old.1] {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}/ns/net")).exists(),
            "old node process {p} still alive"
        );
    }
    assert_n2_down(&lab);
    let t0 = Instant::now();
    lab.run_ok(&["nemesis", "heal", "--all", "--history", &history]);
    println!("heal (restart n2) took {:.2} s", t0.elapsed().as_secs_f64());
    assert_n2_back(&lab);
    let new = n2_pids(&lab);
    assert!(
        new.0 != old.0 && new.1 != old.1,
        "lab.json pids not updated"
    );
    seen.extend(lab.pids());
    let st = lab.run_ok(&["nemesis", "status"]);
    assert!(!st.contains("crash"), "still recorded: {st}");
    let h = std::fs::read_to_string(&history).expect("history");
    let evs: Vec<serde_json::Value> = h
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    let fs: Vec<&str> = evs.iter().filter_map(|e| e["f"].as_str()).collect();
    assert_eq!(fs, ["start-crash", "stop-crash"], "{h}");
    assert_eq!(evs[0]["type"], "info");
    assert_eq!(evs[0]["value"]["fault"]["nodes"][0], "n2");
    assert_eq!(
        evs[0]["value"]["nodes"]["n2"]["crashed"]["killed_init_pid"],
        old.1
    );
    assert_eq!(
        evs[1]["value"]["nodes"]["n2"]["restarted"]["init_pid"],
        new.1
    );

    // 2. Crash and heal within one controller (`nemesis run`), which must
    //    reconnect to the restarted node.
    plant(&lab);
    let t0 = Instant::now();
    lab.run_ok(&[
        "nemesis",
        "run",
        "--fault",
        "crash --nodes n2",
        "--duration",
        "0.5",
    ]);
    println!(
        "nemesis run crash+heal took {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert_n2_back(&lab);
    assert_ne!(n2_pids(&lab), new, "n2 was not crashed by `nemesis run`");
    seen.extend(lab.pids());

    // 3. A crash nobody recorded (node killed by hand): `heal --all` still
    //    brings the node back.
    plant(&lab);
    let (_, init) = n2_pids(&lab);
    // SAFETY: kill(2) on the node's process 1, which this test's lab started.
    assert_eq!(unsafe { libc::kill(init as i32, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    while !netns_pids(&lab.netns("n2")).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(10), "n2 did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_n2_down(&lab);
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_n2_back(&lab);
    seen.extend(lab.pids());

    let after = std::fs::read(format!("{}/n2/ssh_host_ed25519_key.pub", lab.dir)).expect("key");
    assert_eq!(hostkey, after, "host key changed");

    // Teardown leaves nothing, including the processes of n2's earlier
    // lives (their zombies are reaped by init, not by us: give it a moment).
    let t0 = Instant::now();
    lab.run_ok(&["lab", "down", "--bridge", &lab.bridge]);
    println!("lab down took {:.2} s", t0.elapsed().as_secs_f64());
    let t0 = Instant::now();
    while seen
        .iter()
        .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    lab.assert_gone(&seen);
}
