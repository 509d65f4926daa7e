#!/usr/bin/env bash
# Proves the browser harness works without Popcast: ffmpeg makes a short fMP4 HLS stream
# (H.264 High + AAC, 1 s segments), serve.mjs serves it on 127.0.0.1 with CORS, and play.mjs
# plays it in headless Chromium twice: a VOD (through a multivariant playlist), then an event playlist that ffmpeg is
# still writing in real time (--expect-live --low-latency). Each run must report ok=true and
# decoded frames. Needs `make deps-test deps-browser` (chromium, ffmpeg, node_modules).
# Every process started here stops by itself (own time limits) and on exit of this script.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
start=$SECONDS
fail() { echo "browser selftest: FAILED: $*" >&2; exit 1; }

[ -x /usr/bin/chromium ] || fail "no /usr/bin/chromium: run 'make deps-test'"
[ -f "$here/node_modules/hls.js/dist/hls.min.js" ] || fail "no node_modules: run 'make deps-browser'"
command -v ffmpeg >/dev/null || fail "no ffmpeg: run 'make deps-test'"

tmp=$(mktemp -d /tmp/popcast-browser-selftest.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# One lavfi input with both streams: a moving test pattern and a tone.
src="testsrc2=size=640x360:rate=30[out0];sine=frequency=440:sample_rate=48000[out1]"
enc=(-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -g 30 -keyint_min 30
  -sc_threshold 0 -c:a aac -b:a 64k -f hls -hls_time 1 -hls_segment_type fmp4)

# Live first, in the background, so it has segments by the time the VOD run is over.
mkdir "$tmp/live" "$tmp/vod"
timeout -k 2 30 ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi -i "$src" -t 20 \
  "${enc[@]}" -hls_playlist_type event -hls_segment_filename "$tmp/live/seg%03d.m4s" \
  "$tmp/live/stream.m3u8" &
pids+=($!)
timeout -k 2 30 ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "$src" -t 6 \
  "${enc[@]}" -hls_playlist_type vod -hls_segment_filename "$tmp/vod/seg%03d.m4s" \
  -master_pl_name master.m3u8 "$tmp/vod/stream.m3u8" || fail "ffmpeg could not make the VOD stream"

node "$here/serve.mjs" "$tmp" --seconds 60 >"$tmp/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
[ -n "$port" ] || fail "serve.mjs did not start"

# play NAME EXTRA_CHECK play.mjs-args...: runs play.mjs, prints its JSON, asserts on it.
play() {
  local name=$1 check=$2 out
  shift 2
  out=$(timeout -k 5 60 node "$here/play.mjs" "$@") || true
  echo "$name: $out"
  node -e '
    const [name, line, extra] = process.argv.slice(1);
    let r;
    try { r = JSON.parse(line); } catch { console.error(`${name}: play.mjs printed no JSON`); process.exit(1); }
    const bad = [];
    if (r.ok !== true) bad.push(`ok=${r.ok} (${r.error})`);
    if (!(r.framesDecoded > 0)) bad.push(`framesDecoded=${r.framesDecoded}`);
    if (extra === "live" && r.live !== true) bad.push(`live=${r.live}`);
    if (bad.length) { console.error(`${name}: ${bad.join(", ")}`); process.exit(1); }
  ' "$name" "$out" "$check" || fail "$name"
}

play vod - --url "http://127.0.0.1:$port/vod/master.m3u8" --seconds 3 --screenshot "$tmp/vod.png"

for _ in $(seq 100); do
  n=$(grep -sc '^seg' "$tmp/live/stream.m3u8" || true)
  [ "${n:-0}" -ge 3 ] && break
  sleep 0.1
done
play live live --url "http://127.0.0.1:$port/live/stream.m3u8" --seconds 5 --low-latency --expect-live

echo "browser selftest: vod and live played in headless Chromium ($((SECONDS - start)) s)"
