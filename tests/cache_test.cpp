// cache_test.cpp: what a run's record makes an input or an output, and a
// cache entry's life: stored, hit (outputs restored, output replayed),
// missed when any observed input changes, damaged objects and entries turned
// into misses, gc and verify.
#include "sandbox/cache.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <map>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::get_file;
using bsandbox::testing::put_file;
using bsandbox::testing::TempDir;

namespace {

// A record of one process with the given files, and its first ops.
struct Run {
  Record rec;
  std::map<std::string, OpSet> first;
  Run() {
    rec.backend = "test";
    rec.argv = {"cmd"};
    timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    rec.start_ns = now.tv_sec * 1'000'000'000LL + now.tv_nsec;  // inputs made before this are unchanged
    rec.processes.emplace_back();
  }
  Run& file(const std::string& path, OpSet ops, OpSet first_ops = 0) {
    rec.processes[0].files.push_back(FileEntry{path, ops});
    first[path] = first_ops ? first_ops : ops;
    return *this;
  }
  std::function<OpSet(const std::string&)> firsts() const {
    return [this](const std::string& p) {
      auto it = first.find(p);
      return it == first.end() ? OpSet(0) : it->second;
    };
  }
};

UniqueFd memfile(const std::string& data) {
  UniqueFd fd(::memfd_create("t", MFD_CLOEXEC));
  REQUIRE(write_all(fd.get(), data, "memfd"));
  return fd;
}

char* kEnv[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};

}  // namespace

TEST_CASE("classify: observations before any write are inputs, writes are products") {
  Run r;
  r.file("/r/src.c", kOpRead)
      .file("/r/dir", kOpReaddir)
      .file("/r/probe.h", kOpMissing)
      .file("/usr/bin/cc", kOpExec | kOpRead)
      .file("/r/meta", kOpStat)
      .file("/r/new.o", kOpCreate | kOpWrite)
      .file("/r/old.o", kOpWrite, kOpWrite)
      .file("/r/gone", kOpDelete)
      .file("/r/made-then-read", kOpCreate | kOpWrite | kOpRead, kOpCreate | kOpWrite)
      .file("/r/out-probed", kOpMissing | kOpCreate | kOpWrite, kOpMissing)
      .file("/tmp/cc123.s", kOpCreate | kOpWrite | kOpRead | kOpDelete, kOpCreate | kOpWrite)
      .file("/dev/null", kOpWrite);
  Classified c = classify(r.rec, r.firsts(), "/r");
  CHECK(c.uncacheable.empty());
  std::map<std::string, uint32_t> inputs;
  for (const auto& in : c.inputs) inputs[in.path] = in.aspects;
  CHECK(inputs == std::map<std::string, uint32_t>{{"/r/dir", kAspectListing},
                                                  {"/r/meta", kAspectMeta},
                                                  {"/r/probe.h", kAspectAbsent},
                                                  {"/r/src.c", kAspectContent},
                                                  {"/usr/bin/cc", kAspectContent}});
  std::map<std::string, std::pair<bool, bool>> produced;  // existed before, in root
  for (const auto& p : c.produced) produced[p.path] = {p.existed_before, p.in_root};
  CHECK(produced == std::map<std::string, std::pair<bool, bool>>{
                        {"/r/gone", {true, true}},
                        {"/r/made-then-read", {false, true}},
                        {"/r/new.o", {false, true}},
                        {"/r/old.o", {true, true}},
                        {"/r/out-probed", {false, true}},
                        {"/tmp/cc123.s", {false, false}}});
}

TEST_CASE("classify: reading a file before writing it, or an incomplete record, is not cacheable") {
  Run r;
  r.file("/r/f", kOpRead | kOpWrite, kOpRead);
  CHECK(classify(r.rec, r.firsts(), "/r").uncacheable == "it reads /r/f, which it also writes");
  Run same_open;  // O_RDWR of an existing file: read and written at once
  same_open.file("/r/f", kOpRead | kOpWrite);
  CHECK_FALSE(classify(same_open.rec, same_open.firsts(), "/r").uncacheable.empty());
  Run stat_first;  // ld looks at its old output before replacing it: fine
  stat_first.file("/r/a.out", kOpStat | kOpDelete | kOpCreate | kOpWrite, kOpStat);
  CHECK(classify(stat_first.rec, stat_first.firsts(), "/r").uncacheable.empty());
  Run incomplete;
  incomplete.rec.complete = false;
  CHECK(classify(incomplete.rec, incomplete.firsts(), "/r").uncacheable == "its record is incomplete");
}

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
  auto saved = cache->save(req, r.rec, r.firsts(), out.get(), err.get(), 5'000'000'000);
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

TEST_CASE("not stored: failures (unless asked), writes outside the root, inputs changed while it ran") {
  TempDir t("cache");
  std::string root = t / "root", outside = t / "outside";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  put_file(root + "/in", "x");
  put_file(outside, "written");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  CacheRequest req = cache->prepare({"/bin/sh"}, root, root, kEnv, false);
  UniqueFd out = memfile(""), err = memfile("");
  Run failed;
  failed.rec.exit_code = 2;
  CHECK(*cache->save(req, failed.rec, failed.firsts(), out.get(), err.get(), 0) ==
        "it exited with 2 (--cache-failures stores failures too)");
  CacheRequest keep_failures = cache->prepare({"/bin/sh"}, root, root, kEnv, true);
  CHECK(*cache->save(keep_failures, failed.rec, failed.firsts(), out.get(), err.get(), 0) == "");
  Run writes_outside;
  writes_outside.file(outside, kOpWrite);
  CHECK(*cache->save(req, writes_outside.rec, writes_outside.firsts(), out.get(), err.get(), 0) ==
        "it writes " + outside + ", outside " + root);
  Run temp_outside;  // made and removed: a temporary, fine
  temp_outside.file(t / "tmpfile", kOpCreate | kOpWrite | kOpDelete);
  CHECK(*cache->save(req, temp_outside.rec, temp_outside.firsts(), out.get(), err.get(), 0) == "");
  Run raced;
  raced.rec.start_ns = 0;
  raced.file(root + "/in", kOpRead);
  CHECK(*cache->save(req, raced.rec, raced.firsts(), out.get(), err.get(), 0) == root + "/in changed while it ran");
}

TEST_CASE("a damaged entry is removed with a warning; a non-cache directory is refused") {
  TempDir t("cache");
  auto cache = Cache::open(t / "cache");
  REQUIRE(cache);
  CacheRequest req = cache->prepare({"/bin/sh"}, t.path, t.path, kEnv, false);
  UniqueFd out = memfile(""), err = memfile("");
  Run r;
  REQUIRE(*cache->save(req, r.rec, r.firsts(), out.get(), err.get(), 0) == "");
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
  REQUIRE(*cache->save(req, r.rec, r.firsts(), out.get(), err.get(), 0) == "");
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
  REQUIRE(*cache->save(keyed, again.rec, again.firsts(), out.get(), err.get(), 0) == "");
  ::unlink((root + "/deps/libother.rlib").c_str());
  ::unlink((root + "/deps/liba.rlib").c_str());
  put_file(root + "/deps/liba.rlib", "a");
  put_file(root + "/deps/libthird.rlib", "");
  miss = cache->fetch(keyed, &why, &warnings);
  REQUIRE(miss);
  CHECK(why.find("listing changed") != std::string::npos);
}
