//! Clock faults: libfaketime's per-node control file in the lab, the
//! clock helper (the real clock) outside it, and the offset specs both take.

use super::{FaultError, shell_quote, valid_name};

/// The per-node libfaketime control file (in the node's private /tmp).
pub const FAKETIME_FILE: &str = "/tmp/faultline-faketime.rc";

/// Pidfile of the background clock strobe loop on a node.
pub const STROBE_PIDFILE: &str = "/tmp/faultline-strobe.pid";

/// Where faultline installs its clock helper on nodes outside the lab.
pub const CLOCK_HELPER: &str = "/opt/faultline/faultline-clock";

/// Environment that puts a process under the lab's clock control. Monotonic
/// clocks stay real: faking them hangs tokio and breaks timeouts.
pub fn faketime_env(libfaketime: &str) -> String {
    format!(
        "LD_PRELOAD={libfaketime} FAKETIME_TIMESTAMP_FILE={FAKETIME_FILE} \
         FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1"
    )
}

pub(super) fn write_clock(spec: &str) -> String {
    // write-tmp + mv: libfaketime re-reads the file on every call and must
    // never see a half-written spec.
    format!(
        "printf '%s\\n' {q} > {FAKETIME_FILE}.tmp && mv -f {FAKETIME_FILE}.tmp {FAKETIME_FILE}",
        q = shell_quote(spec)
    )
}

pub(super) fn stop_strobe() -> String {
    format!(
        "if [ -f {STROBE_PIDFILE} ]; then kill $(cat {STROBE_PIDFILE}) 2>/dev/null; rm -f {STROBE_PIDFILE}; fi"
    )
}

/// Milliseconds of a libfaketime offset spec (`+5.250`, `-2m`, `+1d`),
/// rounded to the nearest millisecond; `None` when the spec is invalid.
pub fn offset_ms(s: &str) -> Option<i64> {
    if !valid_offset(s) {
        return None;
    }
    let neg = s.starts_with('-');
    let body = &s[1..];
    let (num, unit) = match body.strip_suffix(['s', 'm', 'h', 'd']) {
        Some(n) => (n, &body[n.len()..]),
        None => (body, "s"),
    };
    let scale: i128 = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 1_000,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    // Exact decimal arithmetic: value = int.frac * scale, in ms.
    let frac = &frac[..frac.len().min(9)];
    let int: i128 = int.parse().ok()?;
    let f: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let den = 10i128.pow(frac.len() as u32);
    let num = int * den + f;
    let ms = (num * scale * 2 + den) / (2 * den);
    let ms = i64::try_from(ms).ok()?;
    Some(if neg { -ms } else { ms })
}

/// A libfaketime offset spec: `[+-]N[.N][s|m|h|d]`.
pub(super) fn valid_offset(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(['+', '-']) else {
        return false;
    };
    let rest = rest.strip_suffix(['s', 'm', 'h', 'd']).unwrap_or(rest);
    let mut parts = rest.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn check_helper(helper: &Option<String>) -> Result<(), FaultError> {
    match helper {
        Some(h) if !valid_name(h) || !h.starts_with('/') => Err(FaultError::Invalid {
            what: "clock helper",
            value: h.clone(),
            hint: "an absolute path",
        }),
        _ => Ok(()),
    }
}

/// Resets the real clock through the helper, when a node has it.
pub(super) fn reset_helper_clock(helper: &str) -> String {
    format!("if [ -x {helper} ]; then {helper} reset; fi")
}
