// project.cpp: see project.h. Everything is reached through the root's and
// the state directory's descriptors once they are open; paths are used only
// to find them (find_project walks up looking for .bsandbox/format) and in
// messages. Acting as the owner changes the whole process's identity, so it
// comes before anything is opened or created.
#include "sandbox/journal/project.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "sandbox/storage/atomic_file.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

constexpr std::string_view kFormat = "bsandbox-state 1\n";

std::string absolute(const std::string& dir) {
  char* real = ::realpath(dir.c_str(), nullptr);
  if (!real) return "";
  std::string out(real);
  std::free(real);
  return out;
}

Result<Project> open_at(const std::string& root) {
  Project p;
  p.root = root;
  p.state = root == "/" ? std::string("/") + kStateDirName : root + "/" + kStateDirName;
  p.root_fd.reset(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!p.root_fd.valid()) return fail_errno(root, errno);
  auto state = open_beneath(p.root_fd.get(), kStateDirName, O_RDONLY | O_DIRECTORY);
  if (!state) return fail(p.state + ": " + std::strerror(ENOTDIR));
  p.state_fd = std::move(*state);
  auto format = open_beneath(p.state_fd.get(), "format", O_RDONLY);
  char buf[64] = {};
  ssize_t n = format ? ::read(format->get(), buf, sizeof buf - 1) : -1;
  if (n < 0 || std::string_view(buf, static_cast<size_t>(n)) != kFormat)
    return fail(p.state + "/format: not a bsandbox state directory of a known version");
  return p;
}

std::string user_name(uid_t uid) {
  passwd pw, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
    return std::string(pw.pw_name) + " (uid " + std::to_string(uid) + ")";
  return "uid " + std::to_string(uid);
}

// Switches the whole process to uid: its primary group and groups from the
// password database (else the state directory's group alone).
Result<void> become(uid_t uid, gid_t gid) {
  std::vector<gid_t> groups{gid};
  passwd pw, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) {
    gid = pw.pw_gid;
    int n = 64;
    groups.resize(static_cast<size_t>(n));
    while (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) groups.resize(static_cast<size_t>(n));
    groups.resize(static_cast<size_t>(n));
  }
  if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(gid, gid, gid) != 0 ||
      ::setresuid(uid, uid, uid) != 0)
    return fail_errno("cannot become the project's owner, " + user_name(uid), errno);
  // A process whose uid changed is not dumpable, which makes /proc/self
  // root's; as the owner it must write its own uid_map there (a journaled
  // run's user namespace).
  ::prctl(PR_SET_DUMPABLE, 1);
  return {};
}

// The check both public functions make once they know the owner.
Result<void> act_as(uid_t owner, gid_t group, const std::string& root, bool trust_owner) {
  uid_t me = ::geteuid();
  if (owner == me) return {};
  if (!trust_owner)
    return fail(root + " belongs to " + user_name(owner) + ", not to you: bsandbox does not work in another " +
                "user's project unless told to (its owner controls every path in it); run it as that user, or " +
                "add --trust-owner to work there " + (me == 0 ? "as that user" : "anyway"));
  return me == 0 ? become(owner, group) : Result<void>{};
}

}  // namespace

Result<void> act_as_owner(const Project& p, bool trust_owner) {
  struct stat root, state;
  if (::fstat(p.root_fd.get(), &root) != 0) return fail_errno(p.root, errno);
  if (::fstat(p.state_fd.get(), &state) != 0) return fail_errno(p.state, errno);
  if (root.st_uid != state.st_uid && root.st_uid != 0)
    return fail(p.state + " belongs to " + user_name(state.st_uid) + " but " + p.root + " to " +
                user_name(root.st_uid) + ": a project must be one user's (bsandbox does not work in it)");
  return act_as(state.st_uid, state.st_gid, p.root, trust_owner);
}

Result<void> act_as_owner_of(const std::string& dir, bool trust_owner) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return fail_errno(dir, errno);
  if (st.st_uid == 0) return {};  // root's: whoever may write in it makes the project theirs
  return act_as(st.st_uid, st.st_gid, dir, trust_owner);
}

Result<std::string> init_project(const std::string& dir) {
  std::string root = absolute(dir);
  if (root.empty()) return fail_errno(dir, errno);
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return fail_errno(root, errno);
  std::string state = root + (root == "/" ? "" : "/") + kStateDirName;
  if (::mkdirat(root_fd.get(), kStateDirName, 0755) != 0) {
    if (errno != EEXIST) return fail_errno(state, errno);
    if (open_at(root)) return "already a project root: " + root;
    // A directory without a format file: an init that a crash cut short
    // (format is written last), or someone else's directory.
    auto fd = open_beneath(root_fd.get(), kStateDirName, O_RDONLY | O_DIRECTORY);
    if (!fd) return fail(state + ": exists and is not a directory");
    auto names = list_dir(fd->get(), state);
    if (!names) return tl::unexpected(names.error());
    for (const auto& n : *names)
      if (n != "journal" && n != "objects" && n != "runs" && n != "lock")
        return fail(state + ": exists and is not a bsandbox state directory");
  }
  auto fd = open_beneath(root_fd.get(), kStateDirName, O_RDONLY | O_DIRECTORY);
  if (!fd) return fail(state + ": " + fd.error().message);
  for (const char* sub : {"journal", "objects", "runs"})
    if (::mkdirat(fd->get(), sub, 0755) != 0 && errno != EEXIST) return fail_errno(state + "/" + sub, errno);
  UniqueFd lock(::openat(fd->get(), "lock", O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!lock.valid()) return fail_errno(state + "/lock", errno);
  auto w = replace_file_at(fd->get(), "format", kFormat, state + "/format");
  if (!w) return tl::unexpected(w.error());
  if (auto s = sync_fd(root_fd.get(), root); !s) return tl::unexpected(s.error());
  return "initialised a bsandbox project in " + root + " (state in " + state + ")";
}

Result<std::optional<Project>> find_project(const std::string& dir) {
  std::string at = absolute(dir);
  if (at.empty()) return fail_errno(dir, errno);
  for (;;) {
    std::string format = (at == "/" ? "" : at) + "/" + kStateDirName + "/format";
    struct stat st;
    if (::lstat(format.c_str(), &st) == 0) {
      auto p = open_at(at);
      if (!p) return tl::unexpected(p.error());
      return std::optional<Project>(std::move(*p));
    }
    // "Nothing there", or a directory this user may not search (no project
    // of theirs can be there), means no project here; any other failure
    // (a symlink loop, an I/O error) would make a project silently not
    // journaled, or `log` say there is none.
    if (errno != ENOENT && errno != ENOTDIR && errno != EACCES)
      return fail_errno("cannot tell whether " + at + " is a project: " + format, errno);
    if (at == "/") return std::optional<Project>();
    size_t slash = at.rfind('/');
    at = slash == 0 ? "/" : at.substr(0, slash);
  }
}

std::optional<std::string> run_view_of(const std::string& dir) {
  std::string at = absolute(dir);
  while (!at.empty()) {
    std::string marker = (at == "/" ? "" : at) + "/" + kStateDirName + "/" + kRunMarker;
    struct stat st;
    if (::lstat(marker.c_str(), &st) == 0) return at;
    if (at == "/") break;
    size_t slash = at.rfind('/');
    at = slash == 0 ? "/" : at.substr(0, slash);
  }
  return std::nullopt;
}

Result<ProjectLock> ProjectLock::take(const Project& p) {
  UniqueFd fd(::openat(p.state_fd.get(), "lock", O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.valid()) return fail_errno(p.state + "/lock", errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return ProjectLock(std::move(fd));
  if (errno != EWOULDBLOCK) return fail_errno(p.state + "/lock", errno);
  std::fprintf(stderr, "bsandbox: waiting for another bsandbox working in %s\n", p.root.c_str());
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return fail_errno(p.state + "/lock", errno);
  return ProjectLock(std::move(fd));
}

Result<Interrupted> find_interrupted(const Project& p) {
  Interrupted out;
  UniqueFd pending(::openat(p.state_fd.get(), "pending", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (pending.valid()) {
    char buf[32] = {};
    ssize_t n = ::read(pending.get(), buf, sizeof buf - 1);
    char* end = nullptr;
    unsigned long long id = n > 0 ? std::strtoull(buf, &end, 10) : 0;
    if (id == 0) return fail(p.state + "/pending: damaged (it should hold a journal entry number)");
    out.pending = id;
  } else if (errno != ENOENT) {
    return fail_errno(p.state + "/pending", errno);
  }
  auto runs = open_beneath(p.state_fd.get(), "runs", O_RDONLY | O_DIRECTORY);
  if (!runs) return fail(p.state + "/runs: " + runs.error().message);
  auto names = list_dir(runs->get(), p.state + "/runs");
  if (!names) return tl::unexpected(names.error());
  for (const auto& n : *names) {
    auto lock = open_beneath(runs->get(), n + "/lock", O_RDONLY);
    // A run whose lock cannot be taken is alive (its bsandbox holds it).
    if (lock && ::flock(lock->get(), LOCK_SH | LOCK_NB) != 0) continue;
    out.runs.push_back(n);
  }
  return out;
}

std::string interrupted_message(const Project& p, const Interrupted& i) {
  std::string what;
  if (i.pending)
    what = "applying journal entry " + std::to_string(*i.pending) + " to " + p.root +
           " was interrupted";
  else
    what = "a journaled run in " + p.root + " was interrupted (" + p.state + "/runs/" + i.runs[0] + ")";
  return what + "; run `bsandbox recover` to finish or undo it";
}

Result<void> set_pending(const Project& p, uint64_t id) {
  return replace_file_at(p.state_fd.get(), "pending", std::to_string(id) + "\n", p.state + "/pending");
}

Result<void> clear_pending(const Project& p) {
  if (::unlinkat(p.state_fd.get(), "pending", 0) != 0 && errno != ENOENT)
    return fail_errno(p.state + "/pending", errno);
  return sync_fd(p.state_fd.get(), p.state);
}

Result<RunDir> RunDir::create(const Project& p) {
  auto runs = open_beneath(p.state_fd.get(), "runs", O_RDONLY | O_DIRECTORY);
  if (!runs) return fail(p.state + "/runs: " + runs.error().message);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string name = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) +
                     "." + std::to_string(::getpid());
  std::string display = p.state + "/runs/" + name;
  if (::mkdirat(runs->get(), name.c_str(), 0700) != 0) return fail_errno(display, errno);
  auto dir = open_beneath(runs->get(), name, O_RDONLY | O_DIRECTORY);
  if (!dir) return fail(display + ": " + dir.error().message);
  UniqueFd lock(::openat(dir->get(), "lock", O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return fail_errno(display + "/lock", errno);
  for (const char* sub : {"upper", "work"})
    if (::mkdirat(dir->get(), sub, 0755) != 0) return fail_errno(display + "/" + sub, errno);
  return RunDir(std::move(name), std::move(*dir), std::move(lock));
}

Result<RunDir> RunDir::open(const Project& p, const std::string& name) {
  std::string display = p.state + "/runs/" + name;
  auto dir = open_beneath(p.state_fd.get(), "runs/" + name, O_RDONLY | O_DIRECTORY);
  if (!dir) return fail(display + ": " + dir.error().message);
  UniqueFd lock(::openat(dir->get(), "lock", O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock.valid()) return fail_errno(display + "/lock", errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0)
    return fail(display + ": still in use by a running bsandbox");
  return RunDir(name, std::move(*dir), std::move(lock));
}

std::string RunDir::path(const Project& p) const { return p.state + "/runs/" + name_; }

Result<void> RunDir::remove(const Project& p) {
  auto runs = open_beneath(p.state_fd.get(), "runs", O_RDONLY | O_DIRECTORY);
  if (!runs) return fail(p.state + "/runs: " + runs.error().message);
  // The overlay's work directory holds a directory of mode 000 ("work"):
  // remove_tree copes, being the owner.
  auto r = remove_tree(runs->get(), name_);
  if (!r) return fail(path(p) + ": " + r.error().message);
  return {};
}

void pause_point(const char* phase) {
  const char* want = std::getenv("BSANDBOX_TEST_PAUSE");
  if (!want || std::strcmp(want, phase) != 0) return;
  std::fprintf(stderr, "bsandbox: paused at %s\n", phase);
  std::fflush(stderr);
  for (;;) ::pause();
}

}  // namespace bsandbox
