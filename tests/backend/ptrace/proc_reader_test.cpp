// proc_reader_test.cpp: the /proc readers, on this process itself (a
// process may read its own /proc/PID entries as a tracer reads a tracee's):
// links of every kind, a cwd longer than readlink can return, deleted files,
// lookups through the cwd, a dirfd and the root, and the status fields.
#include "sandbox/backend/ptrace/proc_reader.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "sandbox/base/io.h"
#include "sandbox/base/unique_fd.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;

namespace {

std::string cwd_now() {
  std::string buf(65536, '\0');
  REQUIRE(::getcwd(buf.data(), buf.size()) != nullptr);
  return buf.c_str();
}

// Changes the cwd for one scope.
struct InDir {
  std::string was = cwd_now();
  explicit InDir(int fd) { REQUIRE(::fchdir(fd) == 0); }
  ~InDir() { CHECK(::chdir(was.c_str()) == 0); }
};

}  // namespace

TEST_CASE("ProcPath spells /proc/TID/WHAT and /proc/TID/WHATN") {
  CHECK(std::string(ProcPath(42, "cwd").c_str()) == "/proc/42/cwd");
  CHECK(std::string(ProcPath(42, "fd/", 7).c_str()) == "/proc/42/fd/7");
}

TEST_CASE("proc_link names the cwd, a file's fd; an fd with no path is not a name; a closed fd fails") {
  TempDir d("procreader");
  testing::put_file(d / "f", "x");
  UniqueFd f(::open((d / "f").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(f.valid());
  std::string out;
  pid_t me = ::getpid();
  REQUIRE(proc_link(ProcPath(me, "fd/", f.get()).c_str(), out));
  CHECK(out == d / "f");
  {
    InDir in(d.fd.get());
    REQUIRE(proc_link(ProcPath(me, "cwd").c_str(), out));
    CHECK(out == d.path);
  }
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
  REQUIRE(proc_link(ProcPath(me, "fd/", r.get()).c_str(), out));
  CHECK(out.rfind("pipe:[", 0) == 0);
  CHECK_FALSE(proc_link(ProcPath(me, "fd/", 9999).c_str(), out));
  CHECK(errno == ENOENT);
}

TEST_CASE("a cwd longer than a page is found by walking up, as getcwd once did") {
  TempDir d("procreader");
  std::string expect = d.path;
  std::string name(200, 'n');
  UniqueFd cur(::dup(d.fd.get()));
  for (int i = 0; i < 25; ++i) {  // 25 * 201 bytes: past readlink's page
    REQUIRE(::mkdirat(cur.get(), name.c_str(), 0755) == 0);
    cur = UniqueFd(::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(cur.valid());
    expect += "/" + name;
  }
  REQUIRE(expect.size() > 4096);
  InDir in(cur.get());
  std::string link = ProcPath(::getpid(), "cwd").c_str(), out;
  CHECK(long_dir_path(link.c_str()) == expect);
  REQUIRE(proc_link(link.c_str(), out));
  CHECK(out == expect);
  // The root is "/", not an empty walk.
  CHECK(long_dir_path(ProcPath(::getpid(), "root").c_str()) == "/");
}

TEST_CASE("describe: a file, a directory, a deleted file, a pipe, a closed fd") {
  TempDir d("procreader");
  testing::put_file(d / "f", "x");
  UniqueFd f(::open((d / "f").c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(f.valid());
  struct stat st {};
  REQUIRE(::fstat(f.get(), &st) == 0);
  ProcReader reader;
  Named n;
  pid_t me = ::getpid();
  REQUIRE(reader.describe(me, "fd/", f.get(), n, true));
  CHECK(n.path == d / "f");
  CHECK(n.flags == 0);
  CHECK(n.rflags == 0);
  CHECK(n.ino == st.st_ino);
  CHECK(n.mnt != 0);
  CHECK(n.magic != 0);
  CHECK(n.view().path == n.path);
  // Without info: only the name.
  REQUIRE(reader.describe(me, "fd/", f.get(), n, false));
  CHECK(n.ino == 0);
  CHECK(n.magic == 0);

  REQUIRE(reader.describe(me, "fd/", d.fd.get(), n, true));
  CHECK(n.path == d.path);
  CHECK(n.rflags == BS_RF_DIR);

  REQUIRE(::unlink((d / "f").c_str()) == 0);
  REQUIRE(reader.describe(me, "fd/", f.get(), n, false));  // " (deleted)" asks for a look
  CHECK(n.path == d / "f");
  CHECK(n.flags == BS_SF_DELETED);

  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
  REQUIRE(reader.describe(me, "fd/", r.get(), n, true));
  CHECK(n.flags == BS_SF_UNREACHABLE);
  CHECK_FALSE(reader.describe(me, "fd/", 9999, n, true));
}

TEST_CASE("name_exists looks up through the cwd, a dirfd or the root, following symlinks or not") {
  TempDir d("procreader");
  testing::put_file(d / "f", "x");
  REQUIRE(::symlink("nowhere", (d / "dangling").c_str()) == 0);
  pid_t me = ::getpid();
  CHECK(name_exists(me, d.fd.get(), "f", true) == 1);
  CHECK(name_exists(me, d.fd.get(), "g", true) == 0);
  CHECK(name_exists(me, d.fd.get(), "dangling", true) == 0);
  CHECK(name_exists(me, d.fd.get(), "dangling", false) == 1);
  CHECK(name_exists(me, d.fd.get(), "", true) == 1);  // the directory itself
  CHECK(name_exists(me, AT_FDCWD, d / "f", true) == 1);  // absolute: from the root
  CHECK(name_exists(me, 9999, "f", true) == -1);          // no such dirfd: unknown
  CHECK(name_exists(me, d.fd.get(), "f/x", true) == -1);  // ENOTDIR: not "missing"
  InDir in(d.fd.get());
  CHECK(name_exists(me, AT_FDCWD, "f", true) == 1);
  CHECK(name_exists(me, AT_FDCWD, "g", true) == 0);
}

TEST_CASE("task_ids and credentials_of read their fields of /proc/PID/status") {
  std::string status = "Name:\tx\nTgid:\t120\nPid:\t121\nPPid:\t7\nUid:\t1\t1\t1\t1\n"
                       "Gid:\t2\t2\t2\t2\nGroups:\t\nCapEff:\t0000000000000000\n";
  TaskIds ids = task_ids(status);
  CHECK(ids.tgid == 120);
  CHECK(ids.ppid == 7);
  CHECK(task_ids("Name:\tx\n").tgid == 0);
  CHECK(task_ids("Tgid:\tbad\n").tgid == 0);
  std::string creds = credentials_of(status);
  CHECK(creds == "Uid:1\t1\t1\t1\nGid:2\t2\t2\t2\nGroups:\nCapEff:0000000000000000\n");
  CHECK(credentials_of("Uid:\t1\nGid:\t2\nGroups:\t\n") == "");  // no CapEff: nothing to compare
  // This process's own.
  auto mine = task_ids(*read_file("/proc/self/status"));
  CHECK(mine.tgid == ::getpid());
  CHECK(mine.ppid == ::getppid());
}

TEST_CASE("identity: the tracer's, read as itself and as a tracee is read, agree") {
  pid_t me = ::getpid();
  std::string self = identity("/proc/self", "/");
  CHECK(self.find("Uid:") == 0);
  CHECK(self.find("\nuser:[") != std::string::npos);
  CHECK(identity("/proc/" + std::to_string(me), ProcPath(me, "root").c_str()) == self);
  CHECK(root_identity("/") == root_identity(ProcPath(me, "root").c_str()));
  CHECK(root_identity("/tmp/no/such/root") == "");
  TempDir d("procreader");
  CHECK(root_identity(d.path.c_str()) != root_identity("/"));  // another root is another identity
}
