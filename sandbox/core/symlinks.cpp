// symlinks.cpp: path resolution as the kernel does it (follow every
// component, ".." after a link goes to the link target's parent, at most 40
// links), but only to list the links.
#include "sandbox/core/symlinks.h"

#include <deque>

#include "sandbox/base/io.h"

namespace bsandbox {
namespace {

constexpr int kMaxLinks = 40;  // the kernel's MAXSYMLINKS

void push_components(std::deque<std::string>& pending, std::string_view path) {
  std::deque<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    if (end > i) parts.emplace_back(path.substr(i, end - i));
    i = end + 1;
  }
  pending.insert(pending.begin(), parts.begin(), parts.end());
}

}  // namespace

std::optional<std::string> SystemLinkReader::read_link(const std::string& path) {
  auto target = bsandbox::read_link(path);
  if (!target) return std::nullopt;  // not a symlink, or not there
  return std::move(*target);
}

const std::optional<std::string>& SymlinkFinder::read_link(const std::string& path) {
  auto it = cache_.find(path);
  if (it == cache_.end()) it = cache_.emplace(path, reader_.read_link(path)).first;
  return it->second;
}

std::optional<std::vector<std::string>> SymlinkFinder::links(std::string_view named,
                                                             std::string_view target) {
  std::vector<std::string> found;
  std::deque<std::string> pending;
  push_components(pending, named);
  std::string cur;  // "" is the root
  while (!pending.empty()) {
    std::string part = std::move(pending.front());
    pending.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      cur.resize(cur.rfind('/') == std::string::npos ? 0 : cur.rfind('/'));
      continue;
    }
    std::string candidate = cur + "/" + part;
    const auto& link = read_link(candidate);
    if (!link) {
      cur = std::move(candidate);
      continue;
    }
    if (static_cast<int>(found.size()) == kMaxLinks) return std::nullopt;
    found.push_back(candidate);
    if (!link->empty() && link->front() == '/') cur.clear();
    push_components(pending, *link);
  }
  if (cur.empty()) cur.push_back('/');
  if (cur != target) return std::nullopt;
  return found;
}

}  // namespace bsandbox
