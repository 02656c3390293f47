// dir_test.cpp: listing through an owned stream, from a path or from a
// descriptor the caller keeps.
#include "sandbox/base/dir.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <set>

#include "sandbox/base/unique_fd.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

std::set<std::string> names(Dir& d) {
  std::set<std::string> out;
  while (const dirent* e = d.next()) out.insert(e->d_name);
  return out;
}

int open_fds() {
  auto d = Dir::open("/proc/self/fd");
  REQUIRE(d);
  return static_cast<int>(names(*d).size());
}

}  // namespace

TEST_CASE("every entry but . and .., from a path") {
  TempDir t;
  put_file(t / "a", "");
  put_file(t / "b\nc", "");
  auto d = Dir::open(t.path);
  REQUIRE(d);
  CHECK(names(*d) == std::set<std::string>{"a", "b\nc"});
  CHECK(d->error() == 0);
  auto missing = Dir::open(t.path + "/none");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("/none") != std::string::npos);
}

TEST_CASE("from a descriptor: the caller's stays open and unmoved, nothing leaks") {
  TempDir t;
  put_file(t / "x", "");
  UniqueFd fd(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY));
  int before = open_fds();
  for (int i = 0; i < 3; ++i) {
    auto d = Dir::open_fd(fd.get(), "the test directory");
    REQUIRE(d);
    CHECK(names(*d) == std::set<std::string>{"x"});  // from the start each time
  }
  CHECK(open_fds() == before);
  CHECK(::fcntl(fd.get(), F_GETFD) >= 0);
  // A descriptor that is not a directory: an error naming it, no leak.
  UniqueFd file(::open((t.path + "/x").c_str(), O_RDONLY));
  auto bad = Dir::open_fd(file.get(), "the file x");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("the file x") != std::string::npos);
  CHECK(open_fds() == before + 1);
}
