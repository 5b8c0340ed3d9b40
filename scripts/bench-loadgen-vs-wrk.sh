#!/usr/bin/env bash
# Is the load generator the bottleneck? Serves a static file with nginx on a loopback port (own temp config,
# nothing system-wide touched) and measures it, in the same run, with wrk and with `swiftlet bench run`:
#  1. like for like: closed loop, zero think time, the same number of connections (CONNECTIONS, default 1 16 50);
#     wrk and the generator alternate, REPEATS times; the table shows medians of p50, p99 and req/s, and the
#     generator's p50 difference to wrk's (goal: within 10 %).
#  2. open loop at RATE req/s (constant): achieved rate, send lag (sent - intended) and latency from the intended
#     time (coordinated-omission correct), REPEATS times.
# With PIN=1 (the default on 2+ cores) nginx runs on CPU 1 and the load generators on CPU 0, one at a time: without
# pinning the scheduler sometimes puts client and server on one core and sometimes not, which changes loopback
# latency and throughput by 2-3x between runs. Pinned, the generator gets one event loop (SWIFTLET_LOADGEN_THREADS).
# Needs nginx, wrk, python3, taskset; builds swiftlet in release mode unless SWIFTLET=path/to/swiftlet is given.
#   scripts/bench-loadgen-vs-wrk.sh [CLOSED_SECONDS] [REPEATS]
#   env: CONNECTIONS ("1 16 50"), RATE (15000), OPEN_SECONDS (20), WRK_THREADS (1), PIN (1 on 2+ cores),
#        SWIFTLET_LOADGEN_THREADS (1 when pinned), PORT (18089), SWIFTLET, KEEP_DB
set -euo pipefail
cd "$(dirname "$0")/.."
CLOSED_SECONDS="${1:-10}"
REPEATS="${2:-3}"
CONNECTIONS="${CONNECTIONS:-1 16 50}"
RATE="${RATE:-15000}"
OPEN_SECONDS="${OPEN_SECONDS:-20}"
WRK_THREADS="${WRK_THREADS:-1}"
PORT="${PORT:-18089}"
if [ "$(nproc)" -ge 2 ]; then PIN="${PIN:-1}"; else PIN=0; fi
CLIENT_CPU=(); SERVER_CPU=()
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "error: taskset not found on PATH (apt-get install util-linux), or set PIN=0" >&2; exit 1; }
  CLIENT_CPU=(taskset -c 0); SERVER_CPU=(taskset -c 1)
  export SWIFTLET_LOADGEN_THREADS="${SWIFTLET_LOADGEN_THREADS:-1}"
fi
PYTHON=/usr/bin/python3; [ -x "$PYTHON" ] || PYTHON=python3
for tool in nginx wrk curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found on PATH (apt-get install $tool)" >&2; exit 1; }
done
case "$REPEATS" in ''|*[!0-9]*|0) echo "error: REPEATS '$REPEATS': expected a positive integer" >&2; exit 1;; esac
case "$CLOSED_SECONDS" in ''|*[!0-9]*|0) echo "error: CLOSED_SECONDS '$CLOSED_SECONDS': expected a positive integer" >&2; exit 1;; esac

if [ -z "${SWIFTLET:-}" ]; then
  swift build -c release --product swiftlet --scratch-path .build-release >&2
  SWIFTLET=".build-release/release/swiftlet"
fi
[ -x "$SWIFTLET" ] || { echo "error: SWIFTLET '$SWIFTLET' is not an executable" >&2; exit 1; }

TMP="$(mktemp -d)"
cleanup() {
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
  if [ -n "${KEEP_DB:-}" ]; then cp "$TMP/results.sqlite" "$KEEP_DB" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/www/run" "$TMP/logs"
chmod 755 "$TMP" "$TMP/www" "$TMP/www/run"   # nginx workers may run as an unprivileged user
printf 'hello from nginx\n' > "$TMP/www/run/static"
cat > "$TMP/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/body;
  proxy_temp_path $TMP/proxy;
  fastcgi_temp_path $TMP/fastcgi;
  uwsgi_temp_path $TMP/uwsgi;
  scgi_temp_path $TMP/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$PORT;
    root $TMP/www;
  }
}
CONF
"${SERVER_CPU[@]}" nginx -p "$TMP" -c "$TMP/nginx.conf"
sleep 0.5
URL="http://127.0.0.1:$PORT"
curl -fsS "$URL/run/static" >/dev/null 2>&1 || { echo "error: nginx did not start (see $TMP/logs/error.log)" >&2; exit 1; }

RESULTS="$TMP/results.tsv"   # tool, shape, repeat, p50 ms, p99 ms, req/s, extra
: > "$RESULTS"
to_ms() {  # wrk prints 85.00us / 1.20ms / 1.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.4f", n }'
}
run_wrk() {  # connections repeat
  local out threads=$WRK_THREADS
  [ "$threads" -gt "$1" ] && threads=$1
  out="$("${CLIENT_CPU[@]}" wrk -t"$threads" -c"$1" -d"${CLOSED_SECONDS}s" --latency "$URL/run/static")"
  local p50 p99 rps
  p50="$(to_ms "$(echo "$out" | awk '$1=="50%"{print $2}')")"
  p99="$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")"
  rps="$(echo "$out" | awk '$1=="Requests/sec:"{print $2}')"
  printf 'wrk\tc%s\t%s\t%s\t%s\t%s\t-\n' "$1" "$2" "$p50" "$p99" "$rps" >> "$RESULTS"
  printf '  wrk        c=%-3s p50 %8.3f ms  p99 %8.3f ms  %9.0f req/s\n' "$1" "$p50" "$p99" "$rps"
}
run_generator() {  # workload shape repeat
  local out run_id cpu
  out="$("${CLIENT_CPU[@]}" /usr/bin/time -f 'cpu %U %S' "$SWIFTLET" bench run "$1" --target "$URL" --db "$TMP/results.sqlite" \
    --no-progress 2>&1)" || { echo "$out" >&2; exit 1; }
  run_id="$(echo "$out" | awk '$1=="run"{sub(":", "", $2); print $2; exit}')"
  cpu="$(echo "$out" | awk '$1=="cpu"{printf "%.1f", $2 + $3}')"
  "$PYTHON" - "$TMP/results.sqlite" "$run_id" "$2" "$3" "$cpu" "$RESULTS" <<'PY'
import sqlite3, sys
path, run_id, shape, repeat, cpu, results = sys.argv[1:7]
db = sqlite3.connect(path)
rows = db.execute("SELECT latency_ms, status, sent_ns - intended_ns, intended_ns FROM requests WHERE run_id=? AND warmup=0",
                  (int(run_id),)).fetchall()
ok = sorted(r[0] for r in rows if r[1] == 200)
lag = sorted(r[2] for r in rows)
def pct(values, p): return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")
span = (max(r[3] for r in rows) - min(r[3] for r in rows)) / 1e9 if rows else float("nan")
rps = len(rows) / span if span else float("nan")
errors = len(rows) - len(ok)
extra = f"lag_p50_us={pct(lag, 50) / 1e3:.0f},lag_p99_us={pct(lag, 99) / 1e3:.0f},errors={errors},cpu_s={cpu}"
with open(results, "a") as out:
    out.write(f"swiftlet\t{shape}\t{repeat}\t{pct(ok, 50):.4f}\t{pct(ok, 99):.4f}\t{rps:.0f}\t{extra}\n")
label = f"c={shape[1:]:<3}" if shape.startswith("c") else f"open {shape[4:]}/s"
print(f"  swiftlet   {label} p50 {pct(ok, 50):8.3f} ms  p99 {pct(ok, 99):8.3f} ms  {rps:9.0f} req/s"
      f"  errors {errors}  send lag p50/p99 {pct(lag, 50) / 1e3:.0f}/{pct(lag, 99) / 1e3:.0f} us  cpu {cpu} s")
PY
}

for connections in $CONNECTIONS; do
  cat > "$TMP/closed-$connections.yaml" <<YAML
name: loadgen-nginx-closed-$connections
seed: 1
duration: $CLOSED_SECONDS
warmup: 1
arrival: closed
clients: $connections
think: 0
targets:
  - lambda: static
    method: GET
YAML
done
OPEN="$TMP/open.yaml"
sed -e "s/^rate: .*/rate: $RATE/" -e "s/^duration: .*/duration: $OPEN_SECONDS/" Workloads/loadgen-nginx.yaml > "$OPEN"

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
if [ "$PIN" = 1 ]; then PINNING="nginx on CPU 1, wrk and swiftlet on CPU 0"; else PINNING="no CPU pinning"; fi
echo "swiftlet: $SWIFTLET (event loops: ${SWIFTLET_LOADGEN_THREADS:-one per core}); wrk threads: $WRK_THREADS; nginx: 1 worker process; $PINNING"
for repeat in $(seq 1 "$REPEATS"); do
  echo "== repeat $repeat/$REPEATS: closed loop, zero think time, ${CLOSED_SECONDS}s each (load average $(cut -d' ' -f1-3 /proc/loadavg)) =="
  for connections in $CONNECTIONS; do
    run_wrk "$connections" "$repeat"
    run_generator "$TMP/closed-$connections.yaml" "c$connections" "$repeat"
  done
  echo "== repeat $repeat/$REPEATS: open loop, constant $RATE req/s, ${OPEN_SECONDS}s (load average $(cut -d' ' -f1-3 /proc/loadavg)) =="
  run_generator "$OPEN" "open$RATE" "$repeat"
done

"$PYTHON" - "$RESULTS" "$RATE" <<'PY'
import statistics, sys
from collections import defaultdict
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
rate = float(sys.argv[2])
by = defaultdict(list)
for tool, shape, _, p50, p99, rps, extra in rows:
    by[(tool, shape)].append((float(p50), float(p99), float(rps), extra))
def med(values): return statistics.median(values)
shapes = sorted({shape for _, shape in by if shape.startswith("c")}, key=lambda s: int(s[1:]))
repeats = max(len(v) for v in by.values())
print(f"\n== medians of {repeats} repeats ==")
print(f"{'conns':>5} | {'wrk p50':>9} {'p99':>9} {'req/s':>8} | {'swiftlet p50':>12} {'p99':>9} {'req/s':>8} | {'p50 diff':>8}")
met = True
for shape in shapes:
    w, s = by.get(("wrk", shape)), by.get(("swiftlet", shape))
    if not w or not s: continue
    wp50, wp99, wrps = (med([r[i] for r in w]) for i in range(3))
    sp50, sp99, srps = (med([r[i] for r in s]) for i in range(3))
    diff = 100 * (sp50 - wp50) / wp50
    met = met and abs(diff) <= 10
    print(f"{shape[1:]:>5} | {wp50:7.3f}ms {wp99:7.3f}ms {wrps:8.0f} | {sp50:10.3f}ms {sp99:7.3f}ms {srps:8.0f} | {diff:+7.1f}%")
for (tool, shape), values in sorted(by.items()):
    if not shape.startswith("open"): continue
    p50, p99, rps = (med([r[i] for r in values]) for i in range(3))
    lag50 = med([float(dict(kv.split("=") for kv in r[3].split(","))["lag_p50_us"]) for r in values])
    lag99 = med([float(dict(kv.split("=") for kv in r[3].split(","))["lag_p99_us"]) for r in values])
    worst99 = max(r[1] for r in values)
    print(f"open loop {rate:.0f} req/s: achieved {rps:.0f} req/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms "
          f"(worst run {worst99:.3f} ms), send lag p50 {lag50:.0f} us, p99 {lag99:.0f} us")
    met = met and rps >= 0.99 * rate
print("goal (p50 within 10 % of wrk at every connection count; open loop reaches the rate):", "met" if met else "NOT met")
PY
