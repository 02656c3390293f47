// clocks.cpp: see clocks.h. The offset is taken from five (boottime,
// realtime, boottime) triples, the one whose boottime readings are closest
// together, with realtime assumed at their midpoint.
#include "sandbox/base/clocks.h"

#include <time.h>

namespace bsandbox {
namespace {

int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

Clocks Clocks::measure() {
  // Take the pair of readings closest together.
  Clocks best;
  int64_t best_gap = INT64_MAX;
  for (int i = 0; i < 5; ++i) {
    int64_t b1 = clock_ns(CLOCK_BOOTTIME);
    int64_t w = clock_ns(CLOCK_REALTIME);
    int64_t b2 = clock_ns(CLOCK_BOOTTIME);
    if (b2 - b1 < best_gap) {
      best_gap = b2 - b1;
      best.boot_to_wall = w - (b1 + (b2 - b1) / 2);
    }
  }
  return best;
}

uint64_t Clocks::boot_now() { return static_cast<uint64_t>(clock_ns(CLOCK_BOOTTIME)); }
int64_t Clocks::wall_now() { return clock_ns(CLOCK_REALTIME); }

}  // namespace bsandbox
