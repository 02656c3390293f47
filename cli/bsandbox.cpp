// bsandbox.cpp: the `bsandbox` executable: parse the command line, run the
// subcommand, exit with its code.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/options.h"
#include "sandbox/atomic_file.h"
#include "sandbox/exec_command.h"
#include "sandbox/provenance.h"
#include "sandbox/record_printer.h"

#ifndef BSANDBOX_VERSION
#define BSANDBOX_VERSION "unknown"
#endif

namespace {

int show(const std::string& path) {
  auto bytes = bsandbox::read_file(path == "-" ? "/dev/stdin" : path);
  if (!bytes) {
    std::fprintf(stderr, "bsandbox: error: %s\n", bytes.error().message.c_str());
    return bsandbox::kExitOwnError;
  }
  auto record = bsandbox::from_protobuf(*bytes, path);
  if (!record) {
    std::fprintf(stderr, "bsandbox: error: %s\n", record.error().message.c_str());
    return bsandbox::kExitOwnError;
  }
  std::string text = bsandbox::print_tree(*record);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : bsandbox::kExitOwnError;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto command = bsandbox::cli::parse(args);
  if (!command) {
    std::fprintf(stderr, "bsandbox: error: %s\n", command.error().message.c_str());
    return bsandbox::kExitOwnError;
  }
  if (std::holds_alternative<bsandbox::cli::HelpCommand>(*command)) {
    std::fputs(bsandbox::cli::kUsage, stdout);
    return 0;
  }
  if (std::holds_alternative<bsandbox::cli::VersionCommand>(*command)) {
    std::printf("bsandbox %s\n", BSANDBOX_VERSION);
    return 0;
  }
  if (auto* s = std::get_if<bsandbox::cli::ShowCommand>(&*command)) return show(s->record);
  return bsandbox::run_exec(std::get<bsandbox::cli::ExecCommand>(*command).options);
}
