// End-to-end: `mcp-scrub -- COMMAND` around the leaky test server (every channel a secret can
// take) and around the real official npm peers.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "filter/literal_variants.h"
#include "leaky_channels.h"
#include "run.h"

using namespace scrub::test;
using namespace scrub::test::leaky;
using nlohmann::json;

namespace {

struct Wrap : LeakyFixture {
  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {bin(), "--no-builtin-rules", "--rules", src("tests/fixtures/rules.toml"),
                                  "--secret-env", "LEAK_SECRET", "--secret-env", "LEAK_DB_URL",
                                  "--no-env-secrets", "--fingerprint-key", key, "--alerts", alerts};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.push_back(tool("leaky_server"));
    return a;
  }
  RunResult call(const std::vector<std::string>& requests, std::vector<std::string> extra = {},
                 std::vector<std::string> more_env = {}) const {
    RunOptions o;
    for (const auto& r : requests) o.input += r + "\n";
    o.extra_env = env;
    o.extra_env.insert(o.extra_env.end(), more_env.begin(), more_env.end());
    return run(argv(std::move(extra)), o);
  }
};

}  // namespace

TEST_CASE("wrap: every channel of an MCP server is masked, every message stays valid", "[e2e][wrap]") {
  Wrap w;
  RunResult r = w.call(channel_requests());
  REQUIRE(r.status == 0);
  check_channels(r.out);  // every response, server request and notification, exactly
  check_no_secret(r.err);
  check_no_secret(read_file(w.alerts));

  // stderr: complete lines, the partial line (after the idle flush), the split line.
  CHECK(r.err.find("connecting with [REDACTED:known-secret]\n") != std::string::npos);
  CHECK(r.err.find("partial line with key [REDACTED:known-secret]") != std::string::npos);
  CHECK(r.err.find("stderr split line with key [REDACTED:known-secret]\n") != std::string::npos);
  CHECK(r.err.find("mcp-scrub: summary: server->client ") != std::string::npos);

  // Alerts carry the MCP context.
  auto alerts = w.read_alerts();
  bool found = false;
  for (const auto& a : alerts)
    if (a.value("tool", "") == "leak_text" && a.value("id", "") == "3") {
      found = true;
      CHECK(a == json::parse(R"({"event":"finding","rule":"known-secret","secret":"env:LEAK_SECRET","source":"stdout","line":3,"direction":"server->client","method":"tools/call","id":"3","tool":"leak_text","path":"result.content[0].text","offset":63,"length":20,"fingerprint":"82a12a26e4e8","severity":"critical","action":"mask"})"));
    }
  CHECK(found);
}

// The pumps' busy polling (--busy-poll-us, default 50 µs with two CPUs or more) changes when
// bytes are read, never which: with polling off and with a window of a tenth of a second every
// channel comes out exactly as by default. A value out of range is refused before the server
// starts.

// A value on the line after its secret's name (an env list the server logs): the stderr pump
// pairs each line with the one before it, as `filter` does.
TEST_CASE("wrap: a stderr value on the line after its name is masked", "[e2e][wrap]") {
  Wrap w;
  RunResult r = w.call({request(1, "initialize"), tool_call(2, "leak_manifest"),
                        tool_call(3, "leak_key_stderr")});
  REQUIRE(r.status == 0);
  // A private key's lines, and what its END line holds after the marker.
  CHECK(r.err.find("-----BEGIN RSA PRIVATE KEY-----\n[REDACTED:private-key-block]\n"
                   "[REDACTED:private-key-block]-----END RSA PRIVATE KEY----- "
                   "key=[REDACTED:known-secret]\n") != std::string::npos);
  check_no_secret(r.err);
  CHECK(r.err.find("env:\n  - name: DB_PASSWORD\n    value: [REDACTED:env-list-value]\n"
                   "  - name: LOG_LEVEL\n") != std::string::npos);
  CHECK(r.err.find("Vb7mQ2xK9tL4pW8n") == std::string::npos);
  auto alerts = w.read_alerts();
  size_t found = 0;
  for (const auto& a : alerts)
    if (a.value("rule", "") == "env-list-value") {
      ++found;
      CHECK(a.value("source", "") == "stderr");
    }
  CHECK(found == 1);
}
TEST_CASE("wrap: --busy-poll-us off or long masks every channel alike and out of range is refused",
          "[e2e][wrap]") {
  Wrap w;
  for (const char* us : {"0", "100000"}) {
    INFO("--busy-poll-us " << us);
    RunResult r = w.call(channel_requests(), {"--busy-poll-us", us});
    REQUIRE(r.status == 0);
    check_channels(r.out);
    check_no_secret(r.err);
    CHECK(r.err.find("stderr split line with key [REDACTED:known-secret]\n") != std::string::npos);
  }
  RunResult bad = w.call({}, {"--busy-poll-us", "-5"});
  CHECK(bad.status == 2);
  CHECK(bad.err == "--busy-poll-us: Value -5 not in range 0 to 1000000\nRun with --help for more information.\n");
  CHECK(bad.out == "");
}

// A result over Redactor::kParallelBytes is scanned on two threads (the line's own scan on a
// helper thread while the line is parsed, then the large escaped string as the parse decoded
// it, while the helper maps that string back to the line for the masks): the client gets exactly
// what `filter --format json`, one thread, makes of the server's line.
TEST_CASE("wrap: a large result full of escapes is masked as one thread masks it", "[e2e][wrap][threads]") {
  Wrap w;
  const std::string req = tool_call(5, "leak_big_escaped", R"({"bytes":400000})");
  RunResult r = w.call({req});
  REQUIRE(r.status == 0);
  RunOptions direct;
  direct.input = req + "\n";
  direct.extra_env = w.env;
  RunResult raw = run({tool("leaky_server")}, direct);
  REQUIRE(raw.status == 0);
  REQUIRE(lines(raw.out).size() == 1);
  CHECK(raw.out.size() > 400000);
  RunOptions fo;
  fo.extra_env = w.env;
  RunResult one = run({bin(), "filter", "--format", "json", "--no-builtin-rules", "--rules",
                       src("tests/fixtures/rules.toml"), "--secret-env", "LEAK_SECRET", "--secret-env",
                       "LEAK_DB_URL", "--no-env-secrets", "--fingerprint-key", w.key,
                       w.dir.file("big.jsonl", raw.out)},
                      fo);
  REQUIRE(one.status == 0);
  CHECK(r.out == one.out);
  check_no_secret(r.out);
  // The known value (raw), the password and the token (found only once the escapes are decoded).
  auto out = lines(r.out);
  REQUIRE(out.size() == 1);
  const std::string text = json::parse(out[0])["result"]["content"][0]["text"].get<std::string>();
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 1)) ++n;
    return n;
  };
  CHECK(count("started with key=[REDACTED:known-secret]\n") == 1);
  CHECK(count("config {\"password\": \"[REDACTED:generic-password]\"}\n") == 1);
  CHECK(count("\n[REDACTED:github-pat]\n") == 1);
  CHECK(count("[REDACTED") == 3);
}

// An alert's method, id and tool come from the messages themselves: a client or server can put
// a secret there. They are scanned like the message before the alert is written.
TEST_CASE("wrap: an id and a tool name holding a known value are masked in the alerts too",
          "[e2e][wrap]") {
  Wrap w;
  const std::string req = R"({"jsonrpc":"2.0","id":")" + kSecret +
                          R"(","method":"tools/call","params":{"name":"echo","arguments":{"message":"a )" +
                          kSecret + R"("}}})";
  const std::string unknown = R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":")" +
                              kSecret + R"(","arguments":{}}})";
  RunResult r = w.call({req, unknown});
  REQUIRE(r.status == 0);
  check_no_secret(r.out);
  check_no_secret(r.err);
  check_no_secret(read_file(w.alerts));
  auto alerts = w.read_alerts();
  bool by_id = false, by_tool = false;
  for (const auto& a : alerts) {
    if (a.value("event", "") != "finding") continue;
    if (a.value("id", "") == "\"[REDACTED:known-secret]\"") {
      by_id = true;
      CHECK(a.value("tool", "") == "echo");
    }
    if (a.value("id", "") == "7") {
      by_tool = true;
      CHECK(a.value("tool", "") == "[REDACTED:known-secret]");
    }
  }
  CHECK(by_id);
  CHECK(by_tool);
}

TEST_CASE("wrap: a clean message is forwarded byte-identical", "[e2e][wrap]") {
  Wrap w;
  RunResult r = w.call({tool_call(1, "echo", R"({"message":"hi \"there\" \u00e9 \\ /"})")});
  REQUIRE(r.status == 0);
  CHECK(r.out == R"({"result":{"content":[{"type":"text","text":"Echo: hi \"there\" é \\ /"}]},"jsonrpc":"2.0","id":1})" "\n");
}

TEST_CASE("wrap: exit status follows the child", "[e2e][wrap][lifecycle]") {
  Wrap w;
  SECTION("exit code") {
    RunResult r = w.call({request(1, "ping"), request(2, "ping")}, {}, {"LEAK_EXIT_AFTER=1"});
    CHECK(r.status == 5);
    CHECK(r.out == R"({"result":{},"jsonrpc":"2.0","id":1})" "\n");
  }
  SECTION("killed by a signal: 128+N") {
    RunResult r = w.call({tool_call(1, "crash")});
    CHECK(r.status == 128 + SIGKILL);
  }
  SECTION("client EOF closes the child's stdin; the child exits 0") {
    RunResult r = w.call({});
    CHECK(r.status == 0);
    CHECK(r.out == "");
  }
}

TEST_CASE("wrap: command not found or not executable", "[e2e][wrap][lifecycle]") {
  TempDir d;
  RunResult nf = run({bin(), "--fingerprint-key", d.file("k", "0123456789abcdef0123\n"), "--",
                      "no-such-command-scrub"});
  CHECK(nf.status == 127);
  CHECK(nf.out == "");
  CHECK(nf.err.find("cannot run 'no-such-command-scrub'") != std::string::npos);
  std::string script = d.file("noexec.sh", "#!/bin/sh\necho hi\n");
  ::chmod(script.c_str(), 0644);
  RunResult ne = run({bin(), "--fingerprint-key", d.path + "/k", "--", script});
  CHECK(ne.status == 126);
  CHECK(ne.out == "");
}

TEST_CASE("wrap: SIGTERM is forwarded to the child", "[e2e][wrap][lifecycle]") {
  Wrap w;
  RunOptions o;
  o.extra_env = w.env;
  o.input = request(1, "ping") + "\n";
  o.timed_input = {{2000, request(2, "ping") + "\n"}};  // keeps stdin open meanwhile
  o.kill_after_ms = 500;
  o.kill_signal = SIGTERM;
  RunResult r = run(w.argv(), o);
  CHECK(r.status == 128 + SIGTERM);
  CHECK(r.out == R"({"result":{},"jsonrpc":"2.0","id":1})" "\n");
}

TEST_CASE("wrap: an oversized response becomes a JSON-RPC error with its id", "[e2e][wrap]") {
  Wrap w;
  RunResult r = w.call({tool_call(7, "leak_big", R"({"bytes":300000})"), request(8, "ping")},
                       {"--max-message-bytes", "100000"});
  REQUIRE(r.status == 0);
  CHECK(r.out ==
        R"({"jsonrpc":"2.0","id":7,"error":{"code":-32003,"message":"mcp-scrub: the server's message larger than --max-message-bytes (100000 bytes) not forwarded"}})"
        "\n"
        R"({"result":{},"jsonrpc":"2.0","id":8})"
        "\n");
  auto alerts = w.read_alerts();
  REQUIRE(alerts.size() >= 1);
  CHECK(alerts[0]["event"] == "oversized");
  CHECK(alerts[0]["id"] == "7");
}

TEST_CASE("wrap: --action block and --action alert", "[e2e][wrap]") {
  Wrap w;
  SECTION("block: a tool result becomes an isError result naming the rules") {
    RunResult r = w.call({tool_call(3, "leak_is_error"), tool_call(4, "leak_error"), tool_call(5, "echo", R"({"message":"ok"})")},
                         {"--action", "block"});
    REQUIRE(r.status == 0);
    auto out = lines(r.out);
    REQUIRE(out.size() == 3);
    CHECK(out[0] == R"J({"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"mcp-scrub blocked this tool result: it contained secrets (rules: github-pat)"}],"isError":true}})J");
    CHECK(out[1] == R"J({"jsonrpc":"2.0","id":4,"error":{"code":-32001,"message":"mcp-scrub blocked this response: it contained secrets (rules: known-secret)"}})J");
    CHECK(out[2] == R"({"result":{"content":[{"type":"text","text":"Echo: ok"}]},"jsonrpc":"2.0","id":5})");
  }
  SECTION("alert: forwarded unchanged, reported") {
    RunResult r = w.call({tool_call(3, "leak_text")}, {"--action", "alert"});
    REQUIRE(r.status == 0);
    CHECK(r.out.find(kSecret) != std::string::npos);  // monitor mode by the user's choice
    auto alerts = w.read_alerts();
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0]["action"] == "alert");
  }
}

TEST_CASE("wrap: --scan-requests masks the client-to-server direction", "[e2e][wrap]") {
  Wrap w;
  RunResult r = w.call({tool_call(1, "echo", R"({"message":"my key )" + kSecret + R"("})")}, {"--scan-requests"});
  REQUIRE(r.status == 0);
  CHECK(r.out == R"({"result":{"content":[{"type":"text","text":"Echo: my key [REDACTED:known-secret]"}]},"jsonrpc":"2.0","id":1})" "\n");
}

TEST_CASE("wrap: the real SDK client through mcp-scrub around server-everything", "[e2e][wrap][peers]") {
  const std::string peers = src("tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
  REQUIRE(!read_file(peers).empty());  // installed by scripts/setup.sh (npm ci)
  TempDir d;
  std::string key = d.file("k", "0123456789abcdef0123456789abcdef\n");
  std::string alerts = d.path + "/alerts.jsonl";
  const std::string aws = "AKIA" + std::string("Q7XK2M9P4W8T3NVB");        // fake
  const std::string api = "sk-test-" + std::string("Vn4Rq8Lm2Xw7Tz3Kp9Yb6Hd1");  // fake
  RunOptions o;
  // The compiled built-in pack in a cache of the build directory, shared with the tcp peer test
  // (the same rules, values and key): the normal build's run fills it, the sanitizer builds' runs
  // load it instead of compiling the pack under their allocators (8-10 s a run under ASan).
  o.extra_env = {"HOME=" + d.path, "XDG_CACHE_HOME=" + tool("peers-db-cache"),
                 "AWS_ACCESS_KEY_ID=" + aws, "OPENAI_API_KEY=" + api,
                 "DATABASE_URL=postgres://svc:" + kPass + "@10.0.0.1/app"};
  RunResult r = run({"node", src("tests/peers/sdk_client.mjs"), "--", bin(), "--fingerprint-key", key,
                     "--alerts", alerts, "--", "node", peers, "stdio"},
                    o);
  INFO(r.err.substr(0, 2000));
  REQUIRE(r.status == 0);
  json res = json::parse(lines(r.out).back());
  CHECK(res["errors"].empty());
  CHECK(res["getEnv"]["content"][0]["text"].get<std::string>().find("[REDACTED:known-secret]") != std::string::npos);
  CHECK(res["echo"]["content"][0]["text"] == "Echo: hello from sdk_client");
  CHECK(!res["resource"].is_null());
  for (const std::string& s : {aws, api, kPass}) {
    CHECK(r.out.find(s) == std::string::npos);
    CHECK(r.err.find(s) == std::string::npos);
    CHECK(read_file(alerts).find(s) == std::string::npos);
  }
  CHECK(read_file(alerts).find("\"tool\":\"get-env\"") != std::string::npos);
}

TEST_CASE("wrap: the client going away ends the server", "[e2e][wrap][lifecycle]") {
  Wrap w;
  std::string marker = w.dir.path + "/server-pid";
  // The client reads one line, then closes its end; the server keeps talking (leak_big lines).
  std::string script = "printf '%s\\n%s\\n' '" + request(1, "ping") + "' '" +
                       tool_call(2, "leak_big", R"({"bytes":2000000})") + "' | (";
  for (const auto& a : w.argv()) script += " '" + a + "'";
  script += "; echo \"proxy=$?\" >&2) | head -c 10";
  RunOptions o;
  o.extra_env = w.env;
  RunResult r = run({"/bin/sh", "-c", script}, o);
  CHECK(r.status == 0);
  CHECK(r.out == R"({"result":)");
  // The proxy ended (it did not hang on a server nobody reads).
  CHECK(r.err.find("proxy=") != std::string::npos);
}

// The client's requests reach the server while the engine loads (no rule file of the user's): a
// --secrets-cmd, which runs while the engine loads, waits up to 5 s for the server to have read
// a request, and finds it.
TEST_CASE("wrap: the client's requests reach the server while the engine loads", "[e2e][wrap][lifecycle]") {
  Wrap w;
  const std::string got = w.dir.path + "/server-got-request";
  const std::string saw = w.dir.path + "/engine-saw-it";
  const std::string reply = R"({"jsonrpc":"2.0","id":1,"result":{}})";
  const std::string cmd = "for i in $(seq 100); do if [ -f '" + got + "' ]; then touch '" + saw +
                          "'; break; fi; sleep 0.05; done; echo Qm7Xv2Lp9Rt4Wk8Zn3Bc";  // fake
  const std::string server = "read line; touch '" + got + "'; printf '%s\\n' '" + reply + "'";
  RunOptions o;
  o.input = request(1, "ping") + "\n";
  // (No rules at all, only the known value: the pack's compile would dominate a sanitizer run.)
  RunResult r = run({bin(), "--no-builtin-rules", "--fingerprint-key", w.key, "--no-env-secrets", "--secrets-cmd", cmd, "--",
                     "/bin/sh", "-c", server},
                    o);
  CHECK(r.status == 0);
  CHECK(r.out == reply + "\n");
  CHECK(::access(saw.c_str(), F_OK) == 0);
}

// With the built-in pack alone the server starts while the engine loads. An engine error then
// (a secrets file that cannot be read) ends the server too: nothing outlives the proxy, and the
// error is the one a configuration error gets.
TEST_CASE("wrap: an engine error after the server started ends the server", "[e2e][wrap][errors]") {
  Wrap w;
  const std::string marker = w.dir.path + "/server-pid";
  RunResult r = run({bin(), "--fingerprint-key", w.key, "--secrets-file", w.dir.path + "/missing.env", "--",
                     "/bin/sh", "-c", "echo $$ > '" + marker + "'; exec sleep 30"});
  CHECK(r.status == 2);
  CHECK(r.out == "");
  CHECK(r.err == "mcp-scrub: error: " + w.dir.path + "/missing.env: cannot read secrets file\n");
  // The server may not have got as far as writing its pid; if it did, it is gone.
  const std::string pid = read_file(marker);
  if (!pid.empty()) {
    const pid_t p = static_cast<pid_t>(std::stol(pid));
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = ::kill(p, 0) != 0;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(gone);
  }
}

TEST_CASE("wrap: a rule file that does not compile stops before the server starts", "[e2e][wrap][errors]") {
  Wrap w;
  std::string bad = w.dir.file("bad.toml", "[[rules]]\nid = 'broken'\nregex = '''(x'''\n");
  std::string marker = w.dir.path + "/started";
  RunResult r = run({bin(), "--rules", bad, "--fingerprint-key", w.key, "--", "/bin/sh", "-c",
                     "touch '" + marker + "'"});
  CHECK(r.status == 2);
  CHECK(r.out == "");
  CHECK(r.err.find("rule 'broken': regex is invalid") != std::string::npos);
  CHECK(read_file(marker) == "");
  CHECK(::access(marker.c_str(), F_OK) != 0);
}
