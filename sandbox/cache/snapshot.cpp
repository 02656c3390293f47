// snapshot.cpp: see snapshot.h. Words are split on the characters a shell
// separates words with (and quotes, which are dropped): a word a shell
// would have read differently costs only an lstat() of a path that is not
// there.
#include "sandbox/cache/snapshot.h"

#include <sys/stat.h>

#include <string_view>

#include "sandbox/cache/cache.pb.h"
#include "sandbox/core/path.h"

namespace bsandbox {

std::set<std::string> paths_named(const std::vector<std::string>& argv, const std::string& cwd) {
  std::set<std::string> paths;
  size_t budget = 4096;  // lstat()s for argument words: a bound on odd command lines
  auto word = [&](std::string_view w) {
    if (w.starts_with("-")) {
      size_t eq = w.find('=');
      if (eq != std::string_view::npos) w = w.substr(eq + 1);
      else if (w.starts_with("-o") && w.size() > 2) w = w.substr(2);
      else return;
    } else if (size_t eq = w.find('='); eq != std::string_view::npos) {
      w = w.substr(eq + 1);  // VAR=path
    }
    if (w.empty() || budget == 0) return;
    --budget;
    paths.insert(path::resolve(cwd, std::string(w)));
  };
  constexpr std::string_view kSeparators(" \t\n;&|<>()'\"`\0", 14);
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string_view a = argv[i];
    for (size_t at = 0; at < a.size();) {
      size_t end = a.find_first_of(kSeparators, at);
      if (end == std::string_view::npos) end = a.size();
      if (end > at) word(a.substr(at, end - at));
      at = end + 1;
    }
  }
  return paths;
}

void look_before(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root,
                 const std::vector<pb::CacheEntry>& entries, const HashMemo& memo,
                 std::unordered_map<std::string, PathState>* before) {
  std::set<std::string> paths = paths_named(argv, cwd);
  for (const auto& e : entries)
    for (const auto& o : e.outputs()) paths.insert(path::resolve(root, o.path()));
  // Content too (a run may read a file, or move it, before replacing it:
  // sed -i, ranlib, `mv x.tmp x`), up to a size worth reading on every miss.
  constexpr uint64_t kMaxContent = uint64_t{64} << 20;
  for (const auto& p : paths) {
    if (!path::is_within(p, root) || before->count(p)) continue;
    struct stat st;
    bool small = ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) <= kMaxContent;
    if (auto s = look(p, kAspectMeta | (small ? uint32_t{kAspectContent} : 0u), memo)) before->emplace(p, std::move(*s));
  }
}

}  // namespace bsandbox
