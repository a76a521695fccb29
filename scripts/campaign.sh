#!/bin/sh
# Campaign for issue #6: verdicts of faultline's own protocols, to a TSV.
#
#   scripts/campaign.sh [OUT.tsv]
#
# 1. Correct builds: every protocol (raft, paxos, zab) x workload
#    (register, list-append) x 5 seeds, 60 s each, under
#    partition,kill,pause,clock. Every row should say `valid`.
# 2. Seeded bugs: every bug of every protocol (from `faultline targets
#    --json`) x 5 seeds, 60 s, under the bug's schedule below (register
#    unless it names a workload). A bug counts as caught when at least one
#    of its rows says `invalid`.
#
# About (3 x 2 x 5 + 15 x 5) x ~75 s = 2 h 15 min. NOT run in CI.
# Needs root, sshd, libfaketime and jq; uses the lab at $LAB (default
# /srv/faultline-campaign on $BRIDGE flbr10, $SUBNET 10.77.10.0/24),
# brought up if missing. Two labs on two bridges can run parts in parallel.
# Environment: FAULTLINE (binary, default target/release/faultline),
# NODE_BIN (default target/release/faultline-node), TIME (default 60),
# SEEDS (default "1 2 3 4 5"), STORE (default store-campaign), PROTOCOLS
# (default "raft paxos zab"), INTERVAL (nemesis interval, default 10 s),
# PARTS (default "correct bugs"), NEMESIS (default
# partition,kill,pause,clock), BUG_NEMESIS (the bug runs' list, default
# $NEMESIS), BUG_INTERVAL (default $INTERVAL), BUGS (only these bug names),
# EXTRA (more `faultline test` arguments, e.g. "--op-timeout 1"),
# STOP_AT_FIRST=1 (a bug's remaining seeds are skipped once one run of it
# is invalid: "caught in at least one of 5" in less time), NODES (nodes per
# run and in a new lab, default 3; a lab needs at least that many),
# WORKLOADS (the correct builds' workloads; default per protocol, see
# workloads_of: register list-append for the consensus protocols).
#
# Issue #8's protocols: PROTOCOLS="twopc saga lock" runs their correct
# builds on their own workloads (bank, saga, fenced; lock at 100 ops/s and 6
# clients, as in docs/lock.md) and their bugs under the schedules below.
#
# BUG_WORKLOAD (default register), e.g. PROTOCOLS=dynamo
# WORKLOADS=siblings BUG_WORKLOAD=siblings NODES=5 (docs/dynamo.md).
#
# PARTS=mix (issue #24): every correct build under one generic fault mix,
# $MIX (default partition,kill,pause,clock,kill-leader,isolate-leader,
# pause-leader) at $INTERVAL, cut to the faults the target has: the
# leaderless stores (crdt, dynamo, swim) name no leader, so the leader
# kinds would only hit a random node again (kill, pause, an isolation):
# they are dropped there. Each protocol's first workload, each of $SEEDS,
# each node count of $NODE_COUNTS (default "3 5"; the lab needs the
# largest). Columns as above, kind `mix-3n`, `mix-5n` (the node count).
#   PARTS=mix SEEDS="1 2 3" INTERVAL=5 PROTOCOLS="dynamo raft" \
#     scripts/campaign.sh mix.tsv
# docs/campaign-correct-builds.md has the figures.
#
# Columns: kind protocol workload bug seed verdict exit ok fail info nemesis
# interval run_dir
set -u
OUT=${1:-campaign.tsv}
FAULTLINE=${FAULTLINE:-target/release/faultline}
NODE_BIN=${NODE_BIN:-target/release/faultline-node}
LAB=${LAB:-/srv/faultline-campaign}
TIME=${TIME:-60}
SEEDS=${SEEDS:-"1 2 3 4 5"}
STORE=${STORE:-store-campaign}
NEMESIS=${NEMESIS:-partition,kill,pause,clock}
PROTOCOLS=${PROTOCOLS:-"raft paxos zab"}
INTERVAL=${INTERVAL:-10}
PARTS=${PARTS:-"correct bugs"}
BUG_NEMESIS=${BUG_NEMESIS:-$NEMESIS}
BUG_INTERVAL=${BUG_INTERVAL:-$INTERVAL}
BUGS=${BUGS:-}
EXTRA=${EXTRA:-}
NODES=${NODES:-3}
WORKLOADS=${WORKLOADS:-}
BRIDGE=${BRIDGE:-flbr10}
SUBNET=${SUBNET:-10.77.10.0/24}

[ -x "$FAULTLINE" ] && [ -x "$NODE_BIN" ] || {
    echo "build first: cargo build --release -p faultline -p faultline-node" >&2; exit 64; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 64; }
MIX=${MIX:-partition,kill,pause,clock,kill-leader,isolate-leader,pause-leader}
NODE_COUNTS=${NODE_COUNTS:-"3 5"}
LAB_NODES=$NODES
case " $PARTS " in *" mix "*) for n in $NODE_COUNTS; do
    [ "$n" -gt "$LAB_NODES" ] && LAB_NODES=$n; done ;; esac
[ -f "$LAB/lab.json" ] || "$FAULTLINE" lab up --dir "$LAB" --bridge "$BRIDGE" \
    --subnet "$SUBNET" --nodes "$LAB_NODES" >&2 || exit 3

printf 'kind\tprotocol\tworkload\tbug\tseed\tverdict\texit\tok\tfail\tinfo\tnemesis\tinterval\trun_dir\n' > "$OUT"

# The schedule that exposes each seeded bug: "NEMESIS INTERVAL RATE
# [WORKLOAD]" (WORKLOAD default register; list-append for bugs that leave
# replicas' states apart: an append never disappears from a list, so two
# leaders' different lists of one key cannot both be explained, where a
# register's few values are overwritten within a second;
# RATE: --rate in ops/s, or - for as fast as answered; a low rate keeps
# each key alive for many seconds, so a write lost or resurrected by a
# leader change is still read afterwards). docs/reference-impls.md says
# why each one. Bugs not listed get $BUG_NEMESIS at $BUG_INTERVAL;
# SCHEDULES=0 gives every bug that default.
L=kill-leader,pause-leader,isolate-leader
schedule() {
    d="$BUG_NEMESIS $BUG_INTERVAL -"
    [ "${SCHEDULES:-1}" = 1 ] || { echo "$d"; return; }
    case $1 in
    # Stale reads at a cut-off leader need its clients to get reads in, not
    # wait out writes that cannot commit: short timeouts, more clients.
    raft/read-without-quorum | paxos/leader-local-read | zab/read-without-sync)
        echo "isolate-leader,pause-leader 5 - register --op-timeout 1 --concurrency 10" ;;
    # As above, with the isolated leader's clock set back.
    raft/lease-read-no-bound) echo "skew-leader 5 - register --op-timeout 1 --concurrency 10" ;;
    raft/ack-before-commit | paxos/minority-quorum | zab/commit-before-quorum)
        echo "isolate-leader,kill-leader,partition 3 -" ;;
    # An isolated leader goes on accepting writes alone in slots that the
    # next leader fills with others; isolating that one 1.5 s later often
    # hands leadership back before the old one learnt those decisions.
    paxos/no-adopt-highest) echo "isolate-leader 1.5 - list-append --op-timeout 1 --concurrency 10" ;;
    # docs/pb.md: a read must reach the cut-off old primary after the
    # promotion, so its clients must not all be stuck in writes.
    pb/local-read) echo "isolate-leader 5 - register --op-timeout 1 --concurrency 10" ;;
    # Every node acknowledged and nobody wrote yet: a crash of all of them
    # within the second loses it (docs/pb.md).
    pb/ack-before-fsync) echo "kill-all 3 - list-append" ;;
    # Queues fill with stale updates once most members have churned; then a
    # pause's suspicion and refutation starve (NODES=12, push-pull off;
    # docs/swim.md).
    swim/*) echo "kill,pause 1.5 50 membership --concurrency $NODES --db-option push-pull-ticks=1000000" ;;
    # Commits what was sent: an isolated or killed leader has answered
    # writes no follower got.
    raft/commit-by-next-index) echo "isolate-leader,kill-leader 3 -" ;;
    # A paused leader wakes up still leading its epoch; the other
    # follower acks it, so it commits and reads beside the new leader.
    zab/accept-stale-epoch) echo "pause-leader 5 -" ;;
    zab/serve-before-sync | zab/skip-truncate | zab/reuse-epoch)
        echo "leader-churn,$L 3 50 list-append" ;;
    # Figure 8 needs the re-elected old leader killed before any entry of
    # its own term reaches a follower: few client writes (10 ops/s).
    raft/commit-old-term) echo "leader-churn 1 10 list-append" ;;
    zab/*) echo "$L,partition,kill 3 100" ;;
    crdt/gcounter-merge-sum) echo "partition 2 - counter" ;;
    crdt/orset-remove-without-tags) echo "partition 2 - set" ;;
    crdt/lww-*) echo "$BUG_NEMESIS $BUG_INTERVAL -" ;;
    # Issue #8 (docs/twopc.md, saga.md, lock.md say why). Fields after the
    # workload are more `faultline test` arguments for that run.
    twopc/decide-before-log) echo "kill-leader 1 - bank" ;;
    twopc/forget-commit-early | twopc/read-early-release)
        echo "partition,kill,pause 1 - bank" ;;
    twopc/*) echo "kill 1 - bank" ;;
    saga/send-before-log) echo "kill-leader 2 - saga --op-timeout 1" ;;
    saga/volatile-outbox) echo "kill 2 - saga --db-option mode=choreographed" ;;
    saga/*) echo "kill 2 - saga" ;;
    lock/skip-fencing | lock/storage-per-client) echo "pause 5 100 fenced --concurrency 6" ;;
    lock/wall-clock-lease) echo "clock 3 100 fenced --concurrency 6" ;;
    lock/grant-after-election) echo "pause-leader 3 100 fenced --concurrency 6" ;;
    # Writes acknowledged only by stand-ins need a key's whole preference
    # list cut off (the partition nemesis's target-group shape) until the
    # run ends: TIME a multiple of 10 s keeps the last fault to the end.
    dynamo/no-hinted-handoff) echo "partition 5 -" ;;
    # docs/chain.md: the cut-off head acks or serves alone; a restarted
    # head comes back as the tail.
    chain/ack-at-head | chain/read-at-head | chain/no-fencing) echo "isolate-leader 3 -" ;;
    chain/tail-before-sync) echo "kill-leader,isolate-leader 3 - list-append" ;;
    *) echo "$d" ;;
    esac
}

# A correct build's own arguments (issue #8's protocols).
workloads_of() {
    case $1 in twopc) echo bank ;; saga) echo saga ;; lock) echo fenced ;;
    crdt) echo "counter set register" ;; dynamo) echo siblings ;; swim) echo membership ;;
    *) echo "register list-append" ;; esac
}
correct_args() { case $1 in lock) echo "--rate 100 --concurrency 6" ;;
    swim) echo "--rate 50 --concurrency $NODES" ;; esac; }

run() { # kind protocol workload bug seed
    bugarg=""; nem=$NEMESIS; iv=$INTERVAL; rate=""; more=""
    [ "$4" = "-" ] && more=$(correct_args "$2")
    [ "$4" = "-" ] || {
        # shellcheck disable=SC2046
        sch=$(schedule "$2/$4"); more=$(echo "$sch" | cut -s -d' ' -f5-)
        # shellcheck disable=SC2086
        bugarg="--bug $4"; set -- "$@" $sch; nem=$6; iv=$7
        [ "$8" = "-" ] || rate="--rate $8"
        [ -z "${9:-}" ] || { w=$9; set -- "$1" "$2" "$w" "$4" "$5"; }
    }
    # shellcheck disable=SC2086
    "$FAULTLINE" test --target "$2" --workload "$3" $bugarg --nemesis "$nem" \
        --nemesis-interval "$iv" --time-limit "$TIME" --seed "$5" --node-binary "$NODE_BIN" --node-count "$NODES" \
        --lab-dir "$LAB" --store "$STORE" $rate $more $EXTRA >/dev/null 2>>"$OUT.log"
    code=$?
    dir=$(readlink -f "$STORE/$2-$3/latest")
    r="$dir/results.json"
    verdict=$(jq -r '.valid | if . == true then "valid" elif . == false then "invalid" else "unknown" end' "$r" 2>/dev/null || echo failed)
    counts=$(jq -r '[.run.ok, .run.fail, .run.info] | map(tostring) | join("\t")' "$r" 2>/dev/null || printf '\t\t')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$verdict" "$code" "$counts" "$nem" "$iv${rate:+ $rate}" "$dir" | tee -a "$OUT"
}

mix_of() { # the mix cut to what protocol $1 takes
    case $1 in crdt | dynamo | swim) echo "$MIX" | tr , '\n' | grep -v -- -leader | paste -sd, - ;;
    *) echo "$MIX" ;; esac
}
case " $PARTS " in *" mix "*)
    for p in $PROTOCOLS; do
        w=$(workloads_of "$p" | cut -d' ' -f1)
        for n in $NODE_COUNTS; do
            for s in $SEEDS; do
                keep="$NEMESIS $NODES"; NEMESIS=$(mix_of "$p"); NODES=$n
                run "mix-${n}n" "$p" "$w" - "$s"
                NEMESIS=${keep% *}; NODES=${keep#* }
            done
        done
    done ;;
esac

case " $PARTS " in *" correct "*) CORRECT_PROTOCOLS=$PROTOCOLS ;; *) CORRECT_PROTOCOLS= ;; esac
case " $PARTS " in *" bugs "*) BUG_PROTOCOLS=$PROTOCOLS ;; *) BUG_PROTOCOLS= ;; esac
for p in $CORRECT_PROTOCOLS; do
    for w in ${WORKLOADS:-$(workloads_of "$p")}; do
        for s in $SEEDS; do run correct "$p" "$w" - "$s"; done
    done
done

"$FAULTLINE" targets --json | jq -r '.targets[] | .name as $p | .bugs[]? | "\($p) \(.name)"' |
while read -r p b; do
    case " $BUG_PROTOCOLS " in *" $p "*) ;; *) continue ;; esac
    [ -z "$BUGS" ] || case " $BUGS " in *" $b "*) ;; *) continue ;; esac
    for s in $SEEDS; do
        run bug "$p" "${BUG_WORKLOAD:-register}" "$b" "$s"
        [ "${STOP_AT_FIRST:-0}" = 1 ] && [ "$verdict" = invalid ] && break
    done
done

echo "detection per bug (invalid runs / runs):" >&2
awk -F'\t' '$1=="bug"{n[$2" "$4]++; if($6=="invalid")c[$2" "$4]++} END{for(k in n) printf "  %s: %d/%d\n", k, c[k]+0, n[k]}' "$OUT" >&2
