// options.cpp: a small hand-written parser: `--name value` and
// `--name=value`, and the command after `--` or after the first word that is
// not an option (as env(1) does), so `bsandbox exec make -j2` works too.
#include "cli/options.h"
#include "cli/environment.h"

#include "sandbox/agent/client.h"
#include "sandbox/cache/cache.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace bsandbox::cli {

const char kUsage[] =
    "usage: bsandbox exec [options] [--] COMMAND [ARG...]\n"
    "       bsandbox show RECORD\n"
    "       bsandbox init [DIR] | log | diff ENTRY | undo [ENTRY] [--force]\n"
    "       bsandbox recover [--abort] | gc [--keep N] [--max-size SIZE]\n"
    "         (each also takes --trust-owner)\n"
    "       bsandbox cache stats|gc|verify|clear [--cache=DIR] [--max-size SIZE]\n"
    "       bsandbox wrap COMMAND [ARG...]   (also as bsandbox-wrap)\n"
    "       bsandbox agent status [--agent=SOCKET]\n"
    "       bsandbox export --format=chrome-trace|prometheus RECORD... [-o FILE]\n"
    "       bsandbox --help | --version\n"
    "\n"
    "exec runs COMMAND and records which of its processes touched which file.\n"
    "  --json PATH         write the provenance record as JSON (bsandbox.provenance/v1)\n"
    "  --record PATH       write it in binary form (protobuf), for `bsandbox show`\n"
    "  --backend NAME      auto, ebpf, inproc or ptrace (auto: ebpf if it loads; not\n"
    "                      root: a running bsandboxd if reachable; else ptrace);\n"
    "                      inproc: ptrace with file syscalls recorded inside the\n"
    "                      programs by a preloaded runtime (x86_64)\n"
    "  --agent[=SOCKET]    run through bsandboxd (default $BSANDBOX_AGENT, else\n"
    "                      /run/bsandbox/agent.sock): eBPF for users who are not root\n"
    "  --strict            exit 125 if the record is incomplete (events lost)\n"
    "  --buffer-size SIZE  kernel ring buffer, a power of two (default 16M)\n"
    "  -v, --verbose       say what bsandbox does\n"
    "  -q, --quiet         do not print the summary line\n"
    "  --no-journal        inside a project, only trace (do not journal the run)\n"
    "  --no-rollback       do not roll back this command's previous run first\n"
    "  --force             roll back even paths changed since (keeping them)\n"
    "  --contain           change nothing outside the project: writes there fail,\n"
    "                      but in /tmp, /var/tmp and /dev/shm, which are the run's\n"
    "                      own, empty at the start and discarded at the end\n"
    "  --trust-owner       work in a project another user owns (root: as that user)\n"
    "  --cache[=DIR]       reuse the result of an earlier identical run whose inputs\n"
    "                      are unchanged (DIR: $BSANDBOX_CACHE, else ~/.cache/bsandbox)\n"
    "  --cache-root DIR    outputs must lie under DIR (default: the project, else .)\n"
    "  --cache-failures    cache runs that exit non-zero too\n"
    "  --cache-unkeyed-listing DIR  do not key on which files DIR holds (repeatable)\n"
    "  --cache-key FILE    a secret shared by the users of a cache others can write:\n"
    "                      entries are signed with it, unsigned ones ignored\n"
    "  --cache-allow-network  cache runs that connect to sockets they did not make\n"
    "  --cache-remote URL  share results through a server of Bazel's HTTP cache\n"
    "                      protocol (nginx WebDAV, bazel-remote): a local miss asks\n"
    "                      it, a stored run is uploaded ($BSANDBOX_CACHE_REMOTE)\n"
    "  --cache-remote-upload yes|no  no: only download (untrusted jobs)\n"
    "  --cache-remote-prefetch yes|no  no: do not fetch, as the build starts,\n"
    "                      what the last build of the same command used\n"
    "  --cache-remote-key FILE  sign entries with this secret; ignore unsigned ones\n"
    "  --cache-remote-credentials FILE  \"Bearer TOKEN\" or \"USER:PASSWORD\"\n"
    "                      (or $BSANDBOX_CACHE_REMOTE_TOKEN)\n"
    "                      (what comes back is not keyed: for answers that never change)\n"
    "  --explain           say why the cache missed\n"
    "exec exits with COMMAND's exit code (128+N if killed by signal N), 127 if\n"
    "COMMAND is not found, 126 if it cannot run, 125 if bsandbox itself fails.\n"
    "\n"
    "show prints a record made with --record: processes by parentage with their\n"
    "files, and a summary.\n"
    "\n"
    "init makes DIR (default: .) a project: exec inside it journals each run's\n"
    "writes, keeping what they overwrite, and rolls a command's previous run back\n"
    "before running it again. log lists the journal, newest first; diff shows what\n"
    "an entry changed; undo rolls one back (default: the newest run in effect); recover\n"
    "finishes or (--abort) rolls back work a crash interrupted; gc drops old\n"
    "entries (default: keeps 100) and the content only they kept. A project is its\n"
    "owner's: bsandbox refuses another user's project unless --trust-owner is given;\n"
    "root then works there as the owner.\n"
    "\n"
    "cache stats shows the cache's size and counters; gc trims it to --max-size\n"
    "(default $BSANDBOX_CACHE_SIZE, else 10G), least recently used first; verify\n"
    "reads every object and removes damaged ones; clear empties it.\n"
    "wrap runs COMMAND through the cache, quietly: use it as CMAKE_<LANG>_COMPILER_\n"
    "LAUNCHER, RUSTC_WRAPPER, or make SHELL=bsandbox-wrap (then each recipe line runs\n"
    "in $BSANDBOX_SHELL, default /bin/sh). Settings come from the environment:\n"
    "BSANDBOX_CACHE, BSANDBOX_CACHE_ROOT, BSANDBOX_CACHE_UNKEYED_LISTINGS (DIR:DIR...),\n"
    "BSANDBOX_BACKEND, BSANDBOX_CACHE_ALLOW_NETWORK=1, BSANDBOX_EXPLAIN=1,\n"
    "BSANDBOX_VERBOSE=1.\n"
    "\n"
    "agent status shows bsandboxd's jobs (yours; root sees all), events per second,\n"
    "ring buffer fill, drops and the remote cache traffic its clients reported.\n"
    "\n"
    "export turns records made with --record into a Perfetto / chrome://tracing\n"
    "timeline (chrome-trace) or Prometheus text metrics (prometheus).\n";

namespace {

// exec's options that take no value, and the field each sets.
const std::pair<const char*, bool ExecOptions::*> kExecFlags[] = {
    {"--no-journal", &ExecOptions::no_journal},   {"--no-rollback", &ExecOptions::no_rollback},
    {"--force", &ExecOptions::force},             {"--contain", &ExecOptions::contain},
    {"--trust-owner", &ExecOptions::trust_owner}, {"--strict", &ExecOptions::strict},
    {"--cache-failures", &ExecOptions::cache_failures}, {"--cache-allow-network", &ExecOptions::cache_allow_network},
    {"--explain", &ExecOptions::explain},         {"-v", &ExecOptions::verbose},
    {"--verbose", &ExecOptions::verbose},         {"-q", &ExecOptions::quiet},
    {"--quiet", &ExecOptions::quiet},
};
// exec's options that take a value ("--name VALUE" or "--name=VALUE").
const char* const kExecValued[] = {"--json", "--record", "--backend", "--buffer-size", "--cache-root",
                                   "--cache-unkeyed-listing", "--cache-key", "--cache-remote",
                                   "--cache-remote-upload", "--cache-remote-prefetch", "--cache-remote-key",
                                   "--cache-remote-credentials"};

Result<void> set_exec_value(ExecOptions& o, const std::string& name, const std::string& v) {
  if (name == "--json") {
    o.json_path = v;
  } else if (name == "--record") {
    o.record_path = v;
  } else if (name == "--backend") {
    if (v != "auto" && v != "ebpf" && v != "ptrace" && v != "inproc")
      return fail("unknown backend '" + v + "' (expected auto, ebpf, inproc or ptrace)");
    o.backend = v;
  } else if (name == "--buffer-size") {
    auto size = parse_size(v);
    if (!size) return tl::unexpected(size.error());
    if (*size < 4096 || (*size & (*size - 1)) != 0)
      return fail("--buffer-size must be a power of two of at least 4K, not '" + v + "'");
    o.buffer_bytes = *size;
  } else if (name == "--cache-root") {
    o.cache_root = v;
  } else if (name == "--cache-unkeyed-listing") {
    o.unkeyed_listings.push_back(v);
  } else if (name == "--cache-key") {
    o.cache_key_file = v;
  } else if (name == "--cache-remote") {
    if (v.empty()) return fail("--cache-remote needs a URL");
    o.cache_remote = v;
  } else if (name == "--cache-remote-upload" || name == "--cache-remote-prefetch") {
    if (v != "yes" && v != "no") return fail(name + " is yes or no, not '" + v + "'");
    (name == "--cache-remote-upload" ? o.cache_remote_upload : o.cache_remote_prefetch) = v == "yes";
  } else if (name == "--cache-remote-key") {
    o.cache_remote_key_file = v;
  } else if (name == "--cache-remote-credentials") {
    o.cache_remote_credentials_file = v;
  }
  return {};
}

// What the options say together, once all are read.
Result<void> check_exec(ExecOptions& o) {
  if (o.argv.empty()) return fail("exec needs a command (usage: bsandbox exec [options] -- COMMAND...)");
  if (o.cache_key_file.empty() && o.cache_dir)
    if (const char* k = std::getenv("BSANDBOX_CACHE_KEY"); k && *k) o.cache_key_file = k;
  if (o.agent && (o.backend == "ptrace" || o.backend == "inproc"))
    return fail("--agent runs the eBPF backend in bsandboxd; it cannot be --backend=" + o.backend);
  if (o.cache_dir) return remote_defaults(o);
  const char* cache_only = o.cache_root                ? "--cache-root"
                           : o.cache_failures          ? "--cache-failures"
                           : o.explain                 ? "--explain"
                           : o.cache_allow_network     ? "--cache-allow-network"
                           : !o.cache_key_file.empty() ? "--cache-key"
                           : !o.unkeyed_listings.empty() ? "--cache-unkeyed-listing"
                           : !o.cache_remote.empty()     ? "--cache-remote"
                           : !o.cache_remote_upload      ? "--cache-remote-upload"
                           : !o.cache_remote_prefetch    ? "--cache-remote-prefetch"
                           : !o.cache_remote_key_file.empty() ? "--cache-remote-key"
                           : !o.cache_remote_credentials_file.empty() ? "--cache-remote-credentials"
                                                         : nullptr;
  if (cache_only) return fail(std::string(cache_only) + " applies to cached runs (add --cache)");
  return {};
}

Result<Command> parse_exec(const std::vector<std::string>& args, size_t i) {
  ExecOptions o;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;
    auto flag = std::find_if(std::begin(kExecFlags), std::end(kExecFlags), [&](const auto& f) { return a == f.first; });
    if (flag != std::end(kExecFlags)) {
      o.*(flag->second) = true;
      continue;
    }
    // --agent and --cache: a default without a value, another with "=".
    if (a == "--agent" || a == "--cache") {
      (a == "--agent" ? o.agent : o.cache_dir) = a == "--agent" ? default_agent_socket() : default_cache_dir();
      continue;
    }
    if (a.starts_with("--agent=") || a.starts_with("--cache=")) {
      std::string v = a.substr(8);
      if (v.empty()) return fail(a + " needs " + (a[2] == 'a' ? "the agent's socket" : "a directory"));
      (a[2] == 'a' ? o.agent : o.cache_dir) = v;
      continue;
    }
    auto valued = std::find_if(std::begin(kExecValued), std::end(kExecValued), [&](const char* n) {
      return a == n || a.starts_with(std::string(n) + "=");
    });
    if (valued == std::end(kExecValued)) return fail("unknown option '" + a + "' for exec (see bsandbox --help)");
    std::string name = *valued;
    std::string v;
    if (a.size() > name.size()) {
      v = a.substr(name.size() + 1);
    } else if (i + 1 < args.size()) {
      v = args[++i];
    } else {
      return fail("option " + name + " needs a value");
    }
    if (auto r = set_exec_value(o, name, v); !r) return tl::unexpected(r.error());
  }
  o.argv.assign(args.begin() + static_cast<long>(std::min(i, args.size())), args.end());
  if (auto r = check_exec(o); !r) return tl::unexpected(r.error());
  return ExecCommand{std::move(o)};
}

Result<Command> parse_cache(const std::vector<std::string>& args) {
  const char* usage = "usage: bsandbox cache stats|gc|verify|clear [--cache=DIR] [--max-size SIZE]";
  CacheCommand c;
  c.dir = default_cache_dir();
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.starts_with("--cache=")) {
      c.dir = a.substr(8);
    } else if (a == "--cache" && i + 1 < args.size()) {
      c.dir = args[++i];
    } else if (a == "--cache-key" || a.starts_with("--cache-key=")) {
      if (a.size() > 11) c.key_file = a.substr(12);
      else if (i + 1 < args.size()) c.key_file = args[++i];
      else return fail("option --cache-key needs a file");
    } else if (a == "--max-size" || a.starts_with("--max-size=")) {
      std::string v;
      if (a.size() > 10) v = a.substr(11);
      else if (i + 1 < args.size()) v = args[++i];
      else return fail("option --max-size needs a value");
      auto size = parse_size(v);
      if (!size) return tl::unexpected(size.error());
      c.max_bytes = *size;
    } else if (a.size() > 1 && a[0] == '-') {
      return fail("unknown option '" + a + "' for cache (" + usage + ")");
    } else if (c.action.empty()) {
      c.action = a;
    } else {
      return fail(usage);
    }
  }
  if (c.action != "stats" && c.action != "gc" && c.action != "verify" && c.action != "clear")
    return fail(c.action.empty() ? std::string(usage) : "unknown cache action '" + c.action + "' (" + usage + ")");
  if (c.max_bytes && c.action != "gc") return fail("--max-size applies to cache gc");
  if (c.dir.empty()) return fail("--cache= needs a directory");
  if (c.key_file.empty())
    if (const char* k = std::getenv("BSANDBOX_CACHE_KEY"); k && *k) c.key_file = k;
  return c;
}

Result<uint64_t> parse_entry(const std::string& text) {
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string::npos || std::stoull(text) == 0)
    return fail("'" + text + "' is not a journal entry number (see bsandbox log)");
  return std::stoull(text);
}

// The subcommands of the journal: a few flags and at most one operand each.
Result<Command> parse_journal(const std::string& sub, const std::vector<std::string>& args) {
  std::vector<std::string> operands;
  bool force = false, abort = false, trust = false;
  std::optional<uint64_t> keep, max_bytes;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& name) -> Result<std::string> {
      if (a.size() > name.size() && a[name.size()] == '=') return a.substr(name.size() + 1);
      if (i + 1 >= args.size()) return fail("option " + name + " needs a value");
      return args[++i];
    };
    if (a == "--trust-owner") {
      trust = true;
    } else if (a == "--force" && sub == "undo") {
      force = true;
    } else if (a == "--abort" && sub == "recover") {
      abort = true;
    } else if (sub == "gc" && (a == "--keep" || a.starts_with("--keep="))) {
      auto v = value("--keep");
      if (!v) return tl::unexpected(v.error());
      if (v->empty() || v->find_first_not_of("0123456789") != std::string::npos || v->size() > 19)
        return fail("--keep needs a number of entries, not '" + *v + "'");
      keep = std::stoull(*v);
    } else if (sub == "gc" && (a == "--max-size" || a.starts_with("--max-size="))) {
      auto v = value("--max-size");
      if (!v) return tl::unexpected(v.error());
      auto size = parse_size(*v);
      if (!size) return tl::unexpected(size.error());
      max_bytes = *size;
    } else if (a.size() > 1 && a[0] == '-') {
      return fail("unknown option '" + a + "' for " + sub + " (see bsandbox --help)");
    } else {
      operands.push_back(a);
    }
  }
  size_t most = sub == "init" || sub == "diff" || sub == "undo" ? 1 : 0;
  if (operands.size() > most || (sub == "diff" && operands.empty()))
    return fail(std::string("usage: bsandbox ") +
                (sub == "init" ? "init [DIR]" : sub == "diff" ? "diff ENTRY" : sub == "undo" ? "undo [ENTRY] [--force]"
                 : sub == "recover" ? "recover [--abort]" : sub == "gc" ? "gc [--keep N] [--max-size SIZE]" : "log"));
  if (sub == "init") return InitCommand{operands.empty() ? "." : operands[0], trust};
  if (sub == "log") return LogCommand{trust};
  if (sub == "recover") return RecoverCommand{abort, trust};
  if (sub == "gc") return GcCommand{keep, max_bytes, trust};
  uint64_t entry = 0;
  if (!operands.empty()) {
    auto n = parse_entry(operands[0]);
    if (!n) return tl::unexpected(n.error());
    entry = *n;
  }
  if (sub == "diff") return DiffCommand{entry, trust};
  return UndoCommand{entry, force, trust};
}

}  // namespace

Result<Command> parse(const std::vector<std::string>& args) {
  if (args.empty()) return fail("no subcommand (see bsandbox --help)");
  const std::string& sub = args[0];
  if (sub == "-h" || sub == "--help" || sub == "help") return HelpCommand{};
  if (sub == "--version" || sub == "version") return VersionCommand{};
  if (sub == "exec") return parse_exec(args, 1);
  if (sub == "show") {
    if (args.size() != 2 || args[1].empty() || (args[1][0] == '-' && args[1] != "-"))
      return fail("usage: bsandbox show RECORD");
    return ShowCommand{args[1]};
  }
  if (sub == "init" || sub == "log" || sub == "diff" || sub == "undo" || sub == "recover" || sub == "gc")
    return parse_journal(sub, args);
  if (sub == "cache") return parse_cache(args);
  if (sub == "export") {
    const char* usage = "usage: bsandbox export --format=chrome-trace|prometheus|html RECORD... [-o FILE]";
    ExportCommand c;
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.starts_with("--format=")) c.format = a.substr(9);
      else if (a == "--format" && i + 1 < args.size()) c.format = args[++i];
      else if ((a == "-o" || a == "--output") && i + 1 < args.size()) c.output = args[++i];
      else if (a.starts_with("--output=")) c.output = a.substr(9);
      else if (a.starts_with("-") && a != "-") return fail("unknown option '" + a + "' for export (" + usage + ")");
      else c.records.push_back(a);
    }
    if (c.format.empty()) return fail(std::string("export needs --format (") + usage + ")");
    if (c.format != "chrome-trace" && c.format != "prometheus" && c.format != "html")
      return fail("unknown export format '" + c.format + "' (expected chrome-trace, prometheus or html)");
    if (c.format == "html" && c.records.size() > 1) return fail("--format=html takes one record");
    if (c.records.empty()) return fail(std::string("export needs at least one record (") + usage + ")");
    return c;
  }
  if (sub == "agent") {
    const char* usage = "usage: bsandbox agent status [--agent=SOCKET]";
    if (args.size() < 2 || args[1] != "status") return fail(usage);
    AgentCommand c{default_agent_socket()};
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i].starts_with("--agent=") && args[i].size() > 8) c.socket = args[i].substr(8);
      else if (args[i] == "--agent" && i + 1 < args.size()) c.socket = args[++i];
      else return fail(usage);
    }
    return c;
  }
  if (sub == "wrap") {
    if (args.size() < 2) return fail("usage: bsandbox wrap COMMAND [ARG...]");
    return WrapCommand{{args.begin() + 1, args.end()}};
  }
  return fail("unknown subcommand '" + sub + "' (see bsandbox --help)");
}

}  // namespace bsandbox::cli
