// http_test.cpp: the /metrics server on a real loopback socket: what each
// request gets, the cap on exchanges at once, the timeout of a silent one.
#include "sandbox/agent/http.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <optional>
#include <vector>

using namespace bsandbox;

namespace {

// The server on its own thread, as in the agent: one io_context thread.
struct Server {
  boost::asio::io_context io;
  AgentLimits limits;
  int port = 0;
  std::optional<MetricsServer> server;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::thread thread;

  explicit Server(unsigned connections = 8, unsigned timeout_s = 10) {
    limits.metrics_connections = connections;
    limits.request_timeout_s = timeout_s;
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd.get(), 64) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    server.emplace(io, std::move(fd), limits, [] { return std::string("bsandboxd_up 1\n"); },
                   [](const std::string&) {});
    server->start();
    work.emplace(io.get_executor());
    thread = std::thread([this] { io.run(); });
  }
  ~Server() {
    io.stop();
    thread.join();
  }
};

UniqueFd connect_to(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Sends request on a fresh connection; the whole reply.
std::string exchange(Server& s, const std::string& request) {
  UniqueFd fd = connect_to(s.port);
  (void)!::write(fd.get(), request.data(), request.size());
  return read_all(fd.get());
}

std::string status_of(const std::string& reply) { return reply.substr(0, reply.find("\r\n")); }

}  // namespace

TEST_CASE("GET /metrics is the page; HEAD has no body; others are refused by their code") {
  Server s;
  std::string get = exchange(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(get).find("200") != std::string::npos);
  CHECK(get.find("text/plain") != std::string::npos);
  CHECK(get.substr(get.find("\r\n\r\n") + 4) == "bsandboxd_up 1\n");
  std::string head = exchange(s, "HEAD /metrics HTTP/1.0\r\n\r\n");
  CHECK(status_of(head).find("200") != std::string::npos);
  CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());
  CHECK(status_of(exchange(s, "GET /other HTTP/1.0\r\n\r\n")).find("404") != std::string::npos);
  CHECK(status_of(exchange(s, "POST /metrics HTTP/1.0\r\n\r\n")).find("405") != std::string::npos);
  CHECK(status_of(exchange(s, "nonsense\r\n\r\n")).find("400") != std::string::npos);
}

TEST_CASE("a request that never ends its headers is closed at the request timeout") {
  Server s(8, 1);
  UniqueFd fd = connect_to(s.port);
  (void)!::write(fd.get(), "GET /metrics HTTP/1.0\r\n", 23);
  auto start = std::chrono::steady_clock::now();
  std::string reply = read_all(fd.get());  // blocks until the server closes
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK(reply.find("bsandboxd_up") == std::string::npos);
  CHECK(waited >= std::chrono::milliseconds(900));
  CHECK(waited < std::chrono::seconds(5));
}

TEST_CASE("exchanges over the cap get 503 at once; the held ones still count") {
  Server s(2, 10);
  std::vector<UniqueFd> held;
  for (int i = 0; i < 2; ++i) held.push_back(connect_to(s.port));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // both accepted, waiting for a request
  auto start = std::chrono::steady_clock::now();
  CHECK(status_of(exchange(s, "GET /metrics HTTP/1.0\r\n\r\n")).find("503") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  held.clear();  // the two end: a page again
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(status_of(exchange(s, "GET /metrics HTTP/1.0\r\n\r\n")).find("200") != std::string::npos);
}
