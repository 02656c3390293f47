// dir.cpp: see dir.h. open_fd reopens the directory (openat ".") rather
// than dup()ing the caller's descriptor, which would share its offset.
#include "sandbox/base/dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/base/unique_fd.h"

namespace bsandbox {

Result<Dir> Dir::open(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return fail_errno(path, errno);
  return Dir(d);
}

Result<Dir> Dir::open_fd(int dirfd, std::string_view what) {
  // A dup() would share dirfd's offset (and leak if fdopendir failed);
  // openat(dirfd, ".") is a new open of the same directory, so the caller's
  // descriptor is untouched whatever happens here.
  UniqueFd own(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!own.valid()) return fail_errno(std::string(what), errno);
  DIR* d = ::fdopendir(own.get());
  if (!d) return fail_errno(std::string(what), errno);
  own.release();  // the stream owns it now
  return Dir(d);
}

Dir::~Dir() {
  if (dir_) ::closedir(dir_);
}

const dirent* Dir::next() {
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(dir_);
    if (!e) {
      error_ = errno;
      return nullptr;
    }
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) return e;
  }
}

}  // namespace bsandbox
