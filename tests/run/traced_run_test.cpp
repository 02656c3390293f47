// traced_run_test.cpp: a command traced from argv to a TracedRun with a
// fake source: the record's facts and trace, lost events and the other
// problems, the first accesses kept only for the cache, and the lines said
// when the command could not be started.
#include "sandbox/run/traced_run.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include "tests/run/fake_source.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

FakeSource::Script reads_a_file() {
  return [](pid_t root) {
    ProcessKey top{static_cast<uint32_t>(root), kRootStart};
    ProcessKey child{99999, kRootStart + 5};
    return std::vector<Event>{exec_of(top, std::string_view("sh\0-c\0exit 4\0", 13), "/bin/sh", kRootStart + 1),
                              fork_of(child, top, "/", kRootStart + 5),
                              open_of(child, "/etc/input"),
                              open_of(child, "/tmp/output", O_WRONLY | O_CREAT),
                              exit_of(child, 0, kRootStart + 8),
                              exit_of(top, 4 << 8, kRootStart + 9)};
  };
}

}  // namespace

TEST_CASE("a run's record: the facts the supervision knows, and what was traced") {
  FakeSource source(reads_a_file());
  int64_t before = Clocks::wall_now();
  auto run = run_traced(source, {"sh", "-c", "exit 4"}, "/tmp", {}, /*for_cache=*/false);
  REQUIRE(run);
  const Record& rec = run->record;
  CHECK(rec.backend == "fake");
  CHECK(rec.argv == std::vector<std::string>{"sh", "-c", "exit 4"});
  CHECK(rec.cwd == "/tmp");
  CHECK(rec.exit_code == 4);
  CHECK(rec.start_ns >= before);
  CHECK(rec.end_ns >= rec.start_ns);
  CHECK(rec.cache.empty());
  CHECK(rec.agent.empty());
  CHECK(rec.complete);
  CHECK(rec.lost_events == 0);
  REQUIRE(rec.processes.size() == 2);
  CHECK(rec.processes[0].key.pid == static_cast<uint32_t>(source.root));
  CHECK(rec.processes[1].files.size() == 2);
  CHECK(run->problems.empty());
  CHECK(run->events == 6);
  CHECK(run->exec_error.empty());
  CHECK(run->stopped.empty());
  CHECK(run->first_accesses.empty());  // not asked for
}

TEST_CASE("for the cache: the record says miss, and the first accesses are kept") {
  FakeSource source(reads_a_file());
  auto run = run_traced(source, {"sh", "-c", "exit 4"}, "/", {}, /*for_cache=*/true);
  REQUIRE(run);
  CHECK(run->record.cache == "miss");
  CHECK(run->first_accesses.size() >= 2);
  CHECK(run->first_accesses("/etc/input").existed());
  CHECK(run->first_accesses("/tmp/output").first != 0);
  CHECK(run->first_accesses("/nowhere") == PriorAccess{});
}

TEST_CASE("lost events, and what the source and the tree report, make the record incomplete") {
  FakeSource source([](pid_t root) {
    ProcessKey top{static_cast<uint32_t>(root), kRootStart};
    ProcessKey orphan{88888, kRootStart + 3};  // its fork never arrives
    return std::vector<Event>{exec_of(top, std::string_view("true\0", 5), "/bin/true"),
                              exec_of(orphan, std::string_view("x\0", 2), "/bin/x")};
  });
  source.reported.lost = 7;
  source.reported.problems = {"7 events lost (ring buffer full)"};
  source.reported.detail = "fake counts";
  auto run = run_traced(source, {"true"}, "/", {}, false);
  REQUIRE(run);
  CHECK_FALSE(run->record.complete);
  CHECK(run->record.lost_events == 7);
  CHECK(run->problems == std::vector<std::string>{"7 events lost (ring buffer full)",
                                                  "1 processes whose parent was not seen"});
  CHECK(run->detail == "fake counts");
}

TEST_CASE("a command that cannot be started: the line to say, and the shell's exit code") {
  FakeSource source;
  auto run = run_traced(source, {"bsandbox-no-such-command"}, "/", {}, false);
  REQUIRE(run);
  CHECK(run->exec_error == "bsandbox-no-such-command: command not found");
  CHECK(run->record.exit_code == 127);

  CHECK(describe_exec_failure(std::nullopt, "cc").empty());
  CHECK(describe_exec_failure(ChildFailure{ChildFailure::kExec, EACCES}, "cc") == "cc: Permission denied");
  CHECK(describe_exec_failure(ChildFailure{ChildFailure::kSeccomp, EINVAL}, "cc") ==
        "error: installing the io_uring filter failed: Invalid argument");
  CHECK(describe_exec_failure(ChildFailure{ChildFailure::kSetup, EPERM}, "cc") ==
        "error: preparing the command (cgroup, working directory, identity) failed: Operation not permitted");
}

TEST_CASE("a time limit stops the run, and the run says why") {
  FakeSource source;
  SuperviseOptions o;
  o.time_limit_ns = 100'000'000;
  auto run = run_traced(source, {"sleep", "10"}, "/", o, false);
  REQUIRE(run);
  CHECK(run->stopped == "the wall time limit of 0 s was reached");
  CHECK(run->record.exit_code == 128 + SIGKILL);
}
