#!/usr/bin/env bash
# torture.sh: stress-ng's syscall-heavy stressors, bogo-ops per second bare
# and under each backend, side by side in one run.
#
#   bench/torture.sh [SECONDS] [ROUNDS]   (default 5 s, 3 rounds)
#   STRESSORS="open chdir" bench/torture.sh   only some
#
# Each round runs every stressor for SECONDS, one instance, bare, under
# `bsandbox exec --backend=ebpf` and `--backend=ptrace` (the order of the
# three rotating by round), and reads stress-ng's "bogo ops/s (real time)".
# Prints a Markdown table of medians: ops/s and the share of the bare rate,
# and, from the rate lost, what each traced call costs (us per operation).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
seconds=${1:-5}
rounds=${2:-3}
stressors=${STRESSORS:-open chdir rename dentry fork vfork exec}
work=$(mktemp -d /tmp/bsandbox-torture-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

rate() {  # mode stressor -> bogo ops/s (real time)
  local mode=$1 s=$2 out
  local cmd=(stress-ng "--$s" 1 -t "$seconds" --metrics-brief --temp-path "$work")
  case $mode in
    bare) out=$("${cmd[@]}" 2>&1) ;;
    ebpf | ptrace) out=$("$bsandbox" exec -q --no-journal --backend="$mode" -- "${cmd[@]}" 2>&1) ;;
  esac
  # the stressor's row: name, bogo ops, real, usr, sys, ops/s (real), ops/s (usr+sys)
  echo "$out" | awk -v s="$s" '$2 == "metrc:" && $4 == s && NF == 10 {print $9}' | tail -n1
}

declare -A r
modes=(bare ebpf ptrace)
for ((i = 0; i < rounds; i++)); do
  for s in $stressors; do
    for ((k = 0; k < 3; k++)); do
      m=${modes[$(((k + i) % 3))]}
      v=$(rate "$m" "$s")
      r[$s-$m]+="$v "
      echo "round $((i + 1)) $s $m: $v ops/s" >&2
    done
  done
done
python3 - "$seconds" "$rounds" "$(declare -p r)" $stressors <<'EOF'
import re, statistics, sys
seconds, rounds, decl, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
r = {k: [float(x) for x in v.split()] for k, v in re.findall(r'\[([a-z0-9-]+)\]="([^"]*)"', decl)}
print(f"| stressor ({seconds} s, median of {rounds}) | bare ops/s | eBPF ops/s | share | ptrace ops/s | share | added per op: eBPF / ptrace |")
print("|---|---|---|---|---|---|---|")
for s in names:
    m = {mode: statistics.median(r[f"{s}-{mode}"]) for mode in ("bare", "ebpf", "ptrace")}
    add = lambda mode: (1e6 / m[mode] - 1e6 / m["bare"]) if m[mode] > 0 else float("nan")
    print(f"| {s} | {m['bare']:.0f} | {m['ebpf']:.0f} | {100 * m['ebpf'] / m['bare']:.0f}% | {m['ptrace']:.0f} | "
          f"{100 * m['ptrace'] / m['bare']:.0f}% | {add('ebpf'):.1f} / {add('ptrace'):.1f} us |")
EOF
