// client_test.cpp: the caller's side against a fake agent on a socketpair
// (or a listening socket of the test's): a job's replies read to its
// Finished run, the agent's notes, its errors and early close; the status
// asked and shown; what connecting says when no agent listens; a cache
// traffic report as sent, and its time bounded when the agent never answers.
#include "sandbox/agent/client.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "sandbox/agent/protocol.h"
#include "sandbox/base/framing.h"
#include "tests/temp_dir.h"

using namespace bsandbox;

namespace {

// A fake agent on the other end: reads the one request, then sends replies.
struct FakeAgent {
  UniqueFd client, agent;
  agent::Request request;
  size_t fds = 0;
  std::thread thread;

  explicit FakeAgent(std::vector<std::string> replies) {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    client.reset(pair[0]);
    agent.reset(pair[1]);
    thread = std::thread([this, replies = std::move(replies)] {
      RequestReader reader;
      for (;;) {
        char buf[65536];
        std::vector<UniqueFd> got;
        pollfd pfd{agent.get(), POLLIN, 0};
        (void)::poll(&pfd, 1, 5000);
        ssize_t n = receive_with_fds(agent.get(), buf, sizeof buf, got);
        if (n == -EAGAIN || n == -EINTR) continue;
        if (n <= 0) return;
        if (!reader.feed(std::string_view(buf, static_cast<size_t>(n)), std::move(got))) return;
        auto next = reader.next();
        if (!next) return;
        if (*next) {
          request = **next;
          fds = reader.take_fds().size();
          break;
        }
      }
      for (const auto& r : replies) (void)!::write(agent.get(), r.data(), r.size());
      agent.reset();
    });
  }
  ~FakeAgent() {
    if (thread.joinable()) thread.join();
  }
};

std::string accepted(bool waits) {
  agent::Reply r;
  r.mutable_accepted()->set_job(7);
  r.mutable_accepted()->set_ahead(2);
  r.mutable_accepted()->set_waits(waits);
  return frame(r);
}

std::string started() {
  agent::Reply r;
  r.mutable_started()->set_job(7);
  return frame(r);
}

std::string finished() {
  TracedRun run;
  run.record.argv = {"make"};
  run.record.exit_code = 2;
  run.record.backend = "ebpf";
  run.events = 42;
  agent::Reply r;
  *r.mutable_finished() = to_finished(run, false);
  return frame(r);
}

std::string error(const std::string& message) {
  agent::Reply r;
  r.mutable_error()->set_message(message);
  return frame(r);
}

Result<TracedRun> submit(FakeAgent& fake, std::vector<std::string>* notes = nullptr) {
  std::vector<std::string> ignored;
  auto& said = notes ? *notes : ignored;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  ChildStdio stdio{null_fd.get(), null_fd.get(), null_fd.get()};
  auto run = run_via_agent(fake.client.get(), "/run/test.sock", {"make", "-j2"}, "/src", stdio, false,
                           [&](const std::string& line) { said.push_back(line); });
  fake.thread.join();
  return run;
}

}  // namespace

TEST_CASE("run_via_agent: the request as sent, the agent's notes, and the Finished run") {
  FakeAgent fake({accepted(true), started(), finished()});
  std::vector<std::string> notes;
  auto run = submit(fake, &notes);
  REQUIRE(run);
  CHECK(run->record.exit_code == 2);
  CHECK(run->record.argv == std::vector<std::string>{"make"});
  CHECK(notes == std::vector<std::string>{"job 7 waits for a free slot (2 queued ahead of it)", "job 7 started"});
  REQUIRE(fake.request.has_submit());
  const agent::Submit& s = fake.request.submit();
  CHECK(s.argv_size() == 2);
  CHECK(s.argv(1) == "-j2");
  CHECK(s.cwd() == "/src");
  CHECK(s.fds() == (kFdStdin | kFdStdout | kFdStderr));
  CHECK(s.env_size() > 0);
  CHECK(fake.fds == 4);  // stdin, stdout, stderr and the working directory
}

TEST_CASE("run_via_agent: a job that does not wait is not noted as waiting") {
  FakeAgent fake({accepted(false), started(), finished()});
  std::vector<std::string> notes;
  REQUIRE(submit(fake, &notes));
  CHECK(notes == std::vector<std::string>{"job 7 started"});
}

TEST_CASE("run_via_agent: the agent's Error, its early close and a reply that does not parse are errors") {
  {
    FakeAgent fake({accepted(false), error("the job's runner ended without a result")});
    auto run = submit(fake);
    REQUIRE_FALSE(run);
    CHECK(run.error().message == "the agent: the job's runner ended without a result");
  }
  {
    FakeAgent fake({accepted(false), started()});
    auto run = submit(fake);
    REQUIRE_FALSE(run);
    CHECK(run.error().message ==
          "the agent closed the connection before the job finished (did bsandboxd exit?)");
  }
  {
    FakeAgent fake({frame_header(3) + "\xff\xff\xff"});
    auto run = submit(fake);
    REQUIRE_FALSE(run);
    CHECK(run.error().message == "the agent sent a reply that does not parse");
  }
}

TEST_CASE("ask_status: the agent's Status, or its error") {
  {
    agent::Reply r;
    r.mutable_status()->set_running(2);
    FakeAgent fake({frame(r)});
    auto st = ask_status(fake.client.get());
    fake.thread.join();
    REQUIRE(st);
    CHECK(st->running() == 2);
    CHECK(fake.request.has_status());
    CHECK(fake.fds == 0);
  }
  {
    FakeAgent fake({error("too many connections")});
    auto st = ask_status(fake.client.get());
    fake.thread.join();
    REQUIRE_FALSE(st);
    CHECK(st.error().message == "the agent: too many connections");
  }
  {
    FakeAgent fake({started()});
    auto st = ask_status(fake.client.get());
    fake.thread.join();
    REQUIRE_FALSE(st);
    CHECK(st.error().message == "the agent answered something else than its status");
  }
  {
    FakeAgent fake({});
    auto st = ask_status(fake.client.get());
    fake.thread.join();
    REQUIRE_FALSE(st);
    CHECK(st.error().message == "the agent closed the connection without answering");
  }
}

TEST_CASE("format_agent_status: the facts, then one line per job with its command cut at 60") {
  agent::Status st;
  st.set_uptime_ns(int64_t{90} * 1000000000);
  st.set_running(1);
  st.set_queued(0);
  st.set_max_jobs(4);
  st.set_finished(12);
  st.set_events_per_second(1500.4);
  st.set_ring_bytes(16 << 20);
  st.set_drops(3);
  st.set_limits("no cgroups; wall time 3600 s; processes unlimited");
  agent::JobStatus* j = st.add_jobs();
  j->set_job(5);
  j->set_uid(1000);
  j->set_state("running");
  j->add_argv("sh");
  j->add_argv("-c");
  j->add_argv(std::string(80, 'x'));
  j->set_events(99);
  j->set_events_per_second(10);
  j->set_ring_fill(4 << 20);
  j->set_drops(1);
  std::string text = format_agent_status("/run/a.sock", st);
  CHECK(text ==
        "agent /run/a.sock: up 90 s\n"
        "jobs: 1 running, 0 queued (at most 4 at once), 12 finished\n"
        "events: 1500/s; ring buffer 16.0 MiB per job; drops: 3\n"
        "limits: no cgroups; wall time 3600 s; processes unlimited\n"
        "  job 5 uid 1000 running: 99 events (10/s), buffer 25.0% full, 1 drops: sh -c " +
            std::string(51, 'x') + "...\n");
}

TEST_CASE("format_agent_status: the remote cache traffic clients reported, when the agent counts it") {
  agent::Status st;
  st.set_limits("none");
  agent::CacheTraffic* r = st.mutable_remote_cache();
  r->set_hits(3);
  r->set_misses(4);
  r->set_uploads(5);
  r->set_bytes_down(3 << 20);
  r->set_bytes_up(2048);
  r->set_errors(1);
  r->set_prefetched(2);
  std::string text = format_agent_status("/run/a.sock", st);
  CHECK(text.find("limits: none\nremote cache (as clients reported): 3 hits, 4 misses, 2 fetched ahead, 5 uploads, "
                  "3.0 MiB down, 2.0 KiB up, 1 errors\n") != std::string::npos);
}

namespace {

// A listening socket of the test's, at a path (report_cache_traffic connects
// by name).
struct Listener {
  testing::TempDir dir{"client"};
  std::string path = dir / "agent.sock";
  UniqueFd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  Listener() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd.get(), 4) == 0);
  }
};

}  // namespace

TEST_CASE("report_cache_traffic: the counts as sent, and the agent's answer") {
  Listener l;
  agent::Request got;
  std::thread agent_side([&] {
    UniqueFd c(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    auto payload = read_frame(c.get(), kMaxRequestBytes);
    if (payload && *payload) got.ParseFromString(**payload);
    agent::Reply r;
    r.mutable_reported();
    (void)send_frame(c.get(), r);
  });
  auto sent = report_cache_traffic(l.path, CacheTraffic{1, 2, 3, 4, 5, 6, 7});
  agent_side.join();
  CHECK(sent);
  REQUIRE(got.has_cache_report());
  CHECK(traffic_of(got.cache_report()) == CacheTraffic{1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("report_cache_traffic: an agent that never answers costs the timeout, not more") {
  Listener l;  // listens, never accepts: the connect succeeds, no answer comes
  auto start = std::chrono::steady_clock::now();
  auto sent = report_cache_traffic(l.path, CacheTraffic{1, 0, 0, 0, 0, 0}, 200);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(sent);
  CHECK(took >= std::chrono::milliseconds(150));
  CHECK(took < std::chrono::seconds(2));
  auto none = report_cache_traffic(l.dir / "none.sock", CacheTraffic{1, 0, 0, 0, 0, 0}, 200);
  REQUIRE_FALSE(none);
  CHECK(none.error().message.find("no bsandboxd is listening") != std::string::npos);
}

TEST_CASE("connect_agent: no agent listening says how to start one") {
  auto fd = connect_agent("/tmp/bsandbox-no-such-agent.sock");
  REQUIRE_FALSE(fd);
  CHECK(fd.error().message == "no bsandboxd is listening on /tmp/bsandbox-no-such-agent.sock (start it as root: bsandboxd)");
  auto long_path = connect_agent("/" + std::string(200, 'a'));
  REQUIRE_FALSE(long_path);
  CHECK(long_path.error().message.find("is too long") != std::string::npos);
}
