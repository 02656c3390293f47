// http.h: bsandboxd's /metrics page over HTTP on a loopback port.
//
// One HTTP/1.0-style exchange per connection: the request is read up to its
// blank line (at most 8 KiB), answered (GET or HEAD /metrics; 404, 405 or
// 400 otherwise), and the connection closed. Any local user can connect,
// socket access or not, so at most --metrics-connections exchanges run at
// once (more get a 503 and are closed at once) and each is closed when it
// has not ended within --request-timeout.
#pragma once

#include <utility>  // before Boost.Asio 1.74, which forgets it
#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "sandbox/agent/accept.h"
#include "sandbox/agent/limits.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

class MetricsServer {
 public:
  // page() makes the Prometheus text when a request asks for it.
  MetricsServer(boost::asio::io_context& io, UniqueFd listen_fd, const AgentLimits& limits,
                std::function<std::string()> page, AcceptPacer::Log log);
  void start() { accept(); }
  void close();

 private:
  void accept();
  void serve(boost::asio::ip::tcp::socket s);

  boost::asio::ip::tcp::acceptor acceptor_;
  const AgentLimits& limits_;
  std::function<std::string()> page_;
  AcceptPacer pacer_;
  // Exchanges under way; shared with them, as the io_context may destroy
  // them after this server.
  std::shared_ptr<unsigned> open_ = std::make_shared<unsigned>(0);
  bool closed_ = false;
};

}  // namespace bsandbox
