// cache_fixture.h: what the cache's tests share: a Run (a record of one
// process and what it learnt of each path before), a Setup (a cache, a root
// and a request for `sh -c WORDS` in it), memory files for captured output,
// and a fixed environment. The tests pretend commands ran; nothing is run.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/cache/cache.h"
#include "tests/temp_dir.h"

namespace bsandbox::testing {

// A record of one process with the given files, and what the run learnt
// of each one's earlier state (by default: what its ops say).
struct Run {
  Record rec;
  std::map<std::string, PriorAccess> prior;
  Run() {
    rec.backend = "test";
    rec.argv = {"cmd"};
    timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    rec.start_ns = now.tv_sec * 1'000'000'000LL + now.tv_nsec;  // inputs made before this are unchanged
    rec.processes.emplace_back();
  }
  Run& file(const std::string& path, OpSet ops, std::optional<PriorAccess> seen = std::nullopt) {
    rec.processes[0].files.push_back(FileEntry{path, ops});
    prior[path] = seen ? *seen : PriorAccess{ops, uses_of_ops(ops)};
    return *this;
  }
  PriorOf priors() const {
    return [this](const std::string& p) {
      auto it = prior.find(p);
      return it == prior.end() ? PriorAccess{} : it->second;
    };
  }
};

inline UniqueFd memfile(const std::string& data) {
  UniqueFd fd(::memfd_create("t", MFD_CLOEXEC));
  REQUIRE(write_all(fd.get(), data, "memfd"));
  return fd;
}

inline char* kEnv[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};

// Descriptors this test inherited (from a shell, a CI runner) would be
// inherited by every command it pretends to run, and key them: a test
// starts with none of its own but 0-2.
inline const bool kNoStrayFds = [] {
  for (int fd = 3; fd < 1024; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return true;
}();

// Sets path's access and modification times to sec (not following a symlink).
inline void set_mtime(const std::string& path, int64_t sec) {
  timespec t[2] = {{sec, 0}, {sec, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0);
}

// A cache, a root, and a request for `sh -c WORDS` run in it.
struct Setup {
  TempDir t{"cache"};
  std::string root = t / "root";
  Result<Cache> cache = fail("");
  Setup() {
    REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    cache = Cache::open(t / "cache");
    REQUIRE(cache);
  }
  CacheRequest request(const std::string& words = "build") {
    return cache->prepare({"/bin/sh", "-c", words}, root, root, kEnv, false);
  }
  std::string store(CacheRequest& req, Run& r) {
    UniqueFd out = memfile(""), err = memfile("");
    auto saved = cache->save(req, r.rec, r.priors(), out.get(), err.get(), 0);
    REQUIRE(saved);
    return *saved;
  }
  std::string miss_why(CacheRequest& req) {
    std::string why;
    std::vector<std::string> warnings;
    auto got = cache->fetch(req, &why, &warnings);
    REQUIRE(got);
    return *got ? "" : why;
  }
};

}  // namespace bsandbox::testing
