#!/usr/bin/env bash
# Idempotent setup on a fresh Debian machine: the venv and Python packages, the player page's npm
# packages (hls.js, dashjs), the compiled TS writer (a C compiler if missing), and (with --test)
# the system tools the test suite uses: ffmpeg and Chromium; with --bench, wrk and the C reference
# (nginx-vod-module, scripts/build_nginx_vod.sh) too. Called by
# `make run`, `make test` and `make bench`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
want_bench=0
for argument in "$@"; do
    case "$argument" in
        --test) want_test=1 ;;
        --bench) want_test=1; want_bench=1 ;;  # the benchmarks use the test tools, and wrk
    esac
done

apt_install() {  # apt_install PACKAGE... : install what is missing, as root or through sudo
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3-venv python3-pip
fi
if [ "$want_test" = 1 ] && ! { command -v ffmpeg && command -v ffprobe; } >/dev/null; then
    apt_install ffmpeg
fi
if [ "$want_bench" = 1 ] && ! command -v wrk >/dev/null; then
    apt_install wrk
fi
if [ "$want_bench" = 1 ] && [ ! -x bench/nginx-vod/sbin/nginx ]; then  # the C reference's build tools
    if ! { command -v make && command -v curl && [ -f /usr/include/zlib.h ] &&
           [ -f /usr/include/openssl/evp.h ] && [ -d /usr/include/libxml2 ]; } >/dev/null; then
        apt_install gcc libc6-dev make curl ca-certificates zlib1g-dev libssl-dev libxml2-dev
    fi
fi
if [ "$want_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    apt_install chromium  # Debian's build; Playwright drives it (no browser download of its own)
fi
if ! { command -v node && command -v npm; } >/dev/null; then
    apt_install nodejs npm
fi
# The player libraries, from the npm registry at setup time (never from a CDN at run time)
if [ ! -f player/node_modules/.package-lock.json ] || [ player/package-lock.json -nt player/node_modules/.package-lock.json ]; then
    (cd player && npm ci --no-audit --no-fund --loglevel=error)
fi

# The compiled kernels: the TS writer (vodorigin/mux/_ts_kernel.c, loaded by ts_kernel.py) and
# stsc's pass (vodorigin/mp4/_tables_kernel.c, loaded by tables_kernel.py). Without a compiler the
# server uses numpy for both, which gives the same results; the tests require the kernels.
if ! command -v cc >/dev/null; then
    if [ "$want_test" = 1 ]; then
        apt_install gcc libc6-dev
    else
        apt_install gcc libc6-dev || echo "setup: no C compiler; the kernels stay numpy" >&2
    fi
fi
for source in vodorigin/mux/_ts_kernel.c vodorigin/mp4/_tables_kernel.c; do
    kernel="${source%.c}.so"
    if command -v cc >/dev/null && { [ ! -f "$kernel" ] || [ "$source" -nt "$kernel" ]; }; then
        cc -O2 -Wall -shared -fPIC -o "$kernel" "$source"
    fi
done

stamp=.venv/.installed
extras=""
[ "$want_test" = 1 ] && extras="[test]"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f "$stamp$extras" ] || [ pyproject.toml -nt "$stamp$extras" ] || [ constraints.txt -nt "$stamp$extras" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".$extras"  # the pinned versions
    touch "$stamp$extras"
fi
if [ "$want_bench" = 1 ]; then  # the C reference the benchmarks compare against, when it builds
    scripts/build_nginx_vod.sh || echo "setup: nginx-vod-module not built; the benchmarks run without it" >&2
fi
