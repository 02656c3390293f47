#!/usr/bin/env bash
# cargo.sh: the command cache on a Rust build, through RUSTC_WRAPPER.
#
# A small program using clap (derive), regex and serde_json, built offline
# from Debian's librust-*-dev crates (a cargo directory source at
# /usr/share/cargo/registry). Each round, side by side:
#   plain        cargo clean; cargo build
#   cold         the same through the cache, empty: RUSTC_WRAPPER=bsandbox-wrap
#                under bsandbox exec (the wrappers use its tracer)
#   warm         cargo clean; the cached build again
#   edit-plain   a one-line change in main.rs, then cargo build (incremental)
#   edit-cached  the same change, cached build (the dependencies hit, the
#                top crate misses)
# The demo binary's output is checked after each build. rustc lists its
# -L dependency=target/debug/deps directory, which cargo fills in parallel,
# so its listing differs from run to run: it is named unkeyed
# (BSANDBOX_CACHE_UNKEYED_LISTINGS); the crates rustc reads from it stay
# inputs.
#
#   bench/cargo.sh [ROUNDS]      (default 2)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
work=${BSANDBOX_BENCH_WORK:-$here/work}/cargo
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
wrap="$(dirname "$bsandbox")/bsandbox-wrap"
rounds=${1:-2}
mkdir -p "$work/demo/src"
. "$here/cargo_offline.sh" "$work/home"
cd "$work/demo"
cat > Cargo.toml <<'TOML'
[package]
name = "demo"
version = "0.1.0"
edition = "2021"

[dependencies]
clap = { version = "*", features = ["derive"] }
regex = "*"
serde_json = "*"
TOML
main() {
  cat > src/main.rs <<RS
use clap::Parser;

/// Counts regex matches in its arguments and prints them as JSON.
#[derive(Parser)]
struct Args {
    pattern: String,
    words: Vec<String>,
}

fn main() {
    let args = Args::parse();
    let re = regex::Regex::new(&args.pattern).expect("bad pattern");
    let hits: Vec<&String> = args.words.iter().filter(|w| re.is_match(w)).collect();
    println!("{}", serde_json::json!({"version": $1, "matches": hits}));
}
RS
}
main 1
cargo generate-lockfile -q 2>/dev/null || true

build_plain() { cargo build -q >/dev/null 2>&1; }
build_cached() {
  BSANDBOX_CACHE="$work/cache" BSANDBOX_CACHE_ROOT="$work/demo" RUSTC_WRAPPER="$wrap" \
    BSANDBOX_CACHE_UNKEYED_LISTINGS=target/debug/deps \
    "$bsandbox" exec -q --no-journal -- cargo build -q >/dev/null 2>&1 </dev/null
}
check_output() {
  local got
  got=$(target/debug/demo 'a.c' abc xyz)
  [ "$got" = "{\"matches\":[\"abc\"],\"version\":$1}" ] || { echo "demo printed $got after $2" >&2; exit 1; }
}

declare -A times lookups
TIMEFORMAT='%R'
# hits and misses of the cache so far, "H M"
counters() {
  [ -d "$work/cache" ] || { echo "0 0"; return; }
  "$bsandbox" cache stats --cache="$work/cache" | awk '/^hits/{h=$2} /^misses/{m=$2} END{print h+0, m+0}'
}
for ((r = 1; r <= rounds; r++)); do
  main 1
  for mode in plain cold warm; do
    cargo clean -q
    [ "$mode" = cold ] && rm -rf "$work/cache"
    sync
    read -r h0 m0 < <(counters)
    t=$( { time if [ "$mode" = plain ]; then build_plain; else build_cached; fi; } 2>&1 )
    read -r h1 m1 < <(counters)
    lookups[$mode]+="$((h1 - h0))/$((m1 - m0)) "
    check_output 1 "$mode"
    times[$mode]+="$t "
    echo "round $r $mode ${t}s" >&2
  done
  # The one-line change, each from a full build of the unchanged program.
  for mode in edit-plain edit-cached; do
    main 1
    cargo clean -q
    if [ "$mode" = edit-plain ]; then build_plain; else build_cached; fi
    main $((r + 1))
    sync
    read -r h0 m0 < <(counters)
    t=$( { time if [ "$mode" = edit-plain ]; then build_plain; else build_cached; fi; } 2>&1 )
    read -r h1 m1 < <(counters)
    lookups[$mode]+="$((h1 - h0))/$((m1 - m0)) "
    check_output $((r + 1)) "$mode"
    times[$mode]+="$t "
    echo "round $r $mode ${t}s" >&2
  done
done
crates=$(ls target/debug/deps/*.rlib | wc -l)
stats=$("$bsandbox" cache stats --cache="$work/cache" | tr '\n' ';')
python3 - "$rounds" "$crates" "$stats" "$(declare -p lookups)" plain "${times[plain]}" cold "${times[cold]}" \
  warm "${times[warm]}" edit-plain "${times[edit-plain]}" edit-cached "${times[edit-cached]}" <<'PY'
import re, statistics, sys
rounds, crates, stats, lookups, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
hm = dict(re.findall(r'\[([a-z-]+)\]="([^"]*)"', lookups))
t = {rest[i]: list(map(float, rest[i + 1].split())) for i in range(0, len(rest), 2)}
m = {k: statistics.median(v) for k, v in t.items()}
names = {"plain": "cargo build from clean, uncached", "cold": "from clean, cache cold (empty)",
         "warm": "from clean, cache warm (after cargo clean)",
         "edit-plain": "one-line change in main.rs, uncached (incremental)",
         "edit-cached": "one-line change in main.rs, cached"}
print(f"| build ({crates} rlibs) | median wall ({rounds} rounds) | vs uncached clean | all runs (s) | hits/misses |")
print("|---|---|---|---|---|")
for k in ["plain", "cold", "warm", "edit-plain", "edit-cached"]:
    print(f"| {names[k]} | {m[k]:.2f} s | {m[k] / m['plain']:.3f}x | {' '.join(f'{x:.2f}' for x in t[k])} | "
          f"{hm.get(k, '').strip() if k not in ('plain', 'edit-plain') else '-'} |")
print()
print(f"- cache after the runs: {stats}")
PY
