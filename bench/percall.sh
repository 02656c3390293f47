#!/usr/bin/env bash
# percall.sh: what one traced file syscall costs under each backend, side by
# side in one run: bench/openloop's loop of stat() of a missing name (a
# lookup) and of open+close of /etc/hostname, bare and as the command of
# `bsandbox exec` with --backend=ebpf (root only), ptrace and inproc. Modes
# rotate each round; prints the median ns per iteration and what tracing
# added to it.
#
#   bench/percall.sh [ITERATIONS] [ROUNDS]     (default 100000 and 5)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
loop=${OPENLOOP:-$top/build/bench/openloop}
n=${1:-100000}
rounds=${2:-5}
modes=(bare ptrace inproc)
[ "$(id -u)" = 0 ] && modes=(bare ebpf ptrace inproc)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

one() {  # mode op iterations -> ns per iteration
  local mode=$1 op=$2 iters=$3
  if [ "$mode" = bare ]; then
    "$loop" "$op" "$iters"
  else
    "$bsandbox" exec -q --no-journal --backend="$mode" --json "$out/r.json" -- "$loop" "$op" "$iters"
  fi
}

declare -A results
for op in stat open; do
  for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#modes[@]}; i++)); do
      mode=${modes[$(((i + r) % ${#modes[@]}))]}
      iters=$n
      [ "$mode" = ptrace ] && iters=$((n / 10))  # a stop costs tens of microseconds
      results[$op.$mode]+="$(one "$mode" "$op" "$iters") "
    done
  done
done

python3 - "${modes[@]}" <<PY
import statistics, sys
results = {$(for k in "${!results[@]}"; do printf '"%s": "%s", ' "$k" "${results[$k]}"; done)}
modes = sys.argv[1:]
print(f"| mode | stat() of a missing name, ns | added | open+close, ns | added |")
print("|---|---|---|---|---|")
base = {op: statistics.median(map(float, results[f"{op}.bare"].split())) for op in ("stat", "open")}
for m in modes:
    row = [m]
    for op in ("stat", "open"):
        v = statistics.median(map(float, results[f"{op}.{m}"].split()))
        row += [f"{v:,.0f}", "" if m == "bare" else f"+{v - base[op]:,.0f}"]
    print("| " + " | ".join(row) + " |")
PY
