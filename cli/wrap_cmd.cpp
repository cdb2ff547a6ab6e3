// The stdio wrap: `mcp-scrub [OPTIONS] -- COMMAND [ARGS...]`.
//
// Three pumps, one thread each, so no direction can stall another:
//   client stdin  -> (noted; scanned with --scan-requests) -> child stdin
//   child stdout  -> framer -> McpFilter -> our stdout, one write per line, at once
//   child stderr  -> line scanner (partial lines after 100 ms idle) -> our stderr
// Signals are forwarded to the child's process group; the child dies with us (PDEATHSIG); we
// exit with its status. Fail closed: a line the engine could not scan is never written.
#include <CLI/CLI.hpp>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <algorithm>
#include <fstream>
#include <optional>

#include "cli/commands.h"
#include "cli/finding_counts.h"
#include "cli/reloader.h"
#include "filter/huge_pages.h"
#include "filter/line_masker.h"
#include "filter/mcp_filter.h"
#include "transports/child_process.h"
#include "transports/fd_io.h"
#include "transports/line_reader.h"
#include "transports/signals.h"

namespace scrub {

static_assert(LineReader::kReadablePadding >= Redactor::kJsonPadding);

namespace {

struct WrapOptions {
  EngineConfig engine;
  std::string alerts;
  bool scan_requests = false;
  size_t max_message_bytes = 64u << 20;
  bool quiet = false;
  // How long a pump polls for its next bytes before it sleeps (LineReader::set_spin); negative:
  // kBusyPollUs when the process may run on two CPUs or more, else none.
  long busy_poll_us = -1;
};

// The pumps' busy polling by default. Through the wrap a 1 KB request and its answer cross two
// pipes more than they would directly, and each crossing woke a sleeping thread: the relay
// that only copies bytes added 25-27 µs to the round trip, the wrap 30-33. A pump that polls
// instead for the bytes it expects next (its server's answer, or its client's next request)
// takes them as they come. Spent only after a message, so an idle wrap spends nothing; a
// window longer than a round trip kept both pumps polling through a stream of requests.
constexpr long kBusyPollUs = 50;

std::chrono::microseconds busy_poll(long us) {
  if (us >= 0) return std::chrono::microseconds(us);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  // One CPU: polling would hold it from the server it waits for.
  if (::sched_getaffinity(0, sizeof cpus, &cpus) != 0 || CPU_COUNT(&cpus) < 2)
    return std::chrono::microseconds(0);
  return std::chrono::microseconds(kBusyPollUs);
}

constexpr int kIdleFlushMs = 100;
// After the server closes its stdout, how long it may keep running before it is ended.
constexpr std::chrono::milliseconds kStdoutEofGrace{2000};

// Ends the child: SIGTERM to its group, then SIGKILL after the grace; returns its status.
int terminate_child(ChildProcess& child) {
  child.send_signal(SIGTERM);
  bool timed_out = false;
  int status = child.wait_for(ChildProcess::kTerminateGrace, &timed_out);
  if (!timed_out) return status;
  child.send_signal(SIGKILL);
  return child.wait();
}

// Counters for the exit summary.
class Stats {
 public:
  void message(Direction d, size_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    auto& c = d == Direction::kServerToClient ? s2c_ : c2s_;
    ++c.first;
    c.second += bytes;
  }
  void stderr_line(size_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    ++err_.first;
    err_.second += bytes;
  }
  void finding(const std::string& rule) { counts_.finding(rule); }
  void incident(const std::string& kind) { counts_.incident(kind); }
  std::string summary() {
    std::lock_guard<std::mutex> l(mu_);
    std::string s = "summary: server->client " + std::to_string(s2c_.first) + " messages (" +
                    std::to_string(s2c_.second) + " bytes), client->server " +
                    std::to_string(c2s_.first) + " messages (" + std::to_string(c2s_.second) +
                    " bytes), stderr " + std::to_string(err_.first) + " lines (" +
                    std::to_string(err_.second) + " bytes); ";
    return s + counts_.text();
  }

 private:
  std::mutex mu_;
  std::pair<uint64_t, uint64_t> s2c_{0, 0}, c2s_{0, 0}, err_{0, 0};
  FindingCounts counts_;
};

class Proxy {
 public:
  Proxy(const WrapOptions& o, AlertSink& sink, ChildProcess& child)
      : opt_(o), sink_(sink), child_(child), busy_poll_(busy_poll(o.busy_poll_us)) {}

  // The engine, once loaded: the server starts before it (see the runner). Until then the client
  // pump forwards requests (not scanned unless --scan-requests, which waits for it); the server
  // and stderr pumps start after it.
  void set_engine(Reloader& r) {
    {
      std::lock_guard<std::mutex> l(engine_mu_);
      reloader_ = &r;
    }
    engine_cv_.notify_all();
  }
  Reloader& reloader() {
    std::unique_lock<std::mutex> l(engine_mu_);
    engine_cv_.wait(l, [this] { return reloader_ != nullptr; });
    return *reloader_;
  }
  Reloader* reloader_if_ready() {
    std::lock_guard<std::mutex> l(engine_mu_);
    return reloader_;
  }

  // Both pumps write to our stdout (the client pump only to refuse requests while stale).
  bool write_out(std::string_view s, std::string_view tail = {}) {
    std::lock_guard<std::mutex> l(out_mu_);
    if (write_all(1, s, tail)) return true;
    write_errno_ = errno;
    return false;
  }
  int write_errno() const { return write_errno_; }
  static constexpr const char* kStale = kStaleSecretsMessage;

  void report(const Findings& findings, const AlertContext& ctx) {
    for (const Finding& f : findings) {
      stats_.finding(f.rule_id);
      sink_.finding(f, ctx);
    }
  }
  void incident(const std::string& kind, const std::string& msg, const AlertContext& ctx) {
    stats_.incident(kind);
    sink_.incident(kind, msg, ctx);
  }

  bool write_child(std::string_view a, std::string_view b = {}) {
    std::lock_guard<std::mutex> l(child_in_mu_);
    if (child_in_closed_) return false;
    int fd = child_.stdin_fd();
    return fd >= 0 && write_all(fd, a, b);
  }
  void close_child_stdin() {
    std::lock_guard<std::mutex> l(child_in_mu_);
    child_in_closed_ = true;
    child_.close_stdin();
  }

  // client stdin -> child stdin
  void pump_client() {
    std::optional<McpFilter> filter;  // made once a request is scanned (the engine loaded)
    LineReader reader(0, opt_.max_message_bytes);
    reader.set_spin(busy_poll_);
    LineReader::Chunk chunk;
    bool in_long = false;
    MessageResult r;
    uint64_t n = 0;
    while (reader.next(chunk) == LineReader::Status::kData) {
      std::string_view nl = chunk.newline ? "\n" : "";
      if (in_long || !chunk.line_end) {
        // Too large to scan as a message: forwarded as it comes (requests are not scanned by
        // default); with --scan-requests it is refused like an oversized server message.
        in_long = !chunk.line_end;
        if (opt_.scan_requests) {
          if (!in_long) incident("oversized", "client message over --max-message-bytes dropped", {});
          continue;
        }
        if (!write_child(chunk.data, nl)) break;
        continue;
      }
      stats_.message(Direction::kClientToServer, chunk.data.size());
      if (Reloader* rl = reloader_if_ready(); rl && rl->stale()) {
        // Fail closed: the client's requests get an error from us instead of reaching a server
        // whose answers we could not scan with current secrets.
        JsonRpcSniffer sn;
        sn.feed(chunk.data);
        if (sn.has_method() && !sn.id().empty())
          write_out(jsonrpc_error(sn.id(), -32004, kStale) + "\n");
        incident("stale-secrets", "a client message was refused", {});
        continue;
      }
      if (!opt_.scan_requests) {
        McpFilter::note_request(tracker_, Direction::kClientToServer, chunk.data);
        if (!write_child(chunk.data, nl)) break;
        continue;
      }
      std::string_view line = chunk.data;
      bool cr = !line.empty() && line.back() == '\r';
      if (cr) line.remove_suffix(1);
      if (!filter)
        filter.emplace(reloader().holder(), tracker_,
                       McpFilterOptions{parse_action(opt_.engine.action).value_or(Action::kMask)});
      // A LineReader chunk: its padding is readable (parsed in place).
      if (filter->process(Direction::kClientToServer, line, r, /*padded=*/true) != ScanStatus::kOk) {
        incident("engine-error", "a client message could not be scanned and was dropped", r.ctx);
        continue;
      }
      r.ctx.source = "client";
      r.ctx.line = ++n;
      report(r.findings, r.ctx);
      if (r.kind == MessageResult::Kind::kDrop) continue;
      std::string_view out = r.kind == MessageResult::Kind::kReplace ? std::string_view(r.out) : line;
      if (!write_child(out, cr ? std::string_view("\r\n") : nl)) break;
    }
    close_child_stdin();
  }

  // child stderr -> our stderr, line by line; a partial line goes out after 100 ms of quiet.
  void pump_stderr() {
    FollowingRedactor following(reloader().holder());
    const int fd = child_.stderr_fd();
    std::string pending, masked;
    std::vector<char> buf(64 * 1024);
    Findings findings;
    AlertContext ctx;
    ctx.source = "stderr";
    ctx.direction = "server->client";
    uint64_t line_no = 0;
    // A private key over several lines, a value on the line after its name (filter/line_masker.h).
    LineMasker lines;
    const size_t overlap = std::min<size_t>(64 * 1024, opt_.max_message_bytes / 2);
    auto emit = [&](std::string_view text, std::string_view tail) {
      masked.clear();
      findings.clear();
      ctx.line = ++line_no;
      const RedactStatus st = lines.mask(following.current(), text, tail == "\n", masked, findings);
      if (st == RedactStatus::kError) {
        incident("engine-error", "a stderr line could not be scanned and was dropped", ctx);
        return;
      }
      report(findings, ctx);
      stats_.stderr_line(text.size());
      std::string out(st == RedactStatus::kMasked ? std::string_view(masked) : text);
      out += tail;
      if (!out.empty()) stderr_at_line_start_ = out.back() == '\n';
      write_all(2, out);
    };
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      int rc = ::poll(&p, 1, pending.empty() ? -1 : kIdleFlushMs);
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0) {  // quiet for a while: the partial line goes out, scanned
        emit(pending, "");
        pending.clear();
        continue;
      }
      ssize_t n = read_some(fd, buf.data(), buf.size());
      if (n <= 0) break;
      pending.append(buf.data(), static_cast<size_t>(n));
      size_t start = 0;
      for (;;) {
        size_t nl = pending.find('\n', start);
        if (nl == std::string::npos) break;
        emit(std::string_view(pending).substr(start, nl - start), "\n");
        start = nl + 1;
      }
      pending.erase(0, start);
      if (pending.size() > opt_.max_message_bytes) {
        lines.forget();
        masked.clear();
        findings.clear();
        size_t consumed = 0;
        ctx.line = line_no + 1;
        if (following.current().redact_text_prefix(pending, overlap, masked, consumed, findings) ==
            RedactStatus::kError) {
          incident("engine-error", "stderr output could not be scanned and was dropped", ctx);
          pending.clear();
          continue;
        }
        report(findings, ctx);
        write_all(2, masked);
        pending.erase(0, consumed);
      }
    }
    if (!pending.empty()) emit(pending, "");
    {
      std::lock_guard lock(stderr_mu_);
      stderr_done_ = true;
    }
    stderr_cv_.notify_all();
  }

  // child stdout -> our stdout. Returns false when the client went away.
  bool pump_server() {
    // The server's answers are what the client waits for, and the other pumps are mostly idle:
    // a large result is scanned on two threads.
    Reloader& rl = reloader();
    McpFilter filter(rl.holder(), tracker_,
                     {parse_action(opt_.engine.action).value_or(Action::kMask), /*parallel=*/true});
    LineReader reader(child_.stdout_fd(), opt_.max_message_bytes);
    reader.set_spin(busy_poll_);
    // While the server has said nothing yet (it is still starting, or working on its first
    // answer), what a first large message would build on its way is built now.
    if (!reader.readable_now()) {
      filter.prepare_for_large_messages();
      // This thread's buffers for a large message (its decoded strings, the masked copy) come
      // from the main heap, past the huge pages main() advised, which start-up used: fresh
      // 4 KiB pages there cost the first masked megabyte several ms of faults. The heap's free
      // top gets 8 MiB of advised 2 MiB pages, untouched (no memory until a message needs it).
      reserve_heap_in_huge_pages(size_t{8} << 20);
    }
    LineReader::Chunk chunk;
    MessageResult r;
    JsonRpcSniffer sniffer;
    bool in_long = false;
    uint64_t n = 0;
    std::string out;
    for (;;) {
      LineReader::Status st = reader.next(chunk);
      if (st != LineReader::Status::kData) break;
      if (in_long || !chunk.line_end) {
        if (!in_long) {
          in_long = true;
          sniffer.reset();
        }
        sniffer.feed(chunk.data);
        if (!chunk.line_end) continue;
        in_long = false;
        AlertContext ctx;
        ctx.source = "stdout";
        ctx.line = ++n;
        ctx.direction = "server->client";
        ctx.id = sniffer.id();
        const std::string why = "message larger than --max-message-bytes (" +
                                std::to_string(opt_.max_message_bytes) + " bytes) not forwarded";
        incident("oversized", why, ctx);
        if (sniffer.is_response() && !sniffer.id().empty()) {
          out = jsonrpc_error(sniffer.id(), -32003, "mcp-scrub: the server's " + why);
          out += '\n';
          if (!write_out(out)) return false;
        } else if (sniffer.has_method() && !sniffer.id().empty()) {
          // A request from the server the client will never see: answer it ourselves.
          write_child(jsonrpc_error(sniffer.id(), -32003, "mcp-scrub: request " + why), "\n");
        }
        continue;
      }
      std::string_view line = chunk.data;
      bool cr = !line.empty() && line.back() == '\r';
      if (cr) line.remove_suffix(1);
      stats_.message(Direction::kServerToClient, line.size());
      ++n;
      if (rl.stale()) {
        sniffer.reset();
        sniffer.feed(line);
        AlertContext ctx;
        ctx.source = "stdout";
        ctx.line = n;
        ctx.id = sniffer.id();
        incident("stale-secrets", "a server message was not forwarded", ctx);
        if (sniffer.is_response() && !sniffer.id().empty())
          if (!write_out(jsonrpc_error(sniffer.id(), -32004, kStale) + "\n")) return false;
        continue;
      }
      if (filter.process(Direction::kServerToClient, line, r, /*padded=*/true) != ScanStatus::kOk) {
        AlertContext ctx;
        ctx.source = "stdout";
        ctx.line = n;
        sniffer.reset();
        sniffer.feed(line);
        incident("engine-error", "the engine could not scan a server message; not forwarded", ctx);
        spdlog::error("the scanning engine failed on a server message; it was not forwarded");
        if (sniffer.is_response() && !sniffer.id().empty()) {
          out = jsonrpc_error(sniffer.id(), -32002,
                              "mcp-scrub could not scan this response and did not forward it") + "\n";
          if (!write_out(out)) return false;
        }
        continue;
      }
      r.ctx.source = "stdout";
      r.ctx.line = n;
      if (r.invalid_json && !line.empty())
        incident("non-json", "a stdout line that is not JSON-RPC was scanned as text", r.ctx);
      if (r.blocked) incident("blocked", "a message holding secrets was blocked", r.ctx);
      report(r.findings, r.ctx);
      if (r.kind == MessageResult::Kind::kDrop) continue;
      if (!write_out(r.kind == MessageResult::Kind::kReplace ? std::string_view(r.out) : line,
                     cr ? "\r\n" : (chunk.newline ? "\n" : "")))
        return false;
    }
    return true;
  }

  Stats& stats() { return stats_; }
  // Waits up to `limit` for the stderr pump to reach the end of the server's stderr; true if it
  // has. Woken by the pump itself, so a wrap whose server exits leaves as soon as the last line
  // is out (a 50 ms sleep-and-look loop here held every exit up to 50 ms).
  bool wait_stderr_done(std::chrono::milliseconds limit) {
    std::unique_lock lock(stderr_mu_);
    return stderr_cv_.wait_for(lock, limit, [&] { return stderr_done_; });
  }

 private:
  const WrapOptions& opt_;
  std::mutex engine_mu_;
  std::condition_variable engine_cv_;
  Reloader* reloader_ = nullptr;  // set once (set_engine)
  std::mutex out_mu_;
  AlertSink& sink_;
  ChildProcess& child_;
  const std::chrono::microseconds busy_poll_;  // each pump's polling window (LineReader::set_spin)
  RequestTracker tracker_;
  Stats stats_;
  std::mutex child_in_mu_;
  bool child_in_closed_ = false;
  std::mutex stderr_mu_;
  std::condition_variable stderr_cv_;
  bool stderr_done_ = false;  // guarded by stderr_mu_
  std::atomic<int> write_errno_{0};

 public:
  // Whether the child's stderr output ended with a newline (so our own lines start cleanly).
  std::atomic<bool> stderr_at_line_start_{true};
};

}  // namespace

CommandRunner register_wrap(CLI::App& app, std::vector<std::string>& command, char** envp,
                            EngineConfig** engine_out) {
  auto opt = std::make_shared<WrapOptions>();
  if (engine_out) *engine_out = &opt->engine;
  add_engine_options(app, opt->engine, true);
  app.add_option("--alerts", opt->alerts, "Write one JSON alert per finding to FILE ('-' = stderr)");
  app.add_flag("--scan-requests", opt->scan_requests, "Also scan and mask client-to-server messages");
  app.add_option("--max-message-bytes", opt->max_message_bytes,
                 "Larger messages are not forwarded (default 64 MiB)")
      ->check(CLI::Range(size_t{64}, size_t{1} << 31));
  app.add_flag("--quiet", opt->quiet, "Send the exit summary to the alert sink instead of stderr");
  app.add_option("--busy-poll-us", opt->busy_poll_us,
                 "Poll up to N microseconds for the next message before sleeping (default " +
                     std::to_string(kBusyPollUs) + " with 2+ CPUs, else 0; 0 = never)")
      ->check(CLI::Range(0L, 1000000L));
  return [opt, &command, envp]() -> int {
    // Before any thread exists, so every thread inherits the blocked set and the forwarder
    // thread alone receives these signals.
    SignalForwarder::block_signals();
    // The server starts while the engine loads (rules, known values, the compiled database): its
    // own start-up (an `npx` server's runtime, often hundreds of milliseconds) overlaps ours, and
    // nothing it writes is read before the engine is ready. The built-in pack always compiles;
    // rule files of the user's are compiled first, so one that does not compile stops before the
    // server starts. Any other engine error ends the server before exiting.
    std::unique_ptr<Reloader> reloader;
    if (!opt->engine.rule_files.empty()) reloader = std::make_unique<Reloader>(opt->engine, envp);
    auto sink = opt->alerts.empty() ? make_null_alert_sink() : make_json_alert_sink(opt->alerts);

    ChildOptions co;
    co.argv = command;
    co.env = current_environment();
    for (const auto& file : opt->engine.secrets.env_files) {
      std::ifstream in(file, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (auto& [k, v] : parse_dotenv(text)) {
        std::string prefix = k + "=";
        co.env.erase(std::remove_if(co.env.begin(), co.env.end(),
                                    [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
                     co.env.end());
        co.env.push_back(prefix + v);
      }
    }
    ignore_sigpipe();
    widen_pipe(STDOUT_FILENO);  // the client's end: tool results go out through it
    std::optional<ChildProcess> child;
    try {
      child.emplace(ChildProcess::spawn(co));
    } catch (const SpawnError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return e.exit_code;
    }
    Proxy proxy(*opt, *sink, *child);
    // The client's requests reach the server while the engine loads (they are not scanned unless
    // --scan-requests, whose pump waits for the engine): an `initialize` is answered sooner.
    std::thread client([&] { proxy.pump_client(); });
    client.detach();  // may sit in read(0) until we exit; it owns nothing we free
    if (!reloader) {
      try {
        reloader = std::make_unique<Reloader>(opt->engine, envp);
      } catch (const std::exception& e) {  // ConfigError, or a secrets command that could not run
        proxy.close_child_stdin();
        terminate_child(*child);
        spdlog::error("{}", e.what());  // as any configuration error is reported (exit 2)
        spdlog::default_logger()->flush();
        std::fflush(nullptr);
        std::_Exit(kExitUsage);  // the client pump may still use `proxy`: no unwinding
      }
    }
    proxy.set_engine(*reloader);
    // What alerts take from the messages (method, id, tool) is scanned before it is written.
    sink->set_context_masker(make_context_masker(reloader->holder()));
    // SIGHUP reloads the secrets when live sources are configured; otherwise it goes to the
    // server like the other signals.
    SignalForwarder forwarder(*child, [&reloader](int sig) {
      if (sig == SIGHUP && reloader->reloads_configured()) reloader->trigger();
    });
    if (reloader->reloads_configured()) forwarder.intercept({SIGHUP});
    forwarder.start();
    reloader->start(sink.get());

    std::thread err([&] { proxy.pump_stderr(); });
    bool client_alive = proxy.pump_server();
    int status;
    if (!client_alive) {
      // The client went away (or its stdout failed): nobody is left to read the server. End it.
      std::fprintf(stderr, "%smcp-scrub: writing to the client failed (%s); stopping the server\n",
                   proxy.stderr_at_line_start_ ? "" : "\n", std::strerror(proxy.write_errno()));
      status = terminate_child(*child);
    } else {
      // The server closed its stdout. It normally exits with it; one that keeps running can
      // answer nothing more and would hold the client forever: after a grace, end it.
      bool timed_out = false;
      status = child->wait_for(kStdoutEofGrace, &timed_out);
      if (timed_out) {
        std::fprintf(stderr,
                     "%smcp-scrub: the server closed its stdout but was still running after %lld ms; "
                     "terminating it\n",
                     proxy.stderr_at_line_start_ ? "" : "\n",
                     static_cast<long long>(kStdoutEofGrace.count()));
        sink->incident("server-stdout-closed", "the server closed its stdout but kept running; terminated", {});
        status = terminate_child(*child);
      }
    }
    // The child is gone; its stderr ends with it (unless a grandchild holds it open).
    if (proxy.wait_stderr_done(std::chrono::seconds(1))) {
      err.join();
    } else {
      err.detach();
    }
    forwarder.stop();
    reloader->stop();
    std::string summary = proxy.stats().summary();
    if (opt->quiet) sink->incident("summary", summary, {});
    else
      std::fprintf(stderr, "%smcp-scrub: %s\n", proxy.stderr_at_line_start_ ? "" : "\n",
                   summary.c_str());
    sink->flush();
    std::fflush(stdout);
    std::fflush(stderr);
    // Threads may still block in read(2) on our stdin: leave without running destructors.
    std::_Exit(status < 0 ? 1 : status);
  };
}

}  // namespace scrub
