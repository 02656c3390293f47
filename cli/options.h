// options.h: the command line of `bsandbox`, parsed into what to do.
#pragma once

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

using Command = std::variant<HelpCommand, VersionCommand, ShowCommand, ExecCommand>;

// args excludes the program name.
Result<Command> parse(const std::vector<std::string>& args);

// "16M" -> 16777216. Suffixes K, M, G (powers of 1024).
Result<size_t> parse_size(const std::string& text);

extern const char kUsage[];

}  // namespace bsandbox::cli
