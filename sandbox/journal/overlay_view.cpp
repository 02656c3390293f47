// overlay_view.cpp: see overlay_view.h. The order matters: namespaces
// first (a user namespace when not root), every mount made private before
// anything is mounted, the hidden layer and the overlay mounted through
// descriptors checked to be the directories opened before, the state
// directory covered, --contain's read-only remount last, capabilities
// dropped, and the cwd entered again so it resolves inside the view.
#include "sandbox/journal/overlay_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "sandbox/base/dir.h"
#include "sandbox/storage/atomic_file.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

constexpr const char* kScratchDirs[] = {"/tmp", "/var/tmp", "/dev/shm"};

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Result<void> write_proc(const char* file, const std::string& text) {
  UniqueFd fd(::open(file, O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(file, errno);
  return write_all(fd.get(), text, file);
}

bool same_inode(int a, int b) {
  struct stat sa, sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Opens rel under fd_new (in this namespace) and checks it is the directory
// that expected (opened before) is.
Result<UniqueFd> reopen(int fd_new, const std::string& rel, int expected, const std::string& what) {
  auto fd = open_beneath(fd_new, rel, O_RDONLY | O_DIRECTORY);
  if (!fd) return fail(what + ": " + fd.error().message);
  if (!same_inode(fd->get(), expected)) return fail(what + ": changed while the run was being set up");
  return fd;
}

Result<void> enter_namespaces(View* view) {
  if (::geteuid() == 0) {
    if (::unshare(CLONE_NEWNS) != 0) return fail_errno("cannot create a mount namespace for the run", errno);
  } else {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
      return fail_errno("cannot create a user and mount namespace for the run (a journaled run needs them when not root)", errno);
    view->user_namespace = true;
    if (auto r = write_proc("/proc/self/setgroups", "deny"); !r) return r;
    if (auto r = write_proc("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1"); !r) return r;
    if (auto r = write_proc("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1"); !r) return r;
  }
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return fail_errno("cannot make the run's mounts private", errno);
  return {};
}

// After mounting, bsandbox keeps no capability the command lacks (in a user
// namespace it had them all): the tracer and its tracees then have the same
// identity, which the ptrace backend checks before answering lookups itself.
void drop_capabilities() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  ::syscall(SYS_capset, &hdr, data);
}

Result<void> set_attr_recursive(const char* path, uint64_t set, uint64_t clear) {
  mount_attr attr{};
  attr.attr_set = set;
  attr.attr_clr = clear;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) != 0) {
    if (errno == ENOSYS) return fail("--contain needs mount_setattr (Linux 5.12 or later)");
    return fail_errno(std::string("--contain: cannot change the mounts at ") + path, errno);
  }
  return {};
}

// Makes everything but the view read-only. The view (the overlay and what
// is mounted on it) is cloned first and put back on top afterwards, also
// where the root lies under one of the fresh scratch directories.
Result<void> contain_outside(const std::string& root) {
  long view = ::syscall(SYS_open_tree, AT_FDCWD, root.c_str(), OPEN_TREE_CLONE | AT_RECURSIVE | O_CLOEXEC);
  if (view < 0) {
    if (errno == ENOSYS) return fail("--contain needs open_tree and mount_setattr (Linux 5.12 or later)");
    return fail_errno("--contain: cannot clone the view", errno);
  }
  UniqueFd view_fd(static_cast<int>(view));
  if (auto r = set_attr_recursive("/", MOUNT_ATTR_RDONLY, 0); !r) return r;
  for (const char* writable : {"/dev", "/proc"}) {
    struct stat st;
    if (::stat(writable, &st) == 0)
      if (auto r = set_attr_recursive(writable, 0, MOUNT_ATTR_RDONLY); !r) return r;
  }
  for (const char* scratch : kScratchDirs) {
    struct stat st;
    if (::stat(scratch, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (::mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
      return fail_errno(std::string("--contain: cannot mount a private ") + scratch, errno);
  }
  for (size_t slash = root.find('/', 1); ; slash = root.find('/', slash + 1)) {
    std::string dir = root.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST && errno != EROFS)
      return fail_errno("--contain: " + dir, errno);
    if (slash == std::string::npos) break;
  }
  if (::syscall(SYS_move_mount, view_fd.get(), "", AT_FDCWD, root.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return fail_errno("--contain: cannot put the view back on " + root, errno);
  return {};
}

// The hidden layer is a tmpfs of our own, but its directories are set up
// like the tree's: by descriptor, never through a name that a symlink
// could stand in for.
Result<void> set_dir_mode(int dir, const std::string& name, mode_t mode, const std::string& path) {
  auto fd = open_beneath(dir, name, O_PATH | O_DIRECTORY);
  if (!fd) return fail("hiding " + printable(path) + " from the run: " + fd.error().message);
  return set_mode(fd->get(), mode, path);
}

Result<void> make_entry(int dir, const std::string& name, const HiddenPath& h, Store* store) {
  const FileState& s = h.state;
  int rc = 0;
  switch (s.kind) {
    case FileKind::kAbsent:
      rc = ::mknodat(dir, name.c_str(), S_IFCHR | 0000, 0);  // an overlay whiteout
      break;
    case FileKind::kFile: {
      auto r = store->restore(*s.hash, dir, name, s.mode);
      if (!r) return r;
      timespec t[2];
      t[0].tv_sec = t[1].tv_sec = s.mtime_ns / 1000000000;
      t[0].tv_nsec = t[1].tv_nsec = s.mtime_ns % 1000000000;
      ::utimensat(dir, name.c_str(), t, AT_SYMLINK_NOFOLLOW);
      return {};
    }
    case FileKind::kDir:
      if (::mkdirat(dir, name.c_str(), s.mode | 0700) != 0 && errno != EEXIST)
        return fail_errno("hiding " + printable(h.path) + " from the run", errno);
      return set_dir_mode(dir, name, s.mode, h.path);
    case FileKind::kSymlink:
      rc = ::symlinkat(s.target.c_str(), dir, name.c_str());
      break;
    case FileKind::kFifo:
      rc = ::mkfifoat(dir, name.c_str(), s.mode);
      break;
    case FileKind::kOther:
      return {};
  }
  if (rc != 0) return fail_errno("hiding " + printable(h.path) + " from the run", errno);
  return {};
}

// Lays out the hidden paths under hide_fd. A directory that only leads to a
// hidden path takes the mode of the tree's directory, as the run would see it.
Result<void> build_hidden(int hide_fd, int root_fd, const std::vector<HiddenPath>& hidden, Store* store) {
  std::set<std::string> made;
  std::vector<const HiddenPath*> sorted;
  for (const auto& h : hidden) sorted.push_back(&h);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->path < b->path; });
  for (const HiddenPath* h : sorted) {
    for (size_t slash = h->path.find('/'); slash != std::string::npos; slash = h->path.find('/', slash + 1)) {
      std::string dir = h->path.substr(0, slash);
      if (!made.insert(dir).second) continue;
      mode_t mode = 0755;
      int err = 0;
      if (auto parent = open_parent(root_fd, dir, &err)) {
        struct stat st;
        if (::fstatat(parent->dir.get(), parent->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
          mode = st.st_mode & 07777;
      }
      auto parent = open_parent(hide_fd, dir);
      if (!parent) return tl::unexpected(parent.error());
      if (::mkdirat(parent->dir.get(), parent->name.c_str(), 0700) != 0 && errno != EEXIST)
        return fail_errno("hiding " + printable(dir) + " from the run", errno);
      if (auto r = set_dir_mode(parent->dir.get(), parent->name, mode | 0700, dir); !r) return r;
    }
    auto parent = open_parent(hide_fd, h->path);
    if (!parent) return tl::unexpected(parent.error());
    if (auto r = make_entry(parent->dir.get(), parent->name, *h, store); !r) return r;
    if (h->state.kind == FileKind::kDir) made.insert(h->path);
  }
  return {};
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && std::isdigit(static_cast<unsigned char>(in[i + 1]))) {
      out += static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0'));
      i += 3;
    } else {
      out += in[i];
    }
  }
  return out;
}

// The overlay shows the root's own file system only: a mount below the root
// would silently vanish from the run's view, so it is refused, named.
Result<void> check_no_mounts_below(const std::string& root) {
  auto info = read_file("/proc/self/mountinfo");
  if (!info) return tl::unexpected(info.error());
  std::string prefix = root == "/" ? "/" : root + "/";
  size_t at = 0;
  while (at < info->size()) {
    size_t end = info->find('\n', at);
    if (end == std::string::npos) end = info->size();
    std::string_view line(info->data() + at, end - at);
    at = end + 1;
    // id parent major:minor root mountpoint ...
    size_t field = 0, pos = 0;
    for (; field < 4 && pos != std::string_view::npos; ++field) pos = line.find(' ', pos + 1);
    if (pos == std::string_view::npos) continue;
    size_t stop = line.find(' ', pos + 1);
    std::string point = unescape_mount_path(line.substr(pos + 1, stop - pos - 1));
    if (point.size() > prefix.size() && point.compare(0, prefix.size(), prefix) == 0)
      return fail(printable(point) + " is a mount point inside the project " + root +
                  ", which a journaled run cannot cover (it journals one file system); "
                  "use --no-journal, or make a project that holds no mount");
  }
  return {};
}

// The proof that pid is in run's view: at the state directory's place it
// sees the marker enter_overlay_view() left, a file of ours naming the run
// on a read-only mount that is not the state directory's file system. Only
// a bsandbox of ours can make that (the real state directory, which the
// project's owner can write, is on its own file system; a mount the owner
// makes in a namespace of theirs holds files of theirs, not ours).
bool shows_run_marker(pid_t pid, const Project& p, const RunDir& run, dev_t state_dev) {
  UniqueFd root(::open(("/proc/" + std::to_string(pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return false;
  std::string rel = (p.root == "/" ? std::string() : p.root.substr(1) + "/") + kStateDirName + "/" + kRunMarker;
  auto marker = open_beneath(root.get(), rel, O_RDONLY | O_NONBLOCK);
  struct stat st;
  struct statvfs fs;
  if (!marker || ::fstat(marker->get(), &st) != 0 || ::fstatvfs(marker->get(), &fs) != 0) return false;
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_dev == state_dev || !(fs.f_flag & ST_RDONLY))
    return false;
  char name[256];
  ssize_t n = ::read(marker->get(), name, sizeof name);
  return n >= 0 && std::string_view(name, static_cast<size_t>(n)) == run.name();
}

}  // namespace

bool in_contain_scratch(std::string_view path) {
  for (std::string_view dir : kScratchDirs)
    if (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/') return true;
  return false;
}

Result<View> enter_overlay_view(const Project& p, const RunDir& run, const ViewOptions& o) {
  View view;
  if (auto r = check_no_mounts_below(p.root); !r) return tl::unexpected(r.error());
  if (auto r = enter_namespaces(&view); !r) return tl::unexpected(r.error());
  struct stat ns;
  if (::stat("/proc/self/ns/mnt", &ns) != 0) return fail_errno("/proc/self/ns/mnt", errno);
  auto w = replace_file_at(run.fd(), "mntns", std::to_string(ns.st_ino) + "\n", run.path(p) + "/mntns");
  if (!w) return tl::unexpected(w.error());

  // Layers must be opened in this namespace (overlayfs clones their mounts).
  UniqueFd root(::open(p.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return fail_errno(p.root, errno);
  if (!same_inode(root.get(), p.root_fd.get())) return fail(p.root + ": changed while the run was being set up");
  std::string run_rel = std::string(kStateDirName) + "/runs/" + run.name();
  UniqueFd upper_old(::openat(run.fd(), "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  UniqueFd work_old(::openat(run.fd(), "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!upper_old.valid() || !work_old.valid()) return fail_errno(run.path(p), errno);
  auto upper = reopen(root.get(), run_rel + "/upper", upper_old.get(), run.path(p) + "/upper");
  if (!upper) return tl::unexpected(upper.error());
  auto work = reopen(root.get(), run_rel + "/work", work_old.get(), run.path(p) + "/work");
  if (!work) return tl::unexpected(work.error());

  std::string lower = fd_path(root.get());
  UniqueFd hide;
  if (!o.hidden.empty()) {
    // A tmpfs of our own (over the state directory's path, which nothing in
    // the view uses) holds the hidden layer; it cannot be inside the tree,
    // which is a lower layer itself.
    if (::mount("tmpfs", p.state.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
      return fail_errno("cannot mount a tmpfs for the run's hidden layer", errno);
    hide.reset(::open(p.state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!hide.valid()) return fail_errno(p.state, errno);
    if (auto r = build_hidden(hide.get(), p.root_fd.get(), o.hidden, o.store); !r) return tl::unexpected(r.error());
    lower = fd_path(hide.get()) + ":" + lower;
  }
  // No redirects and no metacopy: a renamed directory is copied and a chmod
  // copies the file up, so the upper directory alone says what changed.
  // userxattr implies both (and refuses them spelled out).
  std::string opts = "lowerdir=" + lower + ",upperdir=" + fd_path(upper->get()) +
                     ",workdir=" + fd_path(work->get()) + ",index=off";
  opts += view.user_namespace ? ",userxattr" : ",redirect_dir=nofollow,metacopy=off";
  if (::mount("overlay", p.root.c_str(), "overlay", 0, opts.c_str()) != 0)
    return fail_errno("cannot mount the run's overlay on " + p.root + " (see dmesg)", errno);
  // The state directory's place in the view: an empty read-only tmpfs but
  // for one file naming the run, which tells recover that a process is this
  // run's (a namespace's inode number alone is reused once it is gone).
  std::string state_in_view = p.root + (p.root == "/" ? "" : "/") + kStateDirName;
  if (::mount("tmpfs", state_in_view.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0755") != 0)
    return fail_errno("cannot hide " + state_in_view + " from the run", errno);
  {
    UniqueFd mark(::open((state_in_view + "/" + kRunMarker).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0444));
    if (!mark.valid()) return fail_errno(state_in_view + "/" + kRunMarker, errno);
    if (auto r = write_all(mark.get(), run.name(), kRunMarker); !r) return tl::unexpected(r.error());
  }
  if (::mount(nullptr, state_in_view.c_str(), nullptr,
              MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return fail_errno("cannot make " + state_in_view + " read-only in the run", errno);
  if (o.contain)
    if (auto r = contain_outside(p.root); !r) return tl::unexpected(r.error());
  if (::chdir(o.cwd.c_str()) != 0) return fail_errno(o.cwd, errno);
  if (view.user_namespace) drop_capabilities();
  return view;
}

Result<int> kill_run_processes(const Project& p, const RunDir& run) {
  auto fd = open_beneath(run.fd(), "mntns", O_RDONLY);
  if (!fd) return 0;  // killed before it had a namespace
  char buf[32] = {};
  if (::read(fd->get(), buf, sizeof buf - 1) <= 0) return 0;
  ino_t ino = std::strtoull(buf, nullptr, 10);
  struct stat state;
  if (::fstat(p.state_fd.get(), &state) != 0) return fail_errno(p.state, errno);
  int killed = 0;
  for (int round = 0; round < 100; ++round) {
    int found = 0;
    auto proc = Dir::open("/proc");
    if (!proc) return tl::unexpected(proc.error());
    while (const dirent* e = proc->next()) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      pid_t pid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
      if (pid == ::getpid()) continue;
      // The namespace's inode only narrows the search: the file naming it
      // is the project owner's to write, and inode numbers are reused.
      struct stat st;
      std::string ns = std::string("/proc/") + e->d_name + "/ns/mnt";
      if (::stat(ns.c_str(), &st) != 0 || st.st_ino != ino) continue;
      if (!shows_run_marker(pid, p, run, state.st_dev)) continue;
      if (::kill(pid, SIGKILL) == 0) ++found;
    }
    if (found == 0) return killed;
    if (round == 0) killed = found;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fail(run.path(p) + ": processes of the interrupted run would not die");
}

}  // namespace bsandbox
