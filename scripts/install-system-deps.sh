#!/usr/bin/env bash
# Installs the Debian packages Popcast needs that this machine lacks; idempotent.
# Usage: scripts/install-system-deps.sh build|test|bench
#   build: what compiling needs (a C/C++ toolchain for -sys crates and the fuzzer, FFmpeg dev
#          libraries, clang for bindgen, pkg-config, a font, SQLite for event records,
#          OpenSSL for WHIP's DTLS)
#   test:  build + the real clients tests drive (ffmpeg/ffprobe CLI; curl as the HTTP/1.1 and
#          HTTP/2 client; openssl for test certificates; chromium, which the
#          browser harness in tests/browser/ drives with hls.js; libfaketime, which steps
#          one process's wall clock for the clock-step test; iproute2, which sets up
#          the private network the WebRTC browser test runs in)
#   bench: test + peers and load tools for side-by-side figures (nginx, wrk)
set -euo pipefail

set_name=${1:-build}

build_pkgs=(
  gcc g++ libc6-dev make pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev
  fonts-dejavu-core
  libsqlite3-dev
  libssl-dev
)
test_pkgs=(ffmpeg chromium curl openssl faketime iproute2)
# nginx as a caching edge and, with its RTMP module, as the classic RTMP→HLS origin; wrk.
bench_pkgs=(nginx-light libnginx-mod-rtmp wrk)

case "$set_name" in
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages ($set_name): all ${#want[@]} present"
  exit 0
fi

echo "system packages ($set_name): installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages ($set_name): installed ${missing[*]}"
