// http.cpp: see http.h. Particular to the implementation: the libcurl
// functions used are looked up once from libcurl.so.4 (the declarations of
// <curl/curl.h> give their types); a client owns one multi handle, whose
// connection cache keeps connections alive between requests, and a pool of
// easy handles reused across perform() calls. Requests never follow a
// redirect (credentials go to the configured server alone) and speak only
// http and https.
#define CURL_DISABLE_TYPECHECK 1
#include "sandbox/remote/http.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <curl/curl.h>

namespace bsandbox {
namespace {

// The libcurl functions, from dlopen.
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_reset) easy_reset;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_setopt) multi_setopt;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

Result<const Curl*> load_curl() {
  static Curl curl;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      error = std::string("cannot load libcurl (libcurl.so.4; Debian: apt install libcurl4): ") + (why ? why : "");
      return;
    }
    bool missing = false;
    auto get = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (!fn && !missing) {
        missing = true;
        error = std::string("libcurl.so.4 lacks ") + name + " (libcurl 7.66 or newer is needed)";
      }
    };
    get(curl.global_init, "curl_global_init");
    get(curl.easy_init, "curl_easy_init");
    get(curl.easy_setopt, "curl_easy_setopt");
    get(curl.easy_getinfo, "curl_easy_getinfo");
    get(curl.easy_reset, "curl_easy_reset");
    get(curl.easy_cleanup, "curl_easy_cleanup");
    get(curl.easy_strerror, "curl_easy_strerror");
    get(curl.multi_init, "curl_multi_init");
    get(curl.multi_setopt, "curl_multi_setopt");
    get(curl.multi_add_handle, "curl_multi_add_handle");
    get(curl.multi_remove_handle, "curl_multi_remove_handle");
    get(curl.multi_perform, "curl_multi_perform");
    get(curl.multi_poll, "curl_multi_poll");
    get(curl.multi_info_read, "curl_multi_info_read");
    get(curl.multi_cleanup, "curl_multi_cleanup");
    get(curl.slist_append, "curl_slist_append");
    get(curl.slist_free_all, "curl_slist_free_all");
    if (!missing && curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) error = "libcurl failed to initialize";
  });
  if (!error.empty()) return fail(error);
  return &curl;
}

// One request in flight: where its body goes and comes from.
struct Transfer {
  const HttpRequest* request = nullptr;
  HttpReply* reply = nullptr;
  size_t sent = 0;
  bool too_large = false;
};

size_t on_body(char* p, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  size_t len = size * n;
  if (t->reply->body.size() + len > t->request->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->reply->body.append(p, len);
  return len;
}

// Connections are made close-on-exec from the start: a command started
// while one is open must not inherit it.
curl_socket_t open_socket(void*, curlsocktype, curl_sockaddr* a) {
  return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

size_t on_read(char* p, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  size_t len = std::min(size * n, t->request->body.size() - t->sent);
  std::memcpy(p, t->request->body.data() + t->sent, len);
  t->sent += len;
  return len;
}

// The descriptors open in this process.
std::vector<int> open_fds() {
  std::vector<int> fds;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.' && std::atoi(e->d_name) != ::dirfd(d)) fds.push_back(std::atoi(e->d_name));
    ::closedir(d);
  }
  std::sort(fds.begin(), fds.end());
  return fds;
}

// libcurl's sockets (its connections, the multi handle's wake-up pair) are
// not close-on-exec: every descriptor opened since before gets it, so the
// command a lookup precedes does not inherit a connection (and the cache's
// key, which refuses an inherited socket, still sees none).
void close_on_exec_since(const std::vector<int>& before) {
  for (int fd : open_fds()) {
    if (fd <= 2 || std::binary_search(before.begin(), before.end(), fd)) continue;
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

}  // namespace

std::string HttpReply::what() const {
  if (!error.empty()) return error;
  return "HTTP " + std::to_string(status);
}

struct HttpClient::Impl {
  const Curl* curl = nullptr;
  HttpOptions options;
  CURLM* multi = nullptr;
  std::vector<CURL*> idle;  // easy handles, reused (their connections stay in the multi's cache)
  curl_slist* headers = nullptr;

  ~Impl() {
    for (CURL* e : idle) curl->easy_cleanup(e);
    if (multi) curl->multi_cleanup(multi);
    if (headers) curl->slist_free_all(headers);
  }

  CURL* take() {
    if (!idle.empty()) {
      CURL* e = idle.back();
      idle.pop_back();
      curl->easy_reset(e);
      return e;
    }
    return curl->easy_init();
  }

  void prepare(CURL* e, Transfer* t) {
    const HttpRequest& r = *t->request;
    std::string url = options.base_url + "/" + r.path;
    auto set = curl->easy_setopt;
    set(e, CURLOPT_URL, url.c_str());
    set(e, CURLOPT_PROTOCOLS_STR, "http,https");
    set(e, CURLOPT_NOSIGNAL, 1L);
    set(e, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
    size_t moved = r.method == HttpRequest::Method::kPut ? r.body.size() : r.expected_bytes;
    set(e, CURLOPT_TIMEOUT_MS, options.timeout_ms + static_cast<long>(moved / std::max(1L, options.bytes_per_ms)));
    set(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    set(e, CURLOPT_LOW_SPEED_TIME, options.low_speed_secs);
    set(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    set(e, CURLOPT_PIPEWAIT, 1L);
    set(e, CURLOPT_USERAGENT, "bsandbox/" BSANDBOX_VERSION);
    set(e, CURLOPT_HTTPHEADER, headers);
    set(e, CURLOPT_PRIVATE, t);
    set(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    if (!options.bearer.empty()) {
      set(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BEARER));
      set(e, CURLOPT_XOAUTH2_BEARER, options.bearer.c_str());
    } else if (!options.userpwd.empty()) {
      set(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      set(e, CURLOPT_USERPWD, options.userpwd.c_str());
    }
    switch (r.method) {
      case HttpRequest::Method::kGet:
        set(e, CURLOPT_WRITEFUNCTION, on_body);
        set(e, CURLOPT_WRITEDATA, t);
        break;
      case HttpRequest::Method::kHead: set(e, CURLOPT_NOBODY, 1L); break;
      case HttpRequest::Method::kDelete:
        set(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        set(e, CURLOPT_WRITEFUNCTION, on_body);
        set(e, CURLOPT_WRITEDATA, t);
        break;
      case HttpRequest::Method::kPut:
        set(e, CURLOPT_UPLOAD, 1L);
        set(e, CURLOPT_READFUNCTION, on_read);
        set(e, CURLOPT_READDATA, t);
        set(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
        set(e, CURLOPT_WRITEFUNCTION, on_body);  // a reply's body, bounded, ignored
        set(e, CURLOPT_WRITEDATA, t);
        break;
    }
  }

  void finish(CURL* e, CURLcode code) {
    Transfer* t = nullptr;
    curl->easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    long status = 0;
    curl->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t down = 0, up = 0;
    curl->easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down);
    curl->easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
    HttpReply& r = *t->reply;
    r.status = status;
    r.bytes_down = static_cast<uint64_t>(down);
    r.bytes_up = static_cast<uint64_t>(up);
    r.too_large = t->too_large;
    if (t->too_large) {
      r.error = "the reply is larger than the " + std::to_string(t->request->max_bytes) + " bytes expected";
    } else if (code != CURLE_OK) {
      r.error = curl->easy_strerror(code);
    }
  }
};

Result<HttpClient> HttpClient::open(HttpOptions options) {
  std::vector<int> before = open_fds();
  auto curl = load_curl();
  if (!curl) return tl::unexpected(curl.error());
  auto impl = std::make_unique<Impl>();
  impl->curl = *curl;
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  impl->options = std::move(options);
  impl->multi = impl->curl->multi_init();
  close_on_exec_since(before);
  if (!impl->multi) return fail("libcurl: cannot make a multi handle");
  impl->curl->multi_setopt(impl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(impl->options.max_connections));
  impl->curl->multi_setopt(impl->multi, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
  // No "Expect: 100-continue": a PUT waits up to a second for it on a
  // server that does not answer it.
  impl->headers = impl->curl->slist_append(nullptr, "Expect:");
  return HttpClient(std::move(impl));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

const HttpOptions& HttpClient::options() const { return impl_->options; }

std::vector<HttpReply> HttpClient::perform(const std::vector<HttpRequest>& requests) {
  Impl& m = *impl_;
  std::vector<int> before = open_fds();
  std::vector<HttpReply> replies(requests.size());
  std::vector<Transfer> transfers(requests.size());
  size_t next = 0, running = 0;
  std::vector<CURL*> active;  // attached to the multi handle, pointing into transfers
  auto start_more = [&] {
    while (next < requests.size() && running < static_cast<size_t>(m.options.max_connections) * 4) {
      Transfer& t = transfers[next];
      t.request = &requests[next];
      t.reply = &replies[next];
      ++next;
      CURL* e = m.take();
      if (!e) {
        t.reply->error = "libcurl: cannot make a handle";
        continue;
      }
      m.prepare(e, &t);
      if (m.curl->multi_add_handle(m.multi, e) != CURLM_OK) {
        t.reply->error = "libcurl: cannot start a request";
        m.idle.push_back(e);
        continue;
      }
      active.push_back(e);
      ++running;
    }
  };
  start_more();
  while (running > 0) {
    int still = 0;
    if (m.curl->multi_perform(m.multi, &still) != CURLM_OK) break;
    int left = 0;
    while (CURLMsg* msg = m.curl->multi_info_read(m.multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      m.finish(e, msg->data.result);
      m.curl->multi_remove_handle(m.multi, e);
      m.idle.push_back(e);
      active.erase(std::find(active.begin(), active.end(), e));
      --running;
    }
    start_more();
    if (running > 0) m.curl->multi_poll(m.multi, nullptr, 0, 1000, nullptr);
  }
  // Left by a multi handle that failed: detached and dropped, since they
  // point at this call's transfers (their replies say "no reply").
  for (CURL* e : active) {
    m.curl->multi_remove_handle(m.multi, e);
    m.curl->easy_cleanup(e);
  }
  close_on_exec_since(before);
  for (size_t i = 0; i < requests.size(); ++i)
    if (replies[i].status == 0 && replies[i].error.empty()) replies[i].error = "no reply";
  return replies;
}

HttpReply HttpClient::perform(const HttpRequest& request) {
  return std::move(perform(std::vector<HttpRequest>{request}).front());
}

Result<void> parse_credentials(std::string_view text, std::string_view what, HttpOptions* options) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.starts_with("Bearer ") && line.size() > 7) {
    options->bearer = std::string(line.substr(7));
    options->userpwd.clear();
    return {};
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return fail(std::string(what) + ": credentials are \"Bearer TOKEN\" or \"USER:PASSWORD\" on the first line");
  options->userpwd = std::string(line);
  options->bearer.clear();
  return {};
}

}  // namespace bsandbox
