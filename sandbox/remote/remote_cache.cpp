// remote_cache.cpp: see remote_cache.h. Particular to the implementation: a
// lookup is two round trips when it misses (the index; the entries of every
// shape at once) and three or four when it hits (the blobs the local store
// lacks, all at once); an upload asks which blobs the server lacks (HEAD,
// all at once) before it sends them, and rereads the index just before
// rewriting it, so that a shape another machine added meanwhile is kept.
#include "sandbox/remote/remote_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "sandbox/base/io.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"
#include "sandbox/cache/look.h"

namespace bsandbox {
namespace {

namespace layout = remote_layout;
using Method = HttpRequest::Method;

constexpr size_t kMaxActionResult = 16 << 20;
constexpr size_t kMaxBundle = 256 << 20;       // blobs sent or fetched at once, in bytes
constexpr uint64_t kMaxUnsized = uint64_t{1} << 30;  // a stream or record whose size the entry does not say

HttpRequest get(std::string path, size_t max) {
  HttpRequest r;
  r.path = std::move(path);
  r.max_bytes = max;
  return r;
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
  }
}

Result<RemoteCache> RemoteCache::open(RemoteOptions options, Cache& local) {
  if (std::string bad = check_remote_url(options.url); !bad.empty()) return fail(bad);
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

bool RemoteCache::check(const HttpReply& r, const std::string& what, Outcome* out) {
  local_->count(Cache::Event::kRemoteBytesDown, r.bytes_down);
  local_->count(Cache::Event::kRemoteBytesUp, r.bytes_up);
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
  const std::string& key = noun == "shapes list" ? shapes_key_ : entry_key_;
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

bool RemoteCache::bring_objects(const pb::CacheEntry& e, Outcome* out) {
  Store& store = local_->store();
  std::vector<std::pair<Digest, uint64_t>> wanted;
  for (const auto& [d, size] : layout::entry_objects(e))
    if (!store.contains(d)) wanted.emplace_back(d, size);
  size_t i = 0;
  while (i < wanted.size()) {
    // A bundle of requests at once, bounded in bytes.
    std::vector<HttpRequest> reqs;
    uint64_t bundle = 0;
    size_t first = i;
    for (; i < wanted.size() && (reqs.empty() || bundle < kMaxBundle); ++i) {
      uint64_t max = wanted[i].second ? wanted[i].second : kMaxUnsized;
      reqs.push_back(get(layout::cas_path(wanted[i].first), max));
      bundle += wanted[i].second;
    }
    auto replies = perform(reqs);
    for (size_t k = 0; k < replies.size(); ++k) {
      const Digest& d = wanted[first + k].first;
      if (replies[k].absent()) {
        out->why = "a blob its entry names is missing on the server (" + layout::cas_path(d) + ")";
        return false;
      }
      if (replies[k].too_large) {
        damaged(d, "it is larger than the entry says", out);
        return false;
      }
      if (!check(replies[k], layout::cas_path(d), out)) return false;
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
      if (*put != d) {
        (void)store.remove(*put);
        damaged(d, "its content is not its digest", out);
        return false;
      }
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
  auto replies = perform(reqs);
  out.why = "no entry for the inputs as they are (" + std::to_string(shapes->shapes_size()) + " kinds tried)";
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].absent()) continue;
    if (!check(replies[i], reqs[i].path, &out)) return finish(false);
    auto ar = action_result(replies[i], reqs[i].path, &out);
    if (!ar) return finish(false);
    auto payload = sealed_blob(reqs[i].path, layout::output_named(*ar, layout::kEntryPath), "cache entry", &out);
    if (!payload) {
      if (!out.failure.empty()) return finish(false);
      continue;
    }
    pb::CacheEntry e;
    if (!e.ParseFromString(*payload) || e.weak_key() != req.weak.raw()) {
      out.why = "an entry that does not parse or is another command's";
      warnings->push_back("remote cache: " + reqs[i].path + ": " + out.why + "; ignored");
      continue;
    }
    if (std::string mismatch = entry_mismatch(e, req.root, memo); !mismatch.empty()) {
      out.why = mismatch;
      continue;
    }
    if (!bring_objects(e, &out)) return finish(false);
    if (auto adopted = local_->adopt(e); !adopted) {
      out.why = adopted.error().message;
      return finish(false);
    }
    return finish(true);
  }
  return finish(false);
}

bool RemoteCache::send_objects(const std::vector<pb::CacheEntry>& entries, Outcome* out) {
  Store& store = local_->store();
  std::vector<Digest> objects;
  std::set<Digest> seen;
  for (const auto& e : entries)
    for (const auto& [d, size] : layout::entry_objects(e))
      if (seen.insert(d).second) objects.push_back(d);
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
    if (there[i].absent()) missing.push_back(objects[i]);
    else if (!check(there[i], heads[i].path, out)) return false;
  }
  size_t i = 0;
  while (i < missing.size()) {
    std::vector<std::string> bodies;
    std::vector<HttpRequest> puts;
    uint64_t bundle = 0;
    for (; i < missing.size() && (bodies.empty() || bundle < kMaxBundle); ++i) {
      auto bytes = store.read(missing[i]);
      if (!bytes) {
        out->why = bytes.error().message;
        return false;
      }
      bundle += bytes->size();
      bodies.push_back(std::move(*bytes));
    }
    for (size_t k = 0; k < bodies.size(); ++k)
      puts.push_back(HttpRequest{Method::kPut, layout::cas_path(missing[i - bodies.size() + k]), bodies[k], 0});
    for (const auto& r : perform(puts))
      if (!check(r, "uploading a blob", out)) return false;
  }
  return true;
}

bool RemoteCache::put_all(const std::vector<HttpRequest>& puts, const std::string& what, Outcome* out) {
  for (const auto& r : perform(puts))
    if (!check(r, what, out)) return false;
  return true;
}

bool RemoteCache::upload(const pb::CacheEntry& e, std::vector<std::string>* warnings) {
  return upload(std::vector<pb::CacheEntry>{e}, warnings);
}

bool RemoteCache::upload(const std::vector<pb::CacheEntry>& all, std::vector<std::string>* warnings) {
  if (!options_.upload) return true;
  if (!health_.usable()) return false;
  Outcome out{"", "", warnings};
  auto done = [&] {
    if (!out.failure.empty()) server_failed(out.failure, warnings);
    else if (!out.why.empty()) warnings->push_back("remote cache: not uploaded: " + out.why);
    return out.failure.empty();
  };
  std::vector<pb::CacheEntry> entries;
  for (const auto& e : all)
    if (Digest::from_raw(e.weak_key())) entries.push_back(e);
  if (entries.empty()) return true;
  // Each step for every entry at once: the blobs, the entries, their
  // ActionResults, then the indexes (reread just before, the new shapes
  // put first).
  if (!send_objects(entries, &out)) return done();
  Store& store = local_->store();
  std::vector<std::string> blobs, results;
  for (const auto& e : entries) {
    blobs.push_back(seal_entry(entry_key_, e.SerializeAsString()));
    results.push_back(layout::entry_result(e, blobs.back(), [&](const Digest& d) {
                        return store.size(d).value_or(0);
                      }).SerializeAsString());
  }
  std::vector<HttpRequest> put_blobs, put_results;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    Digest weak = *Digest::from_raw(e.weak_key());
    put_blobs.push_back(HttpRequest{Method::kPut, layout::cas_path(hash_bytes(blobs[i])), blobs[i], 0});
    Digest key = layout::entry_key(key_id_, weak, layout::shape_of(e), layout::probe_of(e), e.root());
    put_results.push_back(HttpRequest{Method::kPut, layout::ac_path(key), results[i], 0});
  }
  if (!put_all(put_blobs, "uploading an entry", &out) || !put_all(put_results, "uploading an entry", &out))
    return done();
  // The indexes: each command's shapes, those uploaded now put first.
  std::map<Digest, std::vector<pb::Shape>> shapes_of;
  for (const auto& e : entries) shapes_of[*Digest::from_raw(e.weak_key())].push_back(layout::shape_of(e));
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
  std::vector<HttpRequest> put_index_blobs, put_indexes;
  for (size_t i = 0; i < index_weaks.size(); ++i) {
    put_index_blobs.push_back(HttpRequest{Method::kPut, layout::cas_path(hash_bytes(index_blobs[i])), index_blobs[i], 0});
    put_indexes.push_back(
        HttpRequest{Method::kPut, layout::ac_path(layout::index_key(key_id_, index_weaks[i])), index_results[i], 0});
  }
  if (!put_all(put_index_blobs, "uploading an index", &out) || !put_all(put_indexes, "uploading an index", &out))
    return done();
  health_.succeeded();
  for (size_t i = 0; i < entries.size(); ++i) local_->count(Cache::Event::kRemoteUpload);
  return true;
}

}  // namespace bsandbox
