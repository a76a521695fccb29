//! A 5-node lab over SSH: isolation per node, idempotent up, unreachable
//! node errors, argument errors, clean teardown.

mod common;

use std::time::{Duration, Instant};

use common::{Lab, faultline, skip, text};

#[test]
fn lab_up_exec_isolation_and_clean_down() {
    if skip() {
        return;
    }
    let lab = Lab::up("basic", 1, 5);
    assert!(
        lab.up_secs < 6.0,
        "lab up took {:.2} s (target 3 s)",
        lab.up_secs
    );
    lab.run_ok(&["lab", "status"]);

    // Idempotent: a second up keeps the same nodes.
    let pids = lab.pids();
    let subnet = format!("{}.0/24", lab.prefix);
    let out = lab.run_ok(&["lab", "up", "--bridge", &lab.bridge, "--subnet", &subnet]);
    assert!(out.contains("already up"), "{out}");
    assert_eq!(lab.pids(), pids);

    // Hostname, address and process isolation, per node over SSH.
    let res = lab.exec_ok("", "hostname; ip -br -4 addr show eth0; ps -e -o comm=");
    assert_eq!(res.len(), 5);
    for (i, (node, out)) in res.iter().enumerate() {
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(node.as_str()), "{out}");
        let addr = lines.next().unwrap_or("");
        assert!(
            addr.contains(&format!("{}/24", lab.addr(i + 1))),
            "{node}: {addr}"
        );
        let procs: Vec<&str> = lines.collect();
        assert!(
            procs.len() <= 5,
            "{node} sees too many processes: {procs:?}"
        );
        assert!(procs.contains(&"sshd"), "{node}: {procs:?}");
    }
    // PID 1 is sshd.
    for (node, out) in lab.exec_ok("", "cat /proc/1/comm") {
        assert_eq!(out.trim(), "sshd", "{node}");
    }

    // Private /tmp, /opt, /root: visible from the controller under the lab dir.
    lab.exec_ok(
        "n1",
        "echo one > /tmp/mark; echo opt > /opt/mark; echo r > /root/mark",
    );
    let n2 = lab.exec("n2", "cat /tmp/mark /opt/mark /root/mark");
    assert_ne!(n2["n2"].0, 0, "n2 sees n1's private files");
    let host_copy = std::fs::read_to_string(format!("{}/n1/fs/tmp/mark", lab.dir)).expect("mark");
    assert_eq!(host_copy, "one\n");
    // Names resolve through the per-node /etc/hosts.
    let hosts = lab.exec_ok("n1", "getent hosts n3");
    assert!(hosts["n1"].starts_with(&lab.addr(3)), "{hosts:?}");

    // Upload then download through the same sessions.
    let local = std::env::temp_dir().join("faultline-lab-basic-upload");
    std::fs::write(&local, b"payload\n").expect("write");
    let up = format!("{}:/opt/payload", local.display());
    let dl_dir = std::env::temp_dir().join("faultline-lab-basic-dl");
    let _ = std::fs::remove_dir_all(&dl_dir);
    let dl = format!("/opt/payload:{}", dl_dir.display());
    let o = lab.run(&[
        "exec",
        "--nodes",
        "n2,n4",
        "--upload",
        &up,
        "--download",
        &dl,
        "--",
        "wc -c < /opt/payload",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for n in ["n2", "n4"] {
        assert_eq!(
            std::fs::read(dl_dir.join(n).join("payload")).expect("dl"),
            b"payload\n"
        );
    }
    let _ = std::fs::remove_dir_all(&dl_dir);
    let _ = std::fs::remove_file(&local);

    // Exit codes: non-zero remote exit gives 1 and names the node's status.
    let o = lab.run(&["exec", "--nodes", "n5", "--", "exit 7"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("n5 (exit 7)"));

    // A command that outlives --timeout fails, naming the node, promptly.
    let t0 = Instant::now();
    let o = lab.run(&["exec", "--nodes", "n1", "--timeout", "1", "--", "sleep 5"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("n1: exec"),
        "{}",
        text(&o)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t0.elapsed()
    );

    // A node whose sshd is stopped: an error naming it within the connect
    // timeout, not a hang; the other nodes still answer.
    let n3_pid = lab.lab_json()["nodes"][2]["init_pid"]
        .as_u64()
        .expect("pid") as i32;
    // SAFETY: signals the lab's own sshd, recorded in lab.json.
    unsafe { libc::kill(n3_pid, libc::SIGSTOP) };
    let t0 = Instant::now();
    let o = lab.run(&["exec", "--connect-timeout", "1", "--", "true"]);
    let took = t0.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(n3_pid, libc::SIGCONT) };
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("n3"), "error does not name n3: {err}");
    assert!(!err.contains("n1 ") && !err.contains("n2 "), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // A nemesis against a lab with an unreachable node fails naming it too.
    // SAFETY: as above.
    unsafe { libc::kill(n3_pid, libc::SIGSTOP) };
    let o = lab.run(&["nemesis", "start", "clock-bump", "--offset", "+1"]);
    // SAFETY: as above.
    unsafe { libc::kill(n3_pid, libc::SIGCONT) };
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("n3"),
        "{}",
        text(&o)
    );

    // Unknown host key: refused unless asked to accept new keys.
    std::fs::write(format!("{}/known_hosts", lab.dir), "").expect("truncate");
    let o = lab.run(&["exec", "--nodes", "n1", "--", "true"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--accept-new-host-keys"));
    lab.run_ok(&["exec", "--accept-new-host-keys", "--", "true"]);
    lab.run_ok(&["exec", "--", "true"]);
    let kh = std::fs::read_to_string(format!("{}/known_hosts", lab.dir)).expect("kh");
    assert_eq!(kh.lines().count(), 5, "{kh}");

    // Teardown leaves nothing behind.
    let pids = lab.pids();
    let t0 = Instant::now();
    lab.run_ok(&["lab", "down", "--bridge", &lab.bridge]);
    println!("lab down took {:.2} s", t0.elapsed().as_secs_f64());
    lab.assert_gone(&pids);
    let o = lab.run(&["lab", "status"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    assert_eq!(faultline(&["--help"]).status.code(), Some(0));
    assert_eq!(faultline(&["--version"]).status.code(), Some(0));
    assert_eq!(faultline(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(faultline(&[]).status.code(), Some(64));
    let o = faultline(&[
        "lab",
        "up",
        "--subnet",
        "192.168.1.0/24",
        "--dir",
        "/srv/faultline-test-none",
    ]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let o = faultline(&["exec", "--dir", "/srv/faultline-test-none", "--", "true"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("faultline: "));

    // A non-root user gets one clear message before anything is created.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let o = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                common::BIN,
            ])
            .args(["lab", "up", "--dir", "/srv/faultline-test-nonroot"])
            .output()
            .expect("setpriv");
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("needs root"),
            "{}",
            text(&o)
        );
        assert!(!std::path::Path::new("/srv/faultline-test-nonroot").exists());
    }
}
