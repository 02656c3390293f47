// project_test.cpp: init, finding the root from below, pending work.
#include "sandbox/journal/project.h"

#include <doctest/doctest.h>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;
using bsandbox::testing::put_file;

TEST_CASE("init makes a root that is found from below, once") {
  TempDir t("project");
  ::mkdir((t / "a").c_str(), 0755);
  ::mkdir((t / "a/b").c_str(), 0755);
  auto none = find_project(t / "a/b");
  REQUIRE(none);
  CHECK_FALSE(*none);
  auto said = init_project(t / "a");
  REQUIRE(said);
  CHECK(said->find("initialised") == 0);
  said = init_project(t / "a");
  REQUIRE(said);
  CHECK(said->find("already") == 0);
  auto found = find_project(t / "a/b");
  REQUIRE(found);
  REQUIRE(*found);
  CHECK((*found)->root == t / "a");
  CHECK(init_project(t / "missing").has_value() == false);
  ::mkdir((t / "c").c_str(), 0755);
  ::mkdir((t / "c/.bsandbox").c_str(), 0755);
  put_file(t / "c/.bsandbox/mine", "not ours");
  CHECK_FALSE(init_project(t / "c"));  // someone else's directory is left alone
  put_file(t / "a/.bsandbox/format", "bsandbox-state 99\n");
  CHECK_FALSE(find_project(t / "a/b"));
}

TEST_CASE("pending entries and runs whose bsandbox is gone are interrupted work") {
  TempDir t("project");
  REQUIRE(init_project(t.path));
  auto p = find_project(t.path);
  REQUIRE(p);
  REQUIRE(*p);
  const Project& project = **p;
  auto i = find_interrupted(project);
  REQUIRE(i);
  CHECK_FALSE(i->any());
  REQUIRE(set_pending(project, 7));
  i = find_interrupted(project);
  REQUIRE(i);
  CHECK(i->pending == 7u);
  CHECK(interrupted_message(project, *i).find("bsandbox recover") != std::string::npos);
  REQUIRE(clear_pending(project));
  std::string name;
  {
    auto run = RunDir::create(project);
    REQUIRE(run);
    name = run->name();
    i = find_interrupted(project);
    REQUIRE(i);
    CHECK(i->runs.empty());  // alive: its lock is held
    CHECK_FALSE(RunDir::open(project, name));
  }
  i = find_interrupted(project);
  REQUIRE(i);
  REQUIRE(i->runs.size() == 1);
  CHECK(i->runs[0] == name);
  auto orphan = RunDir::open(project, name);
  REQUIRE(orphan);
  REQUIRE(orphan->remove(project));
  i = find_interrupted(project);
  REQUIRE(i);
  CHECK_FALSE(i->any());
}

TEST_CASE("another user's project is refused unless trusted") {
  TempDir t("project");
  REQUIRE(init_project(t.path));
  auto p = find_project(t.path);
  REQUIRE(p);
  REQUIRE(*p);
  CHECK(act_as_owner(**p, false));  // ours
  CHECK(act_as_owner_of(t.path, false));
  if (::geteuid() != 0) {
    MESSAGE("skipped: giving the project to another user needs root");
    return;
  }
  // The state directory someone else's: refused, saying what to do. (The
  // trusted case makes the process another user: tests/e2e/security_journal.py.)
  REQUIRE(::chown((t / ".bsandbox").c_str(), 65534, 65534) == 0);
  auto refused = act_as_owner(**p, false);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("not to you") != std::string::npos);
  CHECK(refused.error().message.find("--trust-owner") != std::string::npos);
  REQUIRE(::chown(t.path.c_str(), 1, 1) == 0);  // and the root a third user's: never one user's project
  auto mixed = act_as_owner(**p, true);
  REQUIRE_FALSE(mixed);
  CHECK(mixed.error().message.find("one user's") != std::string::npos);
  CHECK_FALSE(act_as_owner_of(t.path, false));
}

TEST_CASE("a state directory that cannot be looked at is an error, not \"no project\"") {
  TempDir t("project");
  ::mkdir((t / "w").c_str(), 0755);
  // .bsandbox a symlink to itself: lstat of .bsandbox/format fails with ELOOP.
  REQUIRE(::symlink(".bsandbox", (t / ".bsandbox").c_str()) == 0);
  auto p = find_project(t / "w");
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find("cannot tell whether " + t.path + " is a project") != std::string::npos);
}

TEST_CASE("a run's view is told apart from a directory outside any project") {
  TempDir t("project");
  ::mkdir((t / "w").c_str(), 0755);
  ::mkdir((t / "w/.bsandbox").c_str(), 0755);
  put_file(t / "w/.bsandbox/bsandbox-run", "run-1");  // what the view shows of the state
  auto p = find_project(t / "w");
  REQUIRE(p);
  CHECK_FALSE(*p);  // a nested exec inside a run runs unjournaled, as before
  CHECK(run_view_of(t / "w") == t / "w");
  CHECK_FALSE(run_view_of(t.path));
}
