// io.cpp: see io.h.
#include "sandbox/base/io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/base/text.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

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

Result<void> write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("'" + printable(what) + "'", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace bsandbox
