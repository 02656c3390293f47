// agent_decoder_fuzz.cpp: libFuzzer target for what bsandboxd does with the
// bytes and descriptors of any local user: RequestReader (FrameReader and
// parse_request, with the SCM_RIGHTS rules) over a stream received in
// pieces, each piece with the descriptors that came with it.
//
// Input: byte 0 picks the frame limit (odd: the real 4 MiB; even: 256 bytes,
// so that over-long frames are reached); then pieces, each a control byte
// (low 3 bits: descriptors, 5 to 7 meaning more than a message can bring,
// which the kernel marks with an invalid entry; the rest: 1 to 32 bytes)
// and its bytes. Checked: the reader never holds more than a frame and a
// piece; a request is taken only with exactly the descriptors it names, all
// of them sent with its first byte, and never when a message brought more
// than fit; nothing is accepted after it; every descriptor is closed in the
// end; a cache report is taken only with every count from 0 to its bound.
// Build and run: tests/fuzz/run.sh [SECONDS] (not part of CI; results in
// BENCHMARKS.md). Crashes found go into tests/fuzz/corpus, which the unit
// and end-to-end tests replay.
#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sandbox/agent/protocol.h"

namespace {

std::vector<int> g_opened;  // every descriptor this input was sent with

int descriptor() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  g_opened.push_back(fd);
  return fd;
}

void run(const uint8_t* data, size_t size) {
  using namespace bsandbox;
  uint32_t max = data[0] & 1 ? kMaxRequestBytes : 256;
  RequestReader reader(max);
  std::vector<UniqueFd> taken;
  bool done = false, started = false, late = false, dropped = false;
  size_t at = 1;
  while (at < size) {
    uint8_t control = data[at++];
    size_t want = 1 + (control >> 3), n = size - at < want ? size - at : want;
    std::string_view piece(reinterpret_cast<const char*>(data + at), n);
    at += n;
    size_t count = control & 7;
    late |= count && started;
    dropped |= count > kMaxRequestFds;
    started |= n > 0;
    std::vector<UniqueFd> fds;
    for (size_t i = 0; i < count && i < kMaxRequestFds; ++i) fds.emplace_back(descriptor());
    if (count > kMaxRequestFds) fds.emplace_back(-1);
    bool fed = reader.feed(piece, std::move(fds)).has_value();
    if (done && fed) __builtin_trap();  // one request per connection
    if (!fed) return;                   // the agent refuses and closes
    if (reader.buffered() > 4 + size_t(max) + 32) __builtin_trap();
    auto next = reader.next();
    if (!next) return;
    if (!*next) continue;
    done = true;
    if (late || dropped) __builtin_trap();
    taken = reader.take_fds();
    const agent::Request& r = **next;
    size_t named = r.has_submit() ? static_cast<size_t>(std::popcount(r.submit().fds())) + 1 : 0;
    if (taken.size() != named) __builtin_trap();
    for (const auto& fd : taken)
      if (!fd.valid()) __builtin_trap();
    if (r.has_submit() && r.submit().argv_size() == 0) __builtin_trap();
    if (r.has_cache_report()) {
      const agent::CacheTraffic& t = r.cache_report();
      for (int64_t v : {t.hits(), t.misses(), t.uploads(), t.bytes_down(), t.bytes_up(), t.errors(), t.prefetched()})
        if (v < 0 || v > kMaxReportedCount) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  g_opened.clear();
  run(data, size);
  for (int fd : g_opened)
    if (::fcntl(fd, F_GETFD) != -1) __builtin_trap();  // a descriptor kept
  return 0;
}
