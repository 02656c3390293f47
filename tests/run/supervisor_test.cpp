// supervisor_test.cpp: the supervisor's loop on real child processes, with
// a fake source (fake_source.h) scripting the event stream, in both ways a
// source can ask to be waited on: the tree's end, exit statuses, reports
// offered to the source, out-of-order events, reused pids, a slow source,
// orphans outliving the top, stops, the time limit, forwarded signals.
#include "sandbox/run/supervisor.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/run/fake_source.h"

using namespace bsandbox;
using namespace bsandbox::testing;
using Waiting = EventSource::Waiting;

namespace {

const Waiting kBoth[] = {Waiting::kPoll, Waiting::kWaitpid};

const char* name_of(Waiting w) { return w == Waiting::kPoll ? "poll" : "waitpid"; }

struct Ran {
  Result<Supervision> supervision;
  std::vector<ProcessEntry> processes;
  double seconds;
};

Ran run(const std::vector<std::string>& argv, FakeSource& source, const SuperviseOptions& options = {}) {
  NoLinks links;
  ProcessTree tree(links);
  auto t0 = std::chrono::steady_clock::now();
  auto s = supervise(argv, source, tree, "/", options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Ran{std::move(s), tree.entries(0, Clocks::boot_now()), seconds};
}

const ProcessEntry* find(const std::vector<ProcessEntry>& ps, ProcessKey k) {
  for (const auto& p : ps)
    if (p.key == k) return &p;
  return nullptr;
}

bool no_children_left() { return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD; }

}  // namespace

TEST_CASE("the loop ends with the tree; the top's wait status and every report reach the caller and the source") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    FakeSource source(top_only(std::string_view("sh\0-c\0exit 3\0", 13), "/bin/sh"), w);
    auto r = run({"sh", "-c", "exit 3"}, source);
    REQUIRE(r.supervision);
    CHECK(exit_code_from_wait_status(r.supervision->wait_status) == 3);
    CHECK_FALSE(r.supervision->exec_failure);
    CHECK(r.supervision->start_wall <= r.supervision->end_wall);
    REQUIRE(source.reports.size() == 1);
    CHECK(source.reports[0].first == source.root);
    CHECK(source.waiting_events() == 0);
    REQUIRE(r.processes.size() == 1);
    CHECK(r.processes[0].argv == std::vector<std::string>{"sh", "-c", "exit 3"});
    CHECK(r.processes[0].exit_code == 3);  // the supervisor's wait status is authoritative for the top
    CHECK(no_children_left());
  }
}

TEST_CASE("events arriving before their fork, and a reused pid, land on the right processes") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    FakeSource source(
        [](pid_t root) {
          ProcessKey top{static_cast<uint32_t>(root), kRootStart};
          ProcessKey first{77777, 2000}, again{77777, 3000};  // one pid, two processes
          return std::vector<Event>{
              exec_of(again, std::string_view("b\0", 2), "/bin/b", 3001),  // before its fork
              open_of(again, "/etc/b"),
              exit_of(first, 0, 2500),
              fork_of(again, top, "/", 3000),
              exec_of(first, std::string_view("a\0", 2), "/bin/a", 2001),
              fork_of(first, top, "/", 2000),
              exit_of(again, 0, 3500),
          };
        },
        w);
    auto r = run({"true"}, source);
    REQUIRE(r.supervision);
    const ProcessEntry* a = find(r.processes, {77777, 2000});
    const ProcessEntry* b = find(r.processes, {77777, 3000});
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->argv == std::vector<std::string>{"a"});
    CHECK(b->argv == std::vector<std::string>{"b"});
    CHECK(a->parent->pid == static_cast<uint32_t>(source.root));
    CHECK(b->parent->pid == static_cast<uint32_t>(source.root));
    auto has = [](const ProcessEntry* p, const char* path) {
      for (const auto& f : p->files)
        if (f.path == path) return true;
      return false;
    };
    CHECK(has(b, "/etc/b"));
    CHECK_FALSE(has(a, "/etc/b"));
  }
}

TEST_CASE("a slow source, a few events per drain, is drained on every turn until the tree ends") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    FakeSource source(
        [](pid_t root) {
          ProcessKey top{static_cast<uint32_t>(root), kRootStart};
          return std::vector<Event>{open_of(top, "/a"), open_of(top, "/b"), open_of(top, "/c"), open_of(top, "/d")};
        },
        w);
    source.drain_delay = std::chrono::milliseconds(30);
    source.per_drain = 1;
    auto r = run({"sleep", "0.5"}, source);
    REQUIRE(r.supervision);
    CHECK(source.waiting_events() == 0);
    CHECK(source.drains >= 5);
    CHECK(r.seconds < 3);
    REQUIRE(r.processes.size() == 1);
    CHECK(r.processes[0].files.size() == 4);
  }
}

TEST_CASE("orphans keep the run going until they end (the supervisor is their subreaper)") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    FakeSource source({}, w);
    auto r = run({"sh", "-c", "(sleep 0.4; exit 0) & exit 0"}, source);
    REQUIRE(r.supervision);
    CHECK(r.supervision->wait_status == 0);
    CHECK(r.seconds >= 0.35);
    CHECK(source.reports.size() >= 2);  // the top, and the orphan when it ended
    CHECK(no_children_left());
  }
}

TEST_CASE("a command that cannot be found: the exec failure, and 127") {
  FakeSource source;
  auto r = run({"/nonexistent/bsandbox-no-such-command"}, source);
  REQUIRE(r.supervision);
  REQUIRE(r.supervision->exec_failure);
  CHECK(r.supervision->exec_failure->stage == ChildFailure::kExec);
  CHECK(r.supervision->exec_failure->error == ENOENT);
  CHECK(exit_code_from_wait_status(r.supervision->wait_status) == 127);
}

TEST_CASE("a source that cannot trace the top process abandons it") {
  FakeSource source;
  source.trace_result = fail("no tracing today");
  auto r = run({"sleep", "5"}, source);
  REQUIRE_FALSE(r.supervision);
  CHECK(r.supervision.error().message == "no tracing today");
  CHECK(r.seconds < 3);
  CHECK(no_children_left());
}

TEST_CASE("the time limit kills the whole tree, and says so") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    FakeSource source({}, w);
    SuperviseOptions o;
    o.time_limit_ns = 200'000'000;
    int kills = 0, ticks = 0;
    o.kill_tree = [&] { ++kills; };
    o.tick = [&] { ++ticks; };
    auto r = run({"sleep", "10"}, source, o);
    REQUIRE(r.supervision);
    CHECK(r.supervision->stopped == "the wall time limit of 0 s was reached");
    CHECK(WIFSIGNALED(r.supervision->wait_status));
    CHECK(r.seconds < 5);
    CHECK(kills >= 1);
    CHECK(ticks >= 5);
    CHECK(no_children_left());
  }
}

TEST_CASE("a stop asked on the stop fd kills the tree; a wakeup without a reason does not") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    int p[2];
    REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    UniqueFd rd(p[0]), wr(p[1]);
    REQUIRE(::write(wr.get(), "x", 1) == 1);  // read at once: not a stop
    FakeSource source({}, w);
    SuperviseOptions o;
    o.stop_fd = rd.get();
    int asked = 0;
    o.stop_reason = [&]() -> std::string {
      ++asked;
      char c = 0;
      if (::read(rd.get(), &c, 1) != 1) return "";
      return c == 'k' ? "the test asked" : "";
    };
    std::thread later([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      (void)!::write(wr.get(), "k", 1);
    });
    auto r = run({"sleep", "10"}, source, o);
    later.join();
    REQUIRE(r.supervision);
    CHECK(r.supervision->stopped == "the test asked");
    CHECK(r.seconds >= 0.25);
    CHECK(r.seconds < 5);
    CHECK(asked == 2);
  }
}

TEST_CASE("a signal sent to the supervisor by another process goes to the top process") {
  for (Waiting w : kBoth) {
    CAPTURE(name_of(w));
    FakeSource source({}, w);
    // A subshell (not the top) signals its grandparent, the supervisor.
    auto r = run({"sh", "-c", "trap 'exit 7' TERM; (kill -TERM $PPID); sleep 0.5; exit 1"}, source);
    REQUIRE(r.supervision);
    CHECK(exit_code_from_wait_status(r.supervision->wait_status) == 7);
  }
}
