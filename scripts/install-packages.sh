#!/usr/bin/env bash
# Installs the Debian packages faultline builds and tests with (idempotent).
# The lists are scripts/*packages.txt, one package a line (build, lab, targets).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mapfile -t pkgs < <(cat scripts/*packages.txt | grep -v '^\s*#' | grep -v '^\s*$' | sort -u)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_ apt-get update -qq
    # policy-rc.d on our machines keeps apt from starting services; on other
    # machines, sshd may start in the root namespace, which the lab does not need.
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${missing[@]}"
fi
