// environment.cpp: see environment.h. An unset or empty variable means the
// default; a BSANDBOX_CACHE_SIZE that does not parse is ignored, as it
// always was (a size limit is not worth refusing to run over).
#include "cli/environment.h"

#include <cstdlib>

#include "sandbox/agent/protocol.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/cache.h"
#include "sandbox/core/path.h"
#include "cli/exec_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/storage/fs.h"
#include "sandbox/base/unique_fd.h"

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

Result<void> remote_defaults(ExecOptions& o) {
  if (o.cache_remote.empty())
    if (const char* v = variable("BSANDBOX_CACHE_REMOTE")) o.cache_remote = v;
  // A yes|no variable: "no" turns the option off; anything else but yes is an error.
  for (auto [name, on] : {std::pair{"BSANDBOX_CACHE_REMOTE_UPLOAD", &o.cache_remote_upload},
                          std::pair{"BSANDBOX_CACHE_REMOTE_PREFETCH", &o.cache_remote_prefetch}}) {
    const char* v = variable(name);
    if (!v) continue;
    std::string_view u(v);
    if (u != "yes" && u != "no") return fail(std::string(name) + " is yes or no, not '" + printable(v) + "'");
    if (u == "no") *on = false;
  }
  if (o.cache_remote_key_file.empty())
    if (const char* v = variable("BSANDBOX_CACHE_REMOTE_KEY")) o.cache_remote_key_file = v;
  if (o.cache_remote_credentials_file.empty())
    if (const char* v = variable("BSANDBOX_CACHE_REMOTE_CREDENTIALS")) o.cache_remote_credentials_file = v;
  return {};
}

Result<std::optional<RemoteOptions>> remote_options(const ExecOptions& o) {
  if (o.cache_remote.empty()) return std::nullopt;
  RemoteOptions r;
  r.url = o.cache_remote;
  r.upload = o.cache_remote_upload;
  if (std::string bad = check_remote_url(r.url); !bad.empty()) return fail(bad);
  if (!o.cache_remote_key_file.empty()) {
    auto key = load_cache_key(o.cache_remote_key_file);
    if (!key) return fail("the remote cache's key: " + key.error().message);
    r.key = std::move(*key);
  }
  if (!o.cache_remote_credentials_file.empty()) {
    const std::string& f = o.cache_remote_credentials_file;
    UniqueFd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    struct stat st;
    if (!fd.valid()) return fail("the remote cache's credentials " + printable(f) + ": " + std::strerror(errno));
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return fail("the remote cache's credentials " + printable(f) + " are not a regular file");
    if (st.st_mode & S_IROTH)
      return fail("the remote cache's credentials " + printable(f) + " are readable by every user (chmod o-r)");
    std::string text;
    auto read = read_content(fd.get(), printable(f), [&](const char* p, size_t n) {
      if (text.size() < 4096) text.append(p, std::min<size_t>(n, 4096 - text.size()));
    });
    if (!read) return tl::unexpected(read.error());
    if (auto c = parse_credentials(text, "the remote cache's credentials " + printable(f), &r.http); !c)
      return tl::unexpected(c.error());
  } else if (const char* token = variable("BSANDBOX_CACHE_REMOTE_TOKEN")) {
    r.http.bearer = token;
  }
  return r;
}

std::vector<std::string> private_paths(const ExecOptions& o, const std::string& cwd) {
  std::vector<std::string> named = {o.cache_key_file, o.cache_remote_key_file, o.cache_remote_credentials_file,
                                    default_cache_dir()};
  if (o.cache_dir) named.push_back(*o.cache_dir);
  for (const char* v : {"BSANDBOX_CACHE_KEY", "BSANDBOX_CACHE_REMOTE_KEY", "BSANDBOX_CACHE_REMOTE_CREDENTIALS"})
    if (const char* f = variable(v)) named.push_back(f);
  std::vector<std::string> out;
  for (const auto& n : named) {
    if (n.empty()) continue;
    std::string abs = path::resolve(cwd, n);
    char* real = ::realpath(abs.c_str(), nullptr);
    out.push_back(real ? real : abs);
    std::free(real);
  }
  return out;
}

}  // namespace bsandbox
