// io.cpp: see io.h. Reads loop until end of file (EINTR retried); a
// symlink's target is read into a buffer that doubles until readlink
// returns less than it holds, which is the only sign it was not cut.
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

namespace {

template <typename Read>
Result<std::string> read_link_with(Read read, const std::string& what) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = read(buf.data(), buf.size());
    if (n < 0) {
      int e = errno;
      auto failed = fail_errno(what, e);
      errno = e;  // kept for callers that tell causes apart (io.h)
      return failed;
    }
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);  // it may have been cut: again, with room
  }
}

}  // namespace

Result<std::string> read_link(const std::string& path) {
  return read_link_with([&](char* b, size_t n) { return ::readlink(path.c_str(), b, n); }, path);
}

Result<std::string> read_link_at(int dirfd, const std::string& name) {
  return read_link_with([&](char* b, size_t n) { return ::readlinkat(dirfd, name.c_str(), b, n); }, name);
}

std::optional<std::string_view> proc_field(std::string_view text, std::string_view name) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':') {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace bsandbox
