// store.cpp: see store.h. Objects are named by the SHA-256 of their
// content (OpenSSL's EVP, which uses the CPU's SHA extensions), written to
// a temporary beside their place and linked in, so an object is whole or
// absent; sealed files carry a magic and a checksum so a damaged one is
// told apart from a missing one.
#include "sandbox/storage/store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/storage/fs.h"

namespace bsandbox {

std::string Digest::hex() const {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::optional<Digest> Digest::from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Digest d;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

std::optional<Digest> Digest::from_raw(std::string_view raw) {
  if (raw.size() != 32) return std::nullopt;
  Digest d;
  std::copy(raw.begin(), raw.end(), d.bytes.begin());
  return d;
}

Hasher::Hasher() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Hasher::~Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Hasher::update(const void* data, size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}
Digest Hasher::finish() {
  Digest d;
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.bytes.data(), &n);
  return d;
}

Digest hash_bytes(std::string_view data) {
  Hasher h;
  h.update(data.data(), data.size());
  return h.finish();
}

Result<Digest> hash_fd(int fd, std::string_view what) {
  Hasher h;
  auto r = read_content(fd, what, [&](const char* p, size_t n) { h.update(p, n); });
  if (!r) return tl::unexpected(r.error());
  return h.finish();
}

std::string seal(std::string_view magic, std::string_view payload) {
  std::string out(magic);
  out += hash_bytes(payload).raw();
  out += payload;
  return out;
}

Result<std::string_view> unseal(std::string_view bytes, std::string_view magic, std::string_view what,
                                std::string_view noun) {
  std::string w(what), n(noun);
  if (bytes.size() < magic.size() + 32 || bytes.substr(0, magic.size()) != magic)
    return fail(w + ": not a bsandbox " + n + " (damaged or from another version)");
  std::string_view sum = bytes.substr(magic.size(), 32), payload = bytes.substr(magic.size() + 32);
  if (hash_bytes(payload).raw() != sum) return fail(w + ": " + n + " is damaged (checksum mismatch)");
  return payload;
}

Result<Store> Store::open(int parent_fd, const std::string& name, std::string display, bool durable,
                          mode_t dir_mode) {
  auto dir = make_dir_beneath(parent_fd, name, dir_mode);
  if (!dir) return fail(display + ": " + dir.error().message);
  return Store(std::move(*dir), std::move(display), durable, dir_mode);
}

std::string Store::rel(const Digest& d) const {
  std::string h = d.hex();
  return h.substr(0, 2) + "/" + h.substr(2);
}

std::string Store::where(const Digest& d) const { return display_ + "/" + rel(d); }

// objects/ab is opened beneath the store without following a symlink: the
// store's directory may belong to someone else (a project's owner), who
// must not be able to send an object, or a link to one, elsewhere.
Result<UniqueFd> Store::object_dir(const Digest& d, bool create, int* err) const {
  std::string sub = d.hex().substr(0, 2);
  if (create) {
    auto made = make_dir_beneath(dir_.get(), sub, dir_mode_);
    if (!made) return fail(display_ + "/" + made.error().message);
    return made;
  }
  int e = 0;
  auto fd = open_beneath(dir_.get(), sub, O_RDONLY | O_DIRECTORY, 0, &e);
  if (err) *err = e;
  if (fd) return fd;
  if (e == ELOOP) return fail(display_ + "/" + sub + ": a symlink, not a directory of the store (not followed)");
  return fail_errno(display_ + "/" + sub, e);
}

Result<UniqueFd> Store::open_object(const Digest& d) const {
  int err = 0;
  auto sub = object_dir(d, false, &err);
  if (!sub && err != ENOENT) return tl::unexpected(sub.error());
  UniqueFd in;
  // Non-blocking, then checked: a FIFO someone planted in a shared store
  // would hang the open (and the reader) otherwise.
  if (sub) in.reset(::openat(sub->get(), d.hex().substr(2).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (in.valid()) {
    struct stat st;
    if (::fstat(in.get(), &st) != 0) return fail_errno(where(d), errno);
    if (!S_ISREG(st.st_mode)) return fail(where(d) + ": not a regular file (not read)");
    (void)::fcntl(in.get(), F_SETFL, ::fcntl(in.get(), F_GETFL) & ~O_NONBLOCK);
    return in;
  }
  int e = sub ? errno : ENOENT;
  if (e == ENOENT) return fail(where(d) + ": object missing from the store");
  return fail_errno(where(d), e);
}

Result<Digest> Store::put(int fd, std::string_view what, bool* already, const Digest* known) {
  if (already) *already = false;
  if (known && contains(*known)) {
    if (already) *already = true;
    return *known;
  }
  UniqueFd tmp(::openat(dir_.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0444));
  std::string named;  // the fallback where O_TMPFILE is not supported
  if (!tmp.valid()) {
    if (errno != EOPNOTSUPP && errno != EISDIR) return fail_errno(display_, errno);
    named = temp_name();
    tmp.reset(::openat(dir_.get(), named.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0444));
    if (!tmp.valid()) return fail_errno(display_ + "/" + named, errno);
  }
  auto cleanup = [&] {
    if (!named.empty()) ::unlinkat(dir_.get(), named.c_str(), 0);
  };
  Hasher h;
  auto copied = copy_content(fd, tmp.get(), what, [&](const char* p, size_t n) { h.update(p, n); });
  if (copied && durable_) copied = sync_fd(tmp.get(), display_);
  if (!copied) {
    cleanup();
    return tl::unexpected(copied.error());
  }
  Digest d = h.finish();
  auto sub = object_dir(d, true);
  if (!sub) {
    cleanup();
    return tl::unexpected(sub.error());
  }
  std::string name = d.hex().substr(2);
  int rc;
  if (named.empty()) {
    std::string proc = "/proc/self/fd/" + std::to_string(tmp.get());
    rc = ::linkat(AT_FDCWD, proc.c_str(), sub->get(), name.c_str(), AT_SYMLINK_FOLLOW);
    if (rc != 0 && errno == ENOENT)  // no /proc: needs CAP_DAC_READ_SEARCH instead
      rc = ::linkat(tmp.get(), "", sub->get(), name.c_str(), AT_EMPTY_PATH);
  } else {
    rc = ::linkat(dir_.get(), named.c_str(), sub->get(), name.c_str(), 0);
  }
  int e = errno;
  cleanup();
  if (rc != 0 && e != EEXIST) return fail_errno(where(d), e);
  if (rc != 0) {
    if (already) *already = true;
    // Already stored (by us earlier or by a concurrent process). A damaged
    // copy of the wrong size is replaced; deeper damage is caught on restore.
    struct stat have, want;
    if (::fstatat(sub->get(), name.c_str(), &have, AT_SYMLINK_NOFOLLOW) == 0 &&
        ::fstat(tmp.get(), &want) == 0 && have.st_size != want.st_size) {
      std::string again = temp_name();
      std::string proc = "/proc/self/fd/" + std::to_string(tmp.get());
      if (::linkat(AT_FDCWD, proc.c_str(), sub->get(), again.c_str(), AT_SYMLINK_FOLLOW) == 0 &&
          ::renameat(sub->get(), again.c_str(), sub->get(), name.c_str()) != 0)
        ::unlinkat(sub->get(), again.c_str(), 0);
    }
  }
  if (!durable_) return d;
  if (auto s = sync_fd(sub->get(), display_ + "/" + d.hex().substr(0, 2)); !s) return tl::unexpected(s.error());
  return d;
}

Result<void> Store::restore(const Digest& d, int dirfd, const std::string& name, mode_t mode) {
  UniqueFd out(::openat(dirfd, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return fail_errno(printable(name), errno);
  auto r = copy_to(d, out.get());
  if (r && ::fchmod(out.get(), mode) != 0) r = fail_errno(printable(name), errno);
  if (r && durable_) r = sync_fd(out.get(), printable(name));
  if (!r) ::unlinkat(dirfd, name.c_str(), 0);
  return r;
}

Result<void> Store::copy_to(const Digest& d, int out) {
  auto in = open_object(d);
  if (!in) return tl::unexpected(in.error());
  Hasher h;
  auto r = copy_content(in->get(), out, where(d), [&](const char* p, size_t n) { h.update(p, n); });
  if (r && h.finish() != d) r = fail(where(d) + ": object is corrupt (its content does not match its hash)");
  return r;
}

Result<std::string> Store::read(const Digest& d) {
  auto in = open_object(d);
  if (!in) return tl::unexpected(in.error());
  std::string out;
  Hasher h;
  auto r = read_content(in->get(), where(d), [&](const char* p, size_t n) {
    out.append(p, n);
    h.update(p, n);
  });
  if (!r) return tl::unexpected(r.error());
  if (h.finish() != d) return fail(where(d) + ": object is corrupt (its content does not match its hash)");
  return out;
}

Result<void> Store::verify(const Digest& d) {
  auto in = open_object(d);
  if (!in) return tl::unexpected(in.error());
  auto got = hash_fd(in->get(), where(d));
  if (!got) return tl::unexpected(got.error());
  if (*got != d) return fail(where(d) + ": object is corrupt (its content does not match its hash)");
  return {};
}

bool Store::contains(const Digest& d) const {
  auto sub = object_dir(d, false);
  return sub && ::faccessat(sub->get(), d.hex().substr(2).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

uint64_t Store::disk_bytes(const Digest& d) const {
  auto sub = object_dir(d, false);
  struct stat st;
  if (!sub || ::fstatat(sub->get(), d.hex().substr(2).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::optional<uint64_t> Store::size(const Digest& d) const {
  auto sub = object_dir(d, false);
  struct stat st;
  if (!sub || ::fstatat(sub->get(), d.hex().substr(2).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
    return std::nullopt;
  return static_cast<uint64_t>(st.st_size);
}

Result<void> Store::remove(const Digest& d) {
  int err = 0;
  auto sub = object_dir(d, false, &err);
  if (!sub) return err == ENOENT ? Result<void>{} : tl::unexpected(sub.error());
  if (::unlinkat(sub->get(), d.hex().substr(2).c_str(), 0) != 0 && errno != ENOENT)
    return fail_errno(where(d), errno);
  return {};
}

Result<std::vector<Digest>> Store::list() const {
  auto subs = list_dir(dir_.get(), display_);
  if (!subs) return tl::unexpected(subs.error());
  std::vector<Digest> out;
  for (const auto& sub : *subs) {
    if (sub.size() != 2) continue;
    auto sd = open_beneath(dir_.get(), sub, O_RDONLY | O_DIRECTORY);
    if (!sd) return tl::unexpected(sd.error());
    auto names = list_dir(sd->get(), display_ + "/" + sub);
    if (!names) return tl::unexpected(names.error());
    for (const auto& n : *names)
      if (auto d = Digest::from_hex(sub + n)) out.push_back(*d);
  }
  return out;
}

}  // namespace bsandbox
