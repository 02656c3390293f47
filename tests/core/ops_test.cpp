// ops_test.cpp: op names in the spec's order.
#include "sandbox/core/ops.h"

#include <doctest/doctest.h>

using namespace bsandbox;

TEST_CASE("every op has its spec name and back") {
  for (Op op : {kOpRead, kOpWrite, kOpCreate, kOpDelete, kOpStat, kOpMissing, kOpReaddir, kOpExec}) {
    auto back = op_from_name(op_name(op));
    REQUIRE(back);
    CHECK(*back == op);
  }
  CHECK_FALSE(op_from_name("append"));
}

TEST_CASE("ops_to_string lists ops in spec order") {
  CHECK(ops_to_string(kOpWrite | kOpCreate) == "write,create");
  CHECK(ops_to_string(kOpExec | kOpRead) == "read,exec");
  CHECK(ops_to_string(0) == "");
}
