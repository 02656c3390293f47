// change_set.cpp: see change_set.h. Two halves: reading states and the
// changes between two trees (scan_upper walks the run's upper directory,
// where overlayfs copied up exactly what the run touched), and applying a
// change set to the real tree through descriptors opened beneath its root,
// a directory before what it holds, each file made whole beside its place
// and renamed over it, ownership before mode (chown clears setuid bits).
#include "sandbox/journal/change_set.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

bool is_opaque(int dirfd, const std::string& name) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return false;
  for (const char* attr : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    char v[4] = {};
    if (::fgetxattr(fd.get(), attr, v, sizeof v) == 1 && v[0] == 'y') return true;
  }
  return false;
}

// The state of path in the tree under root_fd; a path under a non-directory
// or a symlink is absent (it is not a path of the tree).
Result<FileState> current_state(int root_fd, const std::string& path, bool hash) {
  int err = 0;
  auto parent = open_parent(root_fd, path, &err);
  if (!parent) {
    if (err == ENOENT || err == ENOTDIR || err == ELOOP) return FileState{};
    return tl::unexpected(parent.error());
  }
  return observe_at(parent->dir.get(), parent->name, hash, path);
}

class Scanner {
 public:
  Scanner(const UpperLayout& upper, std::vector<Change>* out) : upper_(upper), out_(out) {}

  // upper_dir and real_dir (-1: no directory there in the tree) at rel. In
  // an opaque directory nothing below is merged with the tree.
  Result<void> dir(int upper_dir, int real_dir, const std::string& rel, bool opaque) {
    auto names = list_dir(upper_dir, rel.empty() ? "upper directory" : rel);
    if (!names) return tl::unexpected(names.error());
    std::set<std::string> seen;
    for (const auto& name : *names) {
      if (rel.empty() && std::find(upper_.skip.begin(), upper_.skip.end(), name) != upper_.skip.end())
        continue;
      seen.insert(name);
      if (auto r = entry(upper_dir, real_dir, rel, name, opaque); !r) return r;
    }
    if (opaque && real_dir >= 0) {
      // An opaque directory hides everything below it: what is not in the
      // upper directory is gone.
      auto real_names = list_dir(real_dir, rel);
      if (!real_names) return tl::unexpected(real_names.error());
      for (const auto& name : *real_names) {
        if (seen.count(name)) continue;
        if (rel.empty() && std::find(upper_.skip.begin(), upper_.skip.end(), name) != upper_.skip.end())
          continue;
        if (auto r = removal(real_dir, join_path(rel, name), name); !r) return r;
      }
    }
    return {};
  }

 private:
  Result<void> entry(int upper_dir, int real_dir, const std::string& rel, const std::string& name,
                     bool in_opaque) {
    std::string path = join_path(rel, name);
    struct stat up;
    if (::fstatat(upper_dir, name.c_str(), &up, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno(printable(path), errno);
    FileState real;
    if (real_dir >= 0) {
      auto r = observe_at(real_dir, name, false, path);
      if (!r) return tl::unexpected(r.error());
      real = std::move(*r);
    }
    if (is_whiteout(up)) {
      if (!real.absent()) return removal(real_dir, path, name);
      return {};
    }
    auto after = state_from_stat(upper_dir, name, up, path);
    if (!after) return tl::unexpected(after.error());
    if (S_ISDIR(up.st_mode)) {
      bool opaque = in_opaque || is_opaque(upper_dir, name);
      UniqueFd upper_sub(::openat(upper_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!upper_sub.valid()) return fail_errno(printable(path), errno);
      UniqueFd real_sub;
      if (real.kind == FileKind::kDir) {
        real_sub.reset(::openat(real_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!real_sub.valid()) return fail_errno(printable(path), errno);
        if (!real.same_as(*after) || real.uid != after->uid || real.gid != after->gid)
          out_->push_back(Change{path, real, *after, {}, {}});
      } else {
        if (!real.absent()) {
          auto r = before_of_replaced(real_dir, name, path, real);
          if (!r) return r;
        }
        out_->push_back(Change{path, real, *after, {}, {}});
      }
      return dir(upper_sub.get(), real_sub.valid() ? real_sub.get() : -1, path, opaque);
    }
    if (after->kind == FileKind::kFile) {
      UniqueFd fd(::openat(upper_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return fail_errno(printable(path), errno);
      auto h = hash_fd(fd.get(), path);
      if (!h) return tl::unexpected(h.error());
      after->hash = *h;
      if (real.kind == FileKind::kFile && real.size == after->size && real.mode == after->mode &&
          real.mtime_ns == after->mtime_ns) {
        // Copied up (opened for writing, say) but perhaps not changed.
        auto r = observe_at(real_dir, name, true, path);
        if (!r) return tl::unexpected(r.error());
        if (r->hash == after->hash) return {};
      }
    } else if (real.same_as(*after) && real.mtime_ns == after->mtime_ns) {
      return {};
    }
    if (real.kind == FileKind::kDir) {
      auto r = before_of_replaced(real_dir, name, path, real);
      if (!r) return r;
    }
    out_->push_back(Change{path, real, *after, {}, {}});
    return {};
  }

  // A directory replaced by something else: its contents are removed first.
  Result<void> before_of_replaced(int real_dir, const std::string& name, const std::string& path,
                                  const FileState& real) {
    if (real.kind != FileKind::kDir) return {};
    UniqueFd sub(::openat(real_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.valid()) return fail_errno(printable(path), errno);
    auto names = list_dir(sub.get(), path);
    if (!names) return tl::unexpected(names.error());
    for (const auto& n : *names)
      if (auto r = removal(sub.get(), join_path(path, n), n); !r) return r;
    return {};
  }

  // path (name in real_dir) and everything under it are removed.
  Result<void> removal(int real_dir, const std::string& path, const std::string& name) {
    auto real = observe_at(real_dir, name, false, path);
    if (!real) return tl::unexpected(real.error());
    if (real->absent()) return {};
    if (auto r = before_of_replaced(real_dir, name, path, *real); !r) return r;
    out_->push_back(Change{path, *real, FileState{}, {}, {}});
    return {};
  }

  const UpperLayout& upper_;
  std::vector<Change>* out_;
};

// Paths sorted so that a directory comes before what it holds: "a" < "a/b"
// < "a-b" would put "a-b" between, which does not matter; only ancestry
// does, and a prefix sorts first.
std::vector<size_t> order(const std::vector<Change>& changes) {
  std::vector<size_t> idx(changes.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return changes[a].path < changes[b].path; });
  return idx;
}

bool is_dir(const FileState& s) { return s.kind == FileKind::kDir; }

// A directory of the tree that its owner made read-only (0555) is made
// writable for the one change inside it and then put back; root needs no
// such help. (A crash in between leaves it u+w.)
class WritableDir {
 public:
  explicit WritableDir(int dir) {
    struct stat st;
    if (::geteuid() == 0 || ::fstat(dir, &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 0300) == 0300)
      return;
    if (set_mode(dir, (st.st_mode & 07777) | 0300, "directory")) {
      dir_ = dir;
      mode_ = st.st_mode & 07777;
    }
  }
  ~WritableDir() {
    if (dir_ >= 0) (void)set_mode(dir_, mode_, "directory");
  }
  WritableDir(const WritableDir&) = delete;
  WritableDir& operator=(const WritableDir&) = delete;

 private:
  int dir_ = -1;
  mode_t mode_ = 0;
};

// Gives fd (what install() just made) s's owner (when root), permission
// bits and mtime, in that order: a chown clears the setuid and setgid bits,
// so the mode must come after it.
Result<void> set_metadata(int fd, const FileState& s, std::string_view what) {
  if (::geteuid() == 0)
    if (auto r = set_owner(fd, s.uid, s.gid, what); !r) return r;
  if (s.kind != FileKind::kSymlink)
    if (auto r = set_mode(fd, s.mode, what); !r) return r;
  return set_mtime(fd, s.mtime_ns, what);
}

// Links temp in parent to c.after_link if that still is a file with
// c.after's content (and so, being the same file, its mode and times).
bool link_back(const Change& c, int root_fd, int dir, const std::string& temp) {
  if (c.after_link.empty() || c.after.kind != FileKind::kFile) return false;
  auto other = open_parent(root_fd, c.after_link);
  if (!other) return false;
  auto now = observe_at(other->dir.get(), other->name, true, c.after_link);
  if (!now || !now->same_as(c.after) || now->uid != c.after.uid || now->gid != c.after.gid) return false;
  return ::linkat(other->dir.get(), other->name.c_str(), dir, temp.c_str(), 0) == 0;
}

// Makes temp in dir hold c.after (a file, symlink or fifo) and returns it
// open: everything after its creation goes through the descriptor, so
// nothing swapped in under the name meanwhile is changed.
Result<UniqueFd> make(const Change& c, int dir, const std::string& temp, const ContentSource& source) {
  const FileState& a = c.after;
  switch (a.kind) {
    case FileKind::kFile: {
      UniqueFd out(::openat(dir, temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid()) return fail_errno(printable(c.path), errno);
      Result<void> r;
      if (source.upper_fd >= 0) {
        auto up = open_parent(source.upper_fd, c.path);
        if (!up) return tl::unexpected(up.error());
        UniqueFd in(::openat(up->dir.get(), up->name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!in.valid()) return fail_errno(printable(c.path), errno);
        r = copy_content(in.get(), out.get(), c.path);
      } else {
        r = source.store->copy_to(*a.hash, out.get());
      }
      if (!r) return tl::unexpected(r.error());
      return out;
    }
    case FileKind::kSymlink:
      if (::symlinkat(a.target.c_str(), dir, temp.c_str()) != 0) return fail_errno(printable(c.path), errno);
      return open_made(dir, temp, S_IFLNK, c.path);
    case FileKind::kFifo:
      if (::mkfifoat(dir, temp.c_str(), 0600) != 0) return fail_errno(printable(c.path), errno);
      return open_made(dir, temp, S_IFIFO, c.path);
    default:
      return fail(printable(c.path) + ": cannot restore a " + kind_name(a.kind));
  }
}

// Makes parent/name hold c.after (not a directory), replacing what is there
// (not a directory either) in one rename.
Result<void> install(const Change& c, const Parent& parent, const ContentSource& source, int root_fd) {
  if (source.upper_fd >= 0) {
    auto up = open_parent(source.upper_fd, c.path);
    if (!up) return fail("the run's copy of " + up.error().message);
    WritableDir from(up->dir.get());
    if (::renameat(up->dir.get(), up->name.c_str(), parent.dir.get(), parent.name.c_str()) == 0)
      return {};
    if (errno != EXDEV) return fail_errno(printable(c.path), errno);
    // Another file system inside the project: copy instead.
  }
  std::string temp = temp_name();
  int dir = parent.dir.get();
  Result<void> r;
  if (!link_back(c, root_fd, dir, temp)) {
    auto made = make(c, dir, temp, source);
    if (!made) r = tl::unexpected(made.error());
    if (r) r = set_metadata(made->get(), c.after, c.path);
    if (r && c.after.kind == FileKind::kFile) r = sync_fd(made->get(), c.path);
  }
  if (r && ::renameat(dir, temp.c_str(), dir, parent.name.c_str()) != 0)
    r = fail_errno(printable(c.path), errno);
  if (!r) ::unlinkat(dir, temp.c_str(), 0);
  return r;
}

}  // namespace

Result<std::vector<Change>> scan_upper(const UpperLayout& upper, int root_fd) {
  std::vector<Change> out;
  Scanner scanner(upper, &out);
  // The root itself is never opaque (the overlay is mounted on it).
  if (auto r = scanner.dir(upper.upper_fd, root_fd, "", false); !r) return tl::unexpected(r.error());
  return out;
}

namespace {

// For each inode in wanted, a path of the tree (not in skip) that is a name
// of it: one walk of the tree, made only when some file to be replaced has
// other hard links.
Result<void> find_links(int dir, const std::string& rel, const std::set<std::string>& skip,
                        std::map<ino_t, std::string>* wanted, size_t* left) {
  auto names = list_dir(dir, rel.empty() ? "." : rel);
  if (!names) return tl::unexpected(names.error());
  for (const auto& n : *names) {
    if (*left == 0) return {};
    if (rel.empty() && n == ".bsandbox") continue;
    std::string path = join_path(rel, n);
    struct stat st;
    if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.valid())
        if (auto r = find_links(sub.get(), path, skip, wanted, left); !r) return r;
    } else if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !skip.count(path)) {
      auto it = wanted->find(st.st_ino);
      if (it != wanted->end() && it->second.empty()) {
        it->second = path;
        --*left;
      }
    }
  }
  return {};
}

}  // namespace

Result<uint64_t> keep_before(std::vector<Change>& changes, int root_fd, Store& store) {
  uint64_t added = 0;
  std::map<ino_t, std::string> links;   // inode -> another name
  std::map<ino_t, std::vector<Change*>> linked;
  for (auto& c : changes) {
    if (c.before.kind != FileKind::kFile) continue;
    int err = 0;
    auto parent = open_parent(root_fd, c.path, &err);
    struct stat st;
    if (parent && ::fstatat(parent->dir.get(), parent->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && st.st_nlink > 1) {
      links.emplace(st.st_ino, "");
      linked[st.st_ino].push_back(&c);
    }
    if (c.before.hash && store.contains(*c.before.hash)) continue;
    if (!parent) return tl::unexpected(parent.error());
    UniqueFd fd(::openat(parent->dir.get(), parent->name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(printable(c.path), errno);
    bool had = false;
    auto put = store.put(fd.get(), c.path, &had);
    if (!put) return tl::unexpected(put.error());
    c.before.hash = *put;
    if (!had) added += store.disk_bytes(*put);
  }
  if (!links.empty()) {
    std::set<std::string> changed;
    for (const auto& c : changes) changed.insert(c.path);
    size_t left = links.size();
    if (auto r = find_links(root_fd, "", changed, &links, &left); !r) return tl::unexpected(r.error());
    for (auto& [ino, cs] : linked)
      for (Change* c : cs) c->before_link = links[ino];
  }
  return added;
}

namespace {

// Removals for everything under the directory at path that is not already
// in `in` (whose paths are given as a set).
Result<void> extra_removals(int root_fd, const std::string& path, const std::set<std::string>& in,
                            std::vector<Change>* out) {
  auto dir = open_beneath(root_fd, path, O_RDONLY | O_DIRECTORY);
  if (!dir) return tl::unexpected(dir.error());
  auto names = list_dir(dir->get(), path);
  if (!names) return tl::unexpected(names.error());
  for (const auto& n : *names) {
    std::string child = join_path(path, n);
    auto st = observe_at(dir->get(), n, false, child);
    if (!st) return tl::unexpected(st.error());
    if (st->kind == FileKind::kDir)
      if (auto r = extra_removals(root_fd, child, in, out); !r) return r;
    if (!in.count(child)) out->push_back(Change{child, *st, FileState{}, {}, {}});
  }
  return {};
}

std::set<std::string> paths_of(const std::vector<Change>& changes) {
  std::set<std::string> out;
  for (const auto& c : changes) out.insert(c.path);
  return out;
}

}  // namespace

Result<std::vector<std::string>> conflicts(const std::vector<Change>& changes, int root_fd) {
  std::vector<std::string> out;
  std::set<std::string> in = paths_of(changes);
  for (const auto& c : changes) {
    // A before state not hashed yet (fresh from a scan) is compared by its
    // size and mtime.
    bool unhashed = c.before.kind == FileKind::kFile && !c.before.hash;
    auto now = current_state(root_fd, c.path, c.before.kind == FileKind::kFile && !unhashed);
    if (!now) return tl::unexpected(now.error());
    bool same = unhashed ? now->kind == FileKind::kFile && now->mode == c.before.mode &&
                               now->size == c.before.size && now->mtime_ns == c.before.mtime_ns
                         : now->same_as(c.before);
    if (!same) {
      out.push_back(c.path);
    } else if (is_dir(*now) && !is_dir(c.after)) {
      std::vector<Change> extra;
      if (auto r = extra_removals(root_fd, c.path, in, &extra); !r) return tl::unexpected(r.error());
      if (!extra.empty()) out.push_back(c.path);
    }
  }
  return out;
}

Result<uint64_t> adopt_current(std::vector<Change>& changes, const std::vector<std::string>& paths,
                               int root_fd, Store& store) {
  std::set<std::string> wanted(paths.begin(), paths.end());
  std::set<std::string> in = paths_of(changes);
  std::vector<Change> extra;
  for (auto& c : changes) {
    if (!wanted.count(c.path)) continue;
    auto now = current_state(root_fd, c.path, false);
    if (!now) return tl::unexpected(now.error());
    c.before = *now;
    if (is_dir(*now) && !is_dir(c.after))
      if (auto r = extra_removals(root_fd, c.path, in, &extra); !r) return tl::unexpected(r.error());
  }
  changes.insert(changes.end(), extra.begin(), extra.end());
  return keep_before(changes, root_fd, store);
}

// The cache restores a tree as well (sandbox/cache/restore.cpp), and differs
// on purpose: this puts back exact states (owner, mode, mtime), fsynced and
// able to resume after a crash (what is already in place is left), opening
// read-only directories for the change; the cache writes a run's outputs
// without setting times (the kernel's clock must stamp them in the order the
// run left them), stages every file before removing anything (a damaged
// object is a miss with nothing touched) and needs no durability. What both
// need is shared: open_parent/open_beneath, set_mode through a descriptor,
// the store's checked copy.
Result<void> apply(const std::vector<Change>& changes, int root_fd, const ContentSource& source,
                   const ApplyHooks& hooks) {
  std::vector<size_t> idx = order(changes);
  size_t total = changes.size(), done = 0, halfway = total / 2;
  auto step = [&] {
    ++done;
    if (hooks.progress) hooks.progress(done, total);
    if (hooks.pause && done == halfway + 1) hooks.pause("commit-applying");
  };
  // 1. Removals, deepest first: what goes away, and directories that become
  // something else, and things that become directories.
  for (auto it = idx.rbegin(); it != idx.rend(); ++it) {
    const Change& c = changes[*it];
    bool removes = !c.before.absent() && (c.after.absent() || is_dir(c.before) != is_dir(c.after));
    if (!removes) continue;
    int err = 0;
    auto parent = open_parent(root_fd, c.path, &err);
    if (!parent) {
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) { step(); continue; }
      return tl::unexpected(parent.error());
    }
    auto now = observe_at(parent->dir.get(), parent->name, false, c.path);
    if (!now) return tl::unexpected(now.error());
    if (now->absent() || (is_dir(*now) && is_dir(c.after))) { step(); continue; }
    if (!is_dir(*now) && !c.after.absent() && !is_dir(c.after) && is_dir(c.before)) { step(); continue; }
    int flags = is_dir(*now) ? AT_REMOVEDIR : 0;
    WritableDir writable(parent->dir.get());
    if (::unlinkat(parent->dir.get(), parent->name.c_str(), flags) != 0 && errno != ENOENT) {
      if (errno == ENOTEMPTY || errno == EEXIST)
        return fail(printable(c.path) + ": cannot remove the directory: something else put files in it");
      return fail_errno(printable(c.path), errno);
    }
    step();
  }
  // 2. Creations and replacements, parents first.
  for (size_t i : idx) {
    const Change& c = changes[i];
    if (c.after.absent()) continue;
    auto parent = open_parent(root_fd, c.path);
    if (!parent) return tl::unexpected(parent.error());
    WritableDir writable(parent->dir.get());
    if (is_dir(c.after)) {
      if (::mkdirat(parent->dir.get(), parent->name.c_str(), 0700) != 0 && errno != EEXIST)
        return fail_errno(printable(c.path), errno);
      step();
      continue;
    }
    // Already in place (a second pass after a crash)? Hash only what could be.
    auto now = observe_at(parent->dir.get(), parent->name, false, c.path);
    if (!now) return tl::unexpected(now.error());
    bool in_place = now->kind == c.after.kind && now->mode == c.after.mode &&
                    now->size == c.after.size && now->mtime_ns == c.after.mtime_ns;
    if (in_place && c.after.kind == FileKind::kFile) {
      now = observe_at(parent->dir.get(), parent->name, true, c.path);
      if (!now) return tl::unexpected(now.error());
    }
    if (!(in_place && now->same_as(c.after))) {
      if (auto r = install(c, *parent, source, root_fd); !r) return r;
    }
    step();
  }
  // 3. Directory modes (and owners), deepest first.
  for (auto it = idx.rbegin(); it != idx.rend(); ++it) {
    const Change& c = changes[*it];
    if (!is_dir(c.after)) continue;
    // By descriptor: a directory swapped for a symlink since step 2 is an
    // error here, not a chmod of whatever the symlink points at.
    auto dir = open_beneath(root_fd, c.path, O_PATH | O_DIRECTORY);
    if (!dir) return tl::unexpected(dir.error());
    if (::geteuid() == 0)
      if (auto r = set_owner(dir->get(), c.after.uid, c.after.gid, c.path); !r) return r;
    if (auto r = set_mode(dir->get(), c.after.mode, c.path); !r) return r;
  }
  if (hooks.pause) hooks.pause("commit-applied");
  if (::syncfs(root_fd) != 0) return fail_errno("syncfs of the project", errno);
  return {};
}

std::vector<Change> inverse(const std::vector<Change>& changes) {
  std::vector<Change> out;
  out.reserve(changes.size());
  for (const auto& c : changes) out.push_back({c.path, c.after, c.before, c.after_link, c.before_link});
  return out;
}

Result<bool> can_finish(const std::vector<Change>& changes, int root_fd, const ContentSource& source) {
  for (const auto& c : changes) {
    if (c.after.kind != FileKind::kFile) continue;
    auto now = current_state(root_fd, c.path, true);
    if (!now) return tl::unexpected(now.error());
    if (now->same_as(c.after)) continue;
    if (source.upper_fd < 0) {
      if (!source.store->contains(*c.after.hash)) return false;
      continue;
    }
    auto there = current_state(source.upper_fd, c.path, true);
    if (!there) return tl::unexpected(there.error());
    if (!there->same_as(c.after)) return false;
  }
  return true;
}

}  // namespace bsandbox
