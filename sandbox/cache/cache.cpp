// cache.cpp: see cache.h. Particular to the implementation: opening a
// cache decides whether it is shared (anyone else can write it: then a key
// is required, and what it makes gets its directory's mode); a lookup tries
// the entries of its weak key newest first and replays the first whose
// inputs all match; a store builds the entry (save.h) under the shared
// lock and, every tenth of the size limit stored, collects garbage. The
// counters live in a small fixed-size file under its own flock, so counting
// never waits for the cache's lock.
#include "sandbox/cache/cache.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "sandbox/cache/maintain.h"
#include "sandbox/cache/restore.h"
#include "sandbox/cache/save.h"
#include "sandbox/cache/snapshot.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

constexpr std::string_view kFormat = "bsandbox-cache 1\n";

// The stats file: fixed-size counters, updated under its own flock.
struct Counters {
  uint64_t magic = 0x3373746174736362;  // "bcstats3"
  CacheStats s;
};

// Why users other than this one could change what the cache holds (a
// directory of it owned by someone else or writable by others), or "".
std::string shared_because(int dir_fd, const std::string& shown) {
  uid_t me = ::geteuid();
  auto who = [](uid_t uid) {
    struct passwd pw, *found = nullptr;
    char buf[1024];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return std::string(found->pw_name);
    return "uid " + std::to_string(uid);
  };
  auto check = [&](const struct stat& st, const std::string& what) -> std::string {
    if (st.st_uid != me) return what + " is owned by " + who(st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      return what + " is writable by " + ((st.st_mode & S_IWOTH) ? "every user" : "its group") + " (mode " + mode + ")";
    }
    return "";
  };
  struct stat st;
  if (::fstat(dir_fd, &st) != 0) return shown + " cannot be examined";
  if (auto why = check(st, shown); !why.empty()) return why;
  for (const char* sub : {"entries", "objects", "hashes"}) {
    if (::fstatat(dir_fd, sub, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISDIR(st.st_mode)) return shown + "/" + sub + " is not a directory";
    if (auto why = check(st, shown + "/" + sub); !why.empty()) return why;
  }
  return "";
}

}  // namespace

Result<std::string> load_cache_key(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return fail("the cache key " + printable(path) + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return fail("the cache key " + printable(path) + " is not a regular file");
  if (st.st_mode & S_IROTH)
    return fail("the cache key " + printable(path) + " is readable by every user; a secret shared by a group is "
                "mode 0640 or stricter");
  std::string key;
  auto r = read_content(fd.get(), printable(path), [&](const char* p, size_t n) {
    if (key.size() < 4096) key.append(p, std::min<size_t>(n, 4096 - key.size()));
  });
  if (!r) return tl::unexpected(r.error());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < 16) return fail("the cache key " + printable(path) + " is too short (at least 16 bytes of secret)");
  return key;
}

Result<Cache> Cache::open(const std::string& dir, const std::string& key) {
  std::string shown = printable(dir);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  // mkdir -p: the default lives under ~/.cache, which may not exist yet.
  for (size_t i = 1; !fd.valid() && errno == ENOENT && i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string prefix = dir.substr(0, i);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
        return fail("cannot create the cache directory " + shown + ": " + std::strerror(errno));
      errno = ENOENT;
      if (i == dir.size()) fd.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
  }
  if (!fd.valid()) return fail("cannot open the cache directory " + shown + ": " + std::strerror(errno));
  auto format = read_at(fd.get(), "format", shown + "/format");
  if (!format) {
    auto listing = list_dir(fd.get(), shown);
    if (!listing) return tl::unexpected(listing.error());
    // Another bsandbox may be creating it right now: only foreign names
    // make it foreign.
    static const std::set<std::string> kOurs = {"format", "entries", "objects", "hashes", "lock", "stats", "remote", "uploads"};
    for (const auto& name : *listing) {
      if (!kOurs.count(name) && !name.starts_with(".bsandbox."))
        return fail(shown + " is not empty and not a bsandbox cache (no format file); refusing to use it");
    }
    if (auto w = replace_file_at(fd.get(), "format", kFormat, shown + "/format", 0644, false); !w)
      return tl::unexpected(w.error());
  } else if (*format != kFormat) {
    return fail(shown + "/format: not a bsandbox cache of this version (" + printable(*format) + ")");
  }
  // Anyone who can write a cache can make it return what they like: a
  // cache others can write is used only with a key, which its entries are
  // signed with.
  std::string shared = shared_because(fd.get(), shown);
  if (!shared.empty() && key.empty())
    return fail(shared + ", so another user could plant results in it; use a cache only you can write, or share "
                "it with a secret every user of it holds (--cache-key FILE, BSANDBOX_CACHE_KEY=FILE)");
  // A cache shared with a key: what it makes, the others must be able to
  // write too (the group of a setgid directory, say): its directory's mode.
  mode_t dir_mode = 0755;
  if (struct stat top; !shared.empty() && ::fstat(fd.get(), &top) == 0) dir_mode = top.st_mode & 07777;
  auto entries = open_dir_at(fd.get(), "entries", shown + "/entries", true, dir_mode);
  if (!entries) return tl::unexpected(entries.error());
  auto hashes = open_dir_at(fd.get(), "hashes", shown + "/hashes", true, dir_mode);
  if (!hashes) return tl::unexpected(hashes.error());
  auto store = Store::open(fd.get(), "objects", shown + "/objects", /*durable=*/false, dir_mode);
  if (!store) return tl::unexpected(store.error());
  Cache cache(dir, std::move(fd), std::move(*entries), std::move(*hashes), std::move(*store));
  cache.key_ = key;
  cache.dir_mode_ = dir_mode;
  if (char* real = ::realpath(dir.c_str(), nullptr)) {
    cache.real_dir_ = real;
    std::free(real);
  }
  return cache;
}

Result<UniqueFd> Cache::lock(int how, bool wait) {
  UniqueFd fd = state_file("lock");
  if (!fd.valid()) return fail_errno(printable(dir_) + "/lock", errno);
  while (::flock(fd.get(), how | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    return fail_errno(printable(dir_) + "/lock", errno);
  }
  return fd;
}

CacheRequest Cache::prepare(const std::vector<std::string>& argv, const std::string& cwd,
                            const std::string& root, char** envp, bool cache_failures,
                            std::vector<std::string> unkeyed_listings, bool allow_network) {
  CacheRequest r;
  r.sockets.allow_network = allow_network;
  r.argv = argv;
  r.cwd = cwd;
  r.root = root;
  r.cache_failures = cache_failures;
  std::sort(unkeyed_listings.begin(), unkeyed_listings.end());
  r.unkeyed_listings = std::move(unkeyed_listings);
  WeakKey key = weak_key(argv, cwd, root, envp, r.unkeyed_listings, allow_network, memo());
  r.weak = key.digest;
  r.uncacheable = std::move(key.uncacheable);
  r.stdin_replacement = std::move(key.stdin_replacement);
  return r;
}

// The entry c matched: what it replays is read (and verified) before any
// output is touched, then its outputs are restored. nullopt, with *why, when
// it cannot be used after all: an object was damaged (removed, with a
// warning) or the tree is not as the entry needs.
Result<std::optional<Cache::Hit>> Cache::use(int weak_dir, const StoredEntry& c, const std::string& shown,
                                             const std::string& weak, const std::string& root, std::string* why,
                                             std::vector<std::string>* warnings) {
  Hit hit;
  hit.entry_name = weak.substr(0, 12) + "/" + c.name.substr(0, 12);
  hit.weak = Digest::from_hex(weak).value_or(Digest{});
  hit.strong = Digest::from_hex(c.name).value_or(Digest{});
  hit.exit_code = c.entry.exit_code();
  hit.run_ns = c.entry.run_ns();
  hit.root = c.entry.root();
  std::optional<Digest> damaged;
  Result<void> ok;
  auto load = [&](const std::string& raw, std::string& into) {
    if (!ok || raw.empty()) return;
    auto dg = Digest::from_raw(raw);
    auto bytes = dg ? store_.read(*dg) : Result<std::string>(fail(shown + ": bad object reference"));
    if (!bytes) {
      ok = tl::unexpected(bytes.error());
      if (dg) damaged = *dg;
    } else {
      into = std::move(*bytes);
    }
  };
  load(c.entry.stdout_object(), hit.out);
  load(c.entry.stderr_object(), hit.err);
  load(c.entry.record_object(), hit.record);
  if (ok) ok = restore_outputs(c.entry, c.rel, root, store_, why, &damaged);
  if (!ok) {
    if (damaged) {
      warnings->push_back(ok.error().message + "; removed, running the command");
      (void)store_.remove(*damaged);
      count(Event::kDamaged);
      *why = "a stored object was damaged";
      return std::nullopt;
    }
    if (!why->empty()) return std::nullopt;  // the tree is not as the entry needs
    return tl::unexpected(ok.error());
  }
  hit.outputs = static_cast<size_t>(c.entry.outputs_size());
  ::utimensat(weak_dir, c.name.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);  // recently used, for gc
  return hit;
}

Result<std::optional<Cache::Hit>> Cache::fetch(CacheRequest& req, std::string* why,
                                               std::vector<std::string>* warnings) {
  auto held = lock(LOCK_SH);
  if (!held) return tl::unexpected(held.error());
  std::string weak = req.weak.hex(), wrel = weak.substr(0, 2) + "/" + weak;
  std::vector<pb::CacheEntry> seen_entries;  // for the look before a run
  auto miss = [&]() -> std::optional<Hit> {
    look_before(req.argv, req.cwd, req.root, seen_entries, memo(), &req.before);
    return std::nullopt;
  };
  UniqueFd wfd(::openat(entries_.get(), wrel.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!wfd.valid()) {
    *why = "no entry for this command (argv, cwd, environment, program and stdin: key " + weak.substr(0, 12) + ")";
    return miss();
  }
  auto names = list_dir(wfd.get(), wrel);
  if (!names) return tl::unexpected(names.error());
  std::vector<std::pair<int64_t, std::string>> order;  // newest first
  for (const auto& n : *names) {
    struct stat st;
    if (!n.starts_with(".bsandbox.") && ::fstatat(wfd.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      order.emplace_back(-ns_of(st.st_mtim), n);
  }
  std::sort(order.begin(), order.end());
  std::string first_why;
  size_t tried = 0;
  for (const auto& [_, name] : order) {
    std::string shown = printable(dir_) + "/entries/" + wrel + "/" + name;
    bool foreign = false;
    auto entry = read_entry(wfd.get(), name, shown, key_, &foreign);
    if (!entry && foreign) {
      if (!key_.empty()) warnings->push_back(entry.error().message);
      continue;
    }
    if (!entry) {
      warnings->push_back(entry.error().message + "; removed");
      ::unlinkat(wfd.get(), name.c_str(), 0);
      count(Event::kDamaged);
      continue;
    }
    StoredEntry c{name, wrel + "/" + name, std::move(*entry)};
    ++tried;
    if (std::string mismatch_why = entry_mismatch(c.entry, req.root, memo()); !mismatch_why.empty()) {
      if (first_why.empty()) first_why = mismatch_why;
      seen_entries.push_back(std::move(c.entry));
      continue;
    }
    auto hit = use(wfd.get(), c, shown, weak, req.root, why, warnings);
    if (hit && !*hit) {
      seen_entries.push_back(std::move(c.entry));
      return miss();
    }
    return hit;
  }
  if (tried == 0) *why = "no entry for this command (key " + weak.substr(0, 12) + ")";
  else if (tried == 1) *why = first_why;
  else *why = std::to_string(tried) + " entries for this command, none matches; the newest: " + first_why;
  return miss();
}

Result<std::string> Cache::save(const CacheRequest& req, const Record& rec, const PriorOf& prior, int out, int err,
                                int64_t run_ns, pb::CacheEntry* stored) {
  if (!req.uncacheable.empty()) return req.uncacheable;
  if (rec.exit_code != 0 && !req.cache_failures)
    return "it exited with " + std::to_string(rec.exit_code) + " (--cache-failures stores failures too)";
  std::vector<std::string> ignored = req.private_paths;
  ignored.push_back(real_dir_);
  Classified c = classify(rec, prior, req.root, ignored, req.sockets);
  if (!c.uncacheable.empty()) return c.uncacheable;

  auto held = lock(LOCK_SH);
  if (!held) return tl::unexpected(held.error());
  uint64_t added = 0;
  pb::CacheEntry e;
  Digest strong;
  auto built = build_entry(req, rec, c, out, err, run_ns, store_, memo(), &e, &strong, &added);
  if (!built || !built->empty()) return built;
  auto written = write_entry(entries_.get(), req.weak, strong, e, key_, dir_mode_);
  if (!written) return tl::unexpected(written.error());
  added += *written;
  held->reset();
  if (stored) *stored = std::move(e);

  CacheStats now = count(Event::kStored, added);
  uint64_t limit = max_bytes_;
  if (now.bytes_since_gc > limit / 10) (void)gc(limit);  // gc skips when another process holds the cache
  return std::string();
}

Result<void> Cache::adopt(const pb::CacheEntry& e) {
  auto weak = Digest::from_raw(e.weak_key());
  if (!weak) return fail("a cache entry without a key");
  auto held = lock(LOCK_SH);
  if (!held) return tl::unexpected(held.error());
  auto written = write_entry(entries_.get(), *weak, strong_key_of(e), e, key_, dir_mode_);
  if (!written) return tl::unexpected(written.error());
  held->reset();
  CacheStats now = count(Event::kStored, *written);
  if (now.bytes_since_gc > max_bytes_ / 10) (void)gc(max_bytes_);
  return {};
}

Result<UniqueFd> Cache::state_dir(const char* name) {
  return open_dir_at(dir_fd_.get(), name, printable(dir_) + "/" + name, true, dir_mode_);
}

Result<pb::CacheEntry> Cache::entry(const Digest& weak, const Digest& strong) {
  std::string hex = weak.hex(), rel = hex.substr(0, 2) + "/" + hex + "/" + strong.hex();
  bool foreign = false;
  return read_entry(entries_.get(), rel, printable(dir_) + "/entries/" + rel, key_, &foreign);
}

UniqueFd Cache::state_file(const char* name) {
  UniqueFd fd(::openat(dir_fd_.get(), name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666 & dir_mode_));
  if (fd.valid()) (void)::fchmod(fd.get(), 0666 & dir_mode_);  // whatever the umask: the others need it too
  return fd;
}

CacheStats Cache::count(Event e, uint64_t n) {
  UniqueFd fd = state_file("stats");
  if (!fd.valid()) return {};
  while (::flock(fd.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  Counters c;
  Counters disk;
  if (::pread(fd.get(), &disk, sizeof disk, 0) == static_cast<ssize_t>(sizeof disk) && disk.magic == c.magic)
    c = disk;
  switch (e) {
    case Event::kHit:
      ++c.s.hits;
      c.s.saved_ns += n;
      break;
    case Event::kMiss: ++c.s.misses; break;
    case Event::kStored:
      ++c.s.stored;
      c.s.bytes_since_gc += n;
      break;
    case Event::kUncacheable: ++c.s.uncacheable; break;
    case Event::kDamaged: ++c.s.damaged; break;
    case Event::kGc: c.s.bytes_since_gc = 0; break;
    case Event::kObjectsAdded: c.s.bytes_since_gc += n; break;
    case Event::kRemoteHit: ++c.s.remote_hits; break;
    case Event::kRemoteMiss: ++c.s.remote_misses; break;
    case Event::kRemoteUpload: ++c.s.remote_uploads; break;
    case Event::kRemoteBytesDown: c.s.remote_bytes_down += n; break;
    case Event::kRemoteBytesUp: c.s.remote_bytes_up += n; break;
    case Event::kRemoteError: ++c.s.remote_errors; break;
    case Event::kRemotePrefetched: c.s.remote_prefetched += n; break;
  }
  (void)!::pwrite(fd.get(), &c, sizeof c, 0);
  return c.s;
}

CacheStats Cache::counters() {
  Counters c, disk;
  UniqueFd fd(::openat(dir_fd_.get(), "stats", O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.valid() && ::flock(fd.get(), LOCK_SH) == 0 &&
      ::pread(fd.get(), &disk, sizeof disk, 0) == static_cast<ssize_t>(sizeof disk) && disk.magic == c.magic)
    c = disk;
  return c.s;
}

CacheDirs Cache::dirs() { return CacheDirs{printable(dir_), entries_.get(), key_, &store_}; }

Result<Cache::Usage> Cache::usage() { return measure_usage(dirs()); }

Result<std::string> Cache::gc(uint64_t max_bytes) {
  auto held = lock(LOCK_EX, /*wait=*/false);
  if (!held) return fail("the cache is in use by another bsandbox; try again");
  auto r = collect_garbage(dirs(), memo(), max_bytes);
  if (r) count(Event::kGc);
  return r;
}

Result<std::string> Cache::verify(uint64_t* damaged) {
  auto held = lock(LOCK_EX);
  if (!held) return tl::unexpected(held.error());
  return verify_all(dirs(), damaged);
}

Result<void> Cache::clear() {
  auto held = lock(LOCK_EX);
  if (!held) return tl::unexpected(held.error());
  for (const char* sub : {"entries", "hashes", "objects"}) {
    if (auto r = remove_tree(dir_fd_.get(), sub); !r) return r;
    if (::mkdirat(dir_fd_.get(), sub, 0755) != 0 && errno != EEXIST)
      return fail_errno(printable(dir_) + "/" + sub, errno);
  }
  ::unlinkat(dir_fd_.get(), "stats", 0);
  return {};
}

}  // namespace bsandbox
