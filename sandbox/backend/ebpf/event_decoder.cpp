// event_decoder.cpp: records from the kernel programs (bpf/events.h) into
// Events.
//
// A record is trusted for nothing: every length is checked against the bytes
// actually received before it is used, and a record that does not add up is
// an error, never a partial event. Strings become views into the record.
#include "sandbox/backend/ebpf/event_decoder.h"

#include <cstring>
#include <string>

namespace bsandbox {

static_assert(sizeof(bs_hdr) == 32);
static_assert(sizeof(bs_fork) == 48);
static_assert(sizeof(bs_exec) == 40);
static_assert(sizeof(bs_exit) == 40);
static_assert(sizeof(bs_file) == 72);
static_assert(sizeof(bs_str) == 8);
static_assert(sizeof(bs_sc_desc) == 16);

namespace {

std::string describe(std::string_view what, size_t size) {
  return "corrupt kernel record: " + std::string(what) + " (record of " + std::to_string(size) +
         " bytes)";
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void fill_base(EventBase& b, const bs_hdr& h) {
  b.proc = ProcessKey{h.tgid, h.start};
  b.tid = h.tid;
  b.time = h.time;
  b.strings_dropped = h.flags & BS_HF_STRING_DROPPED;
}

// The record's fixed part by its type; *fixed gets that part's size (the
// strings follow it). An unknown type or syscall kind is an error.
Result<Event> decode_fixed(const uint8_t* bytes, const bs_hdr& h, size_t size, size_t* fixed_out) {
  size_t fixed = 0;
  Event event;
  switch (h.type) {
    case BS_EV_FORK: {
      fixed = sizeof(bs_fork);
      if (h.size < fixed) break;
      auto r = load<bs_fork>(bytes);
      ForkEvent e;
      fill_base(e, h);
      e.parent = ProcessKey{r.parent_tgid, r.parent_start};
      event = e;
      break;
    }
    case BS_EV_EXEC: {
      fixed = sizeof(bs_exec);
      if (h.size < fixed) break;
      auto r = load<bs_exec>(bytes);
      ExecEvent e;
      fill_base(e, h);
      e.old_tid = r.old_tid;
      e.elf32 = r.flags & BS_EXEC_ELF32;
      e.argv_truncated = r.flags & BS_EXEC_ARGV_TRUNCATED;
      event = e;
      break;
    }
    case BS_EV_EXIT: {
      fixed = sizeof(bs_exit);
      if (h.size < fixed) break;
      auto r = load<bs_exit>(bytes);
      ExitEvent e;
      fill_base(e, h);
      e.wait_status = r.status;
      event = e;
      break;
    }
    case BS_EV_FILE: {
      fixed = sizeof(bs_file);
      if (h.size < fixed) break;
      auto r = load<bs_file>(bytes);
      if (r.sys == BS_SYS_NONE || r.sys >= BS_SYS_COUNT)
        return fail(describe("unknown syscall kind " + std::to_string(r.sys), size));
      FileEvent e;
      fill_base(e, h);
      e.sys = static_cast<bs_sys>(r.sys);
      e.ret = r.ret;
      e.flags = r.flags;
      e.dirfd1 = r.dirfd1;
      e.dirfd2 = r.dirfd2;
      e.result_flags = r.result_flags;
      e.result_magic = r.result_magic;
      event = e;
      break;
    }
    default:
      return fail(describe("unknown type " + std::to_string(h.type), size));
  }
  *fixed_out = fixed;
  return event;
}

// The strings after the fixed part, each placed in its field of event.
Result<void> decode_strings(const uint8_t* bytes, const bs_hdr& h, size_t size, size_t off, Event& event) {
  EventBase& base = std::visit([](auto& v) -> EventBase& { return v; }, event);
  for (unsigned i = 0; i < h.nstr; ++i) {
    if (off + sizeof(bs_str) > h.size) return fail(describe("string header past the end", size));
    auto s = load<bs_str>(bytes + off);
    off += sizeof(bs_str);
    if (s.len > BS_STR_MAX || off + s.len > h.size)
      return fail(describe("string of " + std::to_string(s.len) + " bytes past the end", size));
    KernelPath kp{std::string_view(reinterpret_cast<const char*>(bytes + off), s.len), s.flags};
    off += (s.len + 7) & ~size_t{7};

    bool placed = true;
    switch (s.kind) {
      case BS_STR_CWD: base.cwd = kp; break;
      case BS_STR_ROOT: base.root = kp; break;
      default: placed = false; break;
    }
    if (placed) continue;
    if (auto* f = std::get_if<FileEvent>(&event)) {
      switch (s.kind) {
        case BS_STR_PATH1: f->path1 = kp; continue;
        case BS_STR_PATH2: f->path2 = kp; continue;
        case BS_STR_DIR1: f->dir1 = kp; continue;
        case BS_STR_DIR2: f->dir2 = kp; continue;
        case BS_STR_RESULT: f->result = kp; continue;
        default: break;
      }
    } else if (auto* x = std::get_if<ExecEvent>(&event)) {
      switch (s.kind) {
        case BS_STR_FILENAME: x->filename = kp.path; continue;
        case BS_STR_INTERP: x->interp = kp.path; continue;
        case BS_STR_EXE: x->exe = kp; continue;
        case BS_STR_LDSO: x->ldso = kp; continue;
        case BS_STR_ARGV:
          x->argv = kp.path;
          if (kp.truncated()) x->argv_truncated = true;
          continue;
        default: break;
      }
    }
    return fail(describe("string kind " + std::to_string(s.kind) + " in a record of type " +
                             std::to_string(h.type),
                         size));
  }
  return {};
}

}  // namespace

Result<Event> decode_record(const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (size < sizeof(bs_hdr)) return fail(describe("shorter than its header", size));
  auto h = load<bs_hdr>(bytes);
  if (h.abi != BS_ABI_VERSION)
    return fail(describe("ABI version " + std::to_string(h.abi) + ", expected " +
                             std::to_string(BS_ABI_VERSION),
                         size));
  if (h.size > size) return fail(describe("header claims " + std::to_string(h.size) + " bytes", size));

  size_t fixed = 0;
  auto event = decode_fixed(bytes, h, size, &fixed);
  if (!event) return event;
  if (h.size < fixed) return fail(describe("shorter than its fixed part", size));
  if (auto r = decode_strings(bytes, h, size, fixed, *event); !r) return tl::unexpected(r.error());
  return event;
}

}  // namespace bsandbox
