// Fault injection: each fault ends in a defined state in which nothing unscanned was forwarded.
//  - a scanner error (MCP_SCRUB_FAULT=scan-error@N, filter/scanner.h): the message is not
//    forwarded; a response becomes a JSON-RPC error with its id; a stderr line is dropped; the
//    session goes on; `filter` stops with exit 4 before writing the line;
//  - no scratch (MCP_SCRUB_FAULT=scratch-alloc): every message fails closed the same way;
//  - a write error to the client: the server is stopped, the reason logged, no hang;
//  - a server that closes its stdout but keeps running: ended after a grace, logged, no hang.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

#include "filter/literal_variants.h"
#include "run.h"

using namespace scrub::test;
using nlohmann::json;

namespace {

const std::string kSecret = "Zq8vR2xkPm4TnW7yL3bH";  // fake, a known value (env)

struct Faulty {
  TempDir dir;
  std::string key = dir.file("fp.key", "0123456789abcdef0123456789abcdef\n");
  std::string alerts = dir.path + "/alerts.jsonl";

  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {bin(), "--no-builtin-rules", "--rules", src("tests/fixtures/rules.toml"),
                                  "--no-env-secrets", "--secret-env", "FAULT_SECRET",
                                  "--fingerprint-key", key, "--alerts", alerts, "--no-cache"};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.push_back(tool("split_server"));
    return a;
  }
  std::vector<std::string> env(const std::string& fault) const {
    return {"FAULT_SECRET=" + kSecret, "MCP_SCRUB_FAULT=" + fault, "HOME=" + dir.path};
  }
};

std::string raw_out(const std::string& line) { return "RAW out " + scrub::base64_encode(line + "\n") + "\n"; }
std::string split_err(const std::string& line) {
  return "SPLIT err 3 " + scrub::base64_encode(line) + "\n";
}
std::string result(int id, const std::string& text) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"result":{"content":[{"type":"text","text":")" + text + R"("}]}})";
}

// Runs `argv` with `input` on stdin and keeps stdin open: returns when stdout and stderr reach
// end of file (or after `limit`), with the time that took; then closes stdin and reaps.
struct OpenRun {
  RunResult r;
  double seconds = 0;
  bool timed_out = false;
};
OpenRun run_keeping_stdin(const std::vector<std::string>& argv, const std::string& input,
                          const std::vector<std::string>& env, std::chrono::seconds limit) {
  scrub::ignore_sigpipe();
  scrub::ChildOptions co;
  co.argv = argv;
  co.env = env_with(env);
  co.own_process_group = false;
  scrub::ChildProcess child = scrub::ChildProcess::spawn(co);
  REQUIRE(scrub::write_all(child.stdin_fd(), input));
  auto t0 = std::chrono::steady_clock::now();
  OpenRun o;
  pollfd fds[2] = {{child.stdout_fd(), POLLIN, 0}, {child.stderr_fd(), POLLIN, 0}};
  std::string* sinks[2] = {&o.r.out, &o.r.err};
  int open = 2;
  char buf[65536];
  while (open > 0) {
    auto left = limit - (std::chrono::steady_clock::now() - t0);
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
    if (ms <= 0 || ::poll(fds, 2, ms) <= 0) {
      o.timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = scrub::read_some(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  child.close_stdin();
  if (o.timed_out) child.send_signal(SIGKILL);
  o.r.status = child.wait_for(std::chrono::seconds(10));
  return o;
}

}  // namespace

TEST_CASE("faults: a scanner error drops that message, a response becomes an error with its id",
          "[e2e][faults]") {
  Faulty f;
  RunOptions o;
  o.extra_env = f.env("scan-error@2");
  // find() #1 scans response 1 (clean, no escapes: one scan), #2 fails on response 2.
  o.input = raw_out(result(1, "first")) + raw_out(result(2, "key " + kSecret)) +
            raw_out(result(3, "third key " + kSecret));
  RunResult r = run(f.argv(), o);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(kSecret) == std::string::npos);
  auto out = lines(r.out);
  REQUIRE(out.size() == 3);
  CHECK(out[0] == result(1, "first"));
  CHECK(out[1] == R"({"jsonrpc":"2.0","id":2,"error":{"code":-32002,"message":"mcp-scrub could not scan this response and did not forward it"}})");
  CHECK(out[2] == result(3, "third key [REDACTED:known-secret]"));
  std::string alerts = read_file(f.alerts);
  CHECK(alerts.find(R"("event":"engine-error")") != std::string::npos);
  CHECK(alerts.find(kSecret) == std::string::npos);
}

TEST_CASE("faults: a scanner error on a notification or a stderr line drops it", "[e2e][faults]") {
  Faulty f;
  RunOptions o;
  o.extra_env = f.env("scan-error@1");
  o.input = raw_out(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"key )" + kSecret + R"("}})") +
            "SLEEP 50\n" + split_err("stderr key " + kSecret) + "SLEEP 50\n" +
            raw_out(result(4, "after"));
  RunResult r = run(f.argv(), o);
  REQUIRE(r.status == 0);
  CHECK(r.out == result(4, "after") + "\n");  // the notification was not forwarded
  CHECK(r.err.find(kSecret) == std::string::npos);
  CHECK(r.err.find("stderr key") != std::string::npos);  // scan #2 worked: masked, written
  std::string alerts = read_file(f.alerts);
  CHECK(alerts.find(R"("event":"engine-error")") != std::string::npos);
}

TEST_CASE("faults: a scanner error makes `filter` stop before the unscanned line (exit 4)", "[e2e][faults]") {
  Faulty f;
  RunOptions o;
  o.extra_env = f.env("scan-error@2");
  o.input = "line one\nline two " + kSecret + "\nline three\n";
  RunResult r = run({bin(), "filter", "--no-builtin-rules", "--no-env-secrets", "--secret-env",
                     "FAULT_SECRET", "--fingerprint-key", f.key, "--no-cache"},
                    o);
  CHECK(r.status == 4);
  CHECK(r.out == "line one\n");
  CHECK(r.err.find("scanning engine failed (Hyperscan error -13)") != std::string::npos);
}

TEST_CASE("faults: `filter` stops at a scanner error without waiting for more input", "[e2e][faults]") {
  // The input stays open (as `tail -f` keeps it): the line that failed was the last one read,
  // and the next read would wait for the next line. The command must end at once, not when
  // more input comes: killed after 3 s, it would exit with the signal's status, not 4.
  Faulty f;
  RunOptions o;
  o.extra_env = f.env("scan-error@1");
  o.input = "line one " + kSecret + "\n";
  o.timed_input = {{3500, "line two\n"}};
  o.kill_after_ms = 3000;
  o.kill_signal = 9;
  RunResult r = run({bin(), "filter", "--no-builtin-rules", "--no-env-secrets", "--secret-env",
                     "FAULT_SECRET", "--fingerprint-key", f.key, "--no-cache"},
                    o);
  CHECK(r.status == 4);
  CHECK(r.out.empty());
  CHECK(r.err.find("scanning engine failed (Hyperscan error -13)") != std::string::npos);
  CHECK(r.err.find(kSecret) == std::string::npos);
}

TEST_CASE("faults: without scratch every message fails closed", "[e2e][faults]") {
  Faulty f;
  SECTION("wrap: responses become errors, notifications and stderr lines are dropped") {
    RunOptions o;
    o.extra_env = f.env("scratch-alloc");
    o.input = raw_out(result(5, "key " + kSecret)) +
              raw_out(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"x"}})") +
              split_err("stderr key " + kSecret) + "SLEEP 50\n";
    RunResult r = run(f.argv(), o);
    REQUIRE(r.status == 0);
    CHECK(r.out == R"({"jsonrpc":"2.0","id":5,"error":{"code":-32002,"message":"mcp-scrub could not scan this response and did not forward it"}})" "\n");
    CHECK(r.err.find("stderr key") == std::string::npos);
    CHECK(r.err.find(kSecret) == std::string::npos);
  }
  SECTION("filter: exit 4, nothing written") {
    RunOptions o;
    o.extra_env = f.env("scratch-alloc");
    o.input = "clean line\n";
    RunResult r = run({bin(), "filter", "--no-builtin-rules", "--no-env-secrets", "--secret-env",
                       "FAULT_SECRET", "--fingerprint-key", f.key, "--no-cache"},
                      o);
    CHECK(r.status == 4);
    CHECK(r.out == "");
  }
}

TEST_CASE("faults: a write error to the client stops the server, says why, and does not hang",
          "[e2e][faults]") {
  Faulty f;
  RunOptions o;
  o.extra_env = f.env("");
  // The server answers, then sits without reading; our stdout is /dev/full (ENOSPC).
  o.input = raw_out(result(1, "hello")) + "HANG\n";
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >/dev/full"};
  for (const auto& a : f.argv()) argv.push_back(a);
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run(argv, o);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(r.status == 128 + SIGTERM);  // the server's status: we ended it
  CHECK(r.err.find("mcp-scrub: writing to the client failed (No space left on device); stopping the server") !=
        std::string::npos);
  CHECK(secs < 10);
}

TEST_CASE("faults: a server that closes stdout but keeps running is ended after a grace",
          "[e2e][faults]") {
  Faulty f;
  SECTION("it keeps reading stdin, which the client keeps open") {
    auto o = run_keeping_stdin(f.argv(), raw_out(result(1, "bye")) + "CLOSE out\n", f.env(""),
                               std::chrono::seconds(20));
    CHECK_FALSE(o.timed_out);
    CHECK(o.seconds < 8);
    CHECK(o.r.out == result(1, "bye") + "\n");
    CHECK(o.r.err.find("the server closed its stdout but was still running after 2000 ms; terminating it") !=
          std::string::npos);
    CHECK(o.r.status == 128 + SIGTERM);
    CHECK(read_file(f.alerts).find(R"("event":"server-stdout-closed")") != std::string::npos);
  }
  SECTION("it ignores stdin and SIGTERM is enough") {
    auto o = run_keeping_stdin(f.argv(), "CLOSE out\nHANG\n", f.env(""), std::chrono::seconds(20));
    CHECK_FALSE(o.timed_out);
    CHECK(o.seconds < 8);
    CHECK(o.r.status == 128 + SIGTERM);
  }
  SECTION("a server that exits right after closing stdout keeps its own status") {
    RunOptions o;
    o.extra_env = f.env("");
    o.input = "CLOSE out\n";
    RunResult r = run(f.argv(), o);
    CHECK(r.status == 0);
    CHECK(r.err.find("terminating it") == std::string::npos);
  }
}
