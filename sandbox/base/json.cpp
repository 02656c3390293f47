// json.cpp: the escaping loop. Runs of plain ASCII are copied in one append;
// an invalid byte is escaped on its own and decoding restarts at the next
// byte, which gives the same result as Python's decoder with surrogateescape.
#include "sandbox/base/json.h"

#include <cstdint>

namespace bsandbox::json {
namespace {

bool in(uint8_t c, uint8_t lo, uint8_t hi) { return c >= lo && c <= hi; }

constexpr char kHex[] = "0123456789abcdef";

void append_u_escape(std::string& out, unsigned code) {
  out += "\\u";
  out += kHex[(code >> 12) & 0xf];
  out += kHex[(code >> 8) & 0xf];
  out += kHex[(code >> 4) & 0xf];
  out += kHex[code & 0xf];
}

}  // namespace

size_t utf8_sequence_length(std::string_view s) {
  if (s.empty()) return 0;
  auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t c = b(0);
  if (c < 0x80) return 1;
  if (in(c, 0xc2, 0xdf)) return s.size() >= 2 && in(b(1), 0x80, 0xbf) ? 2 : 0;
  if (in(c, 0xe0, 0xef)) {
    if (s.size() < 3) return 0;
    uint8_t lo = c == 0xe0 ? 0xa0 : 0x80;
    uint8_t hi = c == 0xed ? 0x9f : 0xbf;
    return in(b(1), lo, hi) && in(b(2), 0x80, 0xbf) ? 3 : 0;
  }
  if (in(c, 0xf0, 0xf4)) {
    if (s.size() < 4) return 0;
    uint8_t lo = c == 0xf0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xf4 ? 0x8f : 0xbf;
    return in(b(1), lo, hi) && in(b(2), 0x80, 0xbf) && in(b(3), 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

void append_string(std::string& out, std::string_view bytes) {
  out += '"';
  size_t i = 0;
  while (i < bytes.size()) {
    size_t run = i;
    while (run < bytes.size()) {
      auto c = static_cast<uint8_t>(bytes[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(bytes.data() + i, run - i);
    i = run;
    if (i == bytes.size()) break;

    auto c = static_cast<uint8_t>(bytes[i]);
    if (c >= 0x80) {
      size_t n = utf8_sequence_length(bytes.substr(i));
      if (n == 0) {
        append_u_escape(out, 0xdc00 + c);
        ++i;
      } else {
        out.append(bytes.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: append_u_escape(out, c); break;
    }
    ++i;
  }
  out += '"';
}

}  // namespace bsandbox::json
