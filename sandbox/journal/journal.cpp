// journal.cpp: entries to and from their framed protobuf files.
#include "sandbox/journal/journal.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sandbox/storage/fs.h"
#include "sandbox/journal/journal.pb.h"

namespace bsandbox {
namespace {

namespace pb = bsandbox::journal;

constexpr std::string_view kMagic = "BSJ1";

void to_pb(const FileState& s, pb::State* out) {
  out->set_kind(static_cast<uint32_t>(s.kind));
  out->set_mode(s.mode);
  out->set_uid(s.uid);
  out->set_gid(s.gid);
  out->set_size(s.size);
  out->set_mtime_ns(s.mtime_ns);
  if (s.hash) out->set_hash(std::string(s.hash->raw()));
  out->set_target(s.target);
}

bool from_pb(const pb::State& in, FileState* s) {
  if (in.kind() > static_cast<uint32_t>(FileKind::kOther)) return false;
  s->kind = static_cast<FileKind>(in.kind());
  s->mode = in.mode();
  s->uid = in.uid();
  s->gid = in.gid();
  s->size = in.size();
  s->mtime_ns = in.mtime_ns();
  if (!in.hash().empty()) {
    s->hash = Digest::from_raw(in.hash());
    if (!s->hash) return false;
  }
  if (s->kind == FileKind::kFile && !s->hash) return false;
  s->target = in.target();
  return true;
}

}  // namespace

std::string encode_entry(const JournalEntry& e) {
  pb::Entry m;
  m.set_id(e.id);
  m.set_kind(e.kind == JournalEntry::Kind::kRun ? pb::Entry::RUN : pb::Entry::UNDO);
  m.set_status(e.status == JournalEntry::Status::kCommitting  ? pb::Entry::COMMITTING
               : e.status == JournalEntry::Status::kCommitted ? pb::Entry::COMMITTED
                                                              : pb::Entry::ABORTED);
  m.set_undoes(e.undoes);
  m.set_reason(e.reason);
  for (const auto& a : e.argv) m.add_argv(a);
  m.set_cwd(e.cwd);
  m.set_key(std::string(e.key.raw()));
  m.set_env_hash(std::string(e.env_hash.raw()));
  m.set_start_ns(e.start_ns);
  m.set_end_ns(e.end_ns);
  m.set_exit_code(e.exit_code);
  m.set_backend(e.backend);
  m.set_forced(e.forced);
  m.set_kept_bytes(e.kept_bytes);
  m.set_work(e.work);
  for (const auto& c : e.changes) {
    auto* pc = m.add_changes();
    pc->set_path(c.path);
    to_pb(c.before, pc->mutable_before());
    to_pb(c.after, pc->mutable_after());
    pc->set_before_link(c.before_link);
    pc->set_after_link(c.after_link);
  }
  for (const auto& w : e.outside_writes) m.add_outside_writes(w);
  for (const auto& w : e.discarded_writes) m.add_discarded_writes(w);
  for (const auto& [path, before] : e.shown_before) {
    auto* shown = m.add_shown_before();
    shown->set_path(path);
    shown->set_before(before);
  }
  return seal(kMagic, m.SerializeAsString());
}

Result<JournalEntry> decode_entry(std::string_view bytes, std::string_view what) {
  std::string w(what);
  auto sealed = unseal(bytes, kMagic, what, "journal entry");
  if (!sealed) return tl::unexpected(sealed.error());
  std::string_view payload = *sealed;
  pb::Entry m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size())))
    return fail(w + ": journal entry is damaged (does not parse)");
  JournalEntry e;
  e.id = m.id();
  e.kind = m.kind() == pb::Entry::UNDO ? JournalEntry::Kind::kUndo : JournalEntry::Kind::kRun;
  e.status = m.status() == pb::Entry::COMMITTING  ? JournalEntry::Status::kCommitting
             : m.status() == pb::Entry::COMMITTED ? JournalEntry::Status::kCommitted
                                                  : JournalEntry::Status::kAborted;
  e.undoes = m.undoes();
  e.reason = m.reason();
  e.argv.assign(m.argv().begin(), m.argv().end());
  e.cwd = m.cwd();
  auto key = Digest::from_raw(m.key()), env = Digest::from_raw(m.env_hash());
  if (!key || !env) return fail(w + ": journal entry is damaged (bad key)");
  e.key = *key;
  e.env_hash = *env;
  e.start_ns = m.start_ns();
  e.end_ns = m.end_ns();
  e.exit_code = m.exit_code();
  e.backend = m.backend();
  e.forced = m.forced();
  e.kept_bytes = m.kept_bytes();
  e.work = m.work();
  e.changes.reserve(static_cast<size_t>(m.changes_size()));
  for (const auto& pc : m.changes()) {
    Change c;
    c.path = pc.path();
    c.before_link = pc.before_link();
    c.after_link = pc.after_link();
    if (c.path.empty() || !from_pb(pc.before(), &c.before) || !from_pb(pc.after(), &c.after))
      return fail(w + ": journal entry is damaged (bad change of '" + printable(c.path) + "')");
    e.changes.push_back(std::move(c));
  }
  e.outside_writes.assign(m.outside_writes().begin(), m.outside_writes().end());
  e.discarded_writes.assign(m.discarded_writes().begin(), m.discarded_writes().end());
  for (const auto& shown : m.shown_before()) e.shown_before.emplace_back(shown.path(), shown.before());
  return e;
}

Digest environment_hash(char** envp) {
  std::vector<std::string_view> vars;
  for (char** p = envp; p && *p; ++p) {
    std::string_view v(*p);
    // A shell's bookkeeping, which differs between two runs of the same
    // command for no reason of the command's (the cwd is in the key itself).
    if (v.starts_with("OLDPWD=") || v.starts_with("PWD=") || v.starts_with("SHLVL=") || v.starts_with("_="))
      continue;
    vars.push_back(v);
  }
  std::sort(vars.begin(), vars.end());
  Hasher h;
  for (auto v : vars) h.update(v.data(), v.size() + 1);  // with the NUL, as a separator
  return h.finish();
}

Digest command_key(const std::string& cwd, const std::vector<std::string>& argv,
                   const Digest& env_hash) {
  Hasher h;
  h.update("bsandbox-key-1", 15);
  h.update(cwd.data(), cwd.size() + 1);
  uint64_t n = argv.size();
  h.update(&n, sizeof n);
  for (const auto& a : argv) h.update(a.data(), a.size() + 1);
  h.update(env_hash.bytes.data(), env_hash.bytes.size());
  return h.finish();
}

Result<Journal> Journal::open(int state_fd, std::string display) {
  if (::mkdirat(state_fd, "journal", 0755) != 0 && errno != EEXIST)
    return fail_errno(display + "/journal", errno);
  auto dir = open_beneath(state_fd, "journal", O_RDONLY | O_DIRECTORY);
  if (!dir) return fail(display + "/journal: " + dir.error().message);
  return Journal(std::move(*dir), display + "/journal");
}

std::string Journal::where(uint64_t id) const {
  char name[32];
  std::snprintf(name, sizeof name, "%08llu", static_cast<unsigned long long>(id));
  return display_ + "/" + name;
}

Result<std::vector<uint64_t>> Journal::ids() const {
  auto names = list_dir(dir_.get(), display_);
  if (!names) return tl::unexpected(names.error());
  std::vector<uint64_t> out;
  for (const auto& n : *names) {
    if (n.empty() || !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;  // temporaries
    out.push_back(std::stoull(n));
  }
  std::sort(out.begin(), out.end());
  if (!out.empty()) max_id_ = std::max(max_id_, out.back());
  return out;
}

uint64_t Journal::next_id() const { return max_id_ + 1; }

Result<JournalEntry> Journal::read(uint64_t id) const {
  std::string path = where(id);
  std::string name = path.substr(display_.size() + 1);
  UniqueFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(path, errno);
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno(path, errno);
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  auto e = decode_entry(bytes, path);
  if (e && e->id != id) return fail(path + ": journal entry is damaged (it says it is entry " + std::to_string(e->id) + ")");
  return e;
}

Result<void> Journal::write(const JournalEntry& e) {
  std::string path = where(e.id);
  max_id_ = std::max(max_id_, e.id);
  return replace_file_at(dir_.get(), path.substr(display_.size() + 1), encode_entry(e), path);
}

Result<void> Journal::remove(uint64_t id) {
  std::string path = where(id);
  if (::unlinkat(dir_.get(), path.substr(display_.size() + 1).c_str(), 0) != 0 && errno != ENOENT)
    return fail_errno(path, errno);
  return sync_fd(dir_.get(), display_);
}

}  // namespace bsandbox
