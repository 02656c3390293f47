// remote_cache.h: a cache shared between machines through a server of
// Bazel's HTTP cache protocol, behind the local cache: a local miss asks the
// server, and what it finds is brought into the local cache and restored
// from there as a local hit is; a run stored locally is uploaded.
//
// Nothing from the server is believed unchecked: every blob is checked
// against its digest, an entry against its seal (or, with a key, its HMAC
// signature, so that a server many can write cannot poison those who hold
// the key) and then against the tree exactly as a local entry is. An entry
// whose blobs are gone is a miss. An upload sends the blobs first, then the
// entry, then the index that leads to it, so an interrupted one leaves
// nothing that names a missing blob. A server that fails (health.h) costs a
// build one bounded wait and one warning; the build goes on with the local
// cache.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/cache/cache.h"
#include "sandbox/remote/health.h"
#include "sandbox/remote/http.h"
#include "sandbox/remote/layout.h"

namespace bsandbox {

namespace pb {
class CacheEntry;
class Shapes;
}  // namespace pb

struct RemoteOptions {
  std::string url;      // http(s)://host[:port][/prefix], no credentials in it
  bool upload = true;   // false: read-only (an untrusted job's)
  std::string key;      // a secret entries are signed with and checked against; "" for none
  HttpOptions http;     // credentials and timeouts (its base_url is url)
  long lookup_budget_ms = 20000;  // a lookup's requests, answered however quickly, before its blobs
  // What a build's prefetch may download (it stops past it, after at most
  // one entry more): whoever writes the server chooses what a manifest
  // lists, and a lookup, unlike a prefetch, only takes an entry matching
  // the tree.
  uint64_t prefetch_budget_bytes = uint64_t{2} << 30;
  // A process nobody sees the output of (a wrapper's upload child): its
  // failures are counted but neither warned of nor leave the server alone,
  // so the build's next lookup finds the failure itself and says so.
  bool unseen = false;
};

// Whether url can name a remote cache: http or https, with a host, no
// user or password (they belong in a credentials file, not in argv); "" or
// why not.
std::string check_remote_url(const std::string& url);

class RemoteCache {
 public:
  // A client of the server; local is the cache it works behind (it must
  // outlive this).
  static Result<RemoteCache> open(RemoteOptions options, Cache& local);

  // After a local miss of req: an entry on the server that hits here is
  // brought into the local cache (its blobs, then the entry) and true is
  // returned: the caller's next local lookup finds it. Else false, with
  // *why. What the user should see goes to *warnings.
  bool fetch(const CacheRequest& req, std::string* why, std::vector<std::string>* warnings);

  // What became of an entry given to upload: on the server; dropped (it can
  // never go: the server refuses a piece of it, such as a blob too large
  // for it, or the local cache lost or damaged one; read-only); or later
  // (the server failed: try again).
  enum class Sent { kUploaded, kDropped, kLater };
  // Uploads entries the local cache stored, each step for all of them at
  // once (a build's uploader sends what the spool holds so: the round
  // trips are paid once per batch, not per entry): the blobs the server
  // lacks, the entries, the indexes naming their shapes. An entry the
  // server refuses stops alone; one warning says how many were dropped.
  std::vector<Sent> upload(const std::vector<pb::CacheEntry>& entries, std::vector<std::string>* warnings);
  // One entry; false when it should be tried again later.
  bool upload(const pb::CacheEntry& e, std::vector<std::string>* warnings);

  // A build's start: every entry the last build of this command (on any
  // machine) used, listed in its manifest, fetched into the local cache
  // ahead of the commands that will ask (blobs checked, entries sealed or
  // signed; whether one matches is for the lookup that uses it). Stops
  // between requests once stop() says so. How many entries were taken.
  size_t prefetch(const Digest& build, const std::function<bool()>& stop, std::vector<std::string>* warnings);
  // A build's end: the manifest of build, listing the entries it used
  // (uploaded already), replaces the last one. False if the server failed.
  bool publish(const Digest& build, const std::vector<pb::CacheEntry>& used, std::vector<std::string>* warnings);

  RemoteHealth& health() { return health_; }
  const RemoteOptions& options() const { return options_; }
  Cache& local() { return *local_; }

 private:
  RemoteCache(RemoteOptions options, Cache& local);
  // The requests, through a client made on first use (a lookup the local
  // cache answers loads no libcurl); without one, each reply says why.
  std::vector<HttpReply> perform(const std::vector<HttpRequest>& requests);
  HttpReply perform(const HttpRequest& request);
  // A request failed because of the server: counted, the server left
  // alone, and one warning per build.
  void server_failed(const std::string& what, std::vector<std::string>* warnings);
  // What one lookup or upload found wrong: the server's failure (which
  // ends it), or why it missed.
  struct Outcome {
    std::string failure;  // the server failed: what
    std::string why;      // a miss: why
    std::vector<std::string>* warnings;
  };
  // A bsandbox blob an ActionResult names (inline, else from /cas), checked
  // against its digest and its seal or signature; its payload, or nullopt
  // with out->why (and a warning for a wrong one).
  std::optional<std::string> sealed_blob(const std::string& what, const std::optional<remote_layout::BlobRef>& ref,
                                         std::string_view noun, Outcome* out);
  // The shapes of weak on the server (none: empty), or nullopt with out.
  std::optional<pb::Shapes> read_shapes(const Digest& weak, Outcome* out);
  // An index's reply checked and parsed (an absent one is not for here).
  std::optional<pb::Shapes> parse_shapes(const HttpReply& r, const Digest& weak, const std::string& at, Outcome* out);
  struct Batch;
  // A reply to one request of an upload: done, refused for this request
  // alone (the entries it belongs to are dropped, the others go on), or a
  // failure of the server (in out).
  enum class Verdict { kOk, kRefused, kFailed };
  Verdict judge(const HttpReply& r, const std::string& what, Outcome* out);
  // PUTs, each for the entries owners lists; false when the server failed.
  bool put_each(Batch& b, const std::vector<std::vector<size_t>>& owners, const std::vector<HttpRequest>& puts,
                const std::string& what, Outcome* out);
  // An ActionResult body, or nullopt with out->failure.
  std::optional<reapi::ActionResult> action_result(const HttpReply& r, const std::string& what, Outcome* out);
  // r's bytes each way, in the stats and received_.
  void count_traffic(const HttpReply& r);
  // A blob d from the server was not what its digest says (how): a
  // warning, and the blob deleted from the server when this client writes.
  void damaged(const Digest& d, const std::string& how, Outcome* out);
  // An entry's ActionResult at `at`, its entry blob checked and parsed (a
  // valid weak key, whichever); nullopt with out. inlined_only: nullopt,
  // without a request, for an entry blob not inlined in the ActionResult.
  std::optional<pb::CacheEntry> entry_from(const HttpReply& r, const std::string& at, Outcome* out,
                                           bool inlined_only = false);
  // An entry found on the server, into the local cache: its blobs, then the
  // entry; false with out (never one making a setuid or setgid file).
  bool take(const pb::CacheEntry& e, Outcome* out);
  // The blobs of e the local store lacks, brought in; false with out.
  bool bring_objects(const pb::CacheEntry& e, Outcome* out);
  // The blobs of entries the local store lacks, each once, with the sizes
  // the entries declare (0: unsized).
  std::vector<std::pair<Digest, uint64_t>> lacking(const std::vector<pb::CacheEntry>& entries);
  // wanted brought in, a bundle of requests at a time; false with out at
  // the first missing or damaged, or when the server fails.
  bool bring_blobs(const std::vector<std::pair<Digest, uint64_t>>& wanted, Outcome* out);
  // The blobs of the batch's entries the server lacks, sent (an entry whose
  // blob is refused, or unreadable here, dropped); false with out.
  bool send_objects(Batch& b, Outcome* out);
  // A reply that is not 2xx: a failure of the server, in out.
  bool check(const HttpReply& r, const std::string& what, Outcome* out);

  RemoteOptions options_;
  Cache* local_;
  std::optional<HttpClient> http_;
  std::string http_error_;
  RemoteHealth health_;
  std::string key_id_;
  uint64_t received_ = 0;  // bytes downloaded, all requests
  std::string entry_key_, shapes_key_, manifest_key_;  // derived from options_.key; "" unsigned
};

}  // namespace bsandbox
