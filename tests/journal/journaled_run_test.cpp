// journaled_run_test.cpp: the steps around a journaled command, each run in
// a forked child (begin() enters the run's view): a run's writes are
// committed as an entry; running the same command again first rolls the
// last run back (not with --no-rollback); and which of a record's writes
// were outside the project.
#include "sandbox/journal/journaled_run.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "sandbox/journal/journal.h"
#include "tests/child.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

// A journaled run of argv in root, in a child, writing what write writes
// (in the view); "" if it committed, else why not.
std::string journaled(const std::string& root, const std::vector<std::string>& argv,
                      const std::function<void()>& write, bool no_rollback = false) {
  return in_child([&]() -> std::string {
    auto found = find_project(root);
    char* env[] = {nullptr};
    JournalOptions o;
    o.quiet = true;
    o.no_rollback = no_rollback;
    if (!found || !*found) return "no project";
    auto run = JournaledRun::begin(std::move(**found), argv, root, env, o);
    if (!run) return "begin: " + run.error().message;
    if (::chdir(root.c_str()) != 0) return "chdir";
    write();
    Record rec;
    rec.exit_code = 0;
    rec.backend = "test";
    if (auto e = (*run)->finish(rec); !e) return "finish: " + e.error().message;
    return "";
  });
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

TEST_CASE("a run's writes are committed; the same command again starts from before it") {
  TempDir t("journaled");
  REQUIRE(init_project(t.path));
  put_file(t / "src", "input");
  CHECK(journaled(t.path, {"gen"}, [] { put_file("out", "one"); }) == "");
  CHECK(get_file(t / "out") == "one");
  // Again: run 1 is rolled back first, so `out` is gone unless run 2 writes it.
  CHECK(journaled(t.path, {"gen"}, [] { put_file("other", "two"); }) == "");
  CHECK_FALSE(exists(t / "out"));
  CHECK(get_file(t / "other") == "two");
  CHECK(get_file(t / "src") == "input");
  // Another command is another key: nothing rolled back.
  CHECK(journaled(t.path, {"gen", "--more"}, [] { put_file("more", "3"); }) == "");
  CHECK(exists(t / "other"));
  // --no-rollback: the last run of the command stays.
  CHECK(journaled(t.path, {"gen"}, [] { put_file("third", "3"); }, true) == "");
  CHECK(exists(t / "other"));
  CHECK(exists(t / "third"));
  auto found = find_project(t.path);
  REQUIRE((found && *found));
  auto h = open_history(**found);
  REQUIRE(h);
  auto entries = read_entries(*h);
  REQUIRE(entries);
  CHECK(entries->size() == 5);  // four runs and one undo
}

TEST_CASE("writes_outside: mutating ops outside the root, not /dev, /proc, /sys, nor vanished temporaries") {
  Record rec;
  ProcessEntry p;
  p.files = {{"/w/in.o", kOpWrite},          {"/w", kOpWrite},
             {"/etc/outside", kOpWrite},     {"/etc/read", kOpRead},
             {"/dev/null", kOpWrite},        {"/proc/self/attr", kOpWrite},
             {"/sys/x", kOpWrite},           {"/tmp/bsandbox-gone-tmp", kOpCreate | kOpDelete},
             {"/tmp", kOpCreate | kOpDelete}, {"/wx/y", kOpCreate}};
  rec.processes.push_back(p);
  ProcessEntry q;
  q.files = {{"/etc/outside", kOpCreate}, {"/a/deleted", kOpDelete}};
  rec.processes.push_back(q);
  CHECK(writes_outside(rec, "/w") == std::vector<std::string>{"/a/deleted", "/etc/outside", "/tmp", "/wx/y"});
}
