// spool.h: entries waiting to be uploaded to a remote cache, as empty files
// uploads/SPOOL/WEAK.STRONG in the local cache (the entries themselves stay
// where they are). The wrappers of a build add to it and the build's
// uploader (uploader.h), a process outside the traced tree, drains it as
// it fills: the wrappers' commands neither wait for nor contain the
// uploads. An entry whose upload failed stays, and the next drain (this
// build's, or the next build's) tries it again; one drainer at a time (a
// lock file).
//
// A spool belongs to one user and one server: SPOOL is named after the
// user, the server's URL and the signing key's id, made 0700, and refused
// when another user owns it or others can write it. So two builds sharing
// a local cache but not a server (or a key) never upload each other's
// entries, and another user of a shared cache cannot choose what this
// user's uploader signs and sends.
#pragma once

#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

class Cache;
struct RemoteOptions;

struct SpoolItem {
  Digest weak, strong;
  std::string name;
};

class UploadSpool {
 public:
  // The spool of this user for the server of remote in local (made if
  // needed); an error for one that is not this user's alone.
  static Result<UploadSpool> open(Cache& local, const RemoteOptions& remote);
  // Where it is: the cache's directory (symlinks resolved) and
  // uploads/SPOOL. A wrapper spools only when its build's uploader drains
  // the same place (bsandbox exec says which in the environment).
  static std::string path_of(const Cache& local, const RemoteOptions& remote);

  // Adds an entry to upload; adding it twice is adding it once.
  Result<void> add(const Digest& weak, const Digest& strong);
  // What waits, oldest first.
  std::vector<SpoolItem> pending() const;
  // Notes an entry a build used (a hit, or stored), for the build's
  // manifest (RemoteCache::publish); used() lists them, oldest first, until
  // done().
  Result<void> add_used(const Digest& weak, const Digest& strong);
  std::vector<SpoolItem> used() const;
  // Whether item still waits.
  bool waits(const SpoolItem& item) const;
  void done(const SpoolItem& item);
  // The lock one drainer holds (blocking when wait, else an error if held).
  Result<UniqueFd> lock(bool wait) const;

 private:
  explicit UploadSpool(UniqueFd dir) : dir_(std::move(dir)) {}
  UniqueFd dir_;
};

}  // namespace bsandbox
