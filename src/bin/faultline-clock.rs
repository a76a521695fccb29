//! `faultline-clock`: the clock helper faultline uploads to nodes outside
//! the lab (VMs, machines) to make clock faults with the node's real
//! CLOCK_REALTIME. Only std and libc, so it runs on a node without a
//! compiler or network access.
//!
//! It records the total offset it has applied in a state file, so `reset`
//! undoes exactly that (no NTP needed), even after `strobe` was killed
//! half-way: each clock step and its record happen with SIGTERM, SIGINT and
//! SIGHUP blocked, so a signal lands between steps, never inside one.
//!
//! ```text
//! faultline-clock offset MS                 make the applied offset MS
//! faultline-clock strobe DELTA_MS PERIOD_MS DURATION_MS
//!                                           alternate DELTA_MS and 0
//! faultline-clock reset                     undo the applied offset
//! faultline-clock show                      print the applied offset
//! options: --state FILE (default /opt/faultline/clock-offset-ms)
//!          --dry-run    print what would be set; the clock is untouched
//!                       (the state file is still written)
//! ```
//!
//! Never run it without `--dry-run` on a machine whose clock you need:
//! lab nodes share the host's kernel, and so its clock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const DEFAULT_STATE: &str = "/opt/faultline/clock-offset-ms";
const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;

/// `(seconds, nanoseconds)` of a timespec plus `ms`, normalized so that
/// `0 <= ns < 1e9` (negative offsets borrow from the seconds).
fn add_ms(sec: i64, nsec: i64, ms: i64) -> (i64, i64) {
    let total = sec as i128 * NS_PER_S as i128 + nsec as i128 + ms as i128 * NS_PER_MS as i128;
    (
        total.div_euclid(NS_PER_S as i128) as i64,
        total.rem_euclid(NS_PER_S as i128) as i64,
    )
}

/// The strobe as `(at_ms, offset_ms)` steps from its start: `delta` at 0,
/// back to 0 after `period`, and so on while `at < duration`; the last step
/// always returns to 0.
fn strobe_schedule(delta: i64, period: u64, duration: u64) -> Vec<(u64, i64)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut high = true;
    while at < duration {
        out.push((at, if high { delta } else { 0 }));
        high = !high;
        at += period.max(1);
    }
    if out.last().is_some_and(|(_, o)| *o != 0) {
        out.push((at.min(duration.max(period)), 0));
    }
    out
}

struct Helper {
    state: PathBuf,
    dry_run: bool,
}

fn read_state(p: &Path) -> Result<i64, String> {
    match std::fs::read_to_string(p) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{}: not a number of ms: {:?}", p.display(), s.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("reading {}: {e}", p.display())),
    }
}

fn write_state(p: &Path, ms: i64) -> Result<(), String> {
    if ms == 0 {
        return match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("removing {}: {e}", p.display()))
            }
            _ => Ok(()),
        };
    }
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, format!("{ms}\n"))
        .and_then(|()| std::fs::rename(&tmp, p))
        .map_err(|e| format!("writing {}: {e}", p.display()))
}

fn now() -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

/// Blocks (or unblocks) the signals that would stop us between a clock step
/// and its record.
fn block_signals(block: bool) {
    // SAFETY: plain sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        let how = if block {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

impl Helper {
    /// Makes the applied offset `target` ms: steps the clock by the
    /// difference and records it, as one step signals cannot split.
    fn set_offset(&self, target: i64) -> Result<(), String> {
        block_signals(true);
        let r = self.set_offset_blocked(target);
        block_signals(false);
        r
    }

    fn set_offset_blocked(&self, target: i64) -> Result<(), String> {
        let applied = read_state(&self.state)?;
        let step = target - applied;
        let (s, ns) = now();
        let (s2, ns2) = add_ms(s, ns, step);
        let mut out = std::io::stdout().lock();
        let verb = if self.dry_run {
            "would step"
        } else {
            "stepped"
        };
        let _ = writeln!(
            out,
            "{verb} CLOCK_REALTIME by {step:+} ms ({s}.{ns:09} -> {s2}.{ns2:09}); \
             applied offset {applied:+} -> {target:+} ms"
        );
        if step != 0 && !self.dry_run {
            let ts = libc::timespec {
                tv_sec: s2,
                tv_nsec: ns2,
            };
            // SAFETY: ts is a valid timespec; the kernel checks permission.
            if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
                return Err(format!(
                    "clock_settime: {} (needs root or CAP_SYS_TIME)",
                    std::io::Error::last_os_error()
                ));
            }
        }
        write_state(&self.state, target)
    }

    fn strobe(&self, delta: i64, period: u64, duration: u64) -> Result<(), String> {
        let t0 = Instant::now();
        for (at, offset) in strobe_schedule(delta, period, duration) {
            if !self.dry_run {
                let due = t0 + Duration::from_millis(at);
                // Instant is monotonic: stepping the wall clock does not
                // disturb the schedule.
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            } else {
                print!("at {at} ms: ");
            }
            self.set_offset(offset)?;
        }
        Ok(())
    }
}

fn usage() -> String {
    "usage: faultline-clock [--dry-run] [--state FILE] \
     (offset MS | strobe DELTA_MS PERIOD_MS DURATION_MS | reset | show)"
        .into()
}

fn num<T: std::str::FromStr>(s: Option<&String>, what: &str) -> Result<T, String> {
    let s = s.ok_or_else(|| format!("missing {what}\n{}", usage()))?;
    s.parse()
        .map_err(|_| format!("bad {what} {s:?}\n{}", usage()))
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut h = Helper {
        state: PathBuf::from(DEFAULT_STATE),
        dry_run: false,
    };
    let mut words = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dry-run" => h.dry_run = true,
            "--state" => h.state = PathBuf::from(it.next().ok_or_else(usage)?),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            _ => words.push(a),
        }
    }
    match words.first().map(String::as_str) {
        Some("offset") => {
            let ms: i64 = num(words.get(1), "MS")?;
            h.set_offset(ms)
        }
        Some("strobe") => {
            let delta: i64 = num(words.get(1), "DELTA_MS")?;
            let period: u64 = num(words.get(2), "PERIOD_MS")?;
            let duration: u64 = num(words.get(3), "DURATION_MS")?;
            if period < 10 {
                return Err("PERIOD_MS must be at least 10".into());
            }
            h.strobe(delta, period, duration)
        }
        Some("reset") => h.set_offset(0),
        Some("show") => {
            println!("{}", read_state(&h.state)?);
            Ok(())
        }
        _ => Err(usage()),
    }
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-clock: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_ms_normalizes() {
        assert_eq!(add_ms(100, 500_000_000, 250), (100, 750_000_000));
        assert_eq!(add_ms(100, 900_000_000, 250), (101, 150_000_000));
        assert_eq!(add_ms(100, 100_000_000, -250), (99, 850_000_000));
        assert_eq!(add_ms(100, 0, -120_000), (-20, 0));
        assert_eq!(add_ms(1_700_000_000, 1, -1), (1_699_999_999, 999_000_001));
        // Minutes both ways round-trip.
        let (s, ns) = add_ms(1_700_000_000, 123_456_789, 90_000);
        assert_eq!(add_ms(s, ns, -90_000), (1_700_000_000, 123_456_789));
    }

    #[test]
    fn strobe_alternates_and_ends_at_zero() {
        assert_eq!(
            strobe_schedule(500, 100, 350),
            vec![(0, 500), (100, 0), (200, 500), (300, 0)]
        );
        assert_eq!(
            strobe_schedule(-5000, 200, 1000),
            vec![
                (0, -5000),
                (200, 0),
                (400, -5000),
                (600, 0),
                (800, -5000),
                (1000, 0)
            ]
        );
        assert_eq!(strobe_schedule(5, 100, 0), vec![]);
        for (d, p, t) in [(7, 10, 95), (1, 33, 1000), (-3, 500, 499)] {
            let s = strobe_schedule(d, p, t);
            assert_eq!(s.last().map(|x| x.1), Some(0), "{d} {p} {t}");
            // The net applied offset at the end is zero: reset has nothing
            // left to undo after a complete strobe.
        }
    }

    #[test]
    fn offsets_accumulate_and_reset_undoes_them_dry_run() {
        let dir = std::env::temp_dir().join(format!("fl-clock-{}", std::process::id()));
        let state = dir.join("offset");
        let h = Helper {
            state: state.clone(),
            dry_run: true,
        };
        h.set_offset(5000).unwrap();
        assert_eq!(read_state(&state).unwrap(), 5000);
        h.set_offset(-2000).unwrap();
        assert_eq!(read_state(&state).unwrap(), -2000);
        h.strobe(300, 10, 35).unwrap();
        assert_eq!(read_state(&state).unwrap(), 0, "strobe ends at 0");
        h.set_offset(-120_000).unwrap();
        h.set_offset(0).unwrap();
        assert!(!state.exists(), "reset removes the record");
        std::fs::write(&state, "junk").unwrap();
        assert!(h.set_offset(1).unwrap_err().contains("not a number"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
