// prometheus.cpp: see prometheus.h. UTF-8 validity is json.h's (the same
// well-formed table the records use), so a byte that is not UTF-8 in a
// record is also not UTF-8 in a label.
#include "sandbox/base/prometheus.h"

#include "sandbox/base/json.h"

namespace bsandbox::prometheus {

std::string label_value(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    size_t n = json::utf8_sequence_length(bytes.substr(i));
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    char c = bytes[i];
    if (n == 1 && c == '\\') out += "\\\\";
    else if (n == 1 && c == '"') out += "\\\"";
    else if (n == 1 && c == '\n') out += "\\n";
    else out.append(bytes.substr(i, n));
    i += n;
  }
  return out;
}

std::string labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += ',';
    out.append(name);
    out += "=\"";
    out += label_value(value);
    out += '"';
  }
  return out;
}

void Writer::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Writer::sample(std::string_view name, std::string_view labels, std::string_view value) {
  out_.append(name);
  if (!labels.empty()) out_.append("{").append(labels).append("}");
  out_.append(" ").append(value).append("\n");
}

}  // namespace bsandbox::prometheus
