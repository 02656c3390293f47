// protocol_test.cpp: the agent's decoder on well-formed, malformed and
// fuzzer-found input (tests/fuzz/corpus, replayed through the fuzz target),
// and Finished round trips.
#include "sandbox/agent/protocol.h"

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

using namespace bsandbox;

namespace {

std::string submit_frame(std::vector<std::string> argv, std::vector<std::string> env, uint32_t fds) {
  agent::Request r;
  for (auto& a : argv) r.mutable_submit()->add_argv(a);
  for (auto& e : env) r.mutable_submit()->add_env(e);
  r.mutable_submit()->set_fds(fds);
  return frame(r);
}

// Feeds bytes in pieces of n; returns the frames and the first error.
std::pair<std::vector<std::string>, std::string> decode(const std::string& bytes, size_t n, uint32_t max = kMaxRequestBytes) {
  FrameReader reader(max);
  std::vector<std::string> frames;
  for (size_t at = 0; at < bytes.size(); at += n) {
    reader.feed(std::string_view(bytes).substr(at, n));
    for (;;) {
      auto next = reader.next();
      if (!next) return {frames, next.error().message};
      if (!*next) break;
      frames.push_back(**next);
    }
  }
  return {frames, ""};
}

}  // namespace

TEST_CASE("frames come out whole however the stream is cut") {
  std::string two = submit_frame({"make", "-j2"}, {"PATH=/bin"}, kFdStdout) + submit_frame({"true"}, {}, 0);
  for (size_t n : {1, 3, 4, 5, 7, 1000}) {
    auto [frames, error] = decode(two, n);
    CHECK(error.empty());
    REQUIRE(frames.size() == 2);
    auto r = parse_request(frames[0], 2);
    REQUIRE(r);
    CHECK(r->submit().argv(1) == "-j2");
  }
}

TEST_CASE("an oversized length is refused before anything is buffered") {
  std::string bytes("\xff\xff\xff\x7f", 4);
  auto [frames, error] = decode(bytes, 4);
  CHECK(frames.empty());
  CHECK(error.find("larger than the limit") != std::string::npos);
  FrameReader small(10);
  small.feed(std::string("\x0b\0\0\0", 4));
  CHECK_FALSE(small.next());
}

TEST_CASE("after an oversized length nothing more is kept") {
  FrameReader reader(16);
  reader.feed(std::string("\x11\0\0\0", 4) + std::string(1000, 'x'));
  CHECK(reader.buffered() == 0);
  for (int i = 0; i < 100; ++i) reader.feed(std::string(1 << 16, 'x'));
  CHECK(reader.buffered() == 0);
  auto next = reader.next();
  REQUIRE_FALSE(next);
  CHECK(next.error().message == "message of 17 bytes is larger than the limit of 16");
  // A second frame's length is checked as soon as the first is taken.
  FrameReader two(16);
  two.feed(std::string("\x01\0\0\0a\xff\xff\0\0", 9));
  auto first = two.next();
  REQUIRE(first);
  CHECK(**first == "a");
  CHECK(two.buffered() == 0);
  CHECK_FALSE(two.next());
}

TEST_CASE("a cut-short frame is partial") {
  FrameReader reader(kMaxRequestBytes);
  reader.feed(std::string("\x10\0\0\0abc", 7));
  auto next = reader.next();
  REQUIRE(next);
  CHECK_FALSE(*next);
  CHECK(reader.partial());
}

TEST_CASE("requests that make no sense are refused, saying why") {
  auto why = [](const std::string& payload, size_t fds) {
    auto r = parse_request(payload, fds);
    return r ? std::string() : r.error().message;
  };
  auto body = [](const std::string& framed) { return framed.substr(4); };
  CHECK(why("\xff\xff", 0).find("does not parse") != std::string::npos);
  CHECK(why("", 0).find("asks for nothing") != std::string::npos);
  CHECK(why(body(submit_frame({}, {}, 0)), 1).find("no command") != std::string::npos);
  CHECK(why(body(submit_frame({""}, {}, 0)), 1).find("empty command") != std::string::npos);
  CHECK(why(body(submit_frame({std::string("a\0b", 3)}, {}, 0)), 1).find("NUL") != std::string::npos);
  CHECK(why(body(submit_frame({"true"}, {"=x"}, 0)), 1).find("NAME=VALUE") != std::string::npos);
  CHECK(why(body(submit_frame({"true"}, {"NOEQUALS"}, 0)), 1).find("NAME=VALUE") != std::string::npos);
  CHECK(why(body(submit_frame({"true"}, {}, 64)), 1).find("unknown descriptor") != std::string::npos);
  CHECK(why(body(submit_frame({"true"}, {}, kFdStdin | kFdStderr)), 2).find("3 descriptors") != std::string::npos);
  CHECK(why(body(submit_frame({"true"}, {}, 0)), 1).empty());
  agent::Request status;
  status.mutable_status();
  CHECK(why(status.SerializeAsString(), 0).empty());
  CHECK(why(status.SerializeAsString(), 1).find("descriptors") != std::string::npos);
}

TEST_CASE("a cache report: no descriptors, every count from 0 to kMaxReportedCount") {
  auto why = [](const agent::CacheTraffic& t, size_t fds = 0) {
    agent::Request r;
    *r.mutable_cache_report() = t;
    auto parsed = parse_request(r.SerializeAsString(), fds);
    return parsed ? std::string() : parsed.error().message;
  };
  agent::CacheTraffic t;
  CHECK(why(t).empty());  // nothing to report: harmless
  t.set_hits(kMaxReportedCount);
  t.set_bytes_down(kMaxReportedCount);
  CHECK(why(t).empty());
  CHECK(why(t, 1) == "a cache report came with descriptors");
  t.set_errors(-1);
  CHECK(why(t) == "bad cache report: a negative count of errors");
  t.set_errors(0);
  t.set_uploads(kMaxReportedCount + 1);
  CHECK(why(t) == "bad cache report: uploads is above the 281474976710656 one report may carry");
  t.set_uploads(std::numeric_limits<int64_t>::min());
  CHECK(why(t) == "bad cache report: a negative count of uploads");
  t.set_uploads(0);
  t.set_prefetched(kMaxReportedCount + 1);
  CHECK(why(t) == "bad cache report: prefetched is above the 281474976710656 one report may carry");
}

// The fuzz target itself (tests/fuzz/agent_decoder_fuzz.cpp): each corpus
// input replayed with its descriptors; a broken rule traps.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

TEST_CASE("the regression corpus decodes without harm") {
  std::string dir = std::string(BSANDBOX_SOURCE_DIR) + "/tests/fuzz/corpus";
  DIR* d = opendir(dir.c_str());
  REQUIRE(d);
  size_t files = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string input = ss.str();
    for (size_t fds = 0; fds < 5; ++fds) {
      auto [frames, error] = decode(input, 7);
      for (const auto& f : frames) (void)parse_request(f, fds);
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ++files;
  }
  closedir(d);
  CHECK(files >= 6);
}

TEST_CASE("descriptors travel with the first byte of a frame") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  agent::Request r;
  r.mutable_submit()->add_argv("true");
  REQUIRE(send_frame(sv[0], r, {0, 1}));
  std::vector<UniqueFd> fds;
  char buf[4096];
  ssize_t n = receive_with_fds(sv[1], buf, sizeof buf, fds);
  CHECK(n > 4);
  CHECK(fds.size() == 2);
  for (auto& fd : fds) CHECK(fd.valid());
  close(sv[0]);
  close(sv[1]);
}

namespace {

// Descriptors to send along (dups of /dev/null), and whether one is open.
std::vector<UniqueFd> some_fds(size_t n) {
  std::vector<UniqueFd> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return out;
}
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("a request's descriptors come with its first byte, exactly as many as it names") {
  std::string status = [] {
    agent::Request r;
    r.mutable_status();
    return frame(r);
  }();
  std::string submit = submit_frame({"true"}, {}, kFdStdout);  // stdout and the working directory
  SUBCASE("with the first byte: taken, in order") {
    RequestReader reader;
    auto fds = some_fds(2);
    int first = fds[0].get();
    REQUIRE(reader.feed(submit.substr(0, 3), std::move(fds)));
    CHECK(reader.partial());
    REQUIRE(reader.feed(submit.substr(3), {}));
    auto next = reader.next();
    REQUIRE(next);
    REQUIRE(*next);
    auto taken = reader.take_fds();
    REQUIRE(taken.size() == 2);
    CHECK(taken[0].get() == first);
    CHECK_FALSE(reader.partial());
  }
  SUBCASE("after the first byte: refused, and closed at once") {
    RequestReader reader;
    auto early = some_fds(1), late = some_fds(1);
    int a = early[0].get(), b = late[0].get();
    REQUIRE(reader.feed(submit.substr(0, 1), std::move(early)));
    auto fed = reader.feed(submit.substr(1, 1), std::move(late));
    REQUIRE_FALSE(fed);
    CHECK(fed.error().message.find("after the request's first byte") != std::string::npos);
    CHECK_FALSE(is_open(a));
    CHECK_FALSE(is_open(b));
  }
  SUBCASE("more than a request carries (the kernel dropped some): refused") {
    RequestReader reader;
    auto fds = some_fds(4);
    int a = fds[0].get();
    fds.emplace_back(-1);
    auto fed = reader.feed(submit, std::move(fds));
    REQUIRE_FALSE(fed);
    CHECK(fed.error().message.find("more than 4 descriptors") != std::string::npos);
    CHECK_FALSE(is_open(a));
  }
  SUBCASE("fewer or more than the request names: refused, and closed") {
    RequestReader reader;
    auto fds = some_fds(3);
    int a = fds[0].get();
    REQUIRE(reader.feed(submit, std::move(fds)));
    auto next = reader.next();
    REQUIRE_FALSE(next);
    CHECK(next.error().message.find("names 2 descriptors") != std::string::npos);
    CHECK_FALSE(is_open(a));
    RequestReader with_status;
    REQUIRE(with_status.feed(status, some_fds(1)));
    CHECK_FALSE(with_status.next());
  }
  SUBCASE("one request per connection") {
    RequestReader reader;
    REQUIRE(reader.feed(status + status, {}));
    auto next = reader.next();
    REQUIRE_FALSE(next);
    CHECK(next.error().message.find("carries one request") != std::string::npos);
    RequestReader once;
    REQUIRE(once.feed(status, {}));
    REQUIRE(once.next());
    CHECK_FALSE(once.feed("x", {}));
  }
}

TEST_CASE("the agent receives at most a request's descriptors at a time") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  // 16 descriptors with one byte, as an attacker would send them.
  auto sent = some_fds(16);
  std::vector<int> raw;
  for (auto& fd : sent) raw.push_back(fd.get());
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * 16);
  std::memcpy(CMSG_DATA(c), raw.data(), sizeof(int) * 16);
  REQUIRE(sendmsg(sv[0], &msg, 0) == 1);
  std::vector<UniqueFd> fds;
  char buf[16];
  CHECK(receive_with_fds(sv[1], buf, sizeof buf, fds) == 1);
  REQUIRE(fds.size() == kMaxRequestFds + 1);
  CHECK_FALSE(fds.back().valid());  // the rest were closed by the kernel, and that is marked
  close(sv[0]);
  close(sv[1]);
}

TEST_CASE("a finished run survives the trip") {
  TracedRun run;
  run.record.backend = "ebpf";
  run.record.argv = {"cc", "-c", "x.c"};
  run.record.exit_code = 3;
  run.problems = {"2 events lost"};
  run.exec_error = "";
  run.stopped = "the wall time limit of 1 s was reached";
  run.events = 42;
  agent::Finished f = to_finished(run, true);
  auto back = from_finished(f);
  REQUIRE(back);
  CHECK(back->record == run.record);
  CHECK(back->problems == run.problems);
  CHECK(back->stopped == run.stopped);
  CHECK(back->events == 42);
  agent::Finished broken;
  broken.set_record("not a record");
  CHECK_FALSE(from_finished(broken));
}
