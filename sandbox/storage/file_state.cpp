// file_state.cpp: see file_state.h. A state is taken from one lstat (and,
// for a symlink, one readlink of the same name); a file's content is hashed
// through a descriptor opened without following a symlink.
#include "sandbox/storage/file_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/storage/fs.h"

namespace bsandbox {

bool FileState::same_as(const FileState& o) const {
  if (kind != o.kind) return false;
  switch (kind) {
    case FileKind::kAbsent: return true;
    case FileKind::kFile: return mode == o.mode && hash == o.hash;
    case FileKind::kSymlink: return target == o.target;
    default: return mode == o.mode;
  }
}

const char* kind_name(FileKind k) {
  switch (k) {
    case FileKind::kAbsent: return "absent";
    case FileKind::kFile: return "file";
    case FileKind::kDir: return "directory";
    case FileKind::kSymlink: return "symlink";
    case FileKind::kFifo: return "fifo";
    case FileKind::kOther: return "special file";
  }
  return "?";
}

FileKind file_kind(mode_t mode) {
  if (S_ISREG(mode)) return FileKind::kFile;
  if (S_ISDIR(mode)) return FileKind::kDir;
  if (S_ISLNK(mode)) return FileKind::kSymlink;
  if (S_ISFIFO(mode)) return FileKind::kFifo;
  return FileKind::kOther;
}

Result<FileState> state_from_stat(int dirfd, const std::string& name, const struct stat& st,
                                  std::string_view what) {
  FileState s;
  s.mode = st.st_mode & 07777;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.kind = file_kind(st.st_mode);
  if (s.kind == FileKind::kDir) s.size = 0;
  if (s.kind == FileKind::kSymlink) {
    auto target = read_link_at(dirfd, name);
    // read_link_at's message names name; ours, what (printable).
    if (!target) return fail(printable(what) + target.error().message.substr(name.size()));
    s.target = std::move(*target);
    s.mode = 0777;
  }
  return s;
}

Result<FileState> observe_at(int dirfd, const std::string& name, bool hash, std::string_view what) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return FileState{};
    return fail_errno(printable(what), errno);
  }
  auto s = state_from_stat(dirfd, name, st, what);
  if (!s || !hash || s->kind != FileKind::kFile) return s;
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(printable(what), errno);
  auto d = hash_fd(fd.get(), what);
  if (!d) return tl::unexpected(d.error());
  s->hash = *d;
  return s;
}

}  // namespace bsandbox
