// save_test.cpp: what a finished run is stored as: which runs are refused,
// how modification times are keyed (themselves, or their order), paths the
// run changed keyed as they were before it, outputs that name the root.
#include "sandbox/cache/save.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

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
