// text_test.cpp: bytes shown on one line, argv as a shell reads it back,
// sizes parsed and formatted.
#include "sandbox/base/text.h"

#include <doctest/doctest.h>

using namespace bsandbox;

TEST_CASE("printable keeps text and UTF-8, escapes the rest, and never emits a newline") {
  CHECK(printable("plain/path.c") == "plain/path.c");
  CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(printable("a\nb\tc\\d") == "a\\nb\\tc\\\\d");
  CHECK(printable(std::string("\0\x7f\x01", 3)) == "\\x00\\x7f\\x01");
  CHECK(printable("\xc3") == "\\xc3");        // a cut UTF-8 sequence
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate is not valid UTF-8
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  CHECK(printable(all).find('\n') == std::string::npos);
}

TEST_CASE("command_line quotes what a shell would split or expand, and quotes inside quotes") {
  CHECK(command_line({"make", "-j2", "all"}) == "make -j2 all");
  CHECK(command_line({"sh", "-c", "echo $HOME > out"}) == "sh -c 'echo $HOME > out'");
  CHECK(command_line({"echo", ""}) == "echo ''");
  CHECK(command_line({"echo", "it's"}) == "echo 'it'\\''s'");
  CHECK(command_line({"printf", "a\nb"}) == "printf 'a\\nb'");
  CHECK(command_line({}).empty());
}

TEST_CASE("parse_size: K, M, G in powers of 1024, one clear error otherwise") {
  CHECK(*parse_size("0") == 0);
  CHECK(*parse_size("512") == 512);
  CHECK(*parse_size("16K") == 16384);
  CHECK(*parse_size("16m") == 16u << 20);
  CHECK(*parse_size("2G") == size_t{2} << 30);
  for (const char* bad : {"", "-1", "K", "12Q", "1.5G", " 1"}) {
    auto r = parse_size(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("invalid size") != std::string::npos);
  }
  auto huge = parse_size("99999999999999999999G");
  REQUIRE_FALSE(huge);
  CHECK(huge.error().message.find("too large") != std::string::npos);
  CHECK_FALSE(parse_size("17179869184G"));  // 2^34 G overflows 64 bits
}

TEST_CASE("format_size: bytes below 1 KiB, one decimal above") {
  CHECK(format_size(0) == "0 B");
  CHECK(format_size(1023) == "1023 B");
  CHECK(format_size(1024) == "1.0 KiB");
  CHECK(format_size(16u << 20) == "16.0 MiB");
  CHECK(format_size(uint64_t{3} << 40) == "3.0 TiB");
  CHECK(format_size(uint64_t{5000} << 40) == "5000.0 TiB");
}
