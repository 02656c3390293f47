// framing_test.cpp: length-prefixed frames, cut anywhere, bounded, and read
// blocking from a descriptor.
#include "sandbox/base/framing.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <vector>

#include "sandbox/base/unique_fd.h"

using namespace bsandbox;

namespace {

std::string framed(const std::string& payload) { return frame_header(static_cast<uint32_t>(payload.size())) + payload; }

}  // namespace

TEST_CASE("the header is the payload's length, little-endian") {
  CHECK(frame_header(0) == std::string("\0\0\0\0", 4));
  CHECK(frame_header(0x01020304) == std::string("\x04\x03\x02\x01", 4));
}

TEST_CASE("frames come out whole however the bytes are cut") {
  std::string bytes = framed("one") + framed("") + framed(std::string(300, 'z'));
  for (size_t n : {1, 2, 4, 5, 9, 1000}) {
    FrameReader r(1000);
    std::vector<std::string> got;
    for (size_t at = 0; at < bytes.size(); at += n) {
      r.feed(std::string_view(bytes).substr(at, n));
      while (auto next = r.next()) {
        REQUIRE(next);
        if (!*next) break;
        got.push_back(**next);
      }
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0] == "one");
    CHECK(got[1].empty());
    CHECK(got[2] == std::string(300, 'z'));
    CHECK_FALSE(r.partial());
  }
}

TEST_CASE("a length over the limit is an error before its payload is held") {
  FrameReader r(8);
  r.feed(frame_header(9));
  CHECK(r.buffered() == 0);
  r.feed(std::string(100, 'x'));
  CHECK(r.buffered() == 0);
  auto next = r.next();
  REQUIRE_FALSE(next);
  CHECK(next.error().message == "message of 9 bytes is larger than the limit of 8");
}

TEST_CASE("read_frame: whole frames, a clean end, a cut-short frame, a limit") {
  auto pipe_with = [](const std::string& bytes) {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    REQUIRE(::write(p[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    ::close(p[1]);
    return UniqueFd(p[0]);
  };
  UniqueFd a = pipe_with(framed("hello") + framed("again"));
  CHECK(**read_frame(a.get(), 100) == "hello");
  CHECK(**read_frame(a.get(), 100) == "again");
  auto end = read_frame(a.get(), 100);
  REQUIRE(end);
  CHECK_FALSE(*end);
  UniqueFd cut = pipe_with(frame_header(10) + "abc");
  auto c = read_frame(cut.get(), 100);
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("middle of a message") != std::string::npos);
  UniqueFd big = pipe_with(framed("0123456789"));
  auto b = read_frame(big.get(), 5);
  REQUIRE_FALSE(b);
  CHECK(b.error().message.find("larger than the limit") != std::string::npos);
}
