// `mcp-scrub tcp`: MCP's line framing over TCP and Unix sockets, scanned as the stdio wrap is.
//
//   mcp-scrub tcp --listen ADDR --connect ADDR        relay each connection to an upstream server
//   mcp-scrub tcp --listen ADDR -- COMMAND [ARGS...]  a child per connection (stdio server)
//
// The transport (transports/tcp_server.h) moves lines; this file is the per-message stage it
// calls, one McpHooks per connection: the same McpFilter handling as cli/wrap_cmd.cpp, line for
// line (fail closed, oversized responses turned into JSON-RPC errors, stderr masked), with the
// connection id in every alert's source ("conn 3 stdout") and a counters line per connection.
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

#include "cli/commands.h"
#include "cli/finding_counts.h"
#include "cli/reloader.h"
#include "filter/line_masker.h"
#include "filter/mcp_filter.h"
#include "transports/fd_io.h"
#include "transports/line_reader.h"
#include "transports/tcp_server.h"

namespace scrub {

static_assert(LineReader::kReadablePadding >= Redactor::kJsonPadding);  // on_line's padding

namespace {

struct TcpOptions {
  EngineConfig engine;
  std::string listen;
  std::string connect;
  std::string alerts;
  bool scan_requests = false;
  size_t max_message_bytes = size_t{64} << 20;
  int threads = 2;
  size_t max_connections = 1024;
  size_t buffer_budget = size_t{8} << 20;
  std::string idle_timeout;
  std::string grace = "10s";
};

// "500ms", "30s", "5m", "2h"; a bare number is seconds. Control plane: throws ConfigError.
std::chrono::milliseconds parse_duration_option(const std::string& text, const char* option) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit = text.substr(i);
  long long mult = unit.empty() || unit == "s" ? 1000 : unit == "ms" ? 1 : unit == "m" ? 60000
                                                       : unit == "h" ? 3600000 : -1;
  if (i == 0 || i > 12 || mult < 0)
    throw ConfigError(std::string(option) + ": expected a duration such as 500ms, 30s or 5m, got '" +
                      text + "'");
  return std::chrono::milliseconds(std::stoll(text.substr(0, i)) * mult);
}

// Whether `name` can be run, looked up as ChildProcess does (PATH unless it has a '/'), so a
// typo fails at start-up rather than on every connection.
bool runnable(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string search = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  for (;;) {
    size_t end = search.find(':', start);
    std::string dir = search.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) return false;
    start = end + 1;
  }
}

// A thousand connections need a few thousand fds (a socket each, and four per child).
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

std::string flow_text(const char* name, const FlowCounters& c) {
  return std::string(name) + " " + std::to_string(c.messages) + " messages (" +
         std::to_string(c.bytes) + " bytes)";
}

// What every connection's hooks share. Lives until the server is gone.
struct Shared {
  const TcpOptions& opt;
  Reloader& reloader;
  EngineHolder& engine;
  AlertSink& sink;
  FindingCounts& totals;  // across connections, for the summary (SIGUSR1 and exit)
  Action action;
  bool child;
  const TcpServer* server = nullptr;  // for log(); set before the first connection
};

class McpHooks : public ConnectionHooks {
 public:
  McpHooks(Shared& shared, const ConnectionInfo& info)
      : s_(shared),
        id_(info.id),
        src_client_("conn " + std::to_string(info.id) + " client"),
        src_server_("conn " + std::to_string(info.id) + (shared.child ? " stdout" : " upstream")),
        src_stderr_("conn " + std::to_string(info.id) + " stderr") {
    spdlog::info("conn {} from {}", info.id, info.peer);
  }

  void on_line(Flow flow, std::string_view line, bool newline, LineVerdict& v) override {
    if (flow == Flow::kToServer) return request(line, newline, v);
    response(line, newline, v);
  }

  void on_long_line(Flow flow, std::string_view piece, bool end, bool newline,
                    LineVerdict& v) override {
    if (flow == Flow::kToServer) {
      // Requests are not scanned by default: an over-long one passes as it comes. With
      // --scan-requests it is refused like an oversized server message.
      if (!s_.opt.scan_requests) return;
      v.kind = LineVerdict::Kind::kDrop;
      if (end) incident("oversized", "client message over --max-message-bytes dropped", {});
      return;
    }
    v.kind = LineVerdict::Kind::kDrop;
    if (!in_long_) {
      in_long_ = true;
      sniffer_.reset();
    }
    sniffer_.feed(piece);
    if (!end) return;
    in_long_ = false;
    AlertContext ctx;
    ctx.source = src_server_;
    ctx.line = ++server_lines_;
    ctx.direction = "server->client";
    ctx.id = sniffer_.id();
    const std::string why = "message larger than --max-message-bytes (" +
                            std::to_string(s_.opt.max_message_bytes) + " bytes) not forwarded";
    incident("oversized", why, ctx);
    if (sniffer_.is_response() && !sniffer_.id().empty()) {
      v.kind = LineVerdict::Kind::kReplace;
      v.replacement = jsonrpc_error(sniffer_.id(), -32003, "mcp-scrub: the server's " + why) + "\n";
    } else if (sniffer_.has_method() && !sniffer_.id().empty()) {
      // A request from the server the client will never see: answer it ourselves.
      v.reply = jsonrpc_error(sniffer_.id(), -32003, "mcp-scrub: request " + why) + "\n";
    }
    (void)newline;
  }

  // The child's stderr: masked like the wrap's (multi-line private keys included).
  bool on_stderr(std::string_view text, bool line_end, std::string& out) override {
    if (!stderr_redactor_) stderr_redactor_.emplace(s_.engine);
    Redactor& rd = stderr_redactor_->current();
    std::string_view unit = text;
    if (!stderr_carry_.empty()) {
      stderr_carry_ += text;
      unit = stderr_carry_;
    }
    findings_.clear();
    AlertContext ctx;
    ctx.source = src_stderr_;
    ctx.direction = "server->client";
    ctx.line = ++stderr_lines_;
    const bool over_long = !line_end && text.size() >= s_.opt.max_message_bytes;
    RedactStatus st;
    std::string rest;
    if (over_long) {
      // A piece of a line too long to hold: mask what no secret can cross; keep the tail (original
      // bytes) to scan with the next piece.
      size_t consumed = 0;
      const size_t overlap = std::min<size_t>(64 * 1024, s_.opt.max_message_bytes / 2);
      st = rd.redact_text_prefix(unit, overlap, out, consumed, findings_);
      rest = std::string(unit.substr(consumed));
      stderr_lines_masker_.forget();
    } else {
      // A private key over several lines, a value on the line after its name, as the wrap's
      // stderr pump masks them (filter/line_masker.h).
      st = stderr_lines_masker_.mask(rd, unit, line_end, out, findings_);
      if (st == RedactStatus::kClean) out.assign(unit);
    }
    stderr_carry_ = std::move(rest);
    if (st == RedactStatus::kError) {
      incident("engine-error", "a stderr line could not be scanned and was dropped", ctx);
      return false;
    }
    report(findings_, ctx);
    return true;
  }

  void on_close(const ConnectionStats& st, const std::string& reason) override {
    std::string line = "mcp-scrub: conn " + std::to_string(id_) + " closed: " + reason + "; " +
                       flow_text("client->server", st.to_server) + ", " +
                       flow_text("server->client", st.to_client);
    if (s_.child) line += ", stderr " + std::to_string(st.stderr_lines) + " lines";
    line += "; " + counts_.text();
    s_.server->log(line);
  }

 private:
  McpFilter& filter(std::optional<McpFilter>& f) {
    // Made on first use: an idle connection holds no scanner. After a large message it gives
    // its buffers back: fifty connections that had each carried a 1 MiB result held 133 MiB
    // while idle, 2.4 MiB each, most of it simdjson's buffers sized for that message.
    // A large message is scanned on two threads, as in the wrap (Redactor::set_parallel): its
    // helper thread runs only while a pool thread scans, so there are at most twice --threads.
    // 1 MiB results at one connection, alternated: masked 93-153 -> 139-241 MB/s, clean
    // 178-229 -> 204-282; at ten connections masked 157-218 -> 215-281, clean 253-317 -> 274-403.
    if (!f) f.emplace(s_.engine, tracker_, McpFilterOptions{s_.action, true, 256 * 1024});
    return *f;
  }

  void report(const Findings& findings, const AlertContext& ctx) {
    for (const Finding& f : findings) {
      counts_.finding(f.rule_id);
      s_.totals.finding(f.rule_id);
      s_.sink.finding(f, ctx);
    }
  }
  void incident(const std::string& kind, const std::string& msg, const AlertContext& ctx) {
    counts_.incident(kind);
    s_.totals.incident(kind);
    s_.sink.incident(kind, msg, ctx);
  }

  // client -> server: noted, or scanned with --scan-requests (as the wrap's pump_client).
  // Past --max-secret-age: nothing goes on; requests are answered with an error saying why.
  bool refuse_when_stale(Flow flow, std::string_view line, LineVerdict& v) {
    if (!s_.reloader.stale()) return false;
    sniffer_.reset();
    sniffer_.feed(line);
    v.kind = LineVerdict::Kind::kDrop;
    const std::string err =
        jsonrpc_error(sniffer_.id(), kStaleSecretsCode, kStaleSecretsMessage) + "\n";
    if (flow == Flow::kToServer && sniffer_.has_method() && !sniffer_.id().empty()) v.reply = err;
    if (flow == Flow::kToClient && sniffer_.is_response() && !sniffer_.id().empty()) {
      v.kind = LineVerdict::Kind::kReplace;
      v.replacement = err;
    }
    incident("stale-secrets", "a message was not forwarded", {});
    return true;
  }

  void request(std::string_view line, bool newline, LineVerdict& v) {
    if (refuse_when_stale(Flow::kToServer, line, v)) return;
    McpFilter& f = filter(c2s_);
    if (!s_.opt.scan_requests) {
      f.note(Direction::kClientToServer, line);
      return;
    }
    bool cr = !line.empty() && line.back() == '\r';
    if (cr) line.remove_suffix(1);
    if (f.process(Direction::kClientToServer, line, r_, /*padded=*/true) != ScanStatus::kOk) {
      incident("engine-error", "a client message could not be scanned and was dropped", r_.ctx);
      v.kind = LineVerdict::Kind::kDrop;
      return;
    }
    r_.ctx.source = src_client_;
    r_.ctx.line = ++client_lines_;
    report(r_.findings, r_.ctx);
    set_verdict(line, cr, newline, v);
  }

  // server -> client: scanned and masked (as the wrap's pump_server).
  void response(std::string_view line, bool newline, LineVerdict& v) {
    if (refuse_when_stale(Flow::kToClient, line, v)) return;
    bool cr = !line.empty() && line.back() == '\r';
    if (cr) line.remove_suffix(1);
    const uint64_t n = ++server_lines_;
    // on_line's padding is readable: the message is parsed in place.
    if (filter(s2c_).process(Direction::kServerToClient, line, r_, /*padded=*/true) != ScanStatus::kOk) {
      AlertContext ctx;
      ctx.source = src_server_;
      ctx.line = n;
      sniffer_.reset();
      sniffer_.feed(line);
      incident("engine-error", "the engine could not scan a server message; not forwarded", ctx);
      s_.server->log("mcp-scrub: conn " + std::to_string(id_) +
                     ": the scanning engine failed on a server message; it was not forwarded");
      v.kind = LineVerdict::Kind::kDrop;
      if (sniffer_.is_response() && !sniffer_.id().empty()) {
        v.kind = LineVerdict::Kind::kReplace;
        v.replacement = jsonrpc_error(sniffer_.id(), -32002,
                                      "mcp-scrub could not scan this response and did not forward it") +
                        "\n";
      }
      return;
    }
    r_.ctx.source = src_server_;
    r_.ctx.line = n;
    if (r_.invalid_json && !line.empty())
      incident("non-json", "a server line that is not JSON-RPC was scanned as text", r_.ctx);
    if (r_.blocked) incident("blocked", "a message holding secrets was blocked", r_.ctx);
    report(r_.findings, r_.ctx);
    set_verdict(line, cr, newline, v);
  }

  void set_verdict(std::string_view line, bool cr, bool newline, LineVerdict& v) {
    (void)line;
    if (r_.kind == MessageResult::Kind::kDrop) {
      v.kind = LineVerdict::Kind::kDrop;
    } else if (r_.kind == MessageResult::Kind::kReplace) {
      v.kind = LineVerdict::Kind::kReplace;
      v.replacement = std::move(r_.out);
      v.replacement += cr ? "\r\n" : (newline ? "\n" : "");
    }
    // kForward: the original bytes, "\r" and "\n" included, go on unchanged.
  }

  Shared& s_;
  const uint64_t id_;
  const std::string src_client_, src_server_, src_stderr_;
  RequestTracker tracker_;  // per connection: every client numbers its requests 1, 2, ...
  std::optional<McpFilter> c2s_, s2c_;
  MessageResult r_;
  JsonRpcSniffer sniffer_;
  bool in_long_ = false;
  uint64_t server_lines_ = 0, client_lines_ = 0, stderr_lines_ = 0;
  std::optional<FollowingRedactor> stderr_redactor_;
  LineMasker stderr_lines_masker_;
  std::string stderr_carry_;
  Findings findings_;
  FindingCounts counts_;  // this connection's, for its close line
};

std::string summary(const TcpServer& server, FindingCounts& totals) {
  ServerStats st = server.stats();
  return "mcp-scrub: summary: connections " + std::to_string(st.accepted) + " (" +
         std::to_string(st.open) + " open, " + std::to_string(st.refused) + " refused), " +
         flow_text("client->server", st.to_server) + ", " + flow_text("server->client", st.to_client) +
         ", stderr " + std::to_string(st.stderr_lines) + " lines; " + totals.text();
}

}  // namespace

CommandRunner register_tcp(CLI::App& app, std::vector<std::string>& command, char** envp) {
  auto opt = std::make_shared<TcpOptions>();
  CLI::App* sub = app.add_subcommand(
      "tcp",
      "Serve MCP over TCP or a Unix socket, scanned: relay to --connect ADDR, or run -- COMMAND "
      "per connection");
  sub->add_option("--listen", opt->listen,
                  "HOST:PORT, [IPv6]:PORT, unix:/path, or PORT (127.0.0.1); port 0 picks a free one")
      ->required();
  sub->add_option("--connect", opt->connect, "Upstream server: HOST:PORT, [IPv6]:PORT or unix:/path");
  add_engine_options(*sub, opt->engine, true);
  sub->add_option("--alerts", opt->alerts, "Write one JSON alert per finding to FILE ('-' = stderr)");
  sub->add_flag("--scan-requests", opt->scan_requests, "Also scan and mask client-to-server messages");
  sub->add_option("--max-message-bytes", opt->max_message_bytes,
                  "Larger messages are not forwarded (default 64 MiB)")
      ->check(CLI::Range(size_t{64}, size_t{1} << 31));
  sub->add_option("--threads", opt->threads, "Threads that relay and scan (default 2)")
      ->check(CLI::Range(1, 256));
  sub->add_option("--max-connections", opt->max_connections,
                  "Connections open at once; more are accepted and closed (default 1024, 0 = no limit)");
  sub->add_option("--idle-timeout", opt->idle_timeout,
                  "Close a connection with no traffic either way for this long (e.g. 30s, 5m)");
  sub->add_option("--buffer-budget", opt->buffer_budget,
                  "Bytes of large results (over 64 KiB) all connections may hold at once while "
                  "reading them; more wait, one larger passes alone (default 8 MiB, 0 = no limit)");
  sub->add_option("--grace", opt->grace,
                  "On SIGTERM/SIGINT, how long open connections may finish (default 10s)");

  return [opt, &command, envp]() -> int {
    const bool child_mode = !command.empty();
    if (child_mode == !opt->connect.empty())
      throw ConfigError(child_mode ? "tcp: give either --connect ADDR or -- COMMAND, not both"
                                   : "tcp: give --connect ADDR or -- COMMAND");
    TcpServerOptions so;
    try {
      so.listen = parse_address(opt->listen);
      if (!child_mode) so.connect = parse_address(opt->connect);
    } catch (const AddressError& e) {
      throw ConfigError(std::string("tcp: ") + e.what());
    }
    if (!opt->idle_timeout.empty()) so.idle_timeout = parse_duration_option(opt->idle_timeout, "--idle-timeout");
    so.grace = parse_duration_option(opt->grace, "--grace");
    so.threads = opt->threads;
    so.max_connections = opt->max_connections;
    so.max_line = opt->max_message_bytes;
    so.buffer_budget = opt->buffer_budget;

    if (child_mode) {
      if (!runnable(command[0])) {
        std::fprintf(stderr, "mcp-scrub: cannot run '%s': not found or not executable\n", command[0].c_str());
        return 127;
      }
      so.child.argv = command;
      so.child.env = current_environment();
      for (const auto& file : opt->engine.secrets.env_files) {
        std::ifstream in(file, std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        for (auto& [k, v] : parse_dotenv(text)) {
          std::string prefix = k + "=";
          so.child.env.erase(std::remove_if(so.child.env.begin(), so.child.env.end(),
                                            [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
                             so.child.env.end());
          so.child.env.push_back(prefix + v);
        }
      }
    }

    Reloader reloader(opt->engine, envp);
    auto sink = opt->alerts.empty() ? make_null_alert_sink() : make_json_alert_sink(opt->alerts);
    // What alerts take from the messages (method, id, tool) is scanned before it is written.
    sink->set_context_masker(make_context_masker(reloader.holder()));
    // Before the server starts its threads: SIGHUP reloads the secrets (a connection's child
    // does not get it).
    reloader.reload_on_sighup();
    reloader.start(sink.get());
    FindingCounts totals;
    Shared shared{*opt, reloader, reloader.holder(), *sink, totals,
                  parse_action(opt->engine.action).value_or(Action::kMask), child_mode};
    ignore_sigpipe();
    raise_fd_limit();

    so.make_hooks = [&shared](const ConnectionInfo& info) -> std::unique_ptr<ConnectionHooks> {
      return std::make_unique<McpHooks>(shared, info);
    };
    std::optional<TcpServer> server;
    so.on_report = [&server, &totals] { server->log(summary(*server, totals)); };
    try {
      server.emplace(std::move(so));
    } catch (const AddressError& e) {
      spdlog::error("tcp: {}", e.what());
      return kExitUsage;
    } catch (const std::system_error& e) {
      spdlog::error("tcp: {}", e.what());
      return kExitIo;
    }
    shared.server = &*server;
    server->log("mcp-scrub: listening on " + server->local_address().to_string());
    server->run();
    reloader.stop();
    server->log(summary(*server, totals));
    sink->flush();
    return kExitOk;
  };
}

}  // namespace scrub
