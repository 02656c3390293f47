// look.cpp: see look.h. A look takes one lstat() of the path, and only what
// its aspects ask beyond that: a symlink's target and a stat() through it,
// a file's hash (through the memo, from a descriptor opened without
// blocking on a fifo), a directory's names.
#include "sandbox/cache/look.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sandbox/base/clocks.h"
#include "sandbox/base/io.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "sandbox/core/path.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

constexpr int64_t kSecond = 1000000000;

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

}  // namespace

std::string input_path(const pb::CacheInput& in, const std::string& root) {
  return in.in_root() ? path::resolve(root, in.path()) : in.path();
}

void hash_field(Hasher& h, std::string_view s) {
  uint64_t n = s.size();
  h.update(&n, sizeof n);
  h.update(s.data(), s.size());
}

int64_t ns_of(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * kSecond + t.tv_nsec; }

Result<std::string> link_target(const std::string& path) {
  auto target = read_link(path);  // its message names path as it is
  if (!target) return fail(printable(path) + target.error().message.substr(path.size()));
  return target;
}

std::string HashMemo::name_of(const struct stat& st) {
  uint64_t key_fields[7] = {st.st_dev,
                            st.st_ino,
                            static_cast<uint64_t>(st.st_size),
                            static_cast<uint64_t>(st.st_mtim.tv_sec),
                            static_cast<uint64_t>(st.st_mtim.tv_nsec),
                            static_cast<uint64_t>(st.st_ctim.tv_sec),
                            static_cast<uint64_t>(st.st_ctim.tv_nsec)};
  return hash_bytes({reinterpret_cast<const char*>(key_fields), sizeof key_fields}).hex();
}

Result<Digest> HashMemo::hash(int fd, const struct stat& st, const std::string& what) const {
  std::string name = name_of(st);
  size_t want = key_.empty() ? 32 : 64;  // the digest, then its signature
  char raw[65];
  UniqueFd memo(::openat(dir_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (memo.valid() && ::read(memo.get(), raw, sizeof raw) == static_cast<ssize_t>(want) &&
      (key_.empty() || same_secret({raw + 32, 32}, hmac(key_, name + std::string(raw, 32))))) {
    if (auto d = Digest::from_raw({raw, 32})) return *d;
  }
  auto d = hash_fd(fd, what);
  if (!d) return d;
  struct stat after;
  if (Clocks::wall_now() - ns_of(st.st_ctim) >= 2 * kSecond && ::fstat(fd, &after) == 0 &&
      after.st_size == st.st_size && ns_of(after.st_mtim) == ns_of(st.st_mtim) &&
      ns_of(after.st_ctim) == ns_of(st.st_ctim)) {
    std::string memo_text(d->raw());
    if (!key_.empty()) memo_text += hmac(key_, name + memo_text);
    (void)replace_file_at(dir_, name, memo_text, "hash cache", 0644, false);
  }
  return d;
}

void HashMemo::forget_all() const {
  if (auto memo = list_dir(dir_, "hashes"))
    for (const auto& m : *memo) ::unlinkat(dir_, m.c_str(), 0);
}

Result<PathState> look(const std::string& p, uint32_t aspects, const HashMemo& memo) {
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
      auto d = memo.hash(fd.get(), fst, printable(p));
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

int64_t time_of(const PathState& s) { return s.kind == FileKind::kSymlink ? s.resolved_mtime_ns : s.mtime_ns; }

bool has_keyed_time(const PathState& s) {
  FileKind k = s.kind == FileKind::kSymlink ? s.resolved_kind : s.kind;
  return k != FileKind::kAbsent && k != FileKind::kDir;
}

Digest listing_digest(const std::vector<std::string>& names) {
  Hasher h;
  for (const auto& n : names) hash_field(h, n);
  return h.finish();
}

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

std::vector<uint32_t> TimeOrder::places() const {
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

std::string TimeOrder::changed(const std::vector<uint32_t>& stored) const {
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

std::string mismatch(const pb::CacheInput& in, const std::string& p, const PathState& seen) {
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

std::string entry_mismatch(const pb::CacheEntry& e, const std::string& root, const HashMemo& memo) {
  if (e.root_keyed() && e.root() != root)
    return "it was stored in another checkout (its outputs name " + printable(e.root()) + ")";
  // Each input as it is now; then the order of the modification times.
  TimeOrder order;
  std::vector<uint32_t> stored_places;
  for (const auto& in : e.inputs()) {
    std::string p = input_path(in, root);
    auto now = look(p, in.aspects(), memo);
    if (!now) return now.error().message;
    if (std::string why = mismatch(in, p, *now); !why.empty()) return "an input changed: " + why;
    if (in.aspects() & (kAspectOrder | kAspectPlace)) {
      order.items.push_back({time_of(*now), (in.aspects() & kAspectOrder) != 0, p});
      stored_places.push_back(in.mtime_rank());
    }
  }
  if (order.items.empty()) return "";
  order.items.push_back({Clocks::wall_now(), true, ""});
  stored_places.push_back(e.start_rank());
  std::string why = order.changed(stored_places);
  return why.empty() ? "" : "an input changed: " + why;
}

}  // namespace bsandbox
