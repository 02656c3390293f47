// exec_command.h: `bsandbox exec`, from options to exit code.
//
// Checks the outputs can be written (before anything runs), opens the
// backend, supervises the command, assembles the record, writes it
// atomically, reports what made it incomplete, and returns the command's
// exit code (128+N for signal N). bsandbox's own failures exit 125; a
// command that cannot be found exits 127 and one that cannot be run 126, as
// in a shell, and the record is still written.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/report.h"

namespace bsandbox {

struct ExecOptions {
  std::vector<std::string> argv;
  std::optional<std::string> json_path;
  std::optional<std::string> record_path;
  std::string backend = "auto";  // auto | ebpf | ptrace
  // Run through bsandboxd at this socket (--agent[=SOCKET]). Without it,
  // auto for a non-root user uses a running agent if it can reach one.
  std::optional<std::string> agent;
  bool strict = false;           // an incomplete record is an error
  bool verbose = false;
  bool quiet = false;
  size_t buffer_bytes = 16 << 20;
  // Inside a project (bsandbox init): journal the run (journaled_run.h).
  bool no_journal = false;   // trace only, even inside a project
  bool no_rollback = false;  // do not roll back this command's previous run first
  bool force = false;        // roll back even over later changes (keeping them)
  bool contain = false;      // nothing outside the project changes (overlay_view.h)
  bool trust_owner = false;  // work in another user's project (project.h)
  // The command cache (cache.h): --cache[=DIR].
  std::optional<std::string> cache_dir;
  std::optional<std::string> cache_root;  // outputs must lie under it (default: project root, else cwd)
  bool cache_failures = false;            // store runs that exit non-zero
  bool cache_allow_network = false;       // store runs that reached other sockets
  std::string cache_key_file;             // a shared cache's secret (--cache-key, $BSANDBOX_CACHE_KEY)
  std::vector<std::string> unkeyed_listings;  // --cache-unkeyed-listing DIR (relative to the root)
  bool explain = false;                   // say why the cache missed
  // A remote cache behind the local one (sandbox/remote): --cache-remote
  // URL, else $BSANDBOX_CACHE_REMOTE; the others likewise.
  std::string cache_remote;
  bool cache_remote_upload = true;           // --cache-remote-upload=no: read-only
  bool cache_remote_prefetch = true;         // --cache-remote-prefetch=no: no fetching ahead
  std::string cache_remote_key_file;         // entries signed with, and checked against, this secret
  std::string cache_remote_credentials_file; // "Bearer TOKEN" or "USER:PASSWORD"
  // bsandbox-wrap: run the command untraced when it cannot be cached, and
  // say nothing but errors.
  bool wrapper = false;
};

int run_exec(const ExecOptions& options);

// Replaces bsandbox with argv (PATH searched), stdin from stdin_fd if >= 0;
// returns 127 or 126 (with a line on stderr) if it cannot.
int exec_directly(const std::vector<std::string>& argv, int stdin_fd = -1);

}  // namespace bsandbox
