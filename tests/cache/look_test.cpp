// look_test.cpp: a path's state as the cache sees it, how a stored input is
// compared with it (and how a difference is told), the places of
// modification times, and the hash memo (believed in a private cache, only
// when signed in a shared one).
#include "sandbox/cache/look.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

// A hashes/ directory and a memo over it.
struct Memo {
  TempDir t{"look"};
  UniqueFd hashes;
  Memo() {
    REQUIRE(::mkdir((t / "hashes").c_str(), 0755) == 0);
    hashes.reset(::open((t / "hashes").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  size_t memos() const {
    auto names = list_dir(hashes.get(), "hashes");
    return names ? names->size() : 0;
  }
};

}  // namespace

TEST_CASE("dense_ranks: equal times share a rank, later times rank higher") {
  CHECK(dense_ranks({5, 1, 5, 3}) == std::vector<uint32_t>{2, 0, 2, 1});
  CHECK(dense_ranks({7, 7, 7}) == std::vector<uint32_t>{0, 0, 0});
  CHECK(dense_ranks({}).empty());
}

TEST_CASE("TimeOrder: a placed time falls on or between the frame's times; only framed pairs are compared") {
  TimeOrder o;
  o.items = {{100, true, "/a"}, {200, true, "/b"}, {100, true, "/same-as-a"},
             {50, false, "/p0"}, {100, false, "/p1"}, {150, false, "/p2"}, {250, false, "/p4"}};
  CHECK(o.places() == std::vector<uint32_t>{1, 3, 1, 0, 1, 2, 4});
  std::vector<uint32_t> stored = o.places();
  CHECK(o.changed(stored) == "");
  SUBCASE("placed times moving within their gaps is no change") {
    o.items[3].time = 60;
    o.items[5].time = 140;
    CHECK(o.changed(stored) == "");
  }
  SUBCASE("framed times that were equal and are not") {
    o.items[2].time = 120;
    CHECK(o.changed(stored) == "/a and /same-as-a no longer have the same modification time");
  }
  SUBCASE("an older time that is now newer") {
    o.items[0].time = 300;
    o.items[2].time = 300;
    CHECK(o.changed(stored) == "/a is no longer older than /b (the order of modification times changed)");
  }
  SUBCASE("the start is named as such") {
    TimeOrder s;
    s.items = {{100, true, "/x"}, {200, true, ""}};
    auto was = s.places();
    s.items[0].time = 300;
    CHECK(s.changed(was) == "/x is no longer older than the time it starts (the order of modification times changed)");
  }
}

TEST_CASE("look: absent is a state; a symlink's target and what it resolves to; a listing, sorted") {
  Memo m;
  HashMemo memo(m.hashes.get(), "");
  auto none = look(m.t / "none", kAspectMeta | kAspectContent, memo);
  REQUIRE(none);
  CHECK(none->kind == FileKind::kAbsent);
  put_file(m.t / "f", "data", 0640);
  auto under_file = look(m.t / "f/x", kAspectMeta, memo);
  REQUIRE(under_file);
  CHECK(under_file->kind == FileKind::kAbsent);
  REQUIRE(::symlink("f", (m.t / "l").c_str()) == 0);
  auto l = look(m.t / "l", kAspectMeta | kAspectContent, memo);
  REQUIRE(l);
  CHECK(l->kind == FileKind::kSymlink);
  CHECK(l->target == "f");
  CHECK(l->resolved_kind == FileKind::kFile);
  CHECK(l->resolved_mode == 0640);
  CHECK(l->resolved_size == 4);
  CHECK(l->content == hash_bytes("data"));  // the content read through it
  auto only_kind = look(m.t / "l", kAspectContent, memo);
  REQUIRE(only_kind);
  CHECK(only_kind->target.empty());  // not asked for
  auto dir = look(m.t.path, kAspectListing, memo);
  REQUIRE(dir);
  CHECK(dir->names == std::vector<std::string>{"f", "hashes", "l"});
  CHECK(time_of(*l) == l->resolved_mtime_ns);
  CHECK(has_keyed_time(*l));
  CHECK_FALSE(has_keyed_time(*dir));
  CHECK_FALSE(has_keyed_time(*none));
}

TEST_CASE("mismatch: each aspect, and what a change of kind is called") {
  pb::CacheInput in;
  in.set_kind(static_cast<uint32_t>(FileKind::kFile));
  in.set_aspects(kAspectMeta);
  in.set_mode(0644);
  in.set_size(3);
  PathState s;
  s.kind = FileKind::kFile;
  s.mode = 0644;
  s.size = 3;
  CHECK(mismatch(in, "/f", s) == "");
  s.mode = 0755;
  CHECK(mismatch(in, "/f", s) == "/f: mode changed");
  s.mode = 0644;
  s.size = 4;
  CHECK(mismatch(in, "/f", s) == "/f: size changed");
  s.kind = FileKind::kDir;
  CHECK(mismatch(in, "/f", s) == "/f is now a directory (it was a file)");
  s.kind = FileKind::kAbsent;
  CHECK(mismatch(in, "/f", s) == "/f was removed");
  in.set_kind(static_cast<uint32_t>(FileKind::kAbsent));
  in.set_aspects(kAspectAbsent);
  s.kind = FileKind::kFile;
  CHECK(mismatch(in, "/f\n", s) == "/f\\n now exists (it was missing)");
  in.set_aspects(kAspectPresent);  // anything there will do
  s.kind = FileKind::kFifo;
  CHECK(mismatch(in, "/f", s) == "");
  s.kind = FileKind::kAbsent;
  CHECK(mismatch(in, "/f", s) == "/f was removed");
  pb::CacheInput listed;
  listed.set_kind(static_cast<uint32_t>(FileKind::kDir));
  listed.set_aspects(kAspectListing);
  listed.set_listing(std::string(listing_digest({"a", "b"}).raw()));
  PathState d;
  d.kind = FileKind::kDir;
  d.names = {"a", "b"};
  CHECK(mismatch(listed, "/d", d) == "");
  d.names = {"ab"};  // the names' boundaries count
  CHECK(mismatch(listed, "/d", d) == "/d: listing changed");
}

TEST_CASE("entry_mismatch: another root, a changed input, a changed order") {
  Memo m;
  HashMemo memo(m.hashes.get(), "");
  put_file(m.t / "in", "x");
  pb::CacheEntry e;
  e.set_root(m.t.path);
  auto* in = e.add_inputs();
  in->set_path("in");
  in->set_in_root(true);
  in->set_kind(static_cast<uint32_t>(FileKind::kFile));
  in->set_aspects(kAspectContent);
  in->set_content(std::string(hash_bytes("x").raw()));
  CHECK(entry_mismatch(e, m.t.path, memo) == "");
  e.set_root_keyed(true);
  CHECK(entry_mismatch(e, "/elsewhere", memo) ==
        "it was stored in another checkout (its outputs name " + m.t.path + ")");
  CHECK(entry_mismatch(e, m.t.path, memo) == "");
  put_file(m.t / "in", "y");
  CHECK(entry_mismatch(e, m.t.path, memo) == "an input changed: " + m.t.path + "/in: content changed");
  // An ordered input stored as older than the start: now it is newer.
  put_file(m.t / "in", "x");
  in->set_aspects(kAspectContent | kAspectOrder);
  in->set_mtime_rank(1);
  e.set_start_rank(3);
  CHECK(entry_mismatch(e, m.t.path, memo) == "");
  set_mtime(m.t / "in", 4000000000);  // in 2096
  CHECK(entry_mismatch(e, m.t.path, memo).find("is no longer older than the time it starts") != std::string::npos);
}

TEST_CASE("the hash memo: a fresh file is not remembered; a planted memo is believed only when signed") {
  Memo m;
  put_file(m.t / "f", "real");
  UniqueFd fd(::open((m.t / "f").c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  REQUIRE(::fstat(fd.get(), &st) == 0);
  HashMemo plain(m.hashes.get(), "");
  auto d = plain.hash(fd.get(), st, "f");
  REQUIRE(d);
  CHECK(*d == hash_bytes("real"));
  CHECK(m.memos() == 0);  // changed within two seconds: its times may not tell the next change
  std::string name = HashMemo::name_of(st);
  std::string claimed(hash_bytes("claimed").raw());
  put_file(m.t / ("hashes/" + name), claimed);
  CHECK(*plain.hash(fd.get(), st, "f") == hash_bytes("claimed"));  // a private cache trusts its own memos
  std::string key = "0123456789abcdef";
  HashMemo shared(m.hashes.get(), key);
  put_file(m.t / ("hashes/" + name), claimed + std::string(32, 'x'));
  CHECK(*shared.hash(fd.get(), st, "f") == hash_bytes("real"));
  put_file(m.t / ("hashes/" + name), claimed + hmac("another key, 16+", name + claimed));
  CHECK(*shared.hash(fd.get(), st, "f") == hash_bytes("real"));
  put_file(m.t / ("hashes/" + name), claimed + hmac(key, name + claimed));
  CHECK(*shared.hash(fd.get(), st, "f") == hash_bytes("claimed"));
  shared.forget_all();
  CHECK(m.memos() == 0);
}

TEST_CASE("hash_field: fields keep their boundaries") {
  Hasher a, b;
  hash_field(a, "ab");
  hash_field(a, "c");
  hash_field(b, "a");
  hash_field(b, "bc");
  CHECK_FALSE(a.finish() == b.finish());
}
