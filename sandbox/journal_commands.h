// journal_commands.h: `bsandbox init | log | diff | undo | recover | gc`,
// from parsed options to exit code (0, or 125 with one line on stderr).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bsandbox {

int run_init(const std::string& dir);
int run_log();
int run_diff(uint64_t entry);
int run_undo(uint64_t entry, bool force);  // entry 0: the newest run in effect
int run_recover(bool abort);
int run_gc(std::optional<uint64_t> keep, std::optional<uint64_t> max_bytes);

}  // namespace bsandbox
