// ops.cpp: names of the operations.
#include "sandbox/core/ops.h"

#include <array>

namespace bsandbox {
namespace {
constexpr std::array<std::string_view, 8> kNames = {"read", "write",   "create",  "delete",
                                                    "stat", "missing", "readdir", "exec"};
}

std::string_view op_name(Op op) {
  for (int bit = 0; bit < 8; ++bit) {
    if (op == (1u << bit)) return kNames[bit];
  }
  return "?";
}

std::optional<Op> op_from_name(std::string_view name) {
  for (int bit = 0; bit < 8; ++bit) {
    if (kNames[bit] == name) return static_cast<Op>(1u << bit);
  }
  return std::nullopt;
}

std::string ops_to_string(OpSet ops) {
  std::string out;
  for_each_op(ops, [&](Op op) {
    if (!out.empty()) out += ',';
    out += op_name(op);
  });
  return out;
}

}  // namespace bsandbox
