#!/bin/sh
# Election campaign (issue #8): the `elect` target's correct builds and
# seeded bugs, one TSV row per run (docs/election.md has the results).
#
#   scripts/elect-campaign.sh [OUT.tsv]
#
# 1. correct: bully, ring, raft x $SEEDS, $TIME s each, under
#    partition,kill,pause,clock,kill-leader,isolate-leader: every row
#    should exit 0;
# 2. bugs: each seeded bug x $SEEDS, $BUG_TIME s, under the nemesis listed
#    below; a bug is caught when a row exits 1.
# Needs root, sshd, libfaketime and jq; brings up a 3-node lab at $LAB
# (bridge $BRIDGE, default flbr35, $SUBNET 10.77.35.0/24) if missing.
# Environment: FAULTLINE, NODE_BIN (default the debug builds), TIME (60),
# BUG_TIME ($TIME), SEEDS ("1 2 3 4 5"), STORE, PARTS ("correct bugs").
# Columns: algo bug nemesis seed exit anomalies tte_median_ms tte_max_ms
set -u
OUT=${1:-elect-campaign.tsv}
FL=${FAULTLINE:-target/debug/faultline}
NB=${NODE_BIN:-target/debug/faultline-node}
LAB=${LAB:-/srv/fl-elect-campaign}
TIME=${TIME:-60}
BUG_TIME=${BUG_TIME:-$TIME}
SEEDS=${SEEDS:-"1 2 3 4 5"}
STORE=${STORE:-store-elect-campaign}
PARTS=${PARTS:-"correct bugs"}
[ -f "$LAB/lab.json" ] || "$FL" lab up --dir "$LAB" --bridge "${BRIDGE:-flbr35}" \
    --subnet "${SUBNET:-10.77.35.0/24}" --nodes 3 >&2 || exit 3
printf 'algo\tbug\tnemesis\tseed\texit\tanomalies\ttte_median_ms\ttte_max_ms\n' > "$OUT"
one() { # algo bug nemesis seed time
    b=""; [ "$2" = - ] || b="--bug $2"
    "$FL" test --target elect --workload election --db-option "algo=$1" $b --nemesis "$3" \
        --nemesis-interval 4 --concurrency 6 --rate 100 --time-limit "$5" --seed "$4" \
        --node-binary "$NB" --lab-dir "$LAB" --store "$STORE" >/dev/null 2>&1
    rc=$?
    r="$STORE/elect-election/latest/results.json"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rc" \
        "$(jq -r '.anomaly_types|join(",")' "$r")" "$(jq -r '.time_to_elect.median_ms' "$r")" \
        "$(jq -r '.time_to_elect.max_ms' "$r")" >> "$OUT"
}
case $PARTS in *correct*)
for algo in bully ring raft; do for s in $SEEDS; do
    one $algo - partition,kill,pause,clock,kill-leader,isolate-leader $s "$TIME"; done; done ;; esac
case $PARTS in *bugs*)
while read -r algo bug nem; do for s in $SEEDS; do one $algo $bug $nem $s "$BUG_TIME"; done; done <<'X'
bully no-quorum isolate-leader
ring no-quorum isolate-leader
bully volatile-epoch kill,kill-leader
ring volatile-epoch kill,kill-leader
bully accept-higher-id isolate-leader
raft volatile-term kill,kill-leader
raft vote-twice kill-leader,partition
X
;; esac
