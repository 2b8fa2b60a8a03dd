#!/usr/bin/env bash
# End-to-end benchmark of `herald serve` (run through `scripts/bench.sh serve`, or as part of a
# plain `scripts/bench.sh`). Everything is measured in this one run and printed as a ratio to a
# baseline measured in the same run, on the same machine, at the same time:
#
#   sink ceiling    nginx on 127.0.0.1 (1 worker, logging `$msec` and the Idempotency-Key), loaded
#                   by wrk with a POST shaped like the webhook plugin's (same headers, same body size)
#   disk ceiling    single-row SQLite commits per second in WAL with synchronous=FULL, the store's
#                   settings: what one fsync per alert would allow
#   throughput      ALERTS alerts (distinct dedup keys) posted by wrk with CONCURRENCY connections to
#                   POST /api/v1/events: alerts/s accepted (202), notifications/s at the sink, and
#                   accept→deliver latency (client time of the 202 per incident id vs the sink's $msec)
#   paced           100 alerts/s for 10 s from one keep-alive connection: accept→deliver p50/p99,
#                   next to the round trip of the same paced POST straight to the sink
#   memory          herald's VmHWM after the load, next to its VmRSS when idle after start
#   scheduler       one idle pass (fireDueTimers; and the run loop's whole idle pass) with 1k and
#                   with 100k open incidents holding future timers (`herald bench-timers`)
#
#   scripts/bench.sh serve [ALERTS] [CONCURRENCY]      # defaults: 20000 alerts, 64 connections
#
# Herald's config: one webhook integration aimed at the sink, a rule whose only level notifies it
# as a group chat (one notification per alert, no repeat), the durable store (synchronous=FULL) in
# a temp dir on the same disk as /tmp, and server.tick_seconds 0.05.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
alerts="${1:-20000}"
concurrency="${2:-64}"
pace_rate=100
pace_seconds=10
scratch="${HERALD_SCRATCH:-$repo/.build}"

if [[ -z "${HERALD_BIN:-}" ]]; then
    scripts/setup.sh --bench
    swift build -c release --product herald --scratch-path "$scratch" >/dev/null
    scripts/build-plugins.sh "$scratch/herald-plugins" >/dev/null
    HERALD_BIN="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/herald"
fi
herald="$HERALD_BIN"
plugins="$scratch/herald-plugins"

work="$(mktemp -d "${TMPDIR:-/tmp}/herald-bench.XXXXXX")"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sink_port="$(free_port)"
api_port="$(free_port)"
token="bench-ingest-token-0123456789abcdef"
herald_pid=""
cleanup() {
    [[ -n "$herald_pid" ]] && kill "$herald_pid" 2>/dev/null && wait "$herald_pid" 2>/dev/null || true
    [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    if [[ -n "${HERALD_BENCH_KEEP:-}" ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The sink. `$msec` is the time the request is logged (ms resolution); the buffer keeps logging
# off the request path, as a production sink would.
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
    log_format bench '\$msec \$http_idempotency_key \$content_length';
    client_body_temp_path $work;
    client_body_buffer_size 64k;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$sink_port;
        location /hook    { access_log $work/sink.log bench buffer=256k flush=100ms; return 200 "ok"; }
        location /ceiling { access_log $work/ceiling.log bench buffer=256k flush=100ms; return 200 "ok"; }
    }
}
CONF
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf"

mkdir -p "$work/data"
cat >"$work/herald.yaml" <<CONF
plugin_dirs: [$plugins]
store: {path: $work/data/herald.sqlite}
server:
  listen: 127.0.0.1:$api_port
  public_url: http://127.0.0.1:$api_port
  link_secret: bench-only-link-secret-0123456789abcdef
  api_tokens: [{token: $token, role: ingest}]
  tick_seconds: 0.05
integrations:
  - name: sink
    plugin: webhook
    settings: {url: "http://127.0.0.1:$sink_port/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    egress: {allow_loopback: true}
services:
  - name: default
    rules:
      - name: bench
        levels:
          - group_chats: [sink]
            timeout_minutes: 0
CONF
"$herald" serve --config "$work/herald.yaml" >"$work/herald.out" 2>&1 &
herald_pid=$!
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
    kill -0 "$herald_pid" 2>/dev/null || { cat "$work/herald.out"; echo "herald serve did not start" >&2; exit 1; }
    sleep 0.05
done

# A client that posts at a fixed rate on one keep-alive connection and logs, per request, the
# incident id, the time the response arrived, and the round trip.
cat >"$work/paced.py" <<'PY'
import http.client, json, sys, time
port, path, token, rate, seconds, out, prefix = sys.argv[1:8]
rate, seconds = float(rate), float(seconds)
conn = http.client.HTTPConnection("127.0.0.1", int(port))
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
count = int(rate * seconds)
start = time.time() + 0.05
with open(out, "w") as log:
    for i in range(count):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        body = json.dumps({"event_action": "trigger", "dedup_key": f"{prefix}-{i}", "title": f"Paced alert {i}",
                           "severity": "critical", "labels": {"host": f"host-{i % 50}"}})
        sent = time.time()
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        data = response.read()
        got = time.time()
        incident = json.loads(data).get("incident_id", "?") if response.status == 202 else f"status-{response.status}"
        log.write(f"{incident} {got:.6f} {got - sent:.6f}\n")
PY

# Waits until the sink has logged every incident id of the given accept logs (or a timeout).
cat >"$work/wait.py" <<'PY'
import glob, sys, time
sink, pattern, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
wanted = set()
for name in glob.glob(pattern):
    for line in open(name):
        if line.startswith("inc_"):
            wanted.add(line.split()[0])
deadline = time.time() + timeout
while True:
    seen = set()
    try:
        for line in open(sink):
            parts = line.split()
            if len(parts) >= 2:
                seen.add(parts[1].split(":")[0])
    except FileNotFoundError:
        pass
    missing = len(wanted - seen)
    if missing == 0 or time.time() > deadline:
        print(missing)
        break
    time.sleep(0.2)
PY
rss() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

echo "==> warm-up: 20 alerts at 20/s (also gives the size of the plugin's POST for the sink ceiling)"
python3 "$work/paced.py" "$api_port" /api/v1/events "$token" 20 1 "$work/warmup.accept" warmup
python3 "$work/wait.py" "$work/sink.log" "$work/warmup.accept" 10 >/dev/null
sleep 0.3
idle_rss_kb="$(rss "$herald_pid" VmRSS)"
body_bytes="$(awk 'NR == 1 {print $3}' "$work/sink.log")"

# wrk's POST: the headers the webhook plugin sends and a body of the size it sent just now.
cat >"$work/ceiling.lua" <<LUA
wrk.method = "POST"
wrk.body = string.rep("x", $body_bytes)
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Herald-Webhook/1.0"
wrk.headers["Idempotency-Key"] = "inc_0123456789abcdefghjk:0123456789abcdef01234567"
wrk.headers["webhook-id"] = "inc_0123456789abcdefghjk:0123456789abcdef01234567"
wrk.headers["webhook-timestamp"] = "1700000000"
wrk.headers["webhook-signature"] = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
LUA
echo "==> sink ceiling: wrk -t1 -c$concurrency -d5s, POST of $body_bytes bytes with the plugin's headers, to nginx on 127.0.0.1:$sink_port"
ceiling="$(wrk -t1 -c"$concurrency" -d5s -s "$work/ceiling.lua" "http://127.0.0.1:$sink_port/ceiling" | awk '/Requests\/sec/ {print $2}')"

echo "==> disk ceiling: single-row commits/s, SQLite WAL + synchronous=FULL, in $work"
disk_commits="$(python3 - "$work/fsync.sqlite" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
n, start = 0, time.time()
while time.time() - start < 2:
    db.execute("BEGIN IMMEDIATE"); db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,)); db.execute("COMMIT")
    n += 1
print(n / (time.time() - start))
PY
)"

# The load: unique dedup keys; the 202's incident id and the client's clock at the response are
# logged. wrk calls request() once before the run to check the script (that request is never
# sent), so the first call is skipped. After ALERTS requests, the leftover ones go to a 404 path
# (nothing stored) until the last 202 arrives; then the script ends wrk (its thread:stop() does
# not end the run, and its -d timer would). So exactly ALERTS alerts are ingested. One wrk thread.
cat >"$work/alerts.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec; int clock_gettime(int, bench_timespec *); ]]
local ts = ffi.new("bench_timespec")
local function now() ffi.C.clock_gettime(0, ts); return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9 end
function init(args)
    limit, prefix = tonumber(args[1]), args[3]
    out = io.open(args[2], "w")
    calls, sent, accepted = 0, 0, 0
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. args[4]
end
function request()
    calls = calls + 1
    if calls == 1 then return wrk.format("GET", "/bench-verify") end
    if sent >= limit then return wrk.format("GET", "/bench-done") end
    sent = sent + 1
    if sent == 1 then out:write(string.format("start %.6f\n", now())) end
    local body = string.format('{"event_action":"trigger","dedup_key":"%s-%d","title":"Benchmark alert %d","severity":"critical","labels":{"host":"host-%d"}}',
                               prefix, sent, sent, sent % 50)
    return wrk.format("POST", "/api/v1/events", nil, body)
end
function response(status, headers, body)
    local t = now()
    if status == 202 then
        accepted = accepted + 1
        out:write(string.format("%s %.6f\n", string.match(body, '"incident_id":"([%w_]+)"') or "?", t))
    elseif status ~= 404 then
        accepted = accepted + 1
        out:write(string.format("status-%d %.6f\n", status, t))
    end
    if accepted >= limit then out:close(); os.exit(0) end
end
LUA
echo "==> throughput: $alerts alerts (distinct dedup keys), wrk -t1 -c$concurrency, to herald serve on 127.0.0.1:$api_port"
if [[ -n "${HERALD_BENCH_PERF:-}" ]]; then   # a profile of herald during the load: perf report -i FILE
    perf record -F 999 -g -o "$HERALD_BENCH_PERF" -p "$herald_pid" 2>/dev/null &
    perf_pid=$!
fi
cpu_snapshot() {   # per-thread CPU ticks of herald, and of nginx's worker: HERALD_BENCH_THREADS=1 prints them
    for t in /proc/"$herald_pid"/task/*; do echo "herald:$(cat "$t/comm" | tr ' ' _) $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')"; done
    for p in $(pgrep -P "$(cat "$work/nginx.pid")"); do echo "nginx-worker $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')"; done
}
[[ -z "${HERALD_BENCH_THREADS:-}" ]] || cpu_snapshot >"$work/cpu.before"
load_started=$(date +%s.%N)
timeout 600 wrk -t1 -c"$concurrency" -d600s --timeout 30s -s "$work/alerts.lua" "http://127.0.0.1:$api_port" \
    -- "$alerts" "$work/load.accept" load "$token" >"$work/wrk.out"
missing="$(python3 "$work/wait.py" "$work/sink.log" "$work/load.accept" 120)"
if [[ -n "${HERALD_BENCH_THREADS:-}" ]]; then
    cpu_snapshot >"$work/cpu.after"
    python3 - "$work/cpu.before" "$work/cpu.after" "$load_started" <<'PY'
import collections, os, sys, time
def load(name):
    totals = collections.Counter()
    for line in open(name):
        key, ticks = line.rsplit(" ", 1)
        totals[key] += int(ticks)
    return totals
before, after, wall = load(sys.argv[1]), load(sys.argv[2]), time.time() - float(sys.argv[3])
hz = os.sysconf("SC_CLK_TCK")
print(f"    CPU during the load ({wall:.1f} s wall, in cores):")
for key in sorted(after, key=lambda k: before[k] - after[k]):
    if after[key] - before[key] > 0:
        print(f"      {key:36} {(after[key] - before[key]) / hz / wall:5.2f}")
PY
fi
if [[ -n "${HERALD_BENCH_PERF:-}" ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
[[ "$missing" == 0 ]] || echo "warning: $missing notifications did not reach the sink within 120 s" >&2
peak_rss_kb="$(rss "$herald_pid" VmHWM)"

echo "==> paced baseline: $pace_rate POST/s for 5 s straight to the sink (one keep-alive connection)"
python3 "$work/paced.py" "$sink_port" /ceiling "$token" "$pace_rate" 5 "$work/sinkpaced.rtt" sinkpaced
echo "==> paced: $pace_rate alerts/s for $pace_seconds s to herald serve (one keep-alive connection)"
python3 "$work/paced.py" "$api_port" /api/v1/events "$token" "$pace_rate" "$pace_seconds" "$work/paced.accept" paced
missing_paced="$(python3 "$work/wait.py" "$work/sink.log" "$work/paced.accept" 30)"
[[ "$missing_paced" == 0 ]] || echo "warning: $missing_paced paced notifications did not reach the sink within 30 s" >&2
kill "$herald_pid" && wait "$herald_pid" 2>/dev/null || true
herald_pid=""
kill "$(cat "$work/nginx.pid")" 2>/dev/null || true   # flushes the access logs
sleep 0.3

echo "==> scheduler: idle passes with 1k and with 100k open incidents holding future timers"
timers_1k="$("$herald" bench-timers --store "$work/timers-1k/herald.sqlite" --incidents 1000)"
timers_100k="$("$herald" bench-timers --store "$work/timers-100k/herald.sqlite" --incidents 100000)"

python3 - "$work" "$ceiling" "$disk_commits" "$idle_rss_kb" "$peak_rss_kb" "$timers_1k" "$timers_100k" "$alerts" "$concurrency" <<'PY'
import glob, json, sys
work, ceiling, disk, idle_kb, peak_kb = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
t1k, t100k, alerts, concurrency = json.loads(sys.argv[6]), json.loads(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])

delivered = {}   # incident id -> first sink time ($msec: ms resolution, +0.5 ms to centre it)
for line in open(f"{work}/sink.log"):
    parts = line.split()
    if len(parts) >= 2:
        delivered.setdefault(parts[1].split(":")[0], float(parts[0]) + 0.0005)

def accepts(pattern):
    start, got, errors = [], {}, 0
    for name in glob.glob(pattern):
        for line in open(name):
            parts = line.split()
            if parts[0] == "start": start.append(float(parts[1]))
            elif parts[0].startswith("inc_"): got[parts[0]] = float(parts[1])
            else: errors += 1
    return (min(start) if start else None), got, errors

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")

start, load, errors = accepts(f"{work}/load.accept")
last_accept = max(load.values())
done = [delivered[i] for i in load if i in delivered]
lat = [(delivered[i] - t) * 1000 for i, t in load.items() if i in delivered]
accepted_per_s = len(load) / (last_accept - start)
delivered_per_s = len(done) / (max(done) - start)

paced = {}
for line in open(f"{work}/paced.accept"):
    inc, t, rtt = line.split()
    paced[inc] = (float(t), float(rtt) * 1000)
paced_lat = [(delivered[i] - t) * 1000 for i, (t, _) in paced.items() if i in delivered]
paced_rtt = [r for _, r in paced.values()]
sink_rtt = [float(line.split()[2]) * 1000 for line in open(f"{work}/sinkpaced.rtt")]

def ok(met): return "MET" if met else "MISSED"
print()
print("Herald end-to-end (herald serve, durable store: WAL + synchronous=FULL), all figures from this run")
print(f"  baselines   sink ceiling (wrk -c{concurrency} → nginx)     {ceiling:9.0f} req/s")
print(f"              disk: fsync'd single-row SQLite commits    {disk:9.0f} /s")
print(f"              sink round trip at 100/s                  p50 {pct(sink_rtt, .5):.2f} ms   p99 {pct(sink_rtt, .99):.2f} ms")
print(f"              herald idle RSS after start               {idle_kb / 1024:9.1f} MiB")
print(f"  throughput  {len(load)} alerts accepted (202) of {alerts}, {errors} errors; {len(done)} notified ({len(done) / max(1, len(load)):.1%})")
print(f"              accepted   {accepted_per_s:9.0f} alerts/s   = {accepted_per_s / ceiling:.3f} × sink ceiling   = {accepted_per_s / disk:.2f} × disk commits/s")
print(f"              delivered  {delivered_per_s:9.0f} notif/s    = {delivered_per_s / ceiling:.3f} × sink ceiling   "
      f"(target ≥ 0.25: {ok(delivered_per_s / ceiling >= 0.25)})")
print(f"              accept→deliver under load   p50 {pct(lat, .5):8.2f} ms   p99 {pct(lat, .99):8.2f} ms")
print(f"              peak RSS (VmHWM)  {peak_kb / 1024:.1f} MiB = {peak_kb / idle_kb:.2f} × idle RSS")
print(f"  paced       100 alerts/s for 10 s: {len(paced_lat)} of {len(paced)} notified")
print(f"              accept→deliver   p50 {pct(paced_lat, .5):.2f} ms   p99 {pct(paced_lat, .99):.2f} ms   "
      f"= {pct(paced_lat, .99) / pct(sink_rtt, .99):.1f} × sink round trip p99   (target p99 < 5 ms: {ok(pct(paced_lat, .99) < 5)})")
print(f"              API accept round trip (POST → 202, durable)   p50 {pct(paced_rtt, .5):.2f} ms   p99 {pct(paced_rtt, .99):.2f} ms"
      f"   = {pct(paced_rtt, .99) / pct(sink_rtt, .99):.1f} × sink round trip p99")
r_t = t100k["timer_pass_p50_us"] / t1k["timer_pass_p50_us"]
r_p = t100k["idle_pass_p50_us"] / t1k["idle_pass_p50_us"]
print(f"  scheduler   fireDueTimers, nothing due:   1k open {t1k['timer_pass_p50_us']:7.1f} µs   100k open {t100k['timer_pass_p50_us']:7.1f} µs"
      f"   = {r_t:.2f} × (target O(due), ≈ 1: {ok(r_t < 1.5)})")
print(f"              whole idle loop pass:         1k open {t1k['idle_pass_p50_us']:7.1f} µs   100k open {t100k['idle_pass_p50_us']:7.1f} µs"
      f"   = {r_p:.2f} ×")
print(f"              ({t100k['incidents']} open incidents, {2 * t100k['incidents']} future timers filled in {t100k['fill_seconds']:.1f} s; p50 of {t100k['passes']} passes)")
print("  note: the sink stamps deliveries with $msec (1 ms resolution; centred, ±0.5 ms); client and sink share the clock")
PY
