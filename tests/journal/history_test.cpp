// history_test.cpp: which entries are in effect, what a re-execution must
// not see, and recovery from a commit cut short (a pause hook that throws
// stands in for kill -9).
#include "sandbox/journal/history.h"

#include <doctest/doctest.h>

#include <stdexcept>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;
using bsandbox::testing::put_file;
using bsandbox::testing::get_file;
using bsandbox::testing::snapshot;

namespace {

JournalEntry entry(uint64_t id, JournalEntry::Kind kind, uint64_t undoes = 0) {
  JournalEntry e;
  e.id = id;
  e.kind = kind;
  e.undoes = undoes;
  e.status = JournalEntry::Status::kCommitted;
  e.key = hash_bytes("k");
  e.argv = {"make"};
  return e;
}

Change change(const std::string& path, FileKind before, FileKind after) {
  Change c;
  c.path = path;
  c.before.kind = before;
  c.after.kind = after;
  if (before == FileKind::kFile) c.before.hash = hash_bytes(path + "-before");
  if (after == FileKind::kFile) c.after.hash = hash_bytes(path + "-after");
  return c;
}

struct Crash : std::runtime_error {
  Crash() : std::runtime_error("crash") {}
};

}  // namespace

TEST_CASE("undo of an undo puts an entry back in effect") {
  using K = JournalEntry::Kind;
  std::vector<JournalEntry> es = {entry(1, K::kRun), entry(2, K::kUndo, 1), entry(3, K::kRun)};
  CHECK(undone_ids(es) == std::set<uint64_t>{1});
  CHECK(last_live_run(es, hash_bytes("k"))->id == 3);
  es.push_back(entry(4, K::kUndo, 3));
  CHECK(last_live_run(es, hash_bytes("k")) == std::nullopt);
  es.push_back(entry(5, K::kUndo, 2));  // brings 1 back
  CHECK(undone_ids(es) == std::set<uint64_t>{2, 3});
  CHECK(last_live_run(es, hash_bytes("k"))->id == 1);
  CHECK_FALSE(last_live_run(es, hash_bytes("other")));
}

TEST_CASE("a re-execution sees the state before later runs, except its own paths") {
  using K = JournalEntry::Kind;
  JournalEntry a = entry(1, K::kRun);
  a.changes = {change("g", FileKind::kAbsent, FileKind::kFile)};
  JournalEntry b = entry(2, K::kRun);
  b.key = hash_bytes("b");
  b.changes = {change("f", FileKind::kFile, FileKind::kFile), change("g", FileKind::kFile, FileKind::kFile),
               change("new", FileKind::kAbsent, FileKind::kFile)};
  JournalEntry c = entry(3, K::kRun);
  c.key = hash_bytes("c");
  c.changes = {change("f", FileKind::kFile, FileKind::kAbsent), change("h", FileKind::kDir, FileKind::kAbsent)};
  JournalEntry d = entry(4, K::kRun);
  d.key = hash_bytes("d");
  d.changes = {change("undone-path", FileKind::kAbsent, FileKind::kFile)};
  JournalEntry undo_d = entry(5, K::kUndo, 4);
  auto hidden = hidden_after({a, b, c, d, undo_d}, a);
  REQUIRE(hidden.size() == 3);
  CHECK(hidden[0].path == "f");
  CHECK(hidden[0].state.hash == hash_bytes("f-before"));  // before the first later run
  CHECK(hidden[0].before == 2);
  CHECK(hidden[1].before == 3);
  CHECK(hidden[1].path == "h");
  CHECK(hidden[1].state.kind == FileKind::kDir);
  CHECK(hidden[2].path == "new");
  CHECK(hidden[2].state.absent());
}

TEST_CASE("commit, crash in the middle, recover: finished, or rolled back with --abort") {
  for (bool abort : {false, true}) {
    TempDir t("history");
    REQUIRE(init_project(t.path));
    auto found = find_project(t.path);
    REQUIRE((found && *found));
    Project& p = **found;
    for (int i = 0; i < 10; ++i) put_file(t / ("f" + std::to_string(i)), "old " + std::to_string(i));
    auto before = snapshot(p.root_fd.get(), ".bsandbox");
    auto h = open_history(p);
    REQUIRE(h);
    std::string work;
    {
      auto run = RunDir::create(p);
      REQUIRE(run);
      work = run->name();
      std::string upper = run->path(p) + "/upper";
      for (int i = 0; i < 10; ++i) put_file(upper + "/f" + std::to_string(i), "new " + std::to_string(i));
      put_file(upper + "/added", "added");
      UniqueFd upper_fd(::open(upper.c_str(), O_RDONLY | O_DIRECTORY));
      auto changes = scan_upper(UpperLayout{upper_fd.get(), {".bsandbox"}}, p.root_fd.get());
      REQUIRE(changes);
      CHECK(changes->size() == 11);
      JournalEntry e;
      e.argv = {"gen"};
      e.work = work;
      e.changes = *changes;
      ApplyHooks hooks;
      hooks.pause = [](const char* phase) {
        if (std::string(phase) == "commit-applying") throw Crash();
      };
      CHECK_THROWS_AS(commit_changes(*h, e, ContentSource{upper_fd.get(), &h->store}, hooks), Crash);
    }
    // Half applied: a mix of old and new, and everything else refuses.
    auto mid = snapshot(p.root_fd.get(), ".bsandbox");
    CHECK(mid != before);
    auto pending = find_interrupted(p);
    REQUIRE(pending);
    CHECK(pending->pending == 1u);
    auto said = recover(*h, abort);
    REQUIRE(said);
    auto now = snapshot(p.root_fd.get(), ".bsandbox");
    if (abort) {
      CHECK(now == before);
    } else {
      CHECK(get_file(t / "f9") == "new 9");
      CHECK(get_file(t / "added") == "added");
      CHECK(now.size() == before.size() + 1);
    }
    pending = find_interrupted(p);
    REQUIRE(pending);
    CHECK_FALSE(pending->any());
    auto es = read_entries(*h);
    REQUIRE(es);
    REQUIRE(es->size() == 1);
    CHECK(((*es)[0].status == (abort ? JournalEntry::Status::kAborted : JournalEntry::Status::kCommitted)));
    CHECK(log_text(*es).find(abort ? "rolled back by recover" : "run  exit 0  gen") != std::string::npos);
    if (!abort) {
      // Undo, then undo the undo: back and forth, nothing lost.
      auto u = undo_entry(*h, (*es)[0], false, "undo", {});
      REQUIRE(u);
      CHECK(snapshot(p.root_fd.get(), ".bsandbox") == before);
      auto uu = undo_entry(*h, *u, false, "undo", {});
      REQUIRE(uu);
      CHECK(snapshot(p.root_fd.get(), ".bsandbox") == now);
      std::string diff = diff_text(*u);
      CHECK(diff.find("D  added") != std::string::npos);
      CHECK(diff.find("M  f0") != std::string::npos);
    }
  }
}
