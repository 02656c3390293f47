// prometheus.h: the Prometheus text exposition format, written: bsandboxd's
// /metrics page and `bsandbox export --format=prometheus` both use it.
//
// A page is families, each two comment lines (# HELP, # TYPE) followed by
// its samples, one line each: the name, the labels in braces if any, a
// space and the value. Label values may hold any text: backslash, double
// quote and newline are escaped, and since the format is UTF-8, bytes that
// are not (a path can be anything) become U+FFFD. Values are given as text:
// each caller keeps the number format its readers know.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace bsandbox::prometheus {

// A label value, escaped (without the quotes).
std::string label_value(std::string_view bytes);

// name="value",name="value": labels ready for a sample, values escaped.
std::string labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs);

class Writer {
 public:
  // "# HELP name help" and "# TYPE name type".
  void family(std::string_view name, std::string_view type, std::string_view help);
  // "name{labels} value", or "name value" without labels.
  void sample(std::string_view name, std::string_view labels, std::string_view value);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace bsandbox::prometheus
