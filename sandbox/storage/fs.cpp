// fs.cpp: see fs.h. Particular to the implementation: open_beneath tries
// openat2 first and falls back to a walk one component at a time;
// copy_content and read_content share one walk of a file's data ranges
// (SEEK_DATA/SEEK_HOLE), so holes are neither read nor written; set_mode
// reaches an O_PATH descriptor through fchmodat2 or /proc/self/fd.
#include "sandbox/storage/fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "sandbox/base/dir.h"

namespace bsandbox {
namespace {

// fchmodat2(2), Linux 6.6, after the headers Debian bookworm ships (the
// number is the same on every architecture).
constexpr long kSysFchmodat2 = 452;

std::string quoted(std::string_view path) { return "'" + printable(path) + "'"; }

// Component by component, each opened with O_NOFOLLOW: the fallback for
// kernels without openat2 (before 5.6).
Result<UniqueFd> walk_nofollow(int dirfd, std::string_view path, int flags, mode_t mode, int* err) {
  auto bad = [&](int e) {
    *err = e;
    return fail_errno(quoted(path), e);
  };
  UniqueFd here(::openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!here.valid()) return bad(errno);
  size_t at = 0;
  for (;;) {
    size_t slash = path.find('/', at);
    std::string part(path.substr(at, slash == std::string_view::npos ? path.npos : slash - at));
    if (part == "..") return bad(EXDEV);
    if (slash == std::string_view::npos) {
      int fd = ::openat(here.get(), part.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd < 0) return bad(errno);
      return UniqueFd(fd);
    }
    if (!part.empty() && part != ".") {
      int fd = ::openat(here.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return bad(errno);
      here.reset(fd);
    }
    at = slash + 1;
  }
}

bool is_zero(const char* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

constexpr size_t kChunk = 1 << 20;

// Calls on_data with n zero bytes, in chunks.
void feed_zeros(uint64_t n, const std::function<void(const char*, size_t)>& on_data) {
  static const std::unique_ptr<char[]> zeros(new char[kChunk]());
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, kChunk));
    on_data(zeros.get(), k);
    n -= k;
  }
}

// The data ranges of fd, [start, end), found with SEEK_DATA/SEEK_HOLE;
// one range for the whole file where the file system does not say.
Result<std::vector<std::pair<uint64_t, uint64_t>>> data_ranges(int fd, uint64_t size,
                                                               std::string_view what) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  off_t at = 0;
  while (static_cast<uint64_t>(at) < size) {
    off_t data = ::lseek(fd, at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole from here on
      if (errno == EINVAL || errno == EOPNOTSUPP) {
        out.assign(1, {0, size});
        return out;
      }
      return fail_errno(quoted(what), errno);
    }
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return fail_errno(quoted(what), errno);
    out.emplace_back(data, std::min<uint64_t>(hole, size));
    at = hole;
  }
  return out;
}

// Reads [start, end) of fd, passing each chunk to each of the callbacks.
template <class F>
Result<void> read_range(int fd, uint64_t start, uint64_t end, std::string_view what, F&& each) {
  static thread_local std::unique_ptr<char[]> buf(new char[kChunk]);
  while (start < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(end - start, kChunk));
    ssize_t n = ::pread(fd, buf.get(), want, static_cast<off_t>(start));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(quoted(what), errno);
    }
    if (n == 0) return fail(quoted(what) + ": changed while it was read (shorter than its size)");
    auto r = each(buf.get(), static_cast<size_t>(n), start);
    if (!r) return r;
    start += static_cast<uint64_t>(n);
  }
  return {};
}

Result<void> walk_content(int fd, std::string_view what,
                          const std::function<Result<void>(const char*, size_t, uint64_t)>& data,
                          const std::function<void(const char*, size_t)>& on_data,
                          uint64_t* size_out) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno(quoted(what), errno);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  *size_out = size;
  auto ranges = data_ranges(fd, size, what);
  if (!ranges) return tl::unexpected(ranges.error());
  uint64_t at = 0;
  for (auto [start, end] : *ranges) {
    if (on_data && start > at) feed_zeros(start - at, on_data);
    auto r = read_range(fd, start, end, what, [&](const char* p, size_t n, uint64_t off) -> Result<void> {
      if (on_data) on_data(p, n);
      return data ? data(p, n, off) : Result<void>{};
    });
    if (!r) return r;
    at = end;
  }
  if (on_data && size > at) feed_zeros(size - at, on_data);
  return {};
}

}  // namespace

Result<UniqueFd> open_beneath(int dirfd, std::string_view path, int flags, mode_t mode, int* err) {
  int ignored = 0;
  if (!err) err = &ignored;
  if (path.empty()) path = ".";
  std::string p(path);
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dirfd, p.c_str(), &how, sizeof how);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  if (int e = errno; e != ENOSYS) {
    *err = e;
    return fail_errno(quoted(path), e);
  }
  return walk_nofollow(dirfd, path, flags, mode, err);
}

Result<UniqueFd> make_dir_beneath(int dirfd, const std::string& name, mode_t mode) {
  bool made = ::mkdirat(dirfd, name.c_str(), mode) == 0;
  if (!made && errno != EEXIST) return fail_errno(printable(name), errno);
  int e = 0;
  auto fd = open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY, 0, &e);
  if (!fd) return fail(printable(name) + (e == ELOOP ? ": a symlink, not a directory (not followed)" : ": " + std::string(std::strerror(e))));
  if (made && ::fchmod(fd->get(), mode) != 0) return fail_errno(printable(name), errno);
  return fd;
}

Result<Parent> open_parent(int dirfd, std::string_view path, int* err) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (name.empty() || name == "." || name == "..") {
    if (err) *err = EINVAL;
    return fail(quoted(path) + ": not a file name");
  }
  auto dir = open_beneath(dirfd, slash == std::string_view::npos ? "" : path.substr(0, slash),
                          O_PATH | O_DIRECTORY, 0, err);
  if (!dir) return tl::unexpected(dir.error());
  return Parent{std::move(*dir), std::move(name)};
}

Result<void> copy_content(int in, int out, std::string_view what,
                          const std::function<void(const char*, size_t)>& on_data) {
  uint64_t size = 0;
  if (!on_data && ::ioctl(out, FICLONE, in) == 0) return {};
  auto r = walk_content(
      in, what,
      [&](const char* p, size_t n, uint64_t off) -> Result<void> {
        // Zero blocks inside a data range stay holes too (a sparse file the
        // file system reports as data, or a file system without SEEK_DATA).
        if (is_zero(p, n)) return {};
        while (n > 0) {
          ssize_t w = ::pwrite(out, p, n, static_cast<off_t>(off));
          if (w < 0) {
            if (errno == EINTR) continue;
            return fail_errno(quoted(what), errno);
          }
          p += w;
          off += static_cast<uint64_t>(w);
          n -= static_cast<size_t>(w);
        }
        return {};
      },
      on_data, &size);
  if (!r) return r;
  if (::ftruncate(out, static_cast<off_t>(size)) != 0) return fail_errno(quoted(what), errno);
  return {};
}

Result<void> read_content(int fd, std::string_view what,
                          const std::function<void(const char*, size_t)>& on_data) {
  uint64_t size = 0;
  return walk_content(fd, what, {}, on_data, &size);
}

Result<void> set_owner(int fd, uid_t uid, gid_t gid, std::string_view what) {
  if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) return fail_errno(quoted(what), errno);
  return {};
}

Result<void> set_mode(int fd, mode_t mode, std::string_view what) {
  if (::fchmod(fd, mode) == 0) return {};
  if (errno != EBADF) return fail_errno(quoted(what), errno);
  // An O_PATH descriptor (a directory we may not read, a fifo we must not
  // open): fchmodat2 (Linux 6.6) changes it directly; before that, chmod of
  // its /proc/self/fd link, which names the open file, not a path.
  if (::syscall(kSysFchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0) return {};
  if (errno != ENOSYS && errno != EINVAL) return fail_errno(quoted(what), errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno(quoted(what), errno);
  if (S_ISLNK(st.st_mode)) return fail_errno(quoted(what), EOPNOTSUPP);  // chmod would follow it
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (::chmod(self.c_str(), mode) != 0) return fail_errno(quoted(what), errno);
  return {};
}

Result<void> set_mtime(int fd, int64_t mtime_ns, std::string_view what) {
  timespec times[2];
  times[0].tv_sec = times[1].tv_sec = mtime_ns / 1000000000;
  times[0].tv_nsec = times[1].tv_nsec = mtime_ns % 1000000000;
  if (::utimensat(fd, "", times, AT_EMPTY_PATH) != 0) return fail_errno(quoted(what), errno);
  return {};
}

Result<UniqueFd> open_made(int dirfd, const std::string& name, mode_t kind, std::string_view what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) return fail_errno(quoted(what), errno);
  if ((st.st_mode & S_IFMT) != kind || st.st_uid != ::geteuid() || st.st_nlink != 1)
    return fail(quoted(what) + ": replaced by something else while it was being made");
  return fd;
}

Result<void> remove_tree(int dirfd, const std::string& name) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR && errno != EPERM) return fail_errno(quoted(name), errno);
  UniqueFd dir(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid() && errno == EACCES) {
    // Ours but unreadable (mode 0): made readable through a descriptor, so a
    // symlink swapped in meanwhile is not followed.
    UniqueFd path(::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (path.valid() && set_mode(path.get(), 0700, name))
      dir.reset(::openat(path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  if (!dir.valid()) return fail_errno(quoted(name), errno);
  ::fchmod(dir.get(), 0700);  // a read-only directory is emptied too (it is going anyway)
  auto entries = list_dir(dir.get(), name);
  if (!entries) return tl::unexpected(entries.error());
  for (const auto& e : *entries) {
    if (auto r = remove_tree(dir.get(), e); !r) return r;
  }
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return fail_errno(quoted(name), errno);
  return {};
}

Result<void> replace_file_at(int dirfd, const std::string& name, std::string_view data,
                             std::string_view what, mode_t mode, bool durable) {
  std::string temp = temp_name();
  UniqueFd fd(::openat(dirfd, temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode));
  if (!fd.valid()) return fail_errno(quoted(what), errno);
  auto r = write_all(fd.get(), data, what);
  if (r && durable && ::fsync(fd.get()) != 0) r = fail_errno(quoted(what), errno);
  if (r && ::renameat(dirfd, temp.c_str(), dirfd, name.c_str()) != 0) r = fail_errno(quoted(what), errno);
  if (!r) {
    ::unlinkat(dirfd, temp.c_str(), 0);
    return r;
  }
  return durable ? sync_fd(dirfd, what) : Result<void>{};
}

Result<void> sync_fd(int fd, std::string_view what) {
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EBADF) return fail_errno(quoted(what), errno);
  return {};
}

std::string temp_name() {
  static std::atomic<unsigned> counter{0};
  return ".bsandbox." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

Result<std::vector<std::string>> list_dir(int dirfd, std::string_view what) {
  auto dir = Dir::open_fd(dirfd, quoted(what));
  if (!dir) return tl::unexpected(dir.error());
  std::vector<std::string> out;
  while (const dirent* e = dir->next()) out.emplace_back(e->d_name);
  if (dir->error() != 0) return fail_errno(quoted(what), dir->error());
  std::sort(out.begin(), out.end());
  return out;
}

std::string join_path(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

}  // namespace bsandbox
