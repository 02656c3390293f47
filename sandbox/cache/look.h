// look.h: what the cache sees of a path, and whether it still matches.
//
// An entry stores, for each input, the aspects the run depended on (its
// content, metadata, listing, absence...) as they were; a lookup looks at
// each path again (look()) and compares (mismatch()). A file's content is
// hashed through HashMemo, which remembers a file's SHA-256 by (dev, inode,
// size, mtime, ctime), so an unchanged input is not read on every lookup.
// Modification times are keyed in two ways: as themselves (kAspectMtime, a
// path only stat'ed), or by their order (kAspectOrder, kAspectPlace):
// TimeOrder gives each time its place among the entry's ordered times and
// the run's start, and a hit needs the same places, not the same times (a
// touch of everything, or a rebuild that rewrote inputs in the same order,
// still hits).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/storage/file_state.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

namespace pb {
class CacheEntry;
class CacheInput;
}  // namespace pb

// What an input must still look like.
enum Aspect : uint32_t {
  kAspectContent = 1,  // a file's bytes (a non-file: its kind)
  kAspectMeta = 2,     // kind, permission bits, a file's size, a symlink's target and
                       // what it resolves to (kind, permission bits, size)
  kAspectListing = 4,  // the names in a directory
  kAspectAbsent = 8,   // that nothing is there
  kAspectPresent = 16, // that something is there, whatever it is
  kAspectMtime = 32,   // the modification time itself (a path only stat'ed)
  kAspectOrder = 64,   // where the modification time falls among the entry's
                       // other ordered inputs and the run's start
  kAspectPlace = 128,  // where it falls among those (kAspectOrder) alone, not
                       // against other placed inputs (files the run read)
};

// What a look at a path found (Cache keys on it).
struct PathState {
  FileKind kind = FileKind::kAbsent;
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  std::optional<Digest> content;   // kAspectContent
  std::vector<std::string> names;  // kAspectListing: sorted
  std::string target;              // a symlink's, with kAspectMeta
  // A symlink looked at with kAspectMeta: what stat() through it finds.
  FileKind resolved_kind = FileKind::kAbsent;
  uint32_t resolved_mode = 0;
  uint64_t resolved_size = 0;
  int64_t resolved_mtime_ns = 0, resolved_ctime_ns = 0;
};

// Adds s to h with its length first, so that ("ab","c") and ("a","bc")
// hash differently: every digest the cache makes of several strings.
void hash_field(Hasher& h, std::string_view s);
int64_t ns_of(const timespec& t);
// A symlink's whole target; an error names the path printable().
Result<std::string> link_target(const std::string& path);

// A file's SHA-256, remembered in the directory hashes_fd (the cache's
// hashes/, not owned) under a name made of (dev, inode, size, mtime,
// ctime): a write changes mtime and ctime, and ctime cannot be set back. A
// file changed in the last two seconds is not remembered, since two writes
// within one tick of a coarse clock leave the same times. With a key (a
// shared cache) a memo is signed: one planted by another user would make a
// changed file pass for its old content.
class HashMemo {
 public:
  HashMemo(int hashes_fd, std::string key) : dir_(hashes_fd), key_(std::move(key)) {}
  // fd's content hash; st is fd's stat, what names it in messages.
  Result<Digest> hash(int fd, const struct stat& st, const std::string& what) const;
  // The memo's file name for a file with this stat.
  static std::string name_of(const struct stat& st);
  // Forgets every memo (gc: they are rebuilt as files are seen again).
  void forget_all() const;

 private:
  int dir_;
  std::string key_;
};

// path as it is now, as far as aspects ask (content hashed with memo, a
// listing read, a symlink's target and what stat() through it finds). A
// missing path is a state (kAbsent), not an error.
Result<PathState> look(const std::string& path, uint32_t aspects, const HashMemo& memo);

// The modification time stat() shows: through a symlink, its target's.
int64_t time_of(const PathState& s);
// Whether a modification time can be keyed: a directory's changes with
// every name made in it (an object file written next to others), so that
// keying it would make every command that looks at a build directory miss
// after a rebuild; a missing path has none.
bool has_keyed_time(const PathState& s);
// The digest of a directory's (sorted) names.
Digest listing_digest(const std::vector<std::string>& names);
// Dense ranks of times: equal times share a rank, a later time has a
// higher one.
std::vector<uint32_t> dense_ranks(const std::vector<int64_t>& times);

// The times an entry keys by order: those of its kAspectOrder inputs and
// its start (the frame), and those of its kAspectPlace inputs, each placed
// in the frame alone. A place is 2i+1 on the frame's i-th distinct time, 2i
// between the (i-1)-th and the i-th (0 before all): equal places, the same
// comparisons with every time of the frame.
struct TimeOrder {
  struct Item {
    int64_t time;
    bool framed;       // kAspectOrder (or the start): part of the frame
    std::string path;  // "" for the start
  };
  std::vector<Item> items;

  std::vector<uint32_t> places() const;
  // "" if the items' places now are the stored ones; else one pair (not
  // two placed items: their order is not keyed) whose comparison changed.
  std::string changed(const std::vector<uint32_t>& stored) const;
};

// Where a stored input is under root (one inside the root is stored
// relative to it).
std::string input_path(const pb::CacheInput& in, const std::string& root);

// A stored input against the path's state now: "" if it matches, else
// what differs ("PATH: content changed", "PATH was removed", ...).
std::string mismatch(const pb::CacheInput& in, const std::string& path, const PathState& now);

// Why entry e would not hit under root now: it names another root, an
// input changed, or the order of their times did; "" if it hits. Each input
// is looked at again (with memo); the run's start is now.
std::string entry_mismatch(const pb::CacheEntry& e, const std::string& root, const HashMemo& memo);

}  // namespace bsandbox
