// environment.cpp: see environment.h. An unset or empty variable means the
// default; a BSANDBOX_CACHE_SIZE that does not parse is ignored, as it
// always was (a size limit is not worth refusing to run over).
#include "cli/environment.h"

#include <cstdlib>

#include "sandbox/agent/protocol.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/cache.h"

namespace bsandbox {
namespace {

const char* variable(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

std::string default_cache_dir() {
  if (const char* d = variable("BSANDBOX_CACHE")) return d;
  if (const char* xdg = variable("XDG_CACHE_HOME")) return std::string(xdg) + "/bsandbox";
  const char* home = variable("HOME");
  return std::string(home ? home : "/tmp") + "/.cache/bsandbox";
}

uint64_t default_cache_max_bytes() {
  if (const char* s = variable("BSANDBOX_CACHE_SIZE"))
    if (auto n = parse_size(s)) return *n;
  return Cache::kDefaultMaxBytes;
}

std::string default_agent_socket() {
  const char* v = variable("BSANDBOX_AGENT");
  return v ? v : kDefaultAgentSocket;
}

}  // namespace bsandbox
