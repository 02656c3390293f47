// result_test.cpp: an error is one line naming the object and the cause.
#include "sandbox/base/result.h"

#include <doctest/doctest.h>

#include <cerrno>

using namespace bsandbox;

namespace {

Result<int> half(int n) {
  if (n % 2) return fail(std::to_string(n) + " is odd");
  return n / 2;
}

}  // namespace

TEST_CASE("a value or one line of text") {
  CHECK(*half(4) == 2);
  auto odd = half(3);
  REQUIRE_FALSE(odd);
  CHECK(odd.error().message == "3 is odd");
}

TEST_CASE("fail_errno: what, then the system's words for the errno") {
  Result<void> r = fail_errno("/tmp/x.json", EACCES);
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "/tmp/x.json: Permission denied");
  Result<void> n = fail_errno("/nope", ENOENT);
  CHECK(n.error().message == "/nope: No such file or directory");
}
