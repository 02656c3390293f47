// export.h: provenance records in the formats dashboards read
// (`bsandbox export --format=FORMAT RECORD...`).
//
// chrome-trace: the Trace Event Format (JSON) that Perfetto and
//   chrome://tracing open. Each record is a process group ("pid" = record
//   index + 1, named by its command); each traced process is a track (a
//   "thread" of that group, named by its argv) with one complete event for
//   its lifetime, parent-to-child flow arrows at each child's start, and its
//   file operations as instant events (args: path, ops). The record keeps
//   no time per file access, so the instants sit at the process's start,
//   in path order.
// prometheus: the text exposition format, one sample per run and metric,
//   labelled by record (its index or name), command (argv[0]'s basename)
//   and backend; never a series per path or per process.
#pragma once

#include <string>
#include <vector>

#include "sandbox/core/provenance.h"

namespace bsandbox {

struct NamedRecord {
  std::string name;  // shown in labels and track names (the file name)
  Record record;
};

std::string to_chrome_trace(const std::vector<NamedRecord>& records);
// One self-contained HTML page (no network access) per record: summary,
// collapsible process tree, timeline (canvas), and a file table filtered by
// op, path prefix and process that renders at most 500 rows at a time, so
// it stays responsive with hundreds of thousands of file operations.
std::string to_html(const NamedRecord& record);
std::string to_prometheus(const std::vector<NamedRecord>& records);

}  // namespace bsandbox
