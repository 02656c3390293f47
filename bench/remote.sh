#!/usr/bin/env bash
# remote.sh: the remote cache (issue 20) on the binutils ld build, against a
# real server (Debian's nginx, WebDAV, on loopback), side by side in one run.
#
#   bench/remote.sh [ROUNDS]     (run `bench/binutils.sh prepare` first)
#
# Each round, after `make -C ld clean` every time, in this order (each step
# needs the one before it): bare make; the local cache cold (empty, no
# remote) and warm; "upload": the local cache cold with the remote on (the
# server emptied first: every stored recipe is uploaded); "remote warm":
# another machine, i.e. an empty local cache, against the server the upload
# filled, directly and through bench/delay_proxy.py adding 5 ms and 20 ms of
# round-trip time (this kernel has no netem); "upload 5ms": the upload again
# through the 5 ms proxy to an emptied server. All cached modes are
# `bsandbox exec -- make SHELL=bsandbox-wrap` (bench/binutils.sh cache); the
# two machines share the build directory's path, as CI runners do (binutils
# compiles with -g, so its objects name the directory and hit only there).
# Every build's ld/ld-new must equal the bare one's. Prints a Markdown table
# of medians, ratios and bytes moved.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
work=${BSANDBOX_BENCH_WORK:-$here/work}
obj=$work/build
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
wrap="$(dirname "$bsandbox")/bsandbox-wrap"
rounds=${1:-3}
[ -f "$obj/Makefile" ] || { echo "run 'bench/binutils.sh prepare' first" >&2; exit 1; }

srv=$work/remote-server
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port) p5port=$(free_port) p20port=$(free_port)
rm -rf "$srv" && mkdir -p "$srv/data" "$srv/tmp"
cat > "$srv/nginx.conf" <<CONF
worker_processes 2;
pid $srv/nginx.pid;
error_log $srv/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $srv/tmp;
  server {
    listen 127.0.0.1:$port;
    root $srv/data;
    client_max_body_size 0;
    location / { dav_methods PUT DELETE; create_full_put_path on; }
  }
}
CONF
nginx -c "$srv/nginx.conf" -g 'daemon on;'
python3 "$here/delay_proxy.py" "$p5port" "$port" 5 >/dev/null 2>&1 &
p5=$!
python3 "$here/delay_proxy.py" "$p20port" "$port" 20 >/dev/null 2>&1 &
p20=$!
trap 'kill $p5 $p20 2>/dev/null; kill "$(cat "$srv/nginx.pid")" 2>/dev/null' EXIT
sleep 0.5

build() {  # build MODE: one build of ld, its wall time on stdout
  local mode=$1 cache remote="" TIMEFORMAT='%R' t
  case $mode in
    bare) t=$( { time make -C "$obj" -j2 all-ld >/dev/null 2>&1; } 2>&1 ); echo "$t"; return ;;
    local-cold | local-warm) cache=$work/rcache-local ;;
    upload) cache=$work/rcache-a; remote=http://127.0.0.1:$port ;;
    upload-5ms) cache=$work/rcache-a; remote=http://127.0.0.1:$p5port ;;
    remote-warm) cache=$work/rcache-b; remote=http://127.0.0.1:$port ;;
    remote-warm-5ms) cache=$work/rcache-b; remote=http://127.0.0.1:$p5port ;;
    remote-warm-20ms) cache=$work/rcache-b; remote=http://127.0.0.1:$p20port ;;
  esac
  case $mode in
    local-cold | upload | upload-5ms) rm -rf "$cache" ;;
    remote-warm*) rm -rf "$cache" ;;  # another machine: nothing local
  esac
  case $mode in upload | upload-5ms) rm -rf "${srv:?}/data"/* ;; esac
  t=$( { time BSANDBOX_CACHE="$cache" BSANDBOX_CACHE_ROOT="$obj" BSANDBOX_SHELL=/bin/bash \
    BSANDBOX_CACHE_REMOTE="$remote" "$bsandbox" exec -q --no-journal -- \
    make -C "$obj" -j2 all-ld SHELL="$wrap" >/dev/null 2>"$work/remote-$mode.err" </dev/null; } 2>&1 )
  echo "$t"
}

modes=(bare local-cold local-warm upload remote-warm remote-warm-5ms remote-warm-20ms upload-5ms)
declare -A times traffic
want=""
for ((r = 0; r < rounds; r++)); do
  for mode in "${modes[@]}"; do
    make -C "$obj/ld" clean >/dev/null 2>&1
    sync
    t=$(build "$mode")
    sum=$(sha256sum "$obj/ld/ld-new" | cut -d' ' -f1)
    [ -z "$want" ] && want=$sum
    if [ "$sum" != "$want" ]; then
      echo "round $((r + 1)) $mode: ld/ld-new differs from the bare build's" >&2
      exit 1
    fi
    times[$mode]+="$t "
    case $mode in
      upload* | remote-warm*)
        c=$work/rcache-a; [[ $mode == remote-warm* ]] && c=$work/rcache-b
        traffic[$mode]=$("$bsandbox" cache stats --cache="$c" | grep -E "^(hits|misses|remote)" | tr -s ' ' | tr '\n' ';') ;;
    esac
    echo "round $((r + 1)) $mode ${t}s $(grep -c 'remote cache' "$work/remote-$mode.err" 2>/dev/null || true) warnings" >&2
  done
done
args=()
for mode in "${modes[@]}"; do args+=("$mode" "${times[$mode]}" "${traffic[$mode]:-}"); done
python3 - "$rounds" "${args[@]}" <<'PY'
import statistics, sys
rounds, rest = sys.argv[1], sys.argv[2:]
rows = [(rest[i], list(map(float, rest[i + 1].split())), rest[i + 2]) for i in range(0, len(rest), 3)]
m = {name: statistics.median(ts) for name, ts, _ in rows}
print(f"| build of ld | median wall ({rounds} rounds) | vs bare | all runs (s) | cache stats after the last |")
print("|---|---|---|---|---|")
for name, ts, stats in rows:
    print(f"| {name} | {m[name]:.2f} s | {m['bare'] / m[name]:.2f}x faster | {' '.join(f'{x:.2f}' for x in ts)} | {stats} |")
print()
print(f"- remote warm vs bare: {m['bare'] / m['remote-warm']:.1f}x on loopback, "
      f"{m['bare'] / m['remote-warm-5ms']:.1f}x with 5 ms RTT (target: at least 5x), "
      f"{m['bare'] / m['remote-warm-20ms']:.1f}x with 20 ms")
print(f"- uploading (cold with the remote vs cold without): {100 * (m['upload'] / m['local-cold'] - 1):+.1f}% on loopback, "
      f"{100 * (m['upload-5ms'] / m['local-cold'] - 1):+.1f}% with 5 ms RTT")
PY
