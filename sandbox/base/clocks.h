// clocks.h: the two clocks a record's times come from.
//
// The kernel stamps events with CLOCK_BOOTTIME (it never jumps, and it is
// what BPF programs can read); records give wall-clock times. A run measures
// the offset between the two once, as the pair of readings closest together,
// and converts with it, so every time in one record is on one scale.
#pragma once

#include <cstdint>

namespace bsandbox {

struct Clocks {
  // wall = boottime + boot_to_wall, measured when the run starts.
  int64_t boot_to_wall = 0;
  static Clocks measure();
  static uint64_t boot_now();
  static int64_t wall_now();
};

}  // namespace bsandbox
