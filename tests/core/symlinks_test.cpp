// symlinks_test.cpp: listing the links a path goes through.
#include "sandbox/core/symlinks.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

using namespace bsandbox;

namespace {
class FakeLinks : public LinkReader {
 public:
  std::map<std::string, std::string> links;
  std::optional<std::string> read_link(const std::string& path) override {
    auto it = links.find(path);
    if (it == links.end()) return std::nullopt;
    return it->second;
  }
};
using V = std::vector<std::string>;
}  // namespace

TEST_CASE("no links: empty list when the name is the target") {
  FakeLinks fs;
  SymlinkFinder f(fs);
  CHECK(f.links("/a/b", "/a/b") == V{});
}

TEST_CASE("relative and absolute links, in the middle and at the end") {
  FakeLinks fs;
  fs.links["/lib"] = "usr/lib";
  fs.links["/usr/lib/cc"] = "/opt/gcc/bin/gcc-12";
  SymlinkFinder f(fs);
  CHECK(f.links("/lib/cc", "/opt/gcc/bin/gcc-12") == V{"/lib", "/usr/lib/cc"});
}

TEST_CASE("dot-dot after a link goes to the parent of the link's target") {
  FakeLinks fs;
  fs.links["/w/inc"] = "/deep/include";
  SymlinkFinder f(fs);
  CHECK(f.links("/w/inc/../x.h", "/deep/x.h") == V{"/w/inc"});
}

TEST_CASE("a chain of links") {
  FakeLinks fs;
  fs.links["/usr/bin/cc"] = "/etc/alternatives/cc";
  fs.links["/etc/alternatives/cc"] = "/usr/bin/gcc";
  fs.links["/usr/bin/gcc"] = "gcc-12";
  SymlinkFinder f(fs);
  CHECK(f.links("/usr/bin/cc", "/usr/bin/gcc-12") ==
        V{"/usr/bin/cc", "/etc/alternatives/cc", "/usr/bin/gcc"});
}

TEST_CASE("a mismatch with the kernel's answer or a loop gives nothing") {
  FakeLinks fs;
  fs.links["/a"] = "b";
  SymlinkFinder f(fs);
  CHECK_FALSE(f.links("/a", "/c"));
  fs.links["/loop"] = "/loop";
  CHECK_FALSE(f.links("/loop", "/loop"));
}

TEST_CASE("forget drops cached answers") {
  FakeLinks fs;
  SymlinkFinder f(fs);
  CHECK(f.links("/x", "/x") == V{});
  fs.links["/x"] = "/y";
  CHECK_FALSE(f.links("/x", "/y"));  // cached: /x is not a link
  f.forget("/x");
  CHECK(f.links("/x", "/y") == V{"/x"});
  fs.links["/x"] = "/z";
  f.forget_all();
  CHECK(f.links("/x", "/z") == V{"/x"});
}

TEST_CASE("the system reader reads real links") {
  char tmpl[] = "/tmp/bsandbox-symlinks-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  std::string dir = tmpl;
  REQUIRE(symlink("target-name", (dir + "/l").c_str()) == 0);
  SystemLinkReader r;
  CHECK(r.read_link(dir + "/l") == "target-name");
  CHECK_FALSE(r.read_link(dir));
  CHECK_FALSE(r.read_link(dir + "/missing"));
  unlink((dir + "/l").c_str());
  rmdir(dir.c_str());
}
