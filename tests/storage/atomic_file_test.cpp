// atomic_file_test.cpp: outputs appear whole or not at all.
#include "sandbox/storage/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>

using namespace bsandbox;

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/bsandbox-atomic-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    umount(path.c_str());
    std::system(("rm -rf '" + path + "'").c_str());
  }
};
int count_entries(const std::string& dir) {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") ++n;
  }
  closedir(d);
  return n;
}
}  // namespace

TEST_CASE("commit writes the whole file and leaves no temporary") {
  TempDir t;
  auto f = AtomicFile::create(t.path + "/out.json");
  REQUIRE(f);
  CHECK(count_entries(t.path) == 0);  // nothing has a name before commit
  REQUIRE(f->commit("hello"));
  CHECK(read_file(t.path + "/out.json") == "hello");
  CHECK(count_entries(t.path) == 1);
}

TEST_CASE("an uncommitted file never appears and the old one stays") {
  TempDir t;
  std::string out = t.path + "/out.json";
  {
    auto f = AtomicFile::create(out);
    REQUIRE(f);
    REQUIRE(f->commit("old"));
  }
  {
    auto f = AtomicFile::create(out);
    REQUIRE(f);
  }  // abandoned
  CHECK(read_file(out) == "old");
  CHECK(count_entries(t.path) == 1);
}

TEST_CASE("a process killed before commit leaves nothing behind") {
  TempDir t;
  std::string out = t.path + "/out.json";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto f = AtomicFile::create(out);
    if (!f) _exit(1);
    ssize_t ignored = write(1, "", 0);  // the file exists, unnamed
    (void)ignored;
    kill(getpid(), SIGKILL);
    _exit(2);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(count_entries(t.path) == 0);
}

TEST_CASE("an unwritable destination fails at create, naming the path") {
  auto f = AtomicFile::create("/nonexistent-dir/x.json");
  REQUIRE_FALSE(f);
  CHECK(f.error().message.starts_with("/nonexistent-dir/x.json: "));
  TempDir t;
  auto d = AtomicFile::create(t.path);
  REQUIRE_FALSE(d);
  CHECK(d.error().message.find("is a directory") != std::string::npos);
}

TEST_CASE("the file gets ordinary permissions") {
  TempDir t;
  mode_t old = umask(022);
  auto f = AtomicFile::create(t.path + "/p");
  REQUIRE(f);
  REQUIRE(f->commit("x"));
  umask(old);
  struct stat st;
  REQUIRE(stat((t.path + "/p").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("a full disk is an error; the old file stays and no temporary is left") {
  if (geteuid() != 0) {
    MESSAGE("skipped: mounting a small tmpfs needs root");
    return;
  }
  TempDir t;
  REQUIRE(mount("tmpfs", t.path.c_str(), "tmpfs", 0, "size=64k") == 0);
  std::string out = t.path + "/rec.json";
  {
    auto f = AtomicFile::create(out);
    REQUIRE(f);
    REQUIRE(f->commit("old contents"));
  }
  std::optional<AtomicFile> g;
  {
    auto f = AtomicFile::create(out);
    REQUIRE(f);
    g.emplace(std::move(*f));
  }
  auto w = g->commit(std::string(1 << 20, 'x'));
  REQUIRE_FALSE(w);
  CHECK(w.error().message == out + ": No space left on device");
  g.reset();
  CHECK(read_file(out) == "old contents");
  CHECK(count_entries(t.path) == 1);
}

TEST_CASE("read_file names the file on error") {
  auto r = read_file("/nonexistent/file");
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "/nonexistent/file: No such file or directory");
}

TEST_CASE("what is not a regular file is written in place or refused, never replaced") {
  TempDir t;
  std::string fifo = t.path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A fifo nobody reads: an error at once, not a hang.
  auto nobody = AtomicFile::create(fifo);
  REQUIRE_FALSE(nobody);
  // With a reader: written in place, and still a fifo.
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  auto f = AtomicFile::create(fifo);
  REQUIRE(f);
  REQUIRE(f->commit("through the fifo"));
  char buf[64] = {};
  CHECK(::read(reader, buf, sizeof buf) == 16);
  CHECK(std::string(buf) == "through the fifo");
  ::close(reader);
  struct stat st;
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  // /dev/null stays a device.
  auto null = AtomicFile::create("/dev/null");
  REQUIRE(null);
  REQUIRE(null->commit("gone"));
  REQUIRE(::stat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  // A symlink to a file is not written through, nor replaced.
  std::string target = t.path + "/target", link = t.path + "/link";
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  std::FILE* tf = std::fopen(target.c_str(), "w");
  std::fputs("mine", tf);
  std::fclose(tf);
  auto through = AtomicFile::create(link);
  REQUIRE_FALSE(through);
  CHECK(through.error().message.find("symbolic link") != std::string::npos);
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(*read_file(target) == "mine");
  // A directory, a socket's place: refused.
  CHECK_FALSE(AtomicFile::create(t.path));
}

TEST_CASE("read_input: a regular file up to a limit, or stdin; anything else one error") {
  TempDir t;
  std::string big = t.path + "/big";
  std::FILE* f = std::fopen(big.c_str(), "w");
  std::fputs("0123456789", f);
  std::fclose(f);
  CHECK(*read_input(big) == "0123456789");
  auto over = read_input(big, 5);
  REQUIRE_FALSE(over);
  CHECK(over.error().message.find("more than a record can be") != std::string::npos);
  auto zero = read_input("/dev/zero");
  REQUIRE_FALSE(zero);
  CHECK(zero.error().message == "/dev/zero: not a regular file (a device); give a record file, or - for stdin");
  std::string fifo = t.path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto blocked = read_input(fifo);  // returns at once: opened without waiting for a writer
  REQUIRE_FALSE(blocked);
  CHECK(blocked.error().message.find("a fifo") != std::string::npos);
  CHECK_FALSE(read_input(t.path));
}
