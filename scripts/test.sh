#!/usr/bin/env bash
# Runs every test faultline has, on a fresh Debian/Ubuntu machine.
#
# Installs the Debian packages the tests use (the lab needs root: network
# namespaces, iptables, sshd per node), then formatting, lints, and
# `cargo test --workspace`. Tests that need root or the shared corpus say
# that they skipped when those are missing.
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
cargo test --workspace --locked --no-fail-fast "$@"
