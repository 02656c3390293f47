// environment_test.cpp: the defaults bsandbox takes from its environment.
#include "cli/environment.h"

#include <doctest/doctest.h>

#include <cstdlib>

#include "sandbox/cache/cache.h"

using namespace bsandbox;

TEST_CASE("the cache directory: BSANDBOX_CACHE, else XDG_CACHE_HOME, else HOME; empty means unset") {
  ::setenv("BSANDBOX_CACHE", "/c", 1);
  ::setenv("XDG_CACHE_HOME", "/x", 1);
  ::setenv("HOME", "/h", 1);
  CHECK(default_cache_dir() == "/c");
  ::setenv("BSANDBOX_CACHE", "", 1);
  CHECK(default_cache_dir() == "/x/bsandbox");
  ::unsetenv("XDG_CACHE_HOME");
  CHECK(default_cache_dir() == "/h/.cache/bsandbox");
  ::unsetenv("HOME");
  CHECK(default_cache_dir() == "/tmp/.cache/bsandbox");
}

TEST_CASE("the cache size: BSANDBOX_CACHE_SIZE when it parses, else 10 GiB") {
  ::unsetenv("BSANDBOX_CACHE_SIZE");
  CHECK(default_cache_max_bytes() == Cache::kDefaultMaxBytes);
  ::setenv("BSANDBOX_CACHE_SIZE", "5G", 1);
  CHECK(default_cache_max_bytes() == uint64_t{5} << 30);
  ::setenv("BSANDBOX_CACHE_SIZE", "lots", 1);
  CHECK(default_cache_max_bytes() == Cache::kDefaultMaxBytes);
}

TEST_CASE("the agent's socket: BSANDBOX_AGENT, else the system one") {
  ::unsetenv("BSANDBOX_AGENT");
  CHECK(default_agent_socket() == "/run/bsandbox/agent.sock");
  ::setenv("BSANDBOX_AGENT", "/tmp/a.sock", 1);
  CHECK(default_agent_socket() == "/tmp/a.sock");
}
