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

template <class F>
void for_each_op(OpSet ops, F&& f) {
  for (int bit = 0; bit < 8; ++bit) {
    if (ops & (1u << bit)) f(static_cast<Op>(1u << bit));
  }
}

}  // namespace bsandbox
