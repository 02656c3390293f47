// restore_test.cpp: a hit's outputs put in place: files with their modes,
// symlinks, directories (their modes set last), deletions; a missing parent
// is a miss; a damaged object is found before anything is replaced.
#include "sandbox/cache/restore.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cache/cache.pb.h"
#include "tests/cache/cache_fixture.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

struct Restoring {
  TempDir t{"restore"};
  std::string root = t / "root";
  Result<Store> store = fail("");
  pb::CacheEntry e;
  Restoring() {
    REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    store = Store::open(t.fd.get(), "objects", "objects", false);
    REQUIRE(store);
  }
  void file(const std::string& path, const std::string& data, uint32_t mode, uint32_t rank = 0) {
    UniqueFd fd = memfile(data);
    auto d = store->put(fd.get(), path);
    REQUIRE(d);
    auto* o = e.add_outputs();
    o->set_path(path);
    o->set_kind(static_cast<uint32_t>(FileKind::kFile));
    o->set_mode(mode);
    o->set_content(std::string(d->raw()));
    o->set_mtime_rank(rank);
  }
  void other(const std::string& path, FileKind kind, uint32_t mode = 0, const std::string& target = "") {
    auto* o = e.add_outputs();
    o->set_path(path);
    o->set_kind(static_cast<uint32_t>(kind));
    o->set_mode(mode);
    o->set_target(target);
  }
  std::vector<std::string> litter() {
    std::vector<std::string> out;
    for (const std::string& dir : {root, root + "/sub"}) {
      UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (auto names = list_dir(fd.get(), dir))
        for (const auto& n : *names)
          if (n.starts_with(".bsandbox.")) out.push_back(n);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("restore_outputs: directories, files, symlinks and deletions; directory modes last") {
  Restoring r;
  put_file(r.root + "/gone", "deleted by the run");
  put_file(r.root + "/out.o", "stale");
  r.other("gone", FileKind::kAbsent);
  r.file("out.o", "fresh", 0640, 1);
  r.other("sub", FileKind::kDir, 0555);  // read-only: set after what goes in it
  r.file("sub/inner", "inside", 0600, 0);
  r.other("sub/link", FileKind::kSymlink, 0777, "inner");
  std::string why;
  std::optional<Digest> damaged;
  REQUIRE(restore_outputs(r.e, "entry", r.root, *r.store, &why, &damaged));
  CHECK(why.empty());
  CHECK(::access((r.root + "/gone").c_str(), F_OK) != 0);
  CHECK(get_file(r.root + "/out.o") == "fresh");
  CHECK(get_file(r.root + "/sub/inner") == "inside");
  struct stat st;
  REQUIRE(::stat((r.root + "/out.o").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  REQUIRE(::stat((r.root + "/sub").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0555);
  char target[16] = {};
  CHECK(::readlink((r.root + "/sub/link").c_str(), target, sizeof target) == 5);
  CHECK(r.litter().empty());
  ::chmod((r.root + "/sub").c_str(), 0755);  // for the temporary directory's removal
}

TEST_CASE("restore_outputs: a parent the run did not make, missing now, is a miss") {
  Restoring r;
  r.file("nodir/out.o", "x", 0644);
  std::string why;
  std::optional<Digest> damaged;
  CHECK_FALSE(restore_outputs(r.e, "entry", r.root, *r.store, &why, &damaged));
  CHECK(why == "the directory of " + r.root + "/nodir/out.o is missing");
  CHECK_FALSE(damaged);
}

TEST_CASE("restore_outputs: a damaged object is named, and nothing is replaced or left behind") {
  Restoring r;
  put_file(r.root + "/a", "old a");
  put_file(r.root + "/gone", "still here");
  r.file("a", "new a", 0644, 0);
  r.file("b", "new b", 0644, 1);
  r.other("gone", FileKind::kAbsent);
  std::string obj = r.t / ("objects/" + hash_bytes("new b").hex().insert(2, "/"));
  ::chmod(obj.c_str(), 0644);
  put_file(obj, "new B");
  std::string why;
  std::optional<Digest> damaged;
  auto ok = restore_outputs(r.e, "entry", r.root, *r.store, &why, &damaged);
  REQUIRE_FALSE(ok);
  CHECK(damaged == hash_bytes("new b"));
  CHECK(why.empty());
  CHECK(get_file(r.root + "/a") == "old a");
  CHECK(::access((r.root + "/b").c_str(), F_OK) != 0);
  CHECK(get_file(r.root + "/gone") == "still here");
  CHECK(r.litter().empty());
}
