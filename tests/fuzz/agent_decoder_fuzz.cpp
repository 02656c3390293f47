// agent_decoder_fuzz.cpp: libFuzzer target for what bsandboxd does with the
// bytes of any local user: FrameReader over the stream (fed in pieces, as
// the socket delivers it), parse_request on every frame. The first input
// byte picks how many descriptors came along and how the stream is split.
// Build and run: tests/fuzz/run.sh [SECONDS] (not part of CI; results in
// BENCHMARKS.md). Crashes found go into tests/fuzz/corpus, which the unit
// and end-to-end tests replay.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sandbox/agent_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t fds = data[0] % 6;
  size_t piece = 1 + data[0] / 6;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  bsandbox::FrameReader reader(bsandbox::kMaxRequestBytes);
  while (!rest.empty()) {
    size_t n = rest.size() < piece ? rest.size() : piece;
    reader.feed(rest.substr(0, n));
    rest.remove_prefix(n);
    for (;;) {
      auto next = reader.next();
      if (!next) return 0;  // the agent refuses and closes
      if (!*next) break;
      auto request = bsandbox::parse_request(**next, fds);
      if (request && request->has_submit() && request->submit().argv_size() == 0) __builtin_trap();
    }
  }
  return 0;
}
