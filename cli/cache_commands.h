// cache_commands.h: `bsandbox cache stats|gc|verify|clear` and `bsandbox
// wrap` (the launcher entry point), from parsed options to exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bsandbox {

int run_cache_command(const std::string& action, const std::string& dir, std::optional<uint64_t> max_bytes,
                      const std::string& key_file = {});

// argv as a launcher receives it: the compiler and its arguments, or (as
// make's SHELL) shell flags and a recipe line: a first word starting with
// '-' means the latter, run with $BSANDBOX_SHELL (default /bin/sh). Inside
// a traced build ($BSANDBOX_TRACER) the build's tracer records the command;
// otherwise a wrapper inside a command already being cached runs its command
// directly (the outer run caches it as a whole).
int run_wrap(const std::vector<std::string>& argv);

}  // namespace bsandbox
