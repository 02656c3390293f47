// file_state.cpp: see file_state.h.
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

Result<FileState> state_from_stat(int dirfd, const std::string& name, const struct stat& st,
                                  std::string_view what) {
  FileState s;
  s.mode = st.st_mode & 07777;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode)) {
    s.kind = FileKind::kFile;
  } else if (S_ISDIR(st.st_mode)) {
    s.kind = FileKind::kDir;
    s.size = 0;
  } else if (S_ISLNK(st.st_mode)) {
    s.kind = FileKind::kSymlink;
    std::string buf(static_cast<size_t>(st.st_size) + 1, '\0');
    for (;;) {
      ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
      if (n < 0) return fail_errno(printable(what), errno);
      if (static_cast<size_t>(n) < buf.size()) {
        buf.resize(static_cast<size_t>(n));
        break;
      }
      buf.resize(buf.size() * 2);
    }
    s.target = std::move(buf);
    s.mode = 0777;
  } else if (S_ISFIFO(st.st_mode)) {
    s.kind = FileKind::kFifo;
  } else {
    s.kind = FileKind::kOther;
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
