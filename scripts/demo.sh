#!/usr/bin/env bash
# Starts Herald with its demo config (SQLite store, three webhook "channels" aimed at a local
# receiver that prints every message) and posts one critical alert. Watch level 1 (ann) get
# notified, again after 30 s and 60 s, then level 2 (bob) after 2 minutes; open the
# "Acknowledge" link from any message in a browser to stop it. Ctrl-C ends the demo.
#
#   scripts/demo.sh            # runs until Ctrl-C
#   DEMO_SECONDS=20 scripts/demo.sh   # stops by itself (smoke test)
# Needs no external account.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/setup.sh
echo "==> building herald"
swift build --product herald
echo "==> building plugins"
scripts/build-plugins.sh
herald="$(swift build --show-bin-path)/herald"
config="$repo/demo/herald.yaml"
export HERALD_DEMO_WEBHOOK_SECRET="whsec_$(head -c 24 /dev/urandom | base64)"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
wait_for_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing is listening on 127.0.0.1:$1" >&2
    return 1
}

echo "==> starting the demo receiver on 127.0.0.1:8787 (it checks each signature and prints the message)"
python3 scripts/demo_receiver.py --port 8787 --secret "$HERALD_DEMO_WEBHOOK_SECRET" &
pids+=($!)
wait_for_port 8787
"$herald" config check "$config" >/dev/null
echo "==> starting herald serve on 127.0.0.1:8080"
"$herald" serve --config "$config" &
pids+=($!)
wait_for_port 8080

echo "==> posting a critical alert (the same call any monitoring system can make)"
curl -sS -X POST http://127.0.0.1:8080/api/v1/events \
    -H "Authorization: Bearer demo-ingest-token-0123456789" -H "Content-Type: application/json" \
    -d '{"event_action": "trigger", "dedup_key": "checkout-latency", "title": "Checkout p99 latency above 2 s",
         "description": "eu-1 checkout-api: p99 2.31 s for 5 minutes", "severity": "critical",
         "labels": {"service": "checkout", "region": "eu-1"}}'
echo
cat <<'TEXT'
==> watch the messages below. To see the incident:
    curl -s -H "Authorization: Bearer demo-admin-token-0123456789" http://127.0.0.1:8080/api/v1/incidents
    To stop the escalation, open an "Acknowledge" link from a message in a browser.
TEXT
if [[ -n "${DEMO_SECONDS:-}" ]]; then sleep "$DEMO_SECONDS"; else wait; fi
