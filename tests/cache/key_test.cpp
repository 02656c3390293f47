// key_test.cpp: what the weak key leaves out (variables that differ
// between identical invocations) and what it keeps: inherited descriptors
// by content, or the command is uncacheable.
#include "sandbox/cache/key.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

TEST_CASE("the keyed environment leaves out what differs between identical invocations") {
  char* env[] = {const_cast<char*>("PWD=/x"), const_cast<char*>("CFLAGS=-O2"),
                 const_cast<char*>("BSANDBOX_CACHE=/c"), const_cast<char*>("SHLVL=3"),
                 const_cast<char*>("MAKEFLAGS= -j2 --jobserver-auth=fifo:/tmp/GMfifo9 -- V=1"),
                 const_cast<char*>("A=1"), nullptr};
  CHECK(keyed_environment(env) == std::vector<std::string>{"A=1", "CFLAGS=-O2", "MAKEFLAGS=-- V=1"});
  CHECK(keyed_makeflags("w -j2 --jobserver-auth=3,4 -- Z=1 CFLAGS=-g\\ -O2 A=") ==
        keyed_makeflags("w --jobserver-auth=5,6 -- A= Z=1 CFLAGS=-g\\ -O2"));
  CHECK(keyed_makeflags("w -- CFLAGS=-g\\ -O2 A=") == "w -- A= CFLAGS=-g\\ -O2");
}

TEST_CASE("inherited descriptors: a file read through one is keyed by content, one written to is not cacheable") {
  Setup s;
  put_file(s.root + "/in", "one\n");
  auto with_fd = [&](int flags) {
    int fd = ::open((s.root + "/in").c_str(), flags);  // not close-on-exec: inherited
    REQUIRE(fd >= 0);
    CacheRequest req = s.request("cat <&3");
    ::close(fd);
    return req;
  };
  Digest first = with_fd(O_RDONLY).weak;
  CHECK(with_fd(O_RDONLY).weak == first);
  put_file(s.root + "/in", "two\n");
  CHECK_FALSE(with_fd(O_RDONLY).weak == first);
  CHECK(with_fd(O_RDONLY).uncacheable.empty());
  CHECK(with_fd(O_WRONLY).uncacheable.find("open for writing") != std::string::npos);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  CHECK(s.request().uncacheable.find("a pipe, socket or device") != std::string::npos);
  // unless it is a jobserver's, named in MAKEFLAGS or cargo's CARGO_MAKEFLAGS
  for (const char* var : {"MAKEFLAGS= -j2 --jobserver-auth=", "CARGO_MAKEFLAGS=-j --jobserver-fds="}) {
    std::string flags = var + std::to_string(p[0]) + "," + std::to_string(p[1]);
    char* env[] = {const_cast<char*>("PATH=/usr/bin:/bin"), flags.data(), nullptr};
    CHECK(s.cache->prepare({"/bin/sh", "-c", "x"}, s.root, s.root, env, false).uncacheable == "");
  }
  ::close(p[0]);
  ::close(p[1]);
}

namespace {

// weak_key with a memo of its own.
struct Keying {
  TempDir t{"key"};
  UniqueFd hashes;
  Keying() {
    REQUIRE(::mkdir((t / "hashes").c_str(), 0755) == 0);
    hashes.reset(::open((t / "hashes").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  WeakKey key(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root,
              char** env = kEnv, const std::vector<std::string>& unkeyed = {}, bool network = false) {
    return weak_key(argv, cwd, root, env, unkeyed, network, HashMemo(hashes.get(), ""));
  }
};

}  // namespace

TEST_CASE("root_relative") {
  CHECK(root_relative("/r/a/b", "/r") == "a/b");
  CHECK(root_relative("/r", "/r") == "");
  CHECK(root_relative("/a/b", "/") == "a/b");
}

TEST_CASE("weak_key: the cwd relative to the root (another checkout shares it); argv, environment and options count") {
  Keying k;
  Digest here = k.key({"/bin/sh", "-c", "x"}, "/r1/sub", "/r1").digest;
  CHECK(k.key({"/bin/sh", "-c", "x"}, "/r2/sub", "/r2").digest == here);
  CHECK_FALSE(k.key({"/bin/sh", "-c", "x"}, "/r1", "/r1").digest == here);
  CHECK_FALSE(k.key({"/bin/sh", "-c", "y"}, "/r1/sub", "/r1").digest == here);
  CHECK_FALSE(k.key({"/bin/sh", "-c x"}, "/r1/sub", "/r1").digest == here);  // words keep their boundaries
  char* env[] = {const_cast<char*>("PATH=/usr/bin:/bin"), const_cast<char*>("CC=clang"), nullptr};
  CHECK_FALSE(k.key({"/bin/sh", "-c", "x"}, "/r1/sub", "/r1", env).digest == here);
  char* same[] = {const_cast<char*>("PATH=/usr/bin:/bin"), const_cast<char*>("PWD=/elsewhere"), nullptr};
  CHECK(k.key({"/bin/sh", "-c", "x"}, "/r1/sub", "/r1", same).digest == here);
  CHECK_FALSE(k.key({"/bin/sh", "-c", "x"}, "/r1/sub", "/r1", kEnv, {"/r1/deps"}).digest == here);
  CHECK_FALSE(k.key({"/bin/sh", "-c", "x"}, "/r1/sub", "/r1", kEnv, {}, true).digest == here);
  CHECK(k.key({"/bin/sh", "-c", "x"}, "/r1/sub", "/r1").uncacheable == "");
}

TEST_CASE("weak_key: the program by content, found as execvp would; none is uncacheable") {
  Keying k;
  std::string prog = k.t / "prog";
  put_file(prog, "#!/bin/sh\necho a\n", 0755);
  std::string path = "PATH=/nowhere:" + k.t.path;
  char* env[] = {path.data(), nullptr};
  WeakKey first = k.key({"prog"}, "/", "/", env);
  CHECK(first.uncacheable == "");
  put_file(prog, "#!/bin/sh\necho b\n", 0755);  // the same size
  CHECK_FALSE(k.key({"prog"}, "/", "/", env).digest == first.digest);
  put_file(prog, "#!/bin/sh\necho a\n", 0755);
  CHECK(k.key({"prog"}, "/", "/", env).digest == first.digest);
  CHECK(k.key({"other"}, "/", "/", env).uncacheable == "its program was not found");
  put_file(k.t / "not-runnable", "data", 0644);
  CHECK(k.key({"./not-runnable"}, k.t.path, k.t.path, env).uncacheable == "its program was not found");
  CHECK(k.key({}, k.t.path, k.t.path, env).uncacheable == "its program was not found");
}
