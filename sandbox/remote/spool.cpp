// spool.cpp: see spool.h. An item is made with O_EXCL (two wrappers storing
// the same entry add one item); names that are not WEAK.STRONG in hex are
// not ours and are left alone.
#include "sandbox/remote/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "sandbox/base/text.h"
#include "sandbox/cache/cache.h"
#include "sandbox/cache/entry.h"
#include "sandbox/remote/layout.h"
#include "sandbox/remote/remote_cache.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

std::string spool_name(const RemoteOptions& remote) {
  std::string id = "bsandbox upload spool 1\n" + remote.url + "\n" + remote_layout::key_id(remote.key);
  return "u" + std::to_string(::geteuid()) + "-" + hash_bytes(id).hex().substr(0, 32);
}

}  // namespace

std::string UploadSpool::path_of(const Cache& local, const RemoteOptions& remote) {
  char* real = ::realpath(local.dir().c_str(), nullptr);
  std::string dir = real ? real : local.dir();
  std::free(real);
  return dir + "/uploads/" + spool_name(remote);
}

Result<UploadSpool> UploadSpool::open(Cache& local, const RemoteOptions& remote) {
  auto uploads = local.state_dir("uploads");
  if (!uploads) return tl::unexpected(uploads.error());
  std::string name = spool_name(remote);
  std::string shown = printable(local.dir()) + "/uploads/" + name;
  auto dir = open_dir_at(uploads->get(), name, shown, true, 0700);
  if (!dir) return tl::unexpected(dir.error());
  struct stat st;
  if (::fstat(dir->get(), &st) != 0) return fail_errno(shown, errno);
  if (st.st_uid != ::geteuid() || (st.st_mode & 022))
    return fail(shown + ": not this user's alone (another user owns it or can write it): uploads go one by one");
  return UploadSpool(std::move(*dir));
}

namespace {

constexpr std::string_view kUsed = ".used";

Result<void> add_item(int dir, const std::string& name) {
  int fd = ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST) return fail_errno("the upload spool", errno);
  if (fd >= 0) ::close(fd);
  return {};
}

// The items named WEAK.STRONG + suffix, oldest first.
std::vector<SpoolItem> items(int dir, std::string_view suffix) {
  std::vector<std::pair<int64_t, SpoolItem>> found;
  auto names = list_dir(dir, "the upload spool");
  if (!names) return {};
  for (const auto& n : *names) {
    if (n.size() != 129 + suffix.size() || n[64] != '.' || !std::string_view(n).ends_with(suffix)) continue;
    auto weak = Digest::from_hex(n.substr(0, 64));
    auto strong = Digest::from_hex(n.substr(65, 64));
    struct stat st;
    if (!weak || !strong || ::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    found.push_back({static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                     SpoolItem{*weak, *strong, n}});
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<SpoolItem> out;
  for (auto& [_, item] : found) out.push_back(std::move(item));
  return out;
}

}  // namespace

Result<void> UploadSpool::add(const Digest& weak, const Digest& strong) {
  return add_item(dir_.get(), weak.hex() + "." + strong.hex());
}

std::vector<SpoolItem> UploadSpool::pending() const { return items(dir_.get(), ""); }

Result<void> UploadSpool::add_used(const Digest& weak, const Digest& strong) {
  return add_item(dir_.get(), weak.hex() + "." + strong.hex() + std::string(kUsed));
}

std::vector<SpoolItem> UploadSpool::used() const { return items(dir_.get(), kUsed); }

bool UploadSpool::waits(const SpoolItem& item) const {
  struct stat st;
  return ::fstatat(dir_.get(), item.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void UploadSpool::done(const SpoolItem& item) { ::unlinkat(dir_.get(), item.name.c_str(), 0); }

Result<UniqueFd> UploadSpool::lock(bool wait) const {
  UniqueFd fd(::openat(dir_.get(), ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail_errno("the upload spool's lock", errno);
  while (::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    return fail_errno("the upload spool's lock", errno);
  }
  return fd;
}

}  // namespace bsandbox
