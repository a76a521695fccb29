#!/usr/bin/env bash
# Opens a timeline.html in headless chromium (through chromedriver) N times
# and prints, per load, the browser's own timings: the first view drawn
# (performance.now() when the first canvas draw ends, from navigation start),
# the page's operation count, and a redraw after a 2x zoom. BENCHMARKS.md,
# "timeline.html of a 1,000,000-operation history".
#
#   scripts/timeline-bench.sh FILE.html [RUNS]     (RUNS: 3 by default)
set -euo pipefail
file=$(readlink -f "$1")
runs=${2:-3}
port=$((20000 + RANDOM % 20000))
chromedriver --port="$port" >/dev/null 2>&1 &
drv=$!
trap 'kill $drv 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/status" >/dev/null 2>&1 && break
    sleep 0.1
done
caps='{"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"args":["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--window-size=1400,900"]}}}}'
for i in $(seq "$runs"); do
    sid=$(curl -sf -X POST -H 'Content-Type: application/json' -d "$caps" \
        "http://127.0.0.1:$port/session" | sed -E 's/.*"sessionId":"([^"]+)".*/\1/')
    base="http://127.0.0.1:$port/session/$sid"
    curl -sf -X POST -H 'Content-Type: application/json' -d "{\"url\":\"file://$file\"}" "$base/url" >/dev/null
    js='var t=window.faultlineTimeline; return {first_view_ms: Math.round(t.firstViewMs), ops: t.ops, lanes: t.lanes, first_draw_ms: Math.round(t.lastDrawMs()), zoom_redraw_ms: Math.round(t.zoom(0.5)), phases: t.phasesMs}'
    out=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"script\":\"$js\",\"args\":[]}" "$base/execute/sync")
    echo "run $i: $out"
    curl -sf -X DELETE "$base" >/dev/null
done
