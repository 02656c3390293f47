// ops.h: the operations of the provenance spec, as bits of one byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bsandbox {

enum Op : uint8_t {
  kOpRead = 1 << 0,
  kOpWrite = 1 << 1,
  kOpCreate = 1 << 2,
  kOpDelete = 1 << 3,
  kOpStat = 1 << 4,
  kOpMissing = 1 << 5,
  kOpReaddir = 1 << 6,
  kOpExec = 1 << 7,
};
using OpSet = uint8_t;

inline constexpr OpSet kMutatingOps = kOpWrite | kOpCreate | kOpDelete;

// Names in the spec's order: read, write, create, delete, stat, missing,
// readdir, exec.
std::string_view op_name(Op op);
std::optional<Op> op_from_name(std::string_view name);
// "read,write" (comma-separated, spec order).
std::string ops_to_string(OpSet ops);

// What an access depended on of the state a path was in before it: the
// provenance record says what a process did (ops); a cache must also know
// what the outcome could have been based on. Reading depends on the
// content, stat on the metadata, a failed lookup on the absence; among the
// changes, mkdir depends on the name being absent (it fails otherwise),
// unlink on it being present, an append or a rename of the file elsewhere
// carries its old content into the result, and chmod keeps the content
// while changing the mode (file_access.cpp decides, call by call).
enum Use : uint8_t {
  kUsesContent = 1 << 0,  // a file's bytes (or, for a directory moved, what it holds)
  kUsesMeta = 1 << 1,     // kind, mode, size, times, a symlink's target
  kUsesListing = 1 << 2,  // the names in a directory
  kUsesAbsent = 1 << 3,   // that nothing is there
  kUsesPresent = 1 << 4,  // that something is there
  kUsesKept = 1 << 5,     // the content stays as it was (a metadata change)
};
using Uses = uint8_t;

// The uses of an access that changes nothing, from its ops.
constexpr Uses uses_of_ops(OpSet ops) {
  return static_cast<Uses>(((ops & (kOpRead | kOpExec)) ? kUsesContent : 0) | ((ops & kOpStat) ? kUsesMeta : 0) |
                           ((ops & kOpReaddir) ? kUsesListing : 0) | ((ops & kOpMissing) ? kUsesAbsent : 0));
}

// What a whole run learnt of one path's state from before the run: the ops
// of its first access, and the uses of every access up to and including the
// first one that changed the path (later ones saw the run's own doing).
struct PriorAccess {
  OpSet first = 0;
  Uses uses = 0;
  // Whether it was there before the run: not if the run's first access
  // made it or found it absent (a "missing" from ENOTDIR may have found a
  // file where a directory was asked for: that counts as there).
  bool existed() const { return !(first & kOpCreate) && !((first & kOpMissing) && (uses & kUsesAbsent)); }
  // One number for the wire (tracer service, agent).
  uint32_t pack() const { return first | (uint32_t{uses} << 8); }
  static PriorAccess unpack(uint32_t v) {
    return PriorAccess{static_cast<OpSet>(v & 0xff), static_cast<Uses>((v >> 8) & 0xff)};
  }
  friend bool operator==(const PriorAccess&, const PriorAccess&) = default;
};

template <class F>
void for_each_op(OpSet ops, F&& f) {
  for (int bit = 0; bit < 8; ++bit) {
    if (ops & (1u << bit)) f(static_cast<Op>(1u << bit));
  }
}

}  // namespace bsandbox
