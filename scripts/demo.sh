#!/usr/bin/env bash
# Builds Herald and its plugins, starts a local webhook receiver, and sends an incident through
# the real path (config → plugin → libcurl engine → receiver, signed with Standard Webhooks).
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

secret="whsec_$(head -c 24 /dev/urandom | base64)"
export HERALD_DEMO_WEBHOOK_SECRET="$secret"

echo "==> starting the demo receiver on 127.0.0.1:8787"
python3 scripts/demo_receiver.py --port 8787 --secret "$secret" --count 1 &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/8787) 2>/dev/null && break
    sleep 0.1
done

echo "==> herald plugins list"
"$herald" plugins list --config "$config"
echo "==> herald config check"
"$herald" config check "$config"
echo "==> herald send"
"$herald" send --config "$config" --integration demo-webhook --severity critical \
    --title "Checkout p99 latency above 2 s" --body "eu-1 checkout-api: p99 2.31 s for 5 minutes"
wait "$receiver" || true
trap - EXIT
echo "==> done: the receiver above verified the signature and printed the incident."
