#!/usr/bin/env bash
# Builds the C reference the benchmarks compare against: nginx 1.30.0 with nginx-vod-module 1.33,
# -O3, as issue 17 measured it, into bench/nginx-vod (not committed). `scripts/setup.sh --bench`
# (so `make bench`) installs its build tools and calls it; a reference already built is kept. The
# sources are downloaded, or taken from NGINX_SOURCE and VOD_SOURCE (unpacked source trees, or git
# checkouts) where there is no network. The benchmarks run without the reference when it is not
# built: they then print vodorigin's figures and floors alone.
set -euo pipefail
cd "$(dirname "$0")/.."
NGINX_VERSION=1.30.0
VOD_VERSION=1.33
PREFIX="$PWD/bench/nginx-vod"
[ -x "$PREFIX/sbin/nginx" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() {  # fetch URL DIRECTORY: unpack a source tarball into DIRECTORY
    mkdir -p "$2" && curl -fsSL "$1" | tar -xz -C "$2" --strip-components=1
}
nginx_source=${NGINX_SOURCE:-$work/nginx}
vod_source=${VOD_SOURCE:-$work/vod}
if [ -z "${NGINX_SOURCE:-}" ]; then
    fetch "https://nginx.org/download/nginx-$NGINX_VERSION.tar.gz" "$nginx_source"
fi
if [ -z "${VOD_SOURCE:-}" ]; then
    fetch "https://github.com/kaltura/nginx-vod-module/archive/refs/tags/$VOD_VERSION.tar.gz" "$vod_source"
fi
cd "$nginx_source"
configure=./configure
[ -x "$configure" ] || configure=auto/configure  # a git checkout has it under auto/
# the rewrite module needs PCRE and the benchmarks need none of it
"$configure" --prefix="$PREFIX" --with-cc-opt="-O3" --with-threads --without-http_rewrite_module \
    --add-module="$vod_source" > "$work/configure.log"
make -j"$(nproc)" > "$work/make.log"
make install > /dev/null
echo "built $("$PREFIX/sbin/nginx" -v 2>&1) with nginx-vod-module $VOD_VERSION in $PREFIX"
