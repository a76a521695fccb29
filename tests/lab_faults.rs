//! Clock, loss, bandwidth and process faults observed on real nodes, and the
//! heal guarantee: SIGINT/SIGTERM to `nemesis run` heals, and after a
//! SIGKILLed controller `nemesis heal --all` does.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{BIN, Lab, skip, text, wait_timeout};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// `date` under the lab's clock control (libfaketime, as a DB would run).
fn faked_date(lab: &Lab) -> String {
    let lib = lab.lab_json()["libfaketime"]
        .as_str()
        .expect("libfaketime")
        .to_string();
    assert!(!lib.is_empty(), "no libfaketime recorded");
    format!(
        "env LD_PRELOAD={lib} FAKETIME_TIMESTAMP_FILE=/tmp/faultline-faketime.rc \
         FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 date +%s.%N"
    )
}

/// A faked clock reading bracketed by real ones: (real before, faked, real
/// after). Spawning the faked process can take 100+ ms on a loaded box, so
/// the offset is only known to lie in [faked - after, faked - before].
#[derive(Debug, Clone, Copy)]
struct Sample(f64, f64, f64);

impl Sample {
    fn parse(s: &str) -> Option<Sample> {
        let v: Vec<f64> = s
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (v.len() == 3).then(|| Sample(v[0], v[1], v[2]))
    }

    /// Whether the offset at the faked reading was `want`, within 50 ms.
    fn is(&self, want: f64) -> bool {
        let Sample(before, faked, after) = *self;
        faked - after - 0.05 <= want && want <= faked - before + 0.05
    }
}

fn sample_cmd(lab: &Lab) -> String {
    format!(
        // A faked `date` has (rarely, on a loaded box) printed nothing; one
        // retry keeps the sample bracketed by the two real readings.
        "r=$(date +%s.%N); f=$({0} 2>/tmp/faked-date.err); [ -n \"$f\" ] || f=$({0} 2>>/tmp/faked-date.err); \
         echo $r $f $(date +%s.%N)",
        faked_date(lab)
    )
}

fn assert_offset(lab: &Lab, nodes: &str, want: f64) {
    for (n, out) in lab.exec_ok(nodes, &sample_cmd(lab)) {
        let s = Sample::parse(&out).unwrap_or_else(|| panic!("{n}: bad sample {out:?}"));
        assert!(s.is(want), "{n}: clock sample {s:?}, want offset {want}");
    }
}

/// Starts a background sampler on `node` writing `real faked` lines for
/// `secs` seconds into /tmp/samples.
fn start_sampler(lab: &Lab, node: &str, secs: u32) {
    let body = format!(
        "end=$(($(date +%s)+{secs})); while [ $(date +%s) -lt $end ]; do {}; sleep 0.01; done",
        sample_cmd(lab)
    );
    lab.exec_ok(
        node,
        &format!("setsid sh -c '{body}' </dev/null >/tmp/samples 2>&1 & true"),
    );
}

fn samples(lab: &Lab, node: &str) -> Vec<Sample> {
    lab.exec_ok(node, "cat /tmp/samples")[node]
        .lines()
        .filter_map(Sample::parse)
        .collect()
}

fn clock_faults(lab: &Lab) {
    assert_offset(lab, "", 0.0);

    // Bump, then reset, seen by a sampler running throughout: every sample
    // taken 100 ms after a change shows the new offset.
    // Long enough to cover the bump, the reset and 3 s after it even when
    // the machine is loaded and `heal --all` is slow.
    start_sampler(lab, "n1", 8);
    std::thread::sleep(Duration::from_millis(500));
    let b0 = now();
    lab.run_ok(&[
        "nemesis",
        "start",
        "clock-bump",
        "--offset",
        "+5.250",
        "--nodes",
        "n1",
    ]);
    let b1 = now();
    std::thread::sleep(Duration::from_millis(1200));
    let r0 = now();
    lab.run_ok(&["nemesis", "heal", "--all"]);
    let r1 = now();
    std::thread::sleep(Duration::from_millis(3000));
    let s = samples(lab, "n1");
    let (mut before, mut during, mut after) = (0, 0, 0);
    for x in &s {
        let Sample(start, _, end) = *x;
        if end < b0 {
            assert!(x.is(0.0), "before bump: {x:?}");
            before += 1;
        } else if start > b1 + 0.1 && end < r0 {
            assert!(x.is(5.25), "100 ms after the bump: {x:?}");
            during += 1;
        } else if start > r1 + 0.1 {
            assert!(x.is(0.0), "100 ms after the reset: {x:?}");
            after += 1;
        }
    }
    assert!(
        before > 3 && during > 5 && after > 3,
        "few samples: {before}/{during}/{after}"
    );

    // Other nodes are untouched by a bump of n1.
    lab.run_ok(&[
        "nemesis",
        "start",
        "clock-bump",
        "--offset",
        "-2m",
        "--nodes",
        "n1",
    ]);
    assert_offset(lab, "n1", -120.0);
    assert_offset(lab, "n2,n3", 0.0);
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_offset(lab, "", 0.0);

    // Strobe: the sampler sees offsets flip between +0 and +5.
    start_sampler(lab, "n2", 3);
    lab.run_ok(&[
        "nemesis",
        "start",
        "clock-strobe",
        "--delta",
        "+5",
        "--period-ms",
        "200",
        "--strobe-secs",
        "2",
        "--nodes",
        "n2",
    ]);
    std::thread::sleep(Duration::from_millis(3500));
    let s = samples(lab, "n2");
    let mut flips = 0;
    let mut last = None;
    for x in &s {
        let high = x.is(5.0);
        assert!(high || x.is(0.0), "strobe sample {x:?}");
        if last.is_some_and(|l| l != high) {
            flips += 1;
        }
        last = Some(high);
    }
    assert!(
        flips >= 4,
        "strobe flipped {flips} times over {} samples",
        s.len()
    );
    assert_offset(lab, "n2", 0.0); // the strobe ends at +0
    lab.run_ok(&["nemesis", "heal", "--all"]);
    let left = lab.exec("n2", "test -e /tmp/faultline-strobe.pid");
    assert_ne!(left["n2"].0, 0, "strobe pidfile left");
}

fn loss_fault(lab: &Lab) {
    let ping = format!("ping -q -c 400 -i 0.005 -W 1 {} || true", lab.addr(1));
    let loss = |lab: &Lab| -> f64 {
        let out = &lab.exec_ok("n2", &ping)["n2"];
        let pct = out
            .split(',')
            .find(|p| p.contains("packet loss"))
            .and_then(|p| p.trim().split('%').next())
            .and_then(|p| p.parse().ok());
        pct.unwrap_or_else(|| panic!("no loss in ping output: {out}"))
    };
    assert_eq!(loss(lab), 0.0);
    lab.run_ok(&[
        "nemesis",
        "start",
        "loss",
        "--probability",
        "0.5",
        "--nodes",
        "n1",
    ]);
    let l = loss(lab);
    println!("measured loss at p=0.5: {l}%");
    assert!((40.0..=60.0).contains(&l), "loss {l}%");
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_eq!(loss(lab), 0.0);
}

/// Seconds the receiver n2 needs to get 1 MB from n1.
fn transfer_secs(lab: &Lab) -> f64 {
    lab.exec_ok(
        "n2",
        "rm -f /tmp/bw; setsid sh -c 's=$(date +%s.%N); nc -l 7100 >/dev/null; \
         echo $s $(date +%s.%N) > /tmp/bw' </dev/null >/dev/null 2>&1 & sleep 0.2",
    );
    lab.exec_ok(
        "n1",
        &format!(
            "head -c 1000000 /dev/zero | nc -N -w 10 {} 7100",
            lab.addr(2)
        ),
    );
    let t0 = Instant::now();
    loop {
        let r = lab.exec("n2", "cat /tmp/bw");
        if r["n2"].0 == 0 && !r["n2"].1.trim().is_empty() {
            let v: Vec<f64> = r["n2"]
                .1
                .split_whitespace()
                .map(|x| x.parse().expect("num"))
                .collect();
            return v[1] - v[0];
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "transfer never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bandwidth_fault(lab: &Lab) {
    lab.run_ok(&[
        "nemesis",
        "start",
        "bandwidth",
        "--rate",
        "4mbit",
        "--nodes",
        "n1",
    ]);
    let slow = transfer_secs(lab);
    lab.run_ok(&["nemesis", "heal", "--all"]);
    let fast = transfer_secs(lab);
    println!("1 MB at 4mbit: {slow:.2} s; unshaped: {fast:.2} s");
    assert!(
        slow > 1.2,
        "shaped transfer took {slow:.2} s (expected about 2 s)"
    );
    assert!(fast < 1.0, "unshaped transfer took {fast:.2} s");
}

/// Average ping RTT in ms from `from` to node index `to`.
fn rtt(lab: &Lab, from: &str, to: usize) -> f64 {
    let out = &lab.exec_ok(
        from,
        &format!("ping -q -c 10 -i 0.05 {} | tail -1", lab.addr(to)),
    )[from];
    // rtt min/avg/max/mdev = 100.249/100.367/100.699/0.167 ms
    out.split('=')
        .nth(1)
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rtt in {out:?}"))
}

fn latency_fault(lab: &Lab) {
    lab.run_ok(&[
        "nemesis",
        "start",
        "latency",
        "--delay-ms",
        "100",
        "--nodes",
        "n1",
    ]);
    let slow = rtt(lab, "n1", 2);
    let back = rtt(lab, "n2", 1); // replies leave through n1's OUTPUT too
    let other = rtt(lab, "n2", 3);
    lab.run_ok(&["nemesis", "heal", "--all"]);
    let healed = rtt(lab, "n1", 2);
    println!(
        "latency 100 ms: n1->n2 {slow:.1} ms, n2->n1 {back:.1}, n2->n3 {other:.1}, healed {healed:.1}"
    );
    // The bound: the delay adds 100 ms ± 10 ms to a round trip.
    assert!((90.0..=110.0).contains(&slow), "n1->n2 rtt {slow}");
    assert!((90.0..=110.0).contains(&back), "n2->n1 rtt {back}");
    assert!(other < 50.0, "n2->n3 rtt {other}");
    assert!(healed < 50.0, "healed rtt {healed}");
    // The delayer is gone.
    lab.assert_no_process("n1", "faultline");
}

const SLEEPER: &str = "cp /bin/sleep /tmp/flsleeper; setsid /tmp/flsleeper 100000 </dev/null >/dev/null 2>&1 & echo $! > /tmp/flsleeper.pid";

fn sleeper_state(lab: &Lab, nodes: &str) -> Vec<String> {
    lab.exec(nodes, "ps -o stat= -C flsleeper || echo gone")
        .into_values()
        .map(|(_, s)| {
            s.trim()
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default()
        })
        .collect()
}

fn process_faults(lab: &Lab) {
    lab.exec_ok("n2,n3", SLEEPER);
    let out = lab.run_ok(&[
        "nemesis",
        "start",
        "pause",
        "--process",
        "flsleeper",
        "--nodes",
        "n2,n3",
    ]);
    // The event records the pids that were stopped.
    let ev: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("event")).expect("json");
    let pid = lab.exec_ok("n2", "cat /tmp/flsleeper.pid")["n2"]
        .trim()
        .to_string();
    assert_eq!(
        ev["value"]["nodes"]["n2"]["stdout"].as_str(),
        Some(pid.as_str()),
        "{ev}"
    );
    assert_eq!(sleeper_state(lab, "n2,n3"), ["T", "T"]);
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_eq!(sleeper_state(lab, "n2,n3"), ["S", "S"]);

    lab.run_ok(&[
        "nemesis",
        "start",
        "kill",
        "--pidfile",
        "/tmp/flsleeper.pid",
        "--nodes",
        "n2",
    ]);
    assert_eq!(sleeper_state(lab, "n2,n3"), ["g", "S"]); // "gone" on n2
    lab.run_ok(&["nemesis", "heal", "--all"]);
    lab.exec_ok("n3", "pkill -x flsleeper; true");
}

/// Spawns `nemesis run` and waits until it reports `starts` started faults.
fn spawn_run(
    lab: &Lab,
    faults: &[&str],
    starts: usize,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut args = vec!["nemesis", "run", "--dir", &lab.dir];
    for f in faults {
        args.extend(["--fault", f]);
    }
    let mut child = Command::new(BIN)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn nemesis run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = 0;
    while seen < starts {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("nemesis run: only {seen} of {starts} faults started"));
        if line.contains("\"f\":\"start-") {
            assert!(!line.contains("\"error\""), "{line}");
            seen += 1;
        }
    }
    (child, rx)
}

fn assert_partitioned(lab: &Lab, yes: bool) {
    for (n, c) in lab.exec_ok("", "iptables -S | grep -c 'FAULTLINE-PART.*DROP' || true") {
        assert_eq!(c.trim() != "0", yes, "{n}: partition rules present = {c}");
    }
}

fn assert_no_active(lab: &Lab) {
    let st = lab.run_ok(&["nemesis", "status"]);
    let v: serde_json::Value = serde_json::from_str(&st).expect("status json");
    assert_eq!(v["faults"].as_array().map(Vec::len), Some(0), "{st}");
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: signals our own child process by pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn heal_guarantee(lab: &Lab) {
    lab.exec_ok("", SLEEPER);
    let faults = [
        "partition --grudge isolate:n1",
        "pause --process flsleeper",
        "clock-bump --offset +5",
    ];

    // SIGINT during a partition, a pause and a clock bump heals all three.
    let (mut child, rx) = spawn_run(lab, &faults, 3);
    assert_partitioned(lab, true);
    assert!(sleeper_state(lab, "").iter().all(|s| s == "T"));
    assert_offset(lab, "", 5.0);
    signal(&child, libc::SIGINT);
    let st = wait_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(st.code(), Some(130), "nemesis run after SIGINT: {st:?}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        rest.iter().filter(|l| l.contains("\"f\":\"stop-")).count(),
        3,
        "{rest:?}"
    );
    assert_partitioned(lab, false);
    assert!(sleeper_state(lab, "").iter().all(|s| s == "S"));
    assert_offset(lab, "", 0.0);
    assert_no_active(lab);

    // SIGTERM too.
    let (mut child, _rx) = spawn_run(lab, &faults[..1], 1);
    signal(&child, libc::SIGTERM);
    let st = wait_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(st.code(), Some(130), "nemesis run after SIGTERM: {st:?}");
    assert_partitioned(lab, false);

    // A controller killed outright cannot heal, but the state file it wrote
    // lets `nemesis heal --all` do it.
    let (mut child, _rx) = spawn_run(lab, &faults, 3);
    signal(&child, libc::SIGKILL);
    wait_timeout(&mut child, Duration::from_secs(10));
    assert_partitioned(lab, true);
    assert!(sleeper_state(lab, "").iter().all(|s| s == "T"));
    let out = lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_eq!(
        out.lines().filter(|l| l.contains("\"f\":\"stop-")).count(),
        3,
        "{out}"
    );
    assert_partitioned(lab, false);
    assert!(sleeper_state(lab, "").iter().all(|s| s == "S"));
    assert_offset(lab, "", 0.0);
    assert_no_active(lab);

    // A fault that fails to start on one node: the run heals what it had
    // started, and the error names the node. (A directory where the clock
    // file's temp copy goes makes the write fail on n2.)
    lab.exec_ok("n2", "mkdir /tmp/faultline-faketime.rc.tmp");
    let o = lab.run(&[
        "nemesis",
        "run",
        "--duration",
        "30",
        "--fault",
        "partition --grudge isolate:n1",
        "--fault",
        "clock-bump --offset +1 --nodes n2",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("n2: exit"), "{err}");
    assert_partitioned(lab, false);
    // The clock fault could not be healed either, so it stays recorded
    // until a heal succeeds.
    let st = lab.run_ok(&["nemesis", "status"]);
    assert!(st.contains("clock-bump"), "{st}");
    lab.exec_ok("n2", "rmdir /tmp/faultline-faketime.rc.tmp");
    lab.run_ok(&["nemesis", "heal", "--all"]);
    assert_no_active(lab);
    lab.exec_ok("", "pkill -x flsleeper; true");
}

#[test]
fn clock_loss_bandwidth_process_faults_and_heal_guarantee() {
    if skip() {
        return;
    }
    let lab = Lab::up("faults", 3, 5);
    clock_faults(&lab);
    loss_fault(&lab);
    bandwidth_fault(&lab);
    latency_fault(&lab);
    process_faults(&lab);
    heal_guarantee(&lab);
    // A bad fault spec is a usage error, before any node is touched.
    let o = lab.run(&["nemesis", "run", "--fault", "partition --grudge isolate:n9"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert_no_active(&lab);
}
