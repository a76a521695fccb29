//! The fault catalog: each [`Fault`] is a value that knows the shell command
//! to run on each node to start it and to heal it.
//!
//! Network rules live in dedicated iptables chains hooked into INPUT, so one
//! fault's heal does not flush another's rules, and the first rule of each
//! chain returns for the controller: a fault never cuts the harness off.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::grudge::Grudge;

/// Node name → address the other nodes see it at.
pub type NodeAddrs = BTreeMap<String, String>;

/// The per-node libfaketime control file (in the node's private /tmp).
pub const FAKETIME_FILE: &str = "/tmp/faultline-faketime.rc";
/// Pidfile of the background clock strobe loop on a node.
pub const STROBE_PIDFILE: &str = "/tmp/faultline-strobe.pid";
/// iptables chain holding partition rules.
pub const PARTITION_CHAIN: &str = "FAULTLINE-PART";
/// iptables chain holding packet-loss rules.
pub const LOSS_CHAIN: &str = "FAULTLINE-LOSS";
/// iptables chain (in OUTPUT) sending packets to the NFQUEUE delayer.
pub const DELAY_CHAIN: &str = "FAULTLINE-DELAY";
/// Pidfile of the NFQUEUE delayer on a node.
pub const DELAYER_PIDFILE: &str = "/tmp/faultline-delayer.pid";
/// The netfilter queue number the delayer binds.
pub const DELAY_QUEUE: u16 = 0;

/// Environment that puts a process under the lab's clock control. Monotonic
/// clocks stay real: faking them hangs tokio and breaks timeouts.
pub fn faketime_env(libfaketime: &str) -> String {
    format!(
        "LD_PRELOAD={libfaketime} FAKETIME_TIMESTAMP_FILE={FAKETIME_FILE} \
         FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1"
    )
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultError {
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("refusing to drop the controller address {0} (the harness would lose its nodes)")]
    DropsController(String),
    #[error("invalid {what}: {value:?} ({hint})")]
    Invalid {
        what: &'static str,
        value: String,
        hint: &'static str,
    },
}

/// Which process a kill/pause hits, as seen inside the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcTarget {
    /// Exact process name (`pgrep -x`).
    Name(String),
    /// A file holding the pid.
    Pidfile(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Each node drops INPUT from the nodes it holds a grudge against;
    /// `one_way` drops only new connections (conntrack NEW).
    Partition { grudge: Grudge, one_way: bool },
    /// Each listed node drops incoming packets with this probability.
    Loss {
        nodes: Vec<String>,
        probability: f64,
    },
    /// tbf rate limit on the node's interface.
    Bandwidth {
        nodes: Vec<String>,
        rate: String,
        dev: String,
    },
    /// SIGKILL; healing does nothing (restarting is the target's job).
    Kill {
        nodes: Vec<String>,
        target: ProcTarget,
    },
    /// SIGSTOP, healed by SIGCONT.
    Pause {
        nodes: Vec<String>,
        target: ProcTarget,
    },
    /// Set the node's fake clock offset (libfaketime spec like `+5.250`).
    ClockBump { nodes: Vec<String>, offset: String },
    /// Alternate offsets `+0` and `delta` every `period_ms` for `duration_s`.
    ClockStrobe {
        nodes: Vec<String>,
        delta: String,
        period_ms: u64,
        duration_s: u64,
    },
    /// Every packet a node sends (except to the controller) waits `delay_ms`
    /// in an NFQUEUE delayer: `binary nemesis delayer`, run on the node.
    /// (netem would do this, but kernels without it exist.)
    Latency {
        nodes: Vec<String>,
        delay_ms: u64,
        binary: String,
    },
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn write_clock(spec: &str) -> String {
    // write-tmp + mv: libfaketime re-reads the file on every call and must
    // never see a half-written spec.
    format!(
        "printf '%s\\n' {q} > {FAKETIME_FILE}.tmp && mv -f {FAKETIME_FILE}.tmp {FAKETIME_FILE}",
        q = shell_quote(spec)
    )
}

fn stop_strobe() -> String {
    format!(
        "if [ -f {STROBE_PIDFILE} ]; then kill $(cat {STROBE_PIDFILE}) 2>/dev/null; rm -f {STROBE_PIDFILE}; fi"
    )
}

fn remove_chain(chain: &str, hook: &str) -> String {
    format!(
        "while iptables -D {hook} -j {chain} 2>/dev/null; do :; done; \
         iptables -F {chain} 2>/dev/null; iptables -X {chain} 2>/dev/null; true"
    )
}

/// A fresh chain hooked first into INPUT whose first rule exempts the controller.
fn new_chain(chain: &str, controller: &str) -> String {
    format!(
        "{}; iptables -N {chain} && iptables -A {chain} -s {controller} -j RETURN && \
         iptables -I INPUT 1 -j {chain}",
        remove_chain(chain, "INPUT")
    )
}

fn stop_delayer() -> String {
    format!(
        "{}; if [ -f {DELAYER_PIDFILE} ]; then kill $(cat {DELAYER_PIDFILE}) 2>/dev/null; rm -f {DELAYER_PIDFILE}; fi",
        remove_chain(DELAY_CHAIN, "OUTPUT")
    )
}

fn signal_cmd(sig: &str, target: &ProcTarget) -> String {
    let pids = match target {
        ProcTarget::Name(n) => format!("pgrep -x {}", shell_quote(n)),
        ProcTarget::Pidfile(f) => format!("cat {} 2>/dev/null", shell_quote(f)),
    };
    // Prints the pids it signalled, so the history records what was done.
    format!("p=$({pids} | tr '\\n' ' '); if [ -n \"$p\" ]; then kill -{sig} $p; fi; echo \"$p\"")
}

/// A libfaketime offset spec: `[+-]N[.N][s|m|h|d]`.
fn valid_offset(s: &str) -> bool {
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

fn valid_rate(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && matches!(
            &s[digits..],
            "bit" | "kbit" | "mbit" | "gbit" | "bps" | "kbps" | "mbps"
        )
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

impl Fault {
    /// Short name used in history events: `start-<name>` / `stop-<name>`.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Loss { .. } => "loss",
            Fault::Bandwidth { .. } => "bandwidth",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::ClockBump { .. } => "clock-bump",
            Fault::ClockStrobe { .. } => "clock-strobe",
            Fault::Latency { .. } => "latency",
        }
    }

    /// Nodes this fault touches.
    pub fn nodes(&self) -> BTreeSet<String> {
        match self {
            Fault::Partition { grudge, .. } => grudge
                .iter()
                .flat_map(|(a, bs)| std::iter::once(a).chain(bs))
                .cloned()
                .collect(),
            Fault::Loss { nodes, .. }
            | Fault::Bandwidth { nodes, .. }
            | Fault::Kill { nodes, .. }
            | Fault::Pause { nodes, .. }
            | Fault::ClockBump { nodes, .. }
            | Fault::ClockStrobe { nodes, .. }
            | Fault::Latency { nodes, .. } => nodes.iter().cloned().collect(),
        }
    }

    /// Checks node names and parameters, so nothing unchecked reaches a shell.
    pub fn validate(&self, addrs: &NodeAddrs, controller: &str) -> Result<(), FaultError> {
        for n in self.nodes() {
            if !addrs.contains_key(&n) {
                return Err(FaultError::UnknownNode(n));
            }
        }
        let invalid = |what, value: &str, hint| FaultError::Invalid {
            what,
            value: value.to_string(),
            hint,
        };
        match self {
            Fault::Partition { grudge, .. } => {
                for b in grudge.values().flatten() {
                    if addrs.get(b).map(String::as_str) == Some(controller) {
                        return Err(FaultError::DropsController(controller.to_string()));
                    }
                }
            }
            Fault::Loss { probability, .. } => {
                if !(*probability > 0.0 && *probability <= 1.0) {
                    return Err(invalid(
                        "probability",
                        &probability.to_string(),
                        "0 < p <= 1",
                    ));
                }
            }
            Fault::Bandwidth { rate, dev, .. } => {
                if !valid_rate(rate) {
                    return Err(invalid("rate", rate, "like 1mbit or 500kbit"));
                }
                if !valid_name(dev) {
                    return Err(invalid("device", dev, "an interface name"));
                }
            }
            Fault::Kill { target, .. } | Fault::Pause { target, .. } => {
                let (ProcTarget::Name(s) | ProcTarget::Pidfile(s)) = target;
                if !valid_name(s) {
                    return Err(invalid("process", s, "letters, digits, . _ - /"));
                }
            }
            Fault::ClockBump { offset, .. } => {
                if !valid_offset(offset) {
                    return Err(invalid("clock offset", offset, "like +5.250 or -2m"));
                }
            }
            Fault::ClockStrobe {
                delta, period_ms, ..
            } => {
                if !valid_offset(delta) {
                    return Err(invalid("clock delta", delta, "like +5 or -0.5"));
                }
                if *period_ms < 10 {
                    return Err(invalid("period", &period_ms.to_string(), "at least 10 ms"));
                }
            }
            Fault::Latency {
                delay_ms, binary, ..
            } => {
                if *delay_ms == 0 || *delay_ms > 60_000 {
                    return Err(invalid("delay", &delay_ms.to_string(), "1..=60000 ms"));
                }
                if !valid_name(binary) || !binary.starts_with('/') {
                    return Err(invalid("delayer binary", binary, "an absolute path"));
                }
            }
        }
        Ok(())
    }

    /// Node → command that starts the fault there. Starting is idempotent:
    /// each command first removes what an earlier start left.
    pub fn start_commands(
        &self,
        addrs: &NodeAddrs,
        controller: &str,
    ) -> Result<BTreeMap<String, String>, FaultError> {
        self.validate(addrs, controller)?;
        let addr = |n: &str| {
            addrs
                .get(n)
                .cloned()
                .ok_or_else(|| FaultError::UnknownNode(n.into()))
        };
        let mut out = BTreeMap::new();
        match self {
            Fault::Partition { grudge, one_way } => {
                let state = if *one_way {
                    " -m conntrack --ctstate NEW"
                } else {
                    ""
                };
                for (node, drops) in grudge {
                    let mut cmd = new_chain(PARTITION_CHAIN, controller);
                    for d in drops {
                        let ip = addr(d)?;
                        cmd.push_str(&format!(
                            " && iptables -A {PARTITION_CHAIN} -s {ip}{state} -j DROP"
                        ));
                    }
                    out.insert(node.clone(), cmd);
                }
            }
            Fault::Loss { nodes, probability } => {
                for n in nodes {
                    out.insert(
                        n.clone(),
                        format!(
                            "{} && iptables -A {LOSS_CHAIN} -m statistic --mode random \
                             --probability {probability} -j DROP",
                            new_chain(LOSS_CHAIN, controller)
                        ),
                    );
                }
            }
            Fault::Bandwidth { nodes, rate, dev } => {
                for n in nodes {
                    out.insert(
                        n.clone(),
                        format!("tc qdisc replace dev {dev} root tbf rate {rate} burst 32kbit latency 400ms"),
                    );
                }
            }
            Fault::Kill { nodes, target } => {
                for n in nodes {
                    out.insert(n.clone(), signal_cmd("KILL", target));
                }
            }
            Fault::Pause { nodes, target } => {
                for n in nodes {
                    out.insert(n.clone(), signal_cmd("STOP", target));
                }
            }
            Fault::ClockBump { nodes, offset } => {
                for n in nodes {
                    out.insert(
                        n.clone(),
                        format!("{}; {}", stop_strobe(), write_clock(offset)),
                    );
                }
            }
            Fault::ClockStrobe {
                nodes,
                delta,
                period_ms,
                duration_s,
            } => {
                let secs = format!("{}.{:03}", period_ms / 1000, period_ms % 1000);
                let body = format!(
                    "end=$(($(date +%s)+{duration_s})); while [ $(date +%s) -lt $end ]; do \
                     {up}; sleep {secs}; {zero}; sleep {secs}; done; {zero}; rm -f {STROBE_PIDFILE}",
                    up = write_clock(delta),
                    zero = write_clock("+0"),
                );
                for n in nodes {
                    out.insert(
                        n.clone(),
                        format!(
                            "{}; setsid sh -c {} </dev/null >/dev/null 2>&1 & echo $! > {STROBE_PIDFILE}",
                            stop_strobe(),
                            shell_quote(&body)
                        ),
                    );
                }
            }
            Fault::Latency {
                nodes,
                delay_ms,
                binary,
            } => {
                // The delayer binds the queue before packets are sent to it;
                // --queue-bypass lets traffic through if it ever dies.
                let cmd = format!(
                    "{stop}; setsid {binary} nemesis delayer --queue {DELAY_QUEUE} --delay-ms {delay_ms} \
                     </dev/null >/tmp/faultline-delayer.log 2>&1 & echo $! > {DELAYER_PIDFILE}; sleep 0.3; \
                     kill -0 $(cat {DELAYER_PIDFILE}) || {{ cat /tmp/faultline-delayer.log >&2; exit 1; }}; \
                     iptables -N {DELAY_CHAIN} && iptables -A {DELAY_CHAIN} -d {controller} -j RETURN && \
                     iptables -A {DELAY_CHAIN} -j NFQUEUE --queue-num {DELAY_QUEUE} --queue-bypass && \
                     iptables -I OUTPUT 1 -j {DELAY_CHAIN}",
                    stop = stop_delayer()
                );
                for n in nodes {
                    out.insert(n.clone(), cmd.clone());
                }
            }
        }
        Ok(out)
    }

    /// Node → command that heals the fault there. Healing is idempotent and
    /// succeeds when there is nothing to heal.
    pub fn heal_commands(&self) -> BTreeMap<String, String> {
        let cmd = match self {
            Fault::Partition { .. } => remove_chain(PARTITION_CHAIN, "INPUT"),
            Fault::Loss { .. } => remove_chain(LOSS_CHAIN, "INPUT"),
            Fault::Latency { .. } => stop_delayer(),
            Fault::Bandwidth { dev, .. } => {
                format!("tc qdisc del dev {dev} root 2>/dev/null; true")
            }
            Fault::Kill { .. } => "true".to_string(),
            Fault::Pause { target, .. } => signal_cmd("CONT", target),
            Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => {
                format!("{}; {}", stop_strobe(), write_clock("+0"))
            }
        };
        self.nodes().into_iter().map(|n| (n, cmd.clone())).collect()
    }
}

/// Heals every fault this crate knows how to make on a node, whatever the
/// state file says (for a controller that crashed before writing it).
/// Paused processes are the exception: their names are only in the state file.
pub fn heal_everything_command(dev: &str) -> String {
    format!(
        "{}; {}; {}; tc qdisc del dev {dev} root 2>/dev/null; {}; {}",
        remove_chain(PARTITION_CHAIN, "INPUT"),
        remove_chain(LOSS_CHAIN, "INPUT"),
        stop_delayer(),
        stop_strobe(),
        write_clock("+0")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grudge;

    fn addrs() -> NodeAddrs {
        (1..=5)
            .map(|i| (format!("n{i}"), format!("10.77.0.1{i}")))
            .collect()
    }

    fn nodes() -> Vec<String> {
        addrs().into_keys().collect()
    }

    #[test]
    fn isolate_rules() {
        let f = Fault::Partition {
            grudge: grudge::isolate(&nodes(), "n1"),
            one_way: false,
        };
        let cmds = f.start_commands(&addrs(), "10.77.0.1").unwrap();
        assert_eq!(cmds.len(), 5);
        let n1 = &cmds["n1"];
        assert!(n1.contains("-s 10.77.0.1 -j RETURN"));
        for i in 2..=5 {
            assert!(n1.contains(&format!("-s 10.77.0.1{i} -j DROP")));
        }
        assert!(cmds["n2"].contains("-s 10.77.0.11 -j DROP"));
        assert!(!cmds["n2"].contains("10.77.0.13"));
        assert_eq!(f.heal_commands().len(), 5);
    }

    #[test]
    fn one_way_uses_conntrack_new() {
        let f = Fault::Partition {
            grudge: grudge::one_way("n1", "n2"),
            one_way: true,
        };
        let cmds = f.start_commands(&addrs(), "10.77.0.1").unwrap();
        assert!(cmds["n2"].contains("-s 10.77.0.11 -m conntrack --ctstate NEW -j DROP"));
        assert!(!cmds.contains_key("n1"));
    }

    #[test]
    fn never_drops_the_controller() {
        let mut a = addrs();
        a.insert("ctl".into(), "10.77.0.1".into());
        let mut g = Grudge::new();
        g.insert("n1".into(), ["ctl".to_string()].into());
        let f = Fault::Partition {
            grudge: g,
            one_way: false,
        };
        assert_eq!(
            f.start_commands(&a, "10.77.0.1"),
            Err(FaultError::DropsController("10.77.0.1".into()))
        );
    }

    #[test]
    fn rejects_bad_values() {
        let a = addrs();
        let bad = [
            Fault::ClockBump {
                nodes: vec!["n1".into()],
                offset: "5; rm -rf /".into(),
            },
            Fault::ClockBump {
                nodes: vec!["n9".into()],
                offset: "+1".into(),
            },
            Fault::Loss {
                nodes: vec!["n1".into()],
                probability: 1.5,
            },
            Fault::Bandwidth {
                nodes: vec!["n1".into()],
                rate: "fast".into(),
                dev: "eth0".into(),
            },
            Fault::Pause {
                nodes: vec!["n1".into()],
                target: ProcTarget::Name("a b".into()),
            },
        ];
        for f in bad {
            assert!(f.validate(&a, "10.77.0.1").is_err(), "{f:?}");
        }
    }

    #[test]
    fn offsets() {
        for ok in ["+0", "+5.250", "-0.5s", "+2m", "-1h", "+1d"] {
            assert!(valid_offset(ok), "{ok}");
        }
        for bad in ["5", "+", "+1.", "+a", "+1x", "+1.2.3", "@2020"] {
            assert!(!valid_offset(bad), "{bad}");
        }
    }

    #[test]
    fn clock_bump_writes_atomically() {
        let f = Fault::ClockBump {
            nodes: vec!["n3".into()],
            offset: "+5.250".into(),
        };
        let c = &f.start_commands(&addrs(), "10.77.0.1").unwrap()["n3"];
        assert!(c.contains("'+5.250' > /tmp/faultline-faketime.rc.tmp && mv -f"));
        assert!(f.heal_commands()["n3"].contains("'+0'"));
    }

    #[test]
    fn latency_exempts_the_controller_and_heals_the_delayer() {
        let f = Fault::Latency {
            nodes: vec!["n1".into()],
            delay_ms: 100,
            binary: "/usr/local/bin/faultline".into(),
        };
        let c = &f.start_commands(&addrs(), "10.77.0.1").unwrap()["n1"];
        assert!(c.contains("nemesis delayer --queue 0 --delay-ms 100"));
        assert!(c.contains("-d 10.77.0.1 -j RETURN"));
        assert!(c.contains("--queue-bypass"));
        let h = &f.heal_commands()["n1"];
        assert!(h.contains("iptables -D OUTPUT -j FAULTLINE-DELAY"));
        assert!(h.contains("kill $(cat /tmp/faultline-delayer.pid)"));
        let bad = Fault::Latency {
            nodes: vec!["n1".into()],
            delay_ms: 100,
            binary: "faultline".into(),
        };
        assert!(bad.validate(&addrs(), "10.77.0.1").is_err());
    }

    #[test]
    fn serde_round_trip() {
        let f = Fault::Pause {
            nodes: vec!["n1".into()],
            target: ProcTarget::Name("etcd".into()),
        };
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"pause","nodes":["n1"],"target":{"name":"etcd"}}"#
        );
        assert_eq!(serde_json::from_str::<Fault>(&s).unwrap(), f);
    }
}
