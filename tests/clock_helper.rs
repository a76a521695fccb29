//! The clock helper shipped for nodes outside the lab, run for real but
//! only with `--dry-run`: this machine's clock is shared by every lab node
//! and by the other tests, so it is never set here. (The clock_settime path
//! itself was not run against a real clock on this machine.)

use std::process::Command;

const HELPER: &str = env!("CARGO_BIN_EXE_faultline-clock");

fn helper(state: &str, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(HELPER)
        .args(["--dry-run", "--state", state])
        .args(args)
        .output()
        .expect("running faultline-clock");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The `+N ms` step of each "would step" line.
fn steps(out: &str) -> Vec<i64> {
    out.lines()
        .filter_map(|l| l.split("by ").nth(1))
        .filter_map(|r| r.split(" ms").next())
        .map(|n| n.parse().expect("step"))
        .collect()
}

#[test]
fn dry_run_bump_strobe_reset_record_and_undo_the_offset() {
    let dir = std::env::temp_dir().join(format!("fl-clock-helper-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let state = dir.join("offset").display().to_string();

    let (code, out, err) = helper(&state, &["offset", "5250"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("would step CLOCK_REALTIME by +5250 ms"),
        "{out}"
    );
    // The target time printed is the current time plus the step.
    let times: Vec<f64> = out
        .split(['(', ')'])
        .nth(1)
        .expect("times")
        .split(" -> ")
        .map(|t| t.parse().expect("time"))
        .collect();
    assert!((times[1] - times[0] - 5.25).abs() < 1e-6, "{out}");
    assert_eq!(
        std::fs::read_to_string(&state).expect("state").trim(),
        "5250"
    );

    // A second bump steps by the difference: the offset is a total.
    let (_, out, _) = helper(&state, &["offset", "-120000"]);
    assert_eq!(steps(&out), vec![-125_250]);

    // Reset undoes exactly what was applied, then forgets it.
    let (_, out, _) = helper(&state, &["reset"]);
    assert_eq!(steps(&out), vec![120_000]);
    assert!(!std::path::Path::new(&state).exists());
    let (_, out, _) = helper(&state, &["reset"]);
    assert_eq!(steps(&out), vec![0], "nothing left to undo");

    // A strobe alternates delta and 0 and ends at 0.
    let (code, out, err) = helper(&state, &["strobe", "-800", "200", "1000"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(steps(&out), vec![-800, 800, -800, 800, -800, 800], "{out}");
    assert!(
        out.lines().last().unwrap_or("").starts_with("at 1000 ms"),
        "{out}"
    );
    let (_, out, _) = helper(&state, &["show"]);
    assert_eq!(out.trim(), "0");

    // Bad input: one clear line, exit 1, no panic.
    for bad in [&["offset", "5s"][..], &["strobe", "1", "2", "3"], &["warp"]] {
        let (code, _, err) = helper(&state, bad);
        assert_eq!(code, 1, "{bad:?}");
        assert!(err.starts_with("faultline-clock: "), "{err}");
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
