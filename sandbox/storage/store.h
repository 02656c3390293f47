// store.h: the content-addressed object store of a project's state.
//
// An object is a file's content, named by its SHA-256: objects/ab/cdef...
// (the first two hex digits are a directory, so no directory grows past a
// few thousand entries). put() copies a file into the store while hashing it
// (holes stay holes, a 1 GiB sparse file costs what its data costs), into an
// unnamed file (O_TMPFILE) that is fsynced and then linked under its hash: an
// object is whole or absent, and two processes storing the same content at
// once both succeed. restore() copies an object out and checks its hash on
// the way, so a corrupt object is an error naming it, never a wrong file.
// Objects are never handed out by link: a file restored into the tree is a
// copy (or a reflink), so editing it cannot change the store. Every object
// is reached from the store's directory descriptor, its objects/ab opened
// without following a symlink: whoever owns the directory (a project's
// owner) cannot send a stored copy, or a read, elsewhere.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

struct Digest {
  std::array<uint8_t, 32> bytes{};

  std::string hex() const;
  std::string_view raw() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static std::optional<Digest> from_hex(std::string_view hex);
  static std::optional<Digest> from_raw(std::string_view raw);
  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;
};

// SHA-256, fed in pieces.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, size_t n);
  Digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

Digest hash_bytes(std::string_view data);

// A file body that says whether it is whole: magic + SHA-256(payload) +
// payload. unseal() returns the payload, or an error naming what (a file)
// and noun ("journal entry", "cache entry") when the magic or the sum is
// wrong.
std::string seal(std::string_view magic, std::string_view payload);
Result<std::string_view> unseal(std::string_view bytes, std::string_view magic, std::string_view what,
                                std::string_view noun);
// The content of fd from offset 0 (holes read as zeros without disk reads).
Result<Digest> hash_fd(int fd, std::string_view what);

class Store {
 public:
  // dir: the objects directory (created if missing). A durable store
  // fsyncs what it writes (the journal's); a cache need not, since every
  // object is verified when read and a damaged one is only a miss.
  // dir_mode: of the directories it makes, exactly (a cache shared by a
  // group makes them group-writable, whatever the umask).
  static Result<Store> open(int parent_fd, const std::string& name, std::string display,
                            bool durable = true, mode_t dir_mode = 0755);

  // Copies fd's content in; returns its hash. what names the source in
  // errors; *already (if given) says whether the store had it before.
  // With known (the caller's hash of the content, e.g. from a cache of
  // hashes) nothing is copied when the store already holds it.
  Result<Digest> put(int fd, std::string_view what, bool* already = nullptr,
                     const Digest* known = nullptr);
  // Writes the object into a new file dirfd/name (which must not exist) with
  // the given mode, fsynced; checks the hash while copying.
  Result<void> restore(const Digest& d, int dirfd, const std::string& name, mode_t mode);
  // Writes the object into out (an empty file open for writing), checking
  // the hash while copying; the caller sets owner and mode.
  Result<void> copy_to(const Digest& d, int out);
  // Reads the object through; an error says what is wrong with it.
  Result<void> verify(const Digest& d);
  // The whole object, checked against its hash.
  Result<std::string> read(const Digest& d);
  bool contains(const Digest& d) const;
  // The object's length in bytes, or nullopt if the store lacks it.
  std::optional<uint64_t> size(const Digest& d) const;
  // Bytes the object occupies on disk (0 if absent).
  uint64_t disk_bytes(const Digest& d) const;
  Result<void> remove(const Digest& d);
  Result<std::vector<Digest>> list() const;

 private:
  Store(UniqueFd dir, std::string display, bool durable, mode_t dir_mode)
      : dir_(std::move(dir)), display_(std::move(display)), durable_(durable), dir_mode_(dir_mode) {}
  std::string rel(const Digest& d) const;
  std::string where(const Digest& d) const;
  Result<UniqueFd> object_dir(const Digest& d, bool create, int* err = nullptr) const;
  Result<UniqueFd> open_object(const Digest& d) const;

  UniqueFd dir_;
  std::string display_;  // the objects directory, for messages
  bool durable_ = true;
  mode_t dir_mode_ = 0755;
};

}  // namespace bsandbox
