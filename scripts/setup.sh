#!/usr/bin/env bash
# Installs what Herald needs to build and test on a fresh Debian machine: the C libraries the
# host links (libcurl, libffi, SQLite), Python 3 for the mock providers, Chromium for the headless
# browser test of the incident page, and, with --bench, nginx and wrk for the benchmark.
# Idempotent and quick when everything is already there.
#
#   scripts/setup.sh            # build + test dependencies
#   scripts/setup.sh --bench    # also nginx and wrk
set -euo pipefail

packages=()
need() { # need <package> <file that proves it is installed>
    [[ -e "$2" ]] || packages+=("$1")
}
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
need libcurl4-openssl-dev "/usr/include/$multiarch/curl/curl.h"
need libffi-dev "/usr/include/$multiarch/ffi.h"
need libsqlite3-dev /usr/include/sqlite3.h
command -v python3 >/dev/null || packages+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
need openssl /usr/bin/openssl
need chromium /usr/bin/chromium
if [[ "${1:-}" == "--bench" ]]; then
    need nginx-light /usr/sbin/nginx
    need wrk /usr/bin/wrk
fi

if ((${#packages[@]})); then
    echo "setup: installing ${packages[*]}"
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
