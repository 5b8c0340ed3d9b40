#!/usr/bin/env bash
# Is the load generator the bottleneck? Serves a static file with nginx on a loopback port (own temp config,
# nothing system-wide touched), measures it with wrk, then with `swiftlet bench run` (open loop, constant 15k req/s),
# and prints both p50s and rates. Needs nginx, wrk, python3; builds swiftlet in release mode.
#   scripts/bench-loadgen-vs-wrk.sh [RATE] [SECONDS]        (env: PORT, SWIFTLET)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-15000}"
SECONDS_RUN="${2:-20}"
PORT="${PORT:-18089}"
PYTHON=/usr/bin/python3; [ -x "$PYTHON" ] || PYTHON=python3
for tool in nginx wrk; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found on PATH (apt-get install $tool)" >&2; exit 1; }
done

# SWIFTLET=/path/to/release/swiftlet skips the build.
if [ -z "${SWIFTLET:-}" ]; then
  swift build -c release --product swiftlet >&2
  SWIFTLET="$(swift build -c release --show-bin-path)/swiftlet"
fi

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
nginx -p "$TMP" -c "$TMP/nginx.conf"
sleep 0.5
URL="http://127.0.0.1:$PORT"
curl -fsS "$URL/run/static" >/dev/null 2>&1 || { echo "error: nginx did not start (see $TMP/logs/error.log)" >&2; exit 1; }

# wrk is closed loop: -c1 gives the round-trip floor, -c16 saturates nginx. Override with WRK_CONNECTIONS.
WRK_P50S=""
for connections in ${WRK_CONNECTIONS:-1 16}; do
  echo "== wrk: 1 thread, $connections connection(s), ${SECONDS_RUN}s =="
  WRK_OUT="$(wrk -t1 -c"$connections" -d"${SECONDS_RUN}s" --latency "$URL/run/static")"
  echo "$WRK_OUT" | grep -E "Requests/sec|50%|99%"
  WRK_P50S="$WRK_P50S c$connections=$(echo "$WRK_OUT" | awk '$1=="50%"{print $2}')"
done

WORKLOAD="$TMP/loadgen.yaml"
sed -e "s/^rate: .*/rate: $RATE/" -e "s/^duration: .*/duration: $SECONDS_RUN/" Workloads/loadgen-nginx.yaml > "$WORKLOAD"
echo "== swiftlet bench run: open loop, constant $RATE req/s, ${SECONDS_RUN}s =="
"$SWIFTLET" bench run "$WORKLOAD" --target "$URL" --db "$TMP/results.sqlite" --no-progress > "$TMP/run.txt"
"$PYTHON" - "$TMP/results.sqlite" $WRK_P50S <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run_id, started, ended = db.execute("SELECT id, started, ended FROM runs ORDER BY id DESC LIMIT 1").fetchone()
rows = db.execute("SELECT latency_ms, status, sent_ns - intended_ns FROM requests WHERE run_id=? AND warmup=0", (run_id,)).fetchall()
ok = sorted(r[0] for r in rows if r[1] == 200)
lag = sorted(r[2] for r in rows)
def pct(values, p): return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")
span = db.execute("SELECT (MAX(intended_ns) - MIN(intended_ns)) / 1e9 FROM requests WHERE run_id=? AND warmup=0", (run_id,)).fetchone()[0]
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def to_ms(text):
    for suffix in ("us", "ms", "s"):
        if text.endswith(suffix):
            try: return float(text[:-len(suffix)]) * unit[suffix]
            except ValueError: return float("nan")
    return float("nan")
print(f"requests {len(rows)}, ok {len(ok)}, achieved {len(rows) / span:.0f} req/s")
print(f"send lag (sent - intended): p50 {pct(lag, 50) / 1e3:.0f} us, p99 {pct(lag, 99) / 1e3:.0f} us")
print(f"loadgen p50 {pct(ok, 50):.3f} ms, p99 {pct(ok, 99):.3f} ms")
for item in sys.argv[2:]:
    label, value = item.split("=", 1)
    wrk_ms = to_ms(value)
    print(f"wrk -{label} p50 {wrk_ms:.3f} ms; loadgen p50 differs by {100 * (pct(ok, 50) - wrk_ms) / wrk_ms:+.1f} %")
PY
