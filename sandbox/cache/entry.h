// entry.h: a cache entry on disk, and why it is believed.
//
// An entry is a CacheEntry protobuf (cache.proto) in a file
// entries/WW/WEAK/STRONG. A private cache's entries are sealed ("BSC1" +
// SHA-256 + payload), so that a crash or a flipped byte is found; a shared
// cache's are signed ("BSM1" + HMAC-SHA256(key, payload) + payload), so that
// one planted by another writer of the directory is not believed. An entry
// of the other kind (signed in a private cache, unsigned or signed under
// another key in a shared one) is foreign: skipped and left alone, since it
// may be someone else's, never counted as damaged. The hash memos of a
// shared cache are signed with the same HMAC (look.h).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

// HMAC-SHA256 of data under key (32 bytes).
std::string hmac(const std::string& key, std::string_view data);
// Whether two secrets are equal, in a time that does not tell where they
// differ.
bool same_secret(std::string_view a, std::string_view b);

// An entry's bytes on disk: sealed when key is empty, else signed with it.
std::string seal_entry(const std::string& key, std::string_view payload);

// The payload of bytes sealed or signed as an entry is (seal_entry), checked
// as read_entry checks it; noun says what it holds ("cache entry").
Result<std::string_view> open_sealed(std::string_view bytes, const std::string& shown, const std::string& key,
                                     std::string_view noun, bool* foreign);
// An entry's bytes (as seal_entry made them), checked and parsed.
Result<pb::CacheEntry> parse_entry(std::string_view bytes, const std::string& shown, const std::string& key,
                                   bool* foreign);

// The entry file dirfd/name, checked and parsed: its signature under key (a
// shared cache), else its checksum. shown names it in messages. *foreign is
// set for an entry of the other kind (see above): an error, but not damage.
Result<pb::CacheEntry> read_entry(int dirfd, const std::string& name, const std::string& shown,
                                  const std::string& key, bool* foreign);

// Writes e as entries_fd/WW/WEAK/STRONG (the shard and weak directories
// made with dir_mode if missing), under a temporary name and renamed.
// Returns the bytes written.
Result<uint64_t> write_entry(int entries_fd, const Digest& weak, const Digest& strong, const pb::CacheEntry& e,
                             const std::string& key, mode_t dir_mode);

// An entry as found on disk.
struct StoredEntry {
  std::string name;  // its file name (its strong key)
  std::string rel;   // under entries/
  pb::CacheEntry entry;
};

// Visits every entry under entries_fd (shown_dir names the cache in
// messages): its path under entries/, its stat, and the entry or why it is
// damaged. Temporaries and foreign entries are not visited; shards and weak
// directories that cannot be read are skipped.
using EntryVisitor =
    std::function<void(const std::string& rel, const struct stat& st, const Result<StoredEntry>& entry)>;
Result<void> walk_entries(int entries_fd, const std::string& shown_dir, const std::string& key,
                          const EntryVisitor& visit);

// dirfd/name read whole, not following a symlink.
Result<std::string> read_at(int dirfd, const std::string& name, std::string_view what);
// dirfd/name as a directory, not following a symlink; with create, made
// with mode if missing.
Result<UniqueFd> open_dir_at(int dirfd, const std::string& name, std::string_view what, bool create,
                             mode_t mode = 0755);

}  // namespace bsandbox
