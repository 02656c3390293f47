// layout_test.cpp: the remote layout: a probe taken from the tree agrees
// with the one taken from an entry made of that tree, and changes with
// what the entry depends on; keys separate signers and roots; an entry's
// ActionResult is one a REAPI server accepts (relative UTF-8 paths, every
// blob named by digest and size); the shapes list keeps the newest.
#include "sandbox/remote/layout.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "sandbox/base/clocks.h"
#include "sandbox/cache/cache.pb.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;
namespace layout = bsandbox::remote_layout;

namespace {

// An entry depending on in.c's content, a missing header, the listing of
// inc/, tool's exact mtime and the order of two ordered files, as the
// tree under root is now.
pb::CacheEntry entry_of(const std::string& root, const HashMemo& memo) {
  pb::CacheEntry e;
  TimeOrder order;
  std::vector<int> ordered;
  auto add = [&](const std::string& rel, uint32_t aspects) {
    auto now = look(root + "/" + rel, aspects, memo);
    REQUIRE(now);
    auto* in = e.add_inputs();
    in->set_path(rel);
    in->set_in_root(true);
    in->set_aspects(aspects);
    in->set_kind(static_cast<uint32_t>(now->kind));
    if (aspects & kAspectContent) in->set_content(std::string(now->content->raw()));
    if (aspects & kAspectListing) in->set_listing(std::string(listing_digest(now->names).raw()));
    if (aspects & kAspectMtime) in->set_mtime(time_of(*now));
    if (aspects & kAspectMeta) {
      in->set_mode(now->mode);
      in->set_size(now->size);
    }
    if (aspects & kAspectOrder) {
      order.items.push_back({time_of(*now), true, rel});
      ordered.push_back(e.inputs_size() - 1);
    }
  };
  add("in.c", kAspectContent);
  add("inc/missing.h", kAspectAbsent);
  add("inc", kAspectListing);
  add("tool", kAspectMtime | kAspectMeta);
  add("a.o", kAspectOrder | kAspectContent);
  add("b.o", kAspectOrder | kAspectContent);
  order.items.push_back({Clocks::wall_now(), true, ""});
  auto places = order.places();
  for (size_t i = 0; i < ordered.size(); ++i) e.mutable_inputs(ordered[i])->set_mtime_rank(places[i]);
  e.set_start_rank(places.back());
  e.set_root(root);
  return e;
}

void set_mtime(const std::string& path, int64_t sec) {
  timespec t[2] = {{sec, 0}, {sec, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), t, 0) == 0);
}

}  // namespace

TEST_CASE("a probe of the tree finds the entry made of it, and only while it holds") {
  TempDir t("layout");
  TempDir hashes("hashes");
  HashMemo memo(hashes.fd.get(), "");
  std::string root = t.path;
  put_file(t / "in.c", "int x;\n");
  REQUIRE(::mkdir((t / "inc").c_str(), 0755) == 0);
  put_file(t / "inc/a.h", "\n");
  put_file(t / "tool", "#!/bin/sh\n", 0755);
  put_file(t / "a.o", "a\n");
  put_file(t / "b.o", "b\n");
  set_mtime(t / "a.o", 1000);
  set_mtime(t / "b.o", 2000);
  pb::CacheEntry e = entry_of(root, memo);
  pb::Shape shape = layout::shape_of(e);
  auto probe = layout::probe_now(shape, root, memo);
  REQUIRE(probe);
  REQUIRE(*probe);
  CHECK(**probe == layout::probe_of(e));

  auto changed = [&] {
    auto p = layout::probe_now(shape, root, memo);
    REQUIRE(p);
    return !*p || **p != layout::probe_of(e);
  };
  SUBCASE("unchanged but touched in the same order: the same probe") {
    set_mtime(t / "a.o", 5000);
    set_mtime(t / "b.o", 6000);
    CHECK_FALSE(changed());
  }
  SUBCASE("content") {
    put_file(t / "in.c", "int y;\n");
    CHECK(changed());
  }
  SUBCASE("a missing file appears") {
    put_file(t / "inc/missing.h", "\n");
    CHECK(changed());
  }
  SUBCASE("a listing") {
    put_file(t / "inc/b.h", "\n");
    CHECK(changed());
  }
  SUBCASE("an exact time") {
    set_mtime(t / "tool", 12345);
    CHECK(changed());
  }
  SUBCASE("a mode") {
    REQUIRE(::chmod((t / "tool").c_str(), 0700) == 0);
    CHECK(changed());
  }
  SUBCASE("the order of times") {
    set_mtime(t / "a.o", 3000);
    CHECK(changed());
  }
  SUBCASE("the same tree elsewhere has the same probe") {
    TempDir u("layout");
    REQUIRE(::system(("cp -a " + t.path + "/. " + u.path).c_str()) == 0);
    auto p = layout::probe_now(shape, u.path, memo);
    REQUIRE(p);
    REQUIRE(*p);
    CHECK(**p == layout::probe_of(e));
  }
}

TEST_CASE("keys separate signers, commands, shapes and, for entries naming it, roots") {
  Digest w1 = hash_bytes("one"), w2 = hash_bytes("two"), p = hash_bytes("probe");
  pb::Shape s;
  s.add_inputs()->set_path("in.c");
  CHECK(layout::index_key("unsigned", w1) != layout::index_key("unsigned", w2));
  CHECK(layout::index_key("unsigned", w1) != layout::index_key(layout::key_id("k0123456789abcdef"), w1));
  CHECK(layout::key_id("k0123456789abcdef") != layout::key_id("k0123456789abcdeF"));
  CHECK(layout::key_id("") == "unsigned");
  CHECK(layout::entry_key("unsigned", w1, s, p, "/a") == layout::entry_key("unsigned", w1, s, p, "/b"));
  pb::Shape keyed = s;
  keyed.set_root_keyed(true);
  CHECK(layout::entry_key("unsigned", w1, keyed, p, "/a") != layout::entry_key("unsigned", w1, keyed, p, "/b"));
  CHECK(layout::entry_key("unsigned", w1, keyed, p, "/a") != layout::entry_key("unsigned", w1, s, p, "/a"));
  CHECK(layout::ac_path(w1) == "ac/" + w1.hex());
  CHECK(layout::cas_path(w1) == "cas/" + w1.hex());
  // A build's manifest: its command (argument boundaries kept), directory,
  // root and the signer; never an entry's or an index's name.
  Digest b = layout::build_key({"make", "-j2"}, "/src", "/src");
  CHECK(b != layout::build_key({"make -j2"}, "/src", "/src"));
  CHECK(b != layout::build_key({"make", "-j2"}, "/src/sub", "/src"));
  CHECK(b != layout::build_key({"make", "-j2"}, "/src", "/"));
  CHECK(layout::manifest_key("unsigned", b) != layout::manifest_key(layout::key_id("k0123456789abcdef"), b));
  CHECK(layout::manifest_key("unsigned", b) != layout::index_key("unsigned", b));
}

TEST_CASE("an entry's ActionResult names every blob with a path a REAPI server accepts") {
  pb::CacheEntry e;
  auto file = [&](const std::string& path, const std::string& content, uint32_t mode) {
    auto* o = e.add_outputs();
    o->set_path(path);
    o->set_kind(static_cast<uint32_t>(FileKind::kFile));
    o->set_mode(mode);
    o->set_content(std::string(hash_bytes(content).raw()));
    o->set_size(content.size());
  };
  file("bin/tool", "tool", 0755);
  file(std::string("bad\xff", 4), "bad", 0644);
  auto* link = e.add_outputs();
  link->set_path("link");
  link->set_kind(static_cast<uint32_t>(FileKind::kSymlink));
  link->set_target("bin/tool");
  auto* gone = e.add_outputs();
  gone->set_path("old");
  gone->set_kind(static_cast<uint32_t>(FileKind::kAbsent));
  e.set_stdout_object(std::string(hash_bytes("out").raw()));
  e.set_record_object(std::string(hash_bytes("record").raw()));
  e.set_exit_code(3);
  std::string blob = "the entry's sealed bytes";
  auto ar = layout::entry_result(e, blob, [](const Digest&) { return uint64_t{7}; });
  reapi::ActionResult parsed;
  REQUIRE(parsed.ParseFromString(ar.SerializeAsString()));
  CHECK(parsed.exit_code() == 3);
  std::map<std::string, reapi::OutputFile> files;
  for (const auto& f : parsed.output_files()) files[f.path()] = f;
  REQUIRE(files.size() == 4);
  CHECK(files.count(".bsandbox/entry"));
  CHECK(files.count(".bsandbox/record"));
  CHECK(files["bin/tool"].is_executable());
  CHECK(files["bin/tool"].digest().hash() == hash_bytes("tool").hex());
  CHECK(files["bin/tool"].digest().size_bytes() == 4);
  CHECK(files.count(".bsandbox/file/" + hash_bytes("bad").hex()));  // not UTF-8: by digest
  REQUIRE(parsed.output_symlinks_size() == 1);
  CHECK(parsed.output_symlinks(0).target() == "bin/tool");
  CHECK(parsed.stdout_digest().hash() == hash_bytes("out").hex());
  CHECK_FALSE(parsed.has_stderr_digest());
  auto entry = layout::output_named(parsed, layout::kEntryPath);
  REQUIRE(entry);
  CHECK(entry->inlined == blob);
  CHECK(entry->digest == hash_bytes(blob));
  CHECK(layout::entry_objects(e).size() == 4);  // tool, bad, stdout, record
}

TEST_CASE("the shapes list puts the newest first and keeps at most eight") {
  Digest weak = hash_bytes("weak");
  pb::Shapes list;
  auto shape = [](int i) {
    pb::Shape s;
    s.add_inputs()->set_path("in" + std::to_string(i));
    return s;
  };
  for (int i = 0; i < 10; ++i) list = layout::with_shape(list, shape(i), weak);
  CHECK(list.shapes_size() == 8);
  CHECK(list.shapes(0).inputs(0).path() == "in9");
  CHECK(list.shapes(7).inputs(0).path() == "in2");
  list = layout::with_shape(list, shape(5), weak);
  CHECK(list.shapes_size() == 8);
  CHECK(list.shapes(0).inputs(0).path() == "in5");
  CHECK(list.shapes(1).inputs(0).path() == "in9");
  CHECK(list.weak_key() == weak.raw());
}
