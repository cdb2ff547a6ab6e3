// Throughput and added latency of `mcp-scrub tcp`, next to a direct connection, in one run.
//
//   tcp_bench MCP_SCRUB REPLY_SERVER [--bytes N] [--total T] [--conns 1,10,100] [--rounds R]
//             [--secret] [--threads N]
//
// The bench runs its own upstream on 127.0.0.1 (Asio, one thread) that answers every request line
// with the same tools/call result as REPLY_SERVER (bench/tools/reply_server.cpp): N bytes of
// text, with --secret the value of $BENCH_SECRET three times and a token. Contenders, alternated
// in every round so machine noise hits all of them:
//   direct   clients -> upstream
//   connect  clients -> mcp-scrub tcp --connect upstream -> upstream
//   child    clients -> mcp-scrub tcp -- REPLY_SERVER N (a child per connection)
// For each number of concurrent connections, T requests in all are spread over the connections;
// each connection has one request in flight (send, wait for the answer line). The first answer of
// each connection is left out of the latencies (connect and, for child, spawn). Prints one JSON
// line per contender and concurrency: p50/p99/mean round trip (us), the p50/p99 added versus
// direct, requests/s and MB/s of answers. 127.0.0.1 only; every process is reaped.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transports/child_process.h"
#include "transports/fd_io.h"

using namespace scrub;
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

namespace {

const char* kSecretValue = "Qm7Xv2Lp9Rt4Wk8Zn3Bc";  // fake; BENCH_SECRET for reply_server too

// The text reply_server answers with (same generator, same bytes).
std::string reply_text(size_t bytes, bool secret) {
  static const char* kWords[] = {"request", "handled", "in", "12ms", "user", "id", "42", "status",
                                 "ok", "\\n", "config", "\\\"value\\\"", "path", "/var/lib/app"};
  std::string text;
  unsigned x = 1;
  while (text.size() < bytes) {
    x = x * 1103515245u + 12345u;
    text += kWords[(x >> 16) % 14];
    text += ' ';
  }
  text.resize(bytes);
  if (secret) {
    std::string token = "ghp_" + std::string("Fk7Qm2Xr9Lp4Ws8Tn3Vb6Yc1Hd5Jg0Ze2Ua4");
    std::string ins = std::string(" key=") + kSecretValue + " ";
    text.replace(0, ins.size(), ins);
    text.replace(bytes / 2, ins.size() + token.size() + 1, ins + token + " ");
    text.replace(bytes - ins.size() - 1, ins.size(), ins);
  }
  return text;
}

// The direct upstream: answers each line like reply_server.
class Upstream {
 public:
  explicit Upstream(std::string text)
      : text_(std::move(text)), acceptor_(ctx_, {asio::ip::address_v4::loopback(), 0}) {
    accept();
    thread_ = std::thread([this] { ctx_.run(); });
  }
  ~Upstream() {
    ctx_.stop();
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }

 private:
  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(asio::ip::tcp::socket s, const std::string& t) : sock(std::move(s)), text(t) {}
    asio::ip::tcp::socket sock;
    const std::string& text;
    asio::streambuf in;
    std::string out;
    void read() {
      asio::async_read_until(sock, in, '\n', [self = shared_from_this()](auto ec, size_t n) {
        if (ec) return;
        std::string req(asio::buffers_begin(self->in.data()),
                        asio::buffers_begin(self->in.data()) + static_cast<long>(n) - 1);
        self->in.consume(n);
        size_t at = req.find("\"id\":");
        std::string id = "null";
        if (at != std::string::npos) id = req.substr(at + 5, req.find_first_of(",}", at + 5) - at - 5);
        self->out = "{\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + self->text +
                    "\"}]},\"jsonrpc\":\"2.0\",\"id\":" + id + "}\n";
        asio::async_write(self->sock, asio::buffer(self->out), [self](auto e, size_t) {
          if (!e) self->read();
        });
      });
    }
  };
  void accept() {
    acceptor_.async_accept([this](auto ec, asio::ip::tcp::socket s) {
      if (ec) return;
      s.set_option(asio::ip::tcp::no_delay(true));
      std::make_shared<Conn>(std::move(s), text_)->read();
      accept();
    });
  }
  std::string text_;
  asio::io_context ctx_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

// mcp-scrub tcp in the background; its stderr is drained on a thread (a line per connection).
class Proxy {
 public:
  explicit Proxy(const std::vector<std::string>& argv) {
    ChildOptions co;
    co.argv = argv;
    co.env = current_environment();
    co.env.push_back(std::string("BENCH_SECRET=") + kSecretValue);
    child_.emplace(ChildProcess::spawn(co));
    child_->close_stdin();
    drain_ = std::thread([this] {
      char buf[65536];
      std::string pending;
      for (;;) {
        ssize_t n = read_some(child_->stderr_fd(), buf, sizeof buf);
        if (n <= 0) break;
        std::lock_guard<std::mutex> l(mu_);
        if (port_ < 0) {
          pending.append(buf, static_cast<size_t>(n));
          size_t at = pending.find("listening on 127.0.0.1:");
          size_t nl = at == std::string::npos ? at : pending.find('\n', at);
          if (nl != std::string::npos) port_ = std::atoi(pending.c_str() + at + 23);
        }
      }
      std::lock_guard<std::mutex> l(mu_);
      if (port_ < 0) port_ = 0;
    });
  }
  int port() {
    for (int i = 0; i < 3000; ++i) {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (port_ >= 0) return port_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }
  ~Proxy() {
    child_->send_signal(SIGTERM);
    bool timed_out = false;
    child_->wait_for(std::chrono::seconds(20), &timed_out);
    drain_.join();
  }

 private:
  std::optional<ChildProcess> child_;
  std::thread drain_;
  std::mutex mu_;
  int port_ = -1;
};

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

struct Sample {
  std::vector<double> rtt_us;
  double bytes = 0, seconds = 0;
  uint64_t requests = 0;
  bool failed = false;
};

// `conns` connections to `port`, `per_conn` requests each, one in flight per connection.
void run_level(int port, int conns, int per_conn, Sample& out) {
  std::vector<std::vector<double>> rtts(static_cast<size_t>(conns));
  std::vector<double> bytes(static_cast<size_t>(conns), 0);
  std::atomic<bool> failed{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start;
  for (int c = 0; c < conns; ++c)
    threads.emplace_back([&, c] {
      int fd = connect_to(port);
      std::string pending;
      std::vector<char> buf(1 << 20);
      auto roundtrip = [&](int i) -> bool {
        std::string req = "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(i) +
                          ",\"method\":\"tools/call\",\"params\":{\"name\":\"big\",\"arguments\":{}}}\n";
        if (!write_all(fd, req)) return false;
        for (;;) {
          size_t nl = pending.find('\n');
          if (nl != std::string::npos) {
            if (i > 0) bytes[static_cast<size_t>(c)] += static_cast<double>(nl + 1);
            pending.erase(0, nl + 1);
            return true;
          }
          ssize_t n = read_some(fd, buf.data(), buf.size());
          if (n <= 0) return false;
          pending.append(buf.data(), static_cast<size_t>(n));
        }
      };
      // The first request (connect, spawn) is warm-up, before the clock starts for everyone.
      if (fd < 0 || !roundtrip(0)) failed = true;
      ++ready;
      while (!go) std::this_thread::yield();
      for (int i = 1; i <= per_conn && !failed; ++i) {
        auto t0 = Clock::now();
        if (!roundtrip(i)) {
          failed = true;
          break;
        }
        rtts[static_cast<size_t>(c)].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      if (fd >= 0) ::close(fd);
    });
  while (ready < conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  out.seconds += std::chrono::duration<double>(Clock::now() - start).count();
  for (int c = 0; c < conns; ++c) {
    out.rtt_us.insert(out.rtt_us.end(), rtts[static_cast<size_t>(c)].begin(), rtts[static_cast<size_t>(c)].end());
    out.bytes += bytes[static_cast<size_t>(c)];
  }
  out.requests += static_cast<uint64_t>(conns) * static_cast<uint64_t>(per_conn);
  out.failed |= failed;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    p = std::strchr(p, ',');
    if (!p) break;
    ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: tcp_bench MCP_SCRUB REPLY_SERVER [--bytes N] [--total T] [--conns 1,10,100] "
                 "[--rounds R] [--secret] [--threads N]\n");
    return 2;
  }
  const std::string scrub = argv[1], server = argv[2];
  size_t bytes = 1024;
  int total = 4000, rounds = 3, threads = 2;
  bool secret = false;
  std::vector<int> levels = {1, 10, 100};
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bytes") && i + 1 < argc) bytes = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--total") && i + 1 < argc) total = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--conns") && i + 1 < argc) levels = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--secret")) secret = true;
  }
  ignore_sigpipe();
  char dir_tmpl[] = "/tmp/tcp-bench-XXXXXX";
  std::string dir = ::mkdtemp(dir_tmpl);
  std::string key = dir + "/fp.key";
  if (FILE* f = std::fopen(key.c_str(), "w")) {
    std::fputs("0123456789abcdef0123456789abcdef\n", f);
    std::fclose(f);
  }

  Upstream upstream(reply_text(bytes, secret));
  // The built-in pack plus the known value, as a user would run it.
  std::vector<std::string> common = {"--no-env-secrets", "--secret-env", "BENCH_SECRET", "--fingerprint-key",
                                     key, "--threads", std::to_string(threads), "--max-connections", "0"};
  std::vector<std::string> connect = {scrub, "tcp", "--listen", "127.0.0.1:0", "--connect",
                                      "127.0.0.1:" + std::to_string(upstream.port())};
  connect.insert(connect.end(), common.begin(), common.end());
  std::vector<std::string> child = {scrub, "tcp", "--listen", "127.0.0.1:0"};
  child.insert(child.end(), common.begin(), common.end());
  child.insert(child.end(), {"--", server, std::to_string(bytes)});
  if (secret) child.push_back("secret");

  Proxy via_connect(connect), via_child(child);
  const int connect_port = via_connect.port(), child_port = via_child.port();
  if (connect_port <= 0 || child_port <= 0) {
    std::fprintf(stderr, "tcp_bench: mcp-scrub did not start\n");
    return 1;
  }
  const char* names[] = {"direct", "connect", "child"};
  const int ports[] = {upstream.port(), connect_port, child_port};
  int rc = 0;
  for (int conns : levels) {
    Sample s[3];
    const int per_conn = std::max(1, total / conns);
    for (int r = 0; r < rounds; ++r)
      for (int k = 0; k < 3; ++k) run_level(ports[k], conns, per_conn, s[k]);
    const double d50 = pct(s[0].rtt_us, 0.5), d99 = pct(s[0].rtt_us, 0.99);
    for (int k = 0; k < 3; ++k) {
      double mean = 0;
      for (double v : s[k].rtt_us) mean += v;
      mean /= std::max<size_t>(1, s[k].rtt_us.size());
      const double p50 = pct(s[k].rtt_us, 0.5), p99 = pct(s[k].rtt_us, 0.99);
      std::printf("{\"contender\":\"%s\",\"conns\":%d,\"bytes\":%zu,\"secret\":%s,\"threads\":%d,"
                  "\"requests\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
                  "\"added_p50_us\":%.1f,\"added_p99_us\":%.1f,\"rps\":%.0f,\"MBps\":%.1f,\"failed\":%s}\n",
                  names[k], conns, bytes, secret ? "true" : "false", threads,
                  static_cast<unsigned long long>(s[k].requests), p50, p99, mean, k ? p50 - d50 : 0.0,
                  k ? p99 - d99 : 0.0, static_cast<double>(s[k].requests) / s[k].seconds,
                  s[k].bytes / s[k].seconds / 1e6, s[k].failed ? "true" : "false");
      std::fflush(stdout);
      if (s[k].failed) rc = 1;
    }
  }
  std::system(("rm -rf '" + dir + "'").c_str());
  return rc;
}
