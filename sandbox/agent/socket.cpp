// socket.cpp: the socket and its lock through one directory
// descriptor; the /metrics listener (agent_socket.h).
#include "sandbox/agent/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bsandbox {
namespace {

std::string user_name(uid_t uid) { return uid == 0 ? "root" : "uid " + std::to_string(uid); }

// An address for bind/connect that reaches name through a directory
// descriptor (Linux has no bindat): the kernel resolves /proc/self/fd/N to
// the directory itself, not to a path someone could change meanwhile.
Result<sockaddr_un> address_in(int dir, const std::string& name) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string path = "/proc/self/fd/" + std::to_string(dir) + "/" + name;
  if (path.size() >= sizeof a.sun_path) return fail("the socket name " + name + " is too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// A private directory an earlier start left (it was killed in between).
void remove_private(int dir, const std::string& name) {
  UniqueFd d(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (d.valid()) ::unlinkat(d.get(), "s", 0);
  ::unlinkat(dir, name.c_str(), AT_REMOVEDIR);
}

}  // namespace

Result<AgentSocket> AgentSocket::lock(const std::string& path) {
  AgentSocket s;
  s.path_ = path;
  size_t slash = path.rfind('/');
  s.dir_path_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  s.name_ = slash == std::string::npos ? path : path.substr(slash + 1);
  if (s.name_.empty() || s.name_ == "." || s.name_ == "..") return fail("the socket path " + path + " names no file");
  if (::mkdir(s.dir_path_.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("creating " + s.dir_path_, errno);
  s.dir_.reset(::open(s.dir_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!s.dir_.valid()) return fail_errno("opening " + s.dir_path_, errno);
  struct stat st {};
  if (::fstat(s.dir_.get(), &st) != 0) return fail_errno("checking " + s.dir_path_, errno);
  if (st.st_uid != ::geteuid() || (st.st_mode & 022)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail("the socket's directory " + s.dir_path_ + " (" + user_name(st.st_uid) + "'s, mode " + mode +
                ") may be written by others than " + user_name(::geteuid()) +
                ", who could replace the socket; use a directory only it can write, like /run/bsandbox");
  }
  std::string lock_name = s.name_ + ".lock";
  s.lock_.reset(::openat(s.dir_.get(), lock_name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!s.lock_.valid() && errno == ELOOP) return fail(path + ".lock is a symlink: refusing to follow it");
  if (!s.lock_.valid()) return fail_errno("opening " + path + ".lock", errno);
  if (::fstat(s.lock_.get(), &st) != 0) return fail_errno("checking " + path + ".lock", errno);
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
    return fail(path + ".lock is not a regular file of " + user_name(::geteuid()) + "'s: refusing to use it");
  if (::flock(s.lock_.get(), LOCK_EX | LOCK_NB) != 0) return fail("another bsandboxd holds " + path + ".lock");
  return s;
}

Result<UniqueFd> AgentSocket::listen(gid_t group, unsigned mode) const {
  // Another agent? A live one answers (one of an older version may not lock).
  auto target = address_in(dir_.get(), name_);
  if (!target) return tl::unexpected(target.error());
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&*target), sizeof *target) == 0)
      return fail("another bsandboxd is listening on " + path_);
  }
  std::string tmp = name_ + ".new";
  remove_private(dir_.get(), tmp);
  if (::mkdirat(dir_.get(), tmp.c_str(), 0700) != 0) return fail_errno("creating " + dir_path_ + "/" + tmp, errno);
  UniqueFd priv(::openat(dir_.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  auto give_up = [&](const std::string& what, int e) {
    remove_private(dir_.get(), tmp);
    return fail_errno(what, e);
  };
  if (!priv.valid()) return give_up("opening " + dir_path_ + "/" + tmp, errno);
  auto inside = address_in(priv.get(), "s");
  if (!inside) return tl::unexpected(inside.error());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return give_up("socket", errno);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&*inside), sizeof *inside) != 0)
    return give_up("binding " + path_, errno);
  if (::fchownat(priv.get(), "s", ::geteuid(), group, AT_SYMLINK_NOFOLLOW) != 0 ||
      ::fchmodat(priv.get(), "s", mode, 0) != 0)
    return give_up("setting the owner and mode of " + path_, errno);
  if (::listen(fd.get(), 128) != 0) return give_up("listen", errno);
  if (::renameat(priv.get(), "s", dir_.get(), name_.c_str()) != 0) return give_up("putting " + path_ + " in place", errno);
  remove_private(dir_.get(), tmp);
  return fd;
}

void AgentSocket::remove() const {
  if (dir_.valid()) ::unlinkat(dir_.get(), name_.c_str(), 0);
}

Result<MetricsAddress> parse_metrics_address(const std::string& where) {
  size_t colon = where.rfind(':');
  if (colon == std::string::npos) return fail("--metrics needs HOST:PORT, not '" + where + "'");
  std::string host = where.substr(0, colon), port_text = where.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end || port > 65535) return fail("--metrics: bad port '" + port_text + "'");
  MetricsAddress m;
  m.text = where;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&m.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&m.address);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) return fail("--metrics listens on a loopback address only, not " + host);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    m.length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return fail("--metrics listens on a loopback address only, not " + host);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    m.length = sizeof *v6;
  } else {
    return fail("--metrics needs a numeric loopback address (127.0.0.1 or [::1]), not '" + host + "'");
  }
  return m;
}

Result<UniqueFd> listen_metrics(const MetricsAddress& where) {
  UniqueFd fd(::socket(where.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail_errno("--metrics: socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where.address), where.length) != 0)
    return fail_errno("--metrics: binding " + where.text, errno);
  if (::listen(fd.get(), 64) != 0) return fail_errno("--metrics: listen", errno);
  return fd;
}

}  // namespace bsandbox
