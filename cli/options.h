// options.h: the command line of `bsandbox`, parsed into what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cli/exec_command.h"
#include "sandbox/base/result.h"
#include "sandbox/base/text.h"

namespace bsandbox::cli {

struct HelpCommand {};
struct VersionCommand {};
struct ShowCommand {
  std::string record;
};
struct ExecCommand {
  ExecOptions options;
};
// The journal of a project (history.h). Each takes --trust-owner: work in
// another user's project (project.h, act_as_owner).
struct InitCommand {
  std::string dir = ".";
  bool trust_owner = false;
};
struct LogCommand {
  bool trust_owner = false;
};
struct DiffCommand {
  uint64_t entry = 0;
  bool trust_owner = false;
};
struct UndoCommand {
  uint64_t entry = 0;  // 0: the newest entry in effect
  bool force = false;
  bool trust_owner = false;
};
struct RecoverCommand {
  bool abort = false;
  bool trust_owner = false;
};
struct GcCommand {
  std::optional<uint64_t> keep;
  std::optional<uint64_t> max_bytes;
  bool trust_owner = false;
};

// The command cache: bsandbox cache stats|gc|verify|clear.
struct CacheCommand {
  std::string action;
  std::string dir;  // default_cache_dir() unless --cache=DIR
  std::optional<uint64_t> max_bytes;
  std::string key_file;  // --cache-key, else $BSANDBOX_CACHE_KEY
};
// bsandbox wrap COMMAND... (or bsandbox-wrap COMMAND...): a compiler
// launcher, RUSTC_WRAPPER or make SHELL that caches each command.
struct WrapCommand {
  std::vector<std::string> argv;
};

// bsandbox export --format=FORMAT RECORD... [-o FILE].
struct ExportCommand {
  std::string format;
  std::vector<std::string> records;
  std::optional<std::string> output;  // default: stdout
};
// bsandbox agent status: bsandboxd's jobs and health.
struct AgentCommand {
  std::string socket;
};

using Command = std::variant<HelpCommand, VersionCommand, ShowCommand, ExecCommand, InitCommand,
                             LogCommand, DiffCommand, UndoCommand, RecoverCommand, GcCommand,
                             CacheCommand, WrapCommand, AgentCommand, ExportCommand>;

// args excludes the program name.
Result<Command> parse(const std::vector<std::string>& args);

using bsandbox::parse_size;

extern const char kUsage[];

}  // namespace bsandbox::cli
