// connection_test.cpp: one client connection driven from the other end of a
// socketpair, the agent played by a fake host: a status request answered
// and closed, a job's frames passed on, a request with its descriptors, the
// refusals (not a request, cut short, too slow) with their one Error reply,
// the caller going away, and the ledger's counts given back at the end; a
// cache report counted for the socket's uid whatever it says, and one with
// a negative count refused.
#include "sandbox/agent/connection.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include "sandbox/base/framing.h"

using namespace bsandbox;
namespace asio = boost::asio;

namespace {

struct FakeHost : ConnectionHost {
  AgentLimits agent_limits;
  std::vector<std::pair<uid_t, std::string>> refused;
  std::vector<std::string> notes;
  std::vector<agent::Submit> submits;
  std::vector<std::pair<uid_t, agent::CacheTraffic>> reports;
  int statuses = 0, closed = 0;
  std::function<void(const std::shared_ptr<Connection>&)> on_submit_then;
  std::shared_ptr<Connection> last;

  const AgentLimits& limits() const override { return agent_limits; }
  void on_submit(const std::shared_ptr<Connection>& c, agent::Submit submit) override {
    submits.push_back(std::move(submit));
    last = c;
    if (on_submit_then) on_submit_then(c);
  }
  void on_status(const std::shared_ptr<Connection>& c) override {
    ++statuses;
    agent::Reply r;
    r.mutable_status()->set_running(3);
    c->answer(r);
  }
  void on_cache_report(const std::shared_ptr<Connection>& c, const agent::CacheTraffic& report) override {
    reports.emplace_back(c->peer.uid, report);
    agent::Reply r;
    r.mutable_reported();
    c->answer(r);
  }
  void on_refused(uid_t uid, const std::string& why) override { refused.emplace_back(uid, why); }
  void on_closed(const std::shared_ptr<Connection>&) override {
    ++closed;
    last.reset();
  }
  void note(const std::string& line) override { notes.push_back(line); }
};

// The agent's side (a Connection in io) and the client's (a plain socket).
struct Pair {
  asio::io_context io;
  FakeHost host;
  ClientLedger ledger{host.agent_limits};
  UniqueFd client;
  FrameReader frames{kMaxReplyBytes};  // the client's reading of replies

  explicit Pair(unsigned request_timeout_s = 10, unsigned send_timeout_s = 60) {
    host.agent_limits.request_timeout_s = request_timeout_s;
    host.agent_limits.send_timeout_s = send_timeout_s;
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    client.reset(fds[1]);
    ucred peer{::getpid(), 1234, 1234};
    auto ticket = ledger.admit(peer.uid);
    REQUIRE(ticket);
    auto c = std::make_shared<Connection>(host, Connection::Local::socket(io, Connection::Local(), fds[0]), peer,
                                          std::move(*ticket));
    c->start();
  }
  // Runs the loop until done() (asked once per turn) or the time is up.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= end) return false;
      io.restart();
      io.run_for(std::chrono::milliseconds(10));
    }
  }
  void send(const std::string& bytes) { REQUIRE(::write(client.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())); }
  // The next reply frame (nothing at end of stream), read once the loop has written it.
  std::optional<agent::Reply> reply() {
    std::optional<agent::Reply> out;
    bool done = false;
    REQUIRE(::fcntl(client.get(), F_SETFL, O_NONBLOCK) == 0);
    run_until([&] {
      if (auto next = frames.next(); next && *next) {
        agent::Reply r;
        REQUIRE(r.ParseFromString(**next));
        out = r;
        return done = true;
      }
      char buf[65536];
      ssize_t n = ::read(client.get(), buf, sizeof buf);
      if (n == 0) done = true;
      if (n > 0) frames.feed(std::string_view(buf, static_cast<size_t>(n)));
      if (auto next = frames.next(); next && *next) {
        agent::Reply r;
        REQUIRE(r.ParseFromString(**next));
        out = r;
        done = true;
      }
      return done;
    });
    REQUIRE(done);
    return out;
  }
};

std::string status_request() {
  agent::Request r;
  r.mutable_status();
  return frame(r);
}

}  // namespace

TEST_CASE("a status request is answered, then the connection closes and gives its counts back") {
  Pair p;
  CHECK(p.ledger.connections() == 1);
  p.send(status_request());
  auto r = p.reply();
  REQUIRE(r);
  CHECK(r->status().running() == 3);
  CHECK(p.host.statuses == 1);
  CHECK_FALSE(p.reply());  // then the end of the stream
  CHECK(p.host.closed == 1);
  CHECK(p.ledger.connections() == 0);
  CHECK(p.host.refused.empty());
}

TEST_CASE("a request that arrives in pieces is read whole") {
  Pair p;
  std::string bytes = status_request();
  p.send(bytes.substr(0, 3));
  p.run_until([] { return false; }, std::chrono::milliseconds(50));
  CHECK(p.host.statuses == 0);
  p.send(bytes.substr(3));
  REQUIRE(p.reply());
  CHECK(p.host.statuses == 1);
}

TEST_CASE("a submit comes with its descriptors; the job's frames are passed on, the last closes") {
  Pair p;
  agent::Request request;
  agent::Submit* s = request.mutable_submit();
  s->add_argv("true");
  s->set_cwd("/");
  s->set_fds(0);  // the working directory only
  UniqueFd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  size_t fds_held = 0;
  p.host.on_submit_then = [&](const std::shared_ptr<Connection>& c) { fds_held = c->fds.size(); };
  REQUIRE(send_frame(p.client.get(), request, {dir.get()}));
  REQUIRE(p.run_until([&] { return !p.host.submits.empty(); }));
  CHECK(p.host.submits[0].argv(0) == "true");
  CHECK(fds_held == 1);
  auto c = p.host.last;
  REQUIRE(c);
  agent::Reply progress, finished;
  progress.mutable_progress()->set_events(10);
  finished.mutable_finished()->set_events(20);
  c->pass_on(progress.SerializeAsString(), false);
  c->pass_on(finished.SerializeAsString(), true);
  c.reset();
  auto first = p.reply();
  REQUIRE(first);
  CHECK(first->progress().events() == 10);
  auto second = p.reply();
  REQUIRE(second);
  CHECK(second->finished().events() == 20);
  CHECK_FALSE(p.reply());
  CHECK(p.host.closed == 1);
}

TEST_CASE("the caller going away while its job runs is heard as the connection closing") {
  Pair p;
  agent::Request request;
  request.mutable_submit()->add_argv("sleep");
  request.mutable_submit()->set_fds(0);
  UniqueFd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(send_frame(p.client.get(), request, {dir.get()}));
  REQUIRE(p.run_until([&] { return !p.host.submits.empty(); }));
  CHECK(p.host.closed == 0);
  p.client.reset();
  CHECK(p.run_until([&] { return p.host.closed == 1; }));
  CHECK(p.ledger.connections() == 0);
}

TEST_CASE("refused: a message that is not a request gets one Error, and the connection closes") {
  Pair p;
  p.send(std::string("\x05\x00\x00\x00", 4) + "\xff\xff\xff\xff\xff");
  auto r = p.reply();
  REQUIRE(r);
  REQUIRE(r->has_error());
  CHECK(r->error().message() == "the message is not a request (it does not parse)");
  REQUIRE(p.host.refused.size() == 1);
  CHECK(p.host.refused[0].first == 1234);
  CHECK(p.host.refused[0].second == r->error().message());
  CHECK_FALSE(p.reply());
  CHECK(p.host.closed == 1);
}

TEST_CASE("refused: a request cut short by the caller closing its side") {
  Pair p;
  p.send(status_request().substr(0, 3));
  ::shutdown(p.client.get(), SHUT_WR);
  auto r = p.reply();
  REQUIRE(r);
  CHECK(r->error().message() == "the message was cut short (the connection closed in the middle of it)");
}

TEST_CASE("refused: no whole request within the request timeout") {
  Pair p(/*request_timeout_s=*/1);
  p.send(status_request().substr(0, 2));
  auto start = std::chrono::steady_clock::now();
  auto r = p.reply();
  REQUIRE(r);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(900));
  CHECK(r->error().message() == "no whole request came within 1 s (bsandboxd --request-timeout)");
  CHECK_FALSE(p.reply());
  CHECK(p.host.closed == 1);
}

TEST_CASE("a client that does not take its replies is closed after the send timeout") {
  Pair p(10, /*send_timeout_s=*/1);
  agent::Request request;
  request.mutable_submit()->add_argv("true");
  request.mutable_submit()->set_fds(0);
  UniqueFd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(send_frame(p.client.get(), request, {dir.get()}));
  REQUIRE(p.run_until([&] { return !p.host.submits.empty(); }));
  // More than the socket holds, never read.
  p.host.last->pass_on(std::string(16 << 20, 'x'), false);
  CHECK(p.run_until([&] { return p.host.closed == 1; }, std::chrono::seconds(5)));
  REQUIRE(p.host.notes.size() == 1);
  CHECK(p.host.notes[0] == "uid 1234 took no reply for 1 s: closing");
}

TEST_CASE("a cache report is the socket's uid's, whatever uid the message claims") {
  Pair p;
  agent::Request request;
  request.mutable_cache_report()->set_hits(3);
  request.mutable_cache_report()->set_bytes_down(4096);
  // A field this agent does not know, where a uid might be claimed (field
  // 15, varint 0: root): ignored, as every unknown field is.
  std::string bytes = request.SerializeAsString();
  std::string claim = bytes.substr(2) + std::string("\x78\x00", 2);  // the report, plus field 15 = 0
  std::string payload = std::string("\x1a", 1) + static_cast<char>(claim.size()) + claim;
  REQUIRE(bytes[0] == '\x1a');
  p.send(frame_header(static_cast<uint32_t>(payload.size())) + payload);
  auto r = p.reply();
  REQUIRE(r);
  CHECK(r->has_reported());
  REQUIRE(p.host.reports.size() == 1);
  CHECK(p.host.reports[0].first == 1234);
  CHECK(p.host.reports[0].second.hits() == 3);
  CHECK(p.host.reports[0].second.bytes_down() == 4096);
  CHECK_FALSE(p.reply());
  CHECK(p.host.closed == 1);
}

TEST_CASE("refused: a cache report with a negative count, or above the bound, counts nothing") {
  for (int64_t bad : {int64_t{-1}, kMaxReportedCount + 1}) {
    Pair p;
    agent::Request request;
    request.mutable_cache_report()->set_hits(1);
    request.mutable_cache_report()->set_bytes_up(bad);
    p.send(frame(request));
    auto r = p.reply();
    REQUIRE(r);
    REQUIRE(r->has_error());
    CHECK(r->error().message().find("bad cache report: ") == 0);
    CHECK(r->error().message().find("bytes_up") != std::string::npos);
    CHECK(p.host.reports.empty());
    CHECK(p.host.refused.size() == 1);
  }
}
