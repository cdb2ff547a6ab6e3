// End-to-end: secret rotation through the stdio wrap while messages flow.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "run.h"

using namespace scrub::test;
using nlohmann::json;

namespace {

// An interactive session: one request written, its response read, in lockstep.
class Session {
 public:
  explicit Session(std::vector<std::string> argv, std::vector<std::string> env = {}) {
    scrub::ChildOptions co;
    co.argv = std::move(argv);
    co.env = env_with(env);
    co.own_process_group = false;
    co.pipe_stderr = false;
    child_.emplace(scrub::ChildProcess::spawn(co));
  }
  std::string call(const std::string& line) {
    REQUIRE(scrub::write_all(child_->stdin_fd(), line + "\n"));
    char buf[65536];
    for (;;) {
      size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        std::string out = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return out;
      }
      ssize_t n = scrub::read_some(child_->stdout_fd(), buf, sizeof buf);
      REQUIRE(n > 0);
      pending_.append(buf, static_cast<size_t>(n));
    }
  }
  void signal(int sig) { ::kill(child_->pid(), sig); }
  int finish() {
    child_->close_stdin();
    return child_->wait();
  }

 private:
  std::optional<scrub::ChildProcess> child_;
  std::string pending_;
};

std::string echo(int id, const std::string& msg) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"tools/call","params":{"name":"echo","arguments":{"message":")" + msg + R"("}}})";
}

bool wait_for(const std::function<bool()>& cond, int ms) {
  for (int i = 0; i < ms / 20; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

}  // namespace

TEST_CASE("reload under traffic: old, new and grace, no message lost or duplicated", "[e2e][reload]") {
  TempDir d;
  const std::string oldv = "Old7Rt2Yp9Kq4Wm8Zx3B", newv = "New5Hj8Lm2Qw7Er4Ty9C";  // fake
  std::string file = d.file("secret.txt", oldv + "\n");
  std::string alerts = d.path + "/alerts.jsonl";
  Session s({bin(), "--no-builtin-rules", "--no-env-secrets", "--fingerprint-key",
             d.file("k", "0123456789abcdef0123456789abcdef\n"), "--alerts", alerts, "--secrets-cmd",
             "cat '" + file + "'", "--rotation-grace", "1h", "--", tool("leaky_server")});
  int id = 0;
  const std::string both = "a " + oldv + " b " + newv;
  for (int i = 0; i < 20; ++i) {
    ++id;
    CHECK(s.call(echo(id, both)) ==
          R"({"result":{"content":[{"type":"text","text":"Echo: a [REDACTED:known-secret] b )" + newv +
              R"("}]},"jsonrpc":"2.0","id":)" + std::to_string(id) + "}");
  }
  d.file("secret.txt", newv + "\n");
  s.signal(SIGHUP);
  // Keep the traffic going through the swap: each response is the one asked for, old is always
  // masked, and once new is masked it stays masked.
  bool swapped = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    ++id;
    json r = json::parse(s.call(echo(id, both)));
    REQUIRE(r["id"] == id);
    std::string text = r["result"]["content"][0]["text"];
    CHECK(text.find(oldv) == std::string::npos);
    bool new_masked = text.find(newv) == std::string::npos;
    if (swapped) CHECK(new_masked);
    if (new_masked) {
      swapped = true;
      CHECK(text == "Echo: a [REDACTED:known-secret] b [REDACTED:known-secret]");
      if (id > 400) break;
    }
  }
  CHECK(swapped);
  CHECK(s.finish() == 0);
  CHECK(wait_for([&] { return read_file(alerts).find("\"event\":\"reload\"") != std::string::npos; }, 2000));
  std::string a = read_file(alerts);
  CHECK(a.find("secrets reloaded: 1 values (1 added, 1 removed), 1 in grace, 0 expired, 0 rules") != std::string::npos);
  CHECK(a.find(oldv) == std::string::npos);
  CHECK(a.find(newv) == std::string::npos);
}

TEST_CASE("max secret age: fails closed while refreshes fail, and recovers", "[e2e][reload]") {
  TempDir d;
  const std::string v = "Age3Kp8Lm2Qw7Er4Ty9Z";  // fake
  std::string file = d.file("secret.txt", v + "\n");
  Session s({bin(), "--no-builtin-rules", "--no-env-secrets", "--fingerprint-key",
             d.file("k", "0123456789abcdef0123456789abcdef\n"), "--secrets-cmd", "cat '" + file + "'",
             "--secrets-refresh", "200ms", "--max-secret-age", "1s", "--", tool("leaky_server")});
  const std::string ok1 = R"({"result":{},"jsonrpc":"2.0","id":1})";
  CHECK(s.call(R"({"jsonrpc":"2.0","id":1,"method":"ping"})") == ok1);
  std::remove(file.c_str());  // every refresh now fails
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  CHECK(s.call(R"({"jsonrpc":"2.0","id":2,"method":"ping"})") ==
        R"({"jsonrpc":"2.0","id":2,"error":{"code":-32004,"message":"mcp-scrub: the known secrets have not been refreshed within --max-secret-age; nothing is forwarded until a refresh succeeds"}})");
  d.file("secret.txt", v + "\n");
  bool recovered = wait_for([&] {
    static int id = 100;
    ++id;
    std::string r = s.call(R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":"ping"})");
    return r == R"({"result":{},"jsonrpc":"2.0","id":)" + std::to_string(id) + "}";
  }, 5000);
  CHECK(recovered);
  CHECK(s.finish() == 0);
}

#include "tcp_harness.h"

namespace {

// A socket proxy whose known value is read from a file, changed, then SIGHUP: the reload alert
// comes and the new value is masked too (the old one in its rotation grace, 24 h by default).
// `live`: the file is read by a --secrets-cmd (a live source, so a reload thread of its own);
// else it is a --secrets-file, and the SIGHUP's own thread builds the new set
// (Reloader::trigger).
void sighup_rotates_tcp(bool live) {
  TempDir d;
  const std::string oldv = "TcpOld7Rt2Yp9Kq4Wm8Z", newv = "TcpNew5Hj8Lm2Qw7Er4T";  // fake
  std::string file = d.file("secret.txt", oldv + "\n");
  std::string alerts = d.path + "/alerts.jsonl";
  std::vector<std::string> argv = {bin(), "tcp", "--listen", "127.0.0.1:0", "--no-builtin-rules",
                                   "--no-env-secrets", "--fingerprint-key",
                                   d.file("k", "0123456789abcdef0123456789abcdef\n"), "--alerts",
                                   alerts};
  if (live) argv.insert(argv.end(), {"--secrets-cmd", "cat '" + file + "'"});
  else argv.insert(argv.end(), {"--secrets-file", file});
  argv.insert(argv.end(), {"--", tool("leaky_server")});
  scrub::test::Proxy proxy(argv);
  proxy.wait_listening();
  auto ask = [&](int id) {
    scrub::test::Client c = scrub::test::Client::tcp(proxy.port());
    c.send_line(echo(id, "a " + oldv + " b " + newv));
    auto line = c.read_line();
    REQUIRE(line);
    return json::parse(*line)["result"]["content"][0]["text"].get<std::string>();
  };
  CHECK(ask(1) == "Echo: a [REDACTED:known-secret] b " + newv);
  d.file("secret.txt", newv + "\n");
  proxy.signal(SIGHUP);
  CHECK(wait_for([&] { return read_file(alerts).find("\"event\":\"reload\"") != std::string::npos; }, 10000));
  CHECK(ask(2) == "Echo: a [REDACTED:known-secret] b [REDACTED:known-secret]");
  proxy.signal(SIGTERM);
  CHECK(proxy.wait_exit() == 0);
}

}  // namespace

TEST_CASE("tcp: SIGHUP rotates the secrets of a socket proxy", "[e2e][reload][tcp]") {
  sighup_rotates_tcp(true);
}

TEST_CASE("tcp: SIGHUP re-reads a secrets file without a reload thread", "[e2e][reload][tcp]") {
  sighup_rotates_tcp(false);
}
