// cache.cpp: see cache.h.
#include "sandbox/cache/cache.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <unordered_map>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pwd.h>

#include "sandbox/cache/cache.pb.h"
#include "sandbox/storage/fs.h"
#include "sandbox/core/path.h"
#include "sandbox/base/text.h"

namespace bsandbox {

struct Cache::Candidate {
  std::string name;  // the entry's file name (its strong key)
  std::string rel;   // under entries/
  pb::CacheEntry entry;
};

namespace {

constexpr std::string_view kMagic = "BSC1";
constexpr std::string_view kFormat = "bsandbox-cache 1\n";
constexpr int64_t kSecond = 1000000000;

int64_t ns_of(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * kSecond + t.tv_nsec; }

int64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ns_of(ts);
}

// A symlink's target; the error names the path printable.
Result<std::string> link_target(const std::string& path) {
  auto target = read_link(path);
  if (!target) return fail(printable(path) + target.error().message.substr(path.size()));
  return target;
}

// Length-prefixed, so that ("ab","c") and ("a","bc") hash differently.
void field(Hasher& h, std::string_view s) {
  uint64_t n = s.size();
  h.update(&n, sizeof n);
  h.update(s.data(), s.size());
}

// path relative to root ("" for root itself), given path is within it.
std::string relative(std::string_view path, std::string_view root) {
  if (path.size() == root.size()) return "";
  return std::string(path.substr(root == "/" ? 1 : root.size() + 1));
}

std::string absolute(const pb::CacheInput& in, const std::string& root) {
  return in.in_root() ? path::resolve(root, in.path()) : in.path();
}

Digest listing_digest(const std::vector<std::string>& names) {
  Hasher h;
  for (const auto& n : names) field(h, n);
  return h.finish();
}

std::optional<std::string> getenv_from(char** envp, std::string_view name) {
  for (char** e = envp; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.size() > name.size() && kv.substr(0, name.size()) == name && kv[name.size()] == '=')
      return std::string(kv.substr(name.size() + 1));
  }
  return std::nullopt;
}

// Where execvp would find argv0.
std::optional<std::string> find_program(const std::string& argv0, const std::string& cwd, char** envp) {
  auto runnable = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (argv0.find('/') != std::string::npos) {
    std::string p = path::resolve(cwd, argv0);
    return runnable(p) ? std::optional(p) : std::nullopt;
  }
  std::string search = getenv_from(envp, "PATH").value_or("/bin:/usr/bin");
  size_t start = 0;
  for (;;) {
    size_t colon = search.find(':', start);
    std::string dir = search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string p = path::resolve(cwd, (dir.empty() ? "." : dir) + "/" + argv0);
    if (runnable(p)) return p;
    if (colon == std::string::npos) return std::nullopt;
    start = colon + 1;
  }
}

Result<std::string> read_at(int dirfd, const std::string& name, std::string_view what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(what, errno);
  std::string out;
  auto r = read_content(fd.get(), what, [&](const char* p, size_t n) { out.append(p, n); });
  if (!r) return tl::unexpected(r.error());
  return out;
}

// A shared cache's entries are signed: "BSM1" + HMAC-SHA256(key, payload)
// + payload; a private cache's are checksummed (seal(), "BSC1").
constexpr std::string_view kSignedMagic = "BSM1";

std::string hmac(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  ::HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string sign(const std::string& key, std::string_view payload) {
  return std::string(kSignedMagic) + hmac(key, payload) + std::string(payload);
}

// An entry file, checked and parsed: its signature under key (a shared
// cache), else its checksum. *foreign is set for an entry of the other kind
// (signed in a private cache, unsigned or signed under another key in a
// shared one): skipped, not damaged, since it may be someone else's.
Result<pb::CacheEntry> read_entry(int dirfd, const std::string& name, const std::string& shown,
                                  const std::string& key, bool* foreign) {
  *foreign = false;
  auto bytes = read_at(dirfd, name, shown);
  if (!bytes) return tl::unexpected(bytes.error());
  std::string_view all(*bytes);
  Result<std::string_view> payload = fail("");
  if (key.empty()) {
    if (all.starts_with(kSignedMagic)) {
      *foreign = true;
      return fail(shown + ": a signed entry (of a cache shared with a key)");
    }
    payload = unseal(all, kMagic, shown, "cache entry");
  } else {
    if (!all.starts_with(kSignedMagic) || all.size() < kSignedMagic.size() + 32 ||
        !same_secret(all.substr(kSignedMagic.size(), 32), hmac(key, all.substr(kSignedMagic.size() + 32)))) {
      *foreign = true;
      return fail(shown + ": not signed with this cache's key; ignored");
    }
    payload = all.substr(kSignedMagic.size() + 32);
  }
  if (!payload) return tl::unexpected(payload.error());
  pb::CacheEntry e;
  if (!e.ParseFromArray(payload->data(), static_cast<int>(payload->size())))
    return fail(shown + ": cache entry is damaged (does not parse)");
  return e;
}

Result<UniqueFd> open_dir_at(int dirfd, const std::string& name, std::string_view what, bool create,
                             mode_t mode = 0755) {
  if (create) {
    auto made = make_dir_beneath(dirfd, name, mode);
    if (!made) return fail(std::string(what) + ": " + made.error().message);
    return made;
  }
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(what, errno);
  return fd;
}

std::string describe_mismatch(const pb::CacheInput& want, const std::string& path, FileKind now_kind,
                              const char* what) {
  std::string p = printable(path);
  auto was = static_cast<FileKind>(want.kind());
  if (was != now_kind) {
    if (now_kind == FileKind::kAbsent) return p + " was removed";
    if (was == FileKind::kAbsent) return p + " now exists (it was missing)";
    return p + " is now a " + kind_name(now_kind) + " (it was a " + kind_name(was) + ")";
  }
  return p + ": " + what + " changed";
}

// The modification time stat() shows: through a symlink, its target's.
int64_t time_of(const PathState& s) { return s.kind == FileKind::kSymlink ? s.resolved_mtime_ns : s.mtime_ns; }

// Whether a modification time can be keyed: a directory's changes with
// every name made in it (an object file written next to others), so that
// keying it would make every command that looks at a build directory miss
// after a rebuild; a missing path has none.
bool has_keyed_time(const PathState& s) {
  FileKind k = s.kind == FileKind::kSymlink ? s.resolved_kind : s.kind;
  return k != FileKind::kAbsent && k != FileKind::kDir;
}

// Dense ranks of times: equal times share a rank, a later time has a
// higher one.
std::vector<uint32_t> dense_ranks(const std::vector<int64_t>& times) {
  std::vector<int64_t> sorted(times);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<uint32_t> out;
  out.reserve(times.size());
  for (int64_t t : times)
    out.push_back(static_cast<uint32_t>(std::lower_bound(sorted.begin(), sorted.end(), t) - sorted.begin()));
  return out;
}

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

  std::vector<uint32_t> places() const {
    std::vector<int64_t> frame;
    for (const auto& it : items)
      if (it.framed) frame.push_back(it.time);
    std::sort(frame.begin(), frame.end());
    frame.erase(std::unique(frame.begin(), frame.end()), frame.end());
    std::vector<uint32_t> out;
    for (const auto& it : items) {
      auto at = std::lower_bound(frame.begin(), frame.end(), it.time);
      uint32_t i = static_cast<uint32_t>(at - frame.begin());
      out.push_back(at != frame.end() && *at == it.time ? 2 * i + 1 : 2 * i);
    }
    return out;
  }

  // "" if the items' places now are the stored ones; else one pair (not
  // two placed items: their order is not keyed) whose comparison changed.
  std::string changed(const std::vector<uint32_t>& stored) const {
    std::vector<uint32_t> now = places();
    if (now == stored) return "";
    auto name = [&](size_t i) {
      return items[i].path.empty() ? std::string("the time it starts") : printable(items[i].path);
    };
    auto sign = [](uint32_t a, uint32_t b) { return a < b ? -1 : a > b ? 1 : 0; };
    for (size_t a = 0; a < items.size(); ++a)
      for (size_t b = 0; b < items.size(); ++b) {
        if (a == b || (!items[a].framed && !items[b].framed) || stored[a] > stored[b]) continue;
        if (sign(stored[a], stored[b]) == sign(now[a], now[b])) continue;
        if (stored[a] == stored[b]) return name(a) + " and " + name(b) + " no longer have the same modification time";
        return name(a) + " is no longer older than " + name(b) + " (the order of modification times changed)";
      }
    return "the order of modification times changed";
  }
};

// Whether fd's content holds any of needles (mapped, not read).
bool contains_any(int fd, const std::vector<std::string>& needles) {
  struct stat st;
  if (needles.empty() || ::fstat(fd, &st) != 0 || st.st_size <= 0) return false;
  size_t size = static_cast<size_t>(st.st_size);
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) return true;  // unknown: keyed to the root, which is never wrong
  bool found = false;
  for (const auto& n : needles) found = found || ::memmem(m, size, n.data(), n.size()) != nullptr;
  ::munmap(m, size);
  return found;
}

// SHA-256 of fd's content from offset at, read with pread (the offset
// the command will read from is left alone).
std::optional<Digest> hash_from(int fd, off_t at) {
  Hasher h;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return h.finish();
    h.update(buf, static_cast<size_t>(n));
    at += n;
  }
}

// "--jobserver-auth=3,4" (or make 4.1's --jobserver-fds) in MAKEFLAGS, or
// cargo's CARGO_MAKEFLAGS for rustc: the pipe a jobserver's clients pass
// tokens through, which carries nothing a result depends on.
std::set<int> jobserver_fds(char** envp) {
  std::set<int> out;
  for (std::string_view var : {"MAKEFLAGS", "CARGO_MAKEFLAGS"}) {
    auto flags = getenv_from(envp, var);
    if (!flags) continue;
    for (std::string_view opt : {"--jobserver-auth=", "--jobserver-fds="}) {
      size_t at = flags->find(opt);
      if (at == std::string::npos) continue;
      int r = -1, w = -1;
      if (std::sscanf(flags->c_str() + at + opt.size(), "%d,%d", &r, &w) == 2) out.insert({r, w});
    }
  }
  return out;
}

// The descriptors above 2 that a command started now inherits are inputs
// (or outputs) the tracer does not see as paths: `cmd 3<file` reads a file
// it never opens. A file open only for reading is keyed by its content and
// offset, a directory by its path; a file or device open for writing (what
// the command writes there a hit could not replay), a pipe or a socket
// make the command uncacheable. Exempt: make's jobserver pipe and
// bsandbox's own diagnostics descriptor.
void key_inherited_fds(Hasher& h, const std::string& root, char** envp, std::string* uncacheable) {
  std::set<int> exempt = jobserver_fds(envp);
  if (auto diag = getenv_from(envp, "BSANDBOX_DIAG_FD")) exempt.insert(std::atoi(diag->c_str()));
  UniqueFd dir(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return;  // no /proc: nothing to learn, as before
  auto names = list_dir(dir.get(), "/proc/self/fd");
  if (!names) return;
  std::vector<int> fds;
  for (const auto& n : *names) {
    int fd = std::atoi(n.c_str());
    if (fd > 2 && fd != dir.get() && !exempt.count(fd)) fds.push_back(fd);
  }
  std::sort(fds.begin(), fds.end());
  for (int fd : fds) {
    int fdflags = ::fcntl(fd, F_GETFD);
    if (fdflags < 0 || (fdflags & FD_CLOEXEC)) continue;  // not inherited
    struct stat st;
    int fl = ::fcntl(fd, F_GETFL);
    if (::fstat(fd, &st) != 0 || fl < 0) continue;
    std::string name = "descriptor " + std::to_string(fd);
    std::string target = read_link("/proc/self/fd/" + std::to_string(fd)).value_or("");
    std::string shown = name + " (" + printable(target) + ")";
    field(h, name);
    bool writes = (fl & O_ACCMODE) != O_RDONLY;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
      field(h, "null");
    } else if (S_ISDIR(st.st_mode)) {
      field(h, path::is_within(target, root) ? "R" + relative(target, root) : "A" + target);
    } else if (S_ISREG(st.st_mode) && !writes) {
      off_t off = ::lseek(fd, 0, SEEK_CUR);
      auto d = hash_from(fd, 0);
      if (!d) {
        if (uncacheable->empty()) *uncacheable = "its " + shown + " cannot be read";
        continue;
      }
      field(h, d->raw());
      field(h, std::to_string(off));
    } else if (uncacheable->empty()) {
      *uncacheable = "it inherits " + shown +
                     (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)
                          ? ", open for writing: what it writes there a hit could not replay"
                          : ", a pipe, socket or device: what comes through it is not keyed");
    }
  }
}

// BSANDBOX_CACHE_TEST_DROP=mtime,order,before,prior,fds,sockets,root switches off one
// of the safeguards, for tests/e2e/cache_trust.py's mutation check alone:
// it shows that the differential tests fail without each. Never set it
// otherwise: results become stale.
bool test_drops(std::string_view what) {
  static const std::string drops = [] {
    const char* v = std::getenv("BSANDBOX_CACHE_TEST_DROP");
    return v ? "," + std::string(v) + "," : std::string();
  }();
  return !drops.empty() && drops.find("," + std::string(what) + ",") != std::string::npos;
}

// The stats file: fixed-size counters, updated under its own flock.
struct Counters {
  uint64_t magic = 0x3173746174736362;  // "bcstats1"
  CacheStats s;
};

}  // namespace

// The first socket a run reached that none of its processes made, or "".
std::string foreign_socket(const Record& rec, const SocketPolicy& policy) {
  std::set<std::string> bound(policy.own_sockets.begin(), policy.own_sockets.end());
  std::set<std::string> ports;  // of inet addresses the run bound
  auto port_of = [](const std::string& a) { return a.substr(a.rfind(':') + 1); };
  for (const auto& p : rec.processes)
    for (const auto& s : p.sockets)
      if (s.op == SocketOp::kBind) {
        bound.insert(s.address);
        if (s.address.starts_with("inet")) ports.insert(port_of(s.address));
      }
  for (const auto& p : rec.processes)
    for (const auto& s : p.sockets) {
      if (s.op == SocketOp::kBind || bound.count(s.address)) continue;
      bool loopback = s.address.starts_with("inet:127.") || s.address.starts_with("inet6:[::1]:");
      if (loopback && ports.count(port_of(s.address))) continue;  // a server of its own
      return s.address;
    }
  return "";
}

Classified classify(const Record& rec, const PriorOf& prior_of, std::string_view root, std::string_view ignored,
                    const SocketPolicy& sockets) {
  Classified c;
  if (!rec.complete) c.uncacheable = "its record is incomplete";
  auto refuse = [&](std::string why) {
    if (c.uncacheable.empty()) c.uncacheable = std::move(why);
  };
  if (!sockets.allow_network && !test_drops("sockets")) {
    if (std::string foreign = foreign_socket(rec, sockets); !foreign.empty())
      refuse("it connects to " + printable(foreign) +
             ": what comes back is not keyed (--cache-allow-network, if the answer never changes)");
  }
  std::map<std::string, OpSet> all;
  for (const auto& p : rec.processes)
    for (const auto& f : p.files) all[f.path] |= f.ops;
  for (const auto& [path, ops] : all) {
    if (path::is_within(path, "/dev") || (!ignored.empty() && path::is_within(path, ignored))) continue;
    PriorAccess prior = prior_of(path);
    if (prior.first == 0) prior = PriorAccess{ops, uses_of_ops(ops)};  // nothing known: what the ops say
    if (test_drops("prior")) prior.uses = uses_of_ops(prior.first);
    if (!(ops & kMutatingOps)) {
      // Metadata a command only stat'ed is keyed with its modification
      // time (make, cp -u, test -nt decide on it); one whose content is
      // keyed too needs only its time's place among the times of paths it
      // did not read, so that a touch alone does not miss, nor the order
      // in which a parallel build wrote two files it reads (cargo's crates).
      uint32_t aspects = 0;
      if (prior.uses & kUsesContent) aspects |= kAspectContent;
      if (prior.uses & kUsesMeta)
        aspects |= kAspectMeta | ((prior.uses & kUsesContent) ? uint32_t{kAspectPlace} : kAspectOrder | kAspectMtime);
      if (prior.uses & kUsesListing) aspects |= kAspectListing;
      if (prior.uses & kUsesAbsent) aspects |= kAspectAbsent;
      if (prior.uses & kUsesPresent) aspects |= kAspectPresent;
      if (aspects) c.inputs.push_back(ObservedInput{path, aspects, InputFrom::kNow});
      continue;
    }
    bool existed = prior.existed();
    c.produced.push_back(Produced{path, existed, path::is_within(path, root)});
    if (!existed) {
      // It was not there: that is all the run could have learnt of it.
      if (prior.uses & kUsesAbsent) c.inputs.push_back(ObservedInput{path, kAspectAbsent, InputFrom::kBefore});
      continue;
    }
    if (prior.uses & kUsesAbsent) {
      refuse(printable(path) + " changed while it ran (found there and missing before the run changed it)");
      continue;
    }
    // What the run saw of it before changing it is gone when the run is
    // stored; the look taken just before it ran (CacheRequest::before) has
    // it: save() keys that, or refuses. Its time is keyed by order: it was
    // rewritten by every earlier run.
    uint32_t aspects = 0;
    if (prior.uses & kUsesContent) aspects |= kAspectContent;
    if (prior.uses & kUsesListing) aspects |= kAspectListing;
    if (prior.uses & kUsesMeta) aspects |= kAspectMeta | kAspectOrder;
    if (!aspects && (prior.uses & kUsesPresent)) aspects = kAspectPresent;
    if (aspects) c.inputs.push_back(ObservedInput{path, aspects, InputFrom::kBefore});
    // A metadata change keeps the content, which is then an input: what the
    // run left is what was there (a later rewrite only makes this stricter).
    if (prior.uses & kUsesKept) c.inputs.push_back(ObservedInput{path, kAspectContent, InputFrom::kKept});
  }
  return c;
}

// " -j2 --jobserver-auth=fifo:/tmp/GMfifo123 -- CC=gcc X=a\\ b": the
// jobserver and the job count change between identical builds and do not
// change output, and the variables after "--" come in an order that differs
// from run to run (make's hash table): sorted.
std::string keyed_makeflags(std::string_view value) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      word += value[i];
      word += value[++i];
    } else if (value[i] == ' ') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += value[i];
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  auto dashes = std::find(words.begin(), words.end(), "--");
  std::sort(dashes, words.end());
  std::string out;
  for (auto it = words.begin(); it != words.end(); ++it) {
    if (it < dashes && (it->starts_with("--jobserver") || it->starts_with("-j"))) continue;
    if (!out.empty()) out += ' ';
    out += *it;
  }
  return out;
}

std::vector<std::string> keyed_environment(char** envp) {
  static const std::set<std::string_view> kDropped = {"_",           "PWD",           "OLDPWD",
                                                      "SHLVL",       "MAKE_TERMOUT",  "MAKE_TERMERR",
                                                      "MAKELEVEL"};
  std::vector<std::string> out;
  for (char** e = envp; e && *e; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    std::string name = kv.substr(0, eq);
    if (kDropped.count(name) || name.starts_with("BSANDBOX_")) continue;
    if (name == "MAKEFLAGS" || name == "MFLAGS" || name == "CARGO_MAKEFLAGS")
      kv = name + "=" + keyed_makeflags(kv.substr(eq + 1));
    out.push_back(std::move(kv));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("BSANDBOX_CACHE"); d && *d) return d;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/bsandbox";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/bsandbox";
}

uint64_t Cache::default_max_bytes() {
  if (const char* s = std::getenv("BSANDBOX_CACHE_SIZE"); s && *s) {
    if (auto n = parse_size(s)) return *n;
  }
  return uint64_t{10} << 30;
}

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
    static const std::set<std::string> kOurs = {"format", "entries", "objects", "hashes", "lock", "stats"};
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
  UniqueFd fd(::openat(dir_fd_.get(), "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666 & dir_mode_));
  if (fd.valid()) (void)::fchmod(fd.get(), 0666 & dir_mode_);  // whatever the umask: the others need it too
  if (!fd.valid()) return fail_errno(printable(dir_) + "/lock", errno);
  while (::flock(fd.get(), how | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    return fail_errno(printable(dir_) + "/lock", errno);
  }
  return fd;
}

// A file's SHA-256, remembered by (dev, inode, size, mtime, ctime): a write
// changes mtime and ctime, and ctime cannot be set back. A file changed in
// the last two seconds is not remembered, since two writes within one tick
// of a coarse clock leave the same times.
Result<Digest> Cache::content_hash(int fd, const struct stat& st, const std::string& what) {
  uint64_t key_fields[7] = {st.st_dev,
                            st.st_ino,
                            static_cast<uint64_t>(st.st_size),
                            static_cast<uint64_t>(st.st_mtim.tv_sec),
                            static_cast<uint64_t>(st.st_mtim.tv_nsec),
                            static_cast<uint64_t>(st.st_ctim.tv_sec),
                            static_cast<uint64_t>(st.st_ctim.tv_nsec)};
  std::string name = hash_bytes({reinterpret_cast<const char*>(key_fields), sizeof key_fields}).hex();
  // In a shared cache a memo is signed too: one planted by another user
  // would make a changed file pass for its old content.
  size_t want = key_.empty() ? 32 : 64;
  char raw[65];
  UniqueFd memo(::openat(hashes_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (memo.valid() && ::read(memo.get(), raw, sizeof raw) == static_cast<ssize_t>(want) &&
      (key_.empty() || same_secret({raw + 32, 32}, hmac(key_, name + std::string(raw, 32))))) {
    if (auto d = Digest::from_raw({raw, 32})) return *d;
  }
  auto d = hash_fd(fd, what);
  if (!d) return d;
  struct stat after;
  if (now_ns() - ns_of(st.st_ctim) >= 2 * kSecond && ::fstat(fd, &after) == 0 &&
      after.st_size == st.st_size && ns_of(after.st_mtim) == ns_of(st.st_mtim) &&
      ns_of(after.st_ctim) == ns_of(st.st_ctim)) {
    std::string memo_text(d->raw());
    if (!key_.empty()) memo_text += hmac(key_, name + memo_text);
    (void)replace_file_at(hashes_.get(), name, memo_text, "hash cache", 0644, false);
  }
  return d;
}

Result<PathState> Cache::look(const std::string& p, uint32_t aspects) {
  PathState s;
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return s;
    return fail_errno(printable(p), errno);
  }
  s.kind = file_kind(st.st_mode);
  s.mode = st.st_mode & 07777;
  s.mtime_ns = ns_of(st.st_mtim);
  s.ctime_ns = ns_of(st.st_ctim);
  if (s.kind == FileKind::kFile) s.size = static_cast<uint64_t>(st.st_size);
  if (s.kind == FileKind::kSymlink && (aspects & kAspectMeta)) {
    auto target = link_target(p);
    if (!target) return tl::unexpected(target.error());
    s.target = std::move(*target);
    // stat() through the link (what make and `test -nt` see) is recorded
    // under the link's name alone.
    struct stat rs;
    if (::stat(p.c_str(), &rs) == 0) {
      s.resolved_kind = file_kind(rs.st_mode);
      s.resolved_mode = rs.st_mode & 07777;
      if (s.resolved_kind == FileKind::kFile) s.resolved_size = static_cast<uint64_t>(rs.st_size);
      s.resolved_mtime_ns = ns_of(rs.st_mtim);
      s.resolved_ctime_ns = ns_of(rs.st_ctim);
    }
  }
  if ((aspects & kAspectContent) && (s.kind == FileKind::kFile || s.kind == FileKind::kSymlink)) {
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat fst;
    if (fd.valid() && ::fstat(fd.get(), &fst) == 0 && S_ISREG(fst.st_mode)) {
      auto d = content_hash(fd.get(), fst, printable(p));
      if (!d) return tl::unexpected(d.error());
      s.content = *d;
    } else if (!fd.valid() && errno != ENOENT && errno != ELOOP) {
      return fail_errno(printable(p), errno);
    }
  }
  if ((aspects & kAspectListing) && s.kind == FileKind::kDir) {
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(printable(p), errno);
    auto names = list_dir(fd.get(), printable(p));
    if (!names) return tl::unexpected(names.error());
    s.names = std::move(*names);
  }
  return s;
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
  Hasher h;
  // 2: entries key modification times, what changes depended on, the root
  // embedded in outputs (entries of 1 cannot say whether they would hit).
  field(h, "bsandbox-cache-key 2");
  field(h, std::to_string(argv.size()));
  for (const auto& a : argv) field(h, a);
  field(h, path::is_within(cwd, root) ? "R" + relative(cwd, root) : "A" + cwd);
  for (const auto& d : r.unkeyed_listings)
    field(h, path::is_within(d, root) ? "U" + relative(d, root) : "V" + d);
  if (allow_network) field(h, "network allowed");
  auto env = keyed_environment(envp);
  field(h, std::to_string(env.size()));
  for (const auto& kv : env) field(h, kv);

  auto exe = argv.empty() ? std::nullopt : find_program(argv[0], cwd, envp);
  if (!exe) {
    r.uncacheable = "its program was not found";
  } else {
    UniqueFd fd(::open(exe->c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    Result<Digest> d = fail("");
    if (fd.valid() && ::fstat(fd.get(), &st) == 0) d = content_hash(fd.get(), st, printable(*exe));
    if (d) field(h, d->raw());
    else r.uncacheable = "its program " + printable(*exe) + " cannot be read";
  }

  // stdin is an input the tracer cannot see (reads of an inherited fd are
  // not file opens): /dev/null and a terminal are no input, a file's or a
  // finished pipe's content is keyed, an open pipe cannot be.
  struct stat in;
  if (::fstat(0, &in) != 0) {
    field(h, "stdin closed");
  } else if (S_ISCHR(in.st_mode)) {
    if (in.st_rdev == makedev(1, 3)) field(h, "stdin empty");
    else if (::isatty(0)) field(h, "stdin terminal");
    else r.uncacheable = "its stdin is a device";
  } else if (S_ISREG(in.st_mode)) {
    off_t off = ::lseek(0, 0, SEEK_CUR);
    auto d = hash_from(0, off < 0 ? 0 : off);
    if (!d) r.uncacheable = "its stdin cannot be read";
    field(h, "stdin file");
    if (d) field(h, d->raw());
  } else if (S_ISFIFO(in.st_mode) || S_ISSOCK(in.st_mode)) {
    pollfd pfd{0, POLLIN | POLLRDHUP, 0};
    bool closed = ::poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
    if (!closed) {
      r.uncacheable = "its stdin is a pipe that is still open";
    } else {
      UniqueFd copy(::memfd_create("bsandbox-stdin", MFD_CLOEXEC));
      Hasher sh;
      char buf[65536];
      bool ok = copy.valid();
      for (ssize_t n; ok;) {
        n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          ok = n == 0;
          break;
        }
        sh.update(buf, static_cast<size_t>(n));
        ok = static_cast<bool>(write_all(copy.get(), {buf, static_cast<size_t>(n)}, "stdin copy"));
      }
      off_t size = ::lseek(copy.get(), 0, SEEK_CUR);
      if (!ok || ::lseek(copy.get(), 0, SEEK_SET) != 0) {
        r.uncacheable = "its stdin cannot be read";
      } else if (size == 0) {
        // As /dev/null: make -j gives all jobs but one such a pipe, and
        // which one gets which differs from build to build.
        field(h, "stdin empty");
      } else {
        field(h, "stdin pipe");
        field(h, sh.finish().raw());
        r.stdin_replacement = std::move(copy);
      }
    }
  } else {
    r.uncacheable = "its stdin is neither a file, a pipe nor a terminal";
  }
  if (!test_drops("fds")) key_inherited_fds(h, root, envp, &r.uncacheable);
  r.weak = h.finish();
  return r;
}

Result<void> Cache::walk_entries(const EntryVisitor& visit) {
  auto shards = list_dir(entries_.get(), printable(dir_) + "/entries");
  if (!shards) return tl::unexpected(shards.error());
  for (const auto& shard : *shards) {
    auto sfd = open_dir_at(entries_.get(), shard, printable(dir_) + "/entries/" + shard, false);
    if (!sfd) continue;
    auto weaks = list_dir(sfd->get(), shard);
    if (!weaks) continue;
    for (const auto& weak : *weaks) {
      std::string wrel = shard + "/" + weak;
      auto wfd = open_dir_at(sfd->get(), weak, wrel, false);
      if (!wfd) continue;
      auto names = list_dir(wfd->get(), wrel);
      if (!names) continue;
      for (const auto& name : *names) {
        std::string rel = wrel + "/" + name;
        struct stat st;
        if (name.starts_with(".bsandbox.") || ::fstatat(wfd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
          continue;
        std::string shown = printable(dir_) + "/entries/" + rel;
        bool foreign = false;
        auto entry = read_entry(wfd->get(), name, shown, key_, &foreign);
        if (foreign) continue;  // not this cache's kind of entry: left alone
        Result<Candidate> c = entry ? Result<Candidate>(Candidate{name, rel, std::move(*entry)})
                                    : Result<Candidate>(tl::unexpected(entry.error()));
        visit(rel, st, c);
      }
    }
  }
  return {};
}

// A stored input against the path's state now: "" if it matches, else
// what differs.
std::string Cache::mismatch(const pb::CacheInput& in, const std::string& p, const PathState& seen) {
  uint32_t a = in.aspects();
  auto want_kind = static_cast<FileKind>(in.kind());
  if (a == kAspectPresent) return seen.kind == FileKind::kAbsent ? printable(p) + " was removed" : "";
  if (seen.kind != want_kind) return describe_mismatch(in, p, seen.kind, "");
  if (a & kAspectMeta) {
    if (seen.mode != in.mode()) return describe_mismatch(in, p, seen.kind, "mode");
    if (seen.size != in.size()) return describe_mismatch(in, p, seen.kind, "size");
    if (seen.target != in.target()) return describe_mismatch(in, p, seen.kind, "symlink target");
    if (seen.kind == FileKind::kSymlink &&
        (static_cast<uint32_t>(seen.resolved_kind) != in.resolved_kind() || seen.resolved_mode != in.resolved_mode() ||
         seen.resolved_size != in.resolved_size()))
      return describe_mismatch(in, p, seen.kind, "what it points to");
  }
  if ((a & kAspectMtime) && time_of(seen) != in.mtime())
    return describe_mismatch(in, p, seen.kind, "modification time");
  if ((a & kAspectContent) && seen.content != Digest::from_raw(in.content()))
    return describe_mismatch(in, p, seen.kind, "content");
  if ((a & kAspectListing) && seen.kind == FileKind::kDir && listing_digest(seen.names).raw() != in.listing())
    return describe_mismatch(in, p, seen.kind, "listing");
  return "";
}

Result<std::optional<Cache::Hit>> Cache::fetch(CacheRequest& req, std::string* why,
                                               std::vector<std::string>* warnings) {
  auto held = lock(LOCK_SH);
  if (!held) return tl::unexpected(held.error());
  std::string weak = req.weak.hex(), wrel = weak.substr(0, 2) + "/" + weak;
  std::vector<pb::CacheEntry> seen_entries;  // for the look before a run (snapshot)
  UniqueFd wfd(::openat(entries_.get(), wrel.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!wfd.valid()) {
    *why = "no entry for this command (argv, cwd, environment, program and stdin: key " + weak.substr(0, 12) + ")";
    snapshot(req, seen_entries);
    return std::nullopt;
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
    Candidate c{name, wrel + "/" + name, std::move(*entry)};
    ++tried;
    std::string mismatch_why;
    if (c.entry.root_keyed() && c.entry.root() != req.root) {
      mismatch_why = "it was stored in another checkout (its outputs name " + printable(c.entry.root()) + ")";
    }
    // Each input as it is now; then the order of the modification times.
    TimeOrder order;
    std::vector<uint32_t> stored_places;
    for (const auto& in : c.entry.inputs()) {
      if (!mismatch_why.empty()) break;
      std::string p = absolute(in, req.root);
      auto now = look(p, in.aspects());
      if (!now) {
        mismatch_why = now.error().message;
        break;
      }
      mismatch_why = mismatch(in, p, *now);
      if (!mismatch_why.empty()) mismatch_why = "an input changed: " + mismatch_why;
      if (in.aspects() & (kAspectOrder | kAspectPlace)) {
        order.items.push_back({time_of(*now), (in.aspects() & kAspectOrder) != 0, p});
        stored_places.push_back(in.mtime_rank());
      }
    }
    if (mismatch_why.empty() && !order.items.empty()) {
      order.items.push_back({now_ns(), true, ""});
      stored_places.push_back(c.entry.start_rank());
      mismatch_why = order.changed(stored_places);
      if (!mismatch_why.empty()) mismatch_why = "an input changed: " + mismatch_why;
    }
    if (!mismatch_why.empty()) {
      if (first_why.empty()) first_why = mismatch_why;
      seen_entries.push_back(std::move(c.entry));
      continue;
    }
    // Every input matches: read what is replayed (verified) before any
    // output is touched, then restore the outputs.
    Hit hit;
    hit.entry_name = weak.substr(0, 12) + "/" + name.substr(0, 12);
    hit.exit_code = c.entry.exit_code();
    hit.run_ns = c.entry.run_ns();
    hit.root = c.entry.root();
    std::optional<Digest> damaged;
    Result<void> ok;
    auto load = [&](const std::string& raw, std::string& into) {
      if (!ok || raw.empty()) return;
      auto dg = Digest::from_raw(raw);
      auto bytes2 = dg ? store_.read(*dg) : Result<std::string>(fail(shown + ": bad object reference"));
      if (!bytes2) {
        ok = tl::unexpected(bytes2.error());
        if (dg) damaged = *dg;
      } else {
        into = std::move(*bytes2);
      }
    };
    load(c.entry.stdout_object(), hit.out);
    load(c.entry.stderr_object(), hit.err);
    load(c.entry.record_object(), hit.record);
    if (ok) ok = restore_outputs(c, req.root, why, &damaged);
    if (!ok) {
      if (damaged) {
        warnings->push_back(ok.error().message + "; removed, running the command");
        (void)store_.remove(*damaged);
        count(Event::kDamaged);
        *why = "a stored object was damaged";
        seen_entries.push_back(std::move(c.entry));
        snapshot(req, seen_entries);
        return std::nullopt;
      }
      if (!why->empty()) {  // the tree is not as the entry needs
        seen_entries.push_back(std::move(c.entry));
        snapshot(req, seen_entries);
        return std::nullopt;
      }
      return tl::unexpected(ok.error());
    }
    hit.outputs = static_cast<size_t>(c.entry.outputs_size());
    ::utimensat(wfd.get(), name.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);  // recently used, for gc
    return hit;
  }
  if (tried == 0) *why = "no entry for this command (key " + weak.substr(0, 12) + ")";
  else if (tried == 1) *why = first_why;
  else *why = std::to_string(tried) + " entries for this command, none matches; the newest: " + first_why;
  snapshot(req, seen_entries);
  return std::nullopt;
}

// The paths a run may stat and then replace are its outputs: those of its
// earlier runs (the entries under its weak key), and the paths its
// arguments name (`cp a b`, `-o x.o`, `--output=x`, and the words of a
// shell command line: make's recipes arrive as `sh -c '...'`). Looked at
// now, before it runs, they give save() what the run saw of them
// (classify: kBefore).
void Cache::snapshot(CacheRequest& req, const std::vector<pb::CacheEntry>& entries) {
  std::set<std::string> paths;
  for (const auto& e : entries)
    for (const auto& o : e.outputs()) paths.insert(path::resolve(req.root, o.path()));
  size_t budget = 4096;  // lstat()s for argument words: a bound on odd command lines
  auto word = [&](std::string_view w) {
    if (w.starts_with("-")) {
      size_t eq = w.find('=');
      if (eq != std::string_view::npos) w = w.substr(eq + 1);
      else if (w.starts_with("-o") && w.size() > 2) w = w.substr(2);
      else return;
    } else if (size_t eq = w.find('='); eq != std::string_view::npos) {
      w = w.substr(eq + 1);  // VAR=path
    }
    if (w.empty() || budget == 0) return;
    --budget;
    paths.insert(path::resolve(req.cwd, std::string(w)));
  };
  constexpr std::string_view kSeparators(" \t\n;&|<>()'\"`\0", 14);
  for (size_t i = 1; i < req.argv.size(); ++i) {
    std::string_view a = req.argv[i];
    for (size_t at = 0; at < a.size();) {
      size_t end = a.find_first_of(kSeparators, at);
      if (end == std::string_view::npos) end = a.size();
      if (end > at) word(a.substr(at, end - at));
      at = end + 1;
    }
  }
  // Content too (a run may read a file, or move it, before replacing it:
  // sed -i, ranlib, `mv x.tmp x`), up to a size worth reading on every miss.
  constexpr uint64_t kMaxContent = uint64_t{64} << 20;
  for (const auto& p : paths) {
    if (!path::is_within(p, req.root) || req.before.count(p)) continue;
    struct stat st;
    bool small = ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) <= kMaxContent;
    if (auto s = look(p, kAspectMeta | (small ? uint32_t{kAspectContent} : 0u))) req.before.emplace(p, std::move(*s));
  }
}

// Puts the outputs of an entry in place. Files and symlinks are first
// written under temporary names next to where they go (so a damaged object
// is found before anything is replaced), then deletions are made deepest
// first, then the temporaries renamed over their names and directory modes
// set. A parent directory the command did not create and that is missing
// now makes the restore a miss (*why): the command would not have run the
// same way.
Result<void> Cache::restore_outputs(const Candidate& c, const std::string& root, std::string* why,
                                    std::optional<Digest>* damaged) {
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return fail_errno(printable(root), errno);
  struct Staged {
    UniqueFd dir;
    std::string name, temp;
  };
  std::vector<Staged> staged;
  auto cleanup = [&] {
    for (auto& s : staged) ::unlinkat(s.dir.get(), s.temp.c_str(), 0);
  };
  auto parent_of = [&](const std::string& rel) -> Result<Parent> {
    int err = 0;
    auto p = open_parent(root_fd.get(), rel, &err);
    if (!p && err == ENOENT) *why = "the directory of " + printable(path::resolve(root, rel)) + " is missing";
    return p;
  };
  const auto& outs = c.entry.outputs();
  for (const auto& o : outs) {  // sorted: parents before children
    if (static_cast<FileKind>(o.kind()) != FileKind::kDir) continue;
    auto p = parent_of(o.path());
    if (!p) return cleanup(), tl::unexpected(p.error());
    struct stat st;
    if (::fstatat(p->dir.get(), p->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
      ::unlinkat(p->dir.get(), p->name.c_str(), 0);
    if (::mkdirat(p->dir.get(), p->name.c_str(), 0700) != 0 && errno != EEXIST)
      return cleanup(), fail_errno(printable(path::resolve(root, o.path())), errno);
  }
  // Files and symlinks are written in the order of the times the run left
  // them in (rustc writes a crate's .rmeta before its .rlib, and the next
  // rustc compares them), so that the kernel's clock stamps them in that
  // order too (a rename keeps a file's time). Times are not set by hand: a
  // time ahead of the kernel's coarse clock would make the outputs newer
  // than what the build writes next (cargo's build script outputs).
  std::vector<const pb::CacheOutput*> files;
  for (const auto& o : outs) {
    auto kind = static_cast<FileKind>(o.kind());
    if (kind == FileKind::kFile || kind == FileKind::kSymlink) files.push_back(&o);
  }
  std::stable_sort(files.begin(), files.end(), [](const pb::CacheOutput* a, const pb::CacheOutput* b) {
    return a->mtime_rank() < b->mtime_rank();
  });
  for (const pb::CacheOutput* op : files) {
    const auto& o = *op;
    auto kind = static_cast<FileKind>(o.kind());
    auto p = parent_of(o.path());
    if (!p) return cleanup(), tl::unexpected(p.error());
    Staged s{std::move(p->dir), std::move(p->name), temp_name()};
    if (kind == FileKind::kSymlink) {
      if (::symlinkat(o.target().c_str(), s.dir.get(), s.temp.c_str()) != 0)
        return cleanup(), fail_errno(printable(path::resolve(root, o.path())), errno);
    } else {
      auto d = Digest::from_raw(o.content());
      if (!d) return cleanup(), fail(printable(c.rel) + ": bad object reference");
      if (auto r = store_.restore(*d, s.dir.get(), s.temp, o.mode()); !r) {
        *damaged = *d;
        return cleanup(), tl::unexpected(r.error());
      }
    }
    staged.push_back(std::move(s));
  }
  for (auto o = outs.rbegin(); o != outs.rend(); ++o) {  // deepest first
    if (static_cast<FileKind>(o->kind()) != FileKind::kAbsent) continue;
    int err = 0;
    auto p = open_parent(root_fd.get(), o->path(), &err);
    if (!p) continue;  // its directory is gone: so is it
    if (::unlinkat(p->dir.get(), p->name.c_str(), 0) != 0 && errno == EISDIR &&
        ::unlinkat(p->dir.get(), p->name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
      return cleanup(), fail_errno(printable(path::resolve(root, o->path())), errno);
  }
  for (size_t i = 0; i < staged.size(); ++i) {
    auto& s = staged[i];
    if (::renameat(s.dir.get(), s.temp.c_str(), s.dir.get(), s.name.c_str()) != 0) {
      int e = errno;
      for (size_t j = i; j < staged.size(); ++j) ::unlinkat(staged[j].dir.get(), staged[j].temp.c_str(), 0);
      return fail_errno(printable(s.name), e);
    }
  }
  for (const auto& o : outs) {
    if (static_cast<FileKind>(o.kind()) != FileKind::kDir) continue;
    // By descriptor: a directory swapped for a symlink meanwhile is left
    // alone, not a chmod of whatever the symlink points at.
    if (auto dir = open_beneath(root_fd.get(), o.path(), O_PATH | O_DIRECTORY))
      (void)set_mode(dir->get(), o.mode(), o.path());
  }
  return {};
}

Result<Digest> Cache::put_counted(int fd, const std::string& what, uint64_t* added) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno(what, errno);
  bool already = false;
  auto d = store_.put(fd, what, &already);
  if (d && !already) *added += static_cast<uint64_t>(st.st_size);
  return d;
}

Result<std::string> Cache::save(const CacheRequest& req, const Record& rec, const PriorOf& prior, int out, int err,
                                int64_t run_ns) {
  if (!req.uncacheable.empty()) return req.uncacheable;
  if (rec.exit_code != 0 && !req.cache_failures)
    return "it exited with " + std::to_string(rec.exit_code) + " (--cache-failures stores failures too)";
  Classified c = classify(rec, prior, req.root, real_dir_, req.sockets);
  if (!c.uncacheable.empty()) return c.uncacheable;

  auto held = lock(LOCK_SH);
  if (!held) return tl::unexpected(held.error());
  uint64_t added = 0;
  pb::CacheEntry e;
  // The root as outputs would spell it: an entry whose outputs or output
  // name it hits only under the same root (gcc -g's DW_AT_comp_dir), one
  // that does not hits in any checkout.
  std::vector<std::string> root_spellings;
  if (req.root != "/" && !test_drops("root")) {
    root_spellings.push_back(req.root);
    if (char* real = ::realpath(req.root.c_str(), nullptr)) {
      if (req.root != real) root_spellings.push_back(real);
      std::free(real);
    }
  }
  bool names_root = false;
  std::vector<std::pair<pb::CacheOutput*, int64_t>> output_times;  // files and symlinks: ranked below
  std::unordered_map<std::string, std::vector<const Produced*>> produced_in;  // by parent dir
  for (const auto& p : c.produced) {
    size_t slash = p.path.rfind('/');
    produced_in[slash == 0 ? "/" : p.path.substr(0, slash)].push_back(&p);
    struct stat st;
    bool exists = ::lstat(p.path.c_str(), &st) == 0;
    if (!exists && errno != ENOENT && errno != ENOTDIR) return fail_errno(printable(p.path), errno);
    if (!p.in_root) {
      if (p.existed_before || exists)
        return "it writes " + printable(p.path) + ", outside " + printable(req.root);
      continue;  // a temporary file, made and removed
    }
    if (p.path == req.root) continue;
    if (!exists && !p.existed_before) continue;
    auto* o = e.add_outputs();
    o->set_path(relative(p.path, req.root));
    if (!exists) {
      o->set_kind(static_cast<uint32_t>(FileKind::kAbsent));
      continue;
    }
    FileKind kind = file_kind(st.st_mode);
    o->set_kind(static_cast<uint32_t>(kind));
    o->set_mode(st.st_mode & 07777);
    if (kind == FileKind::kFile || kind == FileKind::kSymlink) output_times.emplace_back(o, ns_of(st.st_mtim));
    if (kind == FileKind::kFile) {
      UniqueFd fd(::open(p.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return fail_errno(printable(p.path), errno);
      auto d = put_counted(fd.get(), printable(p.path), &added);
      if (!d) return tl::unexpected(d.error());
      o->set_content(std::string(d->raw()));
      o->set_size(static_cast<uint64_t>(st.st_size));
      names_root = names_root || contains_any(fd.get(), root_spellings);
    } else if (kind == FileKind::kSymlink) {
      auto target = link_target(p.path);
      if (!target) return tl::unexpected(target.error());
      o->set_target(*target);
      for (const auto& r : root_spellings) names_root = names_root || o->target().find(r) != std::string::npos;
    } else if (kind != FileKind::kDir) {
      return "it leaves a " + std::string(kind_name(kind)) + " at " + printable(p.path);
    }
  }
  {
    std::vector<int64_t> t;
    for (const auto& [o, ns] : output_times) t.push_back(ns);
    auto ranks = dense_ranks(t);
    for (size_t i = 0; i < output_times.size(); ++i) output_times[i].first->set_mtime_rank(ranks[i]);
  }
  TimeOrder order;  // of the ordered and placed inputs, then the start
  std::vector<pb::CacheInput*> ordered;
  for (const auto& in : c.inputs) {
    PathState seen;
    std::string shown = printable(in.path);
    uint32_t aspects = in.aspects;
    if (in.from == InputFrom::kBefore && test_drops("before")) continue;
    if (in.from == InputFrom::kBefore && in.aspects == kAspectAbsent) {
      seen.kind = FileKind::kAbsent;  // what the run found, before it made the path
    } else if (in.from == InputFrom::kBefore && in.aspects == kAspectPresent) {
      seen.kind = FileKind::kOther;  // not compared: only that something is there
    } else if (in.from == InputFrom::kBefore) {
      auto it = req.before.find(in.path);
      const char* did = (in.aspects & kAspectContent)   ? "reads or moves"
                        : (in.aspects & kAspectListing) ? "lists"
                                                        : "looks at";
      std::string unknown = "it " + std::string(did) + " " + shown + " before changing it, and " + shown +
                            " as it was before it ran is unknown";
      if (it == req.before.end())
        return unknown + " (not named by its arguments nor made by an earlier run of it)";
      seen = it->second;
      if ((in.aspects & kAspectListing) && seen.kind == FileKind::kDir)
        return "it lists or moves the directory " + shown + ", which it also changes";
      aspects &= ~kAspectListing;  // a file moved away: its content is what moved
      if (seen.kind == FileKind::kSymlink && (aspects & kAspectContent))
        aspects = (aspects & ~kAspectContent) | kAspectMeta;  // a symlink moved: its target
      if ((aspects & kAspectContent) && seen.kind == FileKind::kFile && !seen.content)
        return unknown + " (too large to look at before every run)";
    } else {
      auto now = look(in.path, in.aspects);
      if (!now) return tl::unexpected(now.error());
      seen = std::move(*now);
    }
    if (in.from == InputFrom::kNow) {
      // What it saw must be what is there now: a change by someone else
      // while it ran would put in the key a state it never saw.
      if ((in.aspects & kAspectAbsent) && !(in.aspects & ~kAspectAbsent) && seen.kind != FileKind::kAbsent)
        return shown + " appeared while it ran";
      bool content_seen = (in.aspects & kAspectContent) && seen.kind == FileKind::kFile;
      bool time_seen = (in.aspects & kAspectMeta) && has_keyed_time(seen);
      if ((content_seen || time_seen) && seen.ctime_ns >= rec.start_ns) return shown + " changed while it ran";
      if (time_seen && seen.kind == FileKind::kSymlink && seen.resolved_ctime_ns >= rec.start_ns)
        return shown + " changed while it ran";
      bool unkeyed = std::find(req.unkeyed_listings.begin(), req.unkeyed_listings.end(), in.path) !=
                     req.unkeyed_listings.end();
      if ((in.aspects & kAspectListing) && seen.kind == FileKind::kDir && seen.ctime_ns >= rec.start_ns &&
          !produced_in.count(in.path) && !unkeyed)
        return "the listing of " + shown + " changed while it ran";
    }
    auto* pi = e.add_inputs();
    bool in_root = path::is_within(in.path, req.root);
    pi->set_path(in_root ? relative(in.path, req.root) : in.path);
    pi->set_in_root(in_root);
    if (!has_keyed_time(seen)) aspects &= ~(kAspectMtime | kAspectOrder | kAspectPlace);
    if (test_drops("mtime")) aspects &= ~kAspectMtime;
    if (test_drops("order")) aspects &= ~(kAspectOrder | kAspectPlace);
    pi->set_kind(static_cast<uint32_t>(seen.kind));
    if (aspects & kAspectMeta) {
      pi->set_mode(seen.mode);
      pi->set_size(seen.size);
      pi->set_target(seen.target);
      if (seen.kind == FileKind::kSymlink) {
        pi->set_resolved_kind(static_cast<uint32_t>(seen.resolved_kind));
        pi->set_resolved_mode(seen.resolved_mode);
        pi->set_resolved_size(seen.resolved_size);
      }
    }
    if (aspects & kAspectMtime) pi->set_mtime(time_of(seen));
    if (aspects & (kAspectOrder | kAspectPlace)) {
      order.items.push_back({time_of(seen), (aspects & kAspectOrder) != 0, in.path});
      ordered.push_back(pi);
    }
    if ((aspects & kAspectContent) && seen.content) pi->set_content(std::string(seen.content->raw()));
    if ((aspects & kAspectListing) &&
        std::find(req.unkeyed_listings.begin(), req.unkeyed_listings.end(), in.path) != req.unkeyed_listings.end()) {
      aspects = (aspects & ~kAspectListing) | kAspectMeta;  // its kind and mode still count
      pi->set_mode(seen.mode);
    } else if ((aspects & kAspectListing) && seen.kind == FileKind::kDir) {
      // The listing as the run found it: without the names it made, with
      // the ones it removed.
      std::set<std::string> names(seen.names.begin(), seen.names.end());
      if (auto it = produced_in.find(in.path); it != produced_in.end()) {
        for (const Produced* p : it->second) {
          std::string base = p->path.substr(p->path.rfind('/') + 1);
          if (p->existed_before) names.insert(base);
          else names.erase(base);
        }
      }
      pi->set_listing(std::string(listing_digest({names.begin(), names.end()}).raw()));
    }
    pi->set_aspects(aspects);
  }
  if (!ordered.empty()) {
    order.items.push_back({rec.start_ns, true, ""});
    auto places = order.places();
    for (size_t i = 0; i < ordered.size(); ++i) ordered[i]->set_mtime_rank(places[i]);
    e.set_start_rank(places.back());
  }
  auto put_output = [&](int fd, std::string* into) -> Result<void> {
    if (::lseek(fd, 0, SEEK_END) == 0) return {};  // printed nothing: no object
    auto d = put_counted(fd, "captured output", &added);
    if (!d) return tl::unexpected(d.error());
    *into = std::string(d->raw());
    names_root = names_root || contains_any(fd, root_spellings);
    return {};
  };
  std::string so, se;
  if (auto r = put_output(out, &so); !r) return tl::unexpected(r.error());
  if (auto r = put_output(err, &se); !r) return tl::unexpected(r.error());
  UniqueFd record_file(::memfd_create("bsandbox-record", MFD_CLOEXEC));
  if (!record_file.valid()) return fail_errno("memfd_create", errno);
  if (auto w = write_all(record_file.get(), to_protobuf(rec), "record"); !w) return tl::unexpected(w.error());
  auto record = put_counted(record_file.get(), "record", &added);
  if (!record) return tl::unexpected(record.error());
  e.set_stdout_object(so);
  e.set_stderr_object(se);
  e.set_record_object(std::string(record->raw()));
  e.set_weak_key(std::string(req.weak.raw()));
  for (const auto& a : req.argv) e.add_argv(a);
  e.set_cwd(req.cwd);
  e.set_exit_code(rec.exit_code);
  e.set_created_ns(now_ns());
  e.set_run_ns(run_ns);
  e.set_root(req.root);
  e.set_root_keyed(names_root);

  // The strong key: every input as it must look, their times' order, and
  // the root for an entry that names it.
  Hasher strong;
  for (const auto& pi : e.inputs()) field(strong, pi.SerializeAsString());
  field(strong, "start rank " + std::to_string(e.start_rank()));
  if (names_root) field(strong, "root " + req.root);

  std::string weak = req.weak.hex(), shard = weak.substr(0, 2);
  auto sfd = open_dir_at(entries_.get(), shard, "cache entries", true, dir_mode_);
  if (!sfd) return tl::unexpected(sfd.error());
  auto wfd = open_dir_at(sfd->get(), weak, "cache entries", true, dir_mode_);
  if (!wfd) return tl::unexpected(wfd.error());
  std::string sealed = key_.empty() ? seal(kMagic, e.SerializeAsString()) : sign(key_, e.SerializeAsString());
  if (auto w = replace_file_at(wfd->get(), strong.finish().hex(), sealed, "cache entry", 0644, false); !w)
    return tl::unexpected(w.error());
  added += sealed.size();
  held->reset();

  CacheStats now = count(Event::kStored, added);
  uint64_t limit = default_max_bytes();
  if (now.bytes_since_gc > limit / 10) (void)gc(limit);  // gc skips when another process holds the cache
  return std::string();
}

CacheStats Cache::count(Event e, uint64_t n) {
  UniqueFd fd(::openat(dir_fd_.get(), "stats", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666 & dir_mode_));
  if (fd.valid()) (void)::fchmod(fd.get(), 0666 & dir_mode_);
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

Result<Cache::Usage> Cache::usage() {
  Usage u;
  auto r = walk_entries([&](const std::string&, const struct stat& st, const Result<Candidate>&) {
    ++u.entries;
    u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  });
  if (!r) return tl::unexpected(r.error());
  auto objects = store_.list();
  if (!objects) return tl::unexpected(objects.error());
  u.objects = objects->size();
  for (const auto& d : *objects) u.bytes += store_.disk_bytes(d);
  return u;
}

Result<std::string> Cache::gc(uint64_t max_bytes) {
  auto held = lock(LOCK_EX, /*wait=*/false);
  if (!held) return fail("the cache is in use by another bsandbox; try again");
  struct Item {
    std::string rel;
    int64_t used_ns;
    uint64_t bytes;
    std::vector<Digest> refs;
  };
  std::vector<Item> items;
  uint64_t damaged = 0;
  auto walked = walk_entries([&](const std::string& rel, const struct stat& st, const Result<Candidate>& c) {
    if (!c) {
      ++damaged;
      ::unlinkat(entries_.get(), rel.c_str(), 0);
      return;
    }
    Item it{rel, ns_of(st.st_mtim), static_cast<uint64_t>(st.st_blocks) * 512, {}};
    auto ref = [&](const std::string& raw) {
      if (auto d = Digest::from_raw(raw)) it.refs.push_back(*d);
    };
    for (const auto& o : c->entry.outputs()) ref(o.content());
    ref(c->entry.stdout_object());
    ref(c->entry.stderr_object());
    ref(c->entry.record_object());
    items.push_back(std::move(it));
  });
  if (!walked) return tl::unexpected(walked.error());
  auto objects = store_.list();
  if (!objects) return tl::unexpected(objects.error());
  std::map<Digest, std::pair<uint64_t, size_t>> objs;  // size, references
  uint64_t total = 0;
  for (const auto& d : *objects) {
    uint64_t b = store_.disk_bytes(d);
    objs[d] = {b, 0};
    total += b;
  }
  for (const auto& it : items) {
    total += it.bytes;
    for (const auto& d : it.refs)
      if (auto o = objs.find(d); o != objs.end()) ++o->second.second;
  }
  uint64_t before = total;
  // Least recently used first, down to 90% of the limit so the next few
  // stores do not trigger another gc at once.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.used_ns < b.used_ns; });
  size_t dropped = 0;
  uint64_t target = max_bytes / 10 * 9;
  // Objects no entry refers to (left by a run that failed before writing
  // its entry) go whatever the size.
  for (auto& [d, info] : objs) {
    if (info.second == 0) total -= info.first;
  }
  for (const auto& it : items) {
    if (before <= max_bytes || total <= target) break;
    ::unlinkat(entries_.get(), it.rel.c_str(), 0);
    total -= it.bytes;
    ++dropped;
    for (const auto& d : it.refs) {
      auto o = objs.find(d);
      if (o != objs.end() && o->second.second > 0 && --o->second.second == 0) total -= o->second.first;
    }
  }
  size_t freed_objects = 0;
  for (const auto& [d, info] : objs) {
    if (info.second == 0 && store_.remove(d)) ++freed_objects;
  }
  // Empty key directories, and the hash memo (an accelerator, rebuilt as
  // files are seen again).
  if (auto shards = list_dir(entries_.get(), "entries")) {
    for (const auto& shard : *shards) {
      if (auto ws = open_dir_at(entries_.get(), shard, shard, false)) {
        if (auto weaks = list_dir(ws->get(), shard))
          for (const auto& w : *weaks) ::unlinkat(ws->get(), w.c_str(), AT_REMOVEDIR);
      }
      ::unlinkat(entries_.get(), shard.c_str(), AT_REMOVEDIR);
    }
  }
  if (auto memo = list_dir(hashes_.get(), "hashes"))
    for (const auto& m : *memo) ::unlinkat(hashes_.get(), m.c_str(), 0);
  count(Event::kGc);
  return "removed " + std::to_string(dropped) + " entries" +
         (damaged ? " (and " + std::to_string(damaged) + " damaged ones)" : std::string()) + " and " +
         std::to_string(freed_objects) + " objects; " + format_size(before) + " -> " + format_size(total) +
         " (limit " + format_size(max_bytes) + ")";
}

Result<std::string> Cache::verify(uint64_t* damaged) {
  auto held = lock(LOCK_EX);
  if (!held) return tl::unexpected(held.error());
  *damaged = 0;
  std::vector<std::string> bad_objects;
  auto objects = store_.list();
  if (!objects) return tl::unexpected(objects.error());
  std::set<Digest> good;
  for (const auto& d : *objects) {
    if (auto v = store_.verify(d)) {
      good.insert(d);
    } else {
      bad_objects.push_back(v.error().message);
      (void)store_.remove(d);
      ++*damaged;
    }
  }
  uint64_t entries = 0, bad_entries = 0;
  std::vector<std::string> notes;
  auto walked = walk_entries([&](const std::string& rel, const struct stat&, const Result<Candidate>& c) {
    ++entries;
    bool ok = static_cast<bool>(c);
    if (ok) {
      auto has = [&](const std::string& raw) {
        auto d = Digest::from_raw(raw);
        return raw.empty() || (d && good.count(*d));
      };
      for (const auto& o : c->entry.outputs())
        if (static_cast<FileKind>(o.kind()) == FileKind::kFile && !has(o.content())) ok = false;
      if (!has(c->entry.stdout_object()) || !has(c->entry.stderr_object()) || !has(c->entry.record_object()))
        ok = false;
      if (!ok) notes.push_back(printable(dir_) + "/entries/" + rel + ": refers to a missing or damaged object");
    } else {
      notes.push_back(c.error().message);
    }
    if (!ok) {
      ++bad_entries;
      ::unlinkat(entries_.get(), rel.c_str(), 0);
    }
  });
  if (!walked) return tl::unexpected(walked.error());
  *damaged += bad_entries;
  std::string out;
  for (const auto& m : bad_objects) out += m + "; removed\n";
  for (const auto& m : notes) out += m + "; removed\n";
  out += "checked " + std::to_string(entries) + " entries and " + std::to_string(objects->size()) +
         " objects: " + std::to_string(bad_objects.size()) + " damaged objects, " +
         std::to_string(bad_entries) + " unusable entries";
  return out;
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
