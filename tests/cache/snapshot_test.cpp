// snapshot_test.cpp: which paths a command's words name (the paths it may
// look at and then replace), and the look taken at them before it runs.
#include "sandbox/cache/snapshot.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cache/cache.pb.h"
#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

using Paths = std::set<std::string>;

TEST_CASE("paths_named: arguments, option values and shell words; not argv[0], not bare options") {
  CHECK(paths_named({"cc", "-c", "a.c", "-o", "x.o", "-oy.o", "--output=z", "V=w/p", "-Wall", "/abs"}, "/r") ==
        Paths{"/r/a.c", "/r/x.o", "/r/y.o", "/r/z", "/r/w/p", "/abs"});
  CHECK(paths_named({"sh", "-c", "cp 'a b' c;mv \"d\" e>f|g"}, "/r") ==
        Paths{"/r/a", "/r/b", "/r/c", "/r/cp", "/r/d", "/r/e", "/r/f", "/r/g", "/r/mv"});
  CHECK(paths_named({"x", "--flag", "-o", ""}, "/r").empty());
  CHECK(paths_named({"only-the-program"}, "/r").empty());
  std::vector<std::string> many{"sh"};
  for (int i = 0; i < 5000; ++i) many.push_back("f" + std::to_string(i));
  CHECK(paths_named(many, "/r").size() == 4096);
}

TEST_CASE("look_before: named paths and earlier outputs under the root; content of small files; kept looks stay") {
  TempDir t("snapshot");
  std::string root = t / "root";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  REQUIRE(::mkdir((t / "hashes").c_str(), 0755) == 0);
  UniqueFd hashes(::open((t / "hashes").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  HashMemo memo(hashes.get(), "");
  put_file(root + "/named", "named content");
  put_file(root + "/earlier.o", "made by an earlier run");
  put_file(root + "/kept", "now");
  put_file(t / "outside", "not under the root");
  pb::CacheEntry earlier;
  earlier.add_outputs()->set_path("earlier.o");
  std::unordered_map<std::string, PathState> before;
  PathState kept;
  kept.kind = FileKind::kFifo;
  before[root + "/kept"] = kept;
  look_before({"tool", "named", "kept", "../outside", "missing"}, root, root, {earlier}, memo, &before);
  REQUIRE(before.count(root + "/named"));
  CHECK(before[root + "/named"].content == hash_bytes("named content"));
  REQUIRE(before.count(root + "/earlier.o"));
  CHECK(before[root + "/earlier.o"].content == hash_bytes("made by an earlier run"));
  CHECK(before[root + "/kept"].kind == FileKind::kFifo);  // not looked at again
  CHECK_FALSE(before.count(t / "outside"));
  REQUIRE(before.count(root + "/missing"));
  CHECK(before[root + "/missing"].kind == FileKind::kAbsent);  // that it was missing is known too
}
