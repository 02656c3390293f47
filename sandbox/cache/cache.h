// cache.h: the command cache: a command whose observed inputs are unchanged
// is not run again; its outputs, stdout, stderr and exit code come back from
// a content-addressed store.
//
// Keys come in two phases. The weak key (argv, cwd relative to the root,
// environment, the executable's content, stdin) names a directory of
// entries; each entry lists the paths the run observed before it changed
// anything (a file's content, a path's metadata, a directory's listing, a
// name's absence) with their state then. An entry hits when every one of
// them looks the same now. What the run observed is taken from its
// provenance record and from the order of its accesses (classify()): a path
// whose first access was a create is the run's own, not an input.
//
// Layout of the cache directory:
//   format             "bsandbox-cache 1"
//   objects/ab/cdef..  file contents by SHA-256 (store.h), verified when read
//   entries/ab/WEAK/STRONG   framed CacheEntry protobufs (cache.proto)
//   hashes/KEY         SHA-256 of a file by (dev, inode, size, mtime, ctime)
//   stats              counters
//   remote             a remote cache's health (sandbox/remote/health.h)
//   uploads/           entries waiting to be uploaded (sandbox/remote/spool.h)
//   lock               flock: shared while looking up, restoring or saving;
//                      exclusive for gc, verify and clear
// Every file is written under a temporary name and renamed, so concurrent
// bsandbox processes (make -j) storing the same thing both succeed and a
// reader sees whole files. Nothing is fsynced: an object or entry damaged by
// a crash fails its checksum and is a miss plus a warning, never a wrong
// output.
//
// The part's modules, in the order a command meets them: key.h (the weak
// key, before it runs), look.h (a path as it is now against an entry's
// inputs; the hash memo), snapshot.h (the look before a miss runs),
// classify.h (a finished run's inputs and products), save.h (the entry a
// run is stored as), entry.h (entries on disk, sealed or signed),
// restore.h (a hit's outputs put back), maintain.h (usage, gc, verify).
// Cache ties them together under the lock.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/cache/classify.h"
#include "sandbox/cache/key.h"
#include "sandbox/cache/look.h"
#include "sandbox/cache/maintain.h"
#include "sandbox/cache/request.h"
#include "sandbox/core/provenance.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

struct CacheDirs;
struct StoredEntry;
namespace pb {
class CacheEntry;
}  // namespace pb

struct CacheStats {
  uint64_t hits = 0, misses = 0, stored = 0, uncacheable = 0, damaged = 0;
  uint64_t saved_ns = 0;         // run time of the commands that hit
  uint64_t bytes_since_gc = 0;   // stored since the last gc
  // A remote cache's (sandbox/remote): hits that came from it (counted in
  // hits too), lookups it missed, entries uploaded, bytes each way, and
  // requests that failed (the server down, slow, or answering garbage).
  uint64_t remote_hits = 0, remote_misses = 0, remote_uploads = 0;
  uint64_t remote_bytes_down = 0, remote_bytes_up = 0, remote_errors = 0;
  uint64_t remote_prefetched = 0;  // entries a build's manifest brought ahead
};

class Cache {
 public:
  // Opens (creating if needed) the cache directory. A directory others can
  // write (owned by another user, or group- or world-writable) is refused
  // unless a key is given: then every entry (and remembered hash) is signed
  // with HMAC-SHA256 under it, and one without a valid signature is ignored.
  static Result<Cache> open(const std::string& dir, const std::string& key = {});
  const std::string& dir() const { return dir_; }

  // The weak key of argv run in cwd; hashes the executable, reads stdin if
  // it is a closed pipe or a file, and keys the other descriptors the
  // command inherits (a file open for reading by its content; one open for
  // writing, or a pipe, makes it uncacheable).
  // unkeyed_listings: see CacheRequest (absolute); part of the key.
  // allow_network: see SocketPolicy (part of the key).
  CacheRequest prepare(const std::vector<std::string>& argv, const std::string& cwd,
                       const std::string& root, char** envp, bool cache_failures,
                       std::vector<std::string> unkeyed_listings = {}, bool allow_network = false);

  struct Hit {
    std::string entry_name;
    Digest weak, strong;  // the entry's
    int exit_code = 0;
    int64_t run_ns = 0;
    std::string out, err;  // to replay
    std::string record;    // the stored run's provenance record (protobuf)
    std::string root;      // the root it ran under (its paths name it)
    size_t outputs = 0;
  };
  // Finds an entry whose inputs all match and restores its outputs under
  // the root. No hit: nullopt, with *why saying why (for --explain), and
  // req.before filled for save(). A damaged entry or object is a miss and a
  // warning (in *warnings); it is removed so the run that follows stores a
  // good one.
  Result<std::optional<Hit>> fetch(CacheRequest& req, std::string* why, std::vector<std::string>* warnings);

  // Stores a finished run (a miss) if it can be cached. out/err are files
  // holding what it printed. Returns "" when stored, else why not; the
  // entry stored goes to *stored if given (for a remote cache to upload).
  Result<std::string> save(const CacheRequest& req, const Record& rec, const PriorOf& prior, int out, int err,
                           int64_t run_ns, pb::CacheEntry* stored = nullptr);

  // Writes an entry found elsewhere (a remote cache) whose objects the
  // store already holds, so that the next fetch() finds it. The caller has
  // checked where it came from; the local entry is sealed (or signed) as
  // this cache's own are.
  Result<void> adopt(const pb::CacheEntry& e);
  // The cache's objects (a remote cache reads what it uploads from here and
  // puts what it downloads here, each checked against its digest).
  Store& store() { return store_; }
  // A small file of the cache directory for state kept beside the counters
  // (a remote cache's health), opened read-write, created if missing.
  UniqueFd state_file(const char* name);
  // A subdirectory of the cache directory for state kept beside it (a
  // remote cache's upload spool), created if missing.
  Result<UniqueFd> state_dir(const char* name);
  // The entry stored under weak/strong (an upload reads it back), checked
  // as a lookup checks it.
  Result<pb::CacheEntry> entry(const Digest& weak, const Digest& strong);
  // The hashes of files the cache remembers (look.h).
  HashMemo memo() const { return HashMemo(hashes_.get(), key_); }
  // Whether its entries are signed (a shared cache, --cache-key).
  bool signed_entries() const { return !key_.empty(); }


  // Counters (hits, misses, ...) kept in the stats file.
  // kGc resets the bytes stored since the last gc. Returns the counters
  // after the update.
  enum class Event {
    kHit, kMiss, kStored, kUncacheable, kDamaged, kGc,
    kRemoteHit, kRemoteMiss, kRemoteUpload, kRemoteBytesDown, kRemoteBytesUp, kRemoteError, kRemotePrefetched,
    kObjectsAdded  // n bytes of objects stored apart from an entry (a remote's blobs): toward the next gc
  };
  CacheStats count(Event e, uint64_t n = 0);
  CacheStats counters();

  using Usage = CacheUsage;
  Result<Usage> usage();
  // Removes least recently used entries until the cache holds at most
  // max_bytes, then every object no entry refers to. Returns a summary.
  Result<std::string> gc(uint64_t max_bytes);
  // Reads every entry and object; removes damaged ones. Returns a summary
  // and sets *damaged.
  Result<std::string> verify(uint64_t* damaged);
  Result<void> clear();

  // The size the cache is kept to when a store fills it (gc), unless the
  // caller sets another (cli: $BSANDBOX_CACHE_SIZE).
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{10} << 30;
  void set_max_bytes(uint64_t n) { max_bytes_ = n; }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  Cache(std::string dir, UniqueFd dir_fd, UniqueFd entries, UniqueFd hashes, Store store)
      : dir_(std::move(dir)), dir_fd_(std::move(dir_fd)), entries_(std::move(entries)),
        hashes_(std::move(hashes)), store_(std::move(store)) {}

  Result<UniqueFd> lock(int how, bool wait = true);
  CacheDirs dirs();
  Result<std::optional<Hit>> use(int weak_dir, const StoredEntry& c, const std::string& shown, const std::string& weak,
                                 const std::string& root, std::string* why, std::vector<std::string>* warnings);

  std::string dir_;
  std::string real_dir_;  // dir_ with symlinks resolved, as records name it
  std::string key_;       // a shared cache's secret; empty for a private cache
  mode_t dir_mode_ = 0755;  // of what it makes (a shared cache's: its directory's)
  UniqueFd dir_fd_, entries_, hashes_;
  Store store_;
  uint64_t max_bytes_ = kDefaultMaxBytes;
};


// A shared cache's secret, from a file (not readable by every user, at
// least 16 bytes; a trailing newline is not part of it).
Result<std::string> load_cache_key(const std::string& path);

}  // namespace bsandbox
