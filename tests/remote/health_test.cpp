// health_test.cpp: the state a build's processes share about a server:
// a failure makes it unusable for a while and warns once; a new build
// warns again; a state about another server is not this one's.
#include "sandbox/remote/health.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {
UniqueFd state(const TempDir& t) { return UniqueFd(::open((t / "remote").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)); }
}  // namespace

TEST_CASE("one warning per build, and the server left alone after a failure") {
  TempDir t("health");
  RemoteHealth first(state(t), "http://cache");
  RemoteHealth second(state(t), "http://cache");  // another process of the build
  CHECK(first.usable());
  CHECK(first.failed());
  CHECK_FALSE(second.usable());
  CHECK_FALSE(second.failed());  // already warned
  second.succeeded();
  CHECK(first.usable());
  CHECK_FALSE(first.failed());  // the same build: still no second warning
  first.new_build();
  CHECK(second.usable());
  CHECK(second.failed());
}

TEST_CASE("a state about another server is ignored") {
  TempDir t("health");
  RemoteHealth one(state(t), "http://one");
  CHECK(one.failed());
  RemoteHealth two(state(t), "http://two");
  CHECK(two.usable());
  CHECK(two.failed());
}

TEST_CASE("without a state file every failure warns and nothing is left alone") {
  RemoteHealth h(UniqueFd(), "http://cache");
  CHECK(h.failed());
  CHECK(h.failed());
  CHECK(h.usable());
}
