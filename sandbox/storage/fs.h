// fs.h: the file-system primitives the journal and the store are made of,
// all relative to directory fds so that a path is resolved once, where we
// mean it to be.
//
// Paths inside a project are byte strings relative to its root ("a/b.c"; any
// byte but NUL, newlines and invalid UTF-8 included). open_beneath() resolves
// one without following any symlink and without leaving the directory it
// starts from (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk one
// component at a time with O_NOFOLLOW where openat2 is missing), so a tree
// that a command rearranged cannot redirect bsandbox's writes elsewhere.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/io.h"
#include "sandbox/base/result.h"
#include "sandbox/base/text.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

// Opens path (relative, no symlinks followed, not above dirfd). flags as for
// openat; "" opens dirfd itself again. On failure *err (if given) is the
// errno (ELOOP: a component is a symlink).
Result<UniqueFd> open_beneath(int dirfd, std::string_view path, int flags, mode_t mode = 0,
                              int* err = nullptr);

// dirfd/name as a directory, made with exactly mode (not less the umask)
// if missing, opened beneath dirfd without following a symlink.
Result<UniqueFd> make_dir_beneath(int dirfd, const std::string& name, mode_t mode);

// The directory holding path's last component, and that component.
struct Parent {
  UniqueFd dir;
  std::string name;
};
Result<Parent> open_parent(int dirfd, std::string_view path, int* err = nullptr);


// Copies the whole content of in (from offset 0) to out (an empty file),
// keeping holes as holes: data ranges found with SEEK_DATA/SEEK_HOLE are
// copied, the rest becomes a hole by ftruncate. Tries a reflink first. If
// on_data is given, every byte of the content is passed to it in order,
// holes as zeros (so a caller can hash while copying).
Result<void> copy_content(int in, int out, std::string_view what,
                          const std::function<void(const char*, size_t)>& on_data = {});

// Reads the whole content of fd from offset 0, passing it to on_data in
// order (holes as zeros, without reading them from disk).
Result<void> read_content(int fd, std::string_view what,
                          const std::function<void(const char*, size_t)>& on_data);

// Metadata set through a descriptor of the file itself (an O_PATH one
// too), never through a name: another user who can write in the directory
// could swap the name for a symlink between our look and our change, and a
// descriptor cannot be redirected. Set the owner before the mode: a chown
// clears the setuid and setgid bits.
Result<void> set_owner(int fd, uid_t uid, gid_t gid, std::string_view what);
Result<void> set_mode(int fd, mode_t mode, std::string_view what);  // not on a symlink
Result<void> set_mtime(int fd, int64_t mtime_ns, std::string_view what);

// Opens dirfd/name, which this process has just made (a symlink or a fifo:
// kind is S_IFLNK or S_IFIFO), as O_PATH without following it, and checks
// that it still is what we made: that kind, ours, one link. Anything else
// was put there by someone else since.
Result<UniqueFd> open_made(int dirfd, const std::string& name, mode_t kind, std::string_view what);

// Removes name (a file, symlink or a whole directory tree) under dirfd.
// ENOENT is success.
Result<void> remove_tree(int dirfd, const std::string& name);

// Replaces dirfd/name with a file holding data, whole or not at all: a
// temporary file, written (and fsynced if durable), renamed over name, and
// the directory fsynced (if durable).
Result<void> replace_file_at(int dirfd, const std::string& name, std::string_view data,
                             std::string_view what, mode_t mode = 0644, bool durable = true);

// fsync of a directory (or any fd); errors other than EINVAL reported.
Result<void> sync_fd(int fd, std::string_view what);

// A name no other live process of ours uses in this directory:
// ".bsandbox.PID.N".
std::string temp_name();

// Entries of a directory, without "." and "..", sorted.
Result<std::vector<std::string>> list_dir(int dirfd, std::string_view what);

// "a/b" + "c" -> "a/b/c"; "" + "c" -> "c".
std::string join_path(std::string_view dir, std::string_view name);

}  // namespace bsandbox
