// record_printer_test.cpp: the tree and summary a person reads.
#include "sandbox/export/record_printer.h"

#include <doctest/doctest.h>

using namespace bsandbox;

namespace {
Record sample() {
  Record r;
  r.backend = "ebpf";
  r.start_ns = 0;
  r.end_ns = 4200000000;
  ProcessEntry top;
  top.key = {10, 1};
  top.argv = {"sh", "-c", "cc a.c"};
  top.exit_code = 0;
  top.end_ns = 4100000000;
  top.files = {{"/usr/bin/dash", kOpExec}};
  ProcessEntry cc;
  cc.key = {11, 2};
  cc.parent = top.key;
  cc.argv = {"cc", "a.c"};
  cc.exit_code = 1;
  cc.files = {{"/w/a.c", kOpRead}, {"/w/a.out", kOpCreate | kOpWrite}, {"/w/old", kOpDelete}};
  ProcessEntry stray;  // parent not in the record
  stray.key = {12, 3};
  stray.parent = ProcessKey{99, 9};
  stray.argv = {std::string("we\nird\xff")};
  r.processes = {top, cc, stray};
  return r;
}
}  // namespace

TEST_CASE("summary line counts distinct files read, written, deleted") {
  Record r = sample();
  CHECK(summary_line(r) ==
        "3 processes, 2 files read, 1 written, 1 deleted, 4.20 s, backend ebpf, complete");
  r.complete = false;
  r.lost_events = 5;
  r.processes.resize(1);
  CHECK(summary_line(r) ==
        "1 process, 1 file read, 0 written, 0 deleted, 4.20 s, backend ebpf, INCOMPLETE (5 "
        "events lost)");
}

TEST_CASE("the tree indents children under their parent") {
  std::string t = print_tree(sample());
  CHECK(t.find("10 sh -c 'cc a.c'  [exit 0, 4.10 s]\n") == 0);
  CHECK(t.find("    exec         /usr/bin/dash\n") != std::string::npos);
  CHECK(t.find("\n  11 cc a.c  [exit 1, 0.00 s]\n") != std::string::npos);
  CHECK(t.find("      write,create /w/a.out\n") != std::string::npos);
  CHECK(t.find("\n12 'we\\nird\\xff'  [running, 0.00 s]\n") != std::string::npos);
  CHECK(t.ends_with("backend ebpf, complete\n"));
}

TEST_CASE("printable escapes what a terminal would misrender") {
  CHECK(printable("plain/path") == "plain/path");
  CHECK(printable("a\nb\tc\\") == "a\\nb\\tc\\\\");
  CHECK(printable(std::string("\x01\x7f\xff", 3)) == "\\x01\\x7f\\xff");
  CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
}
