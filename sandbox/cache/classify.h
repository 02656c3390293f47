// classify.h: what a finished run's record makes an input of the entry and
// what an output. Whatever the run could have based its behaviour on is an
// input: what it read, listed, stat'ed or found missing, and what a change it
// made depended on (mkdir needs the name absent, unlink present). What it
// created, wrote or removed is a product. The order of its accesses decides
// (ProcessTree::prior): a path whose first access was a create is the run's
// own, not an input. Sockets too: a run that reached a server none of its
// own processes bound got input no key can hold.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/cache/look.h"
#include "sandbox/core/provenance.h"

namespace bsandbox {

// Where an input's state is taken from when a run is stored.
enum class InputFrom : uint8_t {
  kNow,     // a path the run did not change: as it is after the run
  kBefore,  // a path the run changed after looking at it: as it was before
            // the run (CacheRequest::before), or only absent/present
  kKept,    // a path whose first change kept its content (chmod): its content now
};

struct ObservedInput {
  std::string path;  // absolute
  uint32_t aspects = 0;
  InputFrom from = InputFrom::kNow;
};

// A path the run created, wrote or removed.
struct Produced {
  std::string path;  // absolute
  bool existed_before = false;
  bool in_root = false;
};

struct Classified {
  std::vector<ObservedInput> inputs;  // sorted by path
  std::vector<Produced> produced;     // sorted by path
  std::string uncacheable;            // why not, or empty
};

// Splits a finished run's accesses into inputs and products, from what the
// run learnt of each path's state from before it (prior(path):
// ProcessTree::prior). A path whose content or listing the run depended on
// before changing it makes the run uncacheable (its input was its own
// output, and is gone). Paths under /dev are neither; so are paths within
// any of ignored (bsandbox's own: the cache's directory, which a cached
// command nested in another one reads and writes, and the key and
// credential files its wrappers read, whose hashes must not go into
// entries others download).
// Sockets: a run that connected or sent to an address none of its own
// processes bound (a server on this machine or another, a name service) got
// input that no key can hold, and is uncacheable unless allowed.
struct SocketPolicy {
  bool allow_network = false;            // the user vouches for what comes over them
  std::vector<std::string> own_sockets;  // bsandbox's own (its tracer service, the agent)
  // bsandbox's own program (resolved): its processes inside a run
  // (bsandbox-wrap) connect to a remote cache on their own behalf, and what
  // they bring back is checked as any cache entry is, not an input.
  std::string own_program;
};
using PriorOf = std::function<PriorAccess(const std::string&)>;
Classified classify(const Record& rec, const PriorOf& prior, std::string_view root,
                    const std::vector<std::string>& ignored = {}, const SocketPolicy& sockets = {});

// The first socket address a run reached that none of its processes bound
// (nor bsandbox itself, policy.own_sockets), or "". A loopback address on a
// port the run bound is its own server.
std::string foreign_socket(const Record& rec, const SocketPolicy& policy);

// BSANDBOX_CACHE_TEST_DROP=mtime,order,before,prior,fds,sockets,root switches
// off one of the safeguards, for tests/e2e/cache_trust.py's mutation check
// alone: it shows that the differential tests fail without each. Never set
// it otherwise: results become stale. Read once per process.
bool test_drops(std::string_view what);

}  // namespace bsandbox
