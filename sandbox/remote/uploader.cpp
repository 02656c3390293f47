// uploader.cpp: see uploader.h. Particular to the implementation: the
// uploader is forked twice (the middle process exits at once, so the
// uploader is nobody's child in this process tree); it keeps stderr, points
// stdin and stdout at /dev/null, closes every other descriptor, so that
// nothing waiting for a pipe or a lock of the parent's waits for it, and
// opens the local cache again. One drainer at a time per spool: another
// build's uploader drains this one's items too, and once this build is
// over, its uploader waits for its own items to go, not for the other
// build to end.
#include "sandbox/remote/uploader.h"

#include <fcntl.h>
#include <poll.h>
#include <linux/close_range.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "sandbox/base/clocks.h"
#include "sandbox/cache/cache.pb.h"

namespace bsandbox {
namespace {

constexpr int kPrefetchConnections = 32;

// The manifest of build: the entries the spool noted as used (this
// build's, and any an earlier build could not publish), then forgotten.
void publish(UploadSpool& spool, RemoteCache& remote, const Digest& build, const Uploader::Say& say) {
  auto used = spool.used();
  std::vector<pb::CacheEntry> entries;
  for (const auto& u : used)
    if (auto e = remote.local().entry(u.weak, u.strong)) entries.push_back(std::move(*e));
  std::vector<std::string> warnings;
  bool published = remote.publish(build, entries, &warnings);
  for (const auto& w : warnings) say("warning: cache: " + w);
  if (published)
    for (const auto& u : used) spool.done(u);
}

[[noreturn]] void run_uploader(const RemoteOptions& options, const std::string& dir, const std::string& key,
                               const std::optional<Digest>& build, const Uploader::Say& say, int go) {
  auto local = Cache::open(dir, key);
  if (!local) ::_exit(0);
  auto remote = RemoteCache::open(options, *local);
  auto spool = UploadSpool::open(*local, options);
  if (!remote || !spool) ::_exit(0);
  // Once the build is over and has waited what it waits, the build's
  // stderr is let go of: warnings after that are lost, not waited for.
  std::thread([go] {
    pollfd p{go, POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kUploadWaitMs));
    int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 2);
  }).detach();
  UniqueFd held;
  std::vector<SpoolItem> ours;  // what waited when the build ended
  for (bool over = false;;) {
    if (!over) {
      pollfd p{go, POLLIN, 0};
      char c;
      if (::poll(&p, 1, 50) > 0 && ::read(go, &c, 1) <= 0) {  // closed: the build is over
        over = true;
        ours = spool->pending();
      }
    } else {
      ::usleep(50000);
    }
    if (!held.valid())
      if (auto lock = spool->lock(/*wait=*/false)) held = std::move(*lock);
    if (held.valid()) drain(*spool, *remote, say);
    // Once over: when its entries are sent (by this uploader, or another
    // build's, which holds the lock), the build's manifest.
    if (over && (held.valid() || std::none_of(ours.begin(), ours.end(), [&](const auto& i) { return spool->waits(i); }))) {
      if (build) publish(*spool, *remote, *build, say);
      ::_exit(0);
    }
  }
}

// Fetches what the manifest of build lists, until the build is over (go
// closed) or everything is here. The moment the build is over it exits,
// whatever request it is in: it holds the build's stderr, which whoever
// reads it waits on, and a server can make one request last long. (An
// exit is as safe as a kill: what it writes into the cache is put in
// place by a rename or a link, whole or not at all.)
[[noreturn]] void run_prefetcher(const RemoteOptions& options, const std::string& dir, const std::string& key,
                                 const Digest& build, const Uploader::Say& say, int go) {
  std::thread([go] {
    pollfd p{go, POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }).detach();
  auto local = Cache::open(dir, key);
  if (!local) ::_exit(0);
  // More requests in flight than a lookup's: a prefetch races the
  // build's first commands, and each request waits a round trip.
  RemoteOptions wide = options;
  wide.http.max_connections = kPrefetchConnections;
  auto remote = RemoteCache::open(wide, *local);
  if (!remote) ::_exit(0);
  auto over = [go] {
    pollfd p{go, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  };
  std::vector<std::string> warnings;
  remote->prefetch(build, over, &warnings);
  for (const auto& w : warnings) say("warning: cache: " + w);
  ::_exit(0);
}

// Starts body(go) in a process that is nobody's child here (forked twice)
// and holds no descriptor of the parent's but stderr; go is a pipe's read
// end the parent closes to say the build is over. The parent's ends: go's
// write end and a pipe that reaches end of file once the process exits.
Result<std::pair<UniqueFd, UniqueFd>> spawn_detached(const std::function<void(int go)>& body) {
  int go[2], done[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  if (::pipe2(done, O_CLOEXEC) != 0) {
    ::close(go[0]);
    ::close(go[1]);
    return fail_errno("pipe", errno);
  }
  UniqueFd go_read(go[0]), go_write(go[1]), done_read(done[0]), done_write(done[1]);
  pid_t middle = ::fork();
  if (middle < 0) return fail_errno("fork", errno);
  if (middle == 0) {
    if (::fork() != 0) ::_exit(0);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
    }
    // Nothing of the parent's but stderr: not its capture pipes, journal,
    // agent connection or the build's pipes, whose readers would wait.
    ::dup2(go_read.get(), 3);
    ::dup2(done_write.get(), 4);  // held open until it exits
    ::close_range(5, ~0U, 0);
    (void)go_read.release();
    (void)go_write.release();
    (void)done_read.release();
    (void)done_write.release();
    body(3);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  return std::make_pair(std::move(go_write), std::move(done_read));
}

}  // namespace

size_t drain(UploadSpool& spool, RemoteCache& remote, const std::function<void(const std::string&)>& say) {
  constexpr size_t kBatch = 64;
  auto items = spool.pending();
  size_t left = items.size();
  for (size_t first = 0; first < items.size(); first += kBatch) {
    std::vector<pb::CacheEntry> entries;
    std::vector<size_t> of;  // the item of each entry
    size_t end = std::min(items.size(), first + kBatch);
    for (size_t i = first; i < end; ++i) {
      if (auto e = remote.local().entry(items[i].weak, items[i].strong)) {
        entries.push_back(std::move(*e));
        of.push_back(i);
      } else {
        spool.done(items[i]);  // gone from the local cache (gc), or not an entry of it
        --left;
      }
    }
    std::vector<std::string> warnings;
    auto sent = remote.upload(entries, &warnings);
    for (const auto& w : warnings) say("warning: cache: " + w);
    bool later = false;
    for (size_t k = 0; k < sent.size(); ++k) {
      if (sent[k] == RemoteCache::Sent::kLater) {
        later = true;
        continue;
      }
      spool.done(items[of[k]]);  // uploaded, or never will be
      --left;
    }
    if (later) return left;  // the server failed: the rest later
  }
  return left;
}

Result<Uploader> Uploader::start(const RemoteOptions& options, const Cache& local, const std::string& local_key,
                                 std::optional<Digest> build, Say say) {
  std::string dir = local.dir();
  auto fds = spawn_detached([&](int go) { run_uploader(options, dir, local_key, build, say, go); });
  if (!fds) return tl::unexpected(fds.error());
  return Uploader(std::move(fds->first), std::move(fds->second));
}

Result<Prefetcher> Prefetcher::start(const RemoteOptions& options, const Cache& local, const std::string& local_key,
                                     const Digest& build, Uploader::Say say) {
  std::string dir = local.dir();
  auto fds = spawn_detached([&](int go) { run_prefetcher(options, dir, local_key, build, say, go); });
  if (!fds) return tl::unexpected(fds.error());
  return Prefetcher(std::move(fds->first));
}

bool Uploader::finish(int timeout_ms, const Say& progress) {
  go_.reset();
  int64_t start = static_cast<int64_t>(Clocks::boot_now());
  bool said = false;
  for (;;) {
    int64_t waited_ms = (static_cast<int64_t>(Clocks::boot_now()) - start) / 1000000;
    if (waited_ms >= timeout_ms) {
      progress("the uploads to the remote cache go on in the background");
      return false;
    }
    if (!said && waited_ms >= 1000) {
      progress("waiting for the uploads to the remote cache");
      said = true;
    }
    pollfd p{done_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    char c;
    if (n > 0 && ::read(done_.get(), &c, 1) <= 0) return true;
  }
}

}  // namespace bsandbox
