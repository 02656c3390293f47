// remote_cache.cpp: see remote_cache.h. Particular to the implementation: a
// lookup is two round trips when it misses (the index; the entries of every
// shape at once) and three or four when it hits (the blobs the local store
// lacks, all at once); an upload asks which blobs the server lacks (HEAD,
// all at once) before it sends them, and rereads the index just before
// rewriting it, so that a shape another machine added meanwhile is kept.
#include "sandbox/remote/remote_cache.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "sandbox/base/clocks.h"
#include "sandbox/base/io.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "sandbox/cache/look.h"
#include "sandbox/cache/save.h"

namespace bsandbox {
namespace {

namespace layout = remote_layout;
using Method = HttpRequest::Method;

constexpr size_t kMaxActionResult = 16 << 20;
constexpr size_t kMaxPrefetchedResult = 1 << 20;  // an entry's, fetched ahead: 32 at once
constexpr size_t kMaxBundle = 256 << 20;       // blobs sent or fetched at once, in bytes
// A stream or record an entry made before sizes were recorded names.
constexpr uint64_t kMaxUnsized = 64 << 20;

HttpRequest get(std::string path, size_t max) {
  HttpRequest r;
  r.path = std::move(path);
  r.max_bytes = max;
  return r;
}

// Why an entry from a server is not taken although it matches: it would
// make a setuid or setgid file (run as root, a hit would create a root
// setuid program that whoever wrote the entry chose), or "".
std::string special_modes(const pb::CacheEntry& e) {
  for (const auto& o : e.outputs())
    if (o.mode() & (S_ISUID | S_ISGID))
      return "its entry makes " + printable(o.path()) + " setuid or setgid, which is never taken from a server";
  return "";
}

}  // namespace

std::string check_remote_url(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos || (url.substr(0, scheme) != "http" && url.substr(0, scheme) != "https"))
    return "the remote cache " + printable(url) + " is not an http:// or https:// URL";
  std::string rest = url.substr(scheme + 3);
  std::string authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return "the remote cache " + printable(url) + " names no server";
  if (authority.find('@') != std::string::npos)
    return "the remote cache URL holds credentials, which other users can read in argv or the environment; put "
           "them in a file (--cache-remote-credentials FILE)";
  if (url.find_first_of("?#") != std::string::npos) return "the remote cache " + printable(url) + " has a query";
  return "";
}

RemoteCache::RemoteCache(RemoteOptions options, Cache& local)
    : options_(std::move(options)), local_(&local), health_(local.state_file("remote"), options_.url),
      key_id_(layout::key_id(options_.key)) {
  // A key per kind of blob: a signed shapes list (which parses as an
  // entry) is then never believed as an entry, and the secret itself (or
  // a hash of its file) is never the MAC key.
  if (!options_.key.empty()) {
    entry_key_ = hmac(options_.key, "bsandbox-remote 1 entry signing key");
    shapes_key_ = hmac(options_.key, "bsandbox-remote 1 shapes signing key");
    manifest_key_ = hmac(options_.key, "bsandbox-remote 1 manifest signing key");
  }
}

Result<RemoteCache> RemoteCache::open(RemoteOptions options, Cache& local) {
  if (std::string bad = check_remote_url(options.url); !bad.empty()) return fail(bad);
  // What a shared local cache adopts, it signs for all its users: an
  // unsigned server's entries (anyone who can write to it) must not become
  // that.
  if (local.signed_entries() && options.key.empty())
    return fail("the local cache is shared (its entries are signed with --cache-key), and what it takes from " +
                printable(options.url) +
                " would be signed for all its users although anyone who can write to the server could have made "
                "it: give the remote cache a key too (--cache-remote-key)");
  options.http.base_url = options.url;
  return RemoteCache(std::move(options), local);
}

std::vector<HttpReply> RemoteCache::perform(const std::vector<HttpRequest>& requests) {
  if (!http_ && http_error_.empty()) {
    auto http = HttpClient::open(options_.http);
    if (http) http_.emplace(std::move(*http));
    else http_error_ = http.error().message;
  }
  if (http_) return http_->perform(requests);
  std::vector<HttpReply> replies(requests.size());
  for (auto& r : replies) r.error = http_error_;
  return replies;
}

HttpReply RemoteCache::perform(const HttpRequest& request) {
  return std::move(perform(std::vector<HttpRequest>{request}).front());
}

void RemoteCache::server_failed(const std::string& what, std::vector<std::string>* warnings) {
  local_->count(Cache::Event::kRemoteError);
  if (options_.unseen) return;
  if (health_.failed())
    warnings->push_back("remote cache " + printable(options_.url) + ": " + what +
                        "; going on with the local cache (the server is left alone for " +
                        std::to_string(RemoteHealth::kBackoffNs / 1000000000) + " s)");
}

void RemoteCache::count_traffic(const HttpReply& r) {
  local_->count(Cache::Event::kRemoteBytesDown, r.bytes_down);
  local_->count(Cache::Event::kRemoteBytesUp, r.bytes_up);
  received_ += r.bytes_down;
}

bool RemoteCache::check(const HttpReply& r, const std::string& what, Outcome* out) {
  count_traffic(r);
  if (r.ok()) return true;
  if (r.status == 401 || r.status == 403)
    out->failure = what + ": the server refused the credentials (HTTP " + std::to_string(r.status) + ")";
  else
    out->failure = what + ": " + r.what();
  return false;
}

std::optional<reapi::ActionResult> RemoteCache::action_result(const HttpReply& r, const std::string& what,
                                                              Outcome* out) {
  reapi::ActionResult ar;
  if (!ar.ParseFromString(r.body)) {
    out->failure = what + ": the server answered with something that is not an ActionResult";
    return std::nullopt;
  }
  return ar;
}

std::optional<std::string> RemoteCache::sealed_blob(const std::string& what,
                                                    const std::optional<layout::BlobRef>& ref, std::string_view noun,
                                                    Outcome* out) {
  if (!ref) {
    out->failure = what + " names no " + std::string(noun);
    return std::nullopt;
  }
  std::string bytes;
  if (ref->inlined) {
    bytes = *ref->inlined;
  } else {
    auto r = perform(get(layout::cas_path(ref->digest), std::min<uint64_t>(ref->size, kMaxActionResult)));
    if (r.absent()) {
      out->why = "the " + std::string(noun) + " " + what + " names is missing on the server";
      return std::nullopt;
    }
    if (!check(r, layout::cas_path(ref->digest), out)) return std::nullopt;
    bytes = std::move(r.body);
  }
  if (hash_bytes(bytes) != ref->digest) {
    out->why = "a damaged " + std::string(noun);
    out->warnings->push_back("remote cache: " + what + ": the " + std::string(noun) +
                             " does not match its digest; ignored");
    local_->count(Cache::Event::kRemoteError);
    return std::nullopt;
  }
  bool foreign = false;
  std::string shown = "remote cache: " + layout::cas_path(ref->digest);
  const std::string& key = noun == "shapes list" ? shapes_key_ : noun == "manifest" ? manifest_key_ : entry_key_;
  auto payload = open_sealed(bytes, shown, key, noun, &foreign);
  if (!payload) {
    out->why = "a " + std::string(noun) + " that is not " + (options_.key.empty() ? "sealed" : "signed with the key");
    out->warnings->push_back(payload.error().message);
    local_->count(Cache::Event::kRemoteError);
    return std::nullopt;
  }
  return std::string(*payload);
}

std::optional<pb::Shapes> RemoteCache::read_shapes(const Digest& weak, Outcome* out) {
  std::string at = layout::ac_path(layout::index_key(key_id_, weak));
  auto r = perform(get(at, kMaxActionResult));
  if (r.absent()) return pb::Shapes();
  return parse_shapes(r, weak, at, out);
}

std::optional<pb::Shapes> RemoteCache::parse_shapes(const HttpReply& r, const Digest& weak, const std::string& at,
                                                    Outcome* out) {
  if (!check(r, at, out)) return std::nullopt;
  auto ar = action_result(r, at, out);
  if (!ar) return std::nullopt;
  auto payload = sealed_blob(at, layout::output_named(*ar, layout::kShapesPath), "shapes list", out);
  if (!payload) return std::nullopt;
  pb::Shapes shapes;
  if (!shapes.ParseFromString(*payload) || shapes.weak_key() != weak.raw()) {
    out->why = "the shapes list of " + at + " does not parse or is another command's";
    out->warnings->push_back("remote cache: " + out->why + "; ignored");
    return std::nullopt;
  }
  // This client writes at most kMaxShapes; a longer list (another
  // writer's) is cut there: each shape is a probe of the tree.
  while (static_cast<size_t>(shapes.shapes_size()) > layout::kMaxShapes) shapes.mutable_shapes()->RemoveLast();
  return shapes;
}

void RemoteCache::damaged(const Digest& d, const std::string& how, Outcome* out) {
  out->why = "a damaged blob";
  out->warnings->push_back("remote cache: " + layout::cas_path(d) + " does not match its digest (" + how +
                           "); ignored");
  local_->count(Cache::Event::kRemoteError);
  // Removed, so that the next upload of it (this run's, or another
  // machine's) finds it missing and sends it again; a server that does not
  // allow DELETE keeps it, and the blob goes on missing.
  if (options_.upload) {
    HttpRequest r;
    r.method = Method::kDelete;
    r.path = layout::cas_path(d);
    (void)perform(r);
  }
}

std::vector<std::pair<Digest, uint64_t>> RemoteCache::lacking(const std::vector<pb::CacheEntry>& entries) {
  Store& store = local_->store();
  std::vector<std::pair<Digest, uint64_t>> wanted;
  std::set<Digest> seen;
  for (const auto& e : entries)
    for (const auto& [d, size] : layout::entry_objects(e))
      if (seen.insert(d).second && !store.contains(d)) wanted.emplace_back(d, size);
  return wanted;
}

bool RemoteCache::bring_objects(const pb::CacheEntry& e, Outcome* out) { return bring_blobs(lacking({e}), out); }

bool RemoteCache::bring_blobs(const std::vector<std::pair<Digest, uint64_t>>& wanted, Outcome* out) {
  Store& store = local_->store();
  size_t i = 0;
  while (i < wanted.size()) {
    // A bundle of requests at once, bounded in bytes.
    std::vector<HttpRequest> reqs;
    uint64_t bundle = 0;
    size_t first = i;
    for (; i < wanted.size() && (reqs.empty() || bundle < kMaxBundle); ++i) {
      uint64_t max = wanted[i].second ? wanted[i].second : kMaxUnsized;
      reqs.push_back(get(layout::cas_path(wanted[i].first), max));
      reqs.back().expected_bytes = max;
      bundle += max;
    }
    auto replies = perform(reqs);
    for (size_t k = 0; k < replies.size(); ++k) {
      const Digest& d = wanted[first + k].first;
      if (replies[k].absent() || replies[k].too_large) count_traffic(replies[k]);
      if (replies[k].absent()) {
        out->why = "a blob its entry names is missing on the server (" + layout::cas_path(d) + ")";
        return false;
      }
      if (replies[k].too_large) {
        damaged(d, "it is larger than the entry says", out);
        return false;
      }
      if (!check(replies[k], layout::cas_path(d), out)) return false;
      // Checked before it is stored: a blob the store holds already (X,
      // put where D belongs) must not be taken for damage and removed.
      if (hash_bytes(replies[k].body) != d) {
        damaged(d, "its content is not its digest", out);
        return false;
      }
      UniqueFd fd(::memfd_create("bsandbox-blob", MFD_CLOEXEC));
      if (!fd.valid() || !write_all(fd.get(), replies[k].body, "blob")) {
        out->why = "cannot hold a downloaded blob";
        return false;
      }
      auto put = store.put(fd.get(), "remote cache: " + layout::cas_path(d));
      if (!put) {
        out->why = put.error().message;
        return false;
      }
      if (*put != d) {  // changed under us: not ours to remove
        out->why = "a blob changed while it was stored";
        return false;
      }
      local_->count(Cache::Event::kObjectsAdded, replies[k].body.size());
    }
  }
  return true;
}

bool RemoteCache::fetch(const CacheRequest& req, std::string* why, std::vector<std::string>* warnings) {
  if (!health_.usable()) {
    *why = "the remote cache failed a moment ago and is left alone";
    return false;
  }
  Outcome out{"", "", warnings};
  // However quickly each request is answered, a lookup takes at most its
  // budget before it fetches blobs (whose time grows with them).
  uint64_t deadline = Clocks::boot_now() + static_cast<uint64_t>(options_.lookup_budget_ms) * 1000000;
  auto late = [&] {
    if (Clocks::boot_now() <= deadline) return false;
    out.failure = "a lookup took more than " + std::to_string(options_.lookup_budget_ms) + " ms";
    return true;
  };
  auto finish = [&](bool hit) {
    if (!out.failure.empty()) {
      server_failed(out.failure, warnings);
      *why = "the remote cache failed: " + out.failure;
      return false;
    }
    health_.succeeded();
    local_->count(hit ? Cache::Event::kRemoteHit : Cache::Event::kRemoteMiss);
    if (!hit) *why = "remote: " + out.why;
    return hit;
  };
  auto shapes = read_shapes(req.weak, &out);
  if (!shapes) return finish(false);
  if (shapes->shapes_size() == 0) {
    out.why = "no entry for this command";
    return finish(false);
  }
  // Every shape's entry as the tree is now, asked for at once.
  HashMemo memo = local_->memo();
  std::vector<HttpRequest> reqs;
  for (const auto& s : shapes->shapes()) {
    auto probe = layout::probe_now(s, req.root, memo);
    if (!probe || !*probe) continue;
    reqs.push_back(get(layout::ac_path(layout::entry_key(key_id_, req.weak, s, **probe, req.root)), kMaxActionResult));
  }
  if (late()) return finish(false);
  auto replies = perform(reqs);
  out.why = "no entry for the inputs as they are (" + std::to_string(shapes->shapes_size()) + " kinds tried)";
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].absent()) continue;
    if (late()) return finish(false);
    auto e = entry_from(replies[i], reqs[i].path, &out);
    if (!e) {
      if (!out.failure.empty()) return finish(false);
      continue;
    }
    if (e->weak_key() != req.weak.raw()) {
      out.why = "an entry that is another command's";
      warnings->push_back("remote cache: " + reqs[i].path + ": " + out.why + "; ignored");
      continue;
    }
    if (std::string mismatch = entry_mismatch(*e, req.root, memo); !mismatch.empty()) {
      out.why = mismatch;
      continue;
    }
    if (late()) return finish(false);
    if (!take(*e, &out)) {
      if (!out.failure.empty()) return finish(false);
      continue;
    }
    return finish(true);
  }
  return finish(false);
}

std::optional<pb::CacheEntry> RemoteCache::entry_from(const HttpReply& r, const std::string& at, Outcome* out,
                                                     bool inlined_only) {
  if (!check(r, at, out)) return std::nullopt;
  auto ar = action_result(r, at, out);
  if (!ar) return std::nullopt;
  auto ref = layout::output_named(*ar, layout::kEntryPath);
  if (inlined_only && ref && !ref->inlined) return std::nullopt;
  auto payload = sealed_blob(at, ref, "cache entry", out);
  if (!payload) return std::nullopt;
  pb::CacheEntry e;
  if (!e.ParseFromString(*payload) || !Digest::from_raw(e.weak_key())) {
    out->why = "an entry that does not parse";
    out->warnings->push_back("remote cache: " + at + ": " + out->why + "; ignored");
    return std::nullopt;
  }
  return e;
}

bool RemoteCache::take(const pb::CacheEntry& e, Outcome* out) {
  if (std::string special = special_modes(e); !special.empty()) {
    out->why = special;
    return false;
  }
  if (!bring_objects(e, out)) return false;
  if (auto adopted = local_->adopt(e); !adopted) {
    out->why = adopted.error().message;
    out->warnings->push_back("remote cache: " + out->why);
    return false;
  }
  return true;
}

size_t RemoteCache::prefetch(const Digest& build, const std::function<bool()>& stop,
                             std::vector<std::string>* warnings) {
  if (!health_.usable()) return 0;
  Outcome out{"", "", warnings};
  auto done = [&](size_t taken) {
    if (!out.failure.empty()) server_failed(out.failure, warnings);
    return taken;
  };
  // What a server writer put where an ActionResult or a blob of ours
  // belongs (a reply that came, but is garbage) only skips that one: the
  // server is not failing, and lookups go on.
  auto skip_garbage = [&](const HttpReply& r, Outcome* one) {
    if (one->failure.empty() || !r.ok()) return false;
    warnings->push_back("remote cache: " + one->failure + "; ignored");
    one->failure.clear();
    return true;
  };
  std::string at = layout::ac_path(layout::manifest_key(key_id_, build));
  auto r = perform(get(at, kMaxActionResult));
  if (r.absent() || !check(r, at, &out)) return done(0);
  auto ar = action_result(r, at, &out);
  if (!ar) {
    skip_garbage(r, &out);
    return done(0);
  }
  auto payload = sealed_blob(at, layout::output_named(*ar, layout::kManifestPath), "manifest", &out);
  if (!payload) {
    skip_garbage(r, &out);
    return done(0);
  }
  pb::Manifest m;
  if (!m.ParseFromString(*payload) || m.build() != build.raw()) {
    warnings->push_back("remote cache: " + at + ": a manifest that does not parse or is another build's; ignored");
    return done(0);
  }
  // The entries, each once, in the order the last build used them.
  std::vector<Digest> listed;
  std::set<Digest> seen;
  for (int i = 0; i < m.entries_size() && listed.size() < layout::kMaxManifest; ++i)
    if (auto d = Digest::from_raw(m.entries(i)); d && seen.insert(*d).second) listed.push_back(*d);
  m.Clear();
  // A batch at once; each entry checked as a lookup's is, short of
  // matching the tree (which the build is still making): the lookup that
  // uses it does that. Whoever writes the server chooses what a manifest
  // lists, so everything is bounded: what it downloads (the budget, every
  // reply counted, an entry's blobs by the sizes it declares), an entry
  // (inlined in its ActionResult of at most 1 MiB, at most kMaxItems
  // inputs and outputs), the entries kept for one command (kMaxShapes).
  constexpr size_t kBatch = 32;
  constexpr int kMaxItems = 16384;
  uint64_t start = received_;
  auto left = [&] {
    uint64_t spent = received_ - start;
    return spent >= options_.prefetch_budget_bytes ? 0 : options_.prefetch_budget_bytes - spent;
  };
  bool warned = false;
  auto over = [&](uint64_t more) {
    if (more <= left()) return false;
    if (!warned)
      warnings->push_back("remote cache: " + at + ": the manifest lists more than the prefetch's " +
                          std::to_string(options_.prefetch_budget_bytes >> 20) + " MiB; the rest is left to lookups");
    warned = true;
    return true;
  };
  auto declared = [](const std::vector<std::pair<Digest, uint64_t>>& blobs) {
    uint64_t n = 0;
    for (const auto& [_, size] : blobs) n += size ? size : kMaxUnsized;
    return n;
  };
  std::map<Digest, size_t> per_command;
  size_t taken = 0;
  for (size_t first = 0; first < listed.size() && !stop() && !over(1); first += kBatch) {
    std::vector<HttpRequest> reqs;
    for (size_t i = first; i < std::min(listed.size(), first + kBatch); ++i)
      reqs.push_back(get(layout::ac_path(listed[i]), kMaxPrefetchedResult));
    auto replies = perform(reqs);
    std::vector<pb::CacheEntry> found;  // not here yet
    for (size_t k = 0; k < replies.size() && !stop(); ++k) {
      // Evicted, not uploaded yet, or larger than a prefetch holds: left
      // to the lookup (counted all the same).
      if (replies[k].absent() || replies[k].too_large) {
        count_traffic(replies[k]);
        continue;
      }
      Outcome one{"", "", warnings};
      auto e = entry_from(replies[k], reqs[k].path, &one, /*inlined_only=*/true);
      if (!one.failure.empty() && !skip_garbage(replies[k], &one)) {
        out.failure = one.failure;
        return done(taken);
      }
      if (!e || e->inputs_size() + e->outputs_size() > kMaxItems) continue;
      Digest weak = *Digest::from_raw(e->weak_key());
      // The entry its name says: not another (an old one of the same
      // command, replayed under many names).
      if (layout::entry_key(key_id_, weak, layout::shape_of(*e), layout::probe_of(*e), e->root()) != listed[first + k])
        continue;
      if (local_->entry(weak, strong_key_of(*e))) continue;  // here already
      if (!special_modes(*e).empty() || ++per_command[weak] > layout::kMaxShapes) continue;
      found.push_back(std::move(*e));
    }
    // The batch's blobs at once, if they fit the budget as declared (one
    // missing or damaged stops this; each entry then fetches what it lacks).
    if (auto wanted = lacking(found); !stop() && !over(declared(wanted))) {
      Outcome one{"", "", warnings};
      if (!bring_blobs(wanted, &one) && !one.failure.empty()) {
        out.failure = one.failure;
        return done(taken);
      }
    }
    for (const auto& e : found) {
      if (stop() || over(declared(lacking({e})))) break;
      Outcome one{"", "", warnings};
      // Counted as it is taken: a prefetch ends when its build does, in
      // whatever it is doing.
      if (take(e, &one)) {
        ++taken;
        local_->count(Cache::Event::kRemotePrefetched, 1);
      }
      if (!one.failure.empty()) {
        out.failure = one.failure;
        return done(taken);
      }
    }
  }
  health_.succeeded();
  return done(taken);
}

bool RemoteCache::publish(const Digest& build, const std::vector<pb::CacheEntry>& used,
                          std::vector<std::string>* warnings) {
  if (!options_.upload || used.empty()) return true;
  if (!health_.usable()) return false;
  Outcome out{"", "", warnings};
  pb::Manifest m;
  m.set_build(std::string(build.raw()));
  std::set<Digest> seen;
  for (const auto& e : used) {
    auto weak = Digest::from_raw(e.weak_key());
    if (!weak) continue;
    Digest key = layout::entry_key(key_id_, *weak, layout::shape_of(e), layout::probe_of(e), e.root());
    if (seen.insert(key).second && seen.size() <= layout::kMaxManifest) m.add_entries(std::string(key.raw()));
  }
  std::string blob = seal_entry(manifest_key_, m.SerializeAsString());
  std::string result = layout::own_blob_result(layout::kManifestPath, blob).SerializeAsString();
  // The blob before the ActionResult naming it.
  if (!check(perform(HttpRequest{Method::kPut, layout::cas_path(hash_bytes(blob)), blob, 0}), "uploading a manifest",
             &out) ||
      !check(perform(HttpRequest{Method::kPut, layout::ac_path(layout::manifest_key(key_id_, build)), result, 0}),
             "uploading a manifest", &out)) {
    server_failed(out.failure, warnings);
    return false;
  }
  return true;
}

RemoteCache::Verdict RemoteCache::judge(const HttpReply& r, const std::string& what, Outcome* out) {
  if (check(r, what, out)) return Verdict::kOk;
  // A 4xx about this request alone (413 too large, 400, 409, 422...): the
  // server is well and takes others. Credentials, timeouts and rate limits
  // are about every request.
  bool alone = r.error.empty() && r.status / 100 == 4 && r.status != 401 && r.status != 403 && r.status != 407 &&
               r.status != 408 && r.status != 429;
  if (!alone) return Verdict::kFailed;
  out->failure.clear();
  return Verdict::kRefused;
}

// One upload of several entries: which are still going, and why those that
// cannot go were dropped.
struct RemoteCache::Batch {
  const std::vector<pb::CacheEntry>& entries;
  std::vector<Sent> sent;
  size_t dropped = 0;
  std::string first_drop;
  explicit Batch(const std::vector<pb::CacheEntry>& all) : entries(all), sent(all.size(), Sent::kUploaded) {}
  bool live(size_t i) const { return sent[i] == Sent::kUploaded; }
  void drop(size_t i, const std::string& why) {
    if (!live(i)) return;
    sent[i] = Sent::kDropped;
    if (dropped++ == 0) first_drop = why;
  }
  std::vector<size_t> going() const {
    std::vector<size_t> out;
    for (size_t i = 0; i < sent.size(); ++i)
      if (live(i)) out.push_back(i);
    return out;
  }
};

bool RemoteCache::send_objects(Batch& b, Outcome* out) {
  Store& store = local_->store();
  std::vector<Digest> objects;
  std::map<Digest, std::vector<size_t>> needed_by;
  for (size_t i : b.going())
    for (const auto& [d, size] : layout::entry_objects(b.entries[i])) {
      auto& by = needed_by[d];
      if (by.empty()) objects.push_back(d);
      by.push_back(i);
    }
  auto drop_for = [&](const Digest& d, const std::string& why) {
    for (size_t i : needed_by[d]) b.drop(i, why);
  };
  std::vector<HttpRequest> heads;
  for (const auto& d : objects) {
    HttpRequest r;
    r.method = Method::kHead;
    r.path = layout::cas_path(d);
    heads.push_back(r);
  }
  auto there = perform(heads);
  std::vector<Digest> missing;
  for (size_t i = 0; i < there.size(); ++i) {
    if (there[i].absent()) {
      missing.push_back(objects[i]);
      continue;
    }
    Verdict v = judge(there[i], heads[i].path, out);
    if (v == Verdict::kFailed) return false;
    if (v == Verdict::kRefused) missing.push_back(objects[i]);  // it cannot say: sent
  }
  size_t i = 0;
  while (i < missing.size()) {
    std::vector<std::string> bodies;
    std::vector<Digest> sending;
    uint64_t bundle = 0;
    for (; i < missing.size() && (bodies.empty() || bundle < kMaxBundle); ++i) {
      auto bytes = store.read(missing[i]);  // checked against its digest
      if (!bytes) {
        drop_for(missing[i], bytes.error().message);
        continue;
      }
      bundle += bytes->size();
      bodies.push_back(std::move(*bytes));
      sending.push_back(missing[i]);
    }
    std::vector<HttpRequest> puts;
    for (size_t k = 0; k < bodies.size(); ++k)
      puts.push_back(HttpRequest{Method::kPut, layout::cas_path(sending[k]), bodies[k], 0});
    auto replies = perform(puts);
    for (size_t k = 0; k < replies.size(); ++k) {
      Verdict v = judge(replies[k], "uploading a blob", out);
      if (v == Verdict::kFailed) return false;
      if (v == Verdict::kRefused)
        drop_for(sending[k], "the server refuses " + puts[k].path + " (" + replies[k].what() + ")");
    }
  }
  return true;
}

bool RemoteCache::put_each(Batch& b, const std::vector<std::vector<size_t>>& owners,
                           const std::vector<HttpRequest>& puts, const std::string& what, Outcome* out) {
  auto replies = perform(puts);
  for (size_t k = 0; k < replies.size(); ++k) {
    Verdict v = judge(replies[k], what, out);
    if (v == Verdict::kFailed) return false;
    if (v == Verdict::kRefused)
      for (size_t i : owners[k]) b.drop(i, "the server refuses " + puts[k].path + " (" + replies[k].what() + ")");
  }
  return true;
}

bool RemoteCache::upload(const pb::CacheEntry& e, std::vector<std::string>* warnings) {
  return upload(std::vector<pb::CacheEntry>{e}, warnings).front() != Sent::kLater;
}

std::vector<RemoteCache::Sent> RemoteCache::upload(const std::vector<pb::CacheEntry>& all,
                                                   std::vector<std::string>* warnings) {
  Batch b(all);
  if (!options_.upload) {
    for (auto& s : b.sent) s = Sent::kDropped;
    return b.sent;
  }
  if (!health_.usable()) return std::vector<Sent>(all.size(), Sent::kLater);
  Outcome out{"", "", warnings};
  auto done = [&] {
    if (!out.failure.empty()) {
      server_failed(out.failure, warnings);
      for (auto& s : b.sent)
        if (s == Sent::kUploaded) s = Sent::kLater;
    } else {
      health_.succeeded();
    }
    if (b.dropped > 0 && !options_.unseen)
      warnings->push_back("remote cache: " + std::to_string(b.dropped) + (b.dropped == 1 ? " entry" : " entries") +
                          " not uploaded: " + b.first_drop);
    for (auto s : b.sent)
      if (s == Sent::kUploaded) local_->count(Cache::Event::kRemoteUpload);
    return b.sent;
  };
  for (size_t i = 0; i < all.size(); ++i)
    if (!Digest::from_raw(all[i].weak_key())) b.drop(i, "an entry without a key");
  // Each step for every entry at once: the blobs, the entries, their
  // ActionResults, then the indexes (reread just before, the new shapes
  // put first). An entry the server refuses a piece of goes no further;
  // the others go on.
  if (!send_objects(b, &out)) return done();
  Store& store = local_->store();
  std::vector<size_t> going = b.going();
  std::vector<std::string> blobs, results;
  for (size_t i : going) {
    const auto& e = all[i];
    blobs.push_back(seal_entry(entry_key_, e.SerializeAsString()));
    results.push_back(layout::entry_result(e, blobs.back(), [&](const Digest& d) {
                        return store.size(d).value_or(0);
                      }).SerializeAsString());
  }
  std::vector<HttpRequest> put_blobs;
  std::vector<std::vector<size_t>> owners;
  for (size_t k = 0; k < going.size(); ++k) {
    put_blobs.push_back(HttpRequest{Method::kPut, layout::cas_path(hash_bytes(blobs[k])), blobs[k], 0});
    owners.push_back({going[k]});
  }
  if (!put_each(b, owners, put_blobs, "uploading an entry", &out)) return done();
  owners.clear();
  std::vector<HttpRequest> put_results;
  for (size_t k = 0; k < going.size(); ++k) {
    if (!b.live(going[k])) continue;
    const auto& e = all[going[k]];
    Digest key = layout::entry_key(key_id_, *Digest::from_raw(e.weak_key()), layout::shape_of(e),
                                   layout::probe_of(e), e.root());
    owners.push_back({going[k]});
    put_results.push_back(HttpRequest{Method::kPut, layout::ac_path(key), results[k], 0});
  }
  if (!put_each(b, owners, put_results, "uploading an entry", &out)) return done();
  // The indexes: each command's shapes, those uploaded now put first.
  std::map<Digest, std::vector<pb::Shape>> shapes_of;
  std::map<Digest, std::vector<size_t>> entries_of;
  for (size_t i : b.going()) {
    Digest weak = *Digest::from_raw(all[i].weak_key());
    shapes_of[weak].push_back(layout::shape_of(all[i]));
    entries_of[weak].push_back(i);
  }
  std::vector<Digest> weaks;
  std::vector<HttpRequest> gets;
  for (const auto& [weak, _] : shapes_of) {
    weaks.push_back(weak);
    gets.push_back(get(layout::ac_path(layout::index_key(key_id_, weak)), kMaxActionResult));
  }
  auto replies = perform(gets);
  std::vector<std::string> index_blobs, index_results;
  std::vector<Digest> index_weaks;
  for (size_t i = 0; i < weaks.size(); ++i) {
    Outcome index_out{"", "", warnings};
    auto old = replies[i].absent() ? std::optional<pb::Shapes>(pb::Shapes())
                                   : parse_shapes(replies[i], weaks[i], gets[i].path, &index_out);
    if (!index_out.failure.empty()) {
      out.failure = index_out.failure;
      return done();
    }
    pb::Shapes now = old ? *old : pb::Shapes();  // unusable (another key's, damaged): replaced
    pb::Shapes before = now;
    for (const auto& s : shapes_of[weaks[i]]) now = layout::with_shape(now, s, weaks[i]);
    if (old && now.SerializeAsString() == before.SerializeAsString()) continue;  // already first
    index_blobs.push_back(seal_entry(shapes_key_, now.SerializeAsString()));
    index_results.push_back(layout::index_result(index_blobs.back()).SerializeAsString());
    index_weaks.push_back(weaks[i]);
  }
  // A refused index drops every entry of its command.
  std::vector<std::vector<size_t>> index_owners;
  for (const auto& w : index_weaks) index_owners.push_back(entries_of[w]);
  std::vector<HttpRequest> put_index_blobs, put_indexes;
  for (size_t i = 0; i < index_weaks.size(); ++i) {
    put_index_blobs.push_back(HttpRequest{Method::kPut, layout::cas_path(hash_bytes(index_blobs[i])), index_blobs[i], 0});
    put_indexes.push_back(
        HttpRequest{Method::kPut, layout::ac_path(layout::index_key(key_id_, index_weaks[i])), index_results[i], 0});
  }
  if (!put_each(b, index_owners, put_index_blobs, "uploading an index", &out)) return done();
  if (!put_each(b, index_owners, put_indexes, "uploading an index", &out)) return done();
  return done();
}

}  // namespace bsandbox
