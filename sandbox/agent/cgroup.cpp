// cgroup.cpp: probing mountinfo, mkdir/rmdir under <hierarchy>/bsandbox,
// and killing by cgroup.kill or by listing.
#include "sandbox/agent/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "sandbox/base/dir.h"
#include "sandbox/base/io.h"

namespace bsandbox {
namespace {

constexpr const char* kParent = "bsandbox";

bool write_text(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return fd.valid() && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::vector<pid_t> pids_in(const std::string& dir) {
  std::vector<pid_t> out;
  auto text = read_file(dir + "/cgroup.procs");
  if (!text) return out;
  std::istringstream in(*text);
  long pid;
  while (in >> pid) out.push_back(static_cast<pid_t>(pid));
  return out;
}

}  // namespace

std::vector<int> JobCgroup::procs_fds() const {
  std::vector<int> out;
  for (const auto& fd : procs_) out.push_back(fd.get());
  return out;
}

void JobCgroup::kill() const {
  if (has_kill_ && write_text(dirs_[0] + "/cgroup.kill", "1")) return;
  for (const auto& dir : dirs_)
    for (pid_t pid : pids_in(dir)) ::kill(pid, SIGKILL);
}

bool JobCgroup::empty() const {
  for (const auto& dir : dirs_)
    if (!pids_in(dir).empty()) return false;
  return true;
}

bool JobCgroup::remove() {
  procs_.clear();
  bool all = true;
  std::vector<std::string> left;
  for (const auto& dir : dirs_) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      all = false;
      left.push_back(dir);
    }
  }
  dirs_ = left;
  return all;
}

Cgroups Cgroups::probe(const std::string& agent) {
  Cgroups c;
  c.agent_ = agent;
  auto info = read_file("/proc/self/mountinfo");
  if (!info) return c;
  std::istringstream lines(*info);
  std::string line;
  while (std::getline(lines, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    std::istringstream f(line);
    std::string id, parent, dev, root, mountpoint, options, word;
    f >> id >> parent >> dev >> root >> mountpoint >> options;
    while (f >> word && word != "-") {
    }
    std::string fstype, source, super;
    f >> fstype >> source >> super;
    if (root != "/") continue;
    if (fstype == "cgroup2" && c.v2_.empty()) {
      c.v2_ = mountpoint;
    } else if (fstype == "cgroup" && c.pids_v1_.empty()) {
      std::istringstream opts(super);
      std::string opt;
      while (std::getline(opts, opt, ','))
        if (opt == "pids") c.pids_v1_ = mountpoint;
    }
  }
  if (!c.v2_.empty()) {
    if (auto controllers = read_file(c.v2_ + "/cgroup.controllers")) {
      std::istringstream words(*controllers);
      std::string w;
      while (words >> w) c.pids_in_v2_ |= w == "pids";
    }
    struct stat st {};
    // cgroup.kill exists in every non-root group of a kernel that has it.
    std::string probe_dir = c.v2_ + "/" + kParent;
    ::mkdir(probe_dir.c_str(), 0755);
    c.kill_file_ = ::stat((probe_dir + "/cgroup.kill").c_str(), &st) == 0;
    if (c.pids_in_v2_) {
      write_text(c.v2_ + "/cgroup.subtree_control", "+pids");
      write_text(probe_dir + "/cgroup.subtree_control", "+pids");
      std::string mine = probe_dir + "/" + agent;
      ::mkdir(mine.c_str(), 0755);
      write_text(mine + "/cgroup.subtree_control", "+pids");
    }
  }
  if (c.pids_in_v2_) c.pids_v1_.clear();
  return c;
}

std::string Cgroups::describe() const {
  if (!can_group()) return "no cgroup hierarchy found: jobs are neither grouped nor limited in process count";
  std::string out;
  if (!v2_.empty()) out = "cgroup v2 at " + v2_ + (kill_file_ ? " (cgroup.kill)" : "");
  if (pids_in_v2_) out += ", process limit by its pids controller";
  else if (!pids_v1_.empty()) out += std::string(out.empty() ? "" : ", ") + "process limit by the v1 pids controller at " + pids_v1_;
  else out += "; no pids controller: process count not limited";
  return out;
}

std::vector<std::string> Cgroups::parents() const {
  std::vector<std::string> out;
  if (!v2_.empty()) out.push_back(v2_ + "/" + kParent + "/" + agent_);
  if (!pids_v1_.empty()) out.push_back(pids_v1_ + "/" + kParent + "/" + agent_);
  return out;
}

Result<JobCgroup> Cgroups::create(const std::string& name, unsigned max_pids) const {
  JobCgroup g;
  g.has_kill_ = kill_file_ && !v2_.empty();
  for (const auto& parent : parents()) {
    std::string top = parent.substr(0, parent.rfind('/'));
    if (::mkdir(top.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("creating " + top, errno);
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("creating " + parent, errno);
    std::string dir = parent + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      g.remove();
      return fail_errno("creating " + dir, errno);
    }
    g.dirs_.push_back(dir);
    bool limits_here = max_pids && (pids_in_v2_ ? parent.rfind(v2_, 0) == 0 : parent.rfind(pids_v1_, 0) == 0);
    if (limits_here && !write_text(dir + "/pids.max", std::to_string(max_pids))) {
      g.remove();
      return fail_errno("setting " + dir + "/pids.max", errno);
    }
    UniqueFd procs(::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) {
      g.remove();
      return fail_errno("opening " + dir + "/cgroup.procs", errno);
    }
    g.procs_.push_back(std::move(procs));
  }
  return g;
}

size_t Cgroups::sweep() const {
  size_t swept = 0;
  for (const auto& parent : parents()) {
    auto d = Dir::open(parent);
    if (!d) continue;
    std::vector<std::string> jobs;
    while (const dirent* e = d->next())
      if (std::string(e->d_name).rfind("job-", 0) == 0) jobs.push_back(parent + "/" + e->d_name);
    for (const auto& dir : jobs) {
      for (int round = 0; round < 100; ++round) {
        auto pids = pids_in(dir);
        if (pids.empty()) break;
        for (pid_t pid : pids) ::kill(pid, SIGKILL);
        ::usleep(10000);
      }
      if (::rmdir(dir.c_str()) == 0) ++swept;
    }
  }
  return swept;
}

}  // namespace bsandbox
