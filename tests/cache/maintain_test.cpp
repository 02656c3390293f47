// maintain_test.cpp: gc removes the least recently used entries first and
// only down to its target, and objects no entry needs whatever the size;
// verify removes a corrupt entry and an entry whose object is damaged, and
// leaves another cache's (signed) entries alone.
#include "sandbox/cache/maintain.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

// The entry file a request's run was stored in (one per request here).
std::string entry_of(Setup& s, const CacheRequest& req) {
  std::string hex = req.weak.hex(), dir = s.t / ("cache/entries/" + hex.substr(0, 2) + "/" + hex);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto names = list_dir(fd.get(), dir);
  REQUIRE(names);
  REQUIRE(names->size() == 1);
  return dir + "/" + names->front();
}

// Stores a run of `sh -c WORDS` that made WORDS.o holding WORDS.
std::string stored(Setup& s, const std::string& words) {
  CacheRequest req = s.request(words);
  put_file(s.root + "/" + words + ".o", words + " object");
  Run r;
  r.file(s.root + "/" + words + ".o", kOpCreate | kOpWrite, PriorAccess{kOpCreate | kOpWrite, 0});
  REQUIRE(s.store(req, r) == "");
  return entry_of(s, req);
}

}  // namespace

TEST_CASE("gc: least recently used entries go first, down to 90% of the limit") {
  Setup s;
  std::string oldest = stored(s, "a"), newest = stored(s, "b"), middle = stored(s, "c");
  set_mtime(oldest, 1000);
  set_mtime(newest, 3000);
  set_mtime(middle, 2000);
  auto before = s.cache->usage();
  REQUIRE(before);
  CHECK(before->entries == 3);
  auto nothing = s.cache->gc(before->bytes);  // within the limit: nothing goes
  REQUIRE(nothing);
  CHECK(nothing->find("removed 0 entries and 0 objects") == 0);
  // Each entry with its objects is about a third: one removal is enough.
  auto one = s.cache->gc(before->bytes - 1);
  REQUIRE(one);
  CHECK(one->find("removed 1 entries and 2 objects") == 0);  // its output and its record
  CHECK(::access(oldest.c_str(), F_OK) != 0);
  CHECK(::access(middle.c_str(), F_OK) == 0);
  CHECK(::access(newest.c_str(), F_OK) == 0);
  auto two = s.cache->gc(1);
  REQUIRE(two);
  CHECK(::access(middle.c_str(), F_OK) != 0);
  CHECK(::access(newest.c_str(), F_OK) != 0);
  auto after = s.cache->usage();
  REQUIRE(after);
  CHECK(after->entries == 0);
  CHECK(after->objects == 0);
}

TEST_CASE("gc: an object no entry refers to goes whatever the size; a damaged entry goes too") {
  Setup s;
  std::string entry = stored(s, "a");
  UniqueFd stray = memfile("left by a run that failed before writing its entry");
  UniqueFd cache_dir(::open((s.t / "cache").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto objects = Store::open(cache_dir.get(), "objects", "objects", false);
  REQUIRE(objects);
  REQUIRE(objects->put(stray.get(), "stray"));
  put_file(entry + "-broken", "BSC1 not an entry");
  auto r = s.cache->gc(uint64_t{1} << 40);
  REQUIRE(r);
  CHECK(r->find("removed 0 entries (and 1 damaged ones) and 1 objects") == 0);
  CHECK(::access(entry.c_str(), F_OK) == 0);
}

TEST_CASE("verify: a corrupt entry and one whose object is damaged are removed; a signed one is left alone") {
  Setup s;
  std::string corrupt = stored(s, "a"), needs = stored(s, "b"), fine = stored(s, "c");
  std::string bytes = get_file(corrupt);
  bytes[bytes.size() / 2] ^= 1;
  put_file(corrupt, bytes);
  std::string obj = s.t / ("cache/objects/" + hash_bytes("b object").hex().insert(2, "/"));
  ::chmod(obj.c_str(), 0644);
  put_file(obj, "B object");
  std::string foreign = fine + "-signed";
  put_file(foreign, "BSM1" + std::string(32, 's') + "payload");
  uint64_t damaged = 0;
  auto report = s.cache->verify(&damaged);
  REQUIRE(report);
  CHECK(damaged == 3);  // the object, the entry that needs it, the corrupt entry
  CHECK(report->find("checked 3 entries and ") != std::string::npos);  // not the signed one
  CHECK(report->find("1 damaged objects, 2 unusable entries") != std::string::npos);
  CHECK(report->find(needs.substr(s.t.path.size() + 1) + ": refers to a missing or damaged object; removed") !=
        std::string::npos);
  CHECK(::access(corrupt.c_str(), F_OK) != 0);
  CHECK(::access(needs.c_str(), F_OK) != 0);
  CHECK(::access(fine.c_str(), F_OK) == 0);
  CHECK(::access(foreign.c_str(), F_OK) == 0);
  uint64_t again = 0;
  auto clean = s.cache->verify(&again);
  REQUIRE(clean);
  CHECK(again == 0);
  CHECK(clean->find("checked 1 entries") != std::string::npos);
}
