// temp_dir.h: a scratch directory for the tests that touch a real file
// system (removed, with everything in it, at the end of the test), and small
// helpers to fill it.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

#include "sandbox/storage/fs.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox::testing {

struct TempDir {
  std::string path;
  UniqueFd fd;
  explicit TempDir(const char* tag = "test") {
    std::string tmpl = std::string("/tmp/bsandbox-") + tag + "-XXXXXX";
    path = ::mkdtemp(tmpl.data());
    fd.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  ~TempDir() { remove_tree(AT_FDCWD, path); }
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

inline void put_file(const std::string& path, const std::string& data, mode_t mode = 0644) {
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode));
  if (!fd.valid() || !write_all(fd.get(), data, path)) std::abort();
  ::fchmod(fd.get(), mode);
}

inline std::string get_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  char buf[4096];
  for (ssize_t n; fd.valid() && (n = ::read(fd.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// path -> "kind mode content-or-target" for everything under dir (but skip).
inline void snapshot_into(int dir, const std::string& rel, const std::string& skip,
                          std::map<std::string, std::string>* out) {
  auto names = list_dir(dir, rel);
  if (!names) return;
  for (const auto& n : *names) {
    if (rel.empty() && n == skip) continue;
    std::string path = join_path(rel, n);
    struct stat st;
    if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string mode = std::to_string(st.st_mode & 07777);
    if (S_ISDIR(st.st_mode)) {
      (*out)[path] = "dir " + mode;
      UniqueFd sub(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      snapshot_into(sub.get(), path, skip, out);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t k = ::readlinkat(dir, n.c_str(), buf, sizeof buf);
      (*out)[path] = "symlink " + std::string(buf, k > 0 ? static_cast<size_t>(k) : 0);
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd fd(::openat(dir, n.c_str(), O_RDONLY | O_CLOEXEC));
      std::string data;
      char buf[4096];
      for (ssize_t k; (k = ::read(fd.get(), buf, sizeof buf)) > 0;) data.append(buf, static_cast<size_t>(k));
      (*out)[path] = "file " + mode + " " + data;
    } else {
      (*out)[path] = "other " + std::to_string(st.st_mode);
    }
  }
}

inline std::map<std::string, std::string> snapshot(int dir, const std::string& skip = "") {
  std::map<std::string, std::string> out;
  snapshot_into(dir, "", skip, &out);
  return out;
}

}  // namespace bsandbox::testing
