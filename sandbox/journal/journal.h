// journal.h: the journal of a project: one file per entry, numbered in the
// order entries were made (.bsandbox/journal/00000012).
//
// An entry is a change set (path, before state, after state) with what made
// it: a journaled run (argv, cwd, key, times, exit code) or an undo of an
// earlier entry. Each file is written whole: a temporary file, fsync, rename,
// fsync of the directory, framed as "BSJ1" + SHA-256(payload) + payload, so
// a damaged entry is reported as damaged instead of being misread. Callers
// hold the project lock (project.h) while they write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/storage/file_state.h"
#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

struct Change {
  std::string path;  // relative to the project root
  FileState before, after;
  // Another name of the same file (a hard link) when the state was taken:
  // a restore links to it, if it still holds that content, instead of
  // making a copy, so hard links come back as links.
  std::string before_link, after_link;
};

struct JournalEntry {
  enum class Kind { kRun, kUndo };
  enum class Status { kCommitting, kCommitted, kAborted };

  uint64_t id = 0;
  Kind kind = Kind::kRun;
  Status status = Status::kCommitting;
  uint64_t undoes = 0;  // kUndo: the entry it reverses
  std::string reason;   // kUndo: "undo", "re-execution", "recover --abort"
  std::vector<std::string> argv;
  std::string cwd;  // relative to the root
  Digest key, env_hash;
  int64_t start_ns = 0, end_ns = 0;
  int exit_code = 0;
  std::string backend;
  bool forced = false;
  uint64_t kept_bytes = 0;
  std::string work;  // the run's work directory under .bsandbox/runs
  std::vector<Change> changes;
  std::vector<std::string> outside_writes;
  // --contain: writes in the run's own /tmp, /var/tmp or /dev/shm (gone).
  std::vector<std::string> discarded_writes;
  // A re-run: what it saw as it was before later runs (path, first such run).
  std::vector<std::pair<std::string, uint64_t>> shown_before;
};

std::string encode_entry(const JournalEntry& e);
Result<JournalEntry> decode_entry(std::string_view bytes, std::string_view what);

// SHA-256 over cwd, argv and the environment (sorted; without OLDPWD, PWD,
// SHLVL and _, a shell's bookkeeping): which command this is.
Digest command_key(const std::string& cwd, const std::vector<std::string>& argv,
                   const Digest& env_hash);
Digest environment_hash(char** envp);

class Journal {
 public:
  // state_fd: the .bsandbox directory; display: its path, for messages.
  static Result<Journal> open(int state_fd, std::string display);

  // Ids of all entries, ascending.
  Result<std::vector<uint64_t>> ids() const;
  uint64_t next_id() const;  // after ids(): one more than the largest
  Result<JournalEntry> read(uint64_t id) const;
  Result<void> write(const JournalEntry& e);
  Result<void> remove(uint64_t id);
  std::string where(uint64_t id) const;

 private:
  Journal(UniqueFd dir, std::string display) : dir_(std::move(dir)), display_(std::move(display)) {}
  UniqueFd dir_;
  std::string display_;
  mutable uint64_t max_id_ = 0;
};

}  // namespace bsandbox
