// atomic_file.cpp: temp file + fsync + rename + fsync of the directory.
#include "sandbox/atomic_file.h"

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
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return fail(path + ": is a directory");
  // A record is an ordinary file: mode 0666 less the umask.
  mode_t mask = ::umask(0);
  ::umask(mask);
  int fd = ::open(dir_of(path).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666 & ~mask);
  if (fd >= 0) return AtomicFile(std::move(path), std::string(), UniqueFd(fd));
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return fail_errno(path, errno);
  std::string temp = dir_of(path) + "/." + base_of(path) + ".XXXXXX";
  fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return fail_errno(path, errno);
  ::fchmod(fd, 0666 & ~mask);
  return AtomicFile(std::move(path), std::move(temp), UniqueFd(fd));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), temp_(std::move(other.temp_)), fd_(std::move(other.fd_)) {
  other.temp_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_.valid() && !temp_.empty()) ::unlink(temp_.c_str());
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
  if (::fsync(fd_.get()) != 0) return fail_errno(path_, errno);
  if (temp_.empty()) {
    // Name the unnamed file, then move the name into place.
    for (int attempt = 0; temp_.empty(); ++attempt) {
      std::string name = dir_of(path_) + "/." + base_of(path_) + "." + std::to_string(::getpid()) +
                         "." + std::to_string(attempt);
      std::string proc = "/proc/self/fd/" + std::to_string(fd_.get());
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0 ||
          ::linkat(fd_.get(), "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH) == 0) {
        temp_ = name;
      } else if (errno != EEXIST || attempt > 100) {
        return fail_errno(path_, errno);
      }
    }
  }
  fd_.reset();
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(temp_.c_str());
    return fail_errno(path_, e);
  }
  UniqueFd dir(::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
  return {};
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace bsandbox
