// path.cpp: one pass over the input, writing components to the output and
// backing up to the previous slash on "..".
#include "sandbox/core/path.h"

namespace bsandbox::path {

std::string normalize(std::string_view path) {
  std::string out;
  out.reserve(path.size() + 1);
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(i, end - i);
    i = end;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      size_t slash = out.rfind('/');
      out.resize(slash == std::string::npos ? 0 : slash);
      continue;
    }
    out += '/';
    out += part;
  }
  if (out.empty()) out.push_back('/');
  return out;
}

std::string resolve(std::string_view base, std::string_view name) {
  if (!name.empty() && name.front() == '/') return normalize(name);
  std::string joined;
  joined.reserve(base.size() + 1 + name.size());
  joined += base;
  joined += '/';
  joined += name;
  return normalize(joined);
}

bool is_within(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return !path.empty() && path.front() == '/';
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

bool is_pseudo(std::string_view path) {
  if (is_within(path, "/dev")) return !is_within(path, "/dev/shm");
  return is_within(path, "/proc") || is_within(path, "/sys");
}

}  // namespace bsandbox::path
