// http.h: the HTTP client a remote cache speaks through: libcurl, several
// requests at once over kept-alive connections (HTTP/2 multiplexed where the
// server offers it, TLS, proxies from the usual variables), each bounded in
// time and in what it may return.
//
// libcurl is loaded with dlopen when the first client is made, not linked:
// linked, its 33 shared libraries cost every bsandbox process 2.7 ms of
// start-up (3.3 against 0.64 ms for an empty program), paid by each
// bsandbox-wrap of a build whether or not a remote is configured.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/result.h"

namespace bsandbox {

struct HttpOptions {
  std::string base_url;       // no trailing slash; requests are base_url + "/" + path
  std::string bearer;         // a token sent as "Authorization: Bearer ...", or ""
  std::string userpwd;        // "USER:PASSWORD" sent as Basic authentication, or ""
  long connect_timeout_ms = 2000;
  long timeout_ms = 10000;     // a whole request moving nothing much, and
  long bytes_per_ms = 256;     // ... longer by a ms for each this many bytes it moves
                               // (its body, or what a GET expects): a 1 GiB blob
                               // gets 70 min at 256 KB/s, not 10 s
  long low_speed_secs = 5;     // ... and one moving under 1 KiB/s for this long
  int max_connections = 8;
};

struct HttpRequest {
  enum class Method { kGet, kHead, kPut, kDelete } method = Method::kGet;
  std::string path;
  std::string_view body;          // kPut: not copied, must outlive perform()
  size_t max_bytes = 64 << 20;    // kGet: a longer body is an error
  size_t expected_bytes = 0;      // kGet: how long the body should be (its time grows with it)
};

struct HttpReply {
  long status = 0;     // the HTTP status, 0 when none came
  std::string body;
  std::string error;   // why no reply came (refused, timed out, too large), or ""
  uint64_t bytes_down = 0, bytes_up = 0;
  bool too_large = false;  // the body passed the request's max_bytes (error says so too)
  bool ok() const { return error.empty() && status / 100 == 2; }
  // 404 (or 410): the server has no such object; not a failure of it.
  bool absent() const { return error.empty() && (status == 404 || status == 410); }
  // What went wrong, for a message: the transport's error or the status.
  std::string what() const;
};

class HttpClient {
 public:
  // Loads libcurl (an error says it is missing) and prepares a client of
  // options.base_url.
  static Result<HttpClient> open(HttpOptions options);
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  ~HttpClient();

  // Performs every request, up to max_connections at once; a reply for
  // each, in order.
  std::vector<HttpReply> perform(const std::vector<HttpRequest>& requests);
  HttpReply perform(const HttpRequest& request);
  const HttpOptions& options() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Credentials as a file or a variable holds them (the first line): "Bearer
// TOKEN", or "USER:PASSWORD" for Basic authentication, into options. An
// error, naming what (never the secret), for anything else.
Result<void> parse_credentials(std::string_view text, std::string_view what, HttpOptions* options);

}  // namespace bsandbox
