// spool.h: entries waiting to be uploaded to a remote cache, as empty files
// uploads/WEAK.STRONG in the local cache (the entries themselves stay where
// they are). The wrappers of a build add to it and the build's uploader
// (uploader.h), a process outside the traced tree, drains it as it fills:
// the wrappers' commands neither wait for nor contain the uploads. An entry
// whose upload failed stays, and the next drain (this build's, or the next
// build's) tries it again; one drainer at a time (a lock file).
#pragma once

#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

class Cache;

struct SpoolItem {
  Digest weak, strong;
  std::string name;
};

class UploadSpool {
 public:
  static Result<UploadSpool> open(Cache& local);
  // Adds an entry to upload; adding it twice is adding it once.
  Result<void> add(const Digest& weak, const Digest& strong);
  // What waits, oldest first.
  std::vector<SpoolItem> pending() const;
  void done(const SpoolItem& item);
  // The lock one drainer holds (blocking when wait, else an error if held).
  Result<UniqueFd> lock(bool wait) const;

 private:
  explicit UploadSpool(UniqueFd dir) : dir_(std::move(dir)) {}
  UniqueFd dir_;
};

}  // namespace bsandbox
