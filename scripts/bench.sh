#!/usr/bin/env bash
# Delivery benchmark. Starts nginx on loopback as the sink, measures the sink's own ceiling with
# wrk, then pushes N messages through the webhook plugin and Herald's libcurl engine to the same
# sink, and prints Herald's figures next to the ceiling, all measured in this one run.
#
#   scripts/bench.sh [COUNT] [CONCURRENCY]      # defaults: 20000 messages, 64 in flight
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
count="${1:-20000}"
concurrency="${2:-64}"

scripts/setup.sh --bench
swift build -c release --product herald >/dev/null
scripts/build-plugins.sh >/dev/null
herald="$(swift build -c release --show-bin-path)/herald"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "ok"; }
    }
}
CONF
/usr/sbin/nginx -p "$work" -c "$work/nginx.conf"
trap 'kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT

# A body the size of a typical webhook payload, so both sides move the same bytes.
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 1400)
wrk.headers["Content-Type"] = "application/json"
LUA
echo "==> sink ceiling: wrk -t1 -c$concurrency -d5s against nginx on 127.0.0.1:$port"
ceiling="$(wrk -t1 -c"$concurrency" -d5s -s "$work/post.lua" "http://127.0.0.1:$port/hook" | awk '/Requests\/sec/ {print $2}')"

cat >"$work/herald.yaml" <<CONF
plugin_dirs: [$repo/.build/herald-plugins]
integrations:
  - name: bench
    plugin: webhook
    settings: {url: "http://127.0.0.1:$port/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    egress: {allow_loopback: true}
CONF
echo "==> herald: $count messages through webhook → engine → nginx, $concurrency in flight"
figures="$("$herald" bench-deliver --config "$work/herald.yaml" --integration bench --count "$count" --concurrency "$concurrency")"

python3 - "$ceiling" "$figures" <<'PY'
import json, sys
ceiling, f = float(sys.argv[1]), json.loads(sys.argv[2])
print(f"sink ceiling (wrk)     {ceiling:10.0f} req/s")
print(f"herald                 {f['per_second']:10.0f} msg/s   ratio to ceiling {f['per_second'] / ceiling:.2f}  (target >= 0.5)")
print(f"delivered              {f['delivered']:10d} of {f['messages']}")
print(f"latency                p50 {f['p50_ms']:.2f} ms   p99 {f['p99_ms']:.2f} ms")
print(f"plugins load + create  {f['load_ms']:10.1f} ms  ({f['plugins']} plugins, {f['integrations']} integrations; target < 50 ms)")
print(f"RSS                    idle {f['idle_rss_mb']:.1f} MiB (target < 40)   peak {f['peak_rss_mb']:.1f} MiB")
PY
