// atomic_file.cpp: temp file + fsync + rename + fsync of the directory.
#include "sandbox/storage/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

namespace bsandbox {
namespace {

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<AtomicFile> AtomicFile::create(std::string path) {
  if (path.empty() || path.back() == '/') return fail(path + ": not a file name");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    struct stat target;
    bool link = S_ISLNK(st.st_mode);
    if (link && ::stat(path.c_str(), &target) != 0) return fail(path + ": a symbolic link to nothing; refusing to write through it");
    const struct stat& what = link ? target : st;
    // /dev/stdout, /dev/fd/N: the caller's own descriptor, whatever it is.
    bool descriptor = path == "/dev/stdout" || path == "/dev/stderr" || path.starts_with("/dev/fd/") ||
                      path.starts_with("/proc/self/fd/");
    if (S_ISCHR(what.st_mode) || S_ISFIFO(what.st_mode) || (descriptor && S_ISREG(what.st_mode))) {
      // Written in place. O_NONBLOCK: a fifo nobody reads is an error now,
      // not a hang (cleared for the writes).
      int trunc = S_ISREG(what.st_mode) ? O_TRUNC : 0;
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | trunc));
      if (!fd.valid()) return fail_errno(path, errno);
      struct stat opened;
      if (::fstat(fd.get(), &opened) != 0 || opened.st_ino != what.st_ino || opened.st_dev != what.st_dev)
        return fail(path + ": changed while it was opened");
      ::fcntl(fd.get(), F_SETFL, 0);
      return AtomicFile(std::move(path), UniqueFd(), std::string(), std::move(fd), /*in_place=*/true);
    }
    if (S_ISDIR(what.st_mode)) return fail(path + ": is a directory");
    if (link) return fail(path + ": is a symbolic link; refusing to write through it (name the file itself)");
    return fail(path + ": is a " + (S_ISBLK(what.st_mode) ? "block device" : S_ISSOCK(what.st_mode) ? "socket" : "special file") +
                "; refusing to replace it");
  }
  UniqueFd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return fail_errno(path, errno);
  // A record is an ordinary file: mode 0666 less the umask.
  mode_t mask = ::umask(0);
  ::umask(mask);
  int fd = ::openat(dir.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666 & ~mask);
  if (fd >= 0) return AtomicFile(std::move(path), std::move(dir), std::string(), UniqueFd(fd));
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return fail_errno(path, errno);
  for (int attempt = 0;; ++attempt) {
    std::string temp = "." + base_of(path) + "." + std::to_string(::getpid()) + "." + std::to_string(attempt);
    fd = ::openat(dir.get(), temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666 & ~mask);
    if (fd >= 0) return AtomicFile(std::move(path), std::move(dir), std::move(temp), UniqueFd(fd));
    if (errno != EEXIST || attempt > 100) return fail_errno(path, errno);
  }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      dir_(std::move(other.dir_)),
      temp_(std::move(other.temp_)),
      fd_(std::move(other.fd_)),
      in_place_(other.in_place_) {
  other.temp_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_.valid() && !temp_.empty()) ::unlinkat(dir_.get(), temp_.c_str(), 0);
}

Result<void> AtomicFile::commit(std::string_view data) {
  if (!fd_.valid()) return fail(path_ + ": already written");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(path_, errno);
    }
    done += static_cast<size_t>(n);
  }
  if (in_place_) {
    fd_.reset();
    return {};
  }
  if (::fsync(fd_.get()) != 0) return fail_errno(path_, errno);
  if (temp_.empty()) {
    // Name the unnamed file, then move the name into place.
    for (int attempt = 0; temp_.empty(); ++attempt) {
      std::string name = "." + base_of(path_) + "." + std::to_string(::getpid()) + "." + std::to_string(attempt);
      std::string proc = "/proc/self/fd/" + std::to_string(fd_.get());
      if (::linkat(AT_FDCWD, proc.c_str(), dir_.get(), name.c_str(), AT_SYMLINK_FOLLOW) == 0 ||
          ::linkat(fd_.get(), "", dir_.get(), name.c_str(), AT_EMPTY_PATH) == 0) {
        temp_ = name;
      } else if (errno != EEXIST || attempt > 100) {
        return fail_errno(path_, errno);
      }
    }
  }
  fd_.reset();
  if (::renameat(dir_.get(), temp_.c_str(), dir_.get(), base_of(path_).c_str()) != 0) {
    int e = errno;
    ::unlinkat(dir_.get(), temp_.c_str(), 0);
    return fail_errno(path_, e);
  }
  ::fsync(dir_.get());
  return {};
}

Result<std::string> read_input(const std::string& path, uint64_t limit) {
  bool stdin_ = path == "-";
  std::string shown = stdin_ ? "stdin" : path;
  UniqueFd owned;
  int fd = 0;
  if (!stdin_) {
    owned.reset(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!owned.valid()) return fail_errno(path, errno);
    fd = owned.get();
    struct stat st;
    if (::fstat(fd, &st) != 0) return fail_errno(path, errno);
    if (!S_ISREG(st.st_mode))
      return fail(path + ": not a regular file (" +
                  (S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a fifo" : S_ISCHR(st.st_mode) ? "a device" : "special") +
                  "); give a record file, or - for stdin");
    if (static_cast<uint64_t>(st.st_size) > limit)
      return fail(path + ": " + std::to_string(st.st_size) + " bytes, more than a record can be (" +
                  std::to_string(limit) + ")");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(shown, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<uint64_t>(n) > limit)
      return fail(shown + ": more than a record can be (" + std::to_string(limit) + " bytes)");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace bsandbox
