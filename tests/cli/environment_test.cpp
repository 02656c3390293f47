// environment_test.cpp: the defaults bsandbox takes from its environment.
#include "cli/environment.h"

#include <doctest/doctest.h>

#include <cstdlib>

#include "cli/exec_command.h"
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

TEST_CASE("the remote cache's yes|no variables: no turns the option off, anything else is an error") {
  ExecOptions o;
  ::setenv("BSANDBOX_CACHE_REMOTE_PREFETCH", "no", 1);
  ::setenv("BSANDBOX_CACHE_REMOTE_UPLOAD", "yes", 1);
  REQUIRE(remote_defaults(o));
  CHECK_FALSE(o.cache_remote_prefetch);
  CHECK(o.cache_remote_upload);
  ::setenv("BSANDBOX_CACHE_REMOTE_UPLOAD", "0", 1);
  auto bad = remote_defaults(o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "BSANDBOX_CACHE_REMOTE_UPLOAD is yes or no, not '0'");
  ::unsetenv("BSANDBOX_CACHE_REMOTE_PREFETCH");
  ::unsetenv("BSANDBOX_CACHE_REMOTE_UPLOAD");
}
