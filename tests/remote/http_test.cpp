// http_test.cpp: the client against http_server.h: bodies both ways,
// absence, bounds on size and time, many requests at once, and that no
// connection is left for a command to inherit.
#include "sandbox/remote/http.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "tests/remote/http_server.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {
HttpClient client(const std::string& url, long timeout_ms = 2000) {
  HttpOptions o;
  o.base_url = url + "/";
  o.timeout_ms = timeout_ms;
  auto c = HttpClient::open(o);
  REQUIRE(c);
  return std::move(*c);
}
HttpRequest request(HttpRequest::Method m, std::string path, std::string_view body = {}, size_t max = 1 << 20) {
  HttpRequest r;
  r.method = m;
  r.path = std::move(path);
  r.body = body;
  r.max_bytes = max;
  return r;
}
using M = HttpRequest::Method;

// Descriptors the test inherited are not the client's.
const bool kNoStrayFds = [] {
  for (int fd = 3; fd < 1024; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return true;
}();
}  // namespace

TEST_CASE("PUT, HEAD and GET, many at once, over kept connections") {
  HttpServer server;
  HttpClient c = client(server.url());
  std::string big(3 << 20, 'x');
  big[12345] = 'y';
  CHECK(c.perform(request(M::kPut, "cas/big", big)).ok());
  CHECK(server.objects()["/cas/big"] == big);
  HttpReply head = c.perform(request(M::kHead, "cas/big"));
  CHECK(head.ok());
  CHECK(head.body.empty());
  HttpReply got = c.perform(request(M::kGet, "cas/big", {}, 4 << 20));
  CHECK(got.ok());
  CHECK(got.body == big);
  CHECK(got.bytes_down == big.size());

  std::vector<std::string> bodies;
  for (int i = 0; i < 50; ++i) bodies.push_back("body " + std::to_string(i));
  std::vector<HttpRequest> puts, gets;
  for (int i = 0; i < 50; ++i) {
    puts.push_back(request(M::kPut, "ac/" + std::to_string(i), bodies[static_cast<size_t>(i)]));
    gets.push_back(request(M::kGet, "ac/" + std::to_string(i)));
  }
  for (const auto& r : c.perform(puts)) CHECK(r.ok());
  auto replies = c.perform(gets);
  for (size_t i = 0; i < replies.size(); ++i) CHECK(replies[i].body == bodies[i]);

  SUBCASE("absent is not an error") {
    HttpReply r = c.perform(request(M::kGet, "cas/none"));
    CHECK(r.absent());
    CHECK_FALSE(r.ok());
    CHECK(r.what() == "HTTP 404");
  }
  SUBCASE("a body larger than expected is refused") {
    HttpReply r = c.perform(request(M::kGet, "cas/big", {}, 1000));
    CHECK_FALSE(r.ok());
    CHECK(r.error.find("larger than") != std::string::npos);
  }
  SUBCASE("a truncated body is an error") {
    server.truncate = true;
    HttpReply r = c.perform(request(M::kGet, "cas/big", {}, 4 << 20));
    CHECK_FALSE(r.ok());
    CHECK_FALSE(r.error.empty());
  }
  SUBCASE("no descriptor of the client is inherited by a command") {
    for (int fd = 3; fd < 256; ++fd) {
      int flags = ::fcntl(fd, F_GETFD);
      char target[256] = {};
      (void)!::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
      if (flags >= 0) CHECK_MESSAGE((flags & FD_CLOEXEC), "descriptor " << fd << " " << target);
    }
  }
}

TEST_CASE("a slow or absent server is bounded in time") {
  HttpServer server;
  server.delay_ms = 3000;
  HttpClient c = client(server.url(), 300);
  auto start = std::chrono::steady_clock::now();
  HttpReply r = c.perform(request(M::kGet, "ac/x"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  CHECK_FALSE(r.ok());
  CHECK(r.error.find("imeout") != std::string::npos);
  server.delay_ms = 0;
  HttpClient nobody = client("http://127.0.0.1:1");
  HttpReply refused = nobody.perform(request(M::kGet, "ac/x"));
  CHECK_FALSE(refused.ok());
  CHECK_FALSE(refused.absent());
  CHECK_FALSE(refused.error.empty());
}

TEST_CASE("credentials are a bearer token or a user and password") {
  HttpOptions o;
  CHECK(parse_credentials("Bearer abc.def\n", "creds", &o));
  CHECK(o.bearer == "abc.def");
  CHECK(o.userpwd.empty());
  CHECK(parse_credentials("ci:pa:ss\r\nignored", "creds", &o));
  CHECK(o.userpwd == "ci:pa:ss");
  CHECK(o.bearer.empty());
  auto bad = parse_credentials("just-a-token", "creds", &o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("creds:") == 0);
  CHECK(bad.error().message.find("just-a-token") == std::string::npos);  // never the secret
  CHECK_FALSE(parse_credentials(":nouser", "creds", &o));
}
