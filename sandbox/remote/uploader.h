// uploader.h: the process that uploads a build's entries while the build
// runs. bsandbox exec starts it before the command, as a grandchild (not a
// child of the supervisor, which waits for every child, and not in the
// traced tree, whose records and cached commands must not contain it); the
// build's wrappers add what they store to the spool (spool.h) and go on;
// the uploader drains the spool every 50 ms over one client (connections
// kept, libcurl loaded once). When the build ends, exec tells it so (a pipe
// closed), it drains what is left and exits, and exec waits for that, for a
// bounded time.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/remote/remote_cache.h"
#include "sandbox/remote/spool.h"

namespace bsandbox {

// Uploads what the spool holds, oldest first, while the server answers;
// warnings go to say. Returns how many entries are left.
size_t drain(UploadSpool& spool, RemoteCache& remote, const std::function<void(const std::string&)>& say);

// How long a build waits for its last uploads (Uploader::finish); an
// uploader still at work then goes on in the background, having let go of
// the build's stderr (whoever reads it, a CI log or $(...), would wait).
inline constexpr int kUploadWaitMs = 120000;

class Uploader {
 public:
  using Say = std::function<void(const std::string&)>;
  // Starts the uploader for the server of options and the local cache
  // local (opened again in the uploader, with local_key, after every other
  // descriptor is closed); say prints a warning (it runs in the uploader,
  // on bsandbox's stderr).
  // With build, the uploader publishes the build's manifest at its end
  // (RemoteCache::publish: the entries its wrappers noted as used).
  static Result<Uploader> start(const RemoteOptions& options, const Cache& local, const std::string& local_key,
                                std::optional<Digest> build, Say say);
  Uploader(Uploader&&) noexcept = default;
  Uploader& operator=(Uploader&&) noexcept = default;

  // The build is over: waits until the uploader has drained the spool and
  // exited, at most timeout_ms (saying so, through progress, once a wait
  // passes a second). False if it is still uploading then (it goes on on
  // its own).
  bool finish(int timeout_ms, const Say& progress);

 private:
  Uploader(UniqueFd go, UniqueFd done) : go_(std::move(go)), done_(std::move(done)) {}
  UniqueFd go_;    // ours to close: the build is over
  UniqueFd done_;  // end of file once the uploader has exited
};

// The process that fetches, when a build starts, what the last build of
// the same command used (RemoteCache::prefetch, the manifest), while the
// build runs: started as the uploader is; told to stop (between requests)
// when this object goes, at the build's end, not waited for.
class Prefetcher {
 public:
  static Result<Prefetcher> start(const RemoteOptions& options, const Cache& local, const std::string& local_key,
                                  const Digest& build, Uploader::Say say);
  Prefetcher(Prefetcher&&) noexcept = default;
  Prefetcher& operator=(Prefetcher&&) noexcept = default;

 private:
  explicit Prefetcher(UniqueFd go) : go_(std::move(go)) {}
  UniqueFd go_;  // closed: the build is over
};

}  // namespace bsandbox
