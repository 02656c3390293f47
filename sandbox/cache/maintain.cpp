// maintain.cpp: see maintain.h. gc counts references: every object starts
// with the number of entries that name it, an entry removed takes its
// references away, and an object whose count reaches zero is freed with it.
// Sizes are what files occupy on disk (blocks), not their lengths.
#include "sandbox/cache/maintain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

// Every object an entry refers to.
std::vector<Digest> references(const pb::CacheEntry& e) {
  std::vector<Digest> refs;
  auto ref = [&](const std::string& raw) {
    if (auto d = Digest::from_raw(raw)) refs.push_back(*d);
  };
  for (const auto& o : e.outputs()) ref(o.content());
  ref(e.stdout_object());
  ref(e.stderr_object());
  ref(e.record_object());
  return refs;
}

// What gc weighs: the entries (damaged ones removed on the way) and the
// objects with the number of entries referring to each.
struct Holdings {
  struct Item {
    std::string rel;
    int64_t used_ns;
    uint64_t bytes;
    std::vector<Digest> refs;
  };
  std::vector<Item> items;
  std::map<Digest, std::pair<uint64_t, size_t>> objects;  // size, references
  uint64_t damaged = 0;
  uint64_t total = 0;  // bytes of everything
};

Result<Holdings> holdings(const CacheDirs& dirs) {
  Holdings h;
  auto walked = walk_entries(dirs.entries_fd, dirs.shown, dirs.key,
                             [&](const std::string& rel, const struct stat& st, const Result<StoredEntry>& c) {
                               if (!c) {
                                 ++h.damaged;
                                 ::unlinkat(dirs.entries_fd, rel.c_str(), 0);
                                 return;
                               }
                               h.items.push_back({rel, ns_of(st.st_mtim), static_cast<uint64_t>(st.st_blocks) * 512,
                                                  references(c->entry)});
                             });
  if (!walked) return tl::unexpected(walked.error());
  auto objects = dirs.store->list();
  if (!objects) return tl::unexpected(objects.error());
  for (const auto& d : *objects) {
    uint64_t b = dirs.store->disk_bytes(d);
    h.objects[d] = {b, 0};
    h.total += b;
  }
  for (const auto& it : h.items) {
    h.total += it.bytes;
    for (const auto& d : it.refs)
      if (auto o = h.objects.find(d); o != h.objects.end()) ++o->second.second;
  }
  return h;
}

// Key directories left empty (an entry's removal does not remove them).
void remove_empty_dirs(int entries_fd) {
  auto shards = list_dir(entries_fd, "entries");
  if (!shards) return;
  for (const auto& shard : *shards) {
    if (auto ws = open_dir_at(entries_fd, shard, shard, false)) {
      if (auto weaks = list_dir(ws->get(), shard))
        for (const auto& w : *weaks) ::unlinkat(ws->get(), w.c_str(), AT_REMOVEDIR);
    }
    ::unlinkat(entries_fd, shard.c_str(), AT_REMOVEDIR);
  }
}

}  // namespace

Result<CacheUsage> measure_usage(const CacheDirs& dirs) {
  CacheUsage u;
  auto r = walk_entries(dirs.entries_fd, dirs.shown, dirs.key,
                        [&](const std::string&, const struct stat& st, const Result<StoredEntry>&) {
                          ++u.entries;
                          u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
                        });
  if (!r) return tl::unexpected(r.error());
  auto objects = dirs.store->list();
  if (!objects) return tl::unexpected(objects.error());
  u.objects = objects->size();
  for (const auto& d : *objects) u.bytes += dirs.store->disk_bytes(d);
  return u;
}

Result<std::string> collect_garbage(const CacheDirs& dirs, const HashMemo& memo, uint64_t max_bytes) {
  auto held = holdings(dirs);
  if (!held) return tl::unexpected(held.error());
  auto& [items, objs, damaged, total] = *held;
  uint64_t before = total;
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.used_ns < b.used_ns; });
  size_t dropped = 0;
  uint64_t target = max_bytes / 10 * 9;
  // Objects no entry refers to go whatever the size.
  for (auto& [d, info] : objs) {
    if (info.second == 0) total -= info.first;
  }
  for (const auto& it : items) {
    if (before <= max_bytes || total <= target) break;
    ::unlinkat(dirs.entries_fd, it.rel.c_str(), 0);
    total -= it.bytes;
    ++dropped;
    for (const auto& d : it.refs) {
      auto o = objs.find(d);
      if (o != objs.end() && o->second.second > 0 && --o->second.second == 0) total -= o->second.first;
    }
  }
  size_t freed_objects = 0;
  for (const auto& [d, info] : objs) {
    if (info.second == 0 && dirs.store->remove(d)) ++freed_objects;
  }
  remove_empty_dirs(dirs.entries_fd);
  memo.forget_all();  // an accelerator, rebuilt as files are seen again
  return "removed " + std::to_string(dropped) + " entries" +
         (damaged ? " (and " + std::to_string(damaged) + " damaged ones)" : std::string()) + " and " +
         std::to_string(freed_objects) + " objects; " + format_size(before) + " -> " + format_size(total) +
         " (limit " + format_size(max_bytes) + ")";
}

Result<std::string> verify_all(const CacheDirs& dirs, uint64_t* damaged) {
  *damaged = 0;
  std::vector<std::string> bad_objects;
  auto objects = dirs.store->list();
  if (!objects) return tl::unexpected(objects.error());
  std::set<Digest> good;
  for (const auto& d : *objects) {
    if (auto v = dirs.store->verify(d)) {
      good.insert(d);
    } else {
      bad_objects.push_back(v.error().message);
      (void)dirs.store->remove(d);
      ++*damaged;
    }
  }
  auto has = [&](const std::string& raw) {
    auto d = Digest::from_raw(raw);
    return raw.empty() || (d && good.count(*d));
  };
  uint64_t entries = 0, bad_entries = 0;
  std::vector<std::string> notes;
  auto walked = walk_entries(dirs.entries_fd, dirs.shown, dirs.key,
                             [&](const std::string& rel, const struct stat&, const Result<StoredEntry>& c) {
                               ++entries;
                               bool ok = static_cast<bool>(c);
                               if (ok) {
                                 for (const auto& o : c->entry.outputs())
                                   if (static_cast<FileKind>(o.kind()) == FileKind::kFile && !has(o.content()))
                                     ok = false;
                                 if (!has(c->entry.stdout_object()) || !has(c->entry.stderr_object()) ||
                                     !has(c->entry.record_object()))
                                   ok = false;
                                 if (!ok)
                                   notes.push_back(dirs.shown + "/entries/" + rel +
                                                   ": refers to a missing or damaged object");
                               } else {
                                 notes.push_back(c.error().message);
                               }
                               if (!ok) {
                                 ++bad_entries;
                                 ::unlinkat(dirs.entries_fd, rel.c_str(), 0);
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

}  // namespace bsandbox
