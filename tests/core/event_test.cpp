// event_test.cpp: the event types' small behaviours: a process is its pid
// and start time together (a reused pid is another process), a kernel
// path's flags, and every event's common fields reachable whatever its kind.
#include "sandbox/core/event.h"

#include <doctest/doctest.h>

#include <unordered_set>

using namespace bsandbox;

TEST_CASE("a process is (pid, start): a reused pid is another process") {
  ProcessKey a{100, 5000}, again{100, 5000}, reused{100, 9000}, other{101, 5000};
  CHECK(a == again);
  CHECK_FALSE(a == reused);
  CHECK_FALSE(a == other);
  std::unordered_set<ProcessKey, ProcessKeyHash> seen{a, reused, other};
  CHECK(seen.size() == 3);
  CHECK(seen.count(again) == 1);
}

TEST_CASE("a kernel path says what the kernel said about it") {
  KernelPath plain{"/a", 0};
  CHECK_FALSE((plain.truncated() || plain.unreachable() || plain.deleted() || plain.fault()));
  KernelPath t{"/a", BS_SF_TRUNCATED};
  CHECK(t.truncated());
  CHECK_FALSE(t.deleted());
  KernelPath both{"/a", static_cast<uint8_t>(BS_SF_DELETED | BS_SF_UNREACHABLE)};
  CHECK(both.deleted());
  CHECK(both.unreachable());
  CHECK_FALSE(both.fault());
  CHECK(KernelPath{"", BS_SF_FAULT}.fault());
}

TEST_CASE("base_of reaches the common fields of every kind of event") {
  ForkEvent f;
  f.tid = 1;
  ExecEvent x;
  x.tid = 2;
  ExitEvent e;
  e.tid = 3;
  FileEvent file;
  file.tid = 4;
  file.proc = ProcessKey{7, 8};
  uint32_t want = 1;
  for (const Event& ev : {Event(f), Event(x), Event(e), Event(file)}) CHECK(base_of(ev).tid == want++);
  CHECK(base_of(Event(file)).proc == ProcessKey{7, 8});
}
