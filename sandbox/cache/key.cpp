// key.cpp: see key.h. The key is one SHA-256 over length-prefixed fields
// (hash_field), in a fixed order, with a version field first: a change to
// what is keyed bumps it, so old entries are never found under a key that
// would mean something else. stdin and inherited files are hashed with
// pread, so the offset the command will read from is left alone.
#include "sandbox/cache/key.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "sandbox/base/io.h"
#include "sandbox/base/text.h"
#include "sandbox/cache/classify.h"
#include "sandbox/core/path.h"
#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

std::optional<std::string> getenv_from(char** envp, std::string_view name) {
  for (char** e = envp; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.size() > name.size() && kv.substr(0, name.size()) == name && kv[name.size()] == '=')
      return std::string(kv.substr(name.size() + 1));
  }
  return std::nullopt;
}

// Where execvp would find argv0.
std::optional<std::string> find_program(const std::string& argv0, const std::string& cwd, char** envp) {
  auto runnable = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (argv0.find('/') != std::string::npos) {
    std::string p = path::resolve(cwd, argv0);
    return runnable(p) ? std::optional(p) : std::nullopt;
  }
  std::string search = getenv_from(envp, "PATH").value_or("/bin:/usr/bin");
  size_t start = 0;
  for (;;) {
    size_t colon = search.find(':', start);
    std::string dir = search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string p = path::resolve(cwd, (dir.empty() ? "." : dir) + "/" + argv0);
    if (runnable(p)) return p;
    if (colon == std::string::npos) return std::nullopt;
    start = colon + 1;
  }
}

// SHA-256 of fd's content from offset at, read with pread (the offset
// the command will read from is left alone).
std::optional<Digest> hash_from(int fd, off_t at) {
  Hasher h;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return h.finish();
    h.update(buf, static_cast<size_t>(n));
    at += n;
  }
}

// "--jobserver-auth=3,4" (or make 4.1's --jobserver-fds) in MAKEFLAGS, or
// cargo's CARGO_MAKEFLAGS for rustc: the pipe a jobserver's clients pass
// tokens through, which carries nothing a result depends on.
std::set<int> jobserver_fds(char** envp) {
  std::set<int> out;
  for (std::string_view var : {"MAKEFLAGS", "CARGO_MAKEFLAGS"}) {
    auto flags = getenv_from(envp, var);
    if (!flags) continue;
    for (std::string_view opt : {"--jobserver-auth=", "--jobserver-fds="}) {
      size_t at = flags->find(opt);
      if (at == std::string::npos) continue;
      int r = -1, w = -1;
      if (std::sscanf(flags->c_str() + at + opt.size(), "%d,%d", &r, &w) == 2) out.insert({r, w});
    }
  }
  return out;
}

// The descriptors above 2 that a command started now inherits are inputs
// (or outputs) the tracer does not see as paths: `cmd 3<file` reads a file
// it never opens. A file open only for reading is keyed by its content and
// offset, a directory by its path; a file or device open for writing (what
// the command writes there a hit could not replay), a pipe or a socket
// make the command uncacheable. Exempt: make's jobserver pipe and
// bsandbox's own diagnostics descriptor.
void key_inherited_fds(Hasher& h, const std::string& root, char** envp, std::string* uncacheable) {
  std::set<int> exempt = jobserver_fds(envp);
  if (auto diag = getenv_from(envp, "BSANDBOX_DIAG_FD")) exempt.insert(std::atoi(diag->c_str()));
  UniqueFd dir(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return;  // no /proc: nothing to learn, as before
  auto names = list_dir(dir.get(), "/proc/self/fd");
  if (!names) return;
  std::vector<int> fds;
  for (const auto& n : *names) {
    int fd = std::atoi(n.c_str());
    if (fd > 2 && fd != dir.get() && !exempt.count(fd)) fds.push_back(fd);
  }
  std::sort(fds.begin(), fds.end());
  for (int fd : fds) {
    int fdflags = ::fcntl(fd, F_GETFD);
    if (fdflags < 0 || (fdflags & FD_CLOEXEC)) continue;  // not inherited
    struct stat st;
    int fl = ::fcntl(fd, F_GETFL);
    if (::fstat(fd, &st) != 0 || fl < 0) continue;
    std::string name = "descriptor " + std::to_string(fd);
    std::string target = read_link("/proc/self/fd/" + std::to_string(fd)).value_or("");
    std::string shown = name + " (" + printable(target) + ")";
    hash_field(h, name);
    bool writes = (fl & O_ACCMODE) != O_RDONLY;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
      hash_field(h, "null");
    } else if (S_ISDIR(st.st_mode)) {
      hash_field(h, path::is_within(target, root) ? "R" + root_relative(target, root) : "A" + target);
    } else if (S_ISREG(st.st_mode) && !writes) {
      off_t off = ::lseek(fd, 0, SEEK_CUR);
      auto d = hash_from(fd, 0);
      if (!d) {
        if (uncacheable->empty()) *uncacheable = "its " + shown + " cannot be read";
        continue;
      }
      hash_field(h, d->raw());
      hash_field(h, std::to_string(off));
    } else if (uncacheable->empty()) {
      *uncacheable = "it inherits " + shown +
                     (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)
                          ? ", open for writing: what it writes there a hit could not replay"
                          : ", a pipe, socket or device: what comes through it is not keyed");
    }
  }
}

// The program argv[0] runs, by content.
void key_program(Hasher& h, const std::vector<std::string>& argv, const std::string& cwd, char** envp,
                 const HashMemo& memo, std::string* uncacheable) {
  auto exe = argv.empty() ? std::nullopt : find_program(argv[0], cwd, envp);
  if (!exe) {
    *uncacheable = "its program was not found";
    return;
  }
  UniqueFd fd(::open(exe->c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  Result<Digest> d = fail("");
  if (fd.valid() && ::fstat(fd.get(), &st) == 0) d = memo.hash(fd.get(), st, printable(*exe));
  if (d) hash_field(h, d->raw());
  else *uncacheable = "its program " + printable(*exe) + " cannot be read";
}

// A pipe on stdin whose writer has finished: its content, copied to a
// memory file the command then reads instead (key->stdin_replacement).
void key_finished_pipe(Hasher& h, WeakKey* key) {
  UniqueFd copy(::memfd_create("bsandbox-stdin", MFD_CLOEXEC));
  Hasher sh;
  char buf[65536];
  bool ok = copy.valid();
  for (ssize_t n; ok;) {
    n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    sh.update(buf, static_cast<size_t>(n));
    ok = static_cast<bool>(write_all(copy.get(), {buf, static_cast<size_t>(n)}, "stdin copy"));
  }
  off_t size = ::lseek(copy.get(), 0, SEEK_CUR);
  if (!ok || ::lseek(copy.get(), 0, SEEK_SET) != 0) {
    key->uncacheable = "its stdin cannot be read";
  } else if (size == 0) {
    // As /dev/null: make -j gives all jobs but one such a pipe, and
    // which one gets which differs from build to build.
    hash_field(h, "stdin empty");
  } else {
    hash_field(h, "stdin pipe");
    hash_field(h, sh.finish().raw());
    key->stdin_replacement = std::move(copy);
  }
}

// stdin is an input the tracer cannot see (reads of an inherited fd are
// not file opens): /dev/null and a terminal are no input, a file's or a
// finished pipe's content is keyed, an open pipe cannot be.
void key_stdin(Hasher& h, WeakKey* key) {
  struct stat in;
  if (::fstat(0, &in) != 0) {
    hash_field(h, "stdin closed");
  } else if (S_ISCHR(in.st_mode)) {
    if (in.st_rdev == makedev(1, 3)) hash_field(h, "stdin empty");
    else if (::isatty(0)) hash_field(h, "stdin terminal");
    else key->uncacheable = "its stdin is a device";
  } else if (S_ISREG(in.st_mode)) {
    off_t off = ::lseek(0, 0, SEEK_CUR);
    auto d = hash_from(0, off < 0 ? 0 : off);
    if (!d) key->uncacheable = "its stdin cannot be read";
    hash_field(h, "stdin file");
    if (d) hash_field(h, d->raw());
  } else if (S_ISFIFO(in.st_mode) || S_ISSOCK(in.st_mode)) {
    pollfd pfd{0, POLLIN | POLLRDHUP, 0};
    bool closed = ::poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
    if (!closed) key->uncacheable = "its stdin is a pipe that is still open";
    else key_finished_pipe(h, key);
  } else {
    key->uncacheable = "its stdin is neither a file, a pipe nor a terminal";
  }
}

}  // namespace

std::string root_relative(std::string_view path, std::string_view root) {
  if (path.size() == root.size()) return "";
  return std::string(path.substr(root == "/" ? 1 : root.size() + 1));
}

// " -j2 --jobserver-auth=fifo:/tmp/GMfifo123 -- CC=gcc X=a\\ b": the
// jobserver and the job count change between identical builds and do not
// change output, and the variables after "--" come in an order that differs
// from run to run (make's hash table): sorted.
std::string keyed_makeflags(std::string_view value) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      word += value[i];
      word += value[++i];
    } else if (value[i] == ' ') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += value[i];
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  auto dashes = std::find(words.begin(), words.end(), "--");
  std::sort(dashes, words.end());
  std::string out;
  for (auto it = words.begin(); it != words.end(); ++it) {
    if (it < dashes && (it->starts_with("--jobserver") || it->starts_with("-j"))) continue;
    if (!out.empty()) out += ' ';
    out += *it;
  }
  return out;
}

std::vector<std::string> keyed_environment(char** envp) {
  static const std::set<std::string_view> kDropped = {"_",           "PWD",           "OLDPWD",
                                                      "SHLVL",       "MAKE_TERMOUT",  "MAKE_TERMERR",
                                                      "MAKELEVEL"};
  std::vector<std::string> out;
  for (char** e = envp; e && *e; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    std::string name = kv.substr(0, eq);
    if (kDropped.count(name) || name.starts_with("BSANDBOX_")) continue;
    if (name == "MAKEFLAGS" || name == "MFLAGS" || name == "CARGO_MAKEFLAGS")
      kv = name + "=" + keyed_makeflags(kv.substr(eq + 1));
    out.push_back(std::move(kv));
  }
  std::sort(out.begin(), out.end());
  return out;
}

WeakKey weak_key(const std::vector<std::string>& argv, const std::string& cwd, const std::string& root, char** envp,
                 const std::vector<std::string>& unkeyed_listings, bool allow_network, const HashMemo& memo) {
  WeakKey key;
  Hasher h;
  // 2: entries key modification times, what changes depended on, the root
  // embedded in outputs (entries of 1 cannot say whether they would hit).
  // 3: under eBPF, entries of 2 may lack the listing of every directory a
  // process listed after another (ls d1 d2, make -C): not used.
  hash_field(h, "bsandbox-cache-key 3");
  hash_field(h, std::to_string(argv.size()));
  for (const auto& a : argv) hash_field(h, a);
  hash_field(h, path::is_within(cwd, root) ? "R" + root_relative(cwd, root) : "A" + cwd);
  for (const auto& d : unkeyed_listings)
    hash_field(h, path::is_within(d, root) ? "U" + root_relative(d, root) : "V" + d);
  if (allow_network) hash_field(h, "network allowed");
  auto env = keyed_environment(envp);
  hash_field(h, std::to_string(env.size()));
  for (const auto& kv : env) hash_field(h, kv);
  key_program(h, argv, cwd, envp, memo, &key.uncacheable);
  key_stdin(h, &key);
  if (!test_drops("fds")) key_inherited_fds(h, root, envp, &key.uncacheable);
  key.digest = h.finish();
  return key;
}

}  // namespace bsandbox
