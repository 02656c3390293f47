// dir.h: a directory stream owned like a descriptor.
//
// readdir needs a DIR*, which owns the descriptor it was opened on: Dir
// closes it exactly once, and opening one from a descriptor the caller keeps
// (dup, then fdopendir) cannot leak the duplicate when fdopendir fails. "."
// and ".." are skipped; names come as they are (any bytes but '/' and NUL).
#pragma once

#include <dirent.h>

#include <optional>
#include <string>
#include <string_view>

#include "sandbox/base/result.h"

namespace bsandbox {

class Dir {
 public:
  // The directory at path (O_DIRECTORY; symlinks followed, as opendir does).
  static Result<Dir> open(const std::string& path);
  // The directory that dirfd is open on; dirfd stays the caller's. The
  // listing starts at the beginning whatever dirfd's offset.
  static Result<Dir> open_fd(int dirfd, std::string_view what);

  Dir(Dir&& other) noexcept : dir_(other.dir_) { other.dir_ = nullptr; }
  Dir& operator=(Dir&&) = delete;
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  ~Dir();

  // The next entry, or nothing at the end (or on an error, which
  // error() then names: a listing cut short is not a whole one).
  const dirent* next();
  int error() const { return error_; }
  // The descriptor the stream reads (for *at() calls on its entries).
  int fd() const { return ::dirfd(dir_); }

 private:
  explicit Dir(DIR* d) : dir_(d) {}
  DIR* dir_;
  int error_ = 0;
};

}  // namespace bsandbox
