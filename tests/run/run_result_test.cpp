// run_result_test.cpp: the one run result: first accesses (from a tree,
// looked up, through the wire form), the facts written in one step, and the
// completeness rule for a whole run and for a subtree.
#include "sandbox/run/run_result.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include "sandbox/core/provenance.pb.h"
#include "tests/run/fake_source.h"

using namespace bsandbox;
using namespace bsandbox::testing;

TEST_CASE("first accesses: what the tree saw first of each path, {} for a path never accessed") {
  NoLinks links;
  ProcessTree tree(links);
  ProcessKey top{10, kRootStart};
  tree.set_root(10, kRootStart, {"cc"}, "/");
  tree.on_event(exec_of(top, std::string_view("cc\0", 3), "/bin/cc"));
  tree.on_event(open_of(top, "/src/a.c"));
  tree.on_event(open_of(top, "/out/a.o", O_WRONLY | O_CREAT));
  tree.on_event(open_of(top, "/src/a.c", O_WRONLY | O_TRUNC));
  FirstAccesses first = FirstAccesses::of(tree);
  CHECK(first("/src/a.c") == tree.prior("/src/a.c"));
  CHECK(first("/src/a.c").existed());
  CHECK(first("/out/a.o") == tree.prior("/out/a.o"));
  CHECK(first("/out/a.o").first != 0);
  CHECK(first("/never") == PriorAccess{});
  CHECK(first.size() == tree.all_priors().size());

  // The wire form, as the tracer service and the agent carry it.
  pb::SubtreeReply reply;
  first.write_to(reply);
  CHECK(reply.prior_paths_size() == static_cast<int>(first.size()));
  FirstAccesses back = FirstAccesses::read_from(reply);
  CHECK(back.size() == first.size());
  for (const auto& [path, access] : tree.all_priors()) CHECK(back(path) == access);

  // A message whose lists disagree in length: only the pairs.
  reply.add_prior_paths("/unpaired");
  CHECK(FirstAccesses::read_from(reply).size() == first.size());
  CHECK(FirstAccesses().empty());
}

TEST_CASE("set_facts writes the caller's facts and nothing of the trace; facts_of reads them back") {
  Record rec;
  rec.backend = "ebpf";
  rec.complete = false;
  rec.lost_events = 4;
  rec.processes.resize(2);
  RunFacts facts{{"make", "-j2"}, "/src", 10, 20, 2, "miss", "/run/a.sock"};
  set_facts(rec, facts);
  CHECK(rec.argv == facts.argv);
  CHECK(rec.cwd == "/src");
  CHECK(rec.start_ns == 10);
  CHECK(rec.end_ns == 20);
  CHECK(rec.exit_code == 2);
  CHECK(rec.cache == "miss");
  CHECK(rec.agent == "/run/a.sock");
  CHECK(rec.backend == "ebpf");
  CHECK_FALSE(rec.complete);
  CHECK(rec.lost_events == 4);
  CHECK(rec.processes.size() == 2);
  RunFacts read = facts_of(rec);
  CHECK(read.argv == facts.argv);
  CHECK(read.cache == "miss");
  CHECK(read.agent == facts.agent);
  set_facts(rec, RunFacts{});
  CHECK(rec.agent.empty());
  CHECK(rec.argv.empty());
}

TEST_CASE("the completeness rule: every problem one line, lost events alone make a record incomplete too") {
  SourceHealth sh;
  ProcessTree::Health th;
  for (Extent e : {Extent::kWholeRun, Extent::kSubtree}) {
    Completeness c = completeness(sh, th, e);
    CHECK(c.complete);
    CHECK(c.problems.empty());
  }
  sh.lost = 3;
  Completeness lost = completeness(sh, th, Extent::kWholeRun);
  CHECK_FALSE(lost.complete);
  CHECK(lost.problems.empty());  // the backend says it in its own problems when it wants to
  CHECK_FALSE(completeness(sh, th, Extent::kSubtree).complete);

  sh = {};
  sh.problems = {"the ring buffer overflowed"};
  sh.corrupt = 2;
  th.unresolved = 5;
  th.strings_dropped = 1;
  th.elf32 = {ProcessKey{42, 7}};
  Completeness all = completeness(sh, th, Extent::kWholeRun);
  CHECK_FALSE(all.complete);
  CHECK(all.problems == std::vector<std::string>{
                           "the ring buffer overflowed",
                           "2 kernel records were corrupt",
                           "5 accesses whose path could not be determined",
                           "1 events too large to send whole",
                           "process 42@7 runs a 32-bit program, whose syscalls are not decoded",
                       });
  CHECK(completeness(sh, th, Extent::kSubtree).problems == all.problems);
}

TEST_CASE("orphans make a whole run incomplete, not a subtree asked for mid-run") {
  SourceHealth sh;
  ProcessTree::Health th;
  th.orphans = 2;
  Completeness whole = completeness(sh, th, Extent::kWholeRun);
  CHECK_FALSE(whole.complete);
  CHECK(whole.problems == std::vector<std::string>{"2 processes whose parent was not seen"});
  Completeness sub = completeness(sh, th, Extent::kSubtree);
  CHECK(sub.complete);
  CHECK(sub.problems.empty());
}
