// provenance_test.cpp: the record's protobuf round trip and its JSON form.
#include "sandbox/core/provenance.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

using namespace bsandbox;

namespace {

Record sample() {
  Record r;
  r.backend = "ebpf";
  r.argv = {"make", "-j2", std::string("\xff\n", 2)};
  r.cwd = "/home/u/proj";
  r.start_ns = 1763900000000000000;
  r.end_ns = 1763900004200000000;
  r.exit_code = 2;
  r.complete = false;
  r.lost_events = 17;
  ProcessEntry top;
  top.key = {4242, 8812345678};
  top.argv = {"make", "-j2"};
  top.exe = "/usr/bin/make";
  top.cwd = "/home/u/proj";
  top.start_ns = 1763900000000100000;
  top.end_ns = 1763900004100000000;
  top.exit_code = 2;
  top.exec_ns = 1763900000000300000;
  top.files = {{"/home/u/proj/Makefile", kOpRead}, {"/usr/bin/make", kOpExec}};
  ProcessEntry child;
  child.key = {4243, 8812345999};
  child.parent = top.key;
  child.argv = {"cc"};
  child.cwd = "/home/u/proj";
  child.files = {{"/home/u/proj/Makefile", kOpStat},
                 {std::string("/home/u/proj/\xfe.o"), kOpCreate | kOpWrite}};
  child.sockets = {{SocketOp::kConnect, "inet:127.0.0.1:80"}, {SocketOp::kBind, "unix:@x"}};
  r.processes = {top, child};
  return r;
}

}  // namespace

TEST_CASE("a record survives the protobuf round trip exactly") {
  Record r = sample();
  auto back = from_protobuf(to_protobuf(r), "test");
  REQUIRE(back);
  CHECK(*back == r);
}

TEST_CASE("the exec time: a number for a process that exec'd, null for one that did not") {
  std::string j = to_json(sample());
  CHECK(j.find("\"exec_ns\": 1763900000000300000") != std::string::npos);
  CHECK(j.find("\"exec_ns\": null") != std::string::npos);
}

TEST_CASE("paths shared by processes are stored once") {
  Record r = sample();
  std::string bytes = to_protobuf(r);
  size_t first = bytes.find("/home/u/proj/Makefile");
  REQUIRE(first != std::string::npos);
  CHECK(bytes.find("/home/u/proj/Makefile", first + 1) == std::string::npos);
}

TEST_CASE("garbage and other protobufs are not records") {
  auto bad = from_protobuf("this is not a record at all", "junk.rec");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.starts_with("junk.rec: "));
  CHECK_FALSE(from_protobuf("", "empty"));
  Record r = sample();
  std::string bytes = to_protobuf(r);
  bytes.resize(bytes.size() / 2);  // truncated
  CHECK_FALSE(from_protobuf(bytes, "half"));
}

TEST_CASE("JSON has every field of the spec, in order, with surrogate escapes") {
  std::string j = to_json(sample());
  const char* fields[] = {"\"schema\": \"bsandbox.provenance/v1\"", "\"backend\": \"ebpf\"",
                          "\"argv\": [\"make\", \"-j2\", \"\\udcff\\n\"]",
                          "\"cwd\": \"/home/u/proj\"", "\"start_ns\": 1763900000000000000",
                          "\"end_ns\": 1763900004200000000", "\"exit_code\": 2",
                          "\"complete\": false", "\"lost_events\": 17", "\"processes\": ["};
  size_t at = 0;
  for (const char* f : fields) {
    CAPTURE(f);
    size_t pos = j.find(f, at);
    REQUIRE(pos != std::string::npos);
    at = pos;
  }
  CHECK(j.find("\"id\": \"4242@8812345678\"") != std::string::npos);
  CHECK(j.find("\"parent\": null") != std::string::npos);
  CHECK(j.find("\"parent\": \"4242@8812345678\"") != std::string::npos);
  CHECK(j.find("\"exe\": null") != std::string::npos);
  CHECK(j.find("\"exit_code\": null") != std::string::npos);
  CHECK(j.find("{\"path\": \"/home/u/proj/\\udcfe.o\", \"ops\": [\"write\", \"create\"]}") !=
        std::string::npos);
}

TEST_CASE("exit codes from wait statuses: status, or 128+signal") {
  CHECK(exit_code_from_wait_status(0) == 0);
  CHECK(exit_code_from_wait_status(3 << 8) == 3);
  CHECK(exit_code_from_wait_status(SIGKILL) == 137);
  CHECK(exit_code_from_wait_status(SIGSEGV | 0x80) == 139);  // core dumped
}

TEST_CASE("process ids are pid@start") {
  CHECK(process_id({4242, 8812345678}) == "4242@8812345678");
}

TEST_CASE("sockets appear in JSON only for processes that reached any") {
  Record r = sample();
  std::string json = to_json(r);
  CHECK(json.find("\"sockets\": [\n        {\"op\": \"connect\", \"address\": \"inet:127.0.0.1:80\"},\n"
                  "        {\"op\": \"bind\", \"address\": \"unix:@x\"}\n      ]") != std::string::npos);
  CHECK(json.find("\"sockets\"") == json.rfind("\"sockets\""));  // the top process has none
}
