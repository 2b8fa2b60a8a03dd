#!/usr/bin/env bash
# Herald's benchmarks, release build, every figure next to a baseline measured in the same run.
#
#   scripts/bench.sh                                 # both of the below, one after the other
#   scripts/bench.sh deliver [COUNT] [CONCURRENCY]   # the delivery engine alone (20000 messages, 64 in flight)
#   scripts/bench.sh serve [ALERTS] [CONCURRENCY]    # herald serve end to end (scripts/bench-serve.sh:
#                                                    # 20000 alerts over 64 connections, paced 100/s, scheduler cost)
#   scripts/bench.sh [COUNT] [CONCURRENCY]           # = deliver (the original form)
#
# HERALD_SCRATCH=DIR builds in DIR instead of .build (plugins go to DIR/herald-plugins).
#
# deliver: starts nginx on loopback as the sink, measures the sink's own ceiling with wrk, then
# pushes N messages through the webhook plugin and Herald's libcurl engine to the same sink, and
# prints Herald's figures next to the ceiling, all measured in this one run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
mode=deliver
case "${1:-}" in
    deliver | serve) mode="$1"; shift ;;
    "") mode=all ;;
esac
scratch="${HERALD_SCRATCH:-$repo/.build}"

scripts/setup.sh --bench
swift build -c release --product herald --scratch-path "$scratch" >/dev/null
scripts/build-plugins.sh "$scratch/herald-plugins" >/dev/null
herald="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/herald"
export HERALD_BIN="$herald" HERALD_SCRATCH="$scratch"

if [[ "$mode" == serve ]]; then
    exec "$repo/scripts/bench-serve.sh" "$@"
fi
if [[ "$mode" == all ]]; then
    "$0" deliver
    echo
    exec "$repo/scripts/bench-serve.sh"
fi
count="${1:-20000}"
concurrency="${2:-64}"

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
plugin_dirs: [$scratch/herald-plugins]
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
