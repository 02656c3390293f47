// cache_test.cpp: a cache entry's life through the Cache class: stored,
// hit (outputs restored, output replayed), missed when any observed input
// changes, damaged objects and entries turned into misses, unkeyed
// listings, caches shared with a key, and cache keys.
#include "sandbox/cache/cache.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

TEST_CASE("a stored run hits while its inputs are unchanged and restores its outputs") {
  TempDir t("cache");
  std::string root = t / "root";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  put_file(root + "/in.c", "int x;\n");
  put_file(root + "/old", "to be deleted\n");
  REQUIRE(::mkdir((root + "/inc").c_str(), 0755) == 0);
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  CacheRequest req = cache->prepare({"no-such-program", "-c", "in.c"}, root, root, kEnv, false);
  REQUIRE(req.uncacheable == "its program was not found");
  req = cache->prepare({"/bin/sh", "-c", "build"}, root, root, kEnv, false);
  REQUIRE(req.uncacheable.empty());

  // The run: read in.c, listed root, probed a missing header, made out.o
  // (0750), a symlink and a directory, deleted old.
  REQUIRE(::mkdir((root + "/sub").c_str(), 0700) == 0);
  put_file(root + "/sub/out.o", "object code\n", 0750);
  REQUIRE(::symlink("sub/out.o", (root + "/link").c_str()) == 0);
  REQUIRE(::unlink((root + "/old").c_str()) == 0);
  Run r;
  r.file(root + "/in.c", kOpRead)
      .file(root, kOpReaddir)
      .file(root + "/inc/missing.h", kOpMissing)
      .file(root + "/sub", kOpCreate)
      .file(root + "/sub/out.o", kOpCreate | kOpWrite)
      .file(root + "/link", kOpCreate)
      .file(root + "/old", kOpDelete);
  UniqueFd out = memfile("printed\n"), err = memfile("warning\n");
  auto saved = cache->save(req, r.rec, r.priors(), out.get(), err.get(), 5'000'000'000);
  REQUIRE(saved);
  CHECK(*saved == "");

  // Back to the state before the run: the entry hits and restores.
  auto undo_run = [&] {
    REQUIRE(remove_tree(AT_FDCWD, root + "/sub"));
    REQUIRE(::unlink((root + "/link").c_str()) == 0);
    put_file(root + "/old", "to be deleted\n");
  };
  undo_run();
  std::string why;
  std::vector<std::string> warnings;
  auto hit = cache->fetch(req, &why, &warnings);
  REQUIRE(hit);
  REQUIRE(*hit);
  CHECK(warnings.empty());
  CHECK((*hit)->out == "printed\n");
  CHECK((*hit)->err == "warning\n");
  CHECK((*hit)->run_ns == 5'000'000'000);
  CHECK(get_file(root + "/sub/out.o") == "object code\n");
  struct stat st;
  REQUIRE(::stat((root + "/sub/out.o").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
  REQUIRE(::stat((root + "/sub").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  char target[64] = {};
  CHECK(::readlink((root + "/link").c_str(), target, sizeof target) == 9);
  CHECK(std::string(target) == "sub/out.o");
  CHECK(::access((root + "/old").c_str(), F_OK) != 0);
  auto record = from_protobuf((*hit)->record, "stored record");
  REQUIRE(record);
  CHECK(record->backend == "test");

  SUBCASE("an edited input misses, naming it") {
    undo_run();
    put_file(root + "/in.c", "int y;\n");
    auto miss = cache->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
    CHECK(why == "an input changed: " + root + "/in.c: content changed");
  }
  SUBCASE("a file where one was missing misses") {
    undo_run();
    put_file(root + "/inc/missing.h", "");
    auto miss = cache->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
    CHECK(why == "an input changed: " + root + "/inc/missing.h now exists (it was missing)");
  }
  SUBCASE("a changed listing misses; the run's own outputs are not part of it") {
    // The outputs are there (restored above): the listing the run saw had
    // neither sub nor link, so this is a miss until they are gone.
    auto miss = cache->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
    CHECK(why.find("listing changed") != std::string::npos);
  }
  SUBCASE("a damaged object is a miss and a warning, and is removed") {
    undo_run();
    std::string obj = t / ("cache/objects/" + hash_bytes("object code\n").hex().insert(2, "/"));
    ::chmod(obj.c_str(), 0644);
    put_file(obj, "object codE\n");
    auto miss = cache->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("corrupt") != std::string::npos);
    CHECK(::access(obj.c_str(), F_OK) != 0);
    CHECK(::access((root + "/sub/out.o").c_str(), F_OK) != 0);  // nothing half-restored
    CHECK(cache->counters().damaged == 1);
  }
  SUBCASE("verify finds a flipped byte, gc trims to the limit") {
    std::string obj = t / ("cache/objects/" + hash_bytes("printed\n").hex().insert(2, "/"));
    ::chmod(obj.c_str(), 0644);
    put_file(obj, "printeD\n");
    uint64_t damaged = 0;
    auto report = cache->verify(&damaged);
    REQUIRE(report);
    CHECK(damaged == 2);  // the object, and the entry that needs it
    auto u = cache->usage();
    REQUIRE(u);
    CHECK(u->entries == 0);
    auto gc = cache->gc(1);
    REQUIRE(gc);
    u = cache->usage();
    REQUIRE(u);
    CHECK(u->objects == 0);
  }
}

TEST_CASE("a damaged entry is removed with a warning; a non-cache directory is refused") {
  TempDir t("cache");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  CacheRequest req = cache->prepare({"/bin/sh"}, t.path, t.path, kEnv, false);
  UniqueFd out = memfile(""), err = memfile("");
  Run r;
  REQUIRE(*cache->save(req, r.rec, r.priors(), out.get(), err.get(), 0) == "");
  std::string hex = req.weak.hex(), dir = t / ("cache/entries/" + hex.substr(0, 2) + "/" + hex);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto names = list_dir(dfd.get(), dir);
  REQUIRE(names);
  REQUIRE(names->size() == 1);
  std::string entry = dir + "/" + (*names)[0];
  std::string bytes = get_file(entry);
  bytes[bytes.size() / 2] ^= 1;
  put_file(entry, bytes);
  std::string why;
  std::vector<std::string> warnings;
  auto miss = cache->fetch(req, &why, &warnings);
  REQUIRE(miss);
  CHECK_FALSE(*miss);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("damaged") != std::string::npos);
  CHECK(::access(entry.c_str(), F_OK) != 0);

  put_file(t / "notcache", "");
  REQUIRE(::mkdir((t / "plain").c_str(), 0755) == 0);
  put_file(t / "plain/file", "mine");
  auto refused = Cache::open(t / "plain");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("not a bsandbox cache") != std::string::npos);
}

TEST_CASE("a directory named as unkeyed: which files it holds does not matter, that it is one does") {
  TempDir t("cache");
  std::string root = t / "root";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  REQUIRE(::mkdir((root + "/deps").c_str(), 0755) == 0);
  put_file(root + "/deps/liba.rlib", "a");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  CacheRequest req = cache->prepare({"/bin/sh"}, root, root, kEnv, false, {root + "/deps"});
  Run r;
  r.file(root + "/deps", kOpReaddir).file(root + "/deps/liba.rlib", kOpRead);
  UniqueFd out = memfile(""), err = memfile("");
  REQUIRE(*cache->save(req, r.rec, r.priors(), out.get(), err.get(), 0) == "");
  put_file(root + "/deps/libother.rlib", "made by a parallel job");
  std::string why;
  std::vector<std::string> warnings;
  auto hit = cache->fetch(req, &why, &warnings);
  REQUIRE(hit);
  CHECK(*hit);
  put_file(root + "/deps/liba.rlib", "changed");  // what it read still counts
  auto miss = cache->fetch(req, &why, &warnings);
  REQUIRE(miss);
  CHECK_FALSE(*miss);
  CacheRequest keyed = cache->prepare({"/bin/sh"}, root, root, kEnv, false);
  put_file(root + "/deps/liba.rlib", "a");
  Run again;  // started after liba.rlib was written back
  again.file(root + "/deps", kOpReaddir).file(root + "/deps/liba.rlib", kOpRead);
  REQUIRE(*cache->save(keyed, again.rec, again.priors(), out.get(), err.get(), 0) == "");
  ::unlink((root + "/deps/libother.rlib").c_str());
  ::unlink((root + "/deps/liba.rlib").c_str());
  put_file(root + "/deps/liba.rlib", "a");
  put_file(root + "/deps/libthird.rlib", "");
  miss = cache->fetch(keyed, &why, &warnings);
  REQUIRE(miss);
  CHECK(why.find("listing changed") != std::string::npos);
}

TEST_CASE("a cache others can write is used only with a key; its entries are signed, others ignored") {
  TempDir t("cache");
  std::string root = t / "root", dir = t / "shared";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  REQUIRE(::mkdir(dir.c_str(), 0775) == 0);
  REQUIRE(::chmod(dir.c_str(), 0775) == 0);
  auto refused = Cache::open(dir);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("writable by its group (mode 0775), so another user could plant results") !=
        std::string::npos);
  put_file(t / "key", "0123456789abcdef-secret\n", 0600);
  auto key = load_cache_key(t / "key");
  REQUIRE(key);
  CHECK(*key == "0123456789abcdef-secret");
  auto cache = Cache::open(dir, *key);
  REQUIRE(cache);
  put_file(root + "/in", "input\n");
  put_file(root + "/out", "output\n");
  CacheRequest req = cache->prepare({"/bin/sh", "-c", "make out"}, root, root, kEnv, false);
  Run r;
  r.file(root + "/in", kOpRead).file(root + "/out", kOpCreate | kOpWrite, PriorAccess{kOpCreate | kOpWrite, 0});
  UniqueFd out = memfile(""), err = memfile("");
  REQUIRE(*cache->save(req, r.rec, r.priors(), out.get(), err.get(), 0) == "");
  std::string hex = req.weak.hex(), edir = dir + "/entries/" + hex.substr(0, 2) + "/" + hex;
  UniqueFd dfd(::open(edir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto names = list_dir(dfd.get(), edir);
  REQUIRE(names);
  REQUIRE(names->size() == 1);
  std::string entry = edir + "/" + (*names)[0];
  std::string signed_bytes = get_file(entry);
  CHECK(signed_bytes.substr(0, 4) == "BSM1");
  std::string why;
  std::vector<std::string> warnings;
  auto hit = cache->fetch(req, &why, &warnings);
  REQUIRE(hit);
  CHECK(*hit);

  SUBCASE("an entry re-sealed by someone without the key is ignored, and left alone") {
    // What a writer of the directory can do: change the payload (here: the
    // exit code) and give it a valid checksum.
    std::string payload = signed_bytes.substr(4 + 32);
    put_file(entry, seal("BSC1", payload) + "");
    auto miss = cache->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
    REQUIRE_FALSE(warnings.empty());
    CHECK(warnings.back().find("not signed with this cache's key; ignored") != std::string::npos);
    CHECK(::access(entry.c_str(), F_OK) == 0);
  }
  SUBCASE("another key does not open it") {
    auto other = Cache::open(dir, "another-secret-of-16+");
    REQUIRE(other);
    auto miss = other->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
  }
  SUBCASE("a planted hash memo is not believed") {
    // Claim that `in`, now changed, still has its old content.
    auto was = hash_bytes("input\n");
    put_file(root + "/in", "INPUT\n");
    struct stat st;
    REQUIRE(::stat((root + "/in").c_str(), &st) == 0);
    uint64_t fields[7] = {st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size),
                          static_cast<uint64_t>(st.st_mtim.tv_sec), static_cast<uint64_t>(st.st_mtim.tv_nsec),
                          static_cast<uint64_t>(st.st_ctim.tv_sec), static_cast<uint64_t>(st.st_ctim.tv_nsec)};
    std::string name = hash_bytes({reinterpret_cast<const char*>(fields), sizeof fields}).hex();
    put_file(dir + "/hashes/" + name, std::string(was.raw()) + std::string(32, 'x'));
    auto miss = cache->fetch(req, &why, &warnings);
    REQUIRE(miss);
    CHECK_FALSE(*miss);
    CHECK(why == "an input changed: " + root + "/in: content changed");
  }
}

TEST_CASE("a cache key is a secret: not readable by everyone, not short") {
  TempDir t("cache");
  put_file(t / "open", "0123456789abcdef0123", 0644);
  auto open = load_cache_key(t / "open");
  REQUIRE_FALSE(open);
  CHECK(open.error().message.find("readable by every user") != std::string::npos);
  put_file(t / "short", "short\n", 0600);
  CHECK_FALSE(load_cache_key(t / "short"));
  CHECK_FALSE(load_cache_key(t / "missing"));
}
