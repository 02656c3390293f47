// cache_test.cpp: what a run's record makes an input or an output, and a
// cache entry's life: stored, hit (outputs restored, output replayed),
// missed when any observed input changes, damaged objects and entries turned
// into misses, gc and verify.
#include "sandbox/cache/cache.h"

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

// A record of one process with the given files, and what the run learnt
// of each one's earlier state (by default: what its ops say).
struct Run {
  Record rec;
  std::map<std::string, PriorAccess> prior;
  Run() {
    rec.backend = "test";
    rec.argv = {"cmd"};
    timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    rec.start_ns = now.tv_sec * 1'000'000'000LL + now.tv_nsec;  // inputs made before this are unchanged
    rec.processes.emplace_back();
  }
  Run& file(const std::string& path, OpSet ops, std::optional<PriorAccess> seen = std::nullopt) {
    rec.processes[0].files.push_back(FileEntry{path, ops});
    prior[path] = seen ? *seen : PriorAccess{ops, uses_of_ops(ops)};
    return *this;
  }
  PriorOf priors() const {
    return [this](const std::string& p) {
      auto it = prior.find(p);
      return it == prior.end() ? PriorAccess{} : it->second;
    };
  }
};

UniqueFd memfile(const std::string& data) {
  UniqueFd fd(::memfd_create("t", MFD_CLOEXEC));
  REQUIRE(write_all(fd.get(), data, "memfd"));
  return fd;
}

char* kEnv[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};

// Descriptors this test inherited (from a shell, a CI runner) would be
// inherited by every command it pretends to run, and key them: a test
// starts with none of its own but 0-2.
const bool kNoStrayFds = [] {
  for (int fd = 3; fd < 1024; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return true;
}();

}  // namespace

TEST_CASE("classify: what the run could have based its result on is an input, what it changed a product") {
  Run r;
  r.file("/r/src.c", kOpRead)
      .file("/r/dir", kOpReaddir)
      .file("/r/probe.h", kOpMissing)
      .file("/usr/bin/cc", kOpExec | kOpRead)
      .file("/r/meta", kOpStat)
      .file("/r/read-and-stat", kOpStat | kOpRead)
      .file("/r/new.o", kOpCreate | kOpWrite, PriorAccess{kOpCreate | kOpWrite, 0})
      .file("/r/old.o", kOpWrite, PriorAccess{kOpWrite, 0})  // O_CREAT|O_TRUNC: works either way
      .file("/r/gone", kOpDelete, PriorAccess{kOpDelete, kUsesPresent})
      .file("/r/made-then-read", kOpCreate | kOpWrite | kOpRead, PriorAccess{kOpCreate | kOpWrite, 0})
      .file("/r/out-probed", kOpMissing | kOpCreate | kOpWrite, PriorAccess{kOpMissing, kUsesAbsent})
      .file("/r/mkdir", kOpCreate, PriorAccess{kOpCreate, kUsesAbsent})
      .file("/r/as.o", kOpStat | kOpDelete | kOpCreate | kOpWrite, PriorAccess{kOpStat, kUsesMeta | kUsesPresent})
      .file("/r/chmod", kOpWrite, PriorAccess{kOpWrite, kUsesPresent | kUsesKept})
      .file("/tmp/cc123.s", kOpCreate | kOpWrite | kOpRead | kOpDelete, PriorAccess{kOpCreate | kOpWrite, 0})
      .file("/dev/null", kOpWrite);
  Classified c = classify(r.rec, r.priors(), "/r");
  CHECK(c.uncacheable.empty());
  std::map<std::string, std::pair<uint32_t, InputFrom>> inputs;
  for (const auto& in : c.inputs) inputs[in.path + (in.from == InputFrom::kKept ? "#kept" : "")] = {in.aspects, in.from};
  using F = InputFrom;
  CHECK(inputs == std::map<std::string, std::pair<uint32_t, InputFrom>>{
                      {"/r/as.o", {kAspectMeta | kAspectOrder, F::kBefore}},
                      {"/r/chmod", {kAspectPresent, F::kBefore}},
                      {"/r/chmod#kept", {kAspectContent, F::kKept}},
                      {"/r/dir", {kAspectListing, F::kNow}},
                      {"/r/gone", {kAspectPresent, F::kBefore}},
                      {"/r/meta", {kAspectMeta | kAspectOrder | kAspectMtime, F::kNow}},
                      {"/r/mkdir", {kAspectAbsent, F::kBefore}},
                      {"/r/out-probed", {kAspectAbsent, F::kBefore}},
                      {"/r/probe.h", {kAspectAbsent, F::kNow}},
                      {"/r/read-and-stat", {kAspectContent | kAspectMeta | kAspectPlace, F::kNow}},
                      {"/r/src.c", {kAspectContent, F::kNow}},
                      {"/usr/bin/cc", {kAspectContent, F::kNow}}});
  std::map<std::string, std::pair<bool, bool>> produced;  // existed before, in root
  for (const auto& p : c.produced) produced[p.path] = {p.existed_before, p.in_root};
  CHECK(produced == std::map<std::string, std::pair<bool, bool>>{
                        {"/r/as.o", {true, true}},
                        {"/r/chmod", {true, true}},
                        {"/r/gone", {true, true}},
                        {"/r/made-then-read", {false, true}},
                        {"/r/mkdir", {false, true}},
                        {"/r/new.o", {false, true}},
                        {"/r/old.o", {true, true}},
                        {"/r/out-probed", {false, true}},
                        {"/tmp/cc123.s", {false, false}}});
}

TEST_CASE("classify: what a run depended on of a path it then changed is its state from before the run") {
  auto before = [](OpSet ops, PriorAccess prior) -> std::pair<uint32_t, std::string> {
    Run r;
    r.file("/r/f", ops, prior);
    Classified c = classify(r.rec, r.priors(), "/r");
    for (const auto& in : c.inputs)
      if (in.from == InputFrom::kBefore) return {in.aspects, c.uncacheable};
    return {0, c.uncacheable};
  };
  using P = std::pair<uint32_t, std::string>;
  CHECK(before(kOpRead | kOpWrite, {kOpRead, kUsesContent}) == P{kAspectContent, ""});
  // stat, then read, then rewrite (ranlib, sed -i): the read counts though the first look was a stat
  CHECK(before(kOpStat | kOpRead | kOpWrite, {kOpStat, kUsesMeta | kUsesContent | kUsesPresent}) ==
        P{kAspectContent | kAspectMeta | kAspectOrder, ""});
  // appending, truncating, moving away: the result is made of the old content
  CHECK(before(kOpWrite, {kOpWrite, kUsesContent | kUsesPresent}) == P{kAspectContent, ""});
  CHECK(before(kOpDelete, {kOpDelete, kUsesContent | kUsesListing | kUsesPresent}) ==
        P{kAspectContent | kAspectListing, ""});
  CHECK(before(kOpStat | kOpDelete | kOpCreate | kOpWrite, {kOpStat, kUsesMeta | kUsesPresent}) ==
        P{kAspectMeta | kAspectOrder, ""});
  CHECK(before(kOpDelete, {kOpDelete, kUsesPresent}) == P{kAspectPresent, ""});
  CHECK(before(kOpMissing | kOpCreate | kOpWrite, {kOpMissing, kUsesAbsent}) == P{kAspectAbsent, ""});
  // a read after the run made the file is of its own doing
  CHECK(before(kOpCreate | kOpWrite | kOpRead, {kOpCreate | kOpWrite, 0}) == P{0, ""});
  // found, then missing before any change of its own: someone else's doing
  CHECK(before(kOpStat | kOpMissing | kOpCreate, {kOpStat, kUsesMeta | kUsesAbsent}).second.find("changed while it ran") !=
        std::string::npos);
  Run incomplete;
  incomplete.rec.complete = false;
  CHECK(classify(incomplete.rec, incomplete.priors(), "/r").uncacheable == "its record is incomplete");
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
  CHECK(*cache->save(req, failed.rec, failed.priors(), out.get(), err.get(), 0) ==
        "it exited with 2 (--cache-failures stores failures too)");
  CacheRequest keep_failures = cache->prepare({"/bin/sh"}, root, root, kEnv, true);
  CHECK(*cache->save(keep_failures, failed.rec, failed.priors(), out.get(), err.get(), 0) == "");
  Run writes_outside;
  writes_outside.file(outside, kOpWrite);
  CHECK(*cache->save(req, writes_outside.rec, writes_outside.priors(), out.get(), err.get(), 0) ==
        "it writes " + outside + ", outside " + root);
  Run temp_outside;  // made and removed: a temporary, fine
  temp_outside.file(t / "tmpfile", kOpCreate | kOpWrite | kOpDelete);
  CHECK(*cache->save(req, temp_outside.rec, temp_outside.priors(), out.get(), err.get(), 0) == "");
  Run raced;
  raced.rec.start_ns = 0;
  raced.file(root + "/in", kOpRead);
  CHECK(*cache->save(req, raced.rec, raced.priors(), out.get(), err.get(), 0) == root + "/in changed while it ran");
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

namespace {

void set_mtime(const std::string& path, int64_t sec) {
  timespec t[2] = {{sec, 0}, {sec, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0);
}

// A cache, a root, and a request for `sh -c WORDS` run in it.
struct Setup {
  TempDir t{"cache"};
  std::string root = t / "root";
  Result<Cache> cache = fail("");
  Setup() {
    REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    cache = Cache::open(t / "cache");
    REQUIRE(cache);
  }
  CacheRequest request(const std::string& words = "build") {
    return cache->prepare({"/bin/sh", "-c", words}, root, root, kEnv, false);
  }
  std::string store(CacheRequest& req, Run& r) {
    UniqueFd out = memfile(""), err = memfile("");
    auto saved = cache->save(req, r.rec, r.priors(), out.get(), err.get(), 0);
    REQUIRE(saved);
    return *saved;
  }
  std::string miss_why(CacheRequest& req) {
    std::string why;
    std::vector<std::string> warnings;
    auto got = cache->fetch(req, &why, &warnings);
    REQUIRE(got);
    return *got ? "" : why;
  }
};

}  // namespace

TEST_CASE("a path only stat'ed is keyed with its modification time (make, cp -u, test -nt decide on it)") {
  Setup s;
  put_file(s.root + "/a.c", "int x;\n");
  set_mtime(s.root + "/a.c", 1000);
  CacheRequest req = s.request();
  Run r;
  r.file(s.root + "/a.c", kOpStat);
  REQUIRE(s.store(req, r) == "");
  CHECK(s.miss_why(req) == "");
  put_file(s.root + "/a.c", "int y;\n");  // same size, same mode
  set_mtime(s.root + "/a.c", 2000);
  CHECK(s.miss_why(req) == "an input changed: " + s.root + "/a.c: modification time changed");
  set_mtime(s.root + "/a.c", 1000);  // the times are all it looked at
  CHECK(s.miss_why(req) == "");
  SUBCASE("through a symlink, what it points to") {
    REQUIRE(::symlink("a.c", (s.root + "/l.c").c_str()) == 0);
    CacheRequest req2 = s.request("via link");
    Run r2;
    r2.file(s.root + "/l.c", kOpStat);
    REQUIRE(s.store(req2, r2) == "");
    CHECK(s.miss_why(req2) == "");
    set_mtime(s.root + "/a.c", 3000);
    CHECK(s.miss_why(req2) == "an input changed: " + s.root + "/l.c: modification time changed");
  }
}

TEST_CASE("a file read and stat'ed is keyed by content and by where its time falls among the stat'ed ones") {
  Setup s;
  put_file(s.root + "/src", "data\n");
  put_file(s.root + "/dst", "data\n");
  put_file(s.root + "/lib1", "1");
  put_file(s.root + "/lib2", "2");
  set_mtime(s.root + "/src", 1000);
  set_mtime(s.root + "/dst", 2000);
  set_mtime(s.root + "/lib1", 100);
  set_mtime(s.root + "/lib2", 200);
  CacheRequest req = s.request("cp -u src dst");
  Run r;  // src read and stat'ed, dst only stat'ed (cp -u decided to leave it), two more read
  r.file(s.root + "/src", kOpStat | kOpRead).file(s.root + "/dst", kOpStat);
  r.file(s.root + "/lib1", kOpStat | kOpRead).file(s.root + "/lib2", kOpStat | kOpRead);
  REQUIRE(s.store(req, r) == "");
  // Two files it read, written in another order (a parallel build): the
  // same decisions against everything it only stat'ed.
  set_mtime(s.root + "/lib1", 300);
  CHECK(s.miss_why(req) == "");
  set_mtime(s.root + "/src", 1500);  // touched, still older than dst: same decision
  CHECK(s.miss_why(req) == "");
  set_mtime(s.root + "/src", 2500);  // now newer: cp -u would copy
  CHECK(s.miss_why(req) == "an input changed: " + s.root + "/src is no longer older than " + s.root +
                               "/dst (the order of modification times changed)");
  set_mtime(s.root + "/src", 2000);
  CHECK(s.miss_why(req).find("no longer have the same modification time") == std::string::npos);
  CHECK(s.miss_why(req).find("no longer older") != std::string::npos);  // equal is not older
}

TEST_CASE("a path looked at and then replaced is keyed as it was before the run") {
  Setup s;
  std::string obj = s.root + "/out.o";
  put_file(obj, "old object\n", 0644);
  set_mtime(obj, 1000);
  CacheRequest req = s.request("cc -c a.c -o out.o");
  CHECK(s.miss_why(req).find("no entry") == 0);  // the lookup before the run looks at out.o
  REQUIRE(req.before.count(obj));
  put_file(obj, "new object, longer\n", 0644);  // the run: stat, unlink, write
  Run r;
  r.file(obj, kOpStat | kOpDelete | kOpCreate | kOpWrite, PriorAccess{kOpStat, kUsesMeta | kUsesPresent});
  REQUIRE(s.store(req, r) == "");
  // As before the run (the old object back): a hit, which writes the new one.
  put_file(obj, "old object\n", 0644);
  set_mtime(obj, 1000);
  CacheRequest again = s.request("cc -c a.c -o out.o");
  CHECK(s.miss_why(again) == "");
  CHECK(get_file(obj) == "new object, longer\n");
  ::unlink(obj.c_str());  // what it looked at is gone: it would have run another way
  CHECK(s.miss_why(again) == "an input changed: " + obj + " was removed");
  SUBCASE("unknown when nothing named it before it ran") {
    CacheRequest blind = s.request("cc -c a.c");
    put_file(obj, "x\n");
    Run r2;
    r2.file(obj, kOpStat | kOpDelete | kOpCreate | kOpWrite, PriorAccess{kOpStat, kUsesMeta | kUsesPresent});
    CHECK(s.store(blind, r2).find("before it ran is unknown") != std::string::npos);
  }
}

TEST_CASE("a metadata change keeps the content, which is then an input") {
  Setup s;
  std::string f = s.root + "/script";
  put_file(f, "echo hi\n", 0644);
  CacheRequest req = s.request("chmod +x script");
  ::chmod(f.c_str(), 0755);
  Run r;
  r.file(f, kOpWrite, PriorAccess{kOpWrite, kUsesPresent | kUsesKept});
  REQUIRE(s.store(req, r) == "");
  ::chmod(f.c_str(), 0644);
  CHECK(s.miss_why(req) == "");
  put_file(f, "echo ho\n", 0644);  // same size: a hit would put the old text back
  CHECK(s.miss_why(req) == "an input changed: " + f + ": content changed");
}

TEST_CASE("outputs that name the root hit only under it; others hit in any checkout") {
  Setup s;
  std::string other = s.t / "other";
  REQUIRE(::mkdir(other.c_str(), 0755) == 0);
  for (const auto& [name, text] : {std::pair("plain.o", std::string("no path here\n")),
                                   std::pair("debug.o", "comp_dir=" + s.root + "\n")}) {
    CacheRequest req = s.cache->prepare({"/bin/sh", "-c", name}, s.root, s.root, kEnv, false);
    put_file(s.root + "/" + name, text);
    Run r;
    r.file(s.root + "/" + name, kOpCreate | kOpWrite, PriorAccess{kOpCreate | kOpWrite, 0});
    REQUIRE(s.store(req, r) == "");
    CacheRequest there = s.cache->prepare({"/bin/sh", "-c", name}, other, other, kEnv, false);
    std::string why = s.miss_why(there);
    if (std::string(name) == "plain.o") {
      CHECK(why == "");
      CHECK(get_file(other + "/plain.o") == "no path here\n");
    } else {
      CHECK(why == "it was stored in another checkout (its outputs name " + s.root + ")");
      CHECK(::access((other + "/debug.o").c_str(), F_OK) != 0);
    }
  }
}

TEST_CASE("sockets: the run's own servers are fine, anything else is input no key holds") {
  Run r;
  r.rec.processes[0].sockets = {{SocketOp::kBind, "inet:127.0.0.1:8080"}, {SocketOp::kConnect, "inet:127.0.0.1:8080"},
                                {SocketOp::kConnect, "unix:@bsandbox-tracer-1"}};
  SocketPolicy policy{false, {"unix:@bsandbox-tracer-1"}};
  CHECK(classify(r.rec, r.priors(), "/r", {}, policy).uncacheable.empty());
  r.rec.processes[0].sockets.push_back({SocketOp::kConnect, "inet:127.0.0.1:9090"});
  CHECK(classify(r.rec, r.priors(), "/r", {}, policy).uncacheable ==
        "it connects to inet:127.0.0.1:9090: what comes back is not keyed (--cache-allow-network, if the answer "
        "never changes)");
  policy.allow_network = true;
  CHECK(classify(r.rec, r.priors(), "/r", {}, policy).uncacheable.empty());
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

TEST_CASE("a file read (or moved) and then rewritten is keyed by its content from before the run") {
  Setup s;
  std::string f = s.root + "/f.txt";
  put_file(f, "alpha\n");
  CacheRequest req = s.request("sed -i s/alpha/beta/ f.txt");
  CHECK(s.miss_why(req).find("no entry") == 0);  // the look before the run hashes f.txt
  put_file(f, "beta\n");                          // the run
  Run r;
  r.file(f, kOpRead | kOpWrite | kOpCreate | kOpDelete, PriorAccess{kOpRead, kUsesContent});
  REQUIRE(s.store(req, r) == "");
  put_file(f, "alpha\n");
  CacheRequest again = s.request("sed -i s/alpha/beta/ f.txt");
  CHECK(s.miss_why(again) == "");
  CHECK(get_file(f) == "beta\n");
  put_file(f, "gamma\n");  // same size: only the content tells
  CHECK(s.miss_why(again) == "an input changed: " + f + ": content changed");
  SUBCASE("not named before it ran: unknown, not cached") {
    CacheRequest blind = s.request("sed -i s/a/b/ *.txt");
    Run r2;
    r2.file(f, kOpRead | kOpWrite, PriorAccess{kOpRead, kUsesContent});
    CHECK(s.store(blind, r2).find("it reads or moves " + f + " before changing it, and " + f +
                                  " as it was before it ran is unknown") == 0);
  }
  SUBCASE("a directory listed and then changed is not cacheable") {
    REQUIRE(::mkdir((s.root + "/d").c_str(), 0755) == 0);
    CacheRequest rm = s.request("rm -rf d");
    CHECK(s.miss_why(rm).find("no entry") == 0);
    Run r3;
    r3.file(s.root + "/d", kOpReaddir | kOpDelete, PriorAccess{kOpReaddir, kUsesListing | kUsesMeta});
    CHECK(s.store(rm, r3) == "it lists or moves the directory " + s.root + "/d, which it also changes");
  }
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
