// file_state_test.cpp: what a path is, and when two states are the same.
#include "sandbox/storage/file_state.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;
using bsandbox::testing::put_file;

TEST_CASE("observe_at tells every kind, absent included") {
  TempDir t("state");
  put_file(t / "f", "data", 0640);
  ::mkdir((t / "d").c_str(), 0700);
  ::symlink("target", (t / "l").c_str());
  ::mkfifo((t / "p").c_str(), 0600);
  auto f = observe_at(t.fd.get(), "f", true, "f");
  REQUIRE(f);
  CHECK(f->kind == FileKind::kFile);
  CHECK(f->mode == 0640);
  CHECK(f->size == 4);
  CHECK(f->hash == hash_bytes("data"));
  auto d = observe_at(t.fd.get(), "d", true, "d");
  REQUIRE(d);
  CHECK(d->kind == FileKind::kDir);
  CHECK(d->mode == 0700);
  auto l = observe_at(t.fd.get(), "l", true, "l");
  REQUIRE(l);
  CHECK(l->kind == FileKind::kSymlink);
  CHECK(l->target == "target");
  auto p = observe_at(t.fd.get(), "p", true, "p");
  REQUIRE(p);
  CHECK(p->kind == FileKind::kFifo);
  auto none = observe_at(t.fd.get(), "none", true, "none");
  REQUIRE(none);
  CHECK(none->absent());
  auto under_file = observe_at(t.fd.get(), "f/x", true, "f/x");
  REQUIRE(under_file);
  CHECK(under_file->absent());
}

TEST_CASE("same_as: kind, permission bits and content; not times or owners") {
  FileState a;
  a.kind = FileKind::kFile;
  a.mode = 0644;
  a.hash = hash_bytes("x");
  FileState b = a;
  b.mtime_ns = 12345;
  b.uid = 7;
  CHECK(a.same_as(b));
  b.mode = 0600;
  CHECK_FALSE(a.same_as(b));
  b = a;
  b.hash = hash_bytes("y");
  CHECK_FALSE(a.same_as(b));
  FileState l1, l2;
  l1.kind = l2.kind = FileKind::kSymlink;
  l1.target = "a";
  l2.target = "b";
  CHECK_FALSE(l1.same_as(l2));
  CHECK(FileState{}.same_as(FileState{}));
  CHECK_FALSE(FileState{}.same_as(a));
}

TEST_CASE("file_kind: the kind an st_mode says; sockets and devices are other") {
  CHECK(file_kind(S_IFREG | 0644) == FileKind::kFile);
  CHECK(file_kind(S_IFDIR | 0755) == FileKind::kDir);
  CHECK(file_kind(S_IFLNK | 0777) == FileKind::kSymlink);
  CHECK(file_kind(S_IFIFO | 0600) == FileKind::kFifo);
  CHECK(file_kind(S_IFSOCK | 0600) == FileKind::kOther);
  CHECK(file_kind(S_IFCHR | 0666) == FileKind::kOther);
  CHECK(file_kind(S_IFBLK | 0660) == FileKind::kOther);
}

TEST_CASE("a symlink's target is read whole, however long") {
  TempDir t("state");
  std::string target(3000, 'x');  // longer than a first guess of a buffer
  REQUIRE(::symlink(target.c_str(), (t / "long").c_str()) == 0);
  auto l = observe_at(t.fd.get(), "long", false, "long");
  REQUIRE(l);
  CHECK(l->target == target);
  CHECK(l->mode == 0777);
}
