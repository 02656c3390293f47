// fs_test.cpp: resolution that never follows a symlink or leaves its
// directory, copies that keep holes, removal of trees we cannot write.
#include "sandbox/storage/fs.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;
using bsandbox::testing::put_file;
using bsandbox::testing::get_file;

TEST_CASE("open_beneath follows no symlink and stays beneath its directory") {
  TempDir t("fs");
  ::mkdir((t / "d").c_str(), 0755);
  put_file(t / "d/f", "x");
  ::symlink("d", (t / "link").c_str());
  ::symlink("/etc", (t / "abs").c_str());
  CHECK(open_beneath(t.fd.get(), "d/f", O_RDONLY));
  int err = 0;
  CHECK_FALSE(open_beneath(t.fd.get(), "link/f", O_RDONLY, 0, &err));
  CHECK(err == ELOOP);
  CHECK_FALSE(open_beneath(t.fd.get(), "abs/passwd", O_RDONLY, 0, &err));
  CHECK_FALSE(open_beneath(t.fd.get(), "../x", O_RDONLY, 0, &err));
  CHECK_FALSE(open_beneath(t.fd.get(), "d/missing", O_RDONLY, 0, &err));
  CHECK(err == ENOENT);
  auto parent = open_parent(t.fd.get(), "d/f");
  REQUIRE(parent);
  CHECK(parent->name == "f");
  CHECK_FALSE(open_parent(t.fd.get(), "link/f"));
  CHECK_FALSE(open_parent(t.fd.get(), ".."));
}

TEST_CASE("copy_content keeps a sparse file sparse and passes every byte on") {
  TempDir t("fs");
  {
    UniqueFd fd(::open((t / "sparse").c_str(), O_CREAT | O_WRONLY, 0644));
    REQUIRE(::ftruncate(fd.get(), 256 << 20) == 0);
    REQUIRE(::pwrite(fd.get(), "middle", 6, 100 << 20) == 6);
  }
  UniqueFd in(::open((t / "sparse").c_str(), O_RDONLY));
  UniqueFd out(::open((t / "copy").c_str(), O_CREAT | O_RDWR, 0644));
  uint64_t seen = 0, nonzero = 0;
  auto r = copy_content(in.get(), out.get(), "sparse", [&](const char* p, size_t n) {
    seen += n;
    for (size_t i = 0; i < n; ++i) nonzero += p[i] != 0;
  });
  REQUIRE(r);
  CHECK(seen == (256u << 20));
  CHECK(nonzero == 6);
  struct stat st;
  REQUIRE(::fstat(out.get(), &st) == 0);
  CHECK(st.st_size == (256 << 20));
  CHECK(st.st_blocks * 512 < (1 << 20));
  char buf[6];
  REQUIRE(::pread(out.get(), buf, 6, 100 << 20) == 6);
  CHECK(std::string(buf, 6) == "middle");
}

TEST_CASE("remove_tree removes read-only and unreadable directories") {
  TempDir t("fs");
  ::mkdir((t / "top").c_str(), 0755);
  ::mkdir((t / "top/ro").c_str(), 0755);
  put_file(t / "top/ro/f", "x");
  ::chmod((t / "top/ro").c_str(), 0555);
  ::mkdir((t / "top/none").c_str(), 0755);
  ::mkdir((t / "top/none/inner").c_str(), 0755);
  ::chmod((t / "top/none").c_str(), 0);
  CHECK(remove_tree(t.fd.get(), "top"));
  CHECK(::access((t / "top").c_str(), F_OK) != 0);
  CHECK(remove_tree(t.fd.get(), "never-there"));
}

TEST_CASE("replace_file_at leaves the new content and no temporary") {
  TempDir t("fs");
  put_file(t / "f", "old");
  REQUIRE(replace_file_at(t.fd.get(), "f", "new", "f"));
  CHECK(get_file(t / "f") == "new");
  auto names = list_dir(t.fd.get(), t.path);
  REQUIRE(names);
  CHECK(*names == std::vector<std::string>{"f"});
}

TEST_CASE("list_dir: sorted names without . and ..; the caller's descriptor keeps its offset; errors name it") {
  TempDir t("fs");
  put_file(t / "b", "");
  put_file(t / "a", "");
  ::mkdir((t / "c").c_str(), 0755);
  auto first = list_dir(t.fd.get(), "t");
  REQUIRE(first);
  CHECK(*first == std::vector<std::string>{"a", "b", "c"});
  auto again = list_dir(t.fd.get(), "t");  // the same descriptor: a whole listing again
  REQUIRE(again);
  CHECK(*again == *first);
  UniqueFd file(::open((t / "a").c_str(), O_RDONLY | O_CLOEXEC));
  auto not_dir = list_dir(file.get(), "a\nfile");
  REQUIRE_FALSE(not_dir);
  CHECK(not_dir.error().message.find("'a\\nfile': ") == 0);
}

TEST_CASE("join_path") {
  CHECK(join_path("", "x") == "x");
  CHECK(join_path("a/b", "x") == "a/b/x");
}

TEST_CASE("metadata is set through descriptors, O_PATH ones too") {
  TempDir t("fs");
  ::mkdir((t / "closed").c_str(), 0);
  UniqueFd dir(::open((t / "closed").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir.valid());
  REQUIRE(set_mode(dir.get(), 0750, "closed"));
  REQUIRE(set_mtime(dir.get(), 1000000000123456789, "closed"));
  REQUIRE(set_owner(dir.get(), ::geteuid(), ::getegid(), "closed"));
  struct stat st;
  REQUIRE(::stat((t / "closed").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
  CHECK(st.st_mtim.tv_sec == 1000000000);
  CHECK(st.st_mtim.tv_nsec == 123456789);
  ::symlink("closed", (t / "link").c_str());
  UniqueFd link(::open((t / "link").c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  CHECK_FALSE(set_mode(link.get(), 0700, "link"));  // never through to what it names
  REQUIRE(::stat((t / "closed").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
}

TEST_CASE("open_made takes what we made, not what replaced it") {
  TempDir t("fs");
  REQUIRE(::mkfifo((t / "fifo").c_str(), 0600) == 0);
  CHECK(open_made(t.fd.get(), "fifo", S_IFIFO, "fifo"));
  CHECK_FALSE(open_made(t.fd.get(), "fifo", S_IFLNK, "fifo"));
  put_file(t / "file", "x");
  REQUIRE(::link((t / "file").c_str(), (t / "other-name").c_str()) == 0);
  CHECK_FALSE(open_made(t.fd.get(), "file", S_IFREG, "file"));  // two links: not only ours
}
