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
# Then counts the syscalls in one bogo-op (strace -f -c at two fixed op
# counts, the difference divided by the difference, so that setup cancels
# out). Prints a Markdown table of medians: ops/s, the share of the bare
# rate, and from the time lost per op, what tracing adds to each syscall.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
seconds=${1:-5}
rounds=${2:-3}
stressors=${STRESSORS:-open chdir rename dentry fork vfork exec}
# On tmpfs: on ext4 the file stressors spend most of their time finding free
# inodes (find_get_block_common, recently_deleted), a cost that drifts with
# the disk's state from run to run (the bare open rate ranged 13,000-53,000).
work=$(mktemp -d /dev/shm/bsandbox-torture-bench-XXXXXX)
chmod 1777 "$work"
cd "$work"  # the open stressor leaves files in its cwd
trap 'rm -rf "$work"' EXIT

stressor() {  # stressor ARGS... -> the command line, in cmd
  local s=$1
  shift
  cmd=(stress-ng "--$s" 1 "$@" --temp-path "$work")
  # stress-ng's exec stressor refuses to run as root: as nobody, traced by root
  if [ "$s" = exec ]; then cmd=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${cmd[@]}"); fi
}

calls() {  # stressor ops -> syscalls made by a run of that many bogo-ops
  local cmd
  stressor "$1" "--$1-ops" "$2" -q
  strace -f -c -o "$work/calls" "${cmd[@]}" >/dev/null 2>&1
  awk '$NF == "total" {print $(NF - 2) + 0}' "$work/calls"
}

rate() {  # mode stressor -> bogo ops/s (real time)
  local mode=$1 s=$2 out cmd
  stressor "$s" -t "$seconds" --metrics-brief
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
declare -A per_op
for s in $stressors; do
  # two op counts of about 0.1 s and 0.2 s bare
  bare=$(echo "${r[$s-bare]}" | tr ' ' '\n' | sort -g | awk 'NF {v[n++] = $1} END {print v[int(n / 2)]}')
  n1=$(awk -v b="$bare" 'BEGIN {n = int(b / 10); print n < 2 ? 2 : n}')
  c1=$(calls "$s" "$n1")
  c2=$(calls "$s" $((2 * n1)))
  # A count that hardly grows with the ops is the stressor's own setup
  # (exec: about 940,000 syscalls whatever the count): not a cost per op.
  if ((c2 * 10 < c1 * 11)); then per_op[$s]=0; else per_op[$s]=$(((c2 - c1) / n1)); fi
  echo "$s: $c1 syscalls for $n1 ops, $c2 for $((2 * n1)): ${per_op[$s]} per op" >&2
done
python3 - "$seconds" "$rounds" "$(declare -p r)" "$(declare -p per_op)" $stressors <<'EOF'
import re, statistics, sys
seconds, rounds, decl, decl_calls, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
pairs = lambda d: re.findall(r'\[([a-z0-9-]+)\]="([^"]*)"', d)
r = {k: [float(x) for x in v.split()] for k, v in pairs(decl)}
calls = {k: int(v) for k, v in pairs(decl_calls)}
print(f"| stressor ({seconds} s, median of {rounds}) | bare ops/s | eBPF ops/s | share | ptrace ops/s | share "
      "| added per op: eBPF / ptrace | syscalls per op | added per syscall: eBPF / ptrace |")
print("|---|---|---|---|---|---|---|---|---|")
for s in names:
    m = {mode: statistics.median(r[f"{s}-{mode}"]) for mode in ("bare", "ebpf", "ptrace")}
    def added(mode):  # us per op lost
        return 1e6 / m[mode] - 1e6 / m["bare"] if m[mode] > 0 else float("nan")
    def per_call(mode):  # us per syscall; "-" where strace could not count them
        return f"{added(mode) / calls[s]:.2f}" if calls[s] > 0 else "-"
    print(f"| {s} | {m['bare']:.0f} | {m['ebpf']:.0f} | {100 * m['ebpf'] / m['bare']:.0f}% | {m['ptrace']:.1f} | "
          f"{100 * m['ptrace'] / m['bare']:.0f}% | {added('ebpf'):.1f} / {added('ptrace'):.1f} us | "
          f"{calls[s] if calls[s] > 0 else '-'} | {per_call('ebpf')} / {per_call('ptrace')} us |")
EOF
