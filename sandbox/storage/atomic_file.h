// atomic_file.h: a file that appears whole or not at all.
//
// What is at the destination decides how it is written: nothing or a
// regular file is replaced whole (below); a character device, a fifo, or a
// symlink to one (/dev/null, /dev/stdout), and the caller's own descriptors
// (/dev/stdout, /dev/fd/N, whatever they are), are written in place,
// since replacing it would break it for everyone (root turning /dev/null
// into a file); anything else (a directory, a socket, a block device, a
// symlink to a file) is refused, so bsandbox never replaces or writes
// through what is not its to replace.
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

#include <cstdint>
#include <string>
#include <string_view>

#include "sandbox/base/io.h"
#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

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
  AtomicFile(std::string path, UniqueFd dir, std::string temp, UniqueFd fd, bool in_place = false)
      : path_(std::move(path)), dir_(std::move(dir)), temp_(std::move(temp)), fd_(std::move(fd)),
        in_place_(in_place) {}

  std::string path_;
  UniqueFd dir_;      // the destination's directory
  std::string temp_;  // the named temporary's name in dir_ (fallback); empty for O_TMPFILE
  UniqueFd fd_;       // invalid once committed or moved from
  bool in_place_ = false;  // a device or fifo: fd_ is the destination itself
};


// Reads a file a user named as input (a record): "-" is stdin; otherwise
// only a regular file (a fifo would block, a device never end), and at most
// limit bytes. One line on failure, nothing allocated past the limit.
inline constexpr uint64_t kMaxInputBytes = uint64_t{1} << 30;
Result<std::string> read_input(const std::string& path, uint64_t limit = kMaxInputBytes);

}  // namespace bsandbox
