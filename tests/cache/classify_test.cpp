// classify_test.cpp: what a run's record makes an input (and with which
// aspects, from before the run or now) and what a product; sockets the run
// did not bind make it uncacheable.
#include "sandbox/cache/classify.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

TEST_CASE("classify: what the run could have based its result on is an input, what it changed a product") {
  Run r;
  r.file("/r/src.c", kOpRead)
      .file("/r/dir", kOpReaddir)
      .file("/r/probe.h", kOpMissing)
      .file("/usr/bin/cc", kOpExec | kOpRead)
      .file("/r/meta", kOpStat)
      .file("/r/read-and-stat", kOpStat | kOpRead)
      .file("/r/new.o", kOpCreate | kOpWrite, PriorAccess{kOpCreate | kOpWrite, 0})
      .file("/r/old.o", kOpWrite, PriorAccess{kOpWrite, 0})  // O_CREAT|O_TRUNC: works either way
      .file("/r/gone", kOpDelete, PriorAccess{kOpDelete, kUsesPresent})
      .file("/r/made-then-read", kOpCreate | kOpWrite | kOpRead, PriorAccess{kOpCreate | kOpWrite, 0})
      .file("/r/out-probed", kOpMissing | kOpCreate | kOpWrite, PriorAccess{kOpMissing, kUsesAbsent})
      .file("/r/mkdir", kOpCreate, PriorAccess{kOpCreate, kUsesAbsent})
      .file("/r/as.o", kOpStat | kOpDelete | kOpCreate | kOpWrite, PriorAccess{kOpStat, kUsesMeta | kUsesPresent})
      .file("/r/chmod", kOpWrite, PriorAccess{kOpWrite, kUsesPresent | kUsesKept})
      .file("/tmp/cc123.s", kOpCreate | kOpWrite | kOpRead | kOpDelete, PriorAccess{kOpCreate | kOpWrite, 0})
      .file("/dev/null", kOpWrite);
  Classified c = classify(r.rec, r.priors(), "/r");
  CHECK(c.uncacheable.empty());
  std::map<std::string, std::pair<uint32_t, InputFrom>> inputs;
  for (const auto& in : c.inputs) inputs[in.path + (in.from == InputFrom::kKept ? "#kept" : "")] = {in.aspects, in.from};
  using F = InputFrom;
  CHECK(inputs == std::map<std::string, std::pair<uint32_t, InputFrom>>{
                      {"/r/as.o", {kAspectMeta | kAspectOrder, F::kBefore}},
                      {"/r/chmod", {kAspectPresent, F::kBefore}},
                      {"/r/chmod#kept", {kAspectContent, F::kKept}},
                      {"/r/dir", {kAspectListing, F::kNow}},
                      {"/r/gone", {kAspectPresent, F::kBefore}},
                      {"/r/meta", {kAspectMeta | kAspectOrder | kAspectMtime, F::kNow}},
                      {"/r/mkdir", {kAspectAbsent, F::kBefore}},
                      {"/r/out-probed", {kAspectAbsent, F::kBefore}},
                      {"/r/probe.h", {kAspectAbsent, F::kNow}},
                      {"/r/read-and-stat", {kAspectContent | kAspectMeta | kAspectPlace, F::kNow}},
                      {"/r/src.c", {kAspectContent, F::kNow}},
                      {"/usr/bin/cc", {kAspectContent, F::kNow}}});
  std::map<std::string, std::pair<bool, bool>> produced;  // existed before, in root
  for (const auto& p : c.produced) produced[p.path] = {p.existed_before, p.in_root};
  CHECK(produced == std::map<std::string, std::pair<bool, bool>>{
                        {"/r/as.o", {true, true}},
                        {"/r/chmod", {true, true}},
                        {"/r/gone", {true, true}},
                        {"/r/made-then-read", {false, true}},
                        {"/r/mkdir", {false, true}},
                        {"/r/new.o", {false, true}},
                        {"/r/old.o", {true, true}},
                        {"/r/out-probed", {false, true}},
                        {"/tmp/cc123.s", {false, false}}});
}

TEST_CASE("classify: what a run depended on of a path it then changed is its state from before the run") {
  auto before = [](OpSet ops, PriorAccess prior) -> std::pair<uint32_t, std::string> {
    Run r;
    r.file("/r/f", ops, prior);
    Classified c = classify(r.rec, r.priors(), "/r");
    for (const auto& in : c.inputs)
      if (in.from == InputFrom::kBefore) return {in.aspects, c.uncacheable};
    return {0, c.uncacheable};
  };
  using P = std::pair<uint32_t, std::string>;
  CHECK(before(kOpRead | kOpWrite, {kOpRead, kUsesContent}) == P{kAspectContent, ""});
  // stat, then read, then rewrite (ranlib, sed -i): the read counts though the first look was a stat
  CHECK(before(kOpStat | kOpRead | kOpWrite, {kOpStat, kUsesMeta | kUsesContent | kUsesPresent}) ==
        P{kAspectContent | kAspectMeta | kAspectOrder, ""});
  // appending, truncating, moving away: the result is made of the old content
  CHECK(before(kOpWrite, {kOpWrite, kUsesContent | kUsesPresent}) == P{kAspectContent, ""});
  CHECK(before(kOpDelete, {kOpDelete, kUsesContent | kUsesListing | kUsesPresent}) ==
        P{kAspectContent | kAspectListing, ""});
  CHECK(before(kOpStat | kOpDelete | kOpCreate | kOpWrite, {kOpStat, kUsesMeta | kUsesPresent}) ==
        P{kAspectMeta | kAspectOrder, ""});
  CHECK(before(kOpDelete, {kOpDelete, kUsesPresent}) == P{kAspectPresent, ""});
  CHECK(before(kOpMissing | kOpCreate | kOpWrite, {kOpMissing, kUsesAbsent}) == P{kAspectAbsent, ""});
  // a read after the run made the file is of its own doing
  CHECK(before(kOpCreate | kOpWrite | kOpRead, {kOpCreate | kOpWrite, 0}) == P{0, ""});
  // found, then missing before any change of its own: someone else's doing
  CHECK(before(kOpStat | kOpMissing | kOpCreate, {kOpStat, kUsesMeta | kUsesAbsent}).second.find("changed while it ran") !=
        std::string::npos);
  Run incomplete;
  incomplete.rec.complete = false;
  CHECK(classify(incomplete.rec, incomplete.priors(), "/r").uncacheable == "its record is incomplete");
}

TEST_CASE("sockets: the run's own servers are fine, anything else is input no key holds") {
  Run r;
  r.rec.processes[0].sockets = {{SocketOp::kBind, "inet:127.0.0.1:8080"}, {SocketOp::kConnect, "inet:127.0.0.1:8080"},
                                {SocketOp::kConnect, "unix:@bsandbox-tracer-1"}};
  SocketPolicy policy{false, {"unix:@bsandbox-tracer-1"}, ""};
  CHECK(classify(r.rec, r.priors(), "/r", {}, policy).uncacheable.empty());
  r.rec.processes[0].sockets.push_back({SocketOp::kConnect, "inet:127.0.0.1:9090"});
  CHECK(classify(r.rec, r.priors(), "/r", {}, policy).uncacheable ==
        "it connects to inet:127.0.0.1:9090: what comes back is not keyed (--cache-allow-network, if the answer "
        "never changes)");
  policy.allow_network = true;
  CHECK(classify(r.rec, r.priors(), "/r", {}, policy).uncacheable.empty());
}

TEST_CASE("classify: /dev and the ignored paths are neither inputs nor products") {
  Run r;
  r.file("/dev/tty", kOpRead | kOpWrite)
      .file("/home/u/.cache/bsandbox/objects/ab/cd", kOpRead)
      .file("/home/u/.cache/bsandbox/stats", kOpWrite, PriorAccess{kOpWrite, 0})
      .file("/etc/bsandbox/remote.key", kOpRead)
      .file("/etc/bsandbox/remote.key2", kOpRead)
      .file("/r/in", kOpRead);
  Classified c = classify(r.rec, r.priors(), "/r", {"/home/u/.cache/bsandbox", "", "/etc/bsandbox/remote.key"});
  REQUIRE(c.inputs.size() == 2);
  CHECK(c.inputs[0].path == "/etc/bsandbox/remote.key2");  // a name that merely starts the same is not within
  CHECK(c.inputs[1].path == "/r/in");
  CHECK(c.produced.empty());
  CHECK(c.uncacheable.empty());
  c = classify(r.rec, r.priors(), "/r", {"/home/u/.cache/bsandbox", "/etc/bsandbox"});
  REQUIRE(c.inputs.size() == 1);
  CHECK(c.inputs[0].path == "/r/in");
  CHECK(c.produced.empty());
  CHECK(c.uncacheable.empty());
}

TEST_CASE("classify: nothing known of a path's past is what its ops say; the first reason not to cache is kept") {
  Run r;
  r.file("/r/in", kOpRead);
  r.prior.clear();  // the tree knew nothing: PriorAccess{}
  Classified c = classify(r.rec, r.priors(), "/r");
  REQUIRE(c.inputs.size() == 1);
  CHECK(c.inputs[0].aspects == kAspectContent);
  r.rec.complete = false;
  r.rec.processes[0].sockets = {{SocketOp::kConnect, "inet:10.0.0.1:53"}};
  CHECK(classify(r.rec, r.priors(), "/r").uncacheable == "its record is incomplete");
}

TEST_CASE("foreign_socket: bound names, loopback ports of its own servers, bsandbox's own sockets") {
  Record rec;
  rec.processes.emplace_back();
  auto& s = rec.processes[0].sockets;
  s = {{SocketOp::kBind, "inet:0.0.0.0:8000"}, {SocketOp::kConnect, "inet:127.0.0.1:8000"},
       {SocketOp::kBind, "unix:/tmp/sock"}, {SocketOp::kConnect, "unix:/tmp/sock"},
       {SocketOp::kConnect, "unix:@agent"}};
  CHECK(foreign_socket(rec, {false, {"unix:@agent"}, ""}) == "");
  CHECK(foreign_socket(rec, {}) == "unix:@agent");
  s.push_back({SocketOp::kConnect, "inet6:[::1]:8000"});
  CHECK(foreign_socket(rec, {false, {"unix:@agent"}, ""}) == "");
  s.push_back({SocketOp::kConnect, "inet:10.0.0.1:8000"});  // the same port elsewhere is not its own
  CHECK(foreign_socket(rec, {false, {"unix:@agent"}, ""}) == "inet:10.0.0.1:8000");

  // bsandbox's own processes inside (bsandbox-wrap reaching a remote cache).
  rec.processes.emplace_back();
  rec.processes[1].exe = "/usr/bin/bsandbox";
  rec.processes[1].sockets = {{SocketOp::kConnect, "inet:10.0.0.9:9092"}};
  rec.processes[0].sockets.pop_back();
  CHECK(foreign_socket(rec, {false, {"unix:@agent"}, ""}) == "inet:10.0.0.9:9092");
  CHECK(foreign_socket(rec, {false, {"unix:@agent"}, "/usr/bin/bsandbox"}) == "");
  CHECK(foreign_socket(rec, {false, {"unix:@agent"}, "/usr/bin/other"}) == "inet:10.0.0.9:9092");
}
