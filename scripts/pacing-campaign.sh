#!/bin/sh
# Campaign for issue #24 (paced clients): every target's own workload (the
# first `faultline targets --json` lists), one run each, TIME s under every
# fault it supports (its `faults` there, which name the leader kinds where
# the target can find its leader, plus any kinds in $LEADER) at
# an INTERVAL s nemesis interval, at the workload's default pacing (no
# --rate). Prints, per target, the history's size and the worst client's
# failed operations (fail or info) per second over any 10 s window, both
# from results.json's `run.pacing` (docs/nightly.md § Pacing). The bound
# (issue #24): <= 200 MB and <= 100 failed ops/s.
#
#   scripts/pacing-campaign.sh [OUT.tsv]
#
# About TIME + 30 s per target; the targets run one at a time. NOT run in
# CI. Needs root, sshd, libfaketime and jq (and etcd, redis, zookeeper,
# postgres for those targets: a target whose run fails is a `failed` row);
# uses the lab at $LAB (default /srv/faultline-pacing on $BRIDGE flbr131,
# $SUBNET 10.77.131.0/24), brought up if missing.
# Environment: FAULTLINE (binary, default target/release/faultline),
# NODE_BIN (default target/release/faultline-node), TIME (default 60),
# INTERVAL (default 5), SEED (default 1), STORE (default store-pacing),
# NODES (default 3), TARGETS (default: every deployed target), LEADER
# (default empty: since issue #18 a target lists the leader kinds it takes,
# and `faultline test` refuses a kind its target does not list),
# EXTRA (more `faultline test` arguments, e.g. "--check-time-limit 10":
# the verdict is not the point here).
#
# Columns: target workload verdict exit ops fail info history_mb
# worst_fail_per_s worst_client backoffs rate nemesis run_dir
set -u
OUT=${1:-pacing.tsv}
FAULTLINE=${FAULTLINE:-target/release/faultline}
NODE_BIN=${NODE_BIN:-target/release/faultline-node}
LAB=${LAB:-/srv/faultline-pacing}
TIME=${TIME:-60}
INTERVAL=${INTERVAL:-5}
SEED=${SEED:-1}
STORE=${STORE:-store-pacing}
NODES=${NODES:-3}
TARGETS=${TARGETS:-}
LEADER=${LEADER-}
EXTRA=${EXTRA:-}
BRIDGE=${BRIDGE:-flbr131}
SUBNET=${SUBNET:-10.77.131.0/24}

[ -x "$FAULTLINE" ] && [ -x "$NODE_BIN" ] || {
    echo "build first: cargo build --release -p faultline -p faultline-node" >&2; exit 64; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 64; }
[ -f "$LAB/lab.json" ] || "$FAULTLINE" lab up --dir "$LAB" --bridge "$BRIDGE" \
    --subnet "$SUBNET" --nodes "$NODES" >&2 || exit 3

printf 'target\tworkload\tverdict\texit\tops\tfail\tinfo\thistory_mb\tworst_fail_per_s\tworst_client\tbackoffs\trate\tnemesis\trun_dir\n' > "$OUT"

# "target workload faults" of every deployed target (noop has no faults).
"$FAULTLINE" targets --json |
    jq -r '.targets[] | select(.faults | length > 0) | "\(.name) \(.workloads[0]) \(.faults | join(","))"' |
while read -r t w faults; do
    [ -z "$TARGETS" ] || case " $TARGETS " in *" $t "*) ;; *) continue ;; esac
    nem=$faults${LEADER:+,$LEADER}
    # shellcheck disable=SC2086
    "$FAULTLINE" test --target "$t" --workload "$w" --nemesis "$nem" \
        --nemesis-interval "$INTERVAL" --time-limit "$TIME" --seed "$SEED" \
        --node-binary "$NODE_BIN" --node-count "$NODES" --lab-dir "$LAB" \
        --store "$STORE" $EXTRA >/dev/null 2>>"$OUT.log"
    code=$?
    dir=$(readlink -f "$STORE/$t-$w/latest")
    r="$dir/results.json"
    row=$(jq -r '[
        (.valid | if . == true then "valid" elif . == false then "invalid" else "unknown" end),
        (.run.ok + .run.fail + .run.info), .run.fail, .run.info,
        ((.run.pacing.history_bytes // 0) / 1e6 * 10 | round / 10),
        .run.pacing.fail_rate.worst_per_s, .run.pacing.fail_rate.client,
        .run.pacing.backoffs, .run.pacing.rate
      ] | map(tostring) | join("\t")' "$r" 2>/dev/null) || row="failed"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$w" "$(echo "$row" | cut -f1)" "$code" \
        "$(echo "$row" | cut -s -f2-)" "$nem" "$dir" | tee -a "$OUT"
done

echo "bound (issue #24): history <= 200 MB, worst client <= 100 failed ops/s per 10 s:" >&2
awk -F'\t' 'NR > 1 && $3 != "failed" {
    ok = ($8 <= 200 && $9 <= 100) ? "within" : "OVER";
    printf "  %-10s %-12s %7s MB %8s fail/s  %s\n", $1, $2, $8, $9, ok }' "$OUT" >&2
