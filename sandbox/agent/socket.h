// socket.h: bsandboxd's listening sockets: the Unix socket clients
// connect to, with the lock that makes it one agent's, and /metrics on a
// loopback TCP port.
//
// The Unix socket's directory must belong to the agent's user and be
// writable by nobody else: whoever can write it could put a socket of their
// own where clients connect (and be sent their descriptors), or a symlink
// where the agent creates its lock. It is opened once and everything after
// is relative to that descriptor. The lock (SOCKET.lock) is opened
// O_NOFOLLOW and must be a regular file of the agent's user. The socket is
// bound inside a private directory made there (SOCKET.new, mode 0700), given
// its owner, group and mode, set listening, and renamed onto SOCKET: it
// appears under its name with its final mode and group, already accepting,
// and the rename replaces whatever was there (a dead agent's socket, a
// symlink) without following it.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <string>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

class AgentSocket {
 public:
  // Opens (or makes, 0755) the socket's directory, checks who may write it,
  // and takes the lock; fails if another agent holds it.
  static Result<AgentSocket> lock(const std::string& path);
  // Makes the listening socket, owned by us and group, with mode, and puts
  // it in place.
  Result<UniqueFd> listen(gid_t group, unsigned mode) const;
  // Removes the socket (no new clients: draining, exiting).
  void remove() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_, dir_path_, name_;
  UniqueFd dir_, lock_;
};

// --metrics HOST:PORT, a numeric loopback address (the page names the uids
// running jobs, which is no business of the network): checked before the
// agent starts, bound once it has its socket.
struct MetricsAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string text;
};
Result<MetricsAddress> parse_metrics_address(const std::string& where);
Result<UniqueFd> listen_metrics(const MetricsAddress& where);

}  // namespace bsandbox
