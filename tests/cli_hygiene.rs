//! The binary as a pipeline stage (issue #16, "Checker truth"): a closed
//! stdout, histories on stdin, and exit codes that stay the verdict's when
//! something beside the verdict fails. Each test drives the built binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `faultline ARGS` with a stdout whose reader is already gone, as
/// `faultline … | head -c 10` leaves it once `head` has its bytes: every
/// write fails with a broken pipe, whatever the timing.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = faultline()
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run faultline");
    child.wait_with_output().expect("wait")
}

/// Runs `faultline ARGS` with `input` on stdin.
fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = faultline()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run faultline");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from a thread: a history larger than the pipe's buffer must
    // not deadlock against the child's output.
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder").expect("write stdin");
    out
}

fn assert_quiet(o: &Output, what: &str) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(!err.contains("Broken pipe"), "{what}: {err}");
}

#[test]
fn closed_stdout_exits_with_the_verdict_and_no_panic() {
    let bad = data("register-bad.jsonl");
    let ok = data("register-ok.jsonl");
    let (bad, ok) = (bad.to_str().unwrap(), ok.to_str().unwrap());
    for (args, want) in [
        (vec!["check", "--json", bad], 1),
        (vec!["check", bad], 1),
        (vec!["check", "--json", ok], 0),
        (vec!["check", ok], 0),
        // The worst verdict still counts every file after stdout closed.
        (vec!["check", "--json", ok, bad, ok], 1),
    ] {
        let o = with_closed_stdout(&args);
        assert_eq!(code(&o), want, "{args:?}: {}", stderr(&o));
        assert_quiet(&o, &format!("{args:?}"));
    }
}

#[test]
fn closed_stdout_is_quiet_in_other_commands() {
    for args in [
        vec!["targets"],
        vec!["targets", "--json"],
        vec!["ring", "--nodes", "3", "--vnodes", "4", "--keys", "1000"],
        vec!["--help"],
        vec!["test", "--help"],
    ] {
        let o = with_closed_stdout(&args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert_quiet(&o, &format!("{args:?}"));
    }
}

#[test]
fn dash_reads_the_history_from_stdin() {
    // One history per format, each detected from the stream's head.
    let etcd = b"INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
                 INFO  jepsen.util - 0\t:ok\t:write\t1\n\
                 INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                 INFO  jepsen.util - 1\t:ok\t:read\t2\n";
    let cases: [(&str, Vec<u8>, i32, &str); 6] = [
        (
            "jsonl ok",
            std::fs::read(data("register-ok.jsonl")).unwrap(),
            0,
            "valid",
        ),
        (
            "jsonl bad",
            std::fs::read(data("register-bad.jsonl")).unwrap(),
            1,
            "invalid",
        ),
        (
            "edn",
            std::fs::read(data("cas-register.edn")).unwrap(),
            0,
            "valid",
        ),
        ("porcupine etcd", etcd.to_vec(), 1, "invalid"),
        // The transactional fast path reads the stream too.
        (
            "list-append",
            std::fs::read(data("list-append-g1c.jsonl")).unwrap(),
            1,
            "G1c",
        ),
        (
            "bank",
            std::fs::read(data("bank-bad.jsonl")).unwrap(),
            1,
            "invalid",
        ),
    ];
    for (what, input, want, says) in cases {
        let o = with_stdin(&["check", "-"], &input);
        assert_eq!(code(&o), want, "{what}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains(says), "{what}: {}", stdout(&o));
        assert!(stdout(&o).starts_with("-: "), "{what}: {}", stdout(&o));
    }

    // --json names the file `-`; a file and stdin mix.
    let ok = data("register-ok.jsonl");
    let o = with_stdin(
        &["check", "--json", ok.to_str().unwrap(), "-"],
        &std::fs::read(data("register-bad.jsonl")).unwrap(),
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["file"], "-");
    assert_eq!(lines[1]["valid"], false);

    // Stdin can be read once only.
    let o = with_stdin(&["check", "-", "-"], b"");
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    assert!(stderr(&o).contains("twice"), "{}", stderr(&o));

    // Empty stdin is an empty history: valid only vacuously, and it says so
    // (issue #16 item 6: Knossos and Porcupine call it linearizable).
    let o = with_stdin(&["check", "-"], b"");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("no operation completed"), "{said}");
}

#[test]
fn dev_stdin_on_a_pipe_is_read_once() {
    for (name, want) in [("register-bad.jsonl", 1), ("list-append-g1c.jsonl", 1)] {
        let o = with_stdin(
            &["check", "/dev/stdin"],
            &std::fs::read(data(name)).unwrap(),
        );
        assert_eq!(code(&o), want, "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(
            !stdout(&o).contains("no client operations"),
            "{name}: {}",
            stdout(&o)
        );
    }
    // Named format, read through the same path.
    let o = with_stdin(
        &["check", "--format", "edn", "/dev/stdin"],
        &std::fs::read(data("cas-register.edn")).unwrap(),
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn a_report_that_cannot_be_written_keeps_the_verdict_exit_code() {
    let out = "/nonexistent-faultline-dir/x.html";
    for (name, want) in [("register-bad.jsonl", 1), ("register-ok.jsonl", 0)] {
        let file = data(name);
        let o = faultline()
            .args(["check", "--html", out, file.to_str().unwrap()])
            .output()
            .expect("run faultline");
        assert_eq!(code(&o), want, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(out), "{name}: {}", stderr(&o));
    }
    // A list-append anomaly has cycle figures to write.
    let file = data("list-append-g1c.jsonl");
    let o = faultline()
        .args(["check", "--json", "--html", out, file.to_str().unwrap()])
        .output()
        .expect("run faultline");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains(out), "{}", stderr(&o));
}

/// `faultline test --help` names every target and workload that
/// `faultline targets --json` lists (both from the same catalogue).
#[test]
fn test_help_names_every_target_and_workload() {
    let o = faultline()
        .args(["targets", "--json"])
        .output()
        .expect("run");
    assert_eq!(code(&o), 0);
    let cat: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let help = faultline().args(["test", "--help"]).output().expect("run");
    let help = stdout(&help);
    let words: std::collections::HashSet<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .collect();
    let targets = cat["targets"].as_array().unwrap();
    assert!(targets.len() >= 17);
    for t in targets {
        let name = t["name"].as_str().unwrap();
        assert!(words.contains(name), "target {name} not in help:\n{help}");
        for w in t["workloads"].as_array().unwrap() {
            let w = w.as_str().unwrap();
            assert!(words.contains(w), "workload {w} not in help:\n{help}");
        }
        for b in t["bugs"].as_array().unwrap() {
            let b = b["name"].as_str().unwrap();
            assert!(words.contains(b), "bug {b} of {name} not in help:\n{help}");
        }
    }
}
