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
//   lock               flock: shared while looking up, restoring or saving;
//                      exclusive for gc, verify and clear
// Every file is written under a temporary name and renamed, so concurrent
// bsandbox processes (make -j) storing the same thing both succeed and a
// reader sees whole files. Nothing is fsynced: an object or entry damaged by
// a crash fails its checksum and is a miss plus a warning, never a wrong
// output.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/file_state.h"
#include "sandbox/provenance.h"
#include "sandbox/result.h"
#include "sandbox/store.h"
#include "sandbox/unique_fd.h"

namespace bsandbox {

// What an input must still look like.
enum Aspect : uint32_t {
  kAspectContent = 1,  // a file's bytes (a non-file: its kind)
  kAspectMeta = 2,     // kind, permission bits, a file's size, a symlink's target
  kAspectListing = 4,  // the names in a directory
  kAspectAbsent = 8,   // that nothing is there
};

struct ObservedInput {
  std::string path;  // absolute
  uint32_t aspects = 0;
};

// A path the run created, wrote or removed.
struct Produced {
  std::string path;  // absolute
  bool existed_before = false;
  bool in_root = false;
};

struct Classified {
  std::vector<ObservedInput> inputs;  // sorted by path
  std::vector<Produced> produced;     // sorted by path
  std::string uncacheable;            // why not, or empty
};

// Splits a finished run's accesses into inputs and products. first_ops(path)
// gives the ops of the run's first access to path (ProcessTree::first_ops).
// Paths under /dev are neither. A path read before the run wrote it makes
// the run uncacheable (its input was its own output).
// Paths under ignored (the cache's own directory, which a cached command
// nested in another one reads and writes) are neither.
Classified classify(const Record& rec, const std::function<OpSet(const std::string&)>& first_ops,
                    std::string_view root, std::string_view ignored = {});

// The environment as the weak key sees it: sorted, without variables that
// differ between identical invocations (_, PWD, OLDPWD, SHLVL, BSANDBOX_*,
// make's terminal names) and with MAKEFLAGS normalised (keyed_makeflags).
std::vector<std::string> keyed_environment(char** envp);
std::string keyed_makeflags(std::string_view value);

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
  // When stdin was a pipe already closed by its writer, its content was read
  // (it is part of the key) and the command reads it from this file instead.
  UniqueFd stdin_replacement;
};

struct CacheStats {
  uint64_t hits = 0, misses = 0, stored = 0, uncacheable = 0, damaged = 0;
  uint64_t saved_ns = 0;         // run time of the commands that hit
  uint64_t bytes_since_gc = 0;   // stored since the last gc
};

class Cache {
 public:
  // Opens (creating if needed) the cache directory.
  static Result<Cache> open(const std::string& dir);
  const std::string& dir() const { return dir_; }

  // The weak key of argv run in cwd; hashes the executable and reads stdin
  // if it is a closed pipe or a file.
  // unkeyed_listings: see CacheRequest (absolute); part of the key.
  CacheRequest prepare(const std::vector<std::string>& argv, const std::string& cwd,
                       const std::string& root, char** envp, bool cache_failures,
                       std::vector<std::string> unkeyed_listings = {});

  struct Hit {
    std::string entry_name;
    int exit_code = 0;
    int64_t run_ns = 0;
    std::string out, err;  // to replay
    std::string record;    // the stored run's provenance record (protobuf)
    size_t outputs = 0;
  };
  // Finds an entry whose inputs all match and restores its outputs under
  // the root. No hit: nullopt, with *why saying why (for --explain). A
  // damaged entry or object is a miss and a warning (in *warnings); it is
  // removed so the run that follows stores a good one.
  Result<std::optional<Hit>> fetch(const CacheRequest& req, std::string* why,
                                   std::vector<std::string>* warnings);

  // Stores a finished run (a miss) if it can be cached. out/err are files
  // holding what it printed. Returns "" when stored, else why not.
  Result<std::string> save(const CacheRequest& req, const Record& rec,
                           const std::function<OpSet(const std::string&)>& first_ops, int out,
                           int err, int64_t run_ns);

  // Counters (hits, misses, ...) kept in the stats file.
  // kGc resets the bytes stored since the last gc. Returns the counters
  // after the update.
  enum class Event { kHit, kMiss, kStored, kUncacheable, kDamaged, kGc };
  CacheStats count(Event e, uint64_t n = 0);
  CacheStats counters();

  struct Usage {
    uint64_t entries = 0, objects = 0, bytes = 0;
  };
  Result<Usage> usage();
  // Removes least recently used entries until the cache holds at most
  // max_bytes, then every object no entry refers to. Returns a summary.
  Result<std::string> gc(uint64_t max_bytes);
  // Reads every entry and object; removes damaged ones. Returns a summary
  // and sets *damaged.
  Result<std::string> verify(uint64_t* damaged);
  Result<void> clear();

  // The size limit: $BSANDBOX_CACHE_SIZE (e.g. "5G"), else 10 GiB.
  static uint64_t default_max_bytes();

 private:
  Cache(std::string dir, UniqueFd dir_fd, UniqueFd entries, UniqueFd hashes, Store store)
      : dir_(std::move(dir)), dir_fd_(std::move(dir_fd)), entries_(std::move(entries)),
        hashes_(std::move(hashes)), store_(std::move(store)) {}

  struct Seen;
  struct Candidate;
  Result<Seen> look(const std::string& path, uint32_t aspects);
  Result<Digest> content_hash(int fd, const struct stat& st, const std::string& what);
  Result<UniqueFd> lock(int how, bool wait = true);
  // Stores fd's content, adding its size to *added if the store lacked it.
  Result<Digest> put_counted(int fd, const std::string& what, uint64_t* added);
  Result<void> restore_outputs(const Candidate& c, const std::string& root, std::string* why,
                               std::optional<Digest>* damaged);
  using EntryVisitor = std::function<void(const std::string& rel, const struct stat& st,
                                          const Result<Candidate>& entry)>;
  Result<void> walk_entries(const EntryVisitor& visit);

  std::string dir_;
  std::string real_dir_;  // dir_ with symlinks resolved, as records name it
  UniqueFd dir_fd_, entries_, hashes_;
  Store store_;
};

// The default cache directory: $BSANDBOX_CACHE, else ~/.cache/bsandbox.
std::string default_cache_dir();

}  // namespace bsandbox
