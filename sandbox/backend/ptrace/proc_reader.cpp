// proc_reader.cpp: see proc_reader.h. Every read is of a magic link or a
// file of a thread the tracer holds stopped, so what it names cannot change
// under the read (the thread may still be killed: then the read fails).
#include "sandbox/backend/ptrace/proc_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "sandbox/base/dir.h"
#include "sandbox/base/io.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {
namespace {

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::string long_dir_path(const char* proc_link) {
  UniqueFd cur(::open(proc_link, O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat st {}, top {};
  if (!cur.valid() || ::fstat(cur.get(), &st) != 0 || ::stat("/", &top) != 0) return "";
  std::vector<std::string> names;
  while (!(st.st_dev == top.st_dev && st.st_ino == top.st_ino)) {
    UniqueFd parent(::openat(cur.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat pst {};
    if (!parent.valid() || ::fstat(parent.get(), &pst) != 0) return "";
    if (pst.st_dev == st.st_dev && pst.st_ino == st.st_ino) return "";  // a root that is not ours
    auto dir = Dir::open_fd(parent.get(), proc_link);
    if (!dir) return "";
    bool found = false;
    while (const dirent* ent = dir->next()) {
      if (st.st_dev == pst.st_dev && ent->d_ino != st.st_ino) continue;
      struct stat est {};
      if (::fstatat(parent.get(), ent->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 &&
          est.st_dev == st.st_dev && est.st_ino == st.st_ino) {
        names.emplace_back(ent->d_name);
        found = true;
        break;
      }
    }
    if (!found) return "";
    cur = std::move(parent);
    st = pst;
  }
  std::string out;
  for (auto it = names.rbegin(); it != names.rend(); ++it) out += "/" + *it;
  return out.empty() ? "/" : out;
}

bool proc_link(const char* path, std::string& out) {
  auto link = read_link(path);
  if (link) {
    out = std::move(*link);
    return true;
  }
  // errno is still readlink's: read_link fails right after it.
  if (errno != ENAMETOOLONG) return false;
  out = long_dir_path(path);
  if (!out.empty()) return true;
  errno = ENAMETOOLONG;
  return false;
}

bool ProcReader::describe(pid_t tid, const char* what, long n, Named& out, bool info) {
  ProcPath path = n >= 0 ? ProcPath(tid, what, n) : ProcPath(tid, what);
  out.flags = 0;
  out.rflags = 0;
  out.magic = 0;
  out.ino = out.mnt = 0;
  if (!proc_link(path.c_str(), out.path)) {
    if (errno != ENAMETOOLONG) return false;
    out.path.clear();
    out.flags = BS_SF_TRUNCATED;  // longer than a page: /proc cannot say
    return true;
  }
  if (out.path.empty() || out.path[0] != '/') {
    out.flags = BS_SF_UNREACHABLE;  // pipe:[..], socket:[..], anon_inode:..
    return true;
  }
  bool maybe_deleted = ends_with(out.path, " (deleted)");
  if (!info && !maybe_deleted) return true;
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_TYPE | STATX_NLINK | STATX_INO | STATX_MNT_ID,
              &sx) != 0)
    return true;
  if (S_ISDIR(sx.stx_mode)) out.rflags |= BS_RF_DIR;
  if (maybe_deleted && sx.stx_nlink == 0) {
    out.path.resize(out.path.size() - std::strlen(" (deleted)"));
    out.flags |= BS_SF_DELETED;
  }
  out.ino = sx.stx_ino;
  out.mnt = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : (uint64_t{sx.stx_dev_major} << 32 | sx.stx_dev_minor);
  out.magic = magic_of((sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0, path.c_str());
  return true;
}

uint32_t ProcReader::magic_of(uint64_t mnt, const char* path) {
  if (mnt) {
    auto it = magic_by_mnt_.find(mnt);
    if (it != magic_by_mnt_.end()) return it->second;
  }
  struct statfs fs {};
  if (::statfs(path, &fs) != 0) return 0;
  uint32_t magic = static_cast<uint32_t>(fs.f_type);
  if (mnt) magic_by_mnt_[mnt] = magic;
  return magic;
}

int name_exists(pid_t tid, int dirfd, const std::string& name, bool follow) {
  bool absolute = !name.empty() && name[0] == '/';
  ProcPath base = absolute ? ProcPath(tid, "root") : dirfd == AT_FDCWD ? ProcPath(tid, "cwd")
                                                                        : ProcPath(tid, "fd/", dirfd);
  UniqueFd dir(::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return -1;
  const char* rel = absolute ? name.c_str() + 1 : name.c_str();
  if (*rel == '\0') rel = ".";
  struct stat st {};
  if (::fstatat(dir.get(), rel, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0) return 1;
  return errno == ENOENT ? 0 : -1;
}

TaskIds task_ids(std::string_view status) {
  auto number = [&](std::string_view name) -> pid_t {
    pid_t n = 0;
    auto v = proc_field(status, name);
    if (!v || std::from_chars(v->data(), v->data() + v->size(), n).ec != std::errc()) return 0;
    return n;
  };
  return TaskIds{number("Tgid"), number("PPid")};
}

std::string credentials_of(std::string_view status) {
  std::string out;
  for (std::string_view field : {"Uid", "Gid", "Groups", "CapEff"}) {
    auto value = proc_field(status, field);
    if (!value) return "";
    out.append(field).append(":").append(*value).append("\n");
  }
  return out;
}

std::string root_identity(const char* path) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path, 0, STATX_INO | STATX_MNT_ID, &sx) != 0) return "";
  return std::to_string(sx.stx_dev_major) + ":" + std::to_string(sx.stx_dev_minor) + ":" +
         std::to_string(sx.stx_ino) + ":" + std::to_string(sx.stx_mnt_id);
}

std::string identity(const std::string& proc_dir, const char* root) {
  auto status = read_file(proc_dir + "/status");
  std::string id = status ? credentials_of(*status) : "";
  if (auto ns = read_link(proc_dir + "/ns/user")) id += "\n" + *ns;
  return id + "\n" + root_identity(root);
}

}  // namespace bsandbox
