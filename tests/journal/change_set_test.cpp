// change_set_test.cpp: an overlay upper directory made by hand, scanned
// into changes, applied to the tree, applied again (as recovery would),
// and undone from the store.
#include "sandbox/journal/change_set.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <map>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;
using bsandbox::testing::put_file;
using bsandbox::testing::get_file;
using bsandbox::testing::snapshot;

namespace {

std::map<std::string, std::string> by_path(const std::vector<Change>& changes) {
  std::map<std::string, std::string> out;
  for (const auto& c : changes)
    out[c.path] = std::string(kind_name(c.before.kind)) + " -> " + kind_name(c.after.kind);
  return out;
}

// The tree of the scan test; returns false where whiteouts and opaque
// directories cannot be made (not root).
bool make_layers(const TempDir& real, const TempDir& upper) {
  put_file(real / "keep", "keep");
  put_file(real / "mod", "old");
  put_file(real / "same", "same");
  ::mkdir((real / "gone").c_str(), 0755);
  put_file(real / "gone/x", "x");
  ::mkdir((real / "gone/y").c_str(), 0755);
  put_file(real / "gone/y/z", "z");
  ::mkdir((real / "opq").c_str(), 0755);
  put_file(real / "opq/a", "a");
  put_file(real / "opq/b", "b");
  put_file(real / "f2d", "file");
  ::mkdir((real / "d2f").c_str(), 0755);
  put_file(real / "d2f/inner", "inner");
  ::symlink("keep", (real / "link").c_str());

  put_file(upper / "mod", "new");
  put_file(upper / "same", "same");
  struct stat st;
  ::stat((real / "same").c_str(), &st);
  timespec t[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, (upper / "same").c_str(), t, 0);
  ::mkdir((upper / "new").c_str(), 0750);
  put_file(upper / "new/n", "n", 0600);
  ::mkdir((upper / "f2d").c_str(), 0755);
  put_file(upper / "f2d/c", "c");
  put_file(upper / "d2f", "now a file");
  ::symlink("mod", (upper / "link").c_str());
  ::mkdir((upper / ".bsandbox").c_str(), 0755);  // skipped
  if (::mknod((upper / "gone").c_str(), S_IFCHR, makedev(0, 0)) != 0) return false;
  ::mkdir((upper / "opq").c_str(), 0755);
  put_file(upper / "opq/a", "A");
  return ::setxattr((upper / "opq").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0;
}

}  // namespace

TEST_CASE("scan, apply, apply again, undo") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: whiteouts and trusted.* xattrs need root");
    return;
  }
  TempDir real("real"), upper("upper"), state("state");
  REQUIRE(make_layers(real, upper));
  auto before = snapshot(real.fd.get());
  auto changes = scan_upper(UpperLayout{upper.fd.get(), {".bsandbox"}}, real.fd.get());
  REQUIRE(changes);
  std::map<std::string, std::string> want = {
      {"mod", "file -> file"},         {"new", "absent -> directory"},
      {"new/n", "absent -> file"},     {"f2d", "file -> directory"},
      {"f2d/c", "absent -> file"},     {"d2f", "directory -> file"},
      {"d2f/inner", "file -> absent"}, {"link", "symlink -> symlink"},
      {"gone", "directory -> absent"}, {"gone/x", "file -> absent"},
      {"gone/y", "directory -> absent"}, {"gone/y/z", "file -> absent"},
      {"opq/a", "file -> file"},       {"opq/b", "file -> absent"},
  };
  CHECK(by_path(*changes) == want);

  auto store = Store::open(state.fd.get(), "objects", state / "objects");
  REQUIRE(store);
  auto clash = conflicts(*changes, real.fd.get());
  REQUIRE(clash);
  for (const auto& c : *clash) MESSAGE("conflict: " << c);
  CHECK(clash->empty());
  REQUIRE(keep_before(*changes, real.fd.get(), *store));
  REQUIRE(apply(*changes, real.fd.get(), ContentSource{upper.fd.get(), &*store}));
  CHECK(get_file(real / "mod") == "new");
  CHECK(get_file(real / "new/n") == "n");
  CHECK(get_file(real / "d2f") == "now a file");
  CHECK(get_file(real / "opq/a") == "A");
  CHECK(::access((real / "opq/b").c_str(), F_OK) != 0);
  CHECK(::access((real / "gone").c_str(), F_OK) != 0);
  struct stat st;
  REQUIRE(::stat((real / "new").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
  auto after = snapshot(real.fd.get());

  // A second pass (recovery after a crash at the very end) changes nothing:
  // the files are gone from upper, and everything is already in place.
  REQUIRE(apply(*changes, real.fd.get(), ContentSource{upper.fd.get(), &*store}));
  CHECK(snapshot(real.fd.get()) == after);
  auto can = can_finish(*changes, real.fd.get(), ContentSource{upper.fd.get(), &*store});
  REQUIRE(can);
  CHECK(*can);

  // Undo from the store: exactly the tree before.
  std::vector<Change> undo = inverse(*changes);
  clash = conflicts(undo, real.fd.get());
  REQUIRE(clash);
  CHECK(clash->empty());
  REQUIRE(keep_before(undo, real.fd.get(), *store));
  REQUIRE(apply(undo, real.fd.get(), ContentSource{-1, &*store}));
  CHECK(snapshot(real.fd.get()) == before);
}

TEST_CASE("conflicts: an edited file, and a directory with something new in it") {
  TempDir real("real"), state("state");
  auto store = Store::open(state.fd.get(), "objects", state / "objects");
  REQUIRE(store);
  put_file(real / "out", "mine");
  ::mkdir((real / "d").c_str(), 0755);
  put_file(real / "d/made", "m");
  auto out = observe_at(real.fd.get(), "out", true, "out");
  auto d = observe_at(real.fd.get(), "d", true, "d");
  auto made = observe_at(real.fd.get(), "d/made", true, "d/made");
  REQUIRE((out && d && made));
  // Undoing a run that made out, d and d/made:
  std::vector<Change> undo = {{"out", *out, FileState{}, {}, {}},
                              {"d", *d, FileState{}, {}, {}},
                              {"d/made", *made, FileState{}, {}, {}}};
  auto clash = conflicts(undo, real.fd.get());
  REQUIRE(clash);
  CHECK(clash->empty());
  put_file(real / "out", "edited by hand");
  put_file(real / "d/extra", "someone else's");
  clash = conflicts(undo, real.fd.get());
  REQUIRE(clash);
  CHECK(*clash == std::vector<std::string>{"out", "d"});
  // --force: the current versions are kept, and the extra file goes too.
  auto kept = adopt_current(undo, *clash, real.fd.get(), *store);
  REQUIRE(kept);
  CHECK(undo.size() == 4);
  REQUIRE(apply(undo, real.fd.get(), ContentSource{-1, &*store}));
  CHECK(::access((real / "d").c_str(), F_OK) != 0);
  // ... and can be brought back.
  REQUIRE(apply(inverse(undo), real.fd.get(), ContentSource{-1, &*store}));
  CHECK(get_file(real / "out") == "edited by hand");
  CHECK(get_file(real / "d/extra") == "someone else's");
}

TEST_CASE("a directory swapped for a symlink is not followed when its mode is set") {
  TempDir real("real"), state("state"), outside("outside");
  auto store = Store::open(state.fd.get(), "objects", state / "objects");
  REQUIRE(store);
  ::mkdir((real / "d").c_str(), 0700);
  auto before = observe_at(real.fd.get(), "d", false, "d");
  REQUIRE(before);
  FileState after = *before;
  after.mode = 0755;
  std::vector<Change> changes = {{"d", *before, after, {}, {}}};
  // Someone who can write in the tree puts a symlink where d was.
  put_file(outside / "secret", "s", 0600);
  REQUIRE(::rmdir((real / "d").c_str()) == 0);
  REQUIRE(::symlink((outside / "secret").c_str(), (real / "d").c_str()) == 0);
  CHECK_FALSE(apply(changes, real.fd.get(), ContentSource{-1, &*store}));
  struct stat st;
  REQUIRE(::stat((outside / "secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("restored files keep their setuid and setgid bits (the owner is set first)") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: restoring an owner needs root");
    return;
  }
  TempDir real("real"), state("state");
  auto store = Store::open(state.fd.get(), "objects", state / "objects");
  REQUIRE(store);
  put_file(real / "suid", "#!/bin/sh\n", 04755);
  put_file(real / "sgid", "#!/bin/sh\n", 02750);
  REQUIRE(::chown((real / "sgid").c_str(), 65534, 65534) == 0);
  REQUIRE(::chmod((real / "sgid").c_str(), 02750) == 0);
  std::vector<Change> removal;
  for (const char* name : {"suid", "sgid"}) {
    auto s = observe_at(real.fd.get(), name, true, name);
    REQUIRE(s);
    removal.push_back({name, *s, FileState{}, {}, {}});
  }
  REQUIRE(keep_before(removal, real.fd.get(), *store));
  REQUIRE(apply(removal, real.fd.get(), ContentSource{-1, &*store}));
  REQUIRE(apply(inverse(removal), real.fd.get(), ContentSource{-1, &*store}));
  struct stat st;
  REQUIRE(::stat((real / "suid").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 04755);
  REQUIRE(::stat((real / "sgid").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 02750);
  CHECK(st.st_uid == 65534);
}
