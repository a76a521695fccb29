//! Network faults: iptables chains (partition, loss, the delayer's queue)
//! and tc qdiscs (bandwidth). Each fault family has its own chain, so one
//! heal never flushes another's rules.

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

/// tc handle of faultline's root qdiscs: heals delete only root qdiscs
/// carrying it, never one the node had before.
pub const TC_HANDLE: &str = "fa17:";

pub(super) fn remove_chain(chain: &str, hook: &str) -> String {
    format!(
        "while iptables -D {hook} -j {chain} 2>/dev/null; do :; done; \
         iptables -F {chain} 2>/dev/null; iptables -X {chain} 2>/dev/null; true"
    )
}

/// A fresh chain hooked first into INPUT whose first rule exempts the controller.
pub(super) fn new_chain(chain: &str, controller: &str) -> String {
    format!(
        "{}; iptables -N {chain} && iptables -A {chain} -s {controller} -j RETURN && \
         iptables -I INPUT 1 -j {chain}",
        remove_chain(chain, "INPUT")
    )
}

pub(super) fn stop_delayer() -> String {
    format!(
        "{}; if [ -f {DELAYER_PIDFILE} ]; then kill $(cat {DELAYER_PIDFILE}) 2>/dev/null; rm -f {DELAYER_PIDFILE}; fi",
        remove_chain(DELAY_CHAIN, "OUTPUT")
    )
}

pub(super) fn valid_rate(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && matches!(
            &s[digits..],
            "bit" | "kbit" | "mbit" | "gbit" | "bps" | "kbps" | "mbps"
        )
}

/// Shell that sets `$d` to the interface `dev` names (`auto`: the one the
/// node routes `via` through).
pub(super) fn pick_dev(dev: &str, via: &str) -> String {
    if dev == "auto" {
        format!(
            "d=$(ip -o route get {via} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); \
             [ -n \"$d\" ] || {{ echo 'no route to {via}' >&2; exit 1; }}"
        )
    } else {
        format!("d={dev}")
    }
}

/// Deletes faultline's root qdisc (and only it) on every interface. Its
/// loop variable is not `$d`, which holds the start command's interface.
/// One `tc` call decides whether there is anything to do (the common case
/// in a catch-all heal is nothing).
pub(super) fn remove_qdiscs() -> String {
    format!(
        "if tc qdisc show 2>/dev/null | grep -q ' {TC_HANDLE} '; then \
         for i in $(ls /sys/class/net); do tc qdisc show dev $i root 2>/dev/null | \
         grep -q ' {TC_HANDLE} ' && tc qdisc del dev $i root; done; fi; true"
    )
}
