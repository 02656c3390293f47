// export_test.cpp: chrome-trace and Prometheus text from a small record.
#include "sandbox/export/export.h"

#include <doctest/doctest.h>

using namespace bsandbox;

namespace {

Record two_processes() {
  Record r;
  r.backend = "ebpf";
  r.argv = {"/usr/bin/make", "-j2"};
  r.start_ns = 1000000000;
  r.end_ns = 3500000000;
  r.exit_code = 2;
  r.complete = false;
  r.lost_events = 7;
  ProcessEntry top;
  top.key = {100, 5};
  top.argv = r.argv;
  top.exe = "/usr/bin/make";
  top.cwd = "/src";
  top.start_ns = r.start_ns;
  top.end_ns = r.end_ns;
  top.exit_code = 2;
  top.files = {{"/src/Makefile", kOpRead}, {"/usr/bin/make", kOpExec | kOpRead}};
  ProcessEntry cc = top;
  cc.key = {101, 9};
  cc.parent = top.key;
  cc.argv = {"cc", "-c", "a \"b\".c"};
  cc.exe = "/usr/bin/cc";
  cc.start_ns = 1500000000;
  cc.end_ns = 2000000000;
  cc.exit_code = 0;
  cc.files = {{"/src/a \"b\".c", kOpRead}, {"/src/a.o", kOpCreate | kOpWrite}, {"/src/\xff", kOpMissing}};
  r.processes = {top, cc};
  return r;
}

}  // namespace

TEST_CASE("chrome-trace: a track per process, a span each, a flow per fork, files as instants") {
  std::string t = to_chrome_trace({{"run.rec", two_processes()}});
  CHECK(t.find("\"name\":\"process_name\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"run.rec: /usr/bin/make -j2\"}") !=
        std::string::npos);
  CHECK(t.find("\"ph\":\"X\",\"cat\":\"process\",\"name\":\"make\",\"pid\":1,\"tid\":100,\"ts\":0.000,\"dur\":2500000.000") !=
        std::string::npos);
  CHECK(t.find("\"ph\":\"X\",\"cat\":\"process\",\"name\":\"cc\",\"pid\":1,\"tid\":101,\"ts\":500000.000,\"dur\":500000.000") !=
        std::string::npos);
  CHECK(t.find("\"ph\":\"s\",\"cat\":\"fork\",\"name\":\"fork\",\"id\":1,\"pid\":1,\"tid\":100,\"ts\":500000.000") !=
        std::string::npos);
  CHECK(t.find("\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"fork\",\"name\":\"fork\",\"id\":1,\"pid\":1,\"tid\":101") !=
        std::string::npos);
  CHECK(t.find("\"args\":{\"path\":\"/src/a \\\"b\\\".c\",\"ops\":\"read\"}") != std::string::npos);
  CHECK(t.find("\"path\":\"/src/\\udcff\"") != std::string::npos);  // bytes as the record's JSON has them
  CHECK(t.find("\"ops\":\"write,create\"") != std::string::npos);
}

TEST_CASE("prometheus: one sample per run and metric, bounded labels") {
  std::string p = to_prometheus({{"a.rec", two_processes()}, {"b\"x.rec", two_processes()}});
  CHECK(p.find("# TYPE bsandbox_run_processes gauge\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_processes{record=\"a.rec\",command=\"make\",backend=\"ebpf\"} 2\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_processes{record=\"b\\\"x.rec\",command=\"make\",backend=\"ebpf\"} 2\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_execs{record=\"a.rec\",command=\"make\",backend=\"ebpf\"} 1\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_files{record=\"a.rec\",command=\"make\",backend=\"ebpf\",op=\"read\"} 3\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_files{record=\"a.rec\",command=\"make\",backend=\"ebpf\",op=\"missing\"} 1\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_duration_seconds{record=\"a.rec\",command=\"make\",backend=\"ebpf\"} 2.500000\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_exit_code{record=\"a.rec\",command=\"make\",backend=\"ebpf\"} 2\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_lost_events{record=\"a.rec\",command=\"make\",backend=\"ebpf\"} 7\n") != std::string::npos);
  CHECK(p.find("bsandbox_run_complete{record=\"a.rec\",command=\"make\",backend=\"ebpf\"} 0\n") != std::string::npos);
  CHECK(p.find("/src/") == std::string::npos);  // never a series per path
  size_t samples = 0;
  for (size_t at = 0; (at = p.find("\nbsandbox_", at)) != std::string::npos; ++at) ++samples;
  CHECK(samples == 2 * (7 + 8));
}
