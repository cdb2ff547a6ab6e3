// TcpServer: newline-delimited JSON-RPC over TCP and Unix sockets. Accepts connections and relays
// each one to an upstream: another socket (`--connect`) or a child process of its own running a
// stdio server (`-- COMMAND`). Moves lines; knows nothing of secrets: every line goes through the
// connection's ConnectionHooks, which decide what is forwarded.
//
//   client --(to-server lines)--> hooks.on_line --> upstream socket / child stdin
//   client <--(to-client lines)-- hooks.on_line <-- upstream socket / child stdout
//   proxy stderr <-- "[conn N] " + hooks.on_stderr(line) <-- child stderr
//
// Promises:
//  - Order: a connection's hooks are called one at a time (one strand per connection), and each
//    direction is handled sequentially: a line is read, handed to the hooks, written out, and
//    only then is the next line looked at. Lines are never merged, reordered or held: each goes
//    out in its own write as soon as the hooks return.
//  - Backpressure: a direction does not read again until its last write completed, so a slow
//    reader stops reading from the other side. A direction buffers about max_line bytes at most
//    (it starts at 16 KiB and gives back what a big line needed once it is out); a longer line
//    is handed to on_long_line() in pieces and never held whole.
//  - Memory across connections: the server-to-client directions together hold at most
//    buffer_budget bytes of buffers over 64 KiB, plus what the oldest of them needs (a message
//    larger than the budget passes alone); a direction without room reads nothing until another
//    gives some back, so its upstream waits as on a slow client (transports/buffer_budget.h).
//  - Threads: a fixed pool of `threads` runs every connection (and the hooks, i.e. the scanning).
//    Nothing blocks a pool thread except the hooks, fork() for a child, and log lines written
//    to stderr (one write each; a stderr nobody reads stalls the proxy, as it would the wrap).
//  - Half-close is passed on: end of file from the client shuts down the upstream's write side
//    (a child's stdin is closed) and the answers keep flowing back. End of file from the upstream
//    ends the session (an MCP server that stops talking cannot answer): the client gets what was
//    sent, then end of file. Closing a client socket is always a clean end of file: its unread
//    bytes are drained first (briefly), so the kernel does not answer with a reset.
//  - A child is always reaped, on the pool, through its pidfd: once its stdin is closed (client
//    end of file, client gone, shutdown) it has ChildProcess::kTerminateGrace to exit, then
//    SIGTERM to its group, then SIGKILL after as long again. No zombie is left behind.
//  - A connection is reported once to hooks.on_close(), after its sockets are closed and its
//    child (if any) reaped, with the counters and the reason it ended; its max_connections slot
//    is free by then. Over max_connections, a connection is accepted, logged and closed. With
//    idle_timeout, a connection that read nothing either way for that long is closed.
//  - Shutdown (SIGTERM/SIGINT when handle_signals, or request_stop()): the listener closes (a
//    Unix socket file is removed), each connection stops reading from its client (what the
//    kernel already holds still goes on) and passes end of file upstream, so the answers in
//    flight still arrive; after `grace` what is left is closed (children get SIGTERM at once).
//    A second signal closes everything at once. run() returns when every connection is gone.
// Errors: the constructor throws (AddressError, std::system_error) when it cannot listen or
// resolve: control plane. Nothing on the data path throws; a failed connection is closed and
// its reason logged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "transports/child_process.h"

namespace scrub {

// A listen or connect address: "HOST:PORT", "[IPv6]:PORT", "unix:/path", or a bare "PORT" /
// ":PORT" meaning the default host.
struct Address {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp: a name or a literal (IPv6 without brackets)
  uint16_t port = 0;
  std::string path;  // kUnix
  // "127.0.0.1:80", "[::1]:80", "unix:/x"
  std::string to_string() const;
};

struct AddressError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws AddressError naming what is wrong. The default host is loopback: listening on another
// interface has to be written out.
Address parse_address(std::string_view text, std::string_view default_host = "127.0.0.1");

enum class Flow { kToServer, kToClient };

// What to do with one line (or one piece of an over-long line).
struct LineVerdict {
  enum class Kind { kForward, kReplace, kDrop };
  Kind kind = Kind::kForward;  // kForward: the original bytes and their "\n" go on
  std::string replacement;     // kReplace: sent instead, line ending included
  std::string reply;           // if not empty: sent back to the line's sender (line ending included),
                               // e.g. an error answering a request the other side will never see
  void clear() {
    kind = Kind::kForward;
    replacement.clear();
    reply.clear();
  }
};

struct FlowCounters {
  uint64_t messages = 0;  // lines (an over-long line counts once)
  uint64_t bytes = 0;     // bytes read from the sender, line endings included
};

struct ConnectionStats {
  uint64_t id = 0;
  FlowCounters to_server, to_client;
  uint64_t stderr_lines = 0;
  std::optional<int> child_status;  // shell-style, once reaped
  std::chrono::milliseconds duration{0};
};

struct ConnectionInfo {
  uint64_t id = 0;     // 1, 2, ... in accept order (refused connections take a number too)
  std::string peer;    // "127.0.0.1:54321", "unix"
  bool child = false;  // upstream is a child process (stderr exists)
};

// One per connection, made by TcpServerOptions::make_hooks on accept. Called on the connection's
// strand, never concurrently for one connection; different connections run in parallel.
class ConnectionHooks {
 public:
  virtual ~ConnectionHooks() = default;
  // A complete line travelling `flow`, without its "\n" (a "\r" before it stays in `line`).
  // `newline` is false for a last line cut by end of file. As with LineReader, the
  // LineReader::kReadablePadding bytes after `line` are readable (what they hold is
  // unspecified): a parser may read past its end.
  virtual void on_line(Flow flow, std::string_view line, bool newline, LineVerdict& v) = 0;
  // A line longer than max_line, in pieces as they pass: never held whole. `end` marks the last
  // piece (`newline`: a "\n" ended it). kForward passes the piece on (and the "\n" after the
  // last); kReplace sends `replacement` instead; kDrop discards it.
  virtual void on_long_line(Flow flow, std::string_view piece, bool end, bool newline,
                            LineVerdict& v) = 0;
  // Child stderr: a line (`line_end`), a partial line after 100 ms of quiet, or a piece of an
  // over-long line. Return true to print `out` as "[conn N] " + out + "\n" on the proxy's stderr.
  virtual bool on_stderr(std::string_view text, bool line_end, std::string& out) = 0;
  // Once, last: the connection is gone (sockets closed, child reaped).
  virtual void on_close(const ConnectionStats& stats, const std::string& reason) = 0;
};

struct ServerStats {
  uint64_t accepted = 0;  // every accepted connection, refused ones included
  uint64_t refused = 0;   // over max_connections
  uint64_t open = 0;
  FlowCounters to_server, to_client;
  uint64_t stderr_lines = 0;
};

struct TcpServerOptions {
  Address listen;
  // Exactly one upstream: a socket address, or a command started once per connection.
  std::optional<Address> connect;
  ChildOptions child;  // argv empty = connect mode
  size_t max_line = size_t{64} << 20;
  int threads = 2;
  size_t max_connections = 1024;          // open at once (lingering children count); 0 = no limit
  std::chrono::milliseconds idle_timeout{0};  // 0 = none
  // Bytes of large line buffers (over 64 KiB) that the server-to-client directions of all
  // connections may hold at once while reading messages; a direction that would go past it reads
  // nothing more until another gives room back (the oldest holder always may: a message larger
  // than this passes alone). 0 = no limit. transports/buffer_budget.h.
  size_t buffer_budget = size_t{8} << 20;
  std::chrono::milliseconds grace{10000};
  bool handle_signals = true;  // SIGTERM/SIGINT: graceful stop; SIGUSR1: on_report
  std::function<std::unique_ptr<ConnectionHooks>(const ConnectionInfo&)> make_hooks;
  std::function<void()> on_report;  // SIGUSR1, on a pool thread
  // Where log lines go (one complete line, no "\n"); default: stderr, one write per line.
  std::function<void(std::string_view)> log;
};

class TcpServer {
 public:
  // Binds and listens (a Unix socket file is created with mode 0600; a stale one left by a dead
  // process is replaced) and, with handle_signals, takes over SIGTERM/SIGINT/SIGUSR1 from here
  // on (kept until run()). Throws AddressError or std::system_error.
  explicit TcpServer(TcpServerOptions options);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // The address actually listening on (port 0 resolved to the port the kernel picked).
  const Address& local_address() const;
  // Runs the pool in this thread and threads-1 more until stopped and every connection is gone.
  void run();
  // Starts a graceful stop, as SIGTERM does. Thread-safe; a second call closes what is left now.
  void request_stop();
  ServerStats stats() const;
  // Writes one line to the log (thread-safe; lines never interleave with "[conn N]" lines).
  void log(std::string_view line) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace scrub
