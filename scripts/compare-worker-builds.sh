#!/usr/bin/env bash
# Warm throughput of two worker builds, side by side in one run: for each of ROUNDS rounds, wrk against the bare
# Hummingbird route (from build A), then worker A, then worker B (each /run/noop, 50 connections, DURATION).
# Alternating rounds keep host noise out of the comparison; medians are reported.
# Usage: scripts/compare-worker-builds.sh BINARY_A BINARY_B [ROUNDS=7] [DURATION=4s]
# (copy a release `swiftlet` binary aside before changing the code to get BINARY_A)
set -euo pipefail
A=${1:?binary A}; B=${2:?binary B}; ROUNDS=${3:-7}; DURATION=${4:-4s}
command -v wrk >/dev/null || { echo "wrk not found: install it (scripts/install-system-packages.sh)"; exit 1; }
WORK=$(mktemp -d)
BASE_PORT=18091; PORT_A=18092; PORT_B=18093
cleanup() {
    "$A" worker down --dir "$WORK/a" >/dev/null 2>&1 || true
    "$B" worker down --dir "$WORK/b" >/dev/null 2>&1 || true
    [ -n "${BASE_PID:-}" ] && kill "$BASE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
"$A" baseline-server --port $BASE_PORT >"$WORK/baseline.log" 2>&1 &
BASE_PID=$!
"$A" worker up --dir "$WORK/a" --port $PORT_A -d >/dev/null
"$B" worker up --dir "$WORK/b" --port $PORT_B -d >/dev/null
sleep 0.5
for port in $BASE_PORT $PORT_A $PORT_B; do wrk -t2 -c50 -d2s "http://127.0.0.1:$port/run/noop" >/dev/null; done
rps() { wrk -t2 -c50 -d"$DURATION" "http://127.0.0.1:$1/run/noop" | awk '/Requests\/sec/ {print $2}'; }
printf "%-6s %10s %10s %8s %10s %8s\n" round bare "A" "A/bare" "B" "B/bare"
for i in $(seq 1 "$ROUNDS"); do
    bare=$(rps $BASE_PORT); a=$(rps $PORT_A); b=$(rps $PORT_B)
    echo "$i $bare $a $b" | awk '{printf "%-6s %10.0f %10.0f %7.1f%% %10.0f %7.1f%%\n", $1, $2, $3, 100*$3/$2, $4, 100*$4/$2}'
done | tee "$WORK/rounds.txt"
median() { sort -n | awk '{ a[NR]=$1 } END { if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
col() { awk -v c="$1" '{ v=$c; gsub("%", "", v); print v }' "$WORK/rounds.txt" | median; }
echo "median  bare $(col 2) req/s | A $(col 3) req/s, $(col 4) % of bare | B $(col 5) req/s, $(col 6) % of bare"
