// clocks_test.cpp: the boot-to-wall offset converts kernel times to wall
// times within a millisecond.
#include "sandbox/base/clocks.h"

#include <doctest/doctest.h>

#include <cstdlib>

using namespace bsandbox;

TEST_CASE("boottime plus the measured offset is the wall clock") {
  Clocks c = Clocks::measure();
  int64_t wall = Clocks::wall_now();
  int64_t converted = static_cast<int64_t>(Clocks::boot_now()) + c.boot_to_wall;
  CHECK(std::llabs(converted - wall) < 1000000);
  CHECK(Clocks::boot_now() > 0);
}

TEST_CASE("boottime never goes back") {
  uint64_t last = Clocks::boot_now();
  for (int i = 0; i < 1000; ++i) {
    uint64_t now = Clocks::boot_now();
    CHECK(now >= last);
    last = now;
  }
}
