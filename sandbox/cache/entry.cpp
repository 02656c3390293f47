// entry.cpp: see entry.h. An entry is read whole (they are small: paths and
// digests) and checked before it is parsed; the signature is compared with
// CRYPTO_memcmp, so a forger learns nothing from how long a refusal takes.
#include "sandbox/cache/entry.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sandbox/base/text.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

constexpr std::string_view kMagic = "BSC1";
constexpr std::string_view kSignedMagic = "BSM1";
constexpr size_t kMacSize = 32;

}  // namespace

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

std::string seal_entry(const std::string& key, std::string_view payload) {
  if (key.empty()) return seal(kMagic, payload);
  return std::string(kSignedMagic) + hmac(key, payload) + std::string(payload);
}

Result<std::string> read_at(int dirfd, const std::string& name, std::string_view what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(what, errno);
  std::string out;
  auto r = read_content(fd.get(), what, [&](const char* p, size_t n) { out.append(p, n); });
  if (!r) return tl::unexpected(r.error());
  return out;
}

Result<std::string_view> open_sealed(std::string_view all, const std::string& shown, const std::string& key,
                                     std::string_view noun, bool* foreign) {
  *foreign = false;
  if (key.empty()) {
    if (all.starts_with(kSignedMagic)) {
      *foreign = true;
      return fail(shown + ": a signed " + std::string(noun) + " (of a cache shared with a key)");
    }
    return unseal(all, kMagic, shown, noun);
  }
  if (!all.starts_with(kSignedMagic) || all.size() < kSignedMagic.size() + kMacSize ||
      !same_secret(all.substr(kSignedMagic.size(), kMacSize), hmac(key, all.substr(kSignedMagic.size() + kMacSize)))) {
    *foreign = true;
    return fail(shown + ": a " + std::string(noun) + " not signed with this cache's key; ignored");
  }
  return all.substr(kSignedMagic.size() + kMacSize);
}

Result<pb::CacheEntry> parse_entry(std::string_view all, const std::string& shown, const std::string& key,
                                   bool* foreign) {
  auto payload = open_sealed(all, shown, key, "cache entry", foreign);
  if (!payload) return tl::unexpected(payload.error());
  pb::CacheEntry e;
  if (!e.ParseFromArray(payload->data(), static_cast<int>(payload->size())))
    return fail(shown + ": cache entry is damaged (does not parse)");
  return e;
}

Result<pb::CacheEntry> read_entry(int dirfd, const std::string& name, const std::string& shown,
                                  const std::string& key, bool* foreign) {
  *foreign = false;
  auto bytes = read_at(dirfd, name, shown);
  if (!bytes) return tl::unexpected(bytes.error());
  return parse_entry(*bytes, shown, key, foreign);
}

Result<UniqueFd> open_dir_at(int dirfd, const std::string& name, std::string_view what, bool create,
                             mode_t mode) {
  if (create) {
    auto made = make_dir_beneath(dirfd, name, mode);
    if (!made) return fail(std::string(what) + ": " + made.error().message);
    return made;
  }
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(what, errno);
  return fd;
}

Result<uint64_t> write_entry(int entries_fd, const Digest& weak, const Digest& strong, const pb::CacheEntry& e,
                             const std::string& key, mode_t dir_mode) {
  std::string hex = weak.hex(), shard = hex.substr(0, 2);
  auto sfd = open_dir_at(entries_fd, shard, "cache entries", true, dir_mode);
  if (!sfd) return tl::unexpected(sfd.error());
  auto wfd = open_dir_at(sfd->get(), hex, "cache entries", true, dir_mode);
  if (!wfd) return tl::unexpected(wfd.error());
  std::string sealed = seal_entry(key, e.SerializeAsString());
  if (auto w = replace_file_at(wfd->get(), strong.hex(), sealed, "cache entry", 0644, false); !w)
    return tl::unexpected(w.error());
  return sealed.size();
}

Result<void> walk_entries(int entries_fd, const std::string& shown_dir, const std::string& key,
                          const EntryVisitor& visit) {
  auto shards = list_dir(entries_fd, shown_dir + "/entries");
  if (!shards) return tl::unexpected(shards.error());
  for (const auto& shard : *shards) {
    auto sfd = open_dir_at(entries_fd, shard, shown_dir + "/entries/" + shard, false);
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
        bool foreign = false;
        auto entry = read_entry(wfd->get(), name, shown_dir + "/entries/" + rel, key, &foreign);
        if (foreign) continue;  // not this cache's kind of entry: left alone
        Result<StoredEntry> c = entry ? Result<StoredEntry>(StoredEntry{name, rel, std::move(*entry)})
                                      : Result<StoredEntry>(tl::unexpected(entry.error()));
        visit(rel, st, c);
      }
    }
  }
  return {};
}

}  // namespace bsandbox
