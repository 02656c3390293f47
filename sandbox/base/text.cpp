// text.cpp: see text.h. UTF-8 validity is json.h's (the same rule the
// records use); sizes parse with strtoull and refuse a shift that would
// overflow 64 bits.
#include "sandbox/base/text.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "sandbox/base/json.h"

namespace bsandbox {

std::string printable(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      size_t n = json::utf8_sequence_length(bytes.substr(i));
      if (n > 0) {
        out.append(bytes.data() + i, n);
        i += n;
        continue;
      }
    } else if (c >= 0x20 && c != 0x7f && c != '\\') {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
    ++i;
  }
  return out;
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?[]{}();&|<>!#~") == std::string::npos;
    if (plain) {
      out += printable(a);
      continue;
    }
    // In single quotes everything is literal but the quote itself, which
    // closes, is escaped, and reopens.
    std::string shown = printable(a);
    out += '\'';
    for (char c : shown) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

Result<size_t> parse_size(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return fail("invalid size '" + text + "'");
  errno = 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  std::string suffix(end);
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k") shift = 10;
  else if (suffix == "M" || suffix == "m") shift = 20;
  else if (suffix == "G" || suffix == "g") shift = 30;
  else if (!suffix.empty()) return fail("invalid size '" + text + "' (use a number with K, M or G)");
  if (errno == ERANGE || n > (~0ULL >> shift)) return fail("size '" + text + "' is too large");
  return static_cast<size_t>(n << shift);
}

std::string format_size(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace bsandbox
