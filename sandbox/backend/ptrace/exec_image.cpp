// exec_image.cpp: see exec_image.h. The #! line is parsed as the kernel's
// binfmt_script does: the interpreter is the first word after "#!", read
// from the first 256 bytes, at most four scripts deep.
#include "sandbox/backend/ptrace/exec_image.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sandbox/base/io.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

std::string exec_name(const std::string& given, int dirfd) {
  if (dirfd == AT_FDCWD || (!given.empty() && given[0] == '/')) return given;
  return "/dev/fd/" + std::to_string(dirfd) + (given.empty() ? "" : "/" + given);
}

std::string script_interp(pid_t tid, const std::string& filename) {
  std::string current = filename, interp;
  for (int depth = 0; depth < 4 && !current.empty(); ++depth) {
    std::string path = current[0] == '/' ? std::string(ProcPath(tid, "root").c_str()) + current
                                         : std::string(ProcPath(tid, "cwd").c_str()) + "/" + current;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) break;
    char head[256];
    ssize_t n = ::read(fd.get(), head, sizeof head);
    if (n < 3 || head[0] != '#' || head[1] != '!') break;
    std::string_view line(head + 2, static_cast<size_t>(n - 2));
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos) break;
    size_t e = line.find_first_of(" \t\n", b);
    std::string next(line.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
    if (next.empty()) break;
    interp = current = next;
  }
  return interp;
}

std::optional<Named> mapping_at(std::string_view maps, uint64_t ip, const std::string& exe) {
  constexpr std::string_view kDeleted = " (deleted)";
  size_t at = 0;
  while (at < maps.size()) {
    size_t end = maps.find('\n', at);
    if (end == std::string_view::npos) end = maps.size();
    std::string_view line = maps.substr(at, end - at);
    at = end + 1;
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(std::string(line.substr(0, 40)).c_str(), "%lx-%lx", &lo, &hi) != 2) continue;
    if (ip < lo || ip >= hi) continue;
    size_t slash = line.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    Named out;
    out.path = std::string(line.substr(slash));
    if (out.path.ends_with(kDeleted)) {
      out.path.resize(out.path.size() - kDeleted.size());
      out.flags |= BS_SF_DELETED;
    }
    if (out.path == exe) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

void ExecImage::read(pid_t tid, ProcReader& proc, const FileCall* execve, uint64_t ip) {
  filename_.clear();
  if (execve && execve->spec && execve->path1.present) {
    uint8_t dirfd1 = execve->spec->desc.dirfd1;
    filename_ = exec_name(execve->path1.text, dirfd1 ? static_cast<int>(execve->arg(dirfd1)) : AT_FDCWD);
  }
  have_exe_ = proc.describe(tid, "exe", -1, exe_, true);
  if (filename_.empty() && have_exe_) filename_ = exe_.path;
  interp_ = script_interp(tid, filename_);
  have_ldso_ = false;
  if (have_exe_) {
    auto maps = read_file(ProcPath(tid, "maps").c_str());
    if (auto ld = maps ? mapping_at(*maps, ip, exe_.path) : std::nullopt) {
      ldso_ = std::move(*ld);
      have_ldso_ = true;
    }
  }
  auto args = read_file(ProcPath(tid, "cmdline").c_str());
  argv_ = args ? std::move(*args) : std::string();
}

void ExecImage::fill(ExecEvent& e) const {
  e.filename = filename_;
  e.interp = interp_.empty() ? e.filename : std::string_view(interp_);
  if (have_exe_) e.exe = exe_.view();
  if (have_ldso_) e.ldso = ldso_.view();
  e.argv = argv_;
}

}  // namespace bsandbox
