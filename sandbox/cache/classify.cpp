// classify.cpp: see classify.h. Each path's ops are merged across the run's
// processes; a path the run never changed is keyed as it is after the run
// (kNow), one it changed is keyed as the look taken before the run found it
// (kBefore), which save() checks it has.
#include "sandbox/cache/classify.h"

#include <cstdlib>
#include <map>
#include <set>

#include "sandbox/base/text.h"
#include "sandbox/core/path.h"

namespace bsandbox {
namespace {

// What a path the run did not change keys on. Metadata a command only
// stat'ed is keyed with its modification time (make, cp -u, test -nt decide
// on it); one whose content is keyed too needs only its time's place among
// the times of paths it did not read, so that a touch alone does not miss,
// nor the order in which a parallel build wrote two files it reads (cargo's
// crates).
uint32_t unchanged_aspects(const PriorAccess& prior) {
  uint32_t aspects = 0;
  if (prior.uses & kUsesContent) aspects |= kAspectContent;
  if (prior.uses & kUsesMeta)
    aspects |= kAspectMeta | ((prior.uses & kUsesContent) ? uint32_t{kAspectPlace} : kAspectOrder | kAspectMtime);
  if (prior.uses & kUsesListing) aspects |= kAspectListing;
  if (prior.uses & kUsesAbsent) aspects |= kAspectAbsent;
  if (prior.uses & kUsesPresent) aspects |= kAspectPresent;
  return aspects;
}

// A path the run changed: a product, and what the run saw of it before.
void add_changed(Classified& c, const std::string& path, const PriorAccess& prior, std::string_view root) {
  bool existed = prior.existed();
  c.produced.push_back(Produced{path, existed, path::is_within(path, root)});
  if (!existed) {
    // It was not there: that is all the run could have learnt of it.
    if (prior.uses & kUsesAbsent) c.inputs.push_back(ObservedInput{path, kAspectAbsent, InputFrom::kBefore});
    return;
  }
  if (prior.uses & kUsesAbsent) {
    if (c.uncacheable.empty())
      c.uncacheable = printable(path) + " changed while it ran (found there and missing before the run changed it)";
    return;
  }
  // What the run saw of it before changing it is gone when the run is
  // stored; the look taken just before it ran (CacheRequest::before) has
  // it: save() keys that, or refuses. Its time is keyed by order: it was
  // rewritten by every earlier run.
  uint32_t aspects = 0;
  if (prior.uses & kUsesContent) aspects |= kAspectContent;
  if (prior.uses & kUsesListing) aspects |= kAspectListing;
  if (prior.uses & kUsesMeta) aspects |= kAspectMeta | kAspectOrder;
  if (!aspects && (prior.uses & kUsesPresent)) aspects = kAspectPresent;
  if (aspects) c.inputs.push_back(ObservedInput{path, aspects, InputFrom::kBefore});
  // A metadata change keeps the content, which is then an input: what the
  // run left is what was there (a later rewrite only makes this stricter).
  if (prior.uses & kUsesKept) c.inputs.push_back(ObservedInput{path, kAspectContent, InputFrom::kKept});
}

}  // namespace

bool test_drops(std::string_view what) {
  static const std::string drops = [] {
    const char* v = std::getenv("BSANDBOX_CACHE_TEST_DROP");
    return v ? "," + std::string(v) + "," : std::string();
  }();
  return !drops.empty() && drops.find("," + std::string(what) + ",") != std::string::npos;
}

std::string foreign_socket(const Record& rec, const SocketPolicy& policy) {
  std::set<std::string> bound(policy.own_sockets.begin(), policy.own_sockets.end());
  std::set<std::string> ports;  // of inet addresses the run bound
  auto port_of = [](const std::string& a) { return a.substr(a.rfind(':') + 1); };
  for (const auto& p : rec.processes)
    for (const auto& s : p.sockets)
      if (s.op == SocketOp::kBind) {
        bound.insert(s.address);
        if (s.address.starts_with("inet")) ports.insert(port_of(s.address));
      }
  auto own = [&](const ProcessEntry& p) {
    if (policy.own_program.empty() || !p.exe) return false;
    if (*p.exe == policy.own_program) return true;
    char* real = ::realpath(p.exe->c_str(), nullptr);
    bool same = real && policy.own_program == real;
    std::free(real);
    return same;
  };
  for (const auto& p : rec.processes)
    for (const auto& s : p.sockets) {
      if (s.op == SocketOp::kBind || bound.count(s.address) || own(p)) continue;
      bool loopback = s.address.starts_with("inet:127.") || s.address.starts_with("inet6:[::1]:");
      if (loopback && ports.count(port_of(s.address))) continue;  // a server of its own
      return s.address;
    }
  return "";
}

Classified classify(const Record& rec, const PriorOf& prior_of, std::string_view root,
                    const std::vector<std::string>& ignored, const SocketPolicy& sockets) {
  auto is_ignored = [&](const std::string& path) {
    if (path::is_within(path, "/dev")) return true;
    for (const auto& i : ignored)
      if (!i.empty() && path::is_within(path, i)) return true;
    return false;
  };
  Classified c;
  if (!rec.complete) c.uncacheable = "its record is incomplete";
  if (!sockets.allow_network && !test_drops("sockets") && c.uncacheable.empty()) {
    if (std::string foreign = foreign_socket(rec, sockets); !foreign.empty())
      c.uncacheable = "it connects to " + printable(foreign) +
                      ": what comes back is not keyed (--cache-allow-network, if the answer never changes)";
  }
  std::map<std::string, OpSet> all;
  for (const auto& p : rec.processes)
    for (const auto& f : p.files) all[f.path] |= f.ops;
  for (const auto& [path, ops] : all) {
    if (is_ignored(path)) continue;
    PriorAccess prior = prior_of(path);
    if (prior.first == 0) prior = PriorAccess{ops, uses_of_ops(ops)};  // nothing known: what the ops say
    if (test_drops("prior")) prior.uses = uses_of_ops(prior.first);
    if (ops & kMutatingOps) {
      add_changed(c, path, prior, root);
    } else if (uint32_t aspects = unchanged_aspects(prior)) {
      c.inputs.push_back(ObservedInput{path, aspects, InputFrom::kNow});
    }
  }
  return c;
}

}  // namespace bsandbox
