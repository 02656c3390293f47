// text.h: bytes (paths, argv) shown to a person on one line.
//
// Paths and arguments are byte strings; a terminal would misrender control
// characters and invalid UTF-8, and a newline would break a line-per-item
// listing. printable() keeps printable ASCII and valid UTF-8 as they are and
// writes everything else as \n, \t or \xNN (and a backslash as \\).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/result.h"

namespace bsandbox {

std::string printable(std::string_view bytes);
// argv as a shell would read it back: words quoted where needed.
std::string command_line(const std::vector<std::string>& argv);

// "16M" -> 16777216. Suffixes K, M, G (powers of 1024).
Result<size_t> parse_size(const std::string& text);
// 16777216 -> "16.0 MiB".
std::string format_size(uint64_t bytes);

}  // namespace bsandbox
