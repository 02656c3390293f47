// health.h: whether a remote cache is worth asking, shared by the processes
// of a build (each bsandbox-wrap is one) through a small file of the local
// cache ("remote"). A failed request (no connection, a timeout, a 5xx, a
// body that is not what was asked for) makes every process leave the server
// alone for kBackoff, so a dead or slow server costs a build one timeout,
// not one per command; and only one process warns, once per build (a build
// begins when a bsandbox exec that is not a wrapper starts) or per
// kWarnEvery for wrappers run outside one.
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/base/unique_fd.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

class RemoteHealth {
 public:
  static constexpr int64_t kBackoffNs = int64_t{30} * 1000000000;
  static constexpr int64_t kWarnEveryNs = int64_t{600} * 1000000000;

  // file: the state file (read-write, owned); url: the server it is about
  // (a state about another server is ignored and replaced).
  RemoteHealth(UniqueFd file, const std::string& url) : file_(std::move(file)), url_(hash_bytes(url)) {}

  // Whether to ask the server now (no recent failure).
  bool usable();
  // A request failed; whether this process is the one to warn.
  bool failed();
  // The server answered.
  void succeeded();
  // A build begins: its first failure warns again.
  void new_build();

 private:
  struct State {
    uint64_t magic = 0x3168746c61656862;  // "bhealth1"
    Digest url;
    int64_t down_until_ns = 0;
    int64_t warned_ns = 0;
  };
  template <typename F>
  void update(F&& f);

  UniqueFd file_;
  Digest url_;
};

}  // namespace bsandbox
