// io.h: whole reads and writes on descriptors and the system's own files.
#pragma once

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

}  // namespace bsandbox
