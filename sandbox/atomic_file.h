// atomic_file.h: a file that appears whole or not at all.
//
// create() makes a temporary file in the destination's directory, which
// proves early (before a command runs) that the destination is writable.
// commit() writes, fsyncs, renames the temporary over the destination and
// fsyncs the directory; until then the destination is untouched, and if
// anything fails (a full disk, a crash, an error exit) the temporary is
// removed and the old file, if any, stays as it was.
#pragma once

#include <string>
#include <string_view>

#include "sandbox/result.h"
#include "sandbox/unique_fd.h"

namespace bsandbox {

class AtomicFile {
 public:
  static Result<AtomicFile> create(std::string path);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  Result<void> commit(std::string_view data);
  const std::string& path() const { return path_; }

 private:
  AtomicFile(std::string path, std::string temp, UniqueFd fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(std::move(fd)) {}

  std::string path_;
  std::string temp_;  // empty once committed or moved from
  UniqueFd fd_;
};

// Reads a whole file ("what: cause" on failure).
Result<std::string> read_file(const std::string& path);

}  // namespace bsandbox
