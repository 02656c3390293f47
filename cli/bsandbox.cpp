// bsandbox.cpp: the `bsandbox` executable: parse the command line, run the
// subcommand, exit with its code.
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/options.h"
#include "cli/report.h"
#include "sandbox/agent/client.h"
#include "sandbox/storage/atomic_file.h"
#include "cli/cache_commands.h"
#include "cli/exec_command.h"
#include "sandbox/export/export.h"
#include "cli/journal_commands.h"
#include "sandbox/core/provenance.h"
#include "sandbox/export/record_printer.h"

#ifndef BSANDBOX_VERSION
#define BSANDBOX_VERSION "unknown"
#endif

namespace {

// `bsandbox agent status`: the agent's state, or one error line.
int agent_status(const std::string& socket) {
  auto status = bsandbox::agent_status(socket);
  if (!status) return bsandbox::error_exit(status.error().message);
  std::fputs(bsandbox::format_agent_status(socket, *status).c_str(), stdout);
  return std::fflush(stdout) == 0 ? 0 : bsandbox::kExitOwnError;
}

int show(const std::string& path) {
  auto bytes = bsandbox::read_input(path);
  if (!bytes) return bsandbox::error_exit(bytes.error().message);
  auto record = bsandbox::from_protobuf(*bytes, path);
  if (!record) return bsandbox::error_exit(record.error().message);
  std::string text = bsandbox::print_tree(*record);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : bsandbox::kExitOwnError;
}

// Reads every record first (a bad one fails before anything is written),
// then writes the export atomically (or to stdout).
int run_export(const bsandbox::cli::ExportCommand& c) {
  auto error = [](const std::string& m) { return bsandbox::error_exit(m); };
  std::vector<bsandbox::NamedRecord> records;
  std::map<std::string, int> seen;
  for (const auto& path : c.records) {
    auto bytes = bsandbox::read_input(path);
    if (!bytes) return error(bytes.error().message);
    auto record = bsandbox::from_protobuf(*bytes, path);
    if (!record) return error(record.error().message);
    std::string name = path.substr(path.rfind('/') + 1);
    if (int n = seen[name]++) name += "#" + std::to_string(n + 1);  // labels must differ
    records.push_back({name, std::move(*record)});
  }
  std::string text = c.format == "chrome-trace" ? bsandbox::to_chrome_trace(records)
                     : c.format == "html"       ? bsandbox::to_html(records.front())
                                                : bsandbox::to_prometheus(records);
  if (!c.output || *c.output == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : error("writing to stdout failed");
  }
  auto out = bsandbox::AtomicFile::create(*c.output);
  if (!out) return error(out.error().message);
  if (auto w = out->commit(text); !w) return error(w.error().message);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Installed as bsandbox-wrap (a link to bsandbox) it is the launcher.
  std::string_view self = argc > 0 ? argv[0] : "";
  if (self.substr(self.rfind('/') + 1) == "bsandbox-wrap") args.insert(args.begin(), "wrap");
  auto command = bsandbox::cli::parse(args);
  if (!command) return bsandbox::error_exit(command.error().message);
  if (std::holds_alternative<bsandbox::cli::HelpCommand>(*command)) {
    std::fputs(bsandbox::cli::kUsage, stdout);
    return 0;
  }
  if (std::holds_alternative<bsandbox::cli::VersionCommand>(*command)) {
    std::printf("bsandbox %s\n", BSANDBOX_VERSION);
    return 0;
  }
  namespace cli = bsandbox::cli;
  if (auto* s = std::get_if<cli::ShowCommand>(&*command)) return show(s->record);
  if (auto* c = std::get_if<cli::InitCommand>(&*command)) return bsandbox::run_init(c->dir, c->trust_owner);
  if (auto* c = std::get_if<cli::LogCommand>(&*command)) return bsandbox::run_log(c->trust_owner);
  if (auto* c = std::get_if<cli::DiffCommand>(&*command)) return bsandbox::run_diff(c->entry, c->trust_owner);
  if (auto* c = std::get_if<cli::UndoCommand>(&*command))
    return bsandbox::run_undo(c->entry, c->force, c->trust_owner);
  if (auto* c = std::get_if<cli::RecoverCommand>(&*command)) return bsandbox::run_recover(c->abort, c->trust_owner);
  if (auto* c = std::get_if<cli::GcCommand>(&*command))
    return bsandbox::run_gc(c->keep, c->max_bytes, c->trust_owner);
  if (auto* c = std::get_if<cli::CacheCommand>(&*command))
    return bsandbox::run_cache_command(c->action, c->dir, c->max_bytes, c->key_file);
  if (auto* c = std::get_if<cli::WrapCommand>(&*command)) return bsandbox::run_wrap(c->argv);
  if (auto* c = std::get_if<cli::AgentCommand>(&*command)) return agent_status(c->socket);
  if (auto* c = std::get_if<cli::ExportCommand>(&*command)) return run_export(*c);
  return bsandbox::run_exec(std::get<cli::ExecCommand>(*command).options);
}
