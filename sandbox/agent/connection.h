// connection.h: one client of bsandboxd on its Unix socket, from its one
// request to the last reply written.
//
// Every client is a stranger: a connection reads its request (bytes and
// descriptors, RequestReader) and holds only what that request needs; its
// Ticket counts it, and the bytes of a request not yet whole, against its
// user's share and the agent's (ClientLedger). The request must arrive
// whole within --request-timeout, and each reply be taken within
// --send-timeout, or the connection is refused or closed. Who the caller is
// comes from the socket (SO_PEERCRED, SO_PEERGROUPS), never from what it says.
//
// What a request asks for is the host's business (the agent: ConnectionHost),
// which answers through send, pass_on and answer; a refusal is one Error
// reply, after which the connection closes once it is written. Replies are
// queued and written in order, one async_write at a time.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>
#include <utility>  // before Boost.Asio 1.74, which forgets it
#include <vector>

#include <boost/asio.hpp>

#include "sandbox/agent/agent.pb.h"
#include "sandbox/agent/limits.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

struct Connection;
struct Job;  // the job a connection's request became (queue.h)

// What a connection needs of the agent.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual const AgentLimits& limits() const = 0;
  // A whole request; its descriptors are in c->fds.
  virtual void on_submit(const std::shared_ptr<Connection>& c, agent::Submit submit) = 0;
  virtual void on_status(const std::shared_ptr<Connection>& c) = 0;
  // A report of remote cache traffic, checked (protocol.h); it is the
  // caller's own: c->peer says whose.
  virtual void on_cache_report(const std::shared_ptr<Connection>& c, const agent::CacheTraffic& report) = 0;
  // A request refused, for the count and the log.
  virtual void on_refused(uid_t uid, const std::string& why) = 0;
  virtual void on_closed(const std::shared_ptr<Connection>& c) = 0;
  // A line for the verbose log.
  virtual void note(const std::string& line) = 0;
};

struct Connection : std::enable_shared_from_this<Connection> {
  using Local = boost::asio::local::stream_protocol;

  Connection(ConnectionHost& h, Local::socket s, ucred p, ClientLedger::Ticket t)
      : host(h), sock(std::move(s)), peer(p), ticket(std::move(t)), deadline(sock.get_executor()) {}
  // Reads the caller's groups and waits for its request.
  void start();
  void send(const agent::Reply& reply) { send_raw(frame(reply)); }
  // A reply frame's payload as the job's runner sent it (a record can be
  // large: no second copy); after the last one, the connection closes.
  void pass_on(std::string payload, bool last);
  // The one reply to a request that needs no job; closes once written.
  void answer(const agent::Reply& reply);
  // Sends an error and closes once it is written.
  void refuse(const std::string& message);
  void close();

  ConnectionHost& host;
  Local::socket sock;
  ucred peer{};
  std::vector<gid_t> groups;
  ClientLedger::Ticket ticket;  // its share of the per-user and total counts
  boost::asio::steady_timer deadline;
  RequestReader request;
  std::vector<UniqueFd> fds;  // the request's, until its job takes them
  std::shared_ptr<Job> job;
  std::deque<std::string> out;  // replies not yet written
  bool writing = false, closing = false, closed = false;

 private:
  void wait_readable();
  void on_readable();
  void on_request(agent::Request request);
  void send_raw(std::string bytes);
  void write_next();
  // What the connection waits for (its request, or the client taking a
  // reply) must happen within seconds, or it is refused or closed.
  void expire_after(unsigned seconds);
};

}  // namespace bsandbox
