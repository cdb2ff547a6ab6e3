#include "transports/tcp_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "transports/buffer_budget.h"
#include "transports/fd_io.h"
#include "transports/line_reader.h"

namespace scrub {

namespace asio = boost::asio;
using boost::system::error_code;
using Proto = asio::generic::stream_protocol;
using Socket = Proto::socket;
using Endpoint = Proto::endpoint;
using Descriptor = asio::posix::stream_descriptor;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ------------------------------------------------------------------------------------ addresses

namespace {

uint16_t parse_port(std::string_view text, std::string_view whole) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string_view::npos)
    throw AddressError("invalid port in address '" + std::string(whole) + "'");
  unsigned long v = std::stoul(std::string(text));
  if (v > 65535) throw AddressError("port out of range in address '" + std::string(whole) + "'");
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string Address::to_string() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Address parse_address(std::string_view text, std::string_view default_host) {
  Address a;
  if (text.substr(0, 5) == "unix:") {
    a.kind = Address::Kind::kUnix;
    a.path = std::string(text.substr(5));
    if (a.path.empty()) throw AddressError("empty path in address '" + std::string(text) + "'");
    if (a.path.size() >= sizeof(sockaddr_un{}.sun_path))
      throw AddressError("Unix socket path too long (max " +
                         std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes): " + a.path);
    return a;
  }
  if (text.empty()) throw AddressError("empty address");
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw AddressError("expected [IPv6]:PORT, got '" + std::string(text) + "'");
    a.host = std::string(text.substr(1, close - 1));
    if (a.host.empty()) throw AddressError("empty host in address '" + std::string(text) + "'");
    a.port = parse_port(text.substr(close + 2), text);
    return a;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {  // "8080"
    a.host = std::string(default_host);
    a.port = parse_port(text, text);
    return a;
  }
  if (text.find(':') != colon)
    throw AddressError("an IPv6 address needs brackets: [" + std::string(text.substr(0, colon)) +
                       "]:PORT");
  a.host = colon == 0 ? std::string(default_host) : std::string(text.substr(0, colon));
  a.port = parse_port(text.substr(colon + 1), text);
  return a;
}

namespace {

// "127.0.0.1:54321", "[::1]:80", "unix:/path" or "unix" for an unnamed peer.
std::string endpoint_string(const Endpoint& ep) {
  const sockaddr* sa = ep.data();
  if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    size_t n = ep.size() > offsetof(sockaddr_un, sun_path) ? ep.size() - offsetof(sockaddr_un, sun_path) : 0;
    std::string path(un->sun_path, strnlen(un->sun_path, n));
    return path.empty() ? "unix" : "unix:" + path;
  }
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(sa, static_cast<socklen_t>(ep.size()), host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "?";
  std::string h = host;
  return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + serv;
}

// TCP endpoints for a host and port: a literal needs no lookup; a name is resolved (control plane,
// at start-up, so the data path never waits on DNS).
std::vector<Endpoint> resolve(asio::io_context& ctx, const Address& a, bool passive) {
  std::vector<Endpoint> out;
  if (a.kind == Address::Kind::kUnix) {
    out.emplace_back(asio::local::stream_protocol::endpoint(a.path));
    return out;
  }
  error_code ec;
  asio::ip::address ip = asio::ip::make_address(a.host, ec);
  if (!ec) {
    out.emplace_back(asio::ip::tcp::endpoint(ip, a.port));
    return out;
  }
  asio::ip::tcp::resolver resolver(ctx);
  auto flags = passive ? asio::ip::resolver_base::passive : asio::ip::resolver_base::flags();
  auto results = resolver.resolve(a.host, std::to_string(a.port), flags, ec);
  if (ec) throw AddressError("cannot resolve '" + a.host + "': " + ec.message());
  for (const auto& r : results) out.emplace_back(r.endpoint());
  if (out.empty()) throw AddressError("cannot resolve '" + a.host + "': no address");
  return out;
}

std::string format_duration(milliseconds d) {
  auto ms = d.count();
  if (ms % 60000 == 0 && ms >= 60000) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0 && ms >= 1000) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

constexpr size_t kMinRead = 16 * 1024;       // first buffer, and the least free room per read
// An emptied buffer larger than this is given back, and a server-to-client buffer larger than
// this counts against the server's budget: the same size, so a connection between messages holds
// none of the budget (an idle one keeping a 128 KiB buffer would have held 128 KiB of it for
// good, and enough of them would leave no room for anyone else but the oldest holder).
constexpr size_t kShrinkAbove = 64 * 1024;
constexpr milliseconds kStderrQuiet{100};    // a partial stderr line goes out after this quiet
constexpr milliseconds kAfterExit{500};      // after the child is reaped, its pipes get this long
constexpr milliseconds kLinger{1000};        // a closing client socket is drained this long

// The framing of LineReader (transports/line_reader.h) for a buffer filled by async reads: the
// same chunks, with "read more" handed back to the caller instead of a blocking read(2).
class LineBuffer {
 public:
  struct Chunk {
    std::string_view data;
    bool line_end = false;
    bool newline = false;
  };
  explicit LineBuffer(size_t max_line) : max_(max_line ? max_line : 1) {}

  // True with a chunk; false when more input is needed (or, after set_eof(), nothing is left).
  bool next(Chunk& c) {
    if (scanned_ < end_) {
      const void* nl = std::memchr(buf_.get() + scanned_, '\n', end_ - scanned_);
      if (nl) {
        size_t pos = static_cast<const char*>(nl) - buf_.get();
        if (pos - start_ <= max_) {
          c = {std::string_view(buf_.get() + start_, pos - start_), true, true};
          start_ = scanned_ = pos + 1;
          in_long_ = false;
          return true;
        }
        c = {std::string_view(buf_.get() + start_, max_), false, false};
        start_ += max_;
        scanned_ = pos;
        in_long_ = true;
        return true;
      }
      scanned_ = end_;
    }
    if (end_ - start_ >= max_) {
      c = {std::string_view(buf_.get() + start_, max_), false, false};
      start_ += max_;
      if (scanned_ < start_) scanned_ = start_;
      in_long_ = true;
      return true;
    }
    if (eof_ && (end_ > start_ || in_long_)) {
      in_long_ = false;
      c = {std::string_view(buf_.get() + start_, end_ - start_), true, false};
      start_ = scanned_ = end_;
      return true;
    }
    return false;
  }
  // Room for the next read. Moves pending bytes to the front: call only when no chunk handed out
  // is still in use.
  asio::mutable_buffer space() {
    const size_t cap = planned_capacity();
    if (start_ > 0) {
      std::memmove(buf_.get(), buf_.get() + start_, end_ - start_);
      end_ -= start_;
      scanned_ -= start_;
      start_ = 0;
    }
    if (cap != cap_) {  // grown, or an emptied large buffer given back for a small one
      std::unique_ptr<char[]> other(new char[cap + LineReader::kReadablePadding]);  // data within cap
      if (end_ > 0) std::memcpy(other.get(), buf_.get(), end_);
      buf_ = std::move(other);
      cap_ = cap;
    }
    return asio::buffer(buf_.get() + end_, cap_ - end_);
  }
  // The capacity space() will leave (asked before it is called for the buffer budget): the
  // pending bytes move to the front; an emptied buffer over kShrinkAbove is given back; less than
  // kMinRead of room left doubles it.
  size_t planned_capacity() const {
    const size_t pending = end_ - start_;
    const size_t cap = pending == 0 && cap_ > kShrinkAbove ? 0 : cap_;
    return cap - pending < kMinRead ? std::max(cap * 2, pending + kMinRead) : cap;
  }
  void commit(size_t n) { end_ += n; }
  void set_eof() { eof_ = true; }
  bool eof() const { return eof_; }

 private:
  size_t max_;
  // Not a std::vector: growing one zero-fills it, and a megabyte's line then held its whole
  // doubled capacity in memory (2 MiB), not the bytes read.
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t start_ = 0, end_ = 0, scanned_ = 0;
  bool eof_ = false, in_long_ = false;
};

using IoHandler = std::function<void(const error_code&, size_t)>;
using Buffers = std::array<asio::const_buffer, 3>;

// A closing socket is shut down for sending, then read and discarded until the peer's end of file
// (at most kLinger): closing with unread data would send a reset instead of a clean end of file.
class Lingerer : public std::enable_shared_from_this<Lingerer> {
 public:
  explicit Lingerer(Socket s) : sock_(std::move(s)), timer_(sock_.get_executor()) {}
  void start() {
    error_code ec;
    sock_.cancel(ec);
    sock_.shutdown(Socket::shutdown_send, ec);
    timer_.expires_after(kLinger);
    timer_.async_wait([self = shared_from_this()](const error_code& e) {
      if (e) return;
      error_code ignored;
      self->sock_.close(ignored);
    });
    read();
  }

 private:
  void read() {
    sock_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const error_code& e, size_t) {
      if (!e) return self->read();
      error_code ignored;
      self->sock_.close(ignored);
      self->timer_.cancel();
    });
  }
  Socket sock_;
  asio::steady_timer timer_;
  std::array<char, 4096> buf_;
};

void linger_close(Socket sock) {
  if (sock.is_open()) std::make_shared<Lingerer>(std::move(sock))->start();
}

// One side's byte stream: a socket, or a child's stdin (written) and stdout (read).
class Channel {
 public:
  virtual ~Channel() = default;
  virtual void read(asio::mutable_buffer b, IoHandler h) = 0;
  virtual void write(const Buffers& b, IoHandler h) = 0;
  virtual void shutdown_send() = 0;     // the peer reads end of file
  virtual void shutdown_receive() = 0;  // our pending read ends with end of file / abort
  virtual void close() = 0;
  // Bytes are waiting to be read (a pipe's FIONREAD); false where it cannot tell.
  virtual bool input_pending() { return false; }
};

class SocketChannel : public Channel {
 public:
  explicit SocketChannel(Socket s) : sock_(std::move(s)) {}
  Socket& socket() { return sock_; }
  void read(asio::mutable_buffer b, IoHandler h) override { sock_.async_read_some(b, std::move(h)); }
  void write(const Buffers& b, IoHandler h) override { asio::async_write(sock_, b, std::move(h)); }
  void shutdown_send() override {
    error_code ec;
    sock_.shutdown(Socket::shutdown_send, ec);
  }
  // Linux: a blocked read of a TCP or Unix socket returns end of file once the queue is read.
  void shutdown_receive() override {
    error_code ec;
    sock_.shutdown(Socket::shutdown_receive, ec);
  }
  void close() override {
    error_code ec;
    sock_.close(ec);
  }
  void linger() { linger_close(std::move(sock_)); }

 private:
  Socket sock_;
};

class PipeChannel : public Channel {
 public:
  PipeChannel(const asio::any_io_executor& ex, int in_fd, int out_fd) : in_(ex), out_(ex) {
    if (in_fd >= 0) in_.assign(in_fd);
    if (out_fd >= 0) out_.assign(out_fd);
  }
  void read(asio::mutable_buffer b, IoHandler h) override { out_.async_read_some(b, std::move(h)); }
  void write(const Buffers& b, IoHandler h) override { asio::async_write(in_, b, std::move(h)); }
  void shutdown_send() override {
    error_code ec;
    in_.close(ec);
  }
  void shutdown_receive() override {
    error_code ec;
    out_.close(ec);
  }
  void close() override {
    shutdown_send();
    shutdown_receive();
  }
  bool input_pending() override {
    int n = 0;
    return out_.is_open() && ::ioctl(out_.native_handle(), FIONREAD, &n) == 0 && n > 0;
  }

 private:
  Descriptor in_, out_;
};

// Our own copy of a ChildProcess fd (close-on-exec), so Asio owns it and ChildProcess closes its.
int dup_fd(int fd) { return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 3); }

}  // namespace

// ------------------------------------------------------------------------------------ the server

class Connection;

struct TcpServer::Impl {
  explicit Impl(TcpServerOptions o)
      : opt(std::move(o)),
        signals(ctx),
        grace_timer(ctx),
        hard_stop(ctx),
        accept_strand(asio::make_strand(ctx)),
        budget(opt.buffer_budget) {}

  // Declared first, destroyed last: pending handlers (and the connections they hold) go with it,
  // while everything below is already gone, so a Connection's destructor must not touch `core_`.
  asio::io_context ctx;
  TcpServerOptions opt;
  asio::signal_set signals;
  asio::steady_timer grace_timer, hard_stop;
  asio::strand<asio::io_context::executor_type> accept_strand;
  BufferBudget budget;  // given back by each connection's finalize(), never its destructor
  std::optional<asio::basic_socket_acceptor<Proto>> acceptor;
  std::vector<Endpoint> upstream;
  Address local;
  std::string unix_path;  // to remove at exit, if it is still the socket we made
  dev_t unix_dev = 0;
  ino_t unix_ino = 0;

  std::atomic<uint64_t> next_id{0}, accepted{0}, refused{0};
  std::atomic<uint64_t> ts_messages{0}, ts_bytes{0}, tc_messages{0}, tc_bytes{0}, stderr_lines{0};

  std::mutex mu;  // guards open, stopping, forced
  std::map<uint64_t, std::weak_ptr<Connection>> open;
  bool stopping = false;
  bool forced = false;
  mutable std::mutex log_mu;

  void log(std::string_view line) const {
    if (opt.log) return opt.log(line);
    std::string l(line);
    l += '\n';
    std::lock_guard<std::mutex> lock(log_mu);
    write_all(2, l);
  }
  void listen();
  void accept();
  void on_accept(Socket s);
  void unregister(uint64_t id);
  void stop(bool force);
  void remove_unix_socket();
  void wait_signals();
};

// One accepted client and its upstream. Everything runs on the strand of the client socket's
// executor; handlers hold a shared_ptr, so the object lives until the last one has run.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(TcpServer::Impl& core, ConnectionInfo info, Socket client,
             std::unique_ptr<ConnectionHooks> hooks)
      : core_(core),
        info_(std::move(info)),
        ex_(client.get_executor()),
        hooks_(std::move(hooks)),
        to_server_(Flow::kToServer, core.opt.max_line),
        to_client_(Flow::kToClient, core.opt.max_line),
        idle_timer_(ex_),
        child_timer_(ex_),
        after_exit_timer_(ex_),
        stderr_timer_(ex_),
        started_at_(Clock::now()),
        last_activity_(started_at_) {
    client_.ch = std::make_unique<SocketChannel>(std::move(client));
  }

  const asio::any_io_executor& executor() const { return ex_; }

  void start() {
    arm_idle();
    if (core_.opt.child.argv.empty()) {
      auto sock = std::make_unique<SocketChannel>(Socket(ex_));
      Socket& s = sock->socket();
      upstream_.ch = std::move(sock);
      connecting_ = true;
      asio::async_connect(s, core_.upstream,
                          [self = shared_from_this(), &s](const error_code& ec, const Endpoint&) {
                            self->connecting_ = false;
                            if (self->closing_) return;
                            if (ec) {
                              return self->abort("upstream " + self->core_.opt.connect->to_string() +
                                                 ": " + ec.message());
                            }
                            set_no_delay(s);
                            self->start_pumps();
                          });
      return;
    }
    try {
      child_.emplace(ChildProcess::spawn(core_.opt.child));
    } catch (const SpawnError& e) {
      std::string why = e.what();
      if (why.rfind("mcp-scrub: ", 0) == 0) why.erase(0, 11);
      return abort(why);
    }
    upstream_.ch = std::make_unique<PipeChannel>(ex_, dup_fd(child_->stdin_fd()), dup_fd(child_->stdout_fd()));
    err_.emplace(ex_);
    if (int fd = dup_fd(child_->stderr_fd()); fd >= 0) {
      err_->assign(fd);
      stderr_done_ = false;
      err_buf_.resize(kMinRead);
    }
    child_->close_stdin();
    child_->close_stdout();
    child_->close_stderr();
    if (int fd = dup_fd(child_->pidfd()); fd >= 0) pidfd_.emplace(ex_, fd);
    wait_child();
    if (!stderr_done_) read_stderr();
    start_pumps();
  }

  // Shutdown: no more requests from the client; what is in flight still comes back.
  void drain() {
    if (closing_) return;
    draining_ = true;
    if (connecting_) return abort("shutdown");
    client_.ch->shutdown_receive();
  }

  // After the grace period: close now; a child gets SIGTERM at once.
  void force(const std::string& reason) {
    abort(reason);
    terminate_child_now();
  }

 private:
  struct Pump {
    Pump(Flow f, size_t max_line) : flow(f), buf(max_line) {}
    Flow flow;
    LineBuffer buf;
    bool in_long = false;
    bool done = false;
    bool reading = false;  // a read of its source is pending
    bool cut = false;      // its source was closed after the child exited: the read's error is its end
    FlowCounters counters;
    LineVerdict verdict;
    BufferBudget::Holder hold;  // its share of the server's buffer budget
  };
  // One side's write queue: pump output, and replies sent back to that side.
  struct Side {
    struct Item {
      std::string owned;
      std::string_view a, b;  // point into a pump buffer, untouched until `done` runs
      std::function<void(bool)> done;
    };
    std::unique_ptr<Channel> ch;
    std::deque<Item> queue;
    bool writing = false;
    bool finish_requested = false;
    bool finished = false;
    bool failed = false;
    std::string error;
  };

  static void set_no_delay(Socket& s) {
    // Lines go out as soon as they are complete; Nagle would hold a small one back.
    error_code ec;
    Endpoint local = s.local_endpoint(ec);
    if (ec || local.protocol().family() == AF_UNIX) return;
    s.set_option(asio::ip::tcp::no_delay(true), ec);
  }

  Side& source(Pump& p) { return p.flow == Flow::kToServer ? client_ : upstream_; }
  Side& dest(Pump& p) { return p.flow == Flow::kToServer ? upstream_ : client_; }

  void start_pumps() {
    set_no_delay(static_cast<SocketChannel&>(*client_.ch).socket());
    if (draining_) client_.ch->shutdown_receive();
    pump(to_server_);
    pump(to_client_);
  }

  // Hands every ready chunk to the hooks, one write at a time; reads when none is left.
  void pump(Pump& p) {
    if (closing_ || p.done) return;
    LineBuffer::Chunk c;
    while (p.buf.next(c)) {
      LineVerdict& v = p.verdict;
      v.clear();
      if (p.in_long || !c.line_end) {
        hooks_->on_long_line(p.flow, c.data, c.line_end, c.newline, v);
        p.in_long = !c.line_end;
      } else {
        hooks_->on_line(p.flow, c.data, c.newline, v);
      }
      if (c.line_end) count_message(p);
      if (!v.reply.empty()) send(source(p), std::move(v.reply), {}, {}, nullptr);
      std::string owned;
      std::string_view a, b;
      if (v.kind == LineVerdict::Kind::kForward) {
        a = c.data;
        if (c.newline) b = "\n";
      } else if (v.kind == LineVerdict::Kind::kReplace) {
        owned = std::move(v.replacement);
      }
      if (owned.empty() && a.empty() && b.empty()) continue;
      send(dest(p), std::move(owned), a, b, [self = shared_from_this(), &p](bool ok) {
        if (self->closing_ || p.done) return;
        if (!ok) return self->write_failed(p);
        self->pump(p);
      });
      return;  // resumes when written: backpressure
    }
    if (p.buf.eof()) return end_of_flow(p);
    if (!reserve(p)) return;  // resumes when another connection gives room back
    p.reading = true;
    source(p).ch->read(p.buf.space(), [self = shared_from_this(), &p](const error_code& ec, size_t n) {
      p.reading = false;
      if (self->closing_ || p.done) return;
      if (n > 0) {
        p.buf.commit(n);
        self->count_bytes(p, n);
        self->last_activity_ = Clock::now();
      }
      if (ec == asio::error::eof || (ec && p.cut)) {
        p.buf.set_eof();  // (cut: what was read is handed on like the end of any stream)
      } else if (ec) {
        return self->read_failed(p, ec);
      }
      self->pump(p);
    });
  }

  // A server-to-client buffer grows past 64 KiB only with room in the server's budget
  // (transports/buffer_budget.h); without it the direction reads nothing, so its upstream waits as
  // it would on a slow client. Requests are left out: a client that writes a large request before
  // it reads the answers would otherwise wait on room its own answer holds.
  bool reserve(Pump& p) {
    if (p.flow != Flow::kToClient) return true;
    const size_t want = p.buf.planned_capacity();
    return core_.budget.request(p.hold, want > kShrinkAbove ? want : 0, [self = shared_from_this(), &p] {
      asio::post(self->ex_, [self, &p] { self->pump(p); });
    });
  }

  void count_message(Pump& p) {
    ++p.counters.messages;
    (p.flow == Flow::kToServer ? core_.ts_messages : core_.tc_messages).fetch_add(1, std::memory_order_relaxed);
  }
  void count_bytes(Pump& p, size_t n) {
    p.counters.bytes += n;
    (p.flow == Flow::kToServer ? core_.ts_bytes : core_.tc_bytes).fetch_add(n, std::memory_order_relaxed);
  }

  void send(Side& s, std::string owned, std::string_view a, std::string_view b,
            std::function<void(bool)> done) {
    if (s.failed || s.finish_requested || !s.ch) {
      if (done) asio::post(ex_, [done = std::move(done)] { done(false); });
      return;
    }
    s.queue.push_back({std::move(owned), a, b, std::move(done)});
    if (!s.writing) write_next(s);
  }

  void write_next(Side& s) {
    if (s.queue.empty()) {
      s.writing = false;
      if (s.finish_requested && !s.finished && !s.failed) {
        s.finished = true;
        s.ch->shutdown_send();
        if (&s == &upstream_ && child_) child_stdin_closed();
      }
      return maybe_finish();
    }
    s.writing = true;
    Side::Item& it = s.queue.front();
    Buffers bufs{asio::buffer(it.owned), asio::buffer(it.a.data(), it.a.size()),
                 asio::buffer(it.b.data(), it.b.size())};
    s.ch->write(bufs, [self = shared_from_this(), &s](const error_code& ec, size_t) {
      Side::Item item = std::move(s.queue.front());
      s.queue.pop_front();
      if (ec) {
        s.failed = true;
        s.writing = false;
        s.error = ec.message();
        std::deque<Side::Item> rest;
        rest.swap(s.queue);
        if (item.done) item.done(false);
        for (auto& r : rest)
          if (r.done) r.done(false);
        return self->maybe_finish();
      }
      if (item.done) item.done(true);
      self->write_next(s);
    });
  }

  // Half-close once what is queued is written.
  void finish(Side& s) {
    if (s.finish_requested) return;
    s.finish_requested = true;
    if (!s.writing) write_next(s);
  }

  void end_of_flow(Pump& p) {
    p.done = true;
    if (p.flow == Flow::kToServer) {
      note_reason(draining_ ? "shutdown" : "client closed");
      finish(upstream_);
    } else {
      if (!child_) {
        // An MCP server that stops talking is done with the session (it cannot answer any
        // more): the client gets the rest, then end of file, and the connection closes.
        note_reason("upstream closed");
        to_server_.done = true;
      }
      finish(client_);
    }
    maybe_finish();
  }

  void read_failed(Pump& p, const error_code& ec) {
    if (p.flow == Flow::kToServer) return abort("client: " + ec.message());
    abort(std::string(child_ ? "child stdout: " : "upstream: ") + ec.message());
  }

  void write_failed(Pump& p) {
    if (p.flow == Flow::kToClient) return abort("client gone: " + client_.error);
    // The upstream stopped reading: no more requests; its answers still come back.
    p.done = true;
    if (!child_) note_reason("upstream stopped reading: " + upstream_.error);
    maybe_finish();
  }

  void note_reason(const std::string& r) {
    if (reason_.empty()) reason_ = r;
  }

  // Closes both sides at once; a child is ended (stdin closed, then SIGTERM after the grace).
  void abort(const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    note_reason(reason);
    to_server_.done = to_client_.done = true;
    // A clean end of file for the client, even with its unread bytes (close() would reset).
    static_cast<SocketChannel&>(*client_.ch).linger();
    if (upstream_.ch) upstream_.ch->close();
    if (child_ && !child_reaped_) child_stdin_closed();
    maybe_finish();
  }

  // ---- child

  void wait_child() {
    if (!pidfd_) {  // no pidfd (kernel < 5.3): poll
      child_poll_ = std::make_unique<asio::steady_timer>(ex_);
      return wait_child_poll();
    }
    pidfd_->async_wait(Descriptor::wait_read, [self = shared_from_this()](const error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      if (auto st = self->child_->try_wait()) return self->child_exited(*st);
      self->wait_child();
    });
  }
  void wait_child_poll() {
    child_poll_->expires_after(milliseconds(50));
    child_poll_->async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec) return;
      if (auto st = self->child_->try_wait()) return self->child_exited(*st);
      self->wait_child_poll();
    });
  }

  void child_exited(int status) {
    child_reaped_ = true;
    child_status_ = status;
    child_timer_.cancel();
    if (pidfd_) {
      error_code ec;
      pidfd_->close(ec);
    }
    arm_after_exit();
    maybe_finish();
  }

  // The child's output still flows or waits on us, so what the pipe holds must be delivered:
  // the connection is not reading (waiting for budget or on a slow client), bytes arrived since
  // `seen`, or the pipe holds bytes a busy event loop has not read yet.
  bool child_output_pending(uint64_t seen) {
    const Pump& out = to_client_;
    return !out.reading || out.counters.bytes != seen || upstream_.ch->input_pending();
  }

  // Its output ends with it, unless a grandchild still holds the pipes: they get a moment. Only
  // a read that waited that long on an empty pipe with nothing arriving is cut off, and what it
  // brought is still handed on (the cut is the stream's end). While the child's output is
  // pending, its last answers are there to deliver: a 500 ms cut lost the rest of a large
  // answer that waited behind fifteen other connections' ones.
  void arm_after_exit() {
    after_exit_timer_.expires_after(kAfterExit);
    after_exit_timer_.async_wait([self = shared_from_this(), seen = to_client_.counters.bytes](const error_code& ec) {
      if (ec || self->closed_) return;
      Pump& out = self->to_client_;
      if (!out.done && !out.cut) {
        if (self->child_output_pending(seen)) return self->arm_after_exit();
        out.cut = true;
        self->upstream_.ch->shutdown_receive();  // the pending read ends; pump() ends the flow
      }
      self->close_stderr();
      self->maybe_finish();
    });
  }

  // The child's stdin is closed: it has the grace to exit before SIGTERM, then SIGKILL.
  void child_stdin_closed() {
    if (term_stage_ != 0 || child_reaped_ || !child_) return;
    term_stage_ = 1;
    arm_child_timer();
  }
  void terminate_child_now() {
    if (!child_ || child_reaped_ || term_stage_ >= 2) return;
    term_stage_ = 2;
    child_->send_signal(SIGTERM);
    child_->send_signal(SIGCONT);
    arm_child_timer();
  }
  void arm_child_timer() {
    child_timer_.expires_after(ChildProcess::kTerminateGrace);
    child_timer_.async_wait([self = shared_from_this(), seen = to_client_.counters.bytes](const error_code& ec) {
      if (ec || self->child_reaped_) return;
      if (self->term_stage_ == 1) {
        // A child still delivering its answers is not hung: it waits on its stdout while the
        // connection waits its turn in the buffer budget or on a slow client (or bytes are in
        // the pipe). Ended after 2 s regardless, it lost its last answer (16 connections in a
        // 200 KB budget under ThreadSanitizer). Its grace starts again.
        if (!self->closing_ && !self->to_client_.done && self->child_output_pending(seen))
          return self->arm_child_timer();
        self->core_.log("mcp-scrub: conn " + std::to_string(self->info_.id) + ": child still running " +
                        format_duration(ChildProcess::kTerminateGrace) +
                        " after its stdin closed: SIGTERM");
        self->terminate_child_now();
      } else if (self->term_stage_ == 2) {
        self->core_.log("mcp-scrub: conn " + std::to_string(self->info_.id) +
                        ": child ignored SIGTERM: SIGKILL");
        self->term_stage_ = 3;
        self->child_->send_signal(SIGKILL);
      }
    });
  }

  // ---- child stderr: lines, a partial line after 100 ms of quiet, pieces of an over-long line

  void read_stderr() {
    err_->async_read_some(asio::buffer(err_buf_), [self = shared_from_this()](const error_code& ec, size_t n) {
      if (self->stderr_done_) return;
      self->on_stderr_bytes(n);
      if (ec) {
        if (!self->err_pending_.empty()) self->emit_stderr(self->err_pending_, false);
        self->err_pending_.clear();
        self->close_stderr();
        return self->maybe_finish();
      }
      if (!self->err_pending_.empty()) self->arm_stderr_quiet();
      self->read_stderr();
    });
  }
  void on_stderr_bytes(size_t n) {
    err_pending_.append(err_buf_.data(), n);
    size_t start = 0;
    for (size_t nl; (nl = err_pending_.find('\n', start)) != std::string::npos; start = nl + 1)
      emit_stderr(std::string_view(err_pending_).substr(start, nl - start), true);
    err_pending_.erase(0, start);
    const size_t max = core_.opt.max_line;
    while (err_pending_.size() > max) {
      emit_stderr(std::string_view(err_pending_).substr(0, max), false);
      err_pending_.erase(0, max);
    }
  }
  void arm_stderr_quiet() {
    stderr_timer_.expires_after(kStderrQuiet);
    stderr_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->stderr_done_ || self->err_pending_.empty()) return;
      self->emit_stderr(self->err_pending_, false);
      self->err_pending_.clear();
    });
  }
  void emit_stderr(std::string_view text, bool line_end) {
    ++stderr_lines_;
    core_.stderr_lines.fetch_add(1, std::memory_order_relaxed);
    err_out_.clear();
    if (!hooks_->on_stderr(text, line_end, err_out_)) return;
    core_.log("[conn " + std::to_string(info_.id) + "] " + err_out_);
  }
  void close_stderr() {
    if (stderr_done_) return;
    stderr_done_ = true;
    stderr_timer_.cancel();
    error_code ec;
    if (err_) err_->close(ec);
  }

  // ---- idle timeout

  void arm_idle() {
    const milliseconds limit = core_.opt.idle_timeout;
    if (limit.count() <= 0) return;
    idle_timer_.expires_at(last_activity_ + limit);
    idle_timer_.async_wait([self = shared_from_this(), limit](const error_code& ec) {
      if (ec || self->closing_) return;
      if (Clock::now() - self->last_activity_ >= limit) return self->abort("idle for " + format_duration(limit));
      self->arm_idle();
    });
  }

  // ---- the end

  void maybe_finish() {
    if (closed_) return;
    if (client_.writing || (upstream_.ch && upstream_.writing)) return;
    bool over;
    if (child_) {
      over = child_reaped_ && (to_client_.done || closing_) && stderr_done_;
    } else {
      over = closing_ || (to_server_.done && to_client_.done);
    }
    if (over) finalize();
  }

  void finalize() {
    closed_ = closing_ = true;
    // Room back, and a retry for every waiter (this connection's own, if it waited, then ends).
    core_.budget.release(to_server_.hold);
    core_.budget.release(to_client_.hold);
    core_.budget.wake_all();
    idle_timer_.cancel();
    child_timer_.cancel();
    after_exit_timer_.cancel();
    stderr_timer_.cancel();
    if (child_poll_) child_poll_->cancel();
    static_cast<SocketChannel&>(*client_.ch).linger();
    if (upstream_.ch) upstream_.ch->close();
    close_stderr();
    if (pidfd_) {
      error_code ec;
      pidfd_->close(ec);
    }
    ConnectionStats st;
    st.id = info_.id;
    st.to_server = to_server_.counters;
    st.to_client = to_client_.counters;
    st.stderr_lines = stderr_lines_;
    st.child_status = child_status_;
    st.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - started_at_);
    std::string reason = reason_;
    if (child_status_) {
      if (!reason.empty()) reason += "; ";
      reason += "child exited (status " + std::to_string(*child_status_) + ")";
    }
    if (reason.empty()) reason = "closed";
    // Its slot is free before it is reported: a client that saw the line may connect again.
    core_.unregister(info_.id);
    hooks_->on_close(st, reason);
  }

  TcpServer::Impl& core_;
  ConnectionInfo info_;
  asio::any_io_executor ex_;
  std::unique_ptr<ConnectionHooks> hooks_;
  Side client_, upstream_;
  Pump to_server_, to_client_;

  std::optional<ChildProcess> child_;
  std::optional<Descriptor> err_, pidfd_;
  std::unique_ptr<asio::steady_timer> child_poll_;
  std::vector<char> err_buf_;
  std::string err_pending_, err_out_;
  uint64_t stderr_lines_ = 0;
  bool stderr_done_ = true;
  bool child_reaped_ = false;
  std::optional<int> child_status_;
  int term_stage_ = 0;  // 0 running, 1 stdin closed (grace), 2 SIGTERM sent, 3 SIGKILL sent

  asio::steady_timer idle_timer_, child_timer_, after_exit_timer_, stderr_timer_;
  Clock::time_point started_at_, last_activity_;
  std::string reason_;
  bool connecting_ = false, draining_ = false, closing_ = false, closed_ = false;
};

void TcpServer::Impl::listen() {
  std::vector<Endpoint> eps = resolve(ctx, opt.listen, true);
  const Endpoint& ep = eps.front();
  acceptor.emplace(accept_strand);
  acceptor->open(ep.protocol());
  if (opt.listen.kind == Address::Kind::kUnix) {
    const std::string& path = opt.listen.path;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) throw AddressError(path + " exists and is not a socket");
      // A socket file nobody accepts on is left over from a dead process: replace it.
      Socket probe(ctx);
      error_code ec;
      probe.connect(ep, ec);
      if (!ec) throw AddressError("something is already listening on " + path);
      ::unlink(path.c_str());
    }
    // Mode 0600 from the start: no window in which another user could connect.
    mode_t old = ::umask(0177);
    error_code ec;
    acceptor->bind(ep, ec);
    ::umask(old);
    if (ec) throw std::system_error(ec, "cannot listen on " + opt.listen.to_string());
    ::chmod(path.c_str(), 0600);
    if (::lstat(path.c_str(), &st) == 0) {
      unix_path = path;
      unix_dev = st.st_dev;
      unix_ino = st.st_ino;
    }
    local = opt.listen;
  } else {
    acceptor->set_option(asio::socket_base::reuse_address(true));
    error_code ec;
    acceptor->bind(ep, ec);
    if (ec) throw std::system_error(ec, "cannot listen on " + opt.listen.to_string());
    local = parse_address(endpoint_string(acceptor->local_endpoint()));
  }
  acceptor->listen(asio::socket_base::max_listen_connections);
  if (!opt.child.argv.empty()) return;
  if (!opt.connect) throw AddressError("no upstream: give --connect ADDR or -- COMMAND");
  upstream = resolve(ctx, *opt.connect, false);
}

void TcpServer::Impl::accept() {
  // Each connection gets a strand of its own: its handlers never run concurrently.
  auto sock = std::make_shared<Socket>(asio::make_strand(ctx));
  acceptor->async_accept(*sock, [this, sock](const error_code& ec) {
    if (!acceptor->is_open()) return;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
      // Out of fds: wait instead of spinning; the backlog keeps the clients meanwhile.
      log("mcp-scrub: accept: " + ec.message() + "; retrying in 100ms");
      auto t = std::make_shared<asio::steady_timer>(accept_strand, milliseconds(100));
      t->async_wait([this, t](const error_code&) {
        if (acceptor->is_open()) accept();
      });
      return;
    }
    if (!ec) on_accept(std::move(*sock));
    accept();
  });
}

void TcpServer::Impl::on_accept(Socket s) {
  const uint64_t id = ++next_id;
  accepted.fetch_add(1, std::memory_order_relaxed);
  ConnectionInfo info;
  info.id = id;
  error_code ec;
  Endpoint peer = s.remote_endpoint(ec);
  info.peer = ec ? "?" : endpoint_string(peer);
  info.child = !opt.child.argv.empty();
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return linger_close(std::move(s));
    if (opt.max_connections > 0 && open.size() >= opt.max_connections) {
      refused.fetch_add(1, std::memory_order_relaxed);
      log("mcp-scrub: conn " + std::to_string(id) + " refused: " + std::to_string(open.size()) +
          " connections open (--max-connections " + std::to_string(opt.max_connections) + ")");
      return linger_close(std::move(s));
    }
    conn = std::make_shared<Connection>(*this, info, std::move(s), opt.make_hooks(info));
    open[id] = conn;
  }
  asio::dispatch(conn->executor(), [conn] { conn->start(); });
}

void TcpServer::Impl::unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu);
  open.erase(id);
  if (stopping && open.empty()) ctx.stop();
}

void TcpServer::Impl::remove_unix_socket() {
  if (unix_path.empty()) return;
  struct stat st {};
  if (::lstat(unix_path.c_str(), &st) == 0 && st.st_dev == unix_dev && st.st_ino == unix_ino)
    ::unlink(unix_path.c_str());
  unix_path.clear();
}

void TcpServer::Impl::stop(bool force_now) {
  asio::dispatch(accept_strand, [this, force_now] {
    std::vector<std::shared_ptr<Connection>> conns;
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (forced) return;
      first = !stopping;
      if (!first && !force_now) return;  // already draining
      stopping = true;
      forced = force_now;
      for (auto& [id, w] : open)
        if (auto c = w.lock()) conns.push_back(std::move(c));
      if (first) {
        error_code ec;
        if (acceptor) acceptor->close(ec);
        remove_unix_socket();
        log("mcp-scrub: stopping: " + std::to_string(conns.size()) + " connection" +
            (conns.size() == 1 ? "" : "s") + " open, grace " + format_duration(opt.grace));
      }
      if (open.empty()) {
        ctx.stop();
        return;
      }
    }
    if (force_now) {
      for (auto& c : conns) asio::dispatch(c->executor(), [c] { c->force("shutdown"); });
    } else if (first) {
      for (auto& c : conns) asio::dispatch(c->executor(), [c] { c->drain(); });
      grace_timer.expires_after(opt.grace);
      grace_timer.async_wait([this](const error_code& ec) {
        if (!ec) stop(true);
      });
    }
    if (first || force_now) {
      // Whatever happens, the process ends: children get SIGTERM then SIGKILL within two graces.
      hard_stop.expires_after((force_now ? milliseconds(0) : opt.grace) + 2 * ChildProcess::kTerminateGrace +
                              milliseconds(1000));
      hard_stop.async_wait([this](const error_code& ec) {
        if (!ec) ctx.stop();
      });
    }
  });
}

void TcpServer::Impl::wait_signals() {
  signals.async_wait([this](const error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGUSR1) {
      if (opt.on_report) opt.on_report();
    } else {
      bool already;
      {
        std::lock_guard<std::mutex> lock(mu);
        already = stopping;
      }
      stop(already);  // a second signal closes what is left at once
    }
    wait_signals();
  });
}

TcpServer::TcpServer(TcpServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (!impl_->opt.make_hooks) throw std::invalid_argument("TcpServer: make_hooks is required");
  impl_->listen();
  if (impl_->opt.handle_signals) {
    // Now, not in run(): a signal that arrives once we are listening is kept for run().
    impl_->signals.add(SIGINT);
    impl_->signals.add(SIGTERM);
    impl_->signals.add(SIGUSR1);
  }
}

TcpServer::~TcpServer() { impl_->remove_unix_socket(); }

const Address& TcpServer::local_address() const { return impl_->local; }

void TcpServer::run() {
  Impl& s = *impl_;
  if (s.opt.handle_signals) s.wait_signals();
  asio::dispatch(s.accept_strand, [&s] { s.accept(); });
  auto work = [&s] {
    for (;;) {
      try {
        s.ctx.run();
        return;
      } catch (const std::exception& e) {
        // Not expected (the data path does not throw); keep serving the other connections.
        s.log(std::string("mcp-scrub: error: internal: ") + e.what());
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < std::max(1, s.opt.threads); ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  error_code ec;
  s.signals.cancel(ec);
  if (s.acceptor) s.acceptor->close(ec);
  s.remove_unix_socket();
}

void TcpServer::request_stop() {
  bool already;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    already = impl_->stopping;
  }
  impl_->stop(already);
}

ServerStats TcpServer::stats() const {
  const Impl& s = *impl_;
  ServerStats st;
  st.accepted = s.accepted.load();
  st.refused = s.refused.load();
  {
    std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(s.mu));
    st.open = s.open.size();
  }
  st.to_server = {s.ts_messages.load(), s.ts_bytes.load()};
  st.to_client = {s.tc_messages.load(), s.tc_bytes.load()};
  st.stderr_lines = s.stderr_lines.load();
  return st;
}

void TcpServer::log(std::string_view line) const { impl_->log(line); }

}  // namespace scrub
