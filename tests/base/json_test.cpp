// json_test.cpp: JSON strings with Python's surrogateescape for non-UTF-8.
#include "sandbox/base/json.h"

#include <doctest/doctest.h>

using namespace bsandbox;

static std::string quote(std::string_view bytes) {
  std::string out;
  json::append_string(out, bytes);
  return out;
}

TEST_CASE("plain ASCII passes through, quotes and backslashes are escaped") {
  CHECK(quote("/usr/bin/cc") == "\"/usr/bin/cc\"");
  CHECK(quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quote("") == "\"\"");
}

TEST_CASE("control characters are escaped") {
  CHECK(quote("a\nb") == "\"a\\nb\"");
  CHECK(quote("\t\r\b\f") == "\"\\t\\r\\b\\f\"");
  CHECK(quote(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  CHECK(quote(std::string("\0", 1)) == "\"\\u0000\"");
  CHECK(quote("\x7f") == "\"\x7f\"");
}

TEST_CASE("valid UTF-8 passes through unchanged") {
  CHECK(quote("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(quote("\xe2\x82\xac") == "\"\xe2\x82\xac\"");          // euro sign
  CHECK(quote("\xf0\x9f\x98\x80") == "\"\xf0\x9f\x98\x80\"");  // U+1F600
  CHECK(quote("\xf4\x8f\xbf\xbf") == "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
}

TEST_CASE("each byte that is not part of valid UTF-8 becomes a lone surrogate") {
  CHECK(quote("\xff") == "\"\\udcff\"");
  CHECK(quote("a\x80z") == "\"a\\udc80z\"");
  // A truncated sequence: each byte escaped, the next character kept.
  CHECK(quote("\xe2\x82" "a") == "\"\\udce2\\udc82a\"");
  // A bad start followed by a good sequence.
  CHECK(quote("\xe2\xc3\xa9") == "\"\\udce2\xc3\xa9\"");
}

TEST_CASE("overlong encodings, encoded surrogates and values past U+10FFFF are invalid") {
  CHECK(quote("\xc0\xaf") == "\"\\udcc0\\udcaf\"");               // overlong '/'
  CHECK(quote("\xe0\x80\xaf") == "\"\\udce0\\udc80\\udcaf\"");    // overlong
  CHECK(quote("\xed\xa0\x80") == "\"\\udced\\udca0\\udc80\"");    // U+D800
  CHECK(quote("\xf4\x90\x80\x80") == "\"\\udcf4\\udc90\\udc80\\udc80\"");  // U+110000
  CHECK(quote("\xf5\x80\x80\x80") == "\"\\udcf5\\udc80\\udc80\\udc80\"");
}

TEST_CASE("utf8_sequence_length") {
  CHECK(json::utf8_sequence_length("a") == 1);
  CHECK(json::utf8_sequence_length("\xc3\xa9x") == 2);
  CHECK(json::utf8_sequence_length("\xc3") == 0);
  CHECK(json::utf8_sequence_length("") == 0);
}
