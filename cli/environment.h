// environment.h: the defaults bsandbox takes from its environment, read
// here and passed down, so that the libraries read no variables of their
// own (but three test knobs).
//
//   BSANDBOX_CACHE        the cache directory (else $XDG_CACHE_HOME/bsandbox,
//                         else ~/.cache/bsandbox)
//   BSANDBOX_CACHE_SIZE   the size a cache is kept to ("5G"; else 10 GiB)
//   BSANDBOX_AGENT        bsandboxd's socket (else /run/bsandbox/agent.sock)
//   BSANDBOX_CACHE_REMOTE, BSANDBOX_CACHE_REMOTE_UPLOAD (yes|no),
//   BSANDBOX_CACHE_REMOTE_PREFETCH (yes|no),
//   BSANDBOX_CACHE_REMOTE_KEY (a file), BSANDBOX_CACHE_REMOTE_CREDENTIALS
//   (a file), BSANDBOX_CACHE_REMOTE_TOKEN (a bearer token itself): a remote
//   cache, for the options of exec and wrap left unset
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/remote/remote_cache.h"

namespace bsandbox {

std::string default_cache_dir();
uint64_t default_cache_max_bytes();
std::string default_agent_socket();

struct ExecOptions;
// Fills o's remote cache options that the command line left unset from
// the environment; an error for a BSANDBOX_CACHE_REMOTE_UPLOAD or _PREFETCH
// that is neither yes nor no.
Result<void> remote_defaults(ExecOptions& o);
// The remote cache o asks for, with its key and credentials read, or
// nullopt when none is. An error names the file or value at fault.
Result<std::optional<RemoteOptions>> remote_options(const ExecOptions& o);

// bsandbox's own files that a run's wrappers read, absolute and with
// symlinks resolved as a record names them: the cache directories and the
// key and credential files, from o (relative to cwd) and the environment the
// run inherits. A cached run keys on none of them (CacheRequest::private_paths).
std::vector<std::string> private_paths(const ExecOptions& o, const std::string& cwd);

}  // namespace bsandbox
