// exec_command.cpp: the steps of `bsandbox exec`, each failing with one line.
#include "cli/exec_command.h"

#include "cli/environment.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

#include "sandbox/agent/client.h"
#include "sandbox/storage/atomic_file.h"
#include "sandbox/cache/cache.h"
#include "sandbox/cache/cache.pb.h"
#include "sandbox/cache/save.h"
#include "sandbox/remote/remote_cache.h"
#include "sandbox/remote/spool.h"
#include "sandbox/remote/uploader.h"
#include "sandbox/storage/fs.h"
#include "sandbox/cache/output_capture.h"
#include "sandbox/core/path.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/journal/journaled_run.h"
#include "sandbox/core/process_tree.h"
#include "sandbox/journal/project.h"
#include "sandbox/core/provenance.h"
#include "sandbox/backend/ptrace/ptrace_backend.h"
#include "sandbox/export/record_printer.h"
#include "sandbox/run/supervisor.h"
#include "sandbox/run/tracer_service.h"
#include "sandbox/run/run_result.h"
#include "sandbox/run/traced_run.h"

namespace bsandbox {
namespace {

std::string current_dir() {
  std::string buf(4096, '\0');
  for (;;) {
    if (::getcwd(buf.data(), buf.size())) return std::string(buf.c_str());
    if (errno != ERANGE) return "";
    buf.resize(buf.size() * 2);
  }
}

// The in-process runtime library: $BSANDBOX_INPROC_RUNTIME, else the one
// built beside this bsandbox (a build tree), else where meson installs it.
std::string inproc_runtime() {
  if (const char* env = std::getenv("BSANDBOX_INPROC_RUNTIME"); env && *env) return env;
  if (auto self = read_link("/proc/self/exe")) {
    std::string dir = self->substr(0, self->rfind('/'));
    std::string built = dir + "/../sandbox/backend/inproc/runtime/libbsandbox-inproc.so";
    if (::access(built.c_str(), R_OK) == 0) {
      char real[PATH_MAX];
      if (::realpath(built.c_str(), real)) return real;
    }
  }
  return BSANDBOX_LIBDIR "/bsandbox/libbsandbox-inproc.so";
}

// auto: eBPF when it loads, else ptrace (which needs no privileges). The
// reason eBPF was passed over is shown with -v.
Result<std::unique_ptr<EventSource>> open_backend(const ExecOptions& o) {
  if (o.backend != "auto" && o.backend != "ebpf" && o.backend != "ptrace" && o.backend != "inproc")
    return fail("unknown backend '" + o.backend + "' (expected auto, ebpf, inproc or ptrace)");
  if (o.backend == "ptrace") return open_ptrace_backend();
  if (o.backend == "inproc") return open_inproc_backend(inproc_runtime());
  EbpfOptions eo;
  eo.ring_bytes = o.buffer_bytes;
  eo.verbose = o.verbose && o.backend == "ebpf";
  auto ebpf = open_ebpf_backend(eo);
  if (ebpf || o.backend == "ebpf") return ebpf;
  if (o.verbose) say("eBPF unavailable, using ptrace: " + ebpf.error().message);
  return open_ptrace_backend();
}

// Peak RSS includes the ring buffer, which is mapped twice (so records can
// wrap); the anonymous memory (heap) is what the supervisor itself holds.
std::string resource_report() {
  rusage self{};
  ::getrusage(RUSAGE_SELF, &self);
  std::string anon = "?";
  if (auto status = read_file("/proc/self/status")) {
    size_t at = status->find("RssAnon:");
    if (at != std::string::npos) anon = std::to_string(std::stoul(status->substr(at + 8)) / 1024);
  }
  char cpu[64];
  std::snprintf(cpu, sizeof cpu, "%.2f s user + %.2f s system",
                self.ru_utime.tv_sec + self.ru_utime.tv_usec / 1e6,
                self.ru_stime.tv_sec + self.ru_stime.tv_usec / 1e6);
  return "supervisor: peak RSS " + std::to_string(self.ru_maxrss / 1024) + " MiB (heap " + anon +
         " MiB), CPU " + cpu;
}

// Writes the records the options ask for; returns the exit code to use.
int write_records(const Record& rec, std::optional<AtomicFile>& json_out,
                  std::optional<AtomicFile>& record_out, int code) {
  if (json_out) {
    if (auto w = json_out->commit(to_json(rec)); !w) code = error_exit(w.error().message);
  }
  if (record_out) {
    if (auto w = record_out->commit(to_protobuf(rec)); !w) code = error_exit(w.error().message);
  }
  return code;
}

// Commits a journaled run (or a restored cache hit) and says what happened.
int commit_journal(JournaledRun& journal, const Record& rec, const ExecOptions& o, int code) {
  auto entry = journal.finish(rec);
  if (!entry) {
    say("error: " + entry.error().message);
    return kExitOwnError;
  }
  auto listed = [](const std::vector<std::string>& paths) {
    std::string list;
    for (size_t i = 0; i < paths.size() && i < 3; ++i) list += (i ? ", " : "") + printable(paths[i]);
    return paths.size() > 3 ? list + ", ..." : list;
  };
  if (!entry->outside_writes.empty())
    say("warning: " + std::to_string(entry->outside_writes.size()) + " paths written outside " +
        journal.project().root + " are not journaled and cannot be rolled back: " +
        listed(entry->outside_writes) +
        (o.contain ? "" : " (with --contain such writes fail, or go to the run's own /tmp, /var/tmp or /dev/shm "
                          "and are discarded)"));
  if (!entry->discarded_writes.empty())
    say("warning: " + std::to_string(entry->discarded_writes.size()) +
        " paths written in the run's own /tmp, /var/tmp or /dev/shm (--contain) were discarded with it: " +
        listed(entry->discarded_writes));
  if (!o.quiet)
    say("journaled as " + describe(*entry) + ": " + std::to_string(entry->changes.size()) + " changes");
  return code;
}

// A cache hit: the outputs are already restored; replay what the command
// printed and build the record from the one the stored run made, its paths
// under the root it ran in moved to this one (a hit from another checkout).
Record hit_record(const Cache::Hit& hit, const ExecOptions& o, const std::string& cwd, const std::string& root,
                  int64_t start) {
  Record rec;
  if (!hit.record.empty()) {
    if (auto stored = from_protobuf(hit.record, "cached record")) rec = std::move(*stored);
  }
  if (!hit.root.empty() && hit.root != root) {
    auto moved = [&](std::string& p) {
      if (!path::is_within(p, hit.root)) return;
      size_t cut = hit.root == "/" ? 1 : std::min(p.size(), hit.root.size() + 1);
      p = path::resolve(root, p.substr(cut));
    };
    for (auto& proc : rec.processes) {
      moved(proc.cwd);
      if (proc.exe) moved(*proc.exe);
      for (auto& f : proc.files) moved(f.path);
      std::sort(proc.files.begin(), proc.files.end(),
                [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
    }
  }
  // The stored run's agent stays: the processes are the ones it traced.
  set_facts(rec, RunFacts{o.argv, cwd, start, Clocks::wall_now(), hit.exit_code, "hit", rec.agent});
  return rec;
}

// The command on one line, cut to a length that leaves room for the reason.
std::string shown_command(const std::vector<std::string>& argv) {
  std::string line = command_line(argv);
  return line.size() <= 100 ? line : line.substr(0, 97) + "...";
}

// The variable by which bsandbox exec tells the tree that a build's
// uploader (uploader.h) drains the spool of its cache.
constexpr const char* kSpoolEnv = "BSANDBOX_UPLOAD_SPOOL";

// Whether a build's uploader drains the spool of this cache and server.
bool uploader_spools_for(const Cache& cache, const RemoteOptions& remote) {
  const char* v = std::getenv(kSpoolEnv);
  return v && *v && v == UploadSpool::path_of(cache, remote);
}

// Uploads a stored entry to the remote cache. A wrapper (one command of a
// build) does it in a child of its own and exits at once: the build goes
// on while the blobs travel (the child keeps only descriptors bsandbox
// opened, all close-on-exec, and /dev/null for 0-2: not make's
// jobserver or output pipes, which would make make wait for it). A traced
// build's supervisor waits for it like any process of the tree, so a
// build's uploads are done when bsandbox exec returns.
void upload(RemoteCache& remote, const pb::CacheEntry& stored, bool in_background) {
  auto upload_now = [&](RemoteCache& r) {
    std::vector<std::string> warnings;
    r.upload(stored, &warnings);
    for (const auto& w : warnings) say("warning: cache: " + w);
  };
  if (!in_background) return upload_now(remote);
  pid_t pid = ::fork();
  if (pid < 0) return upload_now(remote);
  if (pid > 0) return;
  // Nothing of the build's: not its stderr either (ninja and cargo read a
  // compiler's stderr to its end, and would wait for the upload); a failure
  // is counted (cache stats) and left alone by the build's other commands.
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
  for (int fd = 3; fd < 1024; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) ::close(fd);
  }
  // A client of its own: the parent's connections are the parent's.
  RemoteOptions unseen = remote.options();
  unseen.unseen = true;
  if (auto fresh = RemoteCache::open(unseen, remote.local())) {
    std::vector<std::string> ignored;
    fresh->upload(stored, &ignored);
  }
  ::_exit(0);
}

void store_result(Cache& cache, RemoteCache* remote, const CacheRequest& request, const TracedRun& run,
                  const OutputCapture& capture, const ExecOptions& o) {
  const Record& rec = run.record;
  pb::CacheEntry stored;
  auto saved = cache.save(request, rec, std::cref(run.first_accesses), capture.out_file(), capture.err_file(),
                          rec.end_ns - rec.start_ns, &stored);
  if (!saved) say("warning: cache: not stored: " + saved.error().message);
  else if (!saved->empty() && (o.verbose || o.explain)) say("not cached: " + shown_command(o.argv) + ": " + *saved);
  else if (saved->empty() && o.verbose) say("cached the result");
  if (saved && saved->empty() && remote && remote->options().upload) {
    // A build's uploader takes it from the spool; else it goes now.
    if (uploader_spools_for(cache, remote->options())) {
      auto spool = UploadSpool::open(cache, remote->options());
      Digest strong = strong_key_of(stored);
      if (spool && spool->add(request.weak, strong)) {
        (void)spool->add_used(request.weak, strong);
        return;
      }
    }
    upload(*remote, stored, o.wrapper);
  }
}

// A wrapper inside a traced run (tracer_service.h): run the command as a
// plain child, which the ancestor already traces, and ask it for the record.
int run_in_ancestor_tracer(const ExecOptions& o, const std::string& cwd, Cache& cache, RemoteCache* remote,
                           const CacheRequest& request, const std::string& service, int64_t start_wall) {
  auto capture = OutputCapture::start();
  if (!capture) return error_exit("capturing the command's output: " + capture.error().message);
  hand_down_diagnostics();
  std::vector<char*> args;
  for (const auto& a : o.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int from[3] = {request.stdin_replacement.get(), capture->child_out(), capture->child_err()};
  std::string not_found = "bsandbox: " + o.argv[0] + ": command not found\n";
  pid_t pid = ::fork();
  if (pid < 0) return error_exit(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    for (int target = 0; target < 3; ++target)
      if (from[target] >= 0) ::dup2(from[target], target);
    ::execvp(args[0], args.data());
    int e = errno;
    if (e == ENOENT) (void)!::write(2, not_found.data(), not_found.size());
    _exit(e == ENOENT ? 127 : 126);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  capture->finish();
  RunFacts facts{o.argv, cwd, start_wall, Clocks::wall_now(), exit_code_from_wait_status(status), "miss", ""};
  auto connection = connect_tracer(service);
  auto sub = connection ? request_subtree(connection->get(), pid, std::move(facts))
                        : Result<TracedRun>(tl::unexpected(connection.error()));
  if (!sub) say("warning: cache: not stored: " + sub.error().message);
  else store_result(cache, remote, request, *sub, *capture, o);
  return exit_code_from_wait_status(status);
}

// The cache lookup: on a hit the outputs are restored and what the command
// printed is replayed; the hit is returned for its record and exit code.
std::optional<Cache::Hit> look_up(Cache& cache, RemoteCache* remote, CacheRequest& request, const ExecOptions& o) {
  std::string why;
  if (!request.uncacheable.empty()) {
    cache.count(Cache::Event::kUncacheable);
    why = "the command cannot be cached: " + request.uncacheable;
  } else {
    std::vector<std::string> warnings;
    auto hit = cache.fetch(request, &why, &warnings);
    // A local miss asks the remote; what it finds is now local.
    if (hit && !*hit && remote) {
      std::string remote_why;
      if (remote->fetch(request, &remote_why, &warnings)) hit = cache.fetch(request, &why, &warnings);
      else why += "; " + remote_why;
    }
    for (const auto& w : warnings) say("warning: cache: " + w);
    if (!hit) {
      say("warning: cache: " + hit.error().message + "; running the command");
    } else if (*hit) {
      ::signal(SIGPIPE, SIG_IGN);  // a reader that went away is not our failure
      (void)write_all(1, (*hit)->out, "stdout");
      (void)write_all(2, (*hit)->err, "stderr");
      cache.count(Cache::Event::kHit, static_cast<uint64_t>((*hit)->run_ns));
      if (o.verbose || o.explain)
        say("cache hit: " + shown_command(o.argv) + ": " + std::to_string((*hit)->outputs) +
            " outputs restored (entry " + (*hit)->entry_name + ")");
      return std::move(**hit);
    }
    cache.count(Cache::Event::kMiss);
  }
  if (o.explain) say("cache miss: " + shown_command(o.argv) + ": " + why);
  return std::nullopt;
}

// Everything `bsandbox exec` holds from its first step to its last; each
// step below fills in a part, in the order run_exec calls them.
struct Exec {
  explicit Exec(const ExecOptions& options) : o(options) {}
  const ExecOptions& o;
  std::string cwd = current_dir();
  int64_t start_wall = 0;
  std::optional<Project> project;
  std::optional<AtomicFile> json_out, record_out;
  std::optional<Cache> cache;
  std::optional<RemoteCache> remote;  // behind cache, pointing at it
  std::optional<Uploader> uploader;   // a build's uploads, off its path
  std::optional<Prefetcher> prefetcher;  // a build's fetching ahead
  std::string cache_key;              // the local cache's, if shared
  std::optional<Cache> wrappers_cache;  // not cached itself: the cache its wrappers use
  std::unique_ptr<JournaledRun> journal;
  CacheRequest request;
  std::optional<std::string> agent_socket;
  std::optional<UniqueFd> agent;
  std::optional<OutputCapture> capture;
  ChildStdio stdio;
  // The run's remote cache traffic, reported to bsandboxd: the cache whose
  // counters it lands in, the agent to tell, and the counters before.
  Cache* traffic_cache = nullptr;
  std::optional<std::string> report_to;
  CacheTraffic traffic_before;
};

// Inside a project the run is journaled. Whose project it is decides
// first, since root working in another user's project becomes that user
// before it opens or creates anything.
Result<void> find_own_project(Exec& x) {
  if (x.o.no_journal) return {};
  auto found = find_project(x.cwd);
  if (!found) return tl::unexpected(found.error());
  if (!*found) return {};
  if (auto r = act_as_owner(**found, x.o.trust_owner); !r) return r;
  x.project = std::move(*found);
  return {};
}

// Checked before anything runs: the records can be written.
Result<void> open_outputs(Exec& x) {
  const ExecOptions& o = x.o;
  if (o.json_path && o.record_path && *o.json_path == *o.record_path)
    return fail("--json and --record name the same file: " + *o.json_path);
  if (o.json_path) {
    auto f = AtomicFile::create(*o.json_path);
    if (!f) return fail("cannot write the JSON record: " + f.error().message);
    x.json_out.emplace(std::move(*f));
  }
  if (o.record_path) {
    auto f = AtomicFile::create(*o.record_path);
    if (!f) return fail("cannot write the record: " + f.error().message);
    x.record_out.emplace(std::move(*f));
  }
  return {};
}

// The wrappers inside take their settings from the environment: those of
// this exec's command line go down to them (a read-only or signed exec
// must not have wrappers that upload or believe unsigned entries).
void export_remote_settings(const ExecOptions& o, const std::string& cwd) {
  ::setenv("BSANDBOX_CACHE_REMOTE", o.cache_remote.c_str(), 1);
  ::setenv("BSANDBOX_CACHE_REMOTE_UPLOAD", o.cache_remote_upload ? "yes" : "no", 1);
  if (!o.cache_remote_key_file.empty())
    ::setenv("BSANDBOX_CACHE_REMOTE_KEY", path::resolve(cwd, o.cache_remote_key_file).c_str(), 1);
  if (!o.cache_remote_credentials_file.empty())
    ::setenv("BSANDBOX_CACHE_REMOTE_CREDENTIALS", path::resolve(cwd, o.cache_remote_credentials_file).c_str(), 1);
}

// Whether auto looks for bsandboxd: for a user who is not root, and not for
// a journaled run (in a project), whose view is a mount namespace the agent
// is not in, nor inside a traced run, whose tracer would not see the
// agent's job.
bool auto_tries_agent(const Exec& x) {
  return x.o.backend == "auto" && ::geteuid() != 0 && !x.project && !std::getenv(kTracerEnv);
}

// ---- the run's remote cache traffic, for bsandboxd's /metrics
//
// The cache is the caller's, so the agent sees none of its traffic: a run
// that bsandboxd serves (or would serve, for a hit, which ends before the
// agent is asked) tells it what the remote counters of its cache directory
// grew by, from before its prefetcher and lookup to after its last upload
// and its manifest. That directory is exec's own when it has a remote, else
// the one its wrappers use, so the wrappers inside the job are counted with
// it; a wrapper reports nothing (the exec above it reports the whole
// build). Another build sharing the directory at the same time is counted
// by whichever of them reports. A report failing is said with -v only and
// never fails or holds up the build (report_cache_traffic: at most a second
// per step).

CacheTraffic remote_traffic(Cache& cache) {
  CacheStats s = cache.counters();
  return {s.remote_hits,     s.remote_misses,   s.remote_uploads,   s.remote_bytes_down,
          s.remote_bytes_up, s.remote_errors,   s.remote_prefetched};
}

// Before anything of the build reaches the server (its prefetcher, its
// lookup): which agent might serve the run, and the counters of cache now.
void note_traffic_before(Exec& x, Cache& cache, bool shared) {
  const ExecOptions& o = x.o;
  if (o.wrapper || x.project) return;  // a journaled run is never the agent's
  // A shared cache's counters are written by all who share it: what they
  // grew by is not this user's to report.
  if (shared) return;
  x.traffic_cache = &cache;
  if (o.agent) {
    x.report_to = *o.agent;
  } else if (auto_tries_agent(x)) {
    std::string socket = default_agent_socket();
    if (::access(socket.c_str(), F_OK) == 0) x.report_to = socket;
  }
  if (x.report_to) x.traffic_before = remote_traffic(*x.traffic_cache);
}

// After the hit, or after the run and its uploads.
void report_traffic(Exec& x) {
  if (!x.report_to || !x.traffic_cache) return;
  CacheTraffic grown = growth(x.traffic_before, remote_traffic(*x.traffic_cache));
  if (grown.empty()) return;
  if (auto r = report_cache_traffic(*x.report_to, grown); !r && x.o.verbose)
    say("remote cache traffic not reported to the agent: " + r.error().message);
}

// A build with a remote cache fetches ahead and uploads while it runs: the
// prefetcher (what the last build of the same command used) and the
// uploader start before the command, and the wrappers inside note what
// they use and spool what they store.
void start_remote_helpers(Exec& x) {
  if (x.o.wrapper) return;
  Cache* cache = x.cache ? &*x.cache : nullptr;
  std::string key = x.cache_key;
  std::optional<RemoteCache> wrappers_remote;
  RemoteCache* remote = x.remote ? &*x.remote : nullptr;
  bool prefetch = x.o.cache_remote_prefetch;
  if (!remote) {
    // Not cached itself, but a build whose wrappers use a remote cache
    // (BSANDBOX_CACHE_REMOTE): their uploads, and their one warning, are
    // this build's too.
    ExecOptions wrappers = x.o;
    wrappers.cache_dir = default_cache_dir();
    if (!remote_defaults(wrappers) || wrappers.cache_remote.empty()) return;
    prefetch = wrappers.cache_remote_prefetch;
    if (const char* k = std::getenv("BSANDBOX_CACHE_KEY"); k && *k) wrappers.cache_key_file = k;
    auto options = remote_options(wrappers);
    key.clear();
    if (!wrappers.cache_key_file.empty()) {
      auto k = load_cache_key(wrappers.cache_key_file);
      if (!k) return;  // each wrapper says so
      key = std::move(*k);
    }
    if (!options || !*options) return;
    auto c = Cache::open(*wrappers.cache_dir, key);
    if (!c) return;
    x.wrappers_cache.emplace(std::move(*c));
    cache = &*x.wrappers_cache;
    auto r = RemoteCache::open(std::move(**options), *cache);
    if (!r) return;
    r->health().new_build();
    wrappers_remote.emplace(std::move(*r));
    remote = &*wrappers_remote;
  }
  // The build as its manifest is named: the command, where it runs, the
  // root the wrappers key under.
  const char* root_env = std::getenv("BSANDBOX_CACHE_ROOT");
  std::string root = path::resolve(x.cwd, x.o.cache_root ? *x.o.cache_root : root_env && *root_env ? root_env : ".");
  Digest build = remote_layout::build_key(x.o.argv, x.cwd, root);
  auto print = [](const std::string& line) { say(line); };
  note_traffic_before(x, *cache, !key.empty());
  if (prefetch)
    if (auto p = Prefetcher::start(remote->options(), *cache, key, build, print)) x.prefetcher.emplace(std::move(*p));
  if (!remote->options().upload) return;
  auto u = Uploader::start(remote->options(), *cache, key, build, print);
  if (!u) {
    say("warning: cache: uploads wait for each command: " + u.error().message);
    return;
  }
  x.uploader.emplace(std::move(*u));
  ::setenv(kSpoolEnv, UploadSpool::path_of(*cache, remote->options()).c_str(), 1);
}

// The cache directory is opened before a journaled run enters its view,
// where (with --contain) every other mount is read-only; then the view
// (a private mount namespace) is entered before the backend starts
// threads or tracees.
Result<void> open_cache_and_journal(Exec& x) {
  const ExecOptions& o = x.o;
  if (o.cache_dir) {
    std::string key;
    if (!o.cache_key_file.empty()) {
      auto k = load_cache_key(o.cache_key_file);
      if (!k) return tl::unexpected(k.error());
      key = std::move(*k);
    }
    auto remote = remote_options(o);
    if (!remote) return tl::unexpected(remote.error());
    x.cache_key = key;
    auto c = Cache::open(*o.cache_dir, key);
    if (!c) {
      say("warning: running without the cache: " + c.error().message);
    } else {
      c->set_max_bytes(default_cache_max_bytes());
      x.cache.emplace(std::move(*c));
    }
    if (x.cache && *remote) {
      auto r = RemoteCache::open(std::move(**remote), *x.cache);
      if (!r) {
        say("warning: running without the remote cache: " + r.error().message);
      } else {
        x.remote.emplace(std::move(*r));
        if (!o.wrapper) {
          x.remote->health().new_build();
          export_remote_settings(o, x.cwd);
        }
      }
    }
  }
  start_remote_helpers(x);  // before the journal takes locks and enters a view
  if (x.project) {
    JournalOptions jo{o.no_rollback, o.force, o.contain, o.quiet};
    auto j = JournaledRun::begin(std::move(*x.project), o.argv, x.cwd, environ, jo);
    if (!j) return tl::unexpected(j.error());
    x.journal = std::move(*j);
    if (o.verbose) say("journaling in " + x.journal->project().root);
  }
  if (!x.journal && (o.contain || o.no_rollback || o.force))
    return fail(std::string(o.contain ? "--contain" : o.force ? "--force" : "--no-rollback") +
                " applies to journaled runs, and " + x.cwd + " is not inside a project (see bsandbox init)");
  return {};
}

// What the cache keys this run on (the root outputs must lie under, the
// inputs it will look for).
void prepare_request(Exec& x) {
  const ExecOptions& o = x.o;
  std::string root = x.journal ? x.journal->project().root : o.cache_root ? path::resolve(x.cwd, *o.cache_root) : x.cwd;
  std::vector<std::string> unkeyed;
  for (const auto& d : o.unkeyed_listings) unkeyed.push_back(path::resolve(root, d));
  x.request = x.cache->prepare(o.argv, x.cwd, root, environ, o.cache_failures, std::move(unkeyed), o.cache_allow_network);
  // bsandbox's own sockets, which wrappers inside reach: not the network.
  if (const char* tracer = std::getenv(kTracerEnv)) x.request.sockets.own_sockets.push_back("unix:" + std::string(tracer));
  x.request.sockets.own_sockets.push_back("unix:" + default_agent_socket());
  if (auto self = read_link("/proc/self/exe")) x.request.sockets.own_program = *self;
  x.request.private_paths = private_paths(o, x.cwd);
}

// bsandboxd: asked for, or (auto_tries_agent) found running.
Result<void> find_agent(Exec& x) {
  const ExecOptions& o = x.o;
  x.agent_socket = o.agent;
  if (x.agent_socket && x.journal)
    return fail("--agent cannot run a journaled command (inside a project, " + x.journal->project().root +
                "): use --no-journal, or run without --agent");
  if (!x.agent_socket && auto_tries_agent(x)) {
    std::string socket = default_agent_socket();
    if (::access(socket.c_str(), F_OK) == 0) {
      if (auto fd = connect_agent(socket)) {
        x.agent.emplace(std::move(*fd));
        x.agent_socket = socket;
      } else if (o.verbose) {
        say("not using the agent: " + fd.error().message);
      }
    }
  } else if (x.agent_socket) {
    auto fd = connect_agent(*x.agent_socket);
    if (!fd) return tl::unexpected(fd.error());
    x.agent.emplace(std::move(*fd));
  }
  if (x.agent && o.verbose) say("backend: ebpf, through bsandboxd at " + *x.agent_socket);
  return {};
}

// A cached command's output is captured, to be stored with its result.
Result<void> capture_output(Exec& x) {
  if (!x.cache) return {};
  auto c = OutputCapture::start();
  if (!c) return fail("capturing the command's output: " + c.error().message);
  x.capture.emplace(std::move(*c));
  x.stdio = {x.request.stdin_replacement.get(), x.capture->child_out(), x.capture->child_err()};
  hand_down_diagnostics();
  return {};
}

// Sets an environment variable for the traced tree, and back as it was.
class ScopedEnv {
 public:
  explicit ScopedEnv(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The command traced here, under the backend the options choose.
Result<TracedRun> trace_here(Exec& x) {
  auto source = open_backend(x.o);
  if (!source) return tl::unexpected(source.error());
  if (x.o.verbose) say("backend: " + std::string((*source)->name()));
  SuperviseOptions so;
  so.spawn.stdio = x.stdio;
  // Cached commands inside (bsandbox-wrap) may use this tracer.
  // Without one (ptrace: a process has one tracer), a wrapper inside could
  // not trace its command: it runs it directly instead (BSANDBOX_WRAPPED).
  ScopedEnv tracer_env(kTracerEnv), wrapped_env("BSANDBOX_WRAPPED");
  std::unique_ptr<TracerService> service;
  if ((*source)->wait_fd() >= 0) {
    if (auto s = TracerService::listen()) {
      service = std::move(*s);
      so.service = service.get();
      ::setenv(kTracerEnv, service->address().c_str(), 1);
    }
  }
  if (!service) {
    ::unsetenv(kTracerEnv);
    ::setenv("BSANDBOX_WRAPPED", "1", 1);
  }
  return run_traced(**source, x.o.argv, x.cwd, so, /*for_cache=*/x.cache.has_value());
}

// The cache hit's record, journaled and written as a run's would be.
// A wrapper's hit goes into its build's manifest (the next build of the
// same command, anywhere, fetches it ahead).
void note_used(Exec& x, const Cache::Hit& hit) {
  if (!x.o.wrapper || !x.remote || !uploader_spools_for(*x.cache, x.remote->options())) return;
  if (auto spool = UploadSpool::open(*x.cache, x.remote->options())) (void)spool->add_used(hit.weak, hit.strong);
}

int finish_hit(Exec& x, const Cache::Hit& hit) {
  Record rec = hit_record(hit, x.o, x.cwd, x.request.root, x.start_wall);
  int code = rec.exit_code;
  if (x.journal) code = commit_journal(*x.journal, rec, x.o, code);
  code = write_records(rec, x.json_out, x.record_out, code);
  if (!x.json_out && !x.record_out && !x.o.quiet) say(summary_line(rec));
  return code;
}

// After the run, wherever it ran: store it in the cache, journal it, write
// the records, report. Returns the exit code.
int finish_run(Exec& x, const TracedRun& run) {
  const ExecOptions& o = x.o;
  if (!run.exec_error.empty()) say(run.exec_error);
  if (!run.stopped.empty()) say("the command was killed: " + run.stopped);
  const Record& rec = run.record;
  int code = rec.exit_code;
  // Stored from what the command left, before a journal commits it.
  if (x.cache) store_result(*x.cache, x.remote ? &*x.remote : nullptr, x.request, run, *x.capture, o);
  if (x.journal) code = commit_journal(*x.journal, rec, o, code);
  code = write_records(rec, x.json_out, x.record_out, code);
  for (const auto& p : run.problems) say("warning: record incomplete: " + p);
  if (!x.json_out && !x.record_out && !o.quiet) say(summary_line(rec));
  if (o.verbose) {
    say(std::to_string(run.events) + " events from the " + rec.backend + " backend, " +
        std::to_string(rec.processes.size()) + " processes; " + resource_report());
    if (!run.detail.empty()) say(rec.backend + ": " + run.detail);
  }
  if (o.strict && !rec.complete && code != kExitOwnError) {
    say("error: the record is incomplete and --strict was given (the command exited " +
        std::to_string(rec.exit_code) + ")");
    return kExitOwnError;
  }
  return code;
}

}  // namespace

int exec_directly(const std::vector<std::string>& argv, int stdin_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (stdin_fd >= 0) ::dup2(stdin_fd, 0);
  ::execvp(args[0], args.data());
  int e = errno;
  say(argv[0] + ": " + (e == ENOENT ? std::string("command not found") : std::strerror(e)));
  return e == ENOENT ? 127 : 126;
}

// The steps, in order: the project, the outputs, the cache and journal,
// the cache lookup (a hit ends here; a wrapper may hand its command to the
// tracer it runs under, or run it untraced), the agent, the run (by the
// agent or here), and what follows it; then, for a run bsandboxd served,
// its remote cache traffic is reported to it.
int run_exec(const ExecOptions& o) {
  if (o.argv.empty()) return error_exit("no command given (usage: bsandbox exec [options] -- COMMAND...)");
  Exec x(o);
  if (auto r = find_own_project(x); !r) return error_exit(r.error().message);
  if (auto r = open_outputs(x); !r) return error_exit(r.error().message);
  x.start_wall = Clocks::wall_now();
  if (auto r = open_cache_and_journal(x); !r) return error_exit(r.error().message);
  if (x.cache) {
    prepare_request(x);
    if (auto hit = look_up(*x.cache, x.remote ? &*x.remote : nullptr, x.request, o)) {
      note_used(x, *hit);
      int code = finish_hit(x, *hit);
      report_traffic(x);
      return code;
    }
    // A wrapper has nothing to record for a command it cannot cache.
    if (o.wrapper && !x.request.uncacheable.empty()) {
      x.remote.reset();
      x.cache.reset();
    }
  }
  if (o.wrapper && x.cache) {
    // Inside a traced build its tracer is lent to us: no tracer of our own.
    if (const char* address = std::getenv(kTracerEnv); address && *address)
      return run_in_ancestor_tracer(o, x.cwd, *x.cache, x.remote ? &*x.remote : nullptr, x.request, address,
                                    x.start_wall);
  }
  if (o.wrapper && !x.cache) return exec_directly(o.argv, x.request.stdin_replacement.get());
  if (auto r = find_agent(x); !r) return error_exit(r.error().message);
  if (!x.agent) x.report_to.reset();  // traced here: not the agent's to count
  if (auto r = capture_output(x); !r) return error_exit(r.error().message);

  auto run = x.agent ? run_via_agent(x.agent->get(), *x.agent_socket, o.argv, x.cwd, x.stdio, x.cache.has_value(),
                                     [&](const std::string& line) {
                                       if (o.verbose) say(line);
                                     })
                     : trace_here(x);
  if (x.capture) x.capture->finish();
  if (!run) return error_exit(run.error().message);
  int code = finish_run(x, *run);
  x.prefetcher.reset();  // the build is over: nothing more is worth fetching
  if (x.uploader) x.uploader->finish(kUploadWaitMs, [](const std::string& line) { say(line); });
  report_traffic(x);
  return code;
}

}  // namespace bsandbox
