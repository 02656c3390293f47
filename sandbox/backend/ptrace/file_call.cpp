// file_call.cpp: see file_call.h. A name is relative when it does not
// start with '/' (an empty name, too: it may name the dirfd itself); the
// second name of symlink() is the link's text, not a name, and needs
// nothing. A socket address is read as path1 and taken as relative: an
// AF_UNIX name is made absolute against the cwd like a file name.
#include "sandbox/backend/ptrace/file_call.h"

#include <fcntl.h>

#include "sandbox/backend/ptrace/proc_reader.h"

namespace bsandbox {
namespace {

// The open flags that decide creation: creat() is open with these.
uint64_t open_flags(const FileCall& c, uint64_t creat_flags) {
  return c.spec->desc.sys == BS_SYS_CREAT ? creat_flags : c.flags;
}

// Whether the open may create a name that is not known to be new: then
// whether it existed is looked up at the seccomp stop.
bool may_create(const FileCall& c) {
  const bs_sc_desc& d = c.spec->desc;
  bool opens = d.resolve == BS_RESOLVE_RETFD && d.sys != BS_SYS_OPEN_BY_HANDLE_AT;
  uint64_t oflags = open_flags(c, O_CREAT | O_WRONLY | O_TRUNC);
  return opens && (oflags & O_CREAT) && (oflags & O_TMPFILE) != O_TMPFILE && !(oflags & O_EXCL) &&
         c.path1.present && !c.path1.flags;
}

}  // namespace

bool FileCall::created_file() const {
  uint64_t oflags = open_flags(*this, O_CREAT);
  return (oflags & O_CREAT) && (oflags & O_TMPFILE) != O_TMPFILE && ((oflags & O_EXCL) || created == 1);
}

bool read_file_call(pid_t tid, const SyscallSpec& spec, const uint64_t* args, FileCall& p) {
  p.spec = &spec;
  const bs_sc_desc& d = spec.desc;
  for (size_t i = 0; i < 6; ++i) p.args[i] = args[i];
  p.flags = 0;
  if (d.flags) {
    p.flags = p.arg(d.flags);
    if (d.desc_flags & BS_DESC_FLAGS_IN_OPEN_HOW) {
      uint64_t how = 0;
      if (read_remote(tid, p.arg(d.flags), &how, sizeof how) != sizeof how) how = 0;
      p.flags = how;
    }
  }
  p.path2 = UserString{};
  p.created = -1;
  if (d.desc_flags & (BS_DESC_SOCKADDR | BS_DESC_MSGHDR))
    return read_sockaddr(tid, d, p.args.data(), p.path1);
  if (d.path1) {
    read_user_string(tid, p.arg(d.path1), BS_USER_PATH_MAX, p.path1);
  } else {
    p.path1 = UserString{};
  }
  if ((d.desc_flags & BS_DESC_SKIP_EMPTY_PATH) && p.path1.present && p.path1.text.empty() &&
      !p.path1.flags)
    return false;  // fstat() in disguise
  if (d.path2) read_user_string(tid, p.arg(d.path2), BS_USER_PATH_MAX, p.path2);
  if (may_create(p)) {
    int dirfd = d.dirfd1 ? static_cast<int>(p.arg(d.dirfd1)) : AT_FDCWD;
    int exists = name_exists(tid, dirfd, p.path1.text, !(open_flags(p, O_CREAT) & O_NOFOLLOW));
    if (exists >= 0) p.created = exists ? 0 : 1;
  }
  return true;
}

NamesNeeded fill_file_event(const FileCall& p, int64_t ret, FileEvent& e) {
  const bs_sc_desc& d = p.spec->desc;
  e.sys = static_cast<bs_sys>(d.sys);
  e.ret = ret;
  e.flags = p.flags;
  e.dirfd1 = d.dirfd1 ? static_cast<int32_t>(p.arg(d.dirfd1)) : AT_FDCWD;
  e.dirfd2 = d.dirfd2 ? static_cast<int32_t>(p.arg(d.dirfd2)) : AT_FDCWD;
  if (p.path1.present) e.path1 = KernelPath{p.path1.text, p.path1.flags};
  if (p.path2.present) e.path2 = KernelPath{p.path2.text, p.path2.flags};

  char c1 = p.path1.present && !p.path1.text.empty() ? p.path1.text[0] : 0;
  char c2 = p.path2.present && !p.path2.text.empty() ? p.path2.text[0] : 0;
  bool text2 = d.desc_flags & BS_DESC_PATH2_IS_TEXT;
  bool rel1 = d.path1 && c1 != '/';
  bool rel2 = p.path2.present && c2 != '/' && !text2;
  NamesNeeded n;
  n.dir1 = rel1 && e.dirfd1 != AT_FDCWD;
  n.dir2 = rel2 && e.dirfd2 != AT_FDCWD;
  n.cwd = (rel1 && p.path1.present && e.dirfd1 == AT_FDCWD) || (rel2 && e.dirfd2 == AT_FDCWD);
  n.root = (p.path1.present && c1 == '/') || (p.path2.present && c2 == '/' && !text2);
  return n;
}

}  // namespace bsandbox
