// journal_test.cpp: entries survive the round trip byte for byte, and a
// damaged one is reported as damaged.
#include "sandbox/journal/journal.h"

#include <doctest/doctest.h>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;

namespace {
JournalEntry sample() {
  JournalEntry e;
  e.id = 3;
  e.kind = JournalEntry::Kind::kRun;
  e.status = JournalEntry::Status::kCommitted;
  e.argv = {"sh", "-c", std::string("echo \xff\n", 7)};
  e.cwd = "sub/dir";
  e.env_hash = hash_bytes("env");
  e.key = command_key(e.cwd, e.argv, e.env_hash);
  e.start_ns = 1;
  e.end_ns = 2;
  e.exit_code = 3;
  e.backend = "ebpf";
  e.work = "123.456";
  Change c;
  c.path = std::string("odd\nname\xfe", 10);
  c.before.kind = FileKind::kFile;
  c.before.mode = 0644;
  c.before.size = 5;
  c.before.hash = hash_bytes("hello");
  c.after.kind = FileKind::kSymlink;
  c.after.target = "elsewhere";
  e.changes.push_back(c);
  e.outside_writes = {"/tmp/x"};
  e.discarded_writes = {"/tmp/y"};
  e.shown_before = {{"f", 2}, {"g/h", 5}};
  return e;
}
}  // namespace

TEST_CASE("an entry round-trips") {
  JournalEntry e = sample();
  auto back = decode_entry(encode_entry(e), "e");
  REQUIRE(back);
  CHECK(back->id == 3);
  CHECK(back->argv == e.argv);
  CHECK(back->cwd == e.cwd);
  CHECK(back->key == e.key);
  CHECK(back->work == e.work);
  REQUIRE(back->changes.size() == 1);
  CHECK(back->changes[0].path == e.changes[0].path);
  CHECK(back->changes[0].before.same_as(e.changes[0].before));
  CHECK(back->changes[0].after.same_as(e.changes[0].after));
  CHECK(back->outside_writes == e.outside_writes);
  CHECK(back->discarded_writes == e.discarded_writes);
  CHECK(back->shown_before == e.shown_before);
}

TEST_CASE("a damaged entry is refused, naming it") {
  std::string bytes = encode_entry(sample());
  for (size_t at : {size_t{0}, size_t{10}, bytes.size() - 1}) {
    std::string bad = bytes;
    bad[at] ^= 0x20;
    auto r = decode_entry(bad, "journal/00000003");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("journal/00000003") == 0);
  }
  CHECK_FALSE(decode_entry(bytes.substr(0, 20), "x"));
  CHECK_FALSE(decode_entry("", "x"));
}

TEST_CASE("the command key tells commands apart, but not by a shell's bookkeeping") {
  Digest env = hash_bytes("e");
  Digest k = command_key("", {"make"}, env);
  CHECK(k != command_key("sub", {"make"}, env));
  CHECK(k != command_key("", {"make", ""}, env));
  CHECK(command_key("", {"a b"}, env) != command_key("", {"a", "b"}, env));
  CHECK(k != command_key("", {"make"}, hash_bytes("f")));
  char a1[] = "PATH=/bin", a2[] = "OLDPWD=/x", a3[] = "CC=gcc", b2[] = "OLDPWD=/y", b3[] = "SHLVL=3";
  char* one[] = {a1, a2, a3, nullptr};
  char* two[] = {a3, b3, a1, b2, nullptr};
  CHECK(environment_hash(one) == environment_hash(two));
  char c3[] = "CC=clang";
  char* three[] = {a1, c3, nullptr};
  CHECK(environment_hash(one) != environment_hash(three));
}

TEST_CASE("the journal directory: write, read, list, remove") {
  TempDir t("journal");
  auto j = Journal::open(t.fd.get(), t.path);
  REQUIRE(j);
  auto ids = j->ids();
  REQUIRE(ids);
  CHECK(ids->empty());
  CHECK(j->next_id() == 1);
  JournalEntry e = sample();
  REQUIRE(j->write(e));
  e.id = 10;
  REQUIRE(j->write(e));
  ids = j->ids();
  REQUIRE(ids);
  CHECK(*ids == std::vector<uint64_t>{3, 10});
  CHECK(j->next_id() == 11);
  auto r = j->read(10);
  REQUIRE(r);
  CHECK(r->id == 10);
  CHECK_FALSE(j->read(4));
  REQUIRE(j->remove(3));
  ids = j->ids();
  REQUIRE(ids);
  CHECK(*ids == std::vector<uint64_t>{10});
}
