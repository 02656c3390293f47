// io.h: whole reads and writes on descriptors and the system's own files:
// a file, a symlink's target, a field of a /proc file.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sandbox/base/result.h"

namespace bsandbox {

// Reads a whole file ("path: cause" on failure). For the system's own files
// (/proc, /sys): no limit, any kind. Files a user controls are read with the
// limits of storage/ instead.
Result<std::string> read_file(const std::string& path);

// Writes all of data at the current offset (EINTR retried); errors name what.
Result<void> write_all(int fd, std::string_view data, std::string_view what);

// The target of the symlink at path (or of name in dirfd), whole: the
// buffer grows until readlink says it held everything. On failure errno is
// still readlink's (EINVAL: not a symlink, ENAMETOOLONG from /proc, ...).
Result<std::string> read_link(const std::string& path);
Result<std::string> read_link_at(int dirfd, const std::string& name);

// The value of the line "name:<blanks>value" in a /proc file's text
// (/proc/PID/status, /proc/meminfo), blanks trimmed; nothing if no line
// starts with name followed by ':'.
std::optional<std::string_view> proc_field(std::string_view text, std::string_view name);

}  // namespace bsandbox
