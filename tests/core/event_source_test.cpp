// event_source_test.cpp: what the interface decides by itself for a
// backend: how the supervisor waits (a source with an fd is polled, one
// without is handed the wait reports), and that reports are not consumed
// unless the source is a tracer. The supervisor's use of every source is in
// tests/run/supervisor_test.cpp, with a scripted fake.
#include "sandbox/core/event_source.h"

#include <doctest/doctest.h>

using namespace bsandbox;

namespace {

class Minimal : public EventSource {
 public:
  explicit Minimal(int fd) : fd_(fd) {}
  std::string_view name() const override { return "minimal"; }
  Result<void> trace_root(pid_t) override { return {}; }
  int wait_fd() const override { return fd_; }
  size_t drain(EventSink&) override { return 0; }
  SourceHealth health() override { return {}; }
  Result<std::vector<sock_filter>> child_filter() override { return std::vector<sock_filter>{}; }

 private:
  int fd_;
};

class Nothing : public EventSink {
 public:
  void on_event(const Event&) override { ++events; }
  int events = 0;
};

}  // namespace

TEST_CASE("a source with an fd is polled; one without is handed the wait reports") {
  CHECK(Minimal(5).waiting() == EventSource::Waiting::kPoll);
  CHECK(Minimal(-1).waiting() == EventSource::Waiting::kWaitpid);
}

TEST_CASE("by default a wait report is not consumed and makes no event") {
  Minimal m(-1);
  Nothing sink;
  CHECK_FALSE(m.on_wait(1234, 0, sink));
  CHECK(sink.events == 0);
  CHECK(m.health().problems.empty());
}
