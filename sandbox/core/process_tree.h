// process_tree.h: assembles the provenance tree from the event stream.
//
// The tree is an EventSink: it takes events in the order a backend delivers
// them and keeps, per process, what the record needs (parent, argv, exe,
// cwd, times, exit status, files and ops). Processes are keyed by identity
// (pid, start time), so a process's events may arrive before its fork event
// and a reused pid is a different process. Per thread it keeps the cwd and
// root that the backend last sent, since names are relative to those.
//
// What it cannot resolve (a name whose cwd it never learnt, a string the
// backend dropped, a 32-bit program whose syscalls are not decoded) it counts
// in health(): the record is then incomplete.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/core/event.h"
#include "sandbox/core/file_access.h"
#include "sandbox/core/provenance.h"
#include "sandbox/core/symlinks.h"

namespace bsandbox {

class ProcessTree : public EventSink {
 public:
  explicit ProcessTree(LinkReader& links) : symlinks_(links) {}

  // The top process: its pid, a start time to use if no event ever names it,
  // the command as given and where it starts.
  void set_root(uint32_t pid, uint64_t fallback_start, std::vector<std::string> argv,
                std::string cwd);
  // Its wait(2) status, from the supervisor (authoritative for the top).
  void set_root_exit(int wait_status, uint64_t time);

  void on_event(const Event& event) override;

  struct Health {
    uint64_t unresolved = 0;       // accesses whose path could not be determined
    uint64_t strings_dropped = 0;  // events the backend had to cut short
    uint64_t orphans = 0;          // processes whose fork was never seen
    std::vector<ProcessKey> elf32;  // processes running 32-bit programs
  };
  Health health() const;

  size_t process_count() const { return procs_.size(); }

  // Pids of processes seen and not yet seen to exit.
  std::vector<pid_t> running_pids() const;

  // What the run learnt of path's state from before it (ops.h): the ops of
  // its first access by any process, and the uses of every access up to and
  // including the first that changed it ({} if never accessed). A cache
  // keys on that, never on what the run saw of its own doing.
  PriorAccess prior(const std::string& path) const;
  // prior() of every path accessed (to send it elsewhere: bsandboxd).
  std::vector<std::pair<std::string, PriorAccess>> all_priors() const;

  // The processes as record entries, the top first. Times are converted
  // with wall = boottime + boot_to_wall; a process still running ends at
  // end_boot.
  std::vector<ProcessEntry> entries(int64_t boot_to_wall, uint64_t end_boot) const;

  // The process pid forked by parent_pid (the newest such) and all its
  // descendants, as record entries (that process first), with prior() of
  // each path as those processes alone saw it. For a cached command run
  // inside a traced build (tracer_service.h). nullopt if no such process.
  struct Subtree {
    std::vector<ProcessEntry> processes;
    std::unordered_map<std::string, PriorAccess> priors;
  };
  std::optional<Subtree> subtree(pid_t pid, pid_t parent_pid, int64_t boot_to_wall, uint64_t end_boot) const;

 private:
  struct Proc {
    ProcessKey key;
    std::optional<ProcessKey> parent;
    bool forked = false;  // a fork event named it
    bool exec_seen = false;
    std::vector<std::string> argv;
    std::optional<std::string> exe;
    std::optional<std::string> start_cwd;
    std::optional<uint64_t> end_time;
    std::optional<uint64_t> exec_time;  // of the last successful execve
    std::optional<int> wait_status;
    // Sequence numbers count accesses in the order events arrived (0: never),
    // so that what processes of a subtree did before one of them changed
    // a path can be told from what they did after.
    struct Access {
      OpSet ops = 0;
      OpSet first = 0;            // the ops of this process's first access
      uint32_t first_seq = 0;     // when that was
      uint32_t change_seq = 0;    // its first access that changed the path
      std::array<uint32_t, 6> use_seq{};  // per Use bit: when it first depended on it
    };
    std::unordered_map<uint32_t, Access> files;  // path id -> ops
    std::set<SocketEntry> sockets;
  };
  struct Thread {
    std::string cwd;
    std::string root = "/";
  };

  Proc& proc(const ProcessKey& key);
  ProcessEntry entry_of(const Proc& p, bool is_root, int64_t boot_to_wall, uint64_t end_boot) const;
  Thread& thread(const EventBase& e);
  uint32_t intern(const std::string& path);
  void record(Proc& p, const std::string& path, OpSet ops, OpSet if_existed = 0,
              const std::optional<std::string>& named = std::nullopt, Uses uses = 0);  // 0: from ops

  void on_fork(const ForkEvent& e);
  void on_exec(const ExecEvent& e);
  void on_exit(const ExitEvent& e);
  void on_file(const FileEvent& e);

  SymlinkFinder symlinks_;
  std::unordered_map<ProcessKey, Proc, ProcessKeyHash> procs_;
  std::unordered_map<uint32_t, Thread> threads_;
  std::unordered_map<std::string, uint32_t> path_ids_;
  std::vector<const std::string*> paths_;
  std::vector<int8_t> exists_;  // per path id: -1 unknown, 0 absent, 1 present
  std::vector<PriorAccess> prior_;  // per path id, for the whole run
  std::vector<bool> changed_;       // per path id: the run has changed it
  uint32_t seq_ = 0;                // accesses recorded so far (saturating)

  uint32_t root_pid_ = 0;
  uint64_t root_fallback_start_ = 0;
  std::vector<std::string> root_argv_;
  std::string root_cwd_;
  std::optional<int> root_wait_status_;
  std::optional<uint64_t> root_end_;

  uint64_t unresolved_ = 0;
  uint64_t strings_dropped_ = 0;
  std::vector<ProcessKey> elf32_;
};

}  // namespace bsandbox
