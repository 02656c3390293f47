#!/usr/bin/env bash
# remote_cargo.sh: the remote cache (issue 20) on a cargo workspace, against
# a real server (Debian's nginx, WebDAV, on loopback), side by side in one
# run: the same modes as bench/remote.sh (bare; local cache cold and warm;
# upload; another machine warm from the server directly and through 5 ms
# (with and without fetching ahead) and 20 ms of added round-trip time;
# upload through 5 ms).
#
# The workspace (built offline from Debian's librust-*-dev crates, a cargo
# directory source): `textstats`, a library using regex and serde_json, and
# `demo`, a binary using clap (derive) and textstats. Every cached build is
# `RUSTC_WRAPPER=bsandbox-wrap bsandbox exec -- cargo build`, from clean
# (cargo clean); the two machines share the workspace's path, as CI runners
# do. The demo binary's output is checked after every build.
#
#   bench/remote_cargo.sh [ROUNDS]      (default 3; JOBS=N: cargo -jN in every mode)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
work=${BSANDBOX_BENCH_WORK:-$here/work}/remote-cargo
bsandbox=${BSANDBOX:-$top/build/cli/bsandbox}
wrap="$(dirname "$bsandbox")/bsandbox-wrap"
rounds=${1:-3}
jobs=${JOBS:-2}  # cargo -j, the same in every mode
mkdir -p "$work/ws/textstats/src" "$work/ws/demo/src"
. "$here/cargo_offline.sh" "$work/home"
ws=$work/ws
cat > "$ws/Cargo.toml" <<'TOML'
[workspace]
members = ["textstats", "demo"]
resolver = "2"
TOML
cat > "$ws/textstats/Cargo.toml" <<'TOML'
[package]
name = "textstats"
version = "0.1.0"
edition = "2021"

[dependencies]
regex = "*"
serde_json = "*"
TOML
cat > "$ws/textstats/src/lib.rs" <<'RS'
//! Counts the words of a text that match a pattern, as JSON.
pub fn matches(pattern: &str, words: &[String]) -> serde_json::Value {
    let re = regex::Regex::new(pattern).expect("bad pattern");
    let hits: Vec<&String> = words.iter().filter(|w| re.is_match(w)).collect();
    serde_json::json!({"matches": hits, "count": hits.len()})
}
RS
cat > "$ws/demo/Cargo.toml" <<'TOML'
[package]
name = "demo"
version = "0.1.0"
edition = "2021"

[dependencies]
clap = { version = "*", features = ["derive"] }
textstats = { path = "../textstats" }
TOML
cat > "$ws/demo/src/main.rs" <<'RS'
use clap::Parser;

/// Prints which of its words match a pattern.
#[derive(Parser)]
struct Args {
    pattern: String,
    words: Vec<String>,
}

fn main() {
    let args = Args::parse();
    println!("{}", textstats::matches(&args.pattern, &args.words));
}
RS
cd "$ws"
cargo generate-lockfile -q 2>/dev/null || true

srv=$work/server
. "$here/remote_server.sh"

build() {  # build MODE: one build from clean, its wall time on stdout
  local mode=$1 TIMEFORMAT='%R' t
  if [ "$mode" = bare ]; then
    t=$( { time cargo build -q -j "$jobs" >/dev/null 2>&1; } 2>&1 )
    echo "$t"
    return
  fi
  remote_mode "$mode" "$work/cache"
  t=$( { time BSANDBOX_CACHE="$cache" BSANDBOX_CACHE_ROOT="$ws" RUSTC_WRAPPER="$wrap" \
    BSANDBOX_CACHE_UNKEYED_LISTINGS=target/debug/deps BSANDBOX_CACHE_REMOTE="$remote" \
    BSANDBOX_CACHE_REMOTE_PREFETCH="$prefetch" \
    "$bsandbox" exec -q --no-journal -- cargo build -q -j "$jobs" >/dev/null 2>"$work/remote-$mode.err" </dev/null; } 2>&1 )
  echo "$t"
}

declare -A times traffic
for ((r = 0; r < rounds; r++)); do
  for mode in "${remote_modes[@]}"; do
    cargo clean -q
    sync
    t=$(build "$mode")
    got=$(target/debug/demo 'a.c' abc xyz)
    if [ "$got" != '{"count":1,"matches":["abc"]}' ]; then
      echo "round $((r + 1)) $mode: demo printed $got" >&2
      exit 1
    fi
    times[$mode]+="$t "
    traffic[$mode]=$(remote_traffic "$mode" "$work/cache")
    echo "round $((r + 1)) $mode ${t}s $(grep -c 'remote cache' "$work/remote-$mode.err" 2>/dev/null || true) warnings" >&2
  done
done
crates=$(ls target/debug/deps/*.rlib | wc -l)
args=()
for mode in "${remote_modes[@]}"; do args+=("$mode" "${times[$mode]}" "${traffic[$mode]:-}"); done
remote_table "$rounds" "cargo workspace from clean ($crates rlibs), -j$jobs" "${args[@]}"
