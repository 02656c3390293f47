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
ninja -C "$build" sandbox/libsandbox.a sandbox/libprovenance_pb.a >/dev/null
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. -I"$build" -I"$build/sandbox" \
  tests/fuzz/agent_decoder_fuzz.cpp sandbox/agent_protocol.cpp "$build/sandbox/agent.pb.cc" \
  "$build/sandbox/libsandbox.a" "$build/sandbox/libprovenance_pb.a" \
  $(pkg-config --libs protobuf-lite libbpf libseccomp libcrypto) -lpthread \
  -o "$out/agent_decoder_fuzz"
mkdir -p "$out/corpus"
cp tests/fuzz/corpus/* "$out/corpus/"
echo "fuzzing for ${seconds} s in $out"
"$out/agent_decoder_fuzz" -max_total_time="$seconds" -jobs=2 -workers=2 -max_len=8192 \
  -artifact_prefix=tests/fuzz/corpus/crash- "$out/corpus" 2>&1 | tee "$out/log" | grep -E "DONE|pulse|NEW|crash|ERROR" | tail -5
grep -h "stat::number_of_executed_units\|Done [0-9]* runs" "$out"/fuzz-*.log 2>/dev/null | tail -4 || true
echo "corpus: $(ls "$out/corpus" | wc -l) inputs; logs in $out"
