#!/bin/sh
# SWIM: detection time and false-positive rate vs packet loss (docs/swim.md).
#
#   scripts/swim-sweep.sh [OUT_DIR]        (default docs/swim)
#
# For each variant (the correct build with the SWIM detector, with the phi
# accrual detector, and each seeded bug) and each loss level in $LOSSES:
# one `faultline test --target swim --workload membership --nemesis kill
# --loss-prob P` run: every $INTERVAL s one random node is killed, and while
# it is down every node drops P of the node-to-node packets; the heal
# restarts it and ends the loss. The `detector` checker's numbers go to
# OUT_DIR/swim-loss.csv, and scripts/swim-plot.py draws OUT_DIR/swim-loss.svg.
#
# About 6 variants x 5 levels x ($TIME + 15 s) = 23 min with the defaults.
# NOT run in CI. Needs root, sshd, jq and python3; uses the lab at $LAB
# (default /srv/faultline-swim on $BRIDGE flbr39, 10.77.39.0/24), brought up
# if missing. Environment: FAULTLINE, NODE_BIN (default the release
# binaries, else the debug ones), TIME (default 30), INTERVAL (default 5),
# NODES (default 5), SEED (default 1), LOSSES (default "0 0.05 0.1 0.2
# 0.3"), VARIANTS (names from the list below), STORE (default store-swim),
# MAX_FP (a false-positive-rate bound: runs above it are invalid with
# `false-positive-rate`; default none, the rate is only measured).
#
# RECHECK=1 re-judges the runs named in an existing OUT_DIR/swim-loss.csv
# with the current checker (`faultline check --json RUN_DIR`) and redraws
# the plot, without running anything.
#
# Columns: variant loss seed verdict anomalies failures detections
# detection_median_ms detection_max_ms false_suspicions
# false_suspicions_per_node_minute false_positive_rate
# false_positive_rate_under_loss run_dir
set -u
OUT=${1:-docs/swim}
if [ -x target/release/faultline ] && [ -x target/release/faultline-node ]; then
    DEF_BIN=target/release
else
    DEF_BIN=target/debug
fi
FAULTLINE=${FAULTLINE:-$DEF_BIN/faultline}
NODE_BIN=${NODE_BIN:-$DEF_BIN/faultline-node}
LAB=${LAB:-/srv/faultline-swim}
BRIDGE=${BRIDGE:-flbr39}
SUBNET=${SUBNET:-10.77.39.0/24}
TIME=${TIME:-30}
INTERVAL=${INTERVAL:-5}
NODES=${NODES:-5}
SEED=${SEED:-1}
LOSSES=${LOSSES:-"0 0.05 0.1 0.2 0.3"}
STORE=${STORE:-store-swim}
# name:db-option:bug
ALL="swim::
phi:detector=phi:
no-ping-req::no-ping-req
no-suspicion::no-suspicion
no-incarnation::no-incarnation
piggyback-unbounded::piggyback-unbounded"
VARIANTS=${VARIANTS:-"swim phi no-ping-req no-suspicion no-incarnation piggyback-unbounded"}

[ -x "$FAULTLINE" ] && [ -x "$NODE_BIN" ] || {
    echo "build first: cargo build --release -p faultline -p faultline-node" >&2; exit 64; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 64; }
[ -f "$LAB/lab.json" ] || "$FAULTLINE" lab up --dir "$LAB" --bridge "$BRIDGE" \
    --subnet "$SUBNET" --nodes "$NODES" >&2 || exit 3
CSV="$OUT/swim-loss.csv"
HEADER="variant,loss,seed,verdict,anomalies,failures,detections,detection_median_ms,detection_max_ms,false_suspicions,false_suspicions_per_node_minute,false_positive_rate,false_positive_rate_under_loss,run_dir"

# One CSV row: the current checker's verdict and numbers for a stored run.
row() { # variant loss seed run_dir
    "$FAULTLINE" check --json "$4" 2>/dev/null | jq -r --arg v "$1" --arg p "$2" \
        --arg s "$3" --arg d "$4" '
        [$v, $p, $s, (.valid|tostring), (.anomaly_types|join(" ")),
         .stats.failures, .stats.detections, .stats.detection_median_ms,
         .stats.detection_max_ms, .stats.false_suspicions,
         .stats.false_suspicions_per_node_minute, .stats.false_positive_rate,
         .stats.false_positive_rate_under_loss, $d] | map(tostring) | join(",")'
}

if [ "${RECHECK:-}" = 1 ]; then
    tail -n +2 "$CSV" > "$CSV.old"
    echo "$HEADER" > "$CSV"
    while IFS=, read -r v p s _ _ _ _ _ _ _ _ _ _ d; do
        row "$v" "$p" "$s" "$d" | tee -a "$CSV" >&2
    done < "$CSV.old"
    rm -f "$CSV.old"
    exec python3 "$(dirname "$0")/swim-plot.py" "$CSV" "$OUT/swim-loss.svg"
fi

mkdir -p "$OUT"
echo "$HEADER" > "$CSV"

for v in $VARIANTS; do
    line=$(echo "$ALL" | grep "^$v:") || { echo "unknown variant $v" >&2; exit 64; }
    opt=$(echo "$line" | cut -d: -f2)
    bug=$(echo "$line" | cut -d: -f3)
    for p in $LOSSES; do
        set -- test --target swim --workload membership --nemesis kill \
            --loss-prob "$p" --nemesis-interval "$INTERVAL" --time-limit "$TIME" \
            --node-count "$NODES" --concurrency "$NODES" --rate $((NODES * 10)) \
            --seed "$SEED" --node-binary "$NODE_BIN" --lab-dir "$LAB" --store "$STORE"
        [ -n "$opt" ] && set -- "$@" --db-option "$opt"
        [ -n "$bug" ] && set -- "$@" --bug "$bug"
        [ -n "${MAX_FP:-}" ] && set -- "$@" --max-false-positive-rate "$MAX_FP"
        echo "== $v loss $p: $FAULTLINE $*" >&2
        "$FAULTLINE" "$@" > /dev/null 2>&1
        dir=$(readlink -f "$STORE/swim-membership/latest")
        row "$v" "$p" "$SEED" "$dir" | tee -a "$CSV" >&2
    done
done
python3 "$(dirname "$0")/swim-plot.py" "$CSV" "$OUT/swim-loss.svg"
