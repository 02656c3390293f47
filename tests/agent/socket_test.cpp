// socket_test.cpp: the agent's socket and lock made through the
// directory's descriptor, as whoever runs the test (the checks are about
// the agent's own user, root in real use).
#include "sandbox/agent/socket.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

bool connects(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

std::string error_of(const Result<AgentSocket>& r) { return r ? "" : r.error().message; }

}  // namespace

TEST_CASE("the socket appears with its mode, listening, and replaces a symlink without following it") {
  TempDir d("agent-socket");
  ::chmod(d.path.c_str(), 0755);
  put_file(d / "victim", "keep\n", 0600);
  REQUIRE(::symlink((d / "victim").c_str(), (d / "agent.sock").c_str()) == 0);
  auto s = AgentSocket::lock(d / "agent.sock");
  REQUIRE(s);
  auto fd = s->listen(::getegid(), 0660);
  REQUIRE(fd);
  struct stat st {};
  REQUIRE(::lstat((d / "agent.sock").c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0660);
  CHECK(st.st_uid == ::geteuid());
  CHECK(connects(d / "agent.sock"));
  CHECK(get_file(d / "victim") == "keep\n");
  REQUIRE(::stat((d / "victim").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(::access((d / "agent.sock.new").c_str(), F_OK) != 0);  // the private directory is gone
  // One agent per socket.
  CHECK(error_of(AgentSocket::lock(d / "agent.sock")).find("another bsandboxd holds") != std::string::npos);
  s->remove();
  CHECK(::access((d / "agent.sock").c_str(), F_OK) != 0);
}

TEST_CASE("a symlink at the lock is not followed") {
  TempDir d("agent-socket");
  REQUIRE(::symlink((d / "created-by-the-agent").c_str(), (d / "agent.sock.lock").c_str()) == 0);
  auto s = AgentSocket::lock(d / "agent.sock");
  CHECK(error_of(s).find("agent.sock.lock is a symlink: refusing to follow it") != std::string::npos);
  CHECK(::access((d / "created-by-the-agent").c_str(), F_OK) != 0);
}

TEST_CASE("a directory others may write is refused") {
  TempDir d("agent-socket");
  ::chmod(d.path.c_str(), 0777);
  auto s = AgentSocket::lock(d / "agent.sock");
  CHECK(error_of(s).find("may be written by others") != std::string::npos);
  CHECK(::access((d / "agent.sock.lock").c_str(), F_OK) != 0);
  ::chmod(d.path.c_str(), 01777);
  CHECK(error_of(AgentSocket::lock(d / "agent.sock")).find("mode 1777") != std::string::npos);
}

TEST_CASE("a lock that is not a regular file is refused") {
  TempDir d("agent-socket");
  REQUIRE(::mkfifo((d / "agent.sock.lock").c_str(), 0600) == 0);
  CHECK(error_of(AgentSocket::lock(d / "agent.sock")).find("not a regular file") != std::string::npos);
}

TEST_CASE("metrics listen on loopback addresses only") {
  CHECK(parse_metrics_address("127.0.0.1:9100"));
  CHECK(parse_metrics_address("[::1]:9100"));
  CHECK(parse_metrics_address("0.0.0.0:9100").error().message.find("loopback address only") != std::string::npos);
  CHECK(parse_metrics_address("localhost:9100").error().message.find("numeric loopback") != std::string::npos);
  CHECK(parse_metrics_address("127.0.0.1:99999").error().message.find("bad port") != std::string::npos);
}
