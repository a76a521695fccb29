#!/usr/bin/env bash
# Runs every test faultline has, on a fresh Debian/Ubuntu machine.
#
# Installs the Debian packages the tests use (the lab needs root: network
# namespaces, iptables, sshd per node), then formatting, lints, and
# `cargo test --workspace`. A test that cannot run here (no root, no sshd,
# a package or the shared corpus missing) fails under CI=true; elsewhere it
# passes and is listed at the end (tests/common/skip.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "== installing the Rust toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi

echo "== installing Debian packages"
scripts/install-packages.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
# Each skipped test appends "binary::test: why" here (tests/common/skip.rs).
FAULTLINE_SKIP_LOG="$(mktemp -t faultline-skips.XXXXXX)"
export FAULTLINE_SKIP_LOG
trap 'rm -f "$FAULTLINE_SKIP_LOG"' EXIT
rc=0
cargo test --workspace --locked --no-fail-fast "$@" || rc=$?

skips=$(sort -u "$FAULTLINE_SKIP_LOG" | grep -c . || true)
if [ "$skips" -gt 0 ]; then
    echo "== $skips test(s) skipped (they passed without running):"
    sort -u "$FAULTLINE_SKIP_LOG" | sed 's/^/  /'
else
    echo "== no test skipped"
fi
exit "$rc"
