// export.cpp: chrome-trace JSON and Prometheus text from records (see
// export.h); the Prometheus page is written by base/prometheus.h, with
// durations as "%.6f" seconds and start times as "%.3f".
#include "sandbox/export/export.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "sandbox/base/json.h"
#include "sandbox/base/prometheus.h"
#include "sandbox/base/text.h"

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
      // Within the lifetime: the program its last execve started, to the end.
      if (p.exec_ns && *p.exec_ns >= p.start_ns) {
        int64_t exec = std::min(*p.exec_ns - origin, end);
        event("\"ph\":\"X\",\"cat\":\"exec\",\"name\":" + quoted("exec " + (p.exe ? basename_of(*p.exe) : label)) +
              "," + where + ",\"ts\":" + micros(exec) + ",\"dur\":" + micros(end - exec) +
              ",\"args\":{\"exe\":" + (p.exe ? quoted(*p.exe) : std::string("null")) + "}");
      }
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
  prometheus::Writer out;
  for (const Metric& m : kMetrics) {
    out.family(m.name, m.type, m.help);
    for (const auto& [name, rec] : records) {
      std::string command = rec.argv.empty() ? "" : basename_of(rec.argv[0]);
      std::string labels = prometheus::labels({{"record", name}, {"command", command}, {"backend", rec.backend}});
      auto sample = [&](const std::string& extra, const std::string& value) {
        out.sample(m.name, labels + extra, value);
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
          sample("," + prometheus::labels({{"op", op_name(op)}}), std::to_string(n));
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
  return out.take();
}

}  // namespace bsandbox

namespace bsandbox {
namespace {

// The page's data: paths once, processes referring to them by index.
std::string html_data(const NamedRecord& named) {
  const Record& rec = named.record;
  std::unordered_map<std::string, size_t> path_ids;
  std::string paths = "[";
  auto path_id = [&](const std::string& p) {
    auto [it, fresh] = path_ids.emplace(p, path_ids.size());
    if (fresh) {
      if (it->second) paths += ",";
      json::append_string(paths, p);
    }
    return it->second;
  };
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < rec.processes.size(); ++i) index[process_id(rec.processes[i].key)] = i;
  std::string procs = "[";
  for (size_t i = 0; i < rec.processes.size(); ++i) {
    const ProcessEntry& p = rec.processes[i];
    if (i) procs += ",";
    procs += "{\"id\":" + quoted(process_id(p.key)) + ",\"pid\":" + std::to_string(p.key.pid);
    auto parent = p.parent ? index.find(process_id(*p.parent)) : index.end();
    procs += ",\"parent\":" + (parent == index.end() ? std::string("-1") : std::to_string(parent->second));
    procs += ",\"argv\":[";
    for (size_t a = 0; a < p.argv.size(); ++a) procs += (a ? "," : "") + quoted(p.argv[a]);
    procs += "],\"exe\":" + (p.exe ? quoted(*p.exe) : std::string("null"));
    procs += ",\"cwd\":" + quoted(p.cwd);
    procs += ",\"start\":" + std::to_string((p.start_ns - rec.start_ns) / 1000);
    procs += ",\"end\":" + std::to_string((std::max(p.end_ns, p.start_ns) - rec.start_ns) / 1000);
    procs += ",\"exit\":" + (p.exit_code ? std::to_string(*p.exit_code) : std::string("null"));
    procs += ",\"files\":[";
    for (size_t f = 0; f < p.files.size(); ++f)
      procs += (f ? "," : "") + std::to_string(path_id(p.files[f].path)) + "," + std::to_string(p.files[f].ops);
    procs += "]}";
  }
  procs += "]";
  paths += "]";
  std::string out = "{\"name\":" + quoted(named.name) + ",\"argv\":[";
  for (size_t a = 0; a < rec.argv.size(); ++a) out += (a ? "," : "") + quoted(rec.argv[a]);
  out += "],\"cwd\":" + quoted(rec.cwd) + ",\"backend\":" + quoted(rec.backend) +
         ",\"duration_us\":" + std::to_string((rec.end_ns - rec.start_ns) / 1000) +
         ",\"exit_code\":" + std::to_string(rec.exit_code) + ",\"complete\":" + (rec.complete ? "true" : "false") +
         ",\"lost_events\":" + std::to_string(rec.lost_events) + ",\"paths\":" + paths + ",\"processes\":" + procs + "}";
  // Inside <script>: "</" would end it.
  std::string safe;
  safe.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '<' && i + 1 < out.size() && out[i + 1] == '/') safe += "<\\";
    else safe += out[i];
  }
  return safe;
}

constexpr const char* kHtmlHead = R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>bsandbox report</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#243447;color:#fff;padding:10px 16px}
header h1{font-size:16px;margin:0 0 4px}
main{padding:8px 16px}
section{margin:12px 0}
h2{font-size:14px;margin:8px 0;border-bottom:1px solid #ddd}
.summary td{padding:2px 12px 2px 0}
.tree details{margin-left:14px}
.tree summary{cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tree .meta{color:#777}
#timeline{width:100%;height:260px;border:1px solid #ddd}
#files{border-collapse:collapse;width:100%}
#files td,#files th{border-bottom:1px solid #eee;padding:2px 6px;text-align:left;font-family:ui-monospace,monospace;font-size:12px}
.filters label{margin-right:10px}
.bad{color:#b00}
</style></head><body>
<script id="record" type="application/json">)HTML";

constexpr const char* kHtmlBody = R"HTML(</script>
<header><h1 id="title"></h1><div id="subtitle"></div></header>
<main>
<section><h2>Summary</h2><table class="summary" id="summary"></table></section>
<section><h2>Processes</h2><div class="tree" id="tree"></div></section>
<section><h2>Timeline</h2><canvas id="timeline"></canvas><div id="timeline-note" class="meta"></div></section>
<section><h2>Files</h2>
<div class="filters" id="filters">
<span id="filter-ops"></span>
<label>path prefix <input id="filter-prefix" size="40"></label>
<label>process <input id="filter-process" size="16" placeholder="pid or pid@start"></label>
</div>
<p><span id="file-count">0</span> accesses match<span id="file-shown"></span></p>
<table id="files"><thead><tr><th>path</th><th>ops</th><th>process</th><th>command</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script>
"use strict";
const R = JSON.parse(document.getElementById("record").textContent);
const OPS = ["read","write","create","delete","stat","missing","readdir","exec"];
const $ = id => document.getElementById(id);
const opsText = m => OPS.filter((o, i) => m & (1 << i)).join(",");
const cmd = p => p.argv.length ? p.argv.join(" ") : (p.exe || "?");
const ms = us => (us / 1000).toFixed(1) + " ms";
function text(el, t) { el.textContent = t; return el; }
function make(tag, cls, t) { const e = document.createElement(tag); if (cls) e.className = cls; if (t !== undefined) e.textContent = t; return e; }

// Summary.
const accesses = R.processes.reduce((n, p) => n + p.files.length / 2, 0);
const byOp = OPS.map(() => new Set());
for (const p of R.processes) for (let i = 0; i < p.files.length; i += 2)
  for (let b = 0; b < 8; ++b) if (p.files[i + 1] & (1 << b)) byOp[b].add(p.files[i]);
text($("title"), R.argv.join(" "));
text($("subtitle"), R.name + " - " + R.cwd);
const rows = [["processes", R.processes.length, "summary-processes"], ["file accesses", accesses, "summary-accesses"],
  ["distinct paths", R.paths.length, "summary-paths"], ["duration", ms(R.duration_us)], ["exit code", R.exit_code],
  ["backend", R.backend], ["complete", R.complete ? "yes" : "NO (" + R.lost_events + " events lost)"]]
  .concat(OPS.map((o, b) => ["paths " + o, byOp[b].size, "summary-" + o]));
for (const [k, v, id] of rows) {
  const tr = make("tr"); tr.appendChild(make("td", "", k)); const td = make("td", "", String(v));
  if (id) td.id = id; tr.appendChild(td); $("summary").appendChild(tr);
}

// Process tree: children are built when their parent is opened.
const kids = R.processes.map(() => []);
const roots = [];
R.processes.forEach((p, i) => (p.parent >= 0 ? kids[p.parent] : roots).push(i));
function node(i) {
  const p = R.processes[i], d = make("details");
  d.dataset.index = i;
  const s = make("summary");
  s.appendChild(make("span", "", cmd(p) + " "));
  s.appendChild(make("span", "meta", "[" + p.pid + "] " + ms(p.end - p.start) + ", exit " + p.exit +
    ", " + p.files.length / 2 + " files" + (kids[i].length ? ", " + kids[i].length + " children" : "")));
  if (p.exit !== 0 && p.exit !== null) s.classList.add("bad");
  d.appendChild(s);
  d.addEventListener("toggle", () => {
    if (!d.open || d.dataset.built) return;
    d.dataset.built = 1;
    for (const k of kids[i]) d.appendChild(node(k));
  });
  return d;
}
for (const r of roots) { const n = node(r); $("tree").appendChild(n); n.open = true; }

// Timeline: one row per process in start order, drawn on a canvas.
function drawTimeline() {
  const c = $("timeline"), ctx = c.getContext("2d");
  const order = R.processes.map((p, i) => i).sort((a, b) => R.processes[a].start - R.processes[b].start);
  const w = c.width = c.clientWidth || 800, rowH = Math.max(1, Math.min(12, 240 / Math.max(1, order.length)));
  c.height = Math.min(4000, Math.ceil(rowH * order.length) + 20);
  const span = Math.max(1, R.duration_us);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, c.height);
  order.forEach((i, row) => {
    const p = R.processes[i], x = p.start / span * w, x2 = Math.max(x + 1, p.end / span * w);
    ctx.fillStyle = p.exit === 0 ? "#4a7fb5" : "#c44";
    ctx.fillRect(x, row * rowH, x2 - x, Math.max(1, rowH - 1));
    if (rowH >= 10) { ctx.fillStyle = "#000"; ctx.font = "10px sans-serif"; ctx.fillText(cmd(p).slice(0, 80), x + 2, row * rowH + rowH - 2); }
  });
  text($("timeline-note"), order.length + " processes over " + ms(R.duration_us));
}
drawTimeline();

// Files: every (process, path, ops) access; filters; at most 500 rows shown.
const LIMIT = 500;
const opBoxes = OPS.map((o, b) => {
  const l = make("label"), box = make("input"); box.type = "checkbox"; box.checked = true; box.id = "filter-op-" + o;
  l.appendChild(box); l.appendChild(document.createTextNode(" " + o)); $("filter-ops").appendChild(l);
  box.addEventListener("change", refilter); return box;
});
let timer = 0;
for (const id of ["filter-prefix", "filter-process"]) $(id).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refilter, 120); });
function refilter() {
  const t0 = performance.now();
  let mask = 0; opBoxes.forEach((b, i) => { if (b.checked) mask |= 1 << i; });
  const prefix = $("filter-prefix").value, who = $("filter-process").value.trim();
  const body = $("files").tBodies[0], frag = document.createDocumentFragment();
  let n = 0;
  R.processes.forEach((p, pi) => {
    if (who && String(p.pid) !== who && p.id !== who) return;
    for (let i = 0; i < p.files.length; i += 2) {
      const ops = p.files[i + 1];
      if (!(ops & mask)) continue;
      const path = R.paths[p.files[i]];
      if (prefix && !path.startsWith(prefix)) continue;
      if (n++ >= LIMIT) continue;
      const tr = make("tr");
      tr.appendChild(make("td", "", path)); tr.appendChild(make("td", "", opsText(ops)));
      tr.appendChild(make("td", "", p.id)); tr.appendChild(make("td", "", cmd(p).slice(0, 100)));
      frag.appendChild(tr);
    }
  });
  body.replaceChildren(frag);
  // The filters live in the address too (#ops=read,write&prefix=/src&process=42): links share a view.
  const off = OPS.filter((o, i) => !(mask & (1 << i)));
  const h = new URLSearchParams();
  if (off.length) h.set("ops", OPS.filter((o, i) => mask & (1 << i)).join(","));
  if (prefix) h.set("prefix", prefix);
  if (who) h.set("process", who);
  history.replaceState(null, "", h.toString() ? "#" + h.toString() : location.pathname);
  text($("file-count"), String(n));
  text($("file-shown"), n > LIMIT ? " (showing the first " + LIMIT + ")" : "");
  document.body.dataset.filterMs = (performance.now() - t0).toFixed(1);  // how long a filter takes
}
{
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.has("ops")) { const on = h.get("ops").split(","); opBoxes.forEach((b, i) => { b.checked = on.includes(OPS[i]); }); }
  if (h.has("prefix")) $("filter-prefix").value = h.get("prefix");
  if (h.has("process")) $("filter-process").value = h.get("process");
}
refilter();
document.body.dataset.renderMs = performance.now().toFixed(0);  // load to first full render
document.body.dataset.ready = "1";
</script></body></html>
)HTML";

}  // namespace

std::string to_html(const NamedRecord& record) { return kHtmlHead + html_data(record) + kHtmlBody; }

}  // namespace bsandbox
