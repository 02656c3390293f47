// accept_test.cpp: out of descriptors, the pacer turns the waiting
// connection away with a line, pauses with a growing delay, and logs once
// per episode.
#include "sandbox/agent/accept.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <vector>

using namespace bsandbox;

namespace {

// A listening Unix socket and a client connected to it (in the backlog).
struct Pending {
  UniqueFd listen_fd, client;
  Pending() {
    listen_fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string name = "bsandbox-accept-test-" + std::to_string(::getpid());
    std::copy(name.begin(), name.end(), a.sun_path + 1);  // abstract
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    REQUIRE(::bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&a), len) == 0);
    REQUIRE(::listen(listen_fd.get(), 8) == 0);
    client.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), len) == 0);
  }
};

}  // namespace

TEST_CASE("at EMFILE the waiting connection gets the busy line and is closed; accepting resumes later") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  AcceptPacer pacer(io, "connections", "busy: try again\n", [&](const std::string& l) { log.push_back(l); });
  Pending p;
  int again = 0;
  auto start = std::chrono::steady_clock::now();
  pacer.failed(boost::asio::error::no_descriptors, p.listen_fd.get(), [&] { ++again; });
  char buf[64] = {};
  ssize_t n = ::read(p.client.get(), buf, sizeof buf);
  CHECK(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == "busy: try again\n");
  CHECK(::read(p.client.get(), buf, sizeof buf) == 0);  // and closed
  io.run();
  CHECK(again == 1);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(10));
  REQUIRE(log.size() == 1);
  CHECK(log[0].find("cannot accept connections") != std::string::npos);
}

TEST_CASE("the pause doubles while accepting fails, logs once, and resets on success") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  AcceptPacer pacer(io, "connections", "busy\n", [&](const std::string& l) { log.push_back(l); });
  Pending p;
  auto timed = [&] {
    auto start = std::chrono::steady_clock::now();
    pacer.failed(boost::asio::error::connection_aborted, p.listen_fd.get(), [] {});
    io.restart();
    io.run();
    return std::chrono::steady_clock::now() - start;
  };
  auto first = timed();
  timed();
  auto third = timed();
  CHECK(third >= 3 * first);  // 10, 20, 40 ms
  CHECK(log.size() == 1);     // one episode, one line
  pacer.succeeded();
  REQUIRE(log.size() == 2);
  CHECK(log[1] == "accepting connections again");
  CHECK(timed() < third);  // back to the shortest pause
  CHECK(log.size() == 3);
}

TEST_CASE("AcceptBackoff: 10 ms doubling to 1 s") {
  AcceptBackoff b;
  CHECK_FALSE(b.failing());
  std::vector<long> seen;
  for (int i = 0; i < 10; ++i) seen.push_back(static_cast<long>(b.failed().count()));
  CHECK(seen.front() == 10);
  CHECK(seen[1] == 20);
  CHECK(seen.back() == 1000);
  CHECK(b.failing());
  b.succeeded();
  CHECK_FALSE(b.failing());
  CHECK(b.failed().count() == 10);
}
