// layout.cpp: see layout.h. Particular to the implementation: the probe is
// a digest of, per input, exactly the fields mismatch() (look.h) compares
// for its aspects, taken from the stored input or from a CacheInput filled
// from the path's look now by the rules the entry was built with
// (save.cpp), and of the places of the ordered times with the start last.
#include "sandbox/remote/layout.h"

#include <algorithm>
#include <set>

#include "sandbox/base/clocks.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/entry.h"

namespace bsandbox::remote_layout {
namespace {

constexpr std::string_view kVersion = "bsandbox-remote 1";

// What mismatch() compares of in, into h.
void hash_input(Hasher& h, const pb::CacheInput& in) {
  uint32_t a = in.aspects();
  hash_field(h, in.path());
  hash_field(h, in.in_root() ? "in root" : "absolute");
  hash_field(h, std::to_string(a));
  if (a == kAspectPresent) return;
  hash_field(h, std::to_string(in.kind()));
  auto kind = static_cast<FileKind>(in.kind());
  if (a & kAspectMeta) {
    hash_field(h, std::to_string(in.mode()) + " " + std::to_string(in.size()));
    hash_field(h, in.target());
    if (kind == FileKind::kSymlink)
      hash_field(h, std::to_string(in.resolved_kind()) + " " + std::to_string(in.resolved_mode()) + " " +
                        std::to_string(in.resolved_size()));
  }
  if (a & kAspectMtime) hash_field(h, std::to_string(in.mtime()));
  if (a & kAspectContent) hash_field(h, in.content());
  if ((a & kAspectListing) && kind == FileKind::kDir) hash_field(h, in.listing());
  if (a & (kAspectOrder | kAspectPlace)) hash_field(h, "place " + std::to_string(in.mtime_rank()));
}

// A stored input's fields as an entry of this shape would hold them for
// the path's state now (save.cpp's add_input; the place is set later).
pb::CacheInput as_stored(const pb::ShapeInput& si, const PathState& now) {
  pb::CacheInput in;
  uint32_t a = si.aspects();
  in.set_path(si.path());
  in.set_in_root(si.in_root());
  in.set_aspects(a);
  in.set_kind(static_cast<uint32_t>(now.kind));
  if (a & kAspectMeta) {
    in.set_mode(now.mode);
    in.set_size(now.size);
    in.set_target(now.target);
    if (now.kind == FileKind::kSymlink) {
      in.set_resolved_kind(static_cast<uint32_t>(now.resolved_kind));
      in.set_resolved_mode(now.resolved_mode);
      in.set_resolved_size(now.resolved_size);
    }
  }
  if (a & kAspectMtime) in.set_mtime(time_of(now));
  if ((a & kAspectContent) && now.content) in.set_content(std::string(now.content->raw()));
  if ((a & kAspectListing) && now.kind == FileKind::kDir) in.set_listing(std::string(listing_digest(now.names).raw()));
  return in;
}

Digest finish_probe(const std::vector<pb::CacheInput>& inputs, std::optional<uint32_t> start_rank) {
  Hasher h;
  hash_field(h, kVersion);
  hash_field(h, "probe");
  hash_field(h, std::to_string(inputs.size()));
  for (const auto& in : inputs) hash_input(h, in);
  if (start_rank) hash_field(h, "start " + std::to_string(*start_rank));
  return h.finish();
}

bool valid_output_path(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.starts_with(".bsandbox/")) return false;
  // UTF-8, as a proto3 string must be (a server in Go refuses the whole
  // message otherwise).
  for (size_t i = 0; i < p.size();) {
    auto c = static_cast<unsigned char>(p[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || c == 0 || i + n > p.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(p[i + k]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

reapi::OutputFile* add_blob(reapi::ActionResult* ar, std::string_view path, const Digest& d, uint64_t size) {
  auto* f = ar->add_output_files();
  f->set_path(std::string(path));
  *f->mutable_digest() = digest_of(d, size);
  return f;
}

}  // namespace

std::string key_id(const std::string& key) {
  if (key.empty()) return "unsigned";
  return hash_bytes(hmac(key, "bsandbox remote key id")).hex().substr(0, 32);
}

std::string ac_path(const Digest& d) { return "ac/" + d.hex(); }
std::string cas_path(const Digest& d) { return "cas/" + d.hex(); }

Digest index_key(std::string_view key_id, const Digest& weak) {
  Hasher h;
  hash_field(h, kVersion);
  hash_field(h, "index");
  hash_field(h, key_id);
  hash_field(h, weak.raw());
  return h.finish();
}

Digest build_key(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root) {
  Hasher h;
  hash_field(h, kVersion);
  hash_field(h, "build");
  hash_field(h, std::to_string(argv.size()));
  for (const auto& a : argv) hash_field(h, a);
  hash_field(h, cwd);
  hash_field(h, root);
  return h.finish();
}

Digest manifest_key(std::string_view key_id, const Digest& build) {
  Hasher h;
  hash_field(h, kVersion);
  hash_field(h, "manifest");
  hash_field(h, key_id);
  hash_field(h, build.raw());
  return h.finish();
}

pb::Shape shape_of(const pb::CacheEntry& e) {
  pb::Shape s;
  for (const auto& in : e.inputs()) {
    auto* si = s.add_inputs();
    si->set_path(in.path());
    si->set_in_root(in.in_root());
    si->set_aspects(in.aspects());
  }
  s.set_root_keyed(e.root_keyed());
  return s;
}

Digest shape_digest(const pb::Shape& s) {
  Hasher h;
  hash_field(h, kVersion);
  hash_field(h, "shape");
  hash_field(h, s.root_keyed() ? "root keyed" : "any root");
  for (const auto& in : s.inputs()) {
    hash_field(h, in.path());
    hash_field(h, in.in_root() ? "in root" : "absolute");
    hash_field(h, std::to_string(in.aspects()));
  }
  return h.finish();
}

Digest probe_of(const pb::CacheEntry& e) {
  std::vector<pb::CacheInput> inputs(e.inputs().begin(), e.inputs().end());
  bool ordered = std::any_of(inputs.begin(), inputs.end(),
                             [](const auto& in) { return (in.aspects() & (kAspectOrder | kAspectPlace)) != 0; });
  return finish_probe(inputs, ordered ? std::optional<uint32_t>(e.start_rank()) : std::nullopt);
}

Result<std::optional<Digest>> probe_now(const pb::Shape& s, const std::string& root, const HashMemo& memo) {
  std::vector<pb::CacheInput> inputs;
  inputs.reserve(static_cast<size_t>(s.inputs_size()));
  TimeOrder order;
  std::vector<size_t> ordered;
  for (const auto& si : s.inputs()) {
    pb::CacheInput in;
    in.set_path(si.path());
    in.set_in_root(si.in_root());
    std::string p = input_path(in, root);
    auto now = look(p, si.aspects(), memo);
    if (!now) return tl::unexpected(now.error());
    if (si.aspects() == kAspectPresent && now->kind == FileKind::kAbsent) return std::nullopt;
    inputs.push_back(as_stored(si, *now));
    if (si.aspects() & (kAspectOrder | kAspectPlace)) {
      order.items.push_back({time_of(*now), (si.aspects() & kAspectOrder) != 0, p});
      ordered.push_back(inputs.size() - 1);
    }
  }
  std::optional<uint32_t> start;
  if (!ordered.empty()) {
    order.items.push_back({Clocks::wall_now(), true, ""});
    auto places = order.places();
    for (size_t i = 0; i < ordered.size(); ++i) inputs[ordered[i]].set_mtime_rank(places[i]);
    start = places.back();
  }
  return finish_probe(inputs, start);
}

Digest entry_key(std::string_view key_id, const Digest& weak, const pb::Shape& s, const Digest& probe,
                 const std::string& root) {
  Hasher h;
  hash_field(h, kVersion);
  hash_field(h, "entry");
  hash_field(h, key_id);
  hash_field(h, weak.raw());
  hash_field(h, shape_digest(s).raw());
  hash_field(h, probe.raw());
  if (s.root_keyed()) hash_field(h, root);
  return h.finish();
}

reapi::Digest digest_of(const Digest& d, uint64_t size) {
  reapi::Digest r;
  r.set_hash(d.hex());
  r.set_size_bytes(static_cast<int64_t>(size));
  return r;
}

std::optional<BlobRef> blob_of(const reapi::Digest& d) {
  auto dg = Digest::from_hex(d.hash());
  if (!dg || d.hash().size() != 64 || d.size_bytes() < 0) return std::nullopt;
  return BlobRef{*dg, static_cast<uint64_t>(d.size_bytes()), std::nullopt};
}

std::optional<BlobRef> output_named(const reapi::ActionResult& ar, std::string_view path) {
  for (const auto& f : ar.output_files()) {
    if (f.path() != path) continue;
    auto b = blob_of(f.digest());
    if (b && !f.contents().empty()) b->inlined = f.contents();
    return b;
  }
  return std::nullopt;
}

reapi::ActionResult own_blob_result(std::string_view path, const std::string& blob) {
  reapi::ActionResult ar;
  add_blob(&ar, path, hash_bytes(blob), blob.size())->set_contents(blob);
  return ar;
}

reapi::ActionResult entry_result(const pb::CacheEntry& e, const std::string& entry_blob,
                                 const std::function<uint64_t(const Digest&)>& size_of) {
  reapi::ActionResult ar;
  add_blob(&ar, kEntryPath, hash_bytes(entry_blob), entry_blob.size())->set_contents(entry_blob);
  if (auto d = Digest::from_raw(e.record_object())) add_blob(&ar, kRecordPath, *d, size_of(*d));
  for (const auto& o : e.outputs()) {
    auto kind = static_cast<FileKind>(o.kind());
    if (kind == FileKind::kFile) {
      auto d = Digest::from_raw(o.content());
      if (!d) continue;
      std::string p = valid_output_path(o.path()) ? o.path() : ".bsandbox/file/" + d->hex();
      add_blob(&ar, p, *d, o.size())->set_is_executable((o.mode() & 0111) != 0);
    } else if (kind == FileKind::kSymlink && valid_output_path(o.path()) && !o.target().empty() &&
               valid_output_path(o.target().front() == '/' ? o.target().substr(1) : o.target())) {
      auto* l = ar.add_output_symlinks();
      l->set_path(o.path());
      l->set_target(o.target());
    }
  }
  ar.set_exit_code(e.exit_code());
  if (auto d = Digest::from_raw(e.stdout_object())) *ar.mutable_stdout_digest() = digest_of(*d, size_of(*d));
  if (auto d = Digest::from_raw(e.stderr_object())) *ar.mutable_stderr_digest() = digest_of(*d, size_of(*d));
  return ar;
}

std::vector<std::pair<Digest, uint64_t>> entry_objects(const pb::CacheEntry& e) {
  std::vector<std::pair<Digest, uint64_t>> out;
  std::set<Digest> seen;
  auto add = [&](const std::string& raw, uint64_t size) {
    auto d = Digest::from_raw(raw);
    if (d && seen.insert(*d).second) out.emplace_back(*d, size);
  };
  for (const auto& o : e.outputs())
    if (static_cast<FileKind>(o.kind()) == FileKind::kFile) add(o.content(), o.size());
  add(e.stdout_object(), e.stdout_size());
  add(e.stderr_object(), e.stderr_size());
  add(e.record_object(), e.record_size());
  return out;
}

pb::Shapes with_shape(const pb::Shapes& old, const pb::Shape& s, const Digest& weak) {
  pb::Shapes out;
  out.set_weak_key(std::string(weak.raw()));
  *out.add_shapes() = s;
  Digest mine = shape_digest(s);
  for (const auto& o : old.shapes()) {
    if (static_cast<size_t>(out.shapes_size()) >= kMaxShapes) break;
    if (shape_digest(o) != mine) *out.add_shapes() = o;
  }
  return out;
}

}  // namespace bsandbox::remote_layout
