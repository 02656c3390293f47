// seen.h: what both backends' kernel tests collect: every event of a run
// copied out (an Event's strings are views into the backend's buffers),
// its strings by name with their flags, for checks field by field.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/core/event.h"

namespace bsandbox::testing {

// An event copied out of the backend (events are views into its buffers).
struct Seen {
  std::string type;
  ProcessKey proc;
  uint32_t tid = 0;
  bs_sys sys = BS_SYS_NONE;
  int64_t ret = 0;
  uint64_t flags = 0;
  uint16_t result_flags = 0;
  uint32_t magic = 0;
  int32_t dirfd1 = 0;
  int status = 0;
  ProcessKey parent;
  bool elf32 = false;
  std::map<std::string, std::string> str;
  std::map<std::string, uint8_t> str_flags;
  bool has(const std::string& k) const { return str.count(k) != 0; }
};

class Collector : public EventSink {
 public:
  std::vector<Seen> seen;
  void on_event(const Event& event) override {
    Seen s;
    const EventBase& b = base_of(event);
    s.proc = b.proc;
    s.tid = b.tid;
    put(s, "cwd", b.cwd);
    put(s, "root", b.root);
    if (auto* f = std::get_if<FileEvent>(&event)) {
      s.type = "file";
      s.sys = f->sys;
      s.ret = f->ret;
      s.flags = f->flags;
      s.result_flags = f->result_flags;
      s.magic = f->result_magic;
      s.dirfd1 = f->dirfd1;
      put(s, "path1", f->path1);
      put(s, "path2", f->path2);
      put(s, "dir1", f->dir1);
      put(s, "dir2", f->dir2);
      put(s, "result", f->result);
    } else if (auto* x = std::get_if<ExecEvent>(&event)) {
      s.type = "exec";
      s.str["filename"] = std::string(x->filename);
      s.str["interp"] = std::string(x->interp);
      s.str["argv"] = std::string(x->argv);
      put(s, "exe", x->exe);
      put(s, "ldso", x->ldso);
      s.elf32 = x->elf32;
    } else if (auto* k = std::get_if<ForkEvent>(&event)) {
      s.type = "fork";
      s.parent = k->parent;
    } else if (auto* e = std::get_if<ExitEvent>(&event)) {
      s.type = "exit";
      s.status = e->wait_status;
    }
    seen.push_back(std::move(s));
  }

 private:
  static void put(Seen& s, const char* k, const std::optional<KernelPath>& p) {
    if (!p) return;
    s.str[k] = std::string(p->path);
    s.str_flags[k] = p->flags;
  }
};

}  // namespace bsandbox::testing
