#!/usr/bin/env bash
# Worker performance, measured side by side in one run from a release build:
#  1. warm `noop` throughput and latency through the worker vs a bare Hummingbird route in the same binary
#     (wrk, 50 connections, RUNS alternating runs of DURATION each; medians reported);
#  2. cold-start latency of an isolated Python noop (reuse-sandbox: false, so every call starts a sandbox).
# Usage: scripts/bench-worker.sh [RUNS=3] [DURATION=10s] [COLD_CALLS=200]
# COLD_ONLY=1 skips the wrk part and repeats the cold-start measurement RUNS times (medians reported).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DURATION=${2:-10s}
COLD_CALLS=${3:-200}
COLD_ONLY=${COLD_ONLY:-0}
if [ "$COLD_ONLY" != 1 ]; then
    command -v wrk >/dev/null || { echo "wrk not found: install it (scripts/install-system-packages.sh)"; exit 1; }
fi
SCRATCH=${SCRATCH:-.build}   # build directory (e.g. SCRATCH=.build-release to keep a separate release build)
swift build -c release --product swiftlet --scratch-path "$SCRATCH" >/dev/null
BIN=$PWD/$SCRATCH/release/swiftlet
WORK=$(mktemp -d)
BASE_PORT=18081
WORKER_PORT=18082
cleanup() {
    "$BIN" worker down --dir "$WORK/worker" >/dev/null 2>&1 || true
    [ -n "${BASE_PID:-}" ] && kill "$BASE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$COLD_ONLY" != 1 ]; then
    "$BIN" baseline-server --port $BASE_PORT >"$WORK/baseline.log" 2>&1 &
    BASE_PID=$!
fi
mkdir -p "$WORK/worker/registry/pynoop"
printf 'def f(event):\n    return None\n' >"$WORK/worker/registry/pynoop/f.py"
printf 'reuse-sandbox: false\n' >"$WORK/worker/registry/pynoop/ol.yaml"
"$BIN" worker up --dir "$WORK/worker" --port $WORKER_PORT -d >/dev/null
sleep 0.5
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
echo "worker: $(curl -s http://127.0.0.1:$WORKER_PORT/status)"
median() { sort -n | awk '{ a[NR]=$1 } END { if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

if [ "$COLD_ONLY" != 1 ]; then
    # Warm the worker's noop sandboxes.
    wrk -t2 -c50 -d2s http://127.0.0.1:$WORKER_PORT/run/noop >/dev/null

    parse() { # wrk output -> "rps p50_ms p99_ms"
        awk '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        /Requests\/sec/ { rps=$2 }
        /^ +50%/ { p50=ms($2) }
        /^ +99%/ { p99=ms($2) }
        END { printf "%s %.3f %.3f\n", rps, p50, p99 }'
    }
    : >"$WORK/base.txt"; : >"$WORK/worker.txt"
    for i in $(seq 1 "$RUNS"); do
        wrk -t2 -c50 -d"$DURATION" --latency http://127.0.0.1:$BASE_PORT/run/noop | parse >>"$WORK/base.txt"
        wrk -t2 -c50 -d"$DURATION" --latency http://127.0.0.1:$WORKER_PORT/run/noop | parse >>"$WORK/worker.txt"
    done
    b_rps=$(cut -d' ' -f1 "$WORK/base.txt" | median); w_rps=$(cut -d' ' -f1 "$WORK/worker.txt" | median)
    b_p50=$(cut -d' ' -f2 "$WORK/base.txt" | median); w_p50=$(cut -d' ' -f2 "$WORK/worker.txt" | median)
    b_p99=$(cut -d' ' -f3 "$WORK/base.txt" | median); w_p99=$(cut -d' ' -f3 "$WORK/worker.txt" | median)
    echo
    echo "warm noop, wrk -t2 -c50 -d$DURATION, median of $RUNS runs"
    printf "%-28s %12s %10s %10s\n" "" "req/s" "p50 ms" "p99 ms"
    printf "%-28s %12s %10s %10s\n" "bare Hummingbird route" "$b_rps" "$b_p50" "$b_p99"
    printf "%-28s %12s %10s %10s\n" "worker /run/noop (sandbox)" "$w_rps" "$w_p50" "$w_p99"
    awk -v w="$w_rps" -v b="$b_rps" 'BEGIN { printf "worker / bare throughput: %.1f %%\n", 100*w/b }'
fi

cold() { # prints "total_p50 total_p99 init_p50 init_p99" for COLD_CALLS sequential cold calls
    /usr/bin/python3 - "$WORKER_PORT" "$COLD_CALLS" <<'PY'
import http.client, sys, time
port, calls = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
total, init = [], []
for i in range(calls):
    t0 = time.perf_counter()
    conn.request("POST", "/run/pynoop", body=b"")
    r = conn.getresponse(); r.read()
    total.append((time.perf_counter() - t0) * 1000)
    assert r.status == 200 and r.getheader("X-Swiftlet-Start") == "cold", (r.status, r.getheader("X-Swiftlet-Start"))
    init.append(float(r.getheader("X-Swiftlet-Init-Ms")))
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"{pct(total,50):.2f} {pct(total,99):.2f} {pct(init,50):.2f} {pct(init,99):.2f}")
PY
}
COLD_RUNS=1
[ "$COLD_ONLY" = 1 ] && COLD_RUNS=$RUNS
echo
echo "cold start: isolated Python noop, reuse-sandbox false, $COLD_CALLS sequential calls, median of $COLD_RUNS run(s)"
: >"$WORK/cold.txt"
for i in $(seq 1 "$COLD_RUNS"); do
    line=$(cold)
    echo "run $i: request p50/p99 init p50/p99 ms: $line (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$line" >>"$WORK/cold.txt"
done
printf "%-34s %10s %10s\n" "" "p50 ms" "p99 ms"
printf "%-34s %10s %10s\n" "request latency (client)" "$(cut -d' ' -f1 "$WORK/cold.txt" | median)" "$(cut -d' ' -f2 "$WORK/cold.txt" | median)"
printf "%-34s %10s %10s\n" "sandbox init (X-Swiftlet-Init-Ms)" "$(cut -d' ' -f3 "$WORK/cold.txt" | median)" "$(cut -d' ' -f4 "$WORK/cold.txt" | median)"
