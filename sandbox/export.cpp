// export.cpp: chrome-trace JSON and Prometheus text from records.
#include "sandbox/export.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "sandbox/json.h"
#include "sandbox/text.h"

namespace bsandbox {
namespace {

// Microseconds with three decimals (the format's unit), from ns.
std::string micros(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000),
                static_cast<long long>((ns % 1000 + 1000) % 1000));
  return buf;
}

std::string quoted(std::string_view bytes) {
  std::string out;
  json::append_string(out, bytes);
  return out;
}

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A Prometheus label value: backslash, quote and newline escaped; bytes that
// are not UTF-8 replaced (the format is UTF-8).
std::string label_value(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    size_t n = json::utf8_sequence_length(bytes.substr(i));
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    char c = bytes[i];
    if (n == 1 && c == '\\') out += "\\\\";
    else if (n == 1 && c == '"') out += "\\\"";
    else if (n == 1 && c == '\n') out += "\\n";
    else out.append(bytes.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

std::string to_chrome_trace(const std::vector<NamedRecord>& records) {
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  bool first = true;
  auto event = [&](const std::string& body) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{" + body + "}";
  };
  int64_t origin = INT64_MAX;
  for (const auto& r : records) origin = std::min(origin, r.record.start_ns);
  uint64_t flow = 0;
  for (size_t ri = 0; ri < records.size(); ++ri) {
    const Record& rec = records[ri].record;
    std::string pid = std::to_string(ri + 1);
    event("\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" + pid + ",\"tid\":0,\"args\":{\"name\":" +
          quoted(records[ri].name + ": " + command_line(rec.argv)) + "}");
    event("\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":" + pid + ",\"tid\":0,\"args\":{\"sort_index\":" +
          std::to_string(ri) + "}");
    std::unordered_map<std::string, size_t> index;  // process id -> position
    for (size_t i = 0; i < rec.processes.size(); ++i) index[process_id(rec.processes[i].key)] = i;
    for (size_t i = 0; i < rec.processes.size(); ++i) {
      const ProcessEntry& p = rec.processes[i];
      std::string tid = std::to_string(p.key.pid);
      std::string where = "\"pid\":" + pid + ",\"tid\":" + tid;
      std::string name = p.argv.empty() ? (p.exe ? basename_of(*p.exe) : "?") : command_line(p.argv);
      if (name.size() > 120) name = name.substr(0, 117) + "...";
      event("\"ph\":\"M\",\"name\":\"thread_name\"," + where + ",\"args\":{\"name\":" +
            quoted(name + " [" + std::to_string(p.key.pid) + "]") + "}");
      event("\"ph\":\"M\",\"name\":\"thread_sort_index\"," + where + ",\"args\":{\"sort_index\":" +
            std::to_string(i) + "}");
      int64_t start = p.start_ns - origin;
      int64_t end = std::max(p.end_ns, p.start_ns) - origin;
      std::string args = "\"id\":" + quoted(process_id(p.key));
      if (p.exe) args += ",\"exe\":" + quoted(*p.exe);
      args += ",\"cwd\":" + quoted(p.cwd);
      if (p.exit_code) args += ",\"exit_code\":" + std::to_string(*p.exit_code);
      args += ",\"files\":" + std::to_string(p.files.size());
      std::string label = p.argv.empty() ? name : basename_of(p.argv[0]);
      event("\"ph\":\"X\",\"cat\":\"process\",\"name\":" + quoted(label) + "," + where + ",\"ts\":" +
            micros(start) + ",\"dur\":" + micros(end - start) + ",\"args\":{" + args + "}");
      if (p.parent) {
        auto it = index.find(process_id(*p.parent));
        if (it != index.end()) {
          const ProcessEntry& parent = rec.processes[it->second];
          std::string id = std::to_string(++flow);
          std::string ts = micros(std::max(start, parent.start_ns - origin));
          event("\"ph\":\"s\",\"cat\":\"fork\",\"name\":\"fork\",\"id\":" + id + ",\"pid\":" + pid + ",\"tid\":" +
                std::to_string(parent.key.pid) + ",\"ts\":" + ts);
          event("\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"fork\",\"name\":\"fork\",\"id\":" + id + "," + where +
                ",\"ts\":" + ts);
        }
      }
      for (const FileEntry& f : p.files) {
        std::string ops = ops_to_string(f.ops);
        event("\"ph\":\"i\",\"s\":\"t\",\"cat\":\"file\",\"name\":" + quoted(ops) + "," + where + ",\"ts\":" +
              micros(start) + ",\"args\":{\"path\":" + quoted(f.path) + ",\"ops\":" + quoted(ops) + "}");
      }
    }
  }
  out += "\n]}\n";
  return out;
}

std::string to_prometheus(const std::vector<NamedRecord>& records) {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
  };
  static const Metric kMetrics[] = {
      {"bsandbox_run_processes", "gauge", "Processes the run started, the top one included."},
      {"bsandbox_run_execs", "gauge", "Processes of the run that executed a program (one or more times)."},
      {"bsandbox_run_files", "gauge", "Distinct paths the run accessed with the given operation."},
      {"bsandbox_run_duration_seconds", "gauge", "Wall time of the run."},
      {"bsandbox_run_exit_code", "gauge", "Exit code of the run's top process (128+N: killed by signal N)."},
      {"bsandbox_run_lost_events", "gauge", "Events the tracer knows it lost."},
      {"bsandbox_run_complete", "gauge", "1 if the record is complete, else 0."},
      {"bsandbox_run_start_timestamp_seconds", "gauge", "When the run started (Unix time)."},
  };
  std::string out;
  for (const Metric& m : kMetrics) {
    out += std::string("# HELP ") + m.name + " " + m.help + "\n";
    out += std::string("# TYPE ") + m.name + " " + m.type + "\n";
    for (const auto& [name, rec] : records) {
      std::string labels = "record=\"" + label_value(name) + "\",command=\"" +
                           label_value(rec.argv.empty() ? "" : basename_of(rec.argv[0])) + "\",backend=\"" +
                           label_value(rec.backend) + "\"";
      auto sample = [&](const std::string& extra, const std::string& value) {
        out += std::string(m.name) + "{" + labels + extra + "} " + value + "\n";
      };
      std::string metric = m.name;
      char buf[64];
      if (metric == "bsandbox_run_processes") {
        sample("", std::to_string(rec.processes.size()));
      } else if (metric == "bsandbox_run_execs") {
        size_t execs = std::count_if(rec.processes.begin(), rec.processes.end(), [](const ProcessEntry& p) {
          return std::any_of(p.files.begin(), p.files.end(), [](const FileEntry& f) { return f.ops & kOpExec; });
        });
        sample("", std::to_string(execs));
      } else if (metric == "bsandbox_run_files") {
        std::map<std::string, OpSet> paths;  // path -> ops by any process
        for (const auto& p : rec.processes)
          for (const auto& f : p.files) paths[f.path] |= f.ops;
        for (int bit = 0; bit < 8; ++bit) {
          Op op = static_cast<Op>(1u << bit);
          size_t n = std::count_if(paths.begin(), paths.end(), [&](const auto& e) { return e.second & op; });
          sample(",op=\"" + std::string(op_name(op)) + "\"", std::to_string(n));
        }
      } else if (metric == "bsandbox_run_duration_seconds") {
        std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(rec.end_ns - rec.start_ns) / 1e9);
        sample("", buf);
      } else if (metric == "bsandbox_run_exit_code") {
        sample("", std::to_string(rec.exit_code));
      } else if (metric == "bsandbox_run_lost_events") {
        sample("", std::to_string(rec.lost_events));
      } else if (metric == "bsandbox_run_complete") {
        sample("", rec.complete ? "1" : "0");
      } else {
        std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(rec.start_ns) / 1e9);
        sample("", buf);
      }
    }
  }
  return out;
}

}  // namespace bsandbox
