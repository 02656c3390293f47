// layout.h: how a remote cache lays the cache's entries out on a server of
// Bazel's HTTP cache protocol, so that an unmodified server (nginx WebDAV,
// bazel-remote with its checks on) holds them and curl can inspect them.
//
//   /cas/HEX  a blob named by the SHA-256 of its content: the files a
//             command left and what it printed (the local store's objects,
//             the same digests), its provenance record, and two blobs of
//             bsandbox's own, sealed or signed exactly as a local entry
//             file is (entry.h): an entry (a CacheEntry) and a shapes list.
//   /ac/HEX   an ActionResult (reapi.proto) naming blobs in /cas.
//
// The two-phase lookup of the local cache, on that layout. With W the weak
// key and K the key id ("unsigned", or a digest of the signing key, so
// entries signed under different keys never overwrite each other):
//   ac/INDEX, INDEX = SHA-256("bsandbox-remote 1\0index\0" K W): an
//     ActionResult with one output file, ".bsandbox/shapes": the shapes of
//     the command's entries, newest first (at most kMaxShapes). A shape is
//     the list of (path, in the root or not, aspects) an entry depends on.
//   For each shape the client looks at those paths as they are now and
//   digests what an entry of that shape would need them to be: the probe.
//   ac/ENTRY, ENTRY = SHA-256("bsandbox-remote 1\0entry\0" K W S P [R]),
//     S the shape's digest, P the probe, R the root for a shape whose
//     entries name it: an ActionResult whose output files are
//     ".bsandbox/entry" (the entry blob), ".bsandbox/record" and each file
//     the command left, under its path relative to the root, with its exit
//     code, stdout and stderr digests and the symlinks it left.
//   ac/MANIFEST, MANIFEST = SHA-256("bsandbox-remote 1\0manifest\0" K B),
//     B a build's key (its command, working directory and root): an
//     ActionResult with one output file, ".bsandbox/manifest": the entries
//     the last such build used (a Manifest), which the next one, on any
//     machine, fetches before its commands ask for them.
// bsandbox's blobs are also inlined in the ActionResult (OutputFile.
// contents), which saves a round trip and is still checked against the
// digest. A probe is only a way to find an entry: the entry found is checked
// as a local one is (entry_mismatch), so a probe computed wrongly can only
// miss.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/cache/look.h"
#include "sandbox/remote/reapi.pb.h"
#include "sandbox/remote/remote.pb.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

namespace pb {
class CacheEntry;
}  // namespace pb

namespace reapi = build::bazel::remote::execution::v2;

namespace remote_layout {

inline constexpr size_t kMaxShapes = 8;
inline constexpr std::string_view kShapesPath = ".bsandbox/shapes";
inline constexpr std::string_view kEntryPath = ".bsandbox/entry";
inline constexpr std::string_view kRecordPath = ".bsandbox/record";
inline constexpr std::string_view kManifestPath = ".bsandbox/manifest";
inline constexpr size_t kMaxManifest = 100000;  // entries

// "unsigned", or a digest of key (hex, 16 bytes).
std::string key_id(const std::string& key);
std::string ac_path(const Digest& d);
std::string cas_path(const Digest& d);

Digest index_key(std::string_view key_id, const Digest& weak);
// A build (a top-level bsandbox exec) as its manifest is named: its
// command, working directory and root; not its environment, which CI jobs
// fill with their own ids (a manifest only says what to fetch ahead).
Digest build_key(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root);
Digest manifest_key(std::string_view key_id, const Digest& build);

pb::Shape shape_of(const pb::CacheEntry& e);
Digest shape_digest(const pb::Shape& s);
// What an entry needs its inputs to be, from the entry.
Digest probe_of(const pb::CacheEntry& e);
// The same from the paths as they are now under root; nullopt when no
// entry of this shape can hit (a path it needs present is missing).
Result<std::optional<Digest>> probe_now(const pb::Shape& s, const std::string& root, const HashMemo& memo);
Digest entry_key(std::string_view key_id, const Digest& weak, const pb::Shape& s, const Digest& probe,
                 const std::string& root);

// A blob an ActionResult names: its digest and size, and its content when
// inlined.
struct BlobRef {
  Digest digest;
  uint64_t size = 0;
  std::optional<std::string> inlined;
};
reapi::Digest digest_of(const Digest& d, uint64_t size);
// The blob of the output file named path, or nullopt (absent or malformed).
std::optional<BlobRef> output_named(const reapi::ActionResult& ar, std::string_view path);
// A digest as an ActionResult spells it, or nullopt.
std::optional<BlobRef> blob_of(const reapi::Digest& d);

// An ActionResult of one of bsandbox's own blobs (the index's shapes
// list, a manifest), named path and inlined.
reapi::ActionResult own_blob_result(std::string_view path, const std::string& blob);
inline reapi::ActionResult index_result(const std::string& shapes_blob) {
  return own_blob_result(kShapesPath, shapes_blob);
}
// An entry's ActionResult: the entry blob (named and inlined), its record,
// its files (paths not valid as REAPI's, UTF-8 and relative, are listed as
// ".bsandbox/file/HEX"), symlinks, exit code and streams.
// size_of gives each object's length (the local store knows them).
reapi::ActionResult entry_result(const pb::CacheEntry& e, const std::string& entry_blob,
                                 const std::function<uint64_t(const Digest&)>& size_of);

// The blobs (other than its own) an entry needs: its files, streams and
// record, each once, with the size when the entry knows it (0 if not).
std::vector<std::pair<Digest, uint64_t>> entry_objects(const pb::CacheEntry& e);

// The shapes list with s first (moved there if present), at most kMaxShapes.
pb::Shapes with_shape(const pb::Shapes& old, const pb::Shape& s, const Digest& weak);

}  // namespace remote_layout
}  // namespace bsandbox
