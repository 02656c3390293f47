#!/usr/bin/env bash
# run.sh [SECONDS] [BUILD]: builds the agent decoder fuzz target with clang
# (libFuzzer + ASan + UBSan) against the meson build in BUILD (default
# build/), and runs it for SECONDS (default 600) on 2 workers, starting from
# tests/fuzz/corpus. New inputs go to a scratch corpus; crashes to
# tests/fuzz/corpus (they become regression tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
build=${2:-build}
out=$(mktemp -d /tmp/bsandbox-fuzz-XXXXXX)
# The decoder and what it uses (agent/protocol.cpp with base/ and core/), built
# here with the sanitizers; the rest of the agent's part from the meson build.
ninja -C "$build" sandbox/libbsandbox-agent.a >/dev/null
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. -I"$build" \
  tests/fuzz/agent_decoder_fuzz.cpp sandbox/agent/protocol.cpp sandbox/base/framing.cpp \
  "$build/sandbox/agent/agent.pb.cc" \
  -Wl,--start-group "$build"/sandbox/libbsandbox-*.a "$build"/sandbox/*/lib*_pb.a -Wl,--end-group \
  $(pkg-config --libs protobuf-lite libbpf libseccomp libcrypto) -lpthread \
  -o "$out/agent_decoder_fuzz"
mkdir -p "$out/corpus"
cp tests/fuzz/corpus/* "$out/corpus/"
echo "fuzzing for ${seconds} s in $out"
repo=$(pwd)
# Workers write fuzz-N.log into the current directory: run in $out.
(cd "$out" && ./agent_decoder_fuzz -max_total_time="$seconds" -jobs=2 -workers=2 -max_len=8192 \
  -artifact_prefix="$repo/tests/fuzz/corpus/crash-" corpus >log 2>&1) || true
grep -h "DONE" "$out"/fuzz-*.log || true
if grep -l "deadly signal\|ERROR: AddressSanitizer\|runtime error" "$out"/fuzz-*.log; then
  echo "crashes found: see tests/fuzz/corpus/crash-*"
  exit 1
fi
echo "corpus: $(ls "$out/corpus" | wc -l) inputs; logs in $out"
