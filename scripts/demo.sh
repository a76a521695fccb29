#!/usr/bin/env bash
# The main job: a Jepsen-style test of a real 3-member etcd cluster.
#
# Installs the Debian packages (etcd, sshd, iptables, …), builds faultline
# (release), brings up the local lab (network namespaces with sshd, needs
# root), then runs clients against etcd for 30 s per workload (register, then
# list-append) while a nemesis (every 5 s) partitions the network, SIGKILLs
# and SIGSTOPs members, checks each history (linearizability; strict
# serializability) and writes the reports. The lab is taken down at the end,
# also on failure or Ctrl-C. Exits with `faultline test`'s code:
# 0 valid, 1 invalid, 2 unknown, 3 the run failed. The last line is the
# report to open first (the worst run's): its first screen says the verdict
# and, for an invalid run, the operations that prove it.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "== installing the Rust toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi

echo "== installing Debian packages"
scripts/install-packages.sh

echo "== building faultline (release)"
cargo build --release --locked --bin faultline
fl=target/release/faultline
store=${FAULTLINE_STORE:-store}

echo "== faultline lab up"
sudo_ "$fl" lab up --nodes 3
trap 'echo "== faultline lab down"; sudo_ "$fl" lab down' EXIT

# register: linearizability per key; list-append: Elle-style strict
# serializability. The worst exit code wins.
worst=0
first=""
for w in register list-append; do
    echo "== faultline test --target etcd --workload $w --nemesis partition,kill,pause --nemesis-interval 5 --time-limit 30"
    set +e
    sudo_ "$fl" test --target etcd --workload "$w" --nemesis partition,kill,pause \
        --nemesis-interval 5 --time-limit 30 --node-count 3 --store "$store"
    code=$?
    set -e
    report=$(readlink -f "$store/etcd-$w/latest")/report.html
    echo "== report: $report (exit $code)"
    if [ "$code" -gt "$worst" ] || [ -z "$first" ]; then first=$report; fi
    if [ "$code" -gt "$worst" ]; then worst=$code; fi
done
echo "== open this report first (verdict, cause, summary and plots on its first screen):"
echo "$first"
exit $worst
