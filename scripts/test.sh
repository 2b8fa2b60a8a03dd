#!/usr/bin/env bash
# Runs every Herald test: installs what is missing, prepares the test virtualenv (vendor SDKs
# from PyPI that independently verify signatures), then `swift test`, which builds the plugins
# with scripts/build-plugins.sh and the fixture plugins with cc.
#
#   scripts/test.sh [swift test arguments, e.g. --filter DeliveryTests]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/setup.sh

venv="$repo/.build/test-venv"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$repo/Tests/mocks/requirements.txt" "$venv/requirements.txt"; then
    echo "test: preparing $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo/Tests/mocks/requirements.txt"
    cp "$repo/Tests/mocks/requirements.txt" "$venv/requirements.txt"
fi
export HERALD_PYTHON="$venv/bin/python"

swift build --build-tests
# Every plugin, built once here rather than inside the test process (see BuiltPlugins).
export HERALD_TEST_PLUGIN_DIR="$repo/.build/test-plugins"
rm -rf "$HERALD_TEST_PLUGIN_DIR"
scripts/build-plugins.sh "$HERALD_TEST_PLUGIN_DIR" >/dev/null
if (($# > 0)); then
    swift test --skip-build "$@"
else
    # The suites that start whole servers and browsers (herald serve under SIGKILL, bursts of
    # alerts, Chromium) run after the rest: beside them, on a 2-core machine, the engine's
    # timing-bound tests would be measuring CPU starvation instead of Herald.
    heavy="ReliabilityTests|BrowserTests"
    swift test --skip-build --skip "$heavy"
    swift test --skip-build --filter "$heavy"
fi
