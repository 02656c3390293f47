// http_server.h: a server of Bazel's HTTP cache protocol for the remote
// part's tests, in memory, on 127.0.0.1: GET, HEAD, PUT and DELETE of any path,
// HTTP/1.1 with keep-alive, one thread per connection. A test can make it
// answer every request with a status, delay each answer, or cut bodies
// short, and can read and change what it holds.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bsandbox::testing {

class HttpServer {
 public:
  HttpServer() {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listen_, 64);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~HttpServer() {
    stop_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    ::close(listen_);
    acceptor_.join();
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : workers_) t.join();
    for (int fd : conns_) ::close(fd);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Every request is answered with this status and no body (0: served).
  std::atomic<int> fail_status{0};
  // Each answer waits this long first.
  std::atomic<int> delay_ms{0};
  // A PUT whose body is longer is refused with 413 (nginx's
  // client_max_body_size); 0: no limit.
  std::atomic<size_t> max_put{0};
  // GET bodies are cut to half, the connection closed.
  std::atomic<bool> truncate{false};
  std::atomic<int> puts{0}, gets{0}, heads{0};

  std::map<std::string, std::string> objects() {
    std::lock_guard<std::mutex> l(mu_);
    return objects_;
  }
  void set(const std::string& path, const std::string& body) {
    std::lock_guard<std::mutex> l(mu_);
    objects_[path] = body;
  }
  void erase(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    objects_.erase(path);
  }

 private:
  void accept_loop() {
    while (!stop_) {
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard<std::mutex> l(mu_);
      conns_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return finish(fd);
        buf.append(chunk, static_cast<size_t>(n));
      }
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      std::string method = head.substr(0, head.find(' '));
      size_t p1 = head.find(' ') + 1;
      std::string path = head.substr(p1, head.find(' ', p1) - p1);
      size_t length = 0;
      for (const char* name : {"\r\nContent-Length: ", "\r\ncontent-length: "})
        if (size_t at = head.find(name); at != std::string::npos) length = std::stoul(head.substr(at + std::strlen(name)));
      while (buf.size() < length) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return finish(fd);
        buf.append(chunk, static_cast<size_t>(n));
      }
      std::string body = buf.substr(0, length);
      buf.erase(0, length);
      if (delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
      if (stop_) return finish(fd);
      if (!respond(fd, method, path, body)) return finish(fd);
    }
  }

  bool respond(int fd, const std::string& method, const std::string& path, const std::string& body) {
    auto send = [&](int status, const std::string& payload, size_t announced) {
      std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(announced) +
                      "\r\n\r\n" + payload;
      return ::write(fd, r.data(), r.size()) == static_cast<ssize_t>(r.size());
    };
    if (fail_status) return send(fail_status, "", 0);
    std::unique_lock<std::mutex> l(mu_);
    if (method == "PUT" && max_put && body.size() > max_put) {
      l.unlock();
      return send(413, "", 0);
    }
    if (method == "PUT") {
      ++puts;
      objects_[path] = body;
      l.unlock();
      return send(201, "", 0);
    }
    if (method == "DELETE") {
      objects_.erase(path);
      l.unlock();
      return send(204, "", 0);
    }
    auto it = objects_.find(path);
    if (it == objects_.end()) {
      l.unlock();
      (method == "HEAD" ? heads : gets)++;
      if (method == "HEAD") return send(404, "", 0);
      return send(404, "", 0);
    }
    std::string found = it->second;
    l.unlock();
    if (method == "HEAD") {
      ++heads;
      std::string r = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(found.size()) + "\r\n\r\n";
      return ::write(fd, r.data(), r.size()) == static_cast<ssize_t>(r.size());
    }
    ++gets;
    if (truncate) {
      send(200, found.substr(0, found.size() / 2), found.size());
      return false;
    }
    return send(200, found, found.size());
  }

  void finish(int fd) { ::shutdown(fd, SHUT_RDWR); }

  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::map<std::string, std::string> objects_;
};

}  // namespace bsandbox::testing
