#!/usr/bin/env bash
# binutils.sh: a real C build (binutils 2.40's ld) bare, under bsandbox, and
# under strace -f, side by side in one run.
#
#   bench/binutils.sh prepare        unpack and configure binutils-source, full
#                                    build once (6-8 minutes on 2 cores)
#   bench/binutils.sh run [ROUNDS]   ROUNDS (default 3) of: for each mode,
#                                    `make -C ld clean`, then time `make -j2 all-ld`
#   MODES="bare bsandbox" bench/binutils.sh run 8    only some modes
#   bench/binutils.sh rollback       the journal: a journaled build, its undo
#                                    (MB/s), the state's size, a re-execution
#   bench/binutils.sh cache [ROUNDS] the command cache: uncached, cold cache,
#                                    warm cache (after make clean), ccache cold
#                                    and warm, side by side
#
# Modes: bare; bsandbox (eBPF, --json record written, not journaled);
# journal (the same in a project, journaled: overlay, commit, pre-images;
# --no-rollback, since `make clean` ran outside it); ptrace (bsandbox's
# ptrace backend, record written); inproc (the in-process runtime, with
# ptrace for what it leaves, record written); ptrace-noanswer (the same with lookups
# not answered in the tracer: BSANDBOX_PTRACE_ANSWER=0); floor1 and floor2
# (bench/stopfloor: a tracer that does nothing but stop once, or twice, per
# traced syscall, under bsandbox's own seccomp filter); strace -f and
# strace -f --seccomp-bpf (both -e trace=%file,%process -o /dev/null, the
# same syscall set); before and before-ptrace (the same as bsandbox and
# ptrace with the binary $BEFORE, another build to compare with, side by
# side). The order of modes rotates each round so that machine
# noise falls on all of them. Prints a Markdown table of medians and ratios,
# and checks that every bsandbox record is complete.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
work=${BSANDBOX_BENCH_WORK:-$here/work}
src=$work/binutils-2.40
obj=$work/build
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
stopfloor=${STOPFLOOR:-$top/build/bench/stopfloor}

prepare() {
  if ! [ -f /usr/src/binutils/binutils-2.40.tar.xz ]; then
    apt-get install -y --no-install-recommends binutils-source texinfo bison flex >/dev/null
  fi
  mkdir -p "$work"
  [ -d "$src" ] || tar -xJf /usr/src/binutils/binutils-2.40.tar.xz -C "$work"
  mkdir -p "$obj"
  cd "$obj"
  if ! [ -f Makefile ]; then
    "$src/configure" --disable-nls --disable-gdb --disable-gdbserver --disable-sim \
      --disable-gprofng --disable-werror --disable-libdecnumber --disable-readline >/dev/null
  fi
  echo "building binutils once (several minutes)..."
  make -j2 >/dev/null 2>&1
  echo "prepared: $obj"
}

# Times one build of ld in mode $1; prints "wall cpu" in seconds (cpu: user
# + system of everything the mode ran, tracer included).
one() {
  local mode=$1 TIMEFORMAT='%R %U %S' t
  make -C "$obj/ld" clean >/dev/null 2>&1
  sync
  t=$( { time build_in "$mode"; } 2>&1 )
  echo "$t" | awk '{printf "%.3f %.3f\n", $1, $2 + $3}'
}

build_in() {
  case $1 in
    bare) make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    bsandbox) "$bsandbox" exec -q --no-journal --backend=ebpf --json "$work/ld.json" -- make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    journal) (cd "$obj" && "$bsandbox" exec -q --no-rollback --backend=ebpf --json "$work/ld.json" -- make -j2 all-ld >/dev/null 2>&1) ;;
    ptrace) "$bsandbox" exec -q --no-journal --backend=ptrace --json "$work/ld.json" -- make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    inproc) "$bsandbox" exec -q --no-journal --backend=inproc --json "$work/ld.json" -- make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    before) "$BEFORE" exec -q --no-journal --backend=ebpf --json "$work/ld.json" -- make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    before-ptrace) "$BEFORE" exec -q --no-journal --backend=ptrace --json "$work/ld.json" -- make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    ptrace-noanswer) BSANDBOX_PTRACE_ANSWER=0 "$bsandbox" exec -q --no-journal --backend=ptrace --json "$work/ld.json" -- \
      make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    floor1) "$stopfloor" 1 make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    floor2) "$stopfloor" 2 make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    strace) strace -f -qq -e trace=%file,%process -o /dev/null make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    strace-seccomp) strace -f -qq --seccomp-bpf -e trace=%file,%process -o /dev/null \
      make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
  esac
}

# The journal on a full build: commit, undo (rollback of every output, as
# MB/s of output), the state directory's size, and a re-execution (rollback
# of the previous build, the build, its commit) against a traced build.
rollback() {
  [ -f "$obj/Makefile" ] || { echo "run '$0 prepare' first" >&2; exit 1; }
  local TIMEFORMAT='%R' t_build t_undo t_traced t_reexec
  rm -rf "$obj/.bsandbox"
  "$bsandbox" init "$obj" >/dev/null
  make -C "$obj/ld" clean >/dev/null 2>&1
  touch "$work/mark"
  sleep 0.1
  t_build=$( { time (cd "$obj" && "$bsandbox" exec -q -- make -j2 all-ld >/dev/null 2>&1); } 2>&1 )
  local out_bytes out_files state_built state_undone
  out_bytes=$(find "$obj" -path "$obj/.bsandbox" -prune -o -type f -newer "$work/mark" -printf '%s\n' | awk '{s+=$1} END {print s}')
  out_files=$(find "$obj" -path "$obj/.bsandbox" -prune -o -type f -newer "$work/mark" -print | wc -l)
  state_built=$(du -sb "$obj/.bsandbox" | cut -f1)
  sync
  t_undo=$( { time (cd "$obj" && "$bsandbox" undo >/dev/null); } 2>&1 )
  state_undone=$(du -sb "$obj/.bsandbox" | cut -f1)
  # Re-execution: build (journaled) again, then the same command again: it
  # rolls the first back, runs in the view, commits.
  (cd "$obj" && "$bsandbox" exec -q -- make -j2 all-ld >/dev/null 2>&1)
  sync
  t_reexec=$( { time (cd "$obj" && "$bsandbox" exec -q -- make -j2 all-ld >/dev/null 2>&1); } 2>&1 )
  make -C "$obj/ld" clean >/dev/null 2>&1
  sync
  t_traced=$( { time "$bsandbox" exec -q --no-journal -- make -C "$obj" -j2 all-ld >/dev/null 2>&1; } 2>&1 )
  python3 - "$out_bytes" "$out_files" "$state_built" "$state_undone" "$t_build" "$t_undo" "$t_reexec" "$t_traced" <<'EOF'
import sys
out_bytes, out_files, built, undone = map(int, sys.argv[1:5])
t_build, t_undo, t_reexec, t_traced = map(float, sys.argv[5:9])
mb = out_bytes / 1e6
print("| what | value |")
print("|---|---|")
print(f"| outputs of the build (files newer than its start) | {out_files} files, {mb:.1f} MB |")
print(f"| journaled build (from clean) | {t_build:.2f} s |")
print(f"| state directory after it | {built / 1e6:.2f} MB ({built / out_bytes:.1%} of the outputs) |")
print(f"| bsandbox undo of that build | {t_undo:.2f} s = {mb / t_undo:.0f} MB/s of outputs |")
print(f"| state directory after the undo (outputs kept) | {undone / 1e6:.1f} MB ({undone / out_bytes:.0%} of the outputs) |")
print(f"| re-execution: rollback of a full build + build + commit | {t_reexec:.2f} s |")
print(f"| traced build from clean (--no-journal) | {t_traced:.2f} s ({t_reexec / t_traced:.3f}x) |")
EOF
}

# The command cache against ccache. Each round: `make -C ld clean`, then
# bare; traced (bsandbox exec, no cache); bsandbox cold (empty cache) then
# warm; the same with ld/.libs named unkeyed; ccache cold (empty) then warm.
# The cache runs are `bsandbox exec --
# make SHELL=bsandbox-wrap` (every recipe line a cached command, the
# wrappers using the exec's tracer); ccache is CC="ccache gcc" (compiles
# only). Every build's ld/ld-new must be byte-identical to the bare one's.
cache_bench() {
  local rounds=${1:-2}
  [ -f "$obj/Makefile" ] || { echo "run '$0 prepare' first" >&2; exit 1; }
  command -v ccache >/dev/null || apt-get install -y -qq ccache >/dev/null
  local wrap
  wrap="$(dirname "$bsandbox")/bsandbox-wrap"
  local groups=("bare" "traced" "cold warm" "cold-libs warm-libs" "ccache-cold ccache-warm")
  declare -A times
  local want=""
  for ((r = 0; r < rounds; r++)); do
    for ((g = 0; g < ${#groups[@]}; g++)); do
      for mode in ${groups[$(((g + r) % ${#groups[@]}))]}; do
        case $mode in
          cold) rm -rf "$work/cache" ;;
          cold-libs) rm -rf "$work/cache-libs" ;;
          ccache-cold) rm -rf "$work/ccache" ;;
        esac
        make -C "$obj/ld" clean >/dev/null 2>&1
        sync
        local TIMEFORMAT='%R' t
        t=$( { time cache_build "$mode" "$wrap"; } 2>&1 )
        local sum
        sum=$(sha256sum "$obj/ld/ld-new" | cut -d' ' -f1)
        [ -z "$want" ] && want=$sum
        if [ "$sum" != "$want" ]; then
          echo "round $((r + 1)) $mode: ld/ld-new differs from the first build's" >&2
          exit 1
        fi
        times[$mode]+="$t "
        echo "round $((r + 1)) $mode ${t}s" >&2
      done
    done
  done
  local stats
  stats=$("$bsandbox" cache stats --cache="$work/cache" | tr '\n' ';')
  python3 - "$rounds" "$stats" bare "${times[bare]}" traced "${times[traced]}" cold "${times[cold]}" \
    warm "${times[warm]}" cold-libs "${times[cold-libs]}" warm-libs "${times[warm-libs]}" \
    ccache-cold "${times[ccache-cold]}" ccache-warm "${times[ccache-warm]}" <<'EOF2'
import statistics, sys
rounds, stats, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
t = {rest[i]: list(map(float, rest[i + 1].split())) for i in range(0, len(rest), 2)}
m = {k: statistics.median(v) for k, v in t.items()}
names = {"bare": "uncached (bare make)", "traced": "bsandbox exec, no cache",
         "cold": "bsandbox cache, cold (empty cache: every recipe stored)",
         "warm": "bsandbox cache, warm (after make clean)",
         "cold-libs": "bsandbox cache, cold, `ld/.libs` listing unkeyed",
         "warm-libs": "bsandbox cache, warm, `ld/.libs` listing unkeyed",
         "ccache-cold": "ccache, cold", "ccache-warm": "ccache, warm"}
print(f"| build of ld | median wall ({rounds} rounds) | vs uncached | all runs (s) |")
print("|---|---|---|---|")
for k in ["bare", "traced", "cold", "warm", "cold-libs", "warm-libs", "ccache-cold", "ccache-warm"]:
    print(f"| {names[k]} | {m[k]:.2f} s | {m[k] / m['bare']:.3f}x | {' '.join(f'{x:.2f}' for x in t[k])} |")
print()
for w, c, label in (("warm", "cold", "keys as they come"), ("warm-libs", "cold-libs", "ld/.libs unkeyed")):
    print(f"- {label}: warm is {m['bare'] / m[w]:.1f}x faster than uncached (target: at least 10x); "
          f"storing (cold vs uncached) costs {100 * (m[c] / m['bare'] - 1):+.1f}% (target: at most +10%); "
          f"warm vs ccache warm: {m[w] / m['ccache-warm']:.2f}x (target: at most 1.5x)")
print(f"- cache after the runs: {stats}")
EOF2
}

cache_build() {
  local mode=$1 wrap=$2
  case $mode in
    bare) make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    traced) "$bsandbox" exec -q --no-journal -- make -C "$obj" -j2 all-ld >/dev/null 2>&1 ;;
    cold | warm)
      BSANDBOX_CACHE="$work/cache" BSANDBOX_CACHE_ROOT="$obj" BSANDBOX_SHELL=/bin/bash \
        "$bsandbox" exec -q --no-journal -- make -C "$obj" -j2 all-ld SHELL="$wrap" >/dev/null 2>&1 </dev/null ;;
    cold-libs | warm-libs)
      # libtool links glob .libs for their own library's files; parallel
      # links make its listing differ from run to run.
      BSANDBOX_CACHE="$work/cache-libs" BSANDBOX_CACHE_ROOT="$obj" BSANDBOX_SHELL=/bin/bash \
        BSANDBOX_CACHE_UNKEYED_LISTINGS=ld/.libs \
        "$bsandbox" exec -q --no-journal -- make -C "$obj" -j2 all-ld SHELL="$wrap" >/dev/null 2>&1 </dev/null ;;
    ccache-cold | ccache-warm)
      CCACHE_DIR="$work/ccache" make -C "$obj" -j2 all-ld CC="ccache gcc" >/dev/null 2>&1 ;;
  esac
}

run() {
  local rounds=${1:-3}
  [ -f "$obj/Makefile" ] || { echo "run '$0 prepare' first" >&2; exit 1; }
  local modes=(${MODES:-bare bsandbox journal ptrace ptrace-noanswer floor1 floor2 strace strace-seccomp})
  declare -A times cpus
  if [[ " ${modes[*]} " == *" journal "* ]]; then
    rm -rf "$obj/.bsandbox"
    "$bsandbox" init "$obj" >/dev/null
  fi
  for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#modes[@]}; i++)); do
      local mode=${modes[$(((i + r) % ${#modes[@]}))]}
      local t c
      read -r t c < <(one "$mode")
      times[$mode]+="$t "
      cpus[$mode]+="$c "
      echo "round $((r + 1)) $mode ${t}s wall, ${c}s cpu" >&2
      if [ "$mode" = bsandbox ] || [ "$mode" = journal ] || [ "$mode" = ptrace ] || [ "$mode" = ptrace-noanswer ] || [ "$mode" = inproc ] ||
        [ "$mode" = before ] || [ "$mode" = before-ptrace ]; then
        python3 - "$work/ld.json" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
files = {f["path"] for p in r["processes"] for f in p["files"]}
execs = sum(1 for p in r["processes"] if p["exe"])
print(f"  record: {len(r['processes'])} processes, {len(files)} distinct paths, "
      f"complete={r['complete']}, lost={r['lost_events']}")
if not r["complete"]:
    sys.exit("incomplete record")
EOF
      fi
    done
  done
  local args=()
  for m in "${modes[@]}"; do args+=("$m" "${times[$m]}" "${cpus[$m]}"); done
  python3 - "$rounds" "${args[@]}" <<'EOF'
import statistics, sys
names = {"bare": "bare", "bsandbox": "bsandbox (eBPF)", "journal": "bsandbox (eBPF), journaled",
         "ptrace": "bsandbox --backend=ptrace",
         "before": "bsandbox (eBPF), $BEFORE", "before-ptrace": "bsandbox --backend=ptrace, $BEFORE",
         "ptrace-noanswer": "ptrace, lookups not answered (BSANDBOX_PTRACE_ANSWER=0)",
         "floor1": "stopfloor 1 (one stop per call, no work)",
         "floor2": "stopfloor 2 (two stops per call, no work)",
         "strace": "strace -f",
         "strace-seccomp": "strace -f --seccomp-bpf"}
rounds, rest = sys.argv[1], sys.argv[2:]
rows = [(rest[i], list(map(float, rest[i + 1].split())), list(map(float, rest[i + 2].split())))
        for i in range(0, len(rest), 3)]
base_wall = statistics.median(rows[0][1])
base_cpu = statistics.median(rows[0][2])
print(f"| mode | median wall ({rounds} rounds) | wall vs {rows[0][0]} | all runs, wall (s) | median CPU | CPU vs {rows[0][0]} |")
print("|---|---|---|---|---|---|")
for mode, walls, cpus in rows:
    w, c = statistics.median(walls), statistics.median(cpus)
    print(f"| {names.get(mode, mode)} | {w:.2f} s | {w / base_wall:.3f}x | {' '.join(f'{t:.2f}' for t in walls)} "
          f"| {c:.1f} s | {c / base_cpu:.3f}x |")
EOF
}

case ${1:-} in
  prepare) prepare ;;
  run) run "${2:-3}" ;;
  rollback) rollback ;;
  cache) cache_bench "${2:-2}" ;;
  *) echo "usage: $0 prepare | run [ROUNDS] | rollback | cache [ROUNDS]" >&2; exit 2 ;;
esac
