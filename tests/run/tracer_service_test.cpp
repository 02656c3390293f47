// tracer_service_test.cpp: the service and its client in one process over
// a real socket: a wrapper (this process) asks for the subtree of a child
// it started and gets its processes, first accesses and a completeness
// judged for a subtree, with its own facts in the record; strangers and
// unknown children are refused.
#include "sandbox/run/tracer_service.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "tests/run/fake_source.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

const ProcessKey kChild{424242, 600};

// This process as the tree saw it (a process of the traced build), and the
// child it ran: a read and a write.
std::vector<Event> wrapper_and_child() {
  ProcessKey me{static_cast<uint32_t>(::getpid()), 500};
  return {fork_of(me, ProcessKey{1, 1}, "/", 500), fork_of(kChild, me, "/", 600),
          exec_of(kChild, std::string_view("cc\0", 3), "/usr/bin/cc", 601), open_of(kChild, "/src/a.c"),
          open_of(kChild, "/src/a.o", O_WRONLY | O_CREAT), exit_of(kChild, 0, 700)};
}

// Asks as a wrapper does, while the service answers from this thread.
Result<TracedRun> ask(TracerService& service, FakeSource& source, ProcessTree& tree, pid_t child, RunFacts facts) {
  auto connection = connect_tracer(service.address());
  REQUIRE(connection);
  Result<TracedRun> out = fail("not asked");
  std::thread wrapper([&] { out = request_subtree(connection->get(), child, std::move(facts)); });
  service.serve(source, tree, 0);
  wrapper.join();
  return out;
}

}  // namespace

TEST_CASE("a wrapper gets its child's subtree, with its facts and the first accesses") {
  auto service = TracerService::listen();
  REQUIRE(service);
  CHECK((*service)->address().starts_with("@bsandbox-tracer-"));
  NoLinks links;
  ProcessTree tree(links);
  FakeSource source;
  source.push(wrapper_and_child());  // drained by the service before it answers
  RunFacts facts{{"cc", "-c", "a.c"}, "/src", 5, 9, 0, "miss", ""};
  auto run = ask(**service, source, tree, static_cast<pid_t>(kChild.pid), facts);
  REQUIRE(run);
  CHECK(source.waiting_events() == 0);
  const Record& rec = run->record;
  CHECK(rec.backend == "fake");
  CHECK(rec.complete);
  CHECK(rec.argv == facts.argv);
  CHECK(rec.cwd == "/src");
  CHECK(rec.start_ns == 5);
  CHECK(rec.end_ns == 9);
  CHECK(rec.cache == "miss");
  REQUIRE(rec.processes.size() == 1);
  CHECK(rec.processes[0].key == kChild);
  CHECK(run->first_accesses("/src/a.c").existed());
  CHECK(run->first_accesses("/src/a.o").first != 0);
  CHECK(run->first_accesses("/elsewhere") == PriorAccess{});
}

TEST_CASE("a subtree is judged by the rule for a subtree: orphans elsewhere do not count, lost events do") {
  auto service = TracerService::listen();
  REQUIRE(service);
  NoLinks links;
  ProcessTree tree(links);
  FakeSource source;
  auto events = wrapper_and_child();
  events.push_back(exec_of(ProcessKey{31337, 50}, std::string_view("x\0", 2), "/bin/x"));  // fork not yet read
  source.push(std::move(events));
  auto run = ask(**service, source, tree, static_cast<pid_t>(kChild.pid), {});
  REQUIRE(run);
  CHECK(tree.health().orphans == 1);
  CHECK(run->record.complete);

  source.reported.lost = 1;
  run = ask(**service, source, tree, static_cast<pid_t>(kChild.pid), {});
  REQUIRE(run);
  CHECK_FALSE(run->record.complete);
  CHECK(run->record.lost_events == 1);
}

TEST_CASE("a child the service never saw is an error naming it") {
  auto service = TracerService::listen();
  REQUIRE(service);
  NoLinks links;
  ProcessTree tree(links);
  FakeSource source;
  source.push(wrapper_and_child());
  auto run = ask(**service, source, tree, 5, {});
  REQUIRE_FALSE(run);
  CHECK(run.error().message ==
        "tracer service: no process 5 started by process " + std::to_string(::getpid()) + " was seen");
}

TEST_CASE("a process outside the traced tree gets no answer") {
  auto service = TracerService::listen();
  REQUIRE(service);
  NoLinks links;
  ProcessTree tree(links);
  FakeSource source;  // this process is in no tree
  auto run = ask(**service, source, tree, static_cast<pid_t>(kChild.pid), {});
  CHECK_FALSE(run);
}

TEST_CASE("with nobody waiting, serve returns at once; a service that is gone cannot be reached") {
  std::string address;
  {
    auto service = TracerService::listen();
    REQUIRE(service);
    NoLinks links;
    ProcessTree tree(links);
    FakeSource source;
    (*service)->serve(source, tree, 0);
    address = (*service)->address();
  }
  CHECK_FALSE(connect_tracer(address));
}
