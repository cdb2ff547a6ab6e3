// Test doubles for `mcp-scrub tcp`: the proxy running in the background with its stderr collected
// line by line, a blocking socket client with timeouts, and a look at the proxy's children.
// Hermetic: 127.0.0.1 and Unix sockets in a temporary directory only; every process is reaped.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "run.h"
#include "transports/child_process.h"
#include "transports/fd_io.h"

namespace scrub::test {

using namespace std::chrono_literals;

// `mcp-scrub tcp ...` in the background. Its stderr is read on a thread and kept.
class Proxy {
 public:
  Proxy(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {}) {
    ignore_sigpipe();
    ChildOptions co;
    co.argv = argv;
    co.env = env_with(extra_env);
    co.own_process_group = false;
    child_.emplace(ChildProcess::spawn(co));
    child_->close_stdin();
    reader_ = std::thread([this] { read_loop(); });
  }
  ~Proxy() {
    if (child_ && !child_->try_wait()) {
      child_->send_signal(SIGKILL);
      child_->wait();
    }
    if (reader_.joinable()) reader_.join();
  }

  // Waits for the "listening on" line; returns the address after it ("127.0.0.1:PORT").
  std::string wait_listening() {
    std::string line = wait_line("mcp-scrub: listening on ", 20s);
    return line.empty() ? "" : line.substr(std::strlen("mcp-scrub: listening on "));
  }
  int port() {
    std::string a = wait_listening();
    size_t colon = a.rfind(':');
    return colon == std::string::npos ? -1 : std::atoi(a.c_str() + colon + 1);
  }
  // The first stderr line that starts with `prefix` (waits for it); "" on timeout.
  std::string wait_line(const std::string& prefix, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    std::string found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& l : lines(err_))
        if (l.rfind(prefix, 0) == 0 && err_.find(l + "\n") != std::string::npos) {
          found = l;
          return true;
        }
      return done_;
    });
    return found;
  }
  // Every complete stderr line starting with `prefix`, now.
  std::vector<std::string> lines_with(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& l : lines(err_))
      if (l.rfind(prefix, 0) == 0) out.push_back(l);
    return out;
  }
  std::string err() {
    std::lock_guard<std::mutex> lock(mu_);
    return err_;
  }
  void signal(int sig) { child_->send_signal(sig); }
  pid_t pid() const { return child_->pid(); }
  // Exit status (shell style), -1 if it did not exit within `timeout`.
  int wait_exit(std::chrono::milliseconds timeout = 20s) {
    bool timed_out = false;
    int st = child_->wait_for(timeout, &timed_out);
    if (reader_.joinable()) reader_.join();
    return timed_out ? -1 : st;
  }

 private:
  void read_loop() {
    char buf[65536];
    for (;;) {
      ssize_t n = read_some(child_->stderr_fd(), buf, sizeof buf);
      std::lock_guard<std::mutex> lock(mu_);
      if (n <= 0) {
        done_ = true;
        cv_.notify_all();
        return;
      }
      err_.append(buf, static_cast<size_t>(n));
      cv_.notify_all();
    }
  }
  std::optional<ChildProcess> child_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string err_;
  bool done_ = false;
};

// A blocking client socket; every wait is bounded.
class Client {
 public:
  static Client tcp(int port) {
    Client c;
    c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) c.close();
    return c;
  }
  static Client unix_socket(const std::string& path) {
    Client c;
    c.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) c.close();
    return c;
  }
  Client() = default;
  Client(Client&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)), eof_(o.eof_) { o.fd_ = -1; }
  Client& operator=(Client&& o) noexcept {
    close();
    fd_ = o.fd_;
    buf_ = std::move(o.buf_);
    eof_ = o.eof_;
    o.fd_ = -1;
    return *this;
  }
  ~Client() { close(); }

  bool ok() const { return fd_ >= 0; }
  bool send(const std::string& bytes) { return fd_ >= 0 && write_all(fd_, bytes); }
  bool send_line(const std::string& line) { return send(line + "\n"); }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Close with a reset instead of a FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next line without its "\n"; nullopt on end of file, error or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }
  // Everything up to end of file (true) or until the timeout/error (false).
  bool read_to_eof(std::string& out, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (fill(deadline)) {
    }
    out += buf_;
    buf_.clear();
    return eof_;
  }
  bool eof() const { return eof_; }
  int error() const { return error_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline) {
    if (fd_ < 0 || eof_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char b[65536];
    ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (n < 0) {
      error_ = errno;
      eof_ = true;  // a reset ends the stream too
      return false;
    }
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  int error_ = 0;
};

// A port on 127.0.0.1 nothing listens on (bound, then released).
inline int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The children of `pid` (all its threads) with their state letter ('Z' = zombie).
inline std::vector<std::pair<int, char>> children_of(pid_t pid) {
  std::vector<std::pair<int, char>> out;
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string list = read_file(task + "/" + e->d_name + "/children");
    size_t pos = 0;
    while (pos < list.size()) {
      size_t sp = list.find(' ', pos);
      if (sp == std::string::npos) sp = list.size();
      if (sp > pos) {
        int c = std::atoi(list.substr(pos, sp - pos).c_str());
        std::string stat = read_file("/proc/" + std::to_string(c) + "/stat");
        size_t paren = stat.rfind(')');
        out.emplace_back(c, paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?');
      }
      pos = sp + 1;
    }
  }
  ::closedir(d);
  return out;
}

}  // namespace scrub::test
