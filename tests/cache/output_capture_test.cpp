// output_capture_test.cpp: a command's stdout and stderr pass through to
// bsandbox's own and are kept whole, apart, for a later hit to replay.
#include "sandbox/cache/output_capture.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

using namespace bsandbox;

namespace {

std::string read_whole(int fd) {
  std::string out;
  char buf[65536];
  for (off_t at = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return out;
}

}  // namespace

TEST_CASE("both streams kept apart and whole, larger than a pipe holds, and passed through as they come") {
  // Our own stdout and stderr become files we read, to see the pass-through.
  int our_out = ::memfd_create("test-stdout", MFD_CLOEXEC), our_err = ::memfd_create("test-stderr", MFD_CLOEXEC);
  REQUIRE(our_out >= 0);
  REQUIRE(our_err >= 0);
  int saved_out = ::dup(1), saved_err = ::dup(2);
  ::dup2(our_out, 1);
  ::dup2(our_err, 2);
  std::string big(300000, 'o');
  big.back() = '\n';
  std::string passed_out, passed_err, kept_out, kept_err;
  {
    auto c = OutputCapture::start();
    REQUIRE(c);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(c->child_out(), 1);
      ::dup2(c->child_err(), 2);
      (void)!::write(1, big.data(), big.size());
      (void)!::write(2, "warning: x\n", 11);
      _exit(0);
    }
    ::waitpid(pid, nullptr, 0);
    c->finish();
    kept_out = read_whole(c->out_file());
    kept_err = read_whole(c->err_file());
  }
  ::dup2(saved_out, 1);
  ::dup2(saved_err, 2);
  ::close(saved_out);
  ::close(saved_err);
  passed_out = read_whole(our_out);
  passed_err = read_whole(our_err);
  ::close(our_out);
  ::close(our_err);
  CHECK(kept_out == big);
  CHECK(kept_err == "warning: x\n");
  CHECK(passed_out == big);
  CHECK(passed_err == "warning: x\n");
}

TEST_CASE("nothing written: empty files") {
  auto c = OutputCapture::start();
  REQUIRE(c);
  c->finish();
  CHECK(read_whole(c->out_file()).empty());
  CHECK(read_whole(c->err_file()).empty());
}
