// options.h: the command line of `bsandbox`, parsed into what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sandbox/exec_command.h"
#include "sandbox/result.h"

namespace bsandbox::cli {

struct HelpCommand {};
struct VersionCommand {};
struct ShowCommand {
  std::string record;
};
struct ExecCommand {
  ExecOptions options;
};
// The journal of a project (history.h).
struct InitCommand {
  std::string dir = ".";
};
struct LogCommand {};
struct DiffCommand {
  uint64_t entry = 0;
};
struct UndoCommand {
  uint64_t entry = 0;  // 0: the newest entry in effect
  bool force = false;
};
struct RecoverCommand {
  bool abort = false;
};
struct GcCommand {
  std::optional<uint64_t> keep;
  std::optional<uint64_t> max_bytes;
};

using Command = std::variant<HelpCommand, VersionCommand, ShowCommand, ExecCommand, InitCommand,
                             LogCommand, DiffCommand, UndoCommand, RecoverCommand, GcCommand>;

// args excludes the program name.
Result<Command> parse(const std::vector<std::string>& args);

// "16M" -> 16777216. Suffixes K, M, G (powers of 1024).
Result<size_t> parse_size(const std::string& text);

extern const char kUsage[];

}  // namespace bsandbox::cli
