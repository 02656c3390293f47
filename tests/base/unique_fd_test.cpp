// unique_fd_test.cpp: a descriptor is closed exactly once, whoever ends up
// owning it.
#include "sandbox/base/unique_fd.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <utility>

using namespace bsandbox;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

}  // namespace

TEST_CASE("closed when its owner goes, not before; moves hand it over") {
  int raw;
  {
    UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    raw = a.get();
    REQUIRE(a.valid());
    UniqueFd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
    UniqueFd c;
    c = std::move(b);
    CHECK(is_open(raw));
    CHECK(c.get() == raw);
  }
  CHECK_FALSE(is_open(raw));
}

TEST_CASE("reset closes the old one, release gives it away") {
  UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int first = a.get();
  a.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE(a.get() != first);  // opened before the old one was closed
  CHECK_FALSE(is_open(first));
  int second = a.release();
  CHECK_FALSE(a.valid());
  CHECK(is_open(second));
  ::close(second);
  UniqueFd empty;
  empty.reset();  // nothing to close: no harm
  CHECK_FALSE(empty.valid());
}
