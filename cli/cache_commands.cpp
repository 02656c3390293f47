// cache_commands.cpp: see cache_commands.h. `bsandbox cache ...` opens the
// cache the options name (with its key, if any) and calls one Cache verb;
// `wrap` is `exec` with the cache on and no record, as a launcher runs it.
#include "cli/cache_commands.h"
#include "cli/environment.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sandbox/cache/cache.h"
#include "cli/exec_command.h"
#include "cli/report.h"
#include "sandbox/base/text.h"
#include "sandbox/run/tracer_service.h"

namespace bsandbox {
namespace {

std::string seconds(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  return buf;
}

}  // namespace

int run_cache_command(const std::string& action, const std::string& dir, std::optional<uint64_t> max_bytes,
                      const std::string& key_file) {
  std::string key;
  if (!key_file.empty()) {
    auto k = load_cache_key(key_file);
    if (!k) return error_exit(k.error().message);
    key = std::move(*k);
  }
  auto cache = Cache::open(dir, key);
  if (!cache) return error_exit(cache.error().message);
  if (action == "stats") {
    auto u = cache->usage();
    if (!u) return error_exit(u.error().message);
    CacheStats s = cache->counters();
    uint64_t lookups = s.hits + s.misses;
    std::printf("cache directory   %s\n", printable(dir).c_str());
    std::printf("entries           %llu\n", static_cast<unsigned long long>(u->entries));
    std::printf("objects           %llu\n", static_cast<unsigned long long>(u->objects));
    std::printf("size              %s (limit %s)\n", format_size(u->bytes).c_str(),
                format_size(max_bytes.value_or(default_cache_max_bytes())).c_str());
    std::printf("hits              %llu", static_cast<unsigned long long>(s.hits));
    if (lookups) std::printf(" (%.1f%% of %llu lookups)", 100.0 * static_cast<double>(s.hits) / static_cast<double>(lookups),
                             static_cast<unsigned long long>(lookups));
    std::printf("\nmisses            %llu\n", static_cast<unsigned long long>(s.misses));
    std::printf("stored            %llu\n", static_cast<unsigned long long>(s.stored));
    std::printf("not cacheable     %llu\n", static_cast<unsigned long long>(s.uncacheable));
    std::printf("damaged, removed  %llu\n", static_cast<unsigned long long>(s.damaged));
    std::printf("run time saved    %s\n", seconds(s.saved_ns).c_str());
    auto n = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf("remote hits       %llu (counted in hits)\n", n(s.remote_hits));
    std::printf("remote misses     %llu\n", n(s.remote_misses));
    std::printf("remote uploads    %llu\n", n(s.remote_uploads));
    std::printf("remote prefetch   %llu (entries a build brought ahead; their hits count as local)\n",
                n(s.remote_prefetched));
    std::printf("remote traffic    %s down, %s up\n", format_size(s.remote_bytes_down).c_str(),
                format_size(s.remote_bytes_up).c_str());
    std::printf("remote errors     %llu\n", n(s.remote_errors));
    return std::fflush(stdout) == 0 ? 0 : kExitOwnError;
  }
  if (action == "gc") {
    auto r = cache->gc(max_bytes.value_or(default_cache_max_bytes()));
    if (!r) return error_exit(r.error().message);
    std::printf("%s\n", r->c_str());
    return 0;
  }
  if (action == "verify") {
    uint64_t damaged = 0;
    auto r = cache->verify(&damaged);
    if (!r) return error_exit(r.error().message);
    std::printf("%s\n", r->c_str());
    return damaged ? 1 : 0;
  }
  auto r = cache->clear();
  if (!r) return error_exit(r.error().message);
  std::printf("cleared %s\n", printable(dir).c_str());
  return 0;
}

int run_wrap(const std::vector<std::string>& args) {
  std::vector<std::string> argv = args;
  if (!argv.empty() && argv[0].size() > 1 && argv[0][0] == '-') {
    const char* shell = std::getenv("BSANDBOX_SHELL");
    argv.insert(argv.begin(), shell && *shell ? shell : "/bin/sh");
  }
  // Nested in a cached command: cache this one too when the build's tracer
  // is lent (cheap), else let the outer run cover it.
  if (std::getenv("BSANDBOX_WRAPPED") && !std::getenv(kTracerEnv)) return exec_directly(argv);
  ::setenv("BSANDBOX_WRAPPED", "1", 1);
  ExecOptions o;
  o.argv = std::move(argv);
  o.wrapper = true;
  o.quiet = true;
  o.no_journal = true;
  o.cache_dir = default_cache_dir();
  if (const char* root = std::getenv("BSANDBOX_CACHE_ROOT"); root && *root) o.cache_root = root;
  if (const char* b = std::getenv("BSANDBOX_BACKEND"); b && *b) o.backend = b;
  if (const char* dirs = std::getenv("BSANDBOX_CACHE_UNKEYED_LISTINGS")) {
    std::string_view rest(dirs);
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      if (colon != 0) o.unkeyed_listings.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  if (const char* e = std::getenv("BSANDBOX_EXPLAIN"); e && *e && std::strcmp(e, "0") != 0) o.explain = true;
  if (const char* k = std::getenv("BSANDBOX_CACHE_KEY"); k && *k) o.cache_key_file = k;
  if (const char* n = std::getenv("BSANDBOX_CACHE_ALLOW_NETWORK"); n && *n && std::strcmp(n, "0") != 0)
    o.cache_allow_network = true;
  if (const char* v = std::getenv("BSANDBOX_VERBOSE"); v && *v && std::strcmp(v, "0") != 0) o.verbose = true;
  if (auto r = remote_defaults(o); !r) return error_exit(r.error().message);
  return run_exec(o);
}

}  // namespace bsandbox
