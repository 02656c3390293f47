// key.h: the weak key, what a command about to run is keyed on before it
// runs: its argv, its cwd (relative to the root, so another checkout shares
// entries), the environment less what differs between identical invocations,
// its program's content, its stdin, and the descriptors it inherits. Both
// stdin and inherited descriptors are inputs the tracer does not see as
// paths (`cmd <file`, `cmd 3<file`): what they hold is read and keyed here,
// or the command is uncacheable. The weak key names a directory of entries;
// each entry's inputs (look.h) make its strong key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/unique_fd.h"
#include "sandbox/cache/look.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

// The environment as the weak key sees it: sorted, without variables that
// differ between identical invocations (_, PWD, OLDPWD, SHLVL, BSANDBOX_*,
// make's terminal names) and with MAKEFLAGS normalised (keyed_makeflags).
std::vector<std::string> keyed_environment(char** envp);
std::string keyed_makeflags(std::string_view value);

// path relative to root ("" for root itself), given path is within it.
std::string root_relative(std::string_view path, std::string_view root);

struct WeakKey {
  Digest digest;
  std::string uncacheable;  // why the command cannot be cached, or ""
  // stdin was a pipe already closed by its writer: its content, which the
  // command reads from here instead (CacheRequest::stdin_replacement).
  UniqueFd stdin_replacement;
};

// The weak key of argv run in cwd under root with envp. unkeyed_listings
// (sorted, absolute) and allow_network are part of it (CacheRequest). The
// program is hashed through memo. Reads stdin if it is a finished pipe.
WeakKey weak_key(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root, char** envp,
                 const std::vector<std::string>& unkeyed_listings, bool allow_network, const HashMemo& memo);

}  // namespace bsandbox
