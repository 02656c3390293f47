// request.h: a command about to run, as the cache sees it: what prepare()
// fills in (the weak key, stdin, what makes it uncacheable) and a lookup
// that missed adds to (the state before the run of what it may replace).
// Apart from cache.h so that the steps (save.h) need not include the Cache.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/base/unique_fd.h"
#include "sandbox/cache/classify.h"
#include "sandbox/cache/look.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

// A command about to run, as the cache sees it.
struct CacheRequest {
  std::vector<std::string> argv;
  std::string cwd;   // absolute
  std::string root;  // absolute; outputs must lie under it
  Digest weak;
  bool cache_failures = false;  // store runs that exit non-zero too
  // Directories whose listing is not keyed (absolute): the caller asserts
  // that which other files they hold does not change the command's result
  // (rustc's -L dependency=target/debug/deps, filled in parallel by cargo).
  std::vector<std::string> unkeyed_listings;
  std::string uncacheable;  // set when the command cannot be cached at all
  SocketPolicy sockets;
  // bsandbox's own files that wrappers inside the command read (absolute):
  // other cache directories, key and credential files. Neither inputs nor
  // products: a secret's SHA-256 would go into entries, and be uploaded.
  std::vector<std::string> private_paths;
  // When stdin was a pipe already closed by its writer, its content was read
  // (it is part of the key) and the command reads it from this file instead.
  UniqueFd stdin_replacement;
  // Filled by a lookup that missed, before the command runs: the state of
  // the paths the command may look at and then replace (its earlier runs'
  // outputs, the paths its arguments name), by absolute path.
  std::unordered_map<std::string, PathState> before;
};

}  // namespace bsandbox
