#!/bin/sh
# An etcd register client for faultline's exec target (docs/exec.md), in
# shell with curl and jq, through etcd's v3 JSON gateway. One operation per
# stdin line ({"f":"cas","key":2,"value":[1,3]}), one completion per stdout
# line ({"type":"ok","f":"cas","value":[1,3]}). Register workload only.
#
#   faultline test --target exec --db-hooks examples/exec/etcd.toml \
#       --client-cmd 'sh examples/exec/etcd_client.sh' --workload register
base="http://$FAULTLINE_NODE_ADDR:2379"
t=${FAULTLINE_OP_TIMEOUT:-5}

b64() { printf %s "$1" | base64 -w0; }

# answer TYPE F VALUE [ERROR]
answer() {
    jq -cn --arg t "$1" --arg f "$2" --argjson v "$3" --arg e "${4:-}" \
        '{type: $t, f: $f, value: $v} + (if $e == "" then {} else {error: $e} end)'
}

while IFS= read -r line; do
    f=$(printf %s "$line" | jq -r .f)
    k=$(printf %s "$line" | jq -c .key)
    v=$(printf %s "$line" | jq -c .value)
    key=$(b64 "faultline-exec/reg/$k")
    case $f in
        read) path=/v3/kv/range
              body=$(jq -cn --arg k "$key" '{key: $k}') ;;
        write) path=/v3/kv/put
               body=$(jq -cn --arg k "$key" --arg v "$(b64 "$v")" '{key: $k, value: $v}') ;;
        cas) path=/v3/kv/txn
             old=$(b64 "$(printf %s "$v" | jq -c '.[0]')")
             new=$(b64 "$(printf %s "$v" | jq -c '.[1]')")
             body=$(jq -cn --arg k "$key" --arg o "$old" --arg n "$new" \
                 '{compare: [{target: "VALUE", result: "EQUAL", key: $k, value: $o}],
                   success: [{requestPut: {key: $k, value: $n}}]}') ;;
        *) answer fail "$f" null "this client does only register"; continue ;;
    esac
    resp=$(curl -sS -m "$t" -X POST "$base$path" -d "$body" 2>&1)
    rc=$?
    if [ $rc -eq 7 ]; then
        # Connection refused: never sent, so it failed.
        sleep 0.05; answer fail "$f" null "connection refused"; continue
    fi
    if [ $rc -ne 0 ] || ! printf %s "$resp" | jq -e 'has("error") | not' >/dev/null 2>&1; then
        # Sent, outcome unknown: a read failed, a write is info.
        err=$(printf %s "$resp" | head -c 200)
        if [ "$f" = read ]; then answer fail "$f" null "$err"; else answer info "$f" null "$err"; fi
        continue
    fi
    case $f in
        read) val=$(printf %s "$resp" | jq -r '.kvs[0].value // empty')
              if [ -z "$val" ]; then answer ok read null
              else answer ok read "$(printf %s "$val" | base64 -d)"; fi ;;
        write) answer ok write "$v" ;;
        cas) if printf %s "$resp" | jq -e '.succeeded == true' >/dev/null; then
                 answer ok cas "$v"
             else
                 answer fail cas null "compare failed"
             fi ;;
    esac
done
