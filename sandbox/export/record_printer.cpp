// record_printer.cpp: depth-first over the parent links, children in start
// order; processes whose parent is not in the record hang off the top.
#include "sandbox/export/record_printer.h"

#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "sandbox/base/json.h"

namespace bsandbox {
namespace {

std::string count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(ns) / 1e9);
  return buf;
}

}  // namespace

std::string summary_line(const Record& r) {
  std::unordered_set<std::string_view> read, written, deleted;
  for (const auto& p : r.processes) {
    for (const auto& f : p.files) {
      if (f.ops & (kOpRead | kOpExec)) read.insert(f.path);
      if (f.ops & (kOpWrite | kOpCreate)) written.insert(f.path);
      if (f.ops & kOpDelete) deleted.insert(f.path);
    }
  }
  std::string out = count(r.processes.size(), "process", "processes") + ", " +
                    count(read.size(), "file", "files") + " read, " +
                    std::to_string(written.size()) + " written, " +
                    std::to_string(deleted.size()) + " deleted, " +
                    seconds(r.end_ns - r.start_ns) + ", backend " + r.backend + ", ";
  if (r.complete) {
    out += "complete";
  } else {
    out += "INCOMPLETE";
    if (r.lost_events) out += " (" + std::to_string(r.lost_events) + " events lost)";
  }
  if (!r.cache.empty()) out += ", cache " + r.cache;
  if (!r.agent.empty()) out += ", via bsandboxd";
  return out;
}

std::string print_tree(const Record& r) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < r.processes.size(); ++i) index[process_id(r.processes[i].key)] = i;
  std::vector<std::vector<size_t>> children(r.processes.size());
  std::vector<size_t> tops;
  for (size_t i = 0; i < r.processes.size(); ++i) {
    const auto& p = r.processes[i];
    auto parent = p.parent ? index.find(process_id(*p.parent)) : index.end();
    if (i > 0 && parent != index.end() && parent->second != i) {
      children[parent->second].push_back(i);
    } else {
      tops.push_back(i);
    }
  }

  std::string out;
  std::vector<bool> printed(r.processes.size(), false);
  std::vector<std::pair<size_t, int>> stack;  // (process, depth)
  for (auto it = tops.rbegin(); it != tops.rend(); ++it) stack.emplace_back(*it, 0);
  while (!stack.empty()) {
    auto [i, depth] = stack.back();
    stack.pop_back();
    if (printed[i]) continue;  // a parent cycle in a corrupt record
    printed[i] = true;
    const auto& p = r.processes[i];
    std::string indent(static_cast<size_t>(depth) * 2, ' ');
    out += indent + std::to_string(p.key.pid) + " " + command_line(p.argv) + "  [";
    out += p.exit_code ? "exit " + std::to_string(*p.exit_code) : std::string("running");
    out += ", " + seconds(p.end_ns - p.start_ns) + "]\n";
    for (const auto& f : p.files) {
      std::string ops = ops_to_string(f.ops);
      if (ops.size() < 12) ops.resize(12, ' ');
      out += indent + "    " + ops + " " + printable(f.path) + "\n";
    }
    for (auto c = children[i].rbegin(); c != children[i].rend(); ++c) stack.emplace_back(*c, depth + 1);
  }
  out += summary_line(r) + "\n";
  return out;
}

}  // namespace bsandbox
