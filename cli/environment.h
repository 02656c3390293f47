// environment.h: the defaults bsandbox takes from its environment, read
// here and passed down, so that the libraries read no variables of their
// own (but three test knobs).
//
//   BSANDBOX_CACHE        the cache directory (else $XDG_CACHE_HOME/bsandbox,
//                         else ~/.cache/bsandbox)
//   BSANDBOX_CACHE_SIZE   the size a cache is kept to ("5G"; else 10 GiB)
//   BSANDBOX_AGENT        bsandboxd's socket (else /run/bsandbox/agent.sock)
#pragma once

#include <cstdint>
#include <string>

namespace bsandbox {

std::string default_cache_dir();
uint64_t default_cache_max_bytes();
std::string default_agent_socket();

}  // namespace bsandbox
