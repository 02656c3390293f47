// spool_test.cpp: the upload spool: one per user and server (URL and key),
// items added once, listed oldest first, done; a spool directory another
// user could write is refused; the drainer's lock is one at a time.
#include "sandbox/remote/spool.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "sandbox/cache/cache.h"
#include "sandbox/remote/remote_cache.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

RemoteOptions server(const std::string& url, const std::string& key = "") {
  RemoteOptions o;
  o.url = url;
  o.key = key;
  return o;
}

Digest d(char c) { return hash_bytes(std::string(1, c)); }

}  // namespace

TEST_CASE("a spool holds entries for one server and key, once each, oldest first") {
  TempDir t("spool");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  auto a = UploadSpool::open(*cache, server("http://a:8080"));
  REQUIRE(a);
  REQUIRE(a->add(d('1'), d('2')));
  REQUIRE(a->add(d('3'), d('4')));
  REQUIRE(a->add(d('1'), d('2')));  // twice is once
  auto items = a->pending();
  REQUIRE(items.size() == 2);
  CHECK(items[0].weak == d('1'));
  CHECK(items[1].strong == d('4'));
  CHECK(a->waits(items[0]));
  a->done(items[0]);
  CHECK_FALSE(a->waits(items[0]));
  CHECK(a->pending().size() == 1);

  // Another server, or the same one with a key, is another spool: a build
  // never uploads another's entries there.
  for (const auto& other : {server("http://b:8080"), server("http://a:8080", "a key of sixteen bytes+")}) {
    auto b = UploadSpool::open(*cache, other);
    REQUIRE(b);
    CHECK(b->pending().empty());
    CHECK(UploadSpool::path_of(*cache, other) != UploadSpool::path_of(*cache, server("http://a:8080")));
  }
  // The path a wrapper compares with what its build says names this spool.
  std::string path = UploadSpool::path_of(*cache, server("http://a:8080"));
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(path.find("/uploads/u" + std::to_string(::geteuid()) + "-") != std::string::npos);
  // Names that are not items are not ours: left alone.
  put_file(path + "/notes.txt", "x");
  CHECK(a->pending().size() == 1);
}

TEST_CASE("what a build used is noted apart from what waits to go") {
  TempDir t("spool");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  auto a = UploadSpool::open(*cache, server("http://a:8080"));
  REQUIRE(a);
  REQUIRE(a->add(d('1'), d('2')));
  REQUIRE(a->add_used(d('1'), d('2')));
  REQUIRE(a->add_used(d('5'), d('6')));
  REQUIRE(a->add_used(d('5'), d('6')));  // twice is once
  CHECK(a->pending().size() == 1);
  auto used = a->used();
  REQUIRE(used.size() == 2);
  CHECK(used[0].weak != used[1].weak);
  for (const auto& u : used) CHECK((u.weak == d('1') || u.weak == d('5')));
  a->done(used[0]);
  REQUIRE(a->used().size() == 1);
  CHECK(a->used()[0].weak == used[1].weak);
  CHECK(a->pending().size() == 1);  // the upload still waits
}

TEST_CASE("a spool others can write, or a symlink in its place, is refused") {
  TempDir t("spool");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  std::string path = UploadSpool::path_of(*cache, server("http://a:8080"));
  REQUIRE(UploadSpool::open(*cache, server("http://a:8080")));
  SUBCASE("writable by others") {
    REQUIRE(::chmod(path.c_str(), 0777) == 0);
    auto s = UploadSpool::open(*cache, server("http://a:8080"));
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("not this user's alone") != std::string::npos);
  }
  SUBCASE("a symlink planted in its place") {
    REQUIRE(::rmdir(path.c_str()) == 0);
    REQUIRE(::mkdir((t / "elsewhere").c_str(), 0700) == 0);
    REQUIRE(::symlink((t / "elsewhere").c_str(), path.c_str()) == 0);
    CHECK_FALSE(UploadSpool::open(*cache, server("http://a:8080")));
  }
}

TEST_CASE("one drainer at a time") {
  TempDir t("spool");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  auto a = UploadSpool::open(*cache, server("http://a:8080"));
  auto b = UploadSpool::open(*cache, server("http://a:8080"));
  REQUIRE((a && b));
  auto held = a->lock(false);
  REQUIRE(held);
  CHECK_FALSE(b->lock(false));
  held->reset();
  CHECK(b->lock(false));
}
