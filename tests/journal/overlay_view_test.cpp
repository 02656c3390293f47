// overlay_view_test.cpp: the view a journaled run works in, entered by a
// forked child (it changes the caller's namespaces): writes go to the run's
// upper directory and the real tree is untouched, the state directory is
// hidden but for the run's marker, --contain refuses writes outside and gives the run its own /tmp,
// and recover's kill finds only processes that entered the view.
#include "sandbox/journal/overlay_view.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include "sandbox/base/dir.h"
#include "tests/child.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

bool file_is(const std::string& path, const std::string& data) {
  return ::access(path.c_str(), F_OK) == 0 && get_file(path) == data;
}

struct Fixture {
  TempDir t{"overlay"};
  Project p;
  std::optional<RunDir> run;
  Fixture() {
    REQUIRE(init_project(t.path));
    put_file(t / "a", "old");
    auto found = find_project(t.path);
    REQUIRE((found && *found));
    p = std::move(**found);
    auto r = RunDir::create(p);
    REQUIRE(r);
    run.emplace(std::move(*r));
  }
  std::string upper() const { return run->path(p) + "/upper"; }
};

}  // namespace

TEST_CASE("--contain's scratch directories: /tmp, /var/tmp, /dev/shm and what is below") {
  CHECK(in_contain_scratch("/tmp/x/y"));
  CHECK(in_contain_scratch("/var/tmp/x"));
  CHECK(in_contain_scratch("/dev/shm/x"));
  CHECK_FALSE(in_contain_scratch("/tmpfoo"));
  CHECK_FALSE(in_contain_scratch("/var/tmpx/y"));
  CHECK_FALSE(in_contain_scratch("/etc/passwd"));
  CHECK_FALSE(in_contain_scratch("/"));
}

TEST_CASE("in the view, writes land in the run's upper directory; the tree and the state are untouched") {
  Fixture f;
  ViewOptions o;
  o.cwd = f.p.root;
  std::string said = in_child([&] {
    auto v = enter_overlay_view(f.p, *f.run, o);
    if (!v) return "entering: " + v.error().message;
    if (get_file("a") != "old") return std::string("the view does not show the tree");
    put_file("a", "new");
    put_file("added", "added");
    auto state = Dir::open(f.p.root + "/.bsandbox");
    if (!state) return "the state directory: " + state.error().message;
    // Covered: nothing of the journal, only the marker naming the run
    // (which recover's kill looks for).
    for (const dirent* e; (e = state->next());)
      if (std::string(e->d_name) != "bsandbox-run") return "the state directory shows " + std::string(e->d_name);
    if (::mkdir(".bsandbox/x", 0755) == 0 || errno != EROFS) return std::string("the state directory is writable");
    return std::string();
  });
  CHECK(said == "");
  CHECK(file_is(f.t / "a", "old"));
  CHECK(::access((f.t / "added").c_str(), F_OK) != 0);
  CHECK(file_is(f.upper() + "/a", "new"));
  CHECK(file_is(f.upper() + "/added", "added"));
}

TEST_CASE("--contain: a write outside the project fails; /tmp is the run's own") {
  Fixture f;
  ViewOptions o;
  o.cwd = f.p.root;
  o.contain = true;
  std::string outside = "/var/lib/bsandbox-overlay-test-" + std::to_string(::getpid());
  std::string in_tmp = "/tmp/bsandbox-overlay-test-" + std::to_string(::getpid());
  std::string said = in_child([&] {
    auto v = enter_overlay_view(f.p, *f.run, o);
    if (!v) return "entering: " + v.error().message;
    int fd = ::open(outside.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EROFS) return "a write outside succeeded or failed otherwise: " + std::to_string(errno);
    put_file(in_tmp, "scratch");
    if (get_file(in_tmp) != "scratch") return std::string("the run's /tmp does not keep what it wrote");
    put_file("inside", "kept");
    return std::string();
  });
  CHECK(said == "");
  CHECK(::access(outside.c_str(), F_OK) != 0);
  CHECK(::access(in_tmp.c_str(), F_OK) != 0);  // discarded with the run
  CHECK(file_is(f.upper() + "/inside", "kept"));
}

TEST_CASE("recover's kill: processes in the run's view, and no other") {
  Fixture f;
  ViewOptions o;
  o.cwd = f.p.root;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t in_view = ::fork();
  REQUIRE(in_view >= 0);
  if (in_view == 0) {
    ::close(ready[0]);
    bool ok = enter_overlay_view(f.p, *f.run, o).has_value();
    (void)!::write(ready[1], ok ? "y" : "n", 1);
    ::pause();
    _exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  REQUIRE(c == 'y');
  pid_t bystander = ::fork();
  REQUIRE(bystander >= 0);
  if (bystander == 0) {
    ::pause();
    _exit(0);
  }
  auto killed = kill_run_processes(f.p, *f.run);
  REQUIRE(killed);
  CHECK(*killed == 1);
  int status = 0;
  REQUIRE(::waitpid(in_view, &status, 0) == in_view);
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  CHECK(::waitpid(bystander, &status, WNOHANG) == 0);  // still running
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, &status, 0);
}
