// bsandboxd.cpp: the agent's command line (agent.h has what it does).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/environment.h"
#include "sandbox/agent/agent.h"
#include "sandbox/agent/client.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/base/text.h"

namespace {

const char kUsage[] =
    "usage: bsandboxd [options]\n"
    "Runs bsandbox jobs for local users with the eBPF tracer (as root).\n"
    "  --socket PATH        where to listen (default $BSANDBOX_AGENT, else /run/bsandbox/agent.sock)\n"
    "  --group NAME         the socket's group: its members may submit jobs\n"
    "  --mode OCTAL         the socket's mode (default 0660; 0666 lets every user in)\n"
    "  --max-jobs N         jobs running at once (default 4); more wait\n"
    "  --max-queued N       jobs waiting (default 64); more are refused\n"
    "  --max-jobs-per-user N    jobs of one user running at once (default: half of --max-jobs, rounded up)\n"
    "  --max-queued-per-user N  jobs of one user waiting (default: a quarter of --max-queued, at least 1)\n"
    "  --time-limit SECS    wall time per job, 0 for none (default 3600)\n"
    "  --max-processes N    processes per job where cgroups can limit it, 0 for none (default 4096)\n"
    "  --buffer-size SIZE   each job's ring buffer, a power of two (default 16M)\n"
    "  --drain-timeout SECS on SIGTERM, how long running jobs may finish (default 30)\n"
    "  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics (loopback only)\n"
    "  --bpf-stats          have the kernel time each BPF program (for /metrics; costs every run)\n"
    "  --max-record SIZE    largest job result (its record) the agent passes on (default 256M, at most 1G)\n"
    "  --max-connections N  client connections open at once, all users (default 256)\n"
    "  --max-connections-per-user N  of one user (default 32)\n"
    "  --max-startups-per-user N     of one user, whose request has not all arrived (default 16)\n"
    "  --request-timeout SECS  a request (and a /metrics exchange) must arrive within (default 10)\n"
    "  --send-timeout SECS  a client must take each reply within (default 60)\n"
    "  --metrics-connections N  /metrics exchanges at once (default 8)\n"
    "  --foreground         do not go to the background (logs go to stderr either way)\n"
    "  -v, --verbose        log every request\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "bsandboxd: error: %s\n", message.c_str());
  return 2;
}

}  // namespace

// One branch per option, in the order of the usage text: longer than ~80
// lines, kept flat on purpose (each option reads as its check and message).
int main(int argc, char** argv) {
  bsandbox::AgentOptions o;
  o.socket = bsandbox::default_agent_socket();
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto need = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    auto number = [&](unsigned& out) -> bool {
      if (!need()) return false;
      char* end = nullptr;
      unsigned long v = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end || v > 1000000000UL) return false;
      out = static_cast<unsigned>(v);
      return true;
    };
    auto positive = [&](unsigned& out) { return number(out) && out > 0; };
    bsandbox::AgentLimits& limits = o.limits;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--foreground") {
      o.foreground = true;
    } else if (a == "-v" || a == "--verbose") {
      o.verbose = true;
    } else if (a == "--socket") {
      if (!need() || value.empty() || value[0] != '/') return usage_error("--socket needs an absolute path");
      o.socket = value;
    } else if (a == "--group") {
      if (!need() || value.empty()) return usage_error("--group needs a group name");
      o.group = value;
    } else if (a == "--mode") {
      if (!need()) return usage_error("--mode needs an octal mode");
      char* end = nullptr;
      unsigned long m = std::strtoul(value.c_str(), &end, 8);
      if (value.empty() || *end || m > 0777) return usage_error("--mode needs an octal mode like 0660, not '" + value + "'");
      o.mode = static_cast<unsigned>(m);
    } else if (a == "--max-jobs") {
      if (!number(o.max_jobs) || o.max_jobs == 0) return usage_error("--max-jobs needs a number of at least 1");
    } else if (a == "--max-queued") {
      if (!number(o.max_queued)) return usage_error("--max-queued needs a number");
    } else if (a == "--time-limit") {
      if (!number(o.time_limit_s)) return usage_error("--time-limit needs a number of seconds");
    } else if (a == "--max-processes") {
      if (!number(o.max_processes)) return usage_error("--max-processes needs a number");
    } else if (a == "--drain-timeout") {
      if (!number(o.drain_timeout_s)) return usage_error("--drain-timeout needs a number of seconds");
    } else if (a == "--max-jobs-per-user") {
      if (!positive(limits.max_jobs_per_user)) return usage_error("--max-jobs-per-user needs a number of at least 1");
    } else if (a == "--max-queued-per-user") {
      if (!positive(limits.max_queued_per_user)) return usage_error("--max-queued-per-user needs a number of at least 1");
    } else if (a == "--max-connections") {
      if (!positive(limits.max_connections)) return usage_error("--max-connections needs a number of at least 1");
    } else if (a == "--max-connections-per-user") {
      if (!positive(limits.max_connections_per_user))
        return usage_error("--max-connections-per-user needs a number of at least 1");
    } else if (a == "--max-startups-per-user") {
      if (!positive(limits.max_startups_per_user))
        return usage_error("--max-startups-per-user needs a number of at least 1");
    } else if (a == "--request-timeout") {
      if (!positive(limits.request_timeout_s)) return usage_error("--request-timeout needs a number of seconds, at least 1");
    } else if (a == "--send-timeout") {
      if (!positive(limits.send_timeout_s)) return usage_error("--send-timeout needs a number of seconds, at least 1");
    } else if (a == "--metrics-connections") {
      if (!positive(limits.metrics_connections)) return usage_error("--metrics-connections needs a number of at least 1");
    } else if (a == "--max-record") {
      if (!need()) return usage_error("--max-record needs a size");
      auto size = bsandbox::parse_size(value);
      if (!size || *size < 4096 || *size > bsandbox::kMaxReplyBytes)
        return usage_error("--max-record must be a size from 4K to 1G, not '" + value + "'");
      limits.max_record_bytes = *size;
    } else if (a == "--bpf-stats") {
      o.bpf_stats = true;
    } else if (a == "--metrics") {
      if (!need() || value.empty()) return usage_error("--metrics needs HOST:PORT (a loopback address)");
      o.metrics = value;
    } else if (a == "--buffer-size") {
      if (!need()) return usage_error("--buffer-size needs a size");
      auto size = bsandbox::parse_size(value);
      if (!size || *size < 4096 || (*size & (*size - 1)) != 0)
        return usage_error("--buffer-size must be a power of two of at least 4K, not '" + value + "'");
      o.ring_bytes = *size;
    } else {
      return usage_error("unknown option '" + args[i] + "' (see bsandboxd --help)");
    }
  }
  return bsandbox::run_agent(o);
}
