// journal_commands.h: `bsandbox init | log | diff | undo | recover | gc`,
// from parsed options to exit code (0, or 125 with one line on stderr).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bsandbox {

// trust_owner: work in another user's project (project.h, act_as_owner).
int run_init(const std::string& dir, bool trust_owner);
int run_log(bool trust_owner);
int run_diff(uint64_t entry, bool trust_owner);
int run_undo(uint64_t entry, bool force, bool trust_owner);  // entry 0: the newest run in effect
int run_recover(bool abort, bool trust_owner);
int run_gc(std::optional<uint64_t> keep, std::optional<uint64_t> max_bytes, bool trust_owner);

}  // namespace bsandbox
