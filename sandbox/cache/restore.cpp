// restore.cpp: see restore.h. A Restore holds the root's descriptor and the
// files staged so far; each step is one pass over the entry's outputs (in
// path order, so parents come before children), and on an error the staged
// temporaries are removed, so a failed restore leaves no litter.
#include "sandbox/cache/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/core/path.h"
#include "sandbox/storage/file_state.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

class Restore {
 public:
  Restore(const pb::CacheEntry& e, const std::string& shown, const std::string& root, UniqueFd root_fd, Store& store,
          std::string* why, std::optional<Digest>* damaged)
      : e_(e), shown_(shown), root_(root), root_fd_(std::move(root_fd)), store_(store), why_(why), damaged_(damaged) {}
  ~Restore() {
    for (auto& s : staged_) ::unlinkat(s.dir.get(), s.temp.c_str(), 0);
  }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;

  Result<void> make_dirs();
  Result<void> stage_files();
  Result<void> remove_deleted();
  Result<void> rename_staged();
  void set_dir_modes();

 private:
  struct Staged {
    UniqueFd dir;
    std::string name, temp;
  };
  Result<Parent> parent_of(const std::string& rel);
  Result<void> stage(const pb::CacheOutput& o);

  const pb::CacheEntry& e_;
  const std::string& shown_;
  const std::string& root_;
  UniqueFd root_fd_;
  Store& store_;
  std::string* why_;
  std::optional<Digest>* damaged_;
  std::vector<Staged> staged_;  // removed by the destructor unless renamed
};

Result<Parent> Restore::parent_of(const std::string& rel) {
  int err = 0;
  auto p = open_parent(root_fd_.get(), rel, &err);
  if (!p && err == ENOENT) *why_ = "the directory of " + printable(path::resolve(root_, rel)) + " is missing";
  return p;
}

Result<void> Restore::make_dirs() {
  for (const auto& o : e_.outputs()) {  // sorted: parents before children
    if (static_cast<FileKind>(o.kind()) != FileKind::kDir) continue;
    auto p = parent_of(o.path());
    if (!p) return tl::unexpected(p.error());
    struct stat st;
    if (::fstatat(p->dir.get(), p->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
      ::unlinkat(p->dir.get(), p->name.c_str(), 0);
    if (::mkdirat(p->dir.get(), p->name.c_str(), 0700) != 0 && errno != EEXIST)
      return fail_errno(printable(path::resolve(root_, o.path())), errno);
  }
  return {};
}

Result<void> Restore::stage(const pb::CacheOutput& o) {
  auto p = parent_of(o.path());
  if (!p) return tl::unexpected(p.error());
  Staged s{std::move(p->dir), std::move(p->name), temp_name()};
  if (static_cast<FileKind>(o.kind()) == FileKind::kSymlink) {
    if (::symlinkat(o.target().c_str(), s.dir.get(), s.temp.c_str()) != 0)
      return fail_errno(printable(path::resolve(root_, o.path())), errno);
  } else {
    auto d = Digest::from_raw(o.content());
    if (!d) return fail(printable(shown_) + ": bad object reference");
    if (auto r = store_.restore(*d, s.dir.get(), s.temp, o.mode()); !r) {
      *damaged_ = *d;
      return tl::unexpected(r.error());
    }
  }
  staged_.push_back(std::move(s));
  return {};
}

// Files and symlinks are written in the order of the times the run left
// them in (rustc writes a crate's .rmeta before its .rlib, and the next
// rustc compares them), so that the kernel's clock stamps them in that
// order too (a rename keeps a file's time). Times are not set by hand: a
// time ahead of the kernel's coarse clock would make the outputs newer
// than what the build writes next (cargo's build script outputs).
Result<void> Restore::stage_files() {
  std::vector<const pb::CacheOutput*> files;
  for (const auto& o : e_.outputs()) {
    auto kind = static_cast<FileKind>(o.kind());
    if (kind == FileKind::kFile || kind == FileKind::kSymlink) files.push_back(&o);
  }
  std::stable_sort(files.begin(), files.end(), [](const pb::CacheOutput* a, const pb::CacheOutput* b) {
    return a->mtime_rank() < b->mtime_rank();
  });
  for (const pb::CacheOutput* o : files)
    if (auto r = stage(*o); !r) return r;
  return {};
}

Result<void> Restore::remove_deleted() {
  const auto& outs = e_.outputs();
  for (auto o = outs.rbegin(); o != outs.rend(); ++o) {  // deepest first
    if (static_cast<FileKind>(o->kind()) != FileKind::kAbsent) continue;
    int err = 0;
    auto p = open_parent(root_fd_.get(), o->path(), &err);
    if (!p) continue;  // its directory is gone: so is it
    if (::unlinkat(p->dir.get(), p->name.c_str(), 0) != 0 && errno == EISDIR &&
        ::unlinkat(p->dir.get(), p->name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
      return fail_errno(printable(path::resolve(root_, o->path())), errno);
  }
  return {};
}

Result<void> Restore::rename_staged() {
  for (size_t i = 0; i < staged_.size(); ++i) {
    auto& s = staged_[i];
    if (::renameat(s.dir.get(), s.temp.c_str(), s.dir.get(), s.name.c_str()) != 0) {
      auto failed = fail_errno(printable(s.name), errno);
      staged_.erase(staged_.begin(), staged_.begin() + static_cast<ptrdiff_t>(i));  // in place: not litter
      return failed;
    }
  }
  staged_.clear();
  return {};
}

void Restore::set_dir_modes() {
  for (const auto& o : e_.outputs()) {
    if (static_cast<FileKind>(o.kind()) != FileKind::kDir) continue;
    // By descriptor: a directory swapped for a symlink meanwhile is left
    // alone, not a chmod of whatever the symlink points at.
    if (auto dir = open_beneath(root_fd_.get(), o.path(), O_PATH | O_DIRECTORY))
      (void)set_mode(dir->get(), o.mode(), o.path());
  }
}

}  // namespace

Result<void> restore_outputs(const pb::CacheEntry& e, const std::string& shown, const std::string& root, Store& store,
                             std::string* why, std::optional<Digest>* damaged) {
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return fail_errno(printable(root), errno);
  Restore r(e, shown, root, std::move(root_fd), store, why, damaged);
  if (auto ok = r.make_dirs(); !ok) return ok;
  if (auto ok = r.stage_files(); !ok) return ok;
  if (auto ok = r.remove_deleted(); !ok) return ok;
  if (auto ok = r.rename_staged(); !ok) return ok;
  r.set_dir_modes();
  return {};
}

}  // namespace bsandbox
