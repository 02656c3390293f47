// io_test.cpp: whole reads and writes, symlink targets of any length, and
// fields of /proc-style text.
#include "sandbox/base/io.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/base/unique_fd.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

TEST_CASE("read_file reads all of a file, and of /proc, and names a missing one") {
  TempDir t;
  std::string big(200000, 'x');
  big[123456] = 'y';
  std::string f = t / "big";
  put_file(f, big);
  auto got = read_file(f);
  REQUIRE(got);
  CHECK(*got == big);
  auto self = read_file("/proc/self/status");
  REQUIRE(self);
  CHECK(self->find("Pid:") != std::string::npos);
  auto missing = read_file(t.path + "/nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find(t.path + "/nope") != std::string::npos);
}

TEST_CASE("write_all writes everything and names what failed") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  UniqueFd r(p[0]), w(p[1]);
  REQUIRE(write_all(w.get(), "hello", "the pipe"));
  char buf[8] = {};
  CHECK(::read(r.get(), buf, sizeof buf) == 5);
  CHECK(std::string(buf) == "hello");
  UniqueFd ro(::open("/dev/null", O_RDONLY));
  auto e = write_all(ro.get(), "x", "the device");
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("the device") != std::string::npos);
}

TEST_CASE("read_link returns targets longer than any first guess, and names a non-link") {
  TempDir t;
  std::string target(3000, 'a');
  for (size_t i = 200; i < target.size(); i += 200) target[i] = '/';
  REQUIRE(::symlink(target.c_str(), (t.path + "/long").c_str()) == 0);
  REQUIRE(::symlink("short", (t.path + "/s").c_str()) == 0);
  auto got = read_link(t.path + "/long");
  REQUIRE(got);
  CHECK(*got == target);
  UniqueFd dir(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY));
  auto at = read_link_at(dir.get(), "s");
  REQUIRE(at);
  CHECK(*at == "short");
  put_file(t / "plain", "");
  auto not_link = read_link(t.path + "/plain");
  REQUIRE_FALSE(not_link);
  CHECK(not_link.error().message.find("plain") != std::string::npos);
}

TEST_CASE("proc_field finds a whole field name at the start of a line") {
  std::string_view status = "Name:\tmake\nTgid:\t42\nPPid:\t 7 \nUid:\t0\t0\t0\t0\nNoColon 5\n";
  CHECK(proc_field(status, "Name") == "make");
  CHECK(proc_field(status, "Tgid") == "42");
  CHECK(proc_field(status, "PPid") == "7");
  CHECK(proc_field(status, "Uid") == "0\t0\t0\t0");
  CHECK_FALSE(proc_field(status, "Pid"));  // not a prefix of "PPid" or "Tgid"
  CHECK_FALSE(proc_field(status, "NoColon"));
  CHECK_FALSE(proc_field("", "Name"));
  CHECK(proc_field("RssAnon:\t  1024 kB", "RssAnon") == "1024 kB");
}

TEST_CASE("read_link keeps readlink's errno for callers that tell causes apart") {
  TempDir t;
  put_file(t / "plain", "");
  errno = 0;
  CHECK_FALSE(read_link(t / "plain"));
  CHECK(errno == EINVAL);
  errno = 0;
  CHECK_FALSE(read_link(t / "missing"));
  CHECK(errno == ENOENT);
}
