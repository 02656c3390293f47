// text.cpp: see text.h.
#include "sandbox/text.h"

#include "sandbox/json.h"

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
    out += plain ? printable(a) : "'" + printable(a) + "'";
  }
  return out;
}

}  // namespace bsandbox
