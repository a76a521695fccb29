#!/bin/sh
# Throughput of `faultline test --target raft --workload register` with the
# message trace on (default) and off (--db-option trace-limit=0), alternating,
# and each node's messages.jsonl size. Needs root; uses lab net 61 (the trace
# helper's range). Usage: scripts/trace-overhead.sh TARGET_DIR [RUNS] [RATE]
set -eu
T=${1:?release target dir, e.g. target/release}; RUNS=${2:-3}; RATE=${3:-20000}
B=$T/faultline; N=$T/faultline-node
LAB=/srv/faultline-trace-bench; BR=flbr61; S=/srv/faultline-trace-bench-store
$B lab up --dir $LAB --bridge $BR --subnet 10.77.61.0/24 --nodes 3 >/dev/null
trap '$B lab down --dir $LAB --bridge $BR >/dev/null 2>&1 || true' EXIT
for i in $(seq 1 "$RUNS"); do
  for mode in on off; do
    opt=""; [ $mode = off ] && opt="--db-option trace-limit=0"
    rm -rf $S
    $B test --target raft --workload register --time-limit 20 --rate "$RATE" \
      --seed "$i" --node-binary $N --lab-dir $LAB --store $S $opt >/dev/null 2>&1 || true
    r=$S/raft-register/latest
    ok=$(python3 -c "import json;print(json.load(open('$r/results.json'))['run']['ok'])")
    sizes=$(du -b $r/nodes/*/messages.jsonl | awk '{printf "%s ", $1}')
    echo "run $i trace $mode: ok $ok ($(python3 -c "print(round($ok/20))") ok/s) messages.jsonl bytes: $sizes"
  done
done
