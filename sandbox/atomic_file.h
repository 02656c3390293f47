// atomic_file.h: a file that appears whole or not at all.
//
// create() makes an unnamed file (O_TMPFILE) in the destination's directory,
// which proves early (before a command runs) that the destination is
// writable. commit() writes and fsyncs it, gives it a temporary name, renames
// that over the destination and fsyncs the directory. Until then the
// destination is untouched; if anything fails (a full disk, an error exit)
// the old file, if any, stays as it was, and since the file has no name
// before commit even a crash leaves nothing behind. On file systems without
// O_TMPFILE a named temporary (mkstemp) is used and removed on failure.
// Everything after create() goes through an fd of the destination's
// directory, so a file created before bsandbox enters a journaled run's
// mount namespace is still committed where it was meant to go.
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
  AtomicFile(std::string path, UniqueFd dir, std::string temp, UniqueFd fd)
      : path_(std::move(path)), dir_(std::move(dir)), temp_(std::move(temp)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd dir_;      // the destination's directory
  std::string temp_;  // the named temporary's name in dir_ (fallback); empty for O_TMPFILE
  UniqueFd fd_;       // invalid once committed or moved from
};

// Reads a whole file ("what: cause" on failure).
Result<std::string> read_file(const std::string& path);

}  // namespace bsandbox
