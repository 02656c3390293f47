// provenance.cpp: writing the record as JSON, and to and from protobuf.
//
// The JSON is written by hand into one string: a record of a real build has
// hundreds of thousands of file entries, and appending to a reserved string
// is several times faster than building a DOM. One file entry per line keeps
// it readable and diffable.
#include "sandbox/core/provenance.h"

#include <sys/wait.h>

#include <unordered_map>

#include "sandbox/base/json.h"
#include "sandbox/core/provenance.pb.h"

namespace bsandbox {

std::string process_id(const ProcessKey& key) {
  return std::to_string(key.pid) + "@" + std::to_string(key.start);
}

int exit_code_from_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 128;
}

namespace {

void append_string_array(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    json::append_string(out, items[i]);
  }
  out += ']';
}

void append_ops(std::string& out, OpSet ops) {
  out += '[';
  bool first = true;
  for_each_op(ops, [&](Op op) {
    if (!first) out += ", ";
    first = false;
    out += '"';
    out += op_name(op);
    out += '"';
  });
  out += ']';
}

void append_process(std::string& out, const ProcessEntry& p) {
  out += "    {\n      \"id\": ";
  json::append_string(out, process_id(p.key));
  out += ",\n      \"pid\": " + std::to_string(p.key.pid);
  out += ",\n      \"parent\": ";
  if (p.parent) {
    json::append_string(out, process_id(*p.parent));
  } else {
    out += "null";
  }
  out += ",\n      \"argv\": ";
  append_string_array(out, p.argv);
  out += ",\n      \"exe\": ";
  if (p.exe) {
    json::append_string(out, *p.exe);
  } else {
    out += "null";
  }
  out += ",\n      \"cwd\": ";
  json::append_string(out, p.cwd);
  out += ",\n      \"start_ns\": " + std::to_string(p.start_ns);
  out += ",\n      \"end_ns\": " + std::to_string(p.end_ns);
  out += ",\n      \"exit_code\": ";
  out += p.exit_code ? std::to_string(*p.exit_code) : "null";
  out += ",\n      \"exec_ns\": ";
  out += p.exec_ns ? std::to_string(*p.exec_ns) : "null";
  out += ",\n      \"files\": [";
  for (size_t i = 0; i < p.files.size(); ++i) {
    out += i ? ",\n        " : "\n        ";
    out += "{\"path\": ";
    json::append_string(out, p.files[i].path);
    out += ", \"ops\": ";
    append_ops(out, p.files[i].ops);
    out += '}';
  }
  out += p.files.empty() ? "]" : "\n      ]";
  if (!p.sockets.empty()) {  // beside the spec's fields, only where there are any
    out += ",\n      \"sockets\": [";
    for (size_t i = 0; i < p.sockets.size(); ++i) {
      out += i ? ",\n        " : "\n        ";
      out += "{\"op\": \"";
      out += socket_op_name(p.sockets[i].op);
      out += "\", \"address\": ";
      json::append_string(out, p.sockets[i].address);
      out += '}';
    }
    out += "\n      ]";
  }
  out += "\n    }";
}

}  // namespace

std::string_view socket_op_name(SocketOp op) {
  switch (op) {
    case SocketOp::kConnect: return "connect";
    case SocketOp::kBind: return "bind";
    case SocketOp::kSend: return "send";
  }
  return "?";
}

std::string to_json(const Record& r) {
  std::string out;
  size_t files = 0;
  for (const auto& p : r.processes) files += p.files.size();
  out.reserve(1024 + r.processes.size() * 512 + files * 96);
  out += "{\n  \"schema\": ";
  json::append_string(out, kSchema);
  out += ",\n  \"backend\": ";
  json::append_string(out, r.backend);
  out += ",\n  \"argv\": ";
  append_string_array(out, r.argv);
  out += ",\n  \"cwd\": ";
  json::append_string(out, r.cwd);
  out += ",\n  \"start_ns\": " + std::to_string(r.start_ns);
  out += ",\n  \"end_ns\": " + std::to_string(r.end_ns);
  out += ",\n  \"exit_code\": " + std::to_string(r.exit_code);
  out += ",\n  \"complete\": ";
  out += r.complete ? "true" : "false";
  out += ",\n  \"lost_events\": " + std::to_string(r.lost_events);
  if (!r.cache.empty()) {
    out += ",\n  \"cache\": ";
    json::append_string(out, r.cache);
  }
  if (!r.agent.empty()) {
    out += ",\n  \"agent\": ";
    json::append_string(out, r.agent);
  }
  out += ",\n  \"processes\": [";
  for (size_t i = 0; i < r.processes.size(); ++i) {
    out += i ? ",\n" : "\n";
    append_process(out, r.processes[i]);
  }
  out += r.processes.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

std::string to_protobuf(const Record& r) {
  pb::Record m;
  m.set_schema(std::string(kSchema));
  m.set_backend(r.backend);
  for (const auto& a : r.argv) m.add_argv(a);
  m.set_cwd(r.cwd);
  m.set_start_ns(r.start_ns);
  m.set_end_ns(r.end_ns);
  m.set_exit_code(r.exit_code);
  m.set_complete(r.complete);
  m.set_lost_events(r.lost_events);
  m.set_cache(r.cache);
  m.set_agent(r.agent);
  std::unordered_map<std::string_view, uint32_t> index;
  for (const auto& p : r.processes) {
    pb::Process* q = m.add_processes();
    q->set_pid(p.key.pid);
    q->set_start_boottime_ns(p.key.start);
    if (p.parent) {
      q->set_has_parent(true);
      q->set_parent_pid(p.parent->pid);
      q->set_parent_start_boottime_ns(p.parent->start);
    }
    for (const auto& a : p.argv) q->add_argv(a);
    if (p.exe) {
      q->set_has_exe(true);
      q->set_exe(*p.exe);
    }
    q->set_cwd(p.cwd);
    q->set_start_ns(p.start_ns);
    q->set_end_ns(p.end_ns);
    if (p.exit_code) {
      q->set_has_exit_code(true);
      q->set_exit_code(*p.exit_code);
    }
    if (p.exec_ns) {
      q->set_has_exec(true);
      q->set_exec_ns(*p.exec_ns);
    }
    for (const auto& f : p.files) {
      auto [it, added] = index.emplace(f.path, static_cast<uint32_t>(index.size()));
      if (added) m.add_paths(f.path);
      pb::File* g = q->add_files();
      g->set_path(it->second);
      g->set_ops(f.ops);
    }
    for (const auto& s : p.sockets) {
      pb::Socket* k = q->add_sockets();
      k->set_op(static_cast<uint32_t>(s.op));
      k->set_address(s.address);
    }
  }
  return m.SerializeAsString();
}

Result<Record> from_protobuf(std::string_view bytes, std::string_view what) {
  pb::Record m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || m.schema() != kSchema)
    return fail(std::string(what) + ": not a bsandbox provenance record (" +
                std::string(kSchema) + ")");
  Record r;
  r.backend = m.backend();
  r.argv.assign(m.argv().begin(), m.argv().end());
  r.cwd = m.cwd();
  r.start_ns = m.start_ns();
  r.end_ns = m.end_ns();
  r.exit_code = m.exit_code();
  r.complete = m.complete();
  r.lost_events = m.lost_events();
  r.cache = m.cache();
  r.agent = m.agent();
  for (const auto& q : m.processes()) {
    ProcessEntry p;
    p.key = ProcessKey{q.pid(), q.start_boottime_ns()};
    if (q.has_parent()) p.parent = ProcessKey{q.parent_pid(), q.parent_start_boottime_ns()};
    p.argv.assign(q.argv().begin(), q.argv().end());
    if (q.has_exe()) p.exe = q.exe();
    p.cwd = q.cwd();
    p.start_ns = q.start_ns();
    p.end_ns = q.end_ns();
    if (q.has_exit_code()) p.exit_code = q.exit_code();
    if (q.has_exec()) p.exec_ns = q.exec_ns();
    for (const auto& g : q.files()) {
      if (g.path() >= static_cast<uint32_t>(m.paths_size()) || g.ops() > 0xff)
        return fail(std::string(what) + ": corrupt record (file entry out of range)");
      p.files.push_back(FileEntry{m.paths(static_cast<int>(g.path())), static_cast<OpSet>(g.ops())});
    }
    for (const auto& k : q.sockets()) {
      if (k.op() < 1 || k.op() > 3) return fail(std::string(what) + ": corrupt record (socket entry)");
      p.sockets.push_back(SocketEntry{static_cast<SocketOp>(k.op()), k.address()});
    }
    r.processes.push_back(std::move(p));
  }
  return r;
}

}  // namespace bsandbox
