#!/usr/bin/env bash
# remote.sh: the remote cache (issue 20) on the binutils ld build, against a
# real server (Debian's nginx, WebDAV, on loopback), side by side in one run.
#
#   bench/remote.sh [ROUNDS]     (run `bench/binutils.sh prepare` first)
#   JOBS=8 bench/remote.sh 3     make -j8 in every mode (default -j2): a
#                                remote lookup waits on the network, not a CPU
#
# Each round, after `make -C ld clean` every time, in this order (each step
# needs the one before it): bare make; the local cache cold (empty, no
# remote) and warm, and warm again with no file hashes known (a fresh
# machine's floor: its entries all here, its files hashed once); "upload": the local cache cold with the remote on (the
# server emptied first: every stored recipe is uploaded); "remote warm":
# another machine, i.e. an empty local cache, against the server the upload
# filled, directly and through bench/delay_proxy.py adding 5 ms and 20 ms of
# round-trip time (this kernel has no netem), and at 5 ms once more without
# fetching ahead (each command's lookup on its own path; a build fetches
# ahead what the last build of the same command used, which the upload's
# build published); "upload 5ms": the upload again
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
jobs=${JOBS:-2}  # make -j, the same in every mode
[ -f "$obj/Makefile" ] || { echo "run 'bench/binutils.sh prepare' first" >&2; exit 1; }

srv=$work/remote-server
. "$here/remote_server.sh"

build() {  # build MODE: one build of ld, its wall time on stdout
  local mode=$1 TIMEFORMAT='%R' t
  if [ "$mode" = bare ]; then
    t=$( { time make -C "$obj" -j"$jobs" all-ld >/dev/null 2>&1; } 2>&1 )
    echo "$t"
    return
  fi
  remote_mode "$mode" "$work/rcache"
  t=$( { time BSANDBOX_CACHE="$cache" BSANDBOX_CACHE_ROOT="$obj" BSANDBOX_SHELL=/bin/bash \
    BSANDBOX_CACHE_REMOTE="$remote" BSANDBOX_CACHE_REMOTE_PREFETCH="$prefetch" "$bsandbox" exec -q --no-journal -- \
    make -C "$obj" -j"$jobs" all-ld SHELL="$wrap" >/dev/null 2>"$work/remote-$mode.err" </dev/null; } 2>&1 )
  echo "$t"
}

modes=("${remote_modes[@]}")
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
    traffic[$mode]=$(remote_traffic "$mode" "$work/rcache")
    echo "round $((r + 1)) $mode ${t}s $(grep -c 'remote cache' "$work/remote-$mode.err" 2>/dev/null || true) warnings" >&2
  done
done
args=()
for mode in "${modes[@]}"; do args+=("$mode" "${times[$mode]}" "${traffic[$mode]:-}"); done
remote_table "$rounds" "build of ld, make -j$jobs" "${args[@]}"
