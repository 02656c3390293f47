// file_state.h: what a path in a project is, as far as the journal cares:
// absent, or a regular file (mode, owner, size, mtime, SHA-256 of the
// content), a directory (mode, owner), a symlink (its target) or a fifo.
//
// Two states are the same for rollback when kind, permission bits and
// content (hash or link target) are equal: a touch that changes only the
// mtime is not a conflict, but a chmod or an edit is. Owners and mtimes are
// kept so that a restored file gets them back.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "sandbox/base/result.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

enum class FileKind : uint8_t { kAbsent = 0, kFile = 1, kDir = 2, kSymlink = 3, kFifo = 4, kOther = 5 };

struct FileState {
  FileKind kind = FileKind::kAbsent;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::optional<Digest> hash;  // kFile
  std::string target;          // kSymlink

  bool absent() const { return kind == FileKind::kAbsent; }
  // Same kind, permission bits and content.
  bool same_as(const FileState& o) const;
};

const char* kind_name(FileKind k);
// The kind an st_mode says (a socket or a device: kOther). The journal's
// states and the cache's looks both take their kinds from here, so that the
// numbers the cache stores (cache.proto) are the journal's.
FileKind file_kind(mode_t mode);

// The state of dirfd/name, not following a final symlink. With hash, a
// regular file's content is read and hashed. Absent (ENOENT, ENOTDIR) is a
// state, not an error.
Result<FileState> observe_at(int dirfd, const std::string& name, bool hash, std::string_view what);
// The same from a stat already made (no hash; a symlink's target is read).
Result<FileState> state_from_stat(int dirfd, const std::string& name, const struct stat& st,
                                  std::string_view what);

}  // namespace bsandbox
