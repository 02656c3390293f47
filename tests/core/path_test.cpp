// path_test.cpp: lexical normalisation and resolution of byte paths.
#include "sandbox/core/path.h"

#include <doctest/doctest.h>

using namespace bsandbox;

TEST_CASE("normalize removes dot, empty and dot-dot components") {
  CHECK(path::normalize("/") == "/");
  CHECK(path::normalize("//") == "/");
  CHECK(path::normalize("/a//b/") == "/a/b");
  CHECK(path::normalize("/a/./b/.") == "/a/b");
  CHECK(path::normalize("/a/b/../c") == "/a/c");
  CHECK(path::normalize("/a/b/../../..") == "/");
  CHECK(path::normalize("/../x") == "/x");
  CHECK(path::normalize("/a/b/c/../../d/./e/..") == "/a/d");
  CHECK(path::normalize("/...") == "/...");
  CHECK(path::normalize("/a/..b/.c") == "/a/..b/.c");
}

TEST_CASE("normalize keeps bytes that are not UTF-8 and newlines") {
  CHECK(path::normalize(std::string("/x/\xff\xfe/./y\nz", 12)) == std::string("/x/\xff\xfe/y\nz", 10));
}

TEST_CASE("normalize takes a relative path as relative to the root") {
  CHECK(path::normalize("a/b") == "/a/b");
  CHECK(path::normalize("") == "/");
}

TEST_CASE("resolve joins relative names to the base and keeps absolute ones") {
  CHECK(path::resolve("/home/u", "f.c") == "/home/u/f.c");
  CHECK(path::resolve("/home/u", "../v/f.c") == "/home/v/f.c");
  CHECK(path::resolve("/home/u", "/etc/passwd") == "/etc/passwd");
  CHECK(path::resolve("/", "x") == "/x");
  CHECK(path::resolve("/a", ".") == "/a");
}

TEST_CASE("resolve handles paths longer than PATH_MAX") {
  std::string base = "/top";
  for (int i = 0; i < 40; ++i) base += "/" + std::string(200, 'd');
  std::string full = path::resolve(base, "leaf");
  CHECK(full.size() == base.size() + 5);
  CHECK(full.size() > 4096);
  CHECK(full.ends_with("/leaf"));
}

TEST_CASE("is_within matches whole components only") {
  CHECK(path::is_within("/dev/shm/x", "/dev/shm"));
  CHECK(path::is_within("/dev/shm", "/dev/shm"));
  CHECK_FALSE(path::is_within("/dev/shmx", "/dev/shm"));
  CHECK(path::is_within("/anything", "/"));
}

TEST_CASE("is_pseudo covers /proc, /sys and /dev but not /dev/shm") {
  CHECK(path::is_pseudo("/proc/self/status"));
  CHECK(path::is_pseudo("/proc"));
  CHECK(path::is_pseudo("/sys/kernel/btf/vmlinux"));
  CHECK(path::is_pseudo("/dev/null"));
  CHECK_FALSE(path::is_pseudo("/dev/shm/sem.x"));
  CHECK_FALSE(path::is_pseudo("/devices"));
  CHECK_FALSE(path::is_pseudo("/procfile"));
  CHECK_FALSE(path::is_pseudo("/home/proc"));
}
