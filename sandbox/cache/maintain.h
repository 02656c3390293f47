// maintain.h: keeping a cache directory in bounds and sound: what it holds
// (usage), removing the least recently used entries down to a size and every
// object no entry refers to (gc), and reading everything back to remove what
// is damaged (verify). The caller holds the cache's lock exclusively (a
// lookup or a store running meanwhile would see entries vanish under it).
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/base/result.h"
#include "sandbox/cache/look.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

// What a cache holds.
struct CacheUsage {
  uint64_t entries = 0, objects = 0, bytes = 0;
};

// What maintenance works on: the cache's entries/ and objects/.
struct CacheDirs {
  std::string shown;     // the cache directory, printable, for messages
  int entries_fd = -1;   // entries/ (not owned)
  std::string key;       // a shared cache's secret (entries signed with it)
  Store* store = nullptr;
};

Result<CacheUsage> measure_usage(const CacheDirs& dirs);

// Removes damaged entries, then least recently used entries (by the entry
// file's mtime, which a hit touches) until the cache holds at most max_bytes
// (down to 90% of it, so the next few stores do not trigger another gc at
// once), then every object no remaining entry refers to (left by a run that
// failed before writing its entry, or by the entries removed), the empty
// key directories and the hash memos (memo.forget_all). Returns a summary.
Result<std::string> collect_garbage(const CacheDirs& dirs, const HashMemo& memo, uint64_t max_bytes);

// Reads every object (removing those that fail their hash) and every entry
// (removing those that do not parse, fail their checksum or refer to a
// missing or damaged object). Returns one line per removal and a summary;
// *damaged counts both.
Result<std::string> verify_all(const CacheDirs& dirs, uint64_t* damaged);

}  // namespace bsandbox
