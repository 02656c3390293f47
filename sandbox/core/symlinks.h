// symlinks.h: which symlinks a path went through.
//
// The spec records a "stat" on each symlink followed on the way to a file.
// The kernel tells us where a successful open or exec ended up, but not the
// links it crossed; when the name a process gave differs from that, this
// module resolves the name again in user space, one component at a time with
// readlink(), to list the links. It is consulted only when the two differ,
// caches what it reads, and its answer is used only if it reaches the same
// file as the kernel did (the file system may have changed since).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bsandbox {

// Disk access behind an interface, so tests can use an in-memory tree.
class LinkReader {
 public:
  virtual ~LinkReader() = default;
  // The target of path if it is a symlink, else nullopt.
  virtual std::optional<std::string> read_link(const std::string& path) = 0;
};

class SystemLinkReader : public LinkReader {
 public:
  std::optional<std::string> read_link(const std::string& path) override;
};

class SymlinkFinder {
 public:
  explicit SymlinkFinder(LinkReader& reader) : reader_(reader) {}

  // The symlinks followed resolving `named` (absolute), in order, if the
  // resolution ends at `target`; nullopt if it does not (or loops).
  std::optional<std::vector<std::string>> links(std::string_view named, std::string_view target);

  // The tree changed path (created, deleted): forget what we read there.
  void forget(const std::string& path) { cache_.erase(path); }
  // Something was renamed: any cached path may now be elsewhere.
  void forget_all() { cache_.clear(); }

 private:
  const std::optional<std::string>& read_link(const std::string& path);

  LinkReader& reader_;
  std::unordered_map<std::string, std::optional<std::string>> cache_;
};

}  // namespace bsandbox
