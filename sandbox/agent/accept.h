// accept.h: accepting connections without spinning when bsandboxd is
// out of descriptors.
//
// At EMFILE or ENFILE the connection stays in the listen backlog and the
// socket stays readable, so accepting again at once spins (the event loop
// wakes for it forever). AcceptPacer instead gives up a reserve descriptor
// to take that connection, sends it a one-line refusal and closes it, and
// pauses accepting: 10 ms, doubling to 1 s while it keeps failing
// (AcceptBackoff). It logs once when that starts and once when accepting
// works again.
#pragma once

#include <utility>  // before Boost.Asio 1.74, which forgets it
#include <boost/asio.hpp>
#include <functional>
#include <string>

#include "sandbox/agent/limits.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

class AcceptPacer {
 public:
  using Log = std::function<void(const std::string&)>;
  // what: "connections", "/metrics connections" (for the log); busy: the
  // bytes a turned-away connection gets.
  AcceptPacer(boost::asio::io_context& io, std::string what, std::string busy, Log log);
  // After accept failed on listen_fd: calls again once the pause is over.
  void failed(const boost::system::error_code& ec, int listen_fd, std::function<void()> again);
  void succeeded();
  void cancel() { timer_.cancel(); }

 private:
  std::string what_, busy_;
  Log log_;
  UniqueFd reserve_;
  AcceptBackoff backoff_;
  boost::asio::steady_timer timer_;
};

}  // namespace bsandbox
