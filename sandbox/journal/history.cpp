// history.cpp: see history.h. The journal's verbs on top of journal.h's
// storage and change_set.h's apply: commit (an entry marked pending, then
// applied, then done), undo (the entry's changes reversed, as a new entry),
// recover (finish or abort what a crash left pending, keeping strays someone
// edited since), and which paths a re-run sees as they were before later
// runs (hidden_after).
#include "sandbox/journal/history.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <map>

#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string local_time(int64_t ns) {
  time_t t = static_cast<time_t>(ns / 1000000000);
  tm parts{};
  ::localtime_r(&t, &parts);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &parts);
  return buf;
}

Result<void> write_entry_marked(History& h, JournalEntry& e, JournalEntry::Status s) {
  e.status = s;
  return h.journal.write(e);
}

// Before recover overwrites a path, a state that is neither the entry's
// before nor its after (someone edited it after the crash) is kept.
Result<std::vector<std::string>> keep_strays(History& h, const std::vector<Change>& changes) {
  std::vector<std::string> notes;
  int root = h.project->root_fd.get();
  for (const auto& c : changes) {
    int err = 0;
    auto parent = open_parent(root, c.path, &err);
    if (!parent) continue;
    auto now = observe_at(parent->dir.get(), parent->name, true, c.path);
    if (!now) return tl::unexpected(now.error());
    if (now->same_as(c.before) || now->same_as(c.after) || now->kind != FileKind::kFile) continue;
    UniqueFd fd(::openat(parent->dir.get(), parent->name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(printable(c.path), errno);
    auto d = h.store.put(fd.get(), c.path);
    if (!d) return tl::unexpected(d.error());
    notes.push_back("kept the current " + printable(c.path) + " (changed after the crash) as " +
                    h.project->state + "/objects/" + d->hex().substr(0, 2) + "/" + d->hex().substr(2));
  }
  return notes;
}

Result<std::optional<JournalEntry>> load_draft(const RunDir& run) {
  UniqueFd fd(::openat(run.fd(), "entry", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<JournalEntry>();
    return fail_errno("entry of the run", errno);
  }
  std::string bytes;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("entry of the run", errno);
    bytes.append(buf, static_cast<size_t>(n));
  }
  auto e = decode_entry(bytes, "the run's entry");
  if (!e) return tl::unexpected(e.error());
  return std::optional<JournalEntry>(std::move(*e));
}

}  // namespace

Result<History> open_history(const Project& p) {
  auto journal = Journal::open(p.state_fd.get(), p.state);
  if (!journal) return tl::unexpected(journal.error());
  auto store = Store::open(p.state_fd.get(), "objects", p.state + "/objects");
  if (!store) return tl::unexpected(store.error());
  return History{&p, std::move(*journal), std::move(*store)};
}

Result<std::vector<JournalEntry>> read_entries(const History& h) {
  auto ids = h.journal.ids();
  if (!ids) return tl::unexpected(ids.error());
  std::vector<JournalEntry> out;
  out.reserve(ids->size());
  for (uint64_t id : *ids) {
    auto e = h.journal.read(id);
    if (!e) return tl::unexpected(e.error());
    out.push_back(std::move(*e));
  }
  return out;
}

std::set<uint64_t> undone_ids(const std::vector<JournalEntry>& entries) {
  std::set<uint64_t> undone;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->kind == JournalEntry::Kind::kUndo && it->status == JournalEntry::Status::kCommitted &&
        !undone.count(it->id))
      undone.insert(it->undoes);
  }
  return undone;
}

std::optional<JournalEntry> last_live_run(const std::vector<JournalEntry>& entries, const Digest& key) {
  std::set<uint64_t> undone = undone_ids(entries);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->kind == JournalEntry::Kind::kRun && it->status == JournalEntry::Status::kCommitted &&
        it->key == key && !undone.count(it->id))
      return *it;
  return std::nullopt;
}

Result<JournalEntry> commit_changes(History& h, JournalEntry e, const ContentSource& source,
                                    const ApplyHooks& hooks) {
  const Project& p = *h.project;
  auto kept = keep_before(e.changes, p.root_fd.get(), h.store);
  if (!kept)
    return fail("cannot keep what this would overwrite: " + kept.error().message + "; nothing was changed");
  e.kept_bytes += *kept;
  if (hooks.pause) hooks.pause("store-before");
  auto ids = h.journal.ids();
  if (!ids) return tl::unexpected(ids.error());
  e.id = h.journal.next_id();
  e.status = JournalEntry::Status::kCommitting;
  // The marker first: an entry file without it would not be found as pending.
  if (auto r = set_pending(p, e.id); !r) return fail(r.error().message + "; nothing was changed");
  if (auto r = h.journal.write(e); !r) {
    clear_pending(p);
    return fail(r.error().message + "; nothing was changed");
  }
  if (hooks.pause) hooks.pause("commit-journaled");
  if (auto r = apply(e.changes, p.root_fd.get(), source, hooks); !r)
    return fail(r.error().message + "; " + p.root +
                " is partly updated: fix that and run `bsandbox recover` to finish, or `bsandbox recover --abort` to put it back");
  if (auto r = write_entry_marked(h, e, JournalEntry::Status::kCommitted); !r)
    return fail(r.error().message + "; run `bsandbox recover`");
  if (auto r = clear_pending(p); !r) return tl::unexpected(r.error());
  return e;
}

Result<JournalEntry> undo_entry(History& h, const JournalEntry& target, bool force,
                                const std::string& reason, const ApplyHooks& hooks) {
  int root = h.project->root_fd.get();
  JournalEntry e;
  e.kind = JournalEntry::Kind::kUndo;
  e.undoes = target.id;
  e.reason = reason;
  e.argv = target.argv;
  e.cwd = target.cwd;
  e.key = target.key;
  e.env_hash = target.env_hash;
  e.start_ns = now_ns();
  e.changes = inverse(target.changes);
  auto clash = conflicts(e.changes, root);
  if (!clash) return tl::unexpected(clash.error());
  if (!clash->empty()) {
    if (!force) {
      std::string first = printable((*clash)[0]);
      std::string more = clash->size() > 1 ? " (and " + std::to_string(clash->size() - 1) + " more)" : "";
      return fail(first + more + ": changed since " + describe(target) +
                  " wrote it; nothing was undone (--force keeps the current version in the store and goes ahead)");
    }
    auto kept = adopt_current(e.changes, *clash, root, h.store);
    if (!kept) return tl::unexpected(kept.error());
    e.kept_bytes += *kept;
    e.forced = true;
  }
  auto done = commit_changes(h, std::move(e), ContentSource{-1, &h.store}, hooks);
  if (done) done->end_ns = now_ns();
  return done;
}

namespace {

// Recover's first half: the entry the pending marker names, finished (its
// run's output is whole and still applies) or rolled back. *handled gets
// the run directory it dealt with.
Result<void> settle_pending(History& h, uint64_t id, bool abort, std::vector<std::string>& said,
                            std::set<std::string>* handled) {
  const Project& p = *h.project;
  auto e = h.journal.read(id);
  if (!e) {
    // The marker is written before the entry: no entry, nothing applied.
    said.push_back("entry " + std::to_string(id) + " was never written; nothing had been applied");
    return {};
  }
  if (e->status != JournalEntry::Status::kCommitting) {
    said.push_back(describe(*e) + " had been completed");
    return {};
  }
  std::optional<RunDir> run;
  ContentSource source{-1, &h.store};
  if (e->kind == JournalEntry::Kind::kRun) {
    auto r = RunDir::open(p, e->work);
    if (r) {
      run.emplace(std::move(*r));
      source.upper_fd = ::openat(run->fd(), "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    handled->insert(e->work);
  }
  UniqueFd upper_owner(source.upper_fd);
  auto strays = keep_strays(h, e->changes);
  if (!strays) return tl::unexpected(strays.error());
  said.insert(said.end(), strays->begin(), strays->end());
  bool finish = !abort && (e->kind == JournalEntry::Kind::kUndo || source.upper_fd >= 0);
  if (finish) {
    auto can = can_finish(e->changes, p.root_fd.get(), source);
    if (!can) return tl::unexpected(can.error());
    finish = *can;
    if (!finish) said.push_back("the after state of " + describe(*e) + " is no longer complete; rolling it back");
  }
  if (finish) {
    if (auto r = apply(e->changes, p.root_fd.get(), source); !r) return r;
    if (auto r = write_entry_marked(h, *e, JournalEntry::Status::kCommitted); !r) return r;
    said.push_back("finished " + describe(*e) + ": " + std::to_string(e->changes.size()) + " changes applied");
  } else {
    if (auto r = apply(inverse(e->changes), p.root_fd.get(), ContentSource{-1, &h.store}); !r) return r;
    if (auto r = write_entry_marked(h, *e, JournalEntry::Status::kAborted); !r) return r;
    said.push_back("rolled back " + describe(*e) + ": the tree is as it was before it");
  }
  if (run)
    if (auto r = run->remove(p); !r) return r;
  return {};
}

// Recover's second half, for one run directory left behind: its processes
// killed, then committed if it had finished (its draft entry written) and
// is not in the journal yet, else discarded.
Result<void> settle_run(History& h, const std::string& name, bool committed, bool abort,
                        std::vector<std::string>& said) {
  const Project& p = *h.project;
  auto run = RunDir::open(p, name);
  if (!run) return tl::unexpected(run.error());
  auto killed = kill_run_processes(p, *run);
  if (!killed) return tl::unexpected(killed.error());
  if (*killed > 0) said.push_back("killed " + std::to_string(*killed) + " processes left by the interrupted run");
  auto draft = load_draft(*run);
  if (!draft) return fail(run->path(p) + "/entry: " + draft.error().message);
  if (*draft && !committed && !abort) {
    UniqueFd upper(::openat(run->fd(), "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!upper.valid()) return fail_errno(run->path(p) + "/upper", errno);
    auto changes = scan_upper(UpperLayout{upper.get(), {kStateDirName}}, p.root_fd.get());
    if (!changes) return tl::unexpected(changes.error());
    JournalEntry e = std::move(**draft);
    e.changes = std::move(*changes);
    auto done = commit_changes(h, std::move(e), ContentSource{upper.get(), &h.store}, {});
    if (!done) return tl::unexpected(done.error());
    said.push_back("committed the finished " + describe(*done) + ": " + std::to_string(done->changes.size()) +
                   " changes");
  } else if (!committed) {
    said.push_back(std::string("discarded an interrupted run") +
                   (*draft ? " of " + command_line((*draft)->argv) : "") + " (nothing of it had been applied)");
  }
  return run->remove(p);
}

}  // namespace

Result<std::vector<std::string>> recover(History& h, bool abort) {
  const Project& p = *h.project;
  std::vector<std::string> said;
  auto found = find_interrupted(p);
  if (!found) return tl::unexpected(found.error());
  std::set<std::string> handled_runs;
  if (found->pending) {
    if (auto r = settle_pending(h, *found->pending, abort, said, &handled_runs); !r) return tl::unexpected(r.error());
    if (auto r = clear_pending(p); !r) return tl::unexpected(r.error());
  }
  // Runs already in the journal (a crash after the commit, before clean-up).
  std::set<std::string> journaled;
  if (!found->runs.empty()) {
    auto entries = read_entries(h);
    if (!entries) return tl::unexpected(entries.error());
    for (const auto& e : *entries) journaled.insert(e.work);
  }
  for (const auto& name : found->runs) {
    if (handled_runs.count(name)) continue;
    if (auto r = settle_run(h, name, journaled.count(name) > 0, abort, said); !r) return tl::unexpected(r.error());
  }
  if (said.empty()) said.push_back("nothing to recover in " + p.root);
  return said;
}

std::vector<HiddenPath> hidden_after(const std::vector<JournalEntry>& entries, const JournalEntry& prev) {
  std::set<uint64_t> undone = undone_ids(entries);
  std::set<std::string> own;
  for (const auto& c : prev.changes) own.insert(c.path);
  std::map<std::string, HiddenPath> first;
  for (const auto& e : entries) {
    if (e.id <= prev.id || e.kind != JournalEntry::Kind::kRun ||
        e.status != JournalEntry::Status::kCommitted || undone.count(e.id))
      continue;
    for (const auto& c : e.changes)
      if (!own.count(c.path)) first.emplace(c.path, HiddenPath{c.path, c.before, e.id});
  }
  std::vector<HiddenPath> out;
  for (auto& [path, hidden] : first) out.push_back(std::move(hidden));
  return out;
}

std::string describe(const JournalEntry& e) {
  if (e.kind == JournalEntry::Kind::kUndo)
    return "undo " + std::to_string(e.id) + " (of entry " + std::to_string(e.undoes) + ")";
  return "run " + std::to_string(e.id) + " (" + command_line(e.argv) + ")";
}

std::string log_text(const std::vector<JournalEntry>& entries) {
  std::set<uint64_t> undone = undone_ids(entries);
  std::string out;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const JournalEntry& e = *it;
    char head[96];
    std::snprintf(head, sizeof head, "%-5llu %s  ", static_cast<unsigned long long>(e.id),
                  local_time(e.start_ns).c_str());
    out += head;
    if (e.kind == JournalEntry::Kind::kUndo) {
      out += "undo of " + std::to_string(e.undoes) +
             (e.reason.empty() || e.reason == "undo" ? "" : " (" + e.reason + ")");
      if (e.forced) out += " --force";
    } else {
      out += "run  exit " + std::to_string(e.exit_code) + "  ";
      out += (e.cwd.empty() ? "" : "[" + printable(e.cwd) + "] ") + command_line(e.argv);
    }
    out += "  | " + std::to_string(e.changes.size()) + " changed, " + format_size(e.kept_bytes) + " kept";
    if (!e.outside_writes.empty())
      out += ", " + std::to_string(e.outside_writes.size()) + " writes outside the root";
    if (!e.discarded_writes.empty())
      out += ", " + std::to_string(e.discarded_writes.size()) + " discarded (--contain)";
    if (!e.shown_before.empty())
      out += ", saw " + std::to_string(e.shown_before.size()) + " paths as before later runs";
    if (e.status == JournalEntry::Status::kCommitting) out += "  [interrupted: run bsandbox recover]";
    if (e.status == JournalEntry::Status::kAborted) out += "  [rolled back by recover]";
    if (undone.count(e.id)) out += "  [undone]";
    out += '\n';
  }
  return out;
}

std::string diff_text(const JournalEntry& e) {
  std::string out = describe(e) + ", " + local_time(e.start_ns);
  if (e.kind == JournalEntry::Kind::kRun) out += ", exit " + std::to_string(e.exit_code);
  out += '\n';
  std::vector<const Change*> sorted;
  for (const auto& c : e.changes) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->path < b->path; });
  auto describe_state = [](const FileState& s) {
    std::string d = kind_name(s.kind);
    if (s.kind == FileKind::kFile) d += " " + format_size(s.size);
    if (s.kind == FileKind::kSymlink) d += " -> " + printable(s.target);
    if (s.kind == FileKind::kFile || s.kind == FileKind::kDir) {
      char mode[8];
      std::snprintf(mode, sizeof mode, " %04o", s.mode);
      d += mode;
    }
    return d;
  };
  for (const Change* c : sorted) {
    char code;
    std::string what;
    if (c->before.absent()) {
      code = 'A';
      what = describe_state(c->after);
    } else if (c->after.absent()) {
      code = 'D';
      what = describe_state(c->before);
    } else if (c->before.kind != c->after.kind) {
      code = 'R';
      what = describe_state(c->before) + " => " + describe_state(c->after);
    } else if (c->before.same_as(c->after)) {
      code = c->before.mode == c->after.mode && (c->before.uid != c->after.uid || c->before.gid != c->after.gid)
                 ? 'P' : 't';
      what = code == 'P' ? "owner" : "times only";
    } else if (c->before.kind == FileKind::kFile && c->before.hash == c->after.hash) {
      code = 'P';
      what = describe_state(c->before) + " => " + describe_state(c->after);
    } else {
      code = c->before.kind == FileKind::kDir ? 'P' : 'M';
      what = describe_state(c->before) + " => " + describe_state(c->after);
    }
    out += code;
    out += "  " + printable(c->path) + "  (" + what + ")\n";
  }
  for (const auto& w : e.outside_writes) out += "!  " + printable(w) + "  (outside the root: not journaled)\n";
  for (const auto& w : e.discarded_writes)
    out += "~  " + printable(w) + "  (in the run's own scratch directory, --contain: discarded)\n";
  for (const auto& [path, before] : e.shown_before)
    out += "=  " + printable(path) + "  (the run saw it as it was before run " + std::to_string(before) + ")\n";
  return out;
}

Result<std::string> gc(History& h, const GcOptions& o) {
  auto entries = read_entries(h);
  if (!entries) return tl::unexpected(entries.error());
  uint64_t keep = o.keep.value_or(entries->size());
  if (!o.keep && !o.max_bytes) keep = 100;
  size_t drop = entries->size() > keep ? entries->size() - keep : 0;
  auto referenced = [&](size_t from) {
    std::set<Digest> refs;
    for (size_t i = from; i < entries->size(); ++i)
      for (const auto& c : (*entries)[i].changes)
        for (const FileState* s : {&c.before, &c.after})
          if (s->hash) refs.insert(*s->hash);
    return refs;
  };
  auto bytes_of = [&](const std::set<Digest>& refs) {
    uint64_t n = 0;
    for (const auto& d : refs) n += h.store.disk_bytes(d);
    return n;
  };
  std::set<Digest> refs = referenced(drop);
  if (o.max_bytes) {
    while (drop < entries->size() && bytes_of(refs) > *o.max_bytes) refs = referenced(++drop);
  }
  for (size_t i = 0; i < drop; ++i)
    if (auto r = h.journal.remove((*entries)[i].id); !r) return tl::unexpected(r.error());
  auto all = h.store.list();
  if (!all) return tl::unexpected(all.error());
  uint64_t freed = 0, objects = 0;
  for (const auto& d : *all) {
    if (refs.count(d)) continue;
    freed += h.store.disk_bytes(d);
    ++objects;
    if (auto r = h.store.remove(d); !r) return tl::unexpected(r.error());
  }
  return "removed " + std::to_string(drop) + " journal entries and " + std::to_string(objects) +
         " objects (" + format_size(freed) + "); kept " + std::to_string(entries->size() - drop) +
         " entries, " + format_size(bytes_of(refs)) + " in the store";
}

}  // namespace bsandbox
