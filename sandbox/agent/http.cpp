// http.cpp: accepting, capping, timing out and answering /metrics
// exchanges (agent_http.h).
#include "sandbox/agent/http.h"

#include <sys/socket.h>

#include <istream>

namespace bsandbox {
namespace {

namespace asio = boost::asio;
using Tcp = asio::ip::tcp;

const std::string kBusy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, UniqueFd listen_fd, const AgentLimits& limits,
                             std::function<std::string()> page, AcceptPacer::Log log)
    : acceptor_(io), limits_(limits), page_(std::move(page)), pacer_(io, "/metrics connections", kBusy, std::move(log)) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  acceptor_.assign(ss.ss_family == AF_INET6 ? Tcp::v6() : Tcp::v4(), listen_fd.release());
}

void MetricsServer::close() {
  closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pacer_.cancel();
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, Tcp::socket s) {
    if (ec == asio::error::operation_aborted || closed_) return;
    if (ec) {
      pacer_.failed(ec, acceptor_.native_handle(), [this] { accept(); });
      return;
    }
    pacer_.succeeded();
    if (*open_ >= limits_.metrics_connections)
      (void)!::send(s.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    else
      serve(std::move(s));
    accept();
  });
}

void MetricsServer::serve(Tcp::socket s) {
  // Counted while it exists: its handlers (and its timer's) hold it.
  struct Exchange {
    Exchange(std::shared_ptr<unsigned> open, Tcp::socket s)
        : open(std::move(open)), sock(std::move(s)), in(8192), timer(sock.get_executor()) {
      ++*this->open;
    }
    ~Exchange() { --*open; }
    std::shared_ptr<unsigned> open;
    Tcp::socket sock;
    asio::streambuf in;
    std::string out;
    asio::steady_timer timer;
  };
  auto x = std::make_shared<Exchange>(open_, std::move(s));
  x->timer.expires_after(std::chrono::seconds(limits_.request_timeout_s));
  x->timer.async_wait([x](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) x->sock.close(ignored);  // the pending read or write ends with an error
  });
  asio::async_read_until(x->sock, x->in, "\r\n\r\n", [this, x](const boost::system::error_code& rec, size_t) {
    std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
    if (rec) {
      status = "400 Bad Request";
      body = "bad request\n";
    } else {
      std::istream lines(&x->in);
      std::string method, target, version;
      lines >> method >> target >> version;
      if (target.empty() || !version.starts_with("HTTP/")) {
        status = "400 Bad Request";
        body = "bad request\n";
      } else if (method != "GET" && method != "HEAD") {
        status = "405 Method Not Allowed";
        body = "only GET\n";
      } else if (target == "/metrics") {
        body = page_();
      } else {
        status = "404 Not Found";
        body = "bsandboxd serves /metrics\n";
      }
      if (method == "HEAD") body.clear();
    }
    x->out = "HTTP/1.1 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    asio::async_write(x->sock, asio::buffer(x->out), [x](const boost::system::error_code&, size_t) {
      boost::system::error_code ignored;
      x->sock.shutdown(Tcp::socket::shutdown_both, ignored);
      x->timer.cancel();
    });
  });
}

}  // namespace bsandbox
