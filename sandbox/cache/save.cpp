// save.cpp: see save.h. An EntryBuilder fills one entry in the order the
// checks need: outputs first (their files go to the store whatever follows:
// an object no entry refers to is gc's), then inputs (each one's state, the
// checks that it did not change while the run ran, then what is keyed of
// it), then the output streams and the record, then the strong key.
#include "sandbox/cache/save.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <unordered_map>
#include <vector>

#include "sandbox/base/clocks.h"
#include "sandbox/base/io.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/key.h"
#include "sandbox/core/path.h"

namespace bsandbox {
namespace {

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

// The root as outputs would spell it: as given, and with symlinks resolved.
std::vector<std::string> root_spellings(const std::string& root) {
  std::vector<std::string> out;
  if (root == "/" || test_drops("root")) return out;
  out.push_back(root);
  if (char* real = ::realpath(root.c_str(), nullptr)) {
    if (root != real) out.push_back(real);
    std::free(real);
  }
  return out;
}

class EntryBuilder {
 public:
  EntryBuilder(const CacheRequest& req, const Record& rec, const Classified& c, Store& store, const HashMemo& memo,
               pb::CacheEntry* e, uint64_t* added)
      : req_(req), rec_(rec), c_(c), store_(store), memo_(memo), e_(*e), added_(added),
        root_spellings_(root_spellings(req.root)) {
    for (const auto& p : c.produced) {
      size_t slash = p.path.rfind('/');
      produced_in_[slash == 0 ? "/" : p.path.substr(0, slash)].push_back(&p);
    }
  }

  Result<std::string> outputs();
  Result<std::string> inputs();
  Result<void> streams(int out, int err);
  bool names_root() const { return names_root_; }

 private:
  using Timed = std::vector<std::pair<pb::CacheOutput*, int64_t>>;
  Result<std::string> output(const Produced& p, Timed* times);
  Result<std::string> seen_state(const ObservedInput& in, PathState* seen, uint32_t* aspects);
  std::string changed_while_running(const ObservedInput& in, const PathState& seen) const;
  void add_input(const ObservedInput& in, const PathState& seen, uint32_t aspects, TimeOrder* order,
                 std::vector<pb::CacheInput*>* ordered);
  Digest listing_before(const std::string& dir, const PathState& seen) const;
  bool unkeyed(const std::string& path) const {
    return std::find(req_.unkeyed_listings.begin(), req_.unkeyed_listings.end(), path) !=
           req_.unkeyed_listings.end();
  }

  const CacheRequest& req_;
  const Record& rec_;
  const Classified& c_;
  Store& store_;
  const HashMemo& memo_;
  pb::CacheEntry& e_;
  uint64_t* added_;
  std::vector<std::string> root_spellings_;
  bool names_root_ = false;  // an output, or what it printed, names the root
  std::unordered_map<std::string, std::vector<const Produced*>> produced_in_;  // by parent dir
};

// One product: an output of the entry, "" when there is nothing to store
// (a temporary made and removed, the root itself), or why not cacheable.
Result<std::string> EntryBuilder::output(const Produced& p, Timed* times) {
  struct stat st;
  bool exists = ::lstat(p.path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT && errno != ENOTDIR) return fail_errno(printable(p.path), errno);
  if (!p.in_root) {
    if (p.existed_before || exists) return "it writes " + printable(p.path) + ", outside " + printable(req_.root);
    return "";  // a temporary file, made and removed
  }
  if (p.path == req_.root || (!exists && !p.existed_before)) return "";
  auto* o = e_.add_outputs();
  o->set_path(root_relative(p.path, req_.root));
  if (!exists) {
    o->set_kind(static_cast<uint32_t>(FileKind::kAbsent));
    return "";
  }
  FileKind kind = file_kind(st.st_mode);
  o->set_kind(static_cast<uint32_t>(kind));
  o->set_mode(st.st_mode & 07777);
  if (kind == FileKind::kFile || kind == FileKind::kSymlink) times->emplace_back(o, ns_of(st.st_mtim));
  if (kind == FileKind::kFile) {
    UniqueFd fd(::open(p.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(printable(p.path), errno);
    auto d = put_counted(store_, fd.get(), printable(p.path), added_);
    if (!d) return tl::unexpected(d.error());
    o->set_content(std::string(d->raw()));
    o->set_size(static_cast<uint64_t>(st.st_size));
    names_root_ = names_root_ || contains_any(fd.get(), root_spellings_);
  } else if (kind == FileKind::kSymlink) {
    auto target = link_target(p.path);
    if (!target) return tl::unexpected(target.error());
    o->set_target(*target);
    for (const auto& r : root_spellings_) names_root_ = names_root_ || o->target().find(r) != std::string::npos;
  } else if (kind != FileKind::kDir) {
    return "it leaves a " + std::string(kind_name(kind)) + " at " + printable(p.path);
  }
  return "";
}

Result<std::string> EntryBuilder::outputs() {
  Timed times;  // files and symlinks: ranked by the times the run left them
  for (const auto& p : c_.produced) {
    auto r = output(p, &times);
    if (!r || !r->empty()) return r;
  }
  std::vector<int64_t> t;
  for (const auto& [o, ns] : times) t.push_back(ns);
  auto ranks = dense_ranks(t);
  for (size_t i = 0; i < times.size(); ++i) times[i].first->set_mtime_rank(ranks[i]);
  return "";
}

// What the run saw of in (*seen), and what of it can be keyed (*aspects,
// narrowed for a path it changed); "" or why it cannot be stored.
Result<std::string> EntryBuilder::seen_state(const ObservedInput& in, PathState* seen, uint32_t* aspects) {
  if (in.from == InputFrom::kBefore && in.aspects == kAspectAbsent) {
    seen->kind = FileKind::kAbsent;  // what the run found, before it made the path
  } else if (in.from == InputFrom::kBefore && in.aspects == kAspectPresent) {
    seen->kind = FileKind::kOther;  // not compared: only that something is there
  } else if (in.from == InputFrom::kBefore) {
    std::string shown = printable(in.path);
    auto it = req_.before.find(in.path);
    const char* did = (in.aspects & kAspectContent)   ? "reads or moves"
                      : (in.aspects & kAspectListing) ? "lists"
                                                      : "looks at";
    std::string unknown = "it " + std::string(did) + " " + shown + " before changing it, and " + shown +
                          " as it was before it ran is unknown";
    if (it == req_.before.end()) return unknown + " (not named by its arguments nor made by an earlier run of it)";
    *seen = it->second;
    if ((in.aspects & kAspectListing) && seen->kind == FileKind::kDir)
      return "it lists or moves the directory " + shown + ", which it also changes";
    *aspects &= ~kAspectListing;  // a file moved away: its content is what moved
    if (seen->kind == FileKind::kSymlink && (*aspects & kAspectContent))
      *aspects = (*aspects & ~kAspectContent) | kAspectMeta;  // a symlink moved: its target
    if ((*aspects & kAspectContent) && seen->kind == FileKind::kFile && !seen->content)
      return unknown + " (too large to look at before every run)";
  } else {
    auto now = look(in.path, in.aspects, memo_);
    if (!now) return tl::unexpected(now.error());
    *seen = std::move(*now);
  }
  return "";
}

// A path the run did not change: what it saw must be what is there now; a
// change by someone else while it ran would put in the key a state it never
// saw. "" or what changed.
std::string EntryBuilder::changed_while_running(const ObservedInput& in, const PathState& seen) const {
  std::string shown = printable(in.path);
  if ((in.aspects & kAspectAbsent) && !(in.aspects & ~kAspectAbsent) && seen.kind != FileKind::kAbsent)
    return shown + " appeared while it ran";
  bool content_seen = (in.aspects & kAspectContent) && seen.kind == FileKind::kFile;
  bool time_seen = (in.aspects & kAspectMeta) && has_keyed_time(seen);
  if ((content_seen || time_seen) && seen.ctime_ns >= rec_.start_ns) return shown + " changed while it ran";
  if (time_seen && seen.kind == FileKind::kSymlink && seen.resolved_ctime_ns >= rec_.start_ns)
    return shown + " changed while it ran";
  if ((in.aspects & kAspectListing) && seen.kind == FileKind::kDir && seen.ctime_ns >= rec_.start_ns &&
      !produced_in_.count(in.path) && !unkeyed(in.path))
    return "the listing of " + shown + " changed while it ran";
  return "";
}

// The listing of dir as the run found it: without the names it made, with
// the ones it removed.
Digest EntryBuilder::listing_before(const std::string& dir, const PathState& seen) const {
  std::set<std::string> names(seen.names.begin(), seen.names.end());
  if (auto it = produced_in_.find(dir); it != produced_in_.end()) {
    for (const Produced* p : it->second) {
      std::string base = p->path.substr(p->path.rfind('/') + 1);
      if (p->existed_before) names.insert(base);
      else names.erase(base);
    }
  }
  return listing_digest({names.begin(), names.end()});
}

void EntryBuilder::add_input(const ObservedInput& in, const PathState& seen, uint32_t aspects, TimeOrder* order,
                             std::vector<pb::CacheInput*>* ordered) {
  auto* pi = e_.add_inputs();
  bool in_root = path::is_within(in.path, req_.root);
  pi->set_path(in_root ? root_relative(in.path, req_.root) : in.path);
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
    order->items.push_back({time_of(seen), (aspects & kAspectOrder) != 0, in.path});
    ordered->push_back(pi);
  }
  if ((aspects & kAspectContent) && seen.content) pi->set_content(std::string(seen.content->raw()));
  if ((aspects & kAspectListing) && unkeyed(in.path)) {
    aspects = (aspects & ~kAspectListing) | kAspectMeta;  // its kind and mode still count
    pi->set_mode(seen.mode);
  } else if ((aspects & kAspectListing) && seen.kind == FileKind::kDir) {
    pi->set_listing(std::string(listing_before(in.path, seen).raw()));
  }
  pi->set_aspects(aspects);
}

Result<std::string> EntryBuilder::inputs() {
  TimeOrder order;  // of the ordered and placed inputs, then the start
  std::vector<pb::CacheInput*> ordered;
  for (const auto& in : c_.inputs) {
    if (in.from == InputFrom::kBefore && test_drops("before")) continue;
    PathState seen;
    uint32_t aspects = in.aspects;
    auto why = seen_state(in, &seen, &aspects);
    if (!why || !why->empty()) return why;
    if (in.from == InputFrom::kNow)
      if (std::string changed = changed_while_running(in, seen); !changed.empty()) return changed;
    add_input(in, seen, aspects, &order, &ordered);
  }
  if (!ordered.empty()) {
    order.items.push_back({rec_.start_ns, true, ""});
    auto places = order.places();
    for (size_t i = 0; i < ordered.size(); ++i) ordered[i]->set_mtime_rank(places[i]);
    e_.set_start_rank(places.back());
  }
  return "";
}

Result<void> EntryBuilder::streams(int out, int err) {
  auto put_output = [&](int fd, std::string* into, uint64_t* size) -> Result<void> {
    off_t end = ::lseek(fd, 0, SEEK_END);
    if (end == 0) return {};  // printed nothing: no object
    auto d = put_counted(store_, fd, "captured output", added_);
    if (!d) return tl::unexpected(d.error());
    *into = std::string(d->raw());
    *size = end > 0 ? static_cast<uint64_t>(end) : 0;
    names_root_ = names_root_ || contains_any(fd, root_spellings_);
    return {};
  };
  std::string so, se;
  uint64_t so_size = 0, se_size = 0;
  if (auto r = put_output(out, &so, &so_size); !r) return r;
  if (auto r = put_output(err, &se, &se_size); !r) return r;
  UniqueFd record_file(::memfd_create("bsandbox-record", MFD_CLOEXEC));
  if (!record_file.valid()) return fail_errno("memfd_create", errno);
  std::string record_bytes = to_protobuf(rec_);
  if (auto w = write_all(record_file.get(), record_bytes, "record"); !w) return w;
  auto record = put_counted(store_, record_file.get(), "record", added_);
  if (!record) return tl::unexpected(record.error());
  e_.set_stdout_object(so);
  e_.set_stderr_object(se);
  e_.set_record_object(std::string(record->raw()));
  e_.set_stdout_size(so_size);
  e_.set_stderr_size(se_size);
  e_.set_record_size(record_bytes.size());
  return {};
}

}  // namespace

Digest strong_key_of(const pb::CacheEntry& e) {
  Hasher strong;
  for (const auto& pi : e.inputs()) hash_field(strong, pi.SerializeAsString());
  hash_field(strong, "start rank " + std::to_string(e.start_rank()));
  if (e.root_keyed()) hash_field(strong, "root " + e.root());
  return strong.finish();
}

Result<Digest> put_counted(Store& store, int fd, const std::string& what, uint64_t* added) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno(what, errno);
  bool already = false;
  auto d = store.put(fd, what, &already);
  if (d && !already) *added += static_cast<uint64_t>(st.st_size);
  return d;
}

Result<std::string> build_entry(const CacheRequest& req, const Record& rec, const Classified& c, int out, int err,
                                int64_t run_ns, Store& store, const HashMemo& memo, pb::CacheEntry* e,
                                Digest* strong, uint64_t* added) {
  EntryBuilder b(req, rec, c, store, memo, e, added);
  if (auto r = b.outputs(); !r || !r->empty()) return r;
  if (auto r = b.inputs(); !r || !r->empty()) return r;
  if (auto r = b.streams(out, err); !r) return tl::unexpected(r.error());
  e->set_weak_key(std::string(req.weak.raw()));
  for (const auto& a : req.argv) e->add_argv(a);
  e->set_cwd(req.cwd);
  e->set_exit_code(rec.exit_code);
  e->set_created_ns(Clocks::wall_now());
  e->set_run_ns(run_ns);
  e->set_root(req.root);
  e->set_root_keyed(b.names_root());
  *strong = strong_key_of(*e);
  return "";
}

}  // namespace bsandbox
