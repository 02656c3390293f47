#!/usr/bin/env bash
# cache_trust.sh: what the cache's trust costs in hits and time, and long
# randomized differential runs.
#
#   bench/cache_trust.sh random [SEQUENCES] [STEPS]
#       tests/e2e/cache_trust.py random_edits, longer than in CI (default 50
#       sequences of 30 steps): random edits of a small C project and builds,
#       each compared with a plain build from the same state. A mismatch
#       prints the seed that reproduces it.
#   BEFORE=/path/to/old/bsandbox bench/cache_trust.sh hits [ROUNDS]
#       the ld build of binutils (bench/binutils.sh prepare first), with the
#       bsandbox given as BEFORE and this tree's (AFTER, default
#       build/cli/bsandbox) side by side, each round in alternating order:
#         cold     make -C ld clean, then a build through an empty cache
#         warm     make -C ld clean, then the build again (every recipe stored)
#         edit     a one-line change to ld/ldlang.c, then the build
#         touch    touch ld/ldlang.h (no change), then the build
#         touch2   the same again
#         noop     the build again, nothing changed
#       For each: wall time, hits, misses (from `bsandbox cache stats`), and
#       whether ld/ld-new is byte-identical to a plain build of the same
#       source. Prints a Markdown table.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
work=${BSANDBOX_BENCH_WORK:-$here/work}
obj=$work/build
src=$work/binutils-2.40

random_runs() {
  local sequences=${1:-50} steps=${2:-30}
  BSANDBOX=${AFTER:-$top/build/cli/bsandbox} \
    BSANDBOX_TRUST_SEQUENCES=$sequences BSANDBOX_TRUST_STEPS=$steps \
    python3 "$top/tests/e2e/cache_trust.py" random_edits
}

# counters of a cache: "hits misses"
counters() {
  "$1" cache stats --cache="$2" | awk '/^hits/{h=$2} /^misses/{m=$2} END{print h+0, m+0}'
}

# One phase with one binary: prints "wall hits misses".
phase() {
  local bs=$1 cache=$2 TIMEFORMAT='%R' t before after
  local wrap
  wrap="$(dirname "$bs")/bsandbox-wrap"
  before=$(counters "$bs" "$cache")
  t=$( { time BSANDBOX_CACHE="$cache" BSANDBOX_CACHE_ROOT="$obj" BSANDBOX_SHELL=/bin/bash \
    "$bs" exec -q --no-journal -- make -C "$obj" -j2 all-ld SHELL="$wrap" >/dev/null 2>&1 </dev/null; } 2>&1 )
  after=$(counters "$bs" "$cache")
  read -r h0 m0 <<<"$before"
  read -r h1 m1 <<<"$after"
  echo "$t $((h1 - h0)) $((m1 - m0))"
}

hits() {
  local rounds=${1:-2}
  [ -f "$obj/Makefile" ] || { echo "run bench/binutils.sh prepare first" >&2; exit 1; }
  local after=${AFTER:-$top/build/cli/bsandbox} before=${BEFORE:?set BEFORE to the bsandbox to compare with}
  file=$src/ld/ldlang.c
  [ -f "$work/ldlang.c.orig" ] || cp "$file" "$work/ldlang.c.orig"
  trap 'cp "$work/ldlang.c.orig" "$src/ld/ldlang.c"' EXIT
  declare -A rows
  for ((r = 0; r < rounds; r++)); do
    local order=(before after)
    ((r % 2)) && order=(after before)
    for which in "${order[@]}"; do
      local bs=$before
      [ "$which" = after ] && bs=$after
      local cache=$work/trust-cache-$which
      rm -rf "$cache"
      cp "$work/ldlang.c.orig" "$file"
      make -C "$obj/ld" clean >/dev/null 2>&1
      rows[$which-cold]+="$(phase "$bs" "$cache");"
      make -C "$obj/ld" clean >/dev/null 2>&1
      rows[$which-warm]+="$(phase "$bs" "$cache");"
      local want
      want=$(sha256sum "$obj/ld/ld-new" | cut -d' ' -f1)
      # a one-line change, then the build; plain reference built after
      printf '\n/* edit %s */\n' "$r" >> "$file"
      rows[$which-edit]+="$(phase "$bs" "$cache");"
      local got_edit
      got_edit=$(sha256sum "$obj/ld/ld-new" | cut -d' ' -f1)
      touch "$src/ld/ldlang.h"
      rows[$which-touch]+="$(phase "$bs" "$cache");"
      touch "$src/ld/ldlang.h"
      rows[$which-touch2]+="$(phase "$bs" "$cache");"
      rows[$which-noop]+="$(phase "$bs" "$cache");"
      # the reference: the same source built plainly
      make -C "$obj/ld" clean >/dev/null 2>&1
      make -C "$obj" -j2 all-ld >/dev/null 2>&1
      local ref
      ref=$(sha256sum "$obj/ld/ld-new" | cut -d' ' -f1)
      [ "$got_edit" = "$ref" ] || { echo "round $r $which: ld-new after the edit differs from a plain build" >&2; exit 1; }
      cp "$work/ldlang.c.orig" "$file"
      make -C "$obj/ld" clean >/dev/null 2>&1
      make -C "$obj" -j2 all-ld >/dev/null 2>&1
      [ "$(sha256sum "$obj/ld/ld-new" | cut -d' ' -f1)" = "$want" ] || { echo "warm build differed" >&2; exit 1; }
      echo "round $((r + 1)) $which done" >&2
    done
  done
  python3 - "$rounds" "$(declare -p rows)" <<'EOF'
import re, statistics, sys
rounds = sys.argv[1]
rows = dict(re.findall(r'\[([a-z0-9-]+)\]="([^"]*)"', sys.argv[2]))
print(f"| phase of the ld build | before: median wall | hits / misses | after: median wall | hits / misses |")
print("|---|---|---|---|---|")
for phase in ("cold", "warm", "edit", "touch", "touch2", "noop"):
    cells = []
    for which in ("before", "after"):
        runs = [r.split() for r in rows[f"{which}-{phase}"].strip(";").split(";")]
        wall = statistics.median(float(r[0]) for r in runs)
        hm = " ".join(f"{r[1]}/{r[2]}" for r in runs)
        cells += [f"{wall:.2f} s", hm]
    print(f"| {phase} | " + " | ".join(cells) + " |")
EOF
}

case ${1:-} in
  random) shift; random_runs "$@" ;;
  hits) shift; hits "$@" ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
