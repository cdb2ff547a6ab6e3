// End-to-end: the mcp-scrub binary's filter, scan and rules commands over corpus/e2e files.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "run.h"
#include "tests/sanitizer_stride.h"

using namespace scrub;
using namespace scrub::test;

namespace {

const char* kKnown = "Zq8vR2xkPm4TnW7yL3bH";  // fake

struct Fixture {
  TempDir dir;
  std::string key = dir.file("fp.key", "0123456789abcdef0123456789abcdef\n");
  std::string known = dir.file("known.txt", std::string(kKnown) + "\n");
  std::string alerts = dir.path + "/alerts.jsonl";
  std::vector<std::string> base(const std::string& cmd) const {
    return {bin(), cmd, "--no-builtin-rules", "--rules", src("tests/fixtures/rules.toml"),
            "--secrets-file", known, "--no-env-secrets", "--fingerprint-key", key};
  }
  // `filter --format json --alerts` over `input`, written to a file.
  RunResult filter_json_file(const std::string& input) const {
    const std::string path = dir.file("in.jsonl", input);
    auto args = base("filter");
    args.insert(args.end(), {"--format", "json", "--alerts", alerts, path});
    return run(args);
  }
  // The alert file without timestamps, one JSON object per line.
  std::vector<nlohmann::json> read_alerts() const {
    std::vector<nlohmann::json> out;
    for (const auto& l : lines(read_file(alerts))) {
      auto j = nlohmann::json::parse(l);
      REQUIRE(j.contains("time"));
      j.erase("time");
      out.push_back(j);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("filter --format text masks a realistic log exactly", "[e2e][filter]") {
  Fixture f;
  auto args = f.base("filter");
  args.insert(args.end(), {"--alerts", f.alerts, src("corpus/e2e/app.log")});
  RunResult r = run(args);
  REQUIRE(r.status == 0);
  CHECK(r.err == "");
  auto out = lines(r.out);
  REQUIRE(out.size() == 9);
  CHECK(out[0] == "2026-11-26T10:00:00Z INFO starting api on :8080 (commit 3f2c1a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b)");
  CHECK(out[2] == "2026-11-26T10:00:02Z ERROR db connect failed: postgresql://app:[REDACTED:connection-string-password]@db.internal:5432/prod");
  CHECK(out[3] == "2026-11-26T10:00:03Z DEBUG env GITHUB_TOKEN=[REDACTED:github-pat]");
  CHECK(out[4] == "2026-11-26T10:00:04Z WARN config password = \"changeme\" (placeholder, left alone)");
  CHECK(out[5] == "2026-11-26T10:00:05Z INFO charge ok key=[REDACTED:stripe-secret-key]");
  CHECK(out[6] == "2026-11-26T10:00:06Z DEBUG known value in text: [REDACTED:known-secret]");
  // The base64 form: its last character mixes the value's last bits with padding, so it is not
  // part of the form the engine looks for; it is masked with it, and so is the padding.
  CHECK(out[7] == "2026-11-26T10:00:07Z DEBUG known value base64: [REDACTED:known-secret]");
  // Lines without findings are byte-identical.
  auto in = lines(read_file(src("corpus/e2e/app.log")));
  for (int i : {0, 1, 4, 8}) CHECK(out[i] == in[i]);

  auto alerts = f.read_alerts();
  REQUIRE(alerts.size() == 5);
  CHECK(alerts[0] == nlohmann::json::parse(R"({"event":"finding","rule":"connection-string-password","source":")" +
                                           src("corpus/e2e/app.log") +
                                           R"(","line":3,"offset":63,"length":16,"fingerprint":"24e7fc37868e","severity":"high","action":"mask"})"));
  CHECK(alerts[1]["rule"] == "github-pat");
  CHECK(alerts[1]["fingerprint"] == "262d12d2b498");
  CHECK(alerts[3]["secret"] == "secrets-file:known.txt:1");
  CHECK(alerts[3]["severity"] == "critical");
  // No alert carries the secret or any piece of it.
  std::string raw = read_file(f.alerts);
  for (const char* piece : {"Zq8v", "L3bH", "Vq7L", "Fk7Q", "4eC39", "ghp_"}) CHECK(raw.find(piece) == std::string::npos);
}

TEST_CASE("filter --format json masks inside decoded strings and keeps JSON valid", "[e2e][filter]") {
  Fixture f;
  auto args = f.base("filter");
  args.insert(args.end(), {"--format", "json", "--alerts", f.alerts, src("corpus/e2e/rpc.jsonl")});
  RunResult r = run(args);
  REQUIRE(r.status == 0);
  auto out = lines(r.out);
  REQUIRE(out.size() == 5);
  auto in = lines(read_file(src("corpus/e2e/rpc.jsonl")));
  CHECK(out[0] == in[0]);
  CHECK(out[1] == R"({"result":{"content":[{"type":"text","text":"{\n  \"GITHUB_TOKEN\": \"[REDACTED:github-pat]\"\n}"}],"structuredContent":{"token":"[REDACTED:github-pat]"}},"jsonrpc":"2.0","id":2})");
  CHECK(out[2] == R"({"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"auth failed for [REDACTED:known-secret]","data":{"dsn":"mysql:\/\/root:[REDACTED:connection-string-password]@db\/x"}}})");
  CHECK(out[3] == in[3]);
  CHECK(out[4] == "not json: [REDACTED:known-secret]");
  for (int i = 0; i < 4; ++i) CHECK(nlohmann::json::accept(out[i]));

  auto alerts = f.read_alerts();
  REQUIRE(alerts.size() == 6);
  CHECK(alerts[0]["path"] == "result.content[0].text>GITHUB_TOKEN");
  CHECK(alerts[0]["encoded"] == true);
  CHECK(alerts[1]["path"] == "result.structuredContent.token");
  CHECK(alerts[2]["path"] == "error.message");
  CHECK(alerts[2]["offset"] == 74);
  CHECK(alerts[2]["length"] == 25);  // `\u005A` + 19 bytes, as written
  CHECK(alerts[3]["path"] == "error.data.dsn");
  CHECK(alerts[4]["event"] == "invalid-json");
  CHECK(alerts[4]["line"] == 5);
}

TEST_CASE("filter --format json reports each invalid line among clean ones, the last included",
          "[e2e][filter]") {
  // Lines without an escape or a match event are only validated (in place, in their batch):
  // each invalid one gets its incident, in order with the findings, and every line comes out
  // as it went in but for the secret. The last line is invalid and has no newline.
  Fixture f;
  RunOptions o;
  o.input = std::string(R"({"level":"info","msg":"ok"})") + "\n" +
            R"({"level":"info","msg":"unclosed")" + "\n" +
            "   \n" +
            R"({"a":1} {)" + "\n" +
            R"({"note":"value )" + kKnown + R"("})" + "\n" +
            R"([1,2,{"b":null}])" + "\n" +
            R"({"a":)";
  auto args = f.base("filter");
  args.insert(args.end(), {"--format", "json", "--alerts", f.alerts});
  RunResult r = run(args, o);
  CHECK(r.status == 0);
  std::string want = o.input;
  want.replace(want.find(kKnown), std::string(kKnown).size(), "[REDACTED:known-secret]");
  CHECK(r.out == want);
  auto alerts = f.read_alerts();
  REQUIRE(alerts.size() == 5);
  std::vector<std::pair<std::string, int>> got;
  for (const auto& a : alerts) got.emplace_back(a["event"].get<std::string>(), a["line"].get<int>());
  CHECK(got == std::vector<std::pair<std::string, int>>{
                   {"invalid-json", 2}, {"invalid-json", 3}, {"invalid-json", 4}, {"finding", 5},
                   {"invalid-json", 7}});
}

TEST_CASE("filter reads stdin, flushes per line and keeps a last line without newline", "[e2e][filter]") {
  Fixture f;
  RunOptions o;
  o.input = "a ghp_Fk7Qm2Xr9Lp4Ws8Tn3Vb6Yc1Hd5Jg0Ze2Ua4\r\nno newline " + std::string(kKnown);
  RunResult r = run(f.base("filter"), o);
  CHECK(r.status == 0);
  CHECK(r.out == "a [REDACTED:github-pat]\r\nno newline [REDACTED:known-secret]");
}

TEST_CASE("a line over --max-line-bytes is scanned in pieces, never passed through", "[e2e][filter]") {
  Fixture f;
  // The secret straddles the 4096-byte piece boundary.
  std::string line = std::string(4080, 'x') + " " + kKnown + " " + std::string(9000, 'y') + "\n";
  RunOptions o;
  o.input = line + "short " + kKnown + "\n";
  auto args = f.base("filter");
  args.insert(args.end(), {"--max-line-bytes", "4096", "--alerts", f.alerts});
  RunResult r = run(args, o);
  REQUIRE(r.status == 0);
  std::string want = std::string(4080, 'x') + " [REDACTED:known-secret] " + std::string(9000, 'y') +
                     "\nshort [REDACTED:known-secret]\n";
  CHECK(r.out == want);
  auto alerts = f.read_alerts();
  REQUIRE(alerts.size() == 3);
  CHECK(alerts[0]["event"] == "oversized-line");
  CHECK(alerts[1]["offset"] == 4081);
  CHECK(alerts[2]["line"] == 2);
}

namespace {

// A log long enough for several batches of --threads (eight of 4,096 lines), so that the reading
// thread both queues batches ahead and runs some itself: clean lines, CRLF lines, the known value
// every 97th line, a private key printed over six lines every 1,500 lines (some straddle batch
// boundaries), an overlong line early on and a last line without a newline. `known` and
// `pem_lines` count what the output must mask.
struct ThreadedLog {
  // About 1 MB of text, 1.6 MB of JSON lines: several 256 KiB batches for each thread. Half as
  // many against a sanitizer build (still two or more batches; ThreadSanitizer's run of this
  // test took 23 s).
  const size_t body_lines = scrub::test::e2e_stride() > 1 ? 15000 : 30000;
  std::string text;
  size_t known = 0, pem_lines = 0, lines = 0;
  explicit ThreadedLog(bool json) {
    for (size_t i = 0; i < body_lines; ++i) {
      std::string body = "request " + std::to_string(i) + " served in " + std::to_string(i % 50) + " ms";
      if (i % 97 == 0) {
        body += " token " + std::string(kKnown);
        ++known;
      }
      if (json)
        body = i % 331 == 5 ? "not json: " + body : R"({"i":)" + std::to_string(i) + R"(,"msg":")" + body + R"("})";
      if (!json && i % 1500 == 1499) {
        text += "-----BEGIN RSA PRIVATE KEY-----\n";
        for (int k = 0; k < 4; ++k) text += "MIIEowIBAAKCAQEAfakefakefakefakefakefake" + std::to_string(k) + "\n";
        text += "-----END RSA PRIVATE KEY-----\n";
        pem_lines += 4;  // the body; the BEGIN and END lines hold no key
        lines += 6;
      }
      if (i == 4500) {
        text.append(6000, 'x').append(" ").append(kKnown).append(" ").append(7000, 'y').append("\n");
        ++known;
        ++lines;
      }
      text += body + (i % 7 == 0 ? "\r\n" : "\n");
      ++lines;
    }
    text += json ? R"({"last":"no newline"})" : "last line without newline";
    ++lines;
  }
};

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("filter --threads: output and alerts are those of one thread, in order", "[e2e][filter][threads]") {
  for (bool json : {false, true}) {
    INFO((json ? "json" : "text"));
    Fixture f;
    ThreadedLog log(json);
    std::string input = f.dir.file("in.log", log.text);
    std::string ref_out;
    std::vector<nlohmann::json> ref_alerts;
    for (const char* threads : {"1", "2", "3", "4"}) {
      INFO("threads " << threads);
      std::remove(f.alerts.c_str());  // the alert sink appends
      auto args = f.base("filter");
      args.insert(args.end(), {"--format", json ? "json" : "text", "--max-line-bytes", "4096",
                               "--threads", threads, "--alerts", f.alerts, input});
      RunResult r = run(args);
      REQUIRE(r.status == 0);
      CHECK(count(r.out, kKnown) == 0);
      CHECK(count(r.out, "[REDACTED:known-secret]") == log.known);
      CHECK(count(r.out, "fakefake") == 0);
      CHECK(count(r.out, "[REDACTED:private-key-block]") == (json ? 0 : log.pem_lines));
      CHECK(count(r.out, "\n") == log.lines - 1);
      auto alerts = f.read_alerts();
      CHECK(alerts.size() == log.known + (json ? log.body_lines / 331 + 1 : log.pem_lines) + 1);
      if (ref_out.empty()) {
        ref_out = r.out;
        ref_alerts = alerts;
      } else {
        CHECK(r.out == ref_out);  // byte for byte
        CHECK(alerts == ref_alerts);
      }
    }
  }
}

TEST_CASE("filter --threads from a pipe: every line is written before the input blocks", "[e2e][filter][threads]") {
  Fixture f;
  RunOptions o;
  o.input = "one " + std::string(kKnown) + "\r\ntwo\nthree " + kKnown;
  auto args = f.base("filter");
  args.insert(args.end(), {"--threads", "2"});
  RunResult r = run(args, o);
  CHECK(r.status == 0);
  CHECK(r.out == "one [REDACTED:known-secret]\r\ntwo\nthree [REDACTED:known-secret]");
}

TEST_CASE("filter widens its stdin and stdout pipes to 1 MiB", "[e2e][filter]") {
  // A log producer on the other end of a 64 KiB pipe wakes the filter (and is woken by it) every
  // 64 KiB; through a pipe on each side that cost the filter a sixth of its time on the mixed log.
  Fixture f;
  ignore_sigpipe();
  ChildOptions co;
  co.argv = f.base("filter");
  co.env = current_environment();
  co.own_process_group = false;
  ChildProcess child = ChildProcess::spawn(co);
  REQUIRE(::fcntl(child.stdin_fd(), F_GETPIPE_SZ) == 64 * 1024);  // the kernel's default
  REQUIRE(write_all(child.stdin_fd(), "one " + std::string(kKnown) + "\n"));
  // The line comes back while stdin stays open: the filter has set both pipes up by then.
  std::string out;
  char buf[256];
  while (out.find('\n') == std::string::npos) {
    pollfd p = {child.stdout_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 30000) == 1);
    ssize_t n = read_some(child.stdout_fd(), buf, sizeof buf);
    REQUIRE(n > 0);
    out.append(buf, static_cast<size_t>(n));
  }
  CHECK(out == "one [REDACTED:known-secret]\n");
  CHECK(::fcntl(child.stdin_fd(), F_GETPIPE_SZ) == 1 << 20);
  CHECK(::fcntl(child.stdout_fd(), F_GETPIPE_SZ) == 1 << 20);
  child.close_stdin();
  CHECK(child.wait_for(std::chrono::seconds(30)) == 0);
}

TEST_CASE("binary input is scanned as bytes", "[e2e][filter]") {
  Fixture f;
  RunOptions o;
  o.input = std::string("\x00\x01\xff bin ", 8) + kKnown + std::string("\x00\n", 2);
  RunResult r = run(f.base("filter"), o);
  CHECK(r.status == 0);
  CHECK(r.out == std::string("\x00\x01\xff bin [REDACTED:known-secret]\x00\n", 33));
}

TEST_CASE("scan: exit codes and report formats", "[e2e][scan]") {
  Fixture f;
  SECTION("findings: exit 1, table") {
    auto args = f.base("scan");
    args.push_back(src("corpus/e2e/app.log"));
    RunResult r = run(args);
    CHECK(r.status == 1);
    auto out = lines(r.out);
    REQUIRE(out.size() == 7);
    CHECK(out[0].rfind("LOCATION", 0) == 0);
    CHECK(out[2].find("github-pat") != std::string::npos);
    CHECK(out[2].find("app.log:4:45") != std::string::npos);
    CHECK(out[6] == "5 findings");
    CHECK(r.out.find("ghp_") == std::string::npos);
  }
  SECTION("clean: exit 0") {
    RunOptions o;
    o.input = "nothing to see here\n";
    RunResult r = run(f.base("scan"), o);
    CHECK(r.status == 0);
    CHECK(r.out == "0 findings\n");
  }
  SECTION("json") {
    auto args = f.base("scan");
    args.insert(args.end(), {"--format", "json", "--input", "json", src("corpus/e2e/rpc.jsonl")});
    RunResult r = run(args);
    CHECK(r.status == 1);
    auto j = nlohmann::json::parse(r.out);
    REQUIRE(j.size() == 5);
    CHECK(j[1] == nlohmann::json::parse(R"({"rule":"github-pat","source":")" + src("corpus/e2e/rpc.jsonl") +
                                        R"(","line":2,"path":"result.structuredContent.token","offset":149,"length":40,"fingerprint":"262d12d2b498","severity":"high","action":"mask"})"));
  }
  SECTION("sarif") {
    auto args = f.base("scan");
    args.insert(args.end(), {"--format", "sarif", src("corpus/e2e/app.log")});
    RunResult r = run(args);
    CHECK(r.status == 1);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["version"] == "2.1.0");
    auto& results = j["runs"][0]["results"];
    REQUIRE(results.size() == 5);
    CHECK(results[1]["ruleId"] == "github-pat");
    CHECK(results[1]["locations"][0]["physicalLocation"]["region"]["startLine"] == 4);
    CHECK(results[1]["locations"][0]["physicalLocation"]["region"]["startColumn"] == 45);
    CHECK(results[1]["partialFingerprints"]["mcpScrubHmac/v1"] == "262d12d2b498");
    CHECK(j["runs"][0]["tool"]["driver"]["rules"].size() == 4);
  }
  SECTION("sarif: a rule's id or description that holds a known value does not carry it out") {
    const std::string rules = f.dir.file("leaky.toml", std::string(R"toml(
[[rules]]
id = "team-)toml") + kKnown + R"toml("
description = "Team token"
regex = '''\b(tt_[a-z0-9]{12})\b'''
keywords = ["tt_"]

[[rules]]
id = "ops-token"
description = "Ops token, as in )toml" + kKnown + R"toml("
regex = '''\b(ot_[a-z0-9]{12})\b'''
keywords = ["ot_"]
)toml");
    RunOptions o;
    o.input = "a tt_k3j5h7g9d2s4 b ot_q8w6e4r2t1y3\n";
    RunResult r = run({bin(), "scan", "--format", "sarif", "--no-builtin-rules", "--rules", rules,
                       "--secrets-file", f.known, "--no-env-secrets", "--fingerprint-key", f.key},
                      o);
    CHECK(r.status == 1);
    CHECK(r.out.find(kKnown) == std::string::npos);
    CHECK(r.err.find(kKnown) == std::string::npos);
    auto j = nlohmann::json::parse(r.out);
    auto& driver_rules = j["runs"][0]["tool"]["driver"]["rules"];
    REQUIRE(driver_rules.size() == 2);
    CHECK(driver_rules[0]["id"] == "rule-1");
    CHECK(driver_rules[0]["shortDescription"]["text"] == "Team token");
    CHECK(driver_rules[1]["id"] == "ops-token");
    CHECK(driver_rules[1]["shortDescription"]["text"] == "Ops token, as in [REDACTED:known-secret]");
    CHECK(r.err == "mcp-scrub: warning: the id of rule 1 of the set holds a known secret value; its "
                   "findings are reported as rule-1\n");
  }
  SECTION("unreadable input: exit 3 and the file named") {
    auto args = f.base("scan");
    args.push_back(f.dir.path + "/missing.log");
    RunResult r = run(args);
    CHECK(r.status == 3);
    CHECK(r.err == "mcp-scrub: error: " + f.dir.path + "/missing.log: cannot open: No such file or directory\n");
  }
}

TEST_CASE("bad configuration: a clear message and exit 2", "[e2e][errors]") {
  Fixture f;
  SECTION("invalid rule regex names the rule") {
    std::string rules = f.dir.file("bad.toml", "[[rules]]\nid = 'broken'\nregex = '''(open'''\n");
    RunResult r = run({bin(), "filter", "--rules", rules, "--no-builtin-rules", "--fingerprint-key", f.key});
    CHECK(r.status == 2);
    CHECK(r.err == "mcp-scrub: error: " + rules + ": rule 'broken': regex is invalid: missing ): (open\n");
    CHECK(r.out == "");
  }
  SECTION("invalid TOML names the line") {
    std::string rules = f.dir.file("bad.toml", "[[rules]]\nid = 'x'\nregex = \n");
    RunResult r = run({bin(), "scan", "--rules", rules, "--fingerprint-key", f.key});
    CHECK(r.status == 2);
    CHECK(r.err.rfind("mcp-scrub: error: " + rules + ": invalid TOML: line 3", 0) == 0);
  }
  // The known values are read before the rule files: what an error or warning quotes from a
  // rule file (an id, a regex, a key) has every form of them masked.
  SECTION("a rule file's error or warning that quotes a known value masks it") {
    auto with = [&](const std::string& rules, const std::string& input) {
      RunOptions o;
      o.input = input;
      auto args = f.base("filter");
      args.insert(args.end(), {"--rules", rules});
      return run(args, o);
    };
    const std::string no_regex = f.dir.file("id.toml", std::string("[[rules]]\nid = 'team-") + kKnown + "'\n");
    RunResult a = with(no_regex, "");
    CHECK(a.status == 2);
    CHECK(a.err == "mcp-scrub: error: " + no_regex + ": rule 'team-[REDACTED:known-secret]': missing 'regex'\n");
    const std::string bad_regex =
        f.dir.file("re.toml", std::string("[[rules]]\nid = 'r'\nregex = \"(") + kKnown + "\"\n");
    RunResult b = with(bad_regex, "");
    CHECK(b.status == 2);
    CHECK(b.err == "mcp-scrub: error: " + bad_regex +
                       ": rule 'r': regex is invalid: missing ): ([REDACTED:known-secret]\n");
    // Its base64 form too, as a key the loader does not know (a warning; the run goes on).
    const std::string b64 = "WnE4dlIyeGtQbTRUblc3eUwzYkg";  // kKnown in base64, unpadded
    const std::string odd_key =
        f.dir.file("key.toml", "[[rules]]\nid = 'k'\nregex = 'k_[a-z]{9}x'\n" + b64 + " = 1\n");
    RunResult c = with(odd_key, "plain\n");
    CHECK(c.status == 0);
    CHECK(c.out == "plain\n");
    // The last character, which holds bits of whatever byte follows the value, stays, as the
    // engine leaves it in a stream.
    CHECK(c.err == "mcp-scrub: warning: " + odd_key + ": rule 'k': unknown key '[REDACTED:known-secret]g' ignored\n");
    for (const RunResult* r : {&a, &b, &c}) {
      CHECK(r->err.find(kKnown) == std::string::npos);
      CHECK(r->err.find(b64.substr(0, 12)) == std::string::npos);
    }
  }
  SECTION("unknown option") {
    RunResult r = run({bin(), "filter", "--no-such-option"});
    CHECK(r.status == 2);
  }
  // --fingerprint-key takes a file. The key itself given in its place is not echoed back.
  SECTION("a fingerprint key given in place of its file is not printed") {
    const std::string inline_key = "9f3c1a7be05d42c8a6e1f0b2d4c7a9e3";  // fake
    RunResult r = run({bin(), "filter", "--fingerprint-key", inline_key});
    CHECK(r.status == 2);
    CHECK(r.err ==
          "mcp-scrub: error: --fingerprint-key: no such file (it takes a file holding the key; the "
          "argument is not shown, as it may be the key itself)\n");
    CHECK(r.err.find(inline_key.substr(0, 8)) == std::string::npos);
  }
  SECTION("a missing or short fingerprint key file is named") {
    RunResult missing = run({bin(), "filter", "--fingerprint-key", f.dir.path + "/no-key"});
    CHECK(missing.status == 2);
    CHECK(missing.err == "mcp-scrub: error: " + f.dir.path + "/no-key: cannot read the fingerprint key file\n");
    const std::string short_key = f.dir.file("short.key", "0123456789\n");
    RunResult shorter = run({bin(), "filter", "--fingerprint-key", short_key});
    CHECK(shorter.status == 2);
    CHECK(shorter.err == "mcp-scrub: error: " + short_key + ": the fingerprint key is too short (needs 16+ bytes)\n");
  }
}

TEST_CASE("rules check and rules list", "[e2e][rules]") {
  Fixture f;
  std::string rules = f.dir.file("r.toml", R"(
[[rules]]
id = "good"
description = "fine"
regex = '''tok_([0-9]{6})'''
examples = [{ text = "x tok_123456 y", secret = "123456" }]
negatives = ["tok_12345"]
[[rules]]
id = "bad-negative"
description = "fires on its negative"
regex = '''key_[a-z]{4}'''
examples = [{ text = "key_abcd", secret = "key_abcd" }]
negatives = ["key_wxyz"]
)");
  std::string every = f.dir.file("every.toml", R"(
[[rules]]
id = "every-field"
description = "all that decides a match"
regex = '''(?i)zz_([0-9a-f]{32})'''
secretGroup = 1
entropy = 2.5
keywords = ["zz_"]
prefilter = '''zz_'''
prefilterSearch = "whole-unit"
requiredRun = '''[0-9a-f]{32}'''
severity = "critical"
mask = "partial"
keepPrefix = 4
action = "alert"
generic = true
[[rules.allowlists]]
stopwords = ["example"]
)");
  RunResult r = run({bin(), "rules", "check", rules});
  CHECK(r.status == 1);
  CHECK(r.out == "FAIL bad-negative: negative 1: the rule fires at [0,8)\n"
                 "2 rules, 2 examples, 2 negatives checked: 1 failure\n");
  RunResult list = run({bin(), "rules", "list", "--no-builtin-rules", "--rules", rules, "--rules",
                        every, "--format", "json"});
  CHECK(list.status == 0);
  auto j = nlohmann::json::parse(list.out);
  REQUIRE(j.size() == 3);
  // Every field that decides what a rule matches and does; null where the rule leaves the default.
  CHECK(j[0] == nlohmann::json::parse(R"J({"id":"good","description":"fine","severity":"high",
      "tier":"specific","keywords":[],"regex":"tok_([0-9]{6})","secret_group":0,"entropy":0.0,
      "prefilter":null,"prefilter_search":null,"required_run":null,"allowlists":0,"mask":null,
      "action":null,"keep_prefix":null,"examples":1,"negatives":1,
      "origin":")J" + rules + R"J(: rule 'good'"})J"));
  CHECK(j[2] == nlohmann::json::parse(R"J({"id":"every-field","description":"all that decides a match",
      "severity":"critical","tier":"generic","keywords":["zz_"],"regex":"(?i)zz_([0-9a-f]{32})",
      "secret_group":1,"entropy":2.5,"prefilter":"zz_","prefilter_search":"whole-unit",
      "required_run":"[0-9a-f]{32}","allowlists":1,"mask":"partial","action":"alert",
      "keep_prefix":4,"examples":0,"negatives":0,"origin":")J" + every + R"J(: rule 'every-field'"})J"));
  // The keys come in the same order for every rule, the first as before.
  CHECK(list.out.find("{\n    \"id\": \"every-field\",\n    \"description\"") != std::string::npos);
}

TEST_CASE("ordinary text passes the whole built-in pack untouched", "[e2e][filter][false-positives]") {
  // UUIDs, git SHAs, lock-file hashes, base64 images, placeholders, env lookups, documented
  // example keys, identifiers holding a keyword, stack traces.
  Fixture f;
  RunResult r = run({bin(), "filter", "--no-env-secrets", "--fingerprint-key", f.key, "--alerts",
                     f.alerts, src("corpus/e2e/clean.txt")});
  REQUIRE(r.status == 0);
  CHECK(r.out == read_file(src("corpus/e2e/clean.txt")));
  CHECK(read_file(f.alerts) == "");
}

// Most lines plain, so the batch prefilter is on: a line without a match event as it stands is
// redacted without scanning it again, and what its escapes hide is still found.
TEST_CASE("filter --format json: a value only escapes reveal is masked among plain lines", "[e2e][filter]") {
  Fixture f;
  std::string input;
  for (int i = 0; i < 20; ++i)
    input.append(R"({"level":"info","msg":"plain line )").append(std::to_string(i)).append("\"}\n");
  // The known value with its Z written as \u005A: invisible to a scan of the line as it stands.
  input.append(R"({"level":"warn","msg":"value \u005A)").append(kKnown + 1).append(R"( here","n":1})" "\n");
  input.append(R"({"level":"warn","msg":"tab\tonly"})" "\n");
  RunResult r = f.filter_json_file(input);
  REQUIRE(r.status == 0);
  auto out = lines(r.out);
  REQUIRE(out.size() == 22);
  auto in = lines(input);
  for (int i = 0; i < 20; ++i) CHECK(out[i] == in[i]);
  CHECK(out[20] == R"({"level":"warn","msg":"value [REDACTED:known-secret] here","n":1})");
  CHECK(out[21] == in[21]);
  auto alerts = f.read_alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0]["line"] == 21);
  CHECK(alerts[0]["path"] == "msg");
  CHECK(alerts[0]["encoded"] == true);
  CHECK(alerts[0]["offset"] == 29);
  CHECK(alerts[0]["length"] == 25);
}

TEST_CASE("filter --format json: lines with escapes, each decoded string checked for its own line",
          "[e2e][filter]") {
  // Most lines hold escapes, as MCP messages do: the decoded strings of a batch are scanned in
  // one call, and whatever one of them holds must send its own line, and only that one, to the
  // full redaction.
  Fixture f;
  const std::string hidden = std::string(R"(\u005A)") + (kKnown + 1);  // the known value, Z escaped
  std::vector<std::string> in;
  for (int i = 0; i < 12; ++i)
    in.push_back(R"({"msg":"clean\tline )" + std::to_string(i) + R"(\n","x":"a\"b"})");
  in.push_back(R"({"a":"x\ny","b":"see )" + hidden + R"("})");          // 13: the second string
  in.push_back(R"({"inner":"{\"t\":\")" + std::string(R"(\\u005A)") + (kKnown + 1) +
               R"(\"}"})");                                             // 14: escaped twice
  in.push_back(R"({"k)" + hidden + R"(":1,"n":"\t"})");                 // 15: in a key
  in.push_back(R"({"msg":"cut )" + hidden);                             // 16: not JSON
  // 17: not JSON, and its quotes pair up only as a lenient reader takes them: a bare x"y, then
  // a string; paired from the first quote on, the escaped value is outside any string.
  in.push_back(R"({x"y ")" + hidden + R"("})");
  in.push_back(R"({"msg":"clean\tagain"})");                            // 18
  // 19: a key written with escapes, its value not: only the pair scan of the decoded key and the
  // value finds it, and the batch must send the line to the full redaction for it.
  in.push_back(R"({"pass\u0077ord":"Qm7vR2xK9pLw4Zt"})");
  in.push_back(R"({"pass\u0077ord": 48213907655, "n": 1})");  // 20: a number after it
  std::string input;
  for (const auto& l : in) input += l + "\n";
  RunResult r = f.filter_json_file(input);
  REQUIRE(r.status == 0);
  auto out = lines(r.out);
  REQUIRE(out.size() == in.size());
  for (int i = 0; i < 12; ++i) CHECK(out[i] == in[i]);
  CHECK(out[12] == R"({"a":"x\ny","b":"see [REDACTED:known-secret]"})");
  CHECK(out[13] == R"({"inner":"{\"t\":\"[REDACTED:known-secret]\"}"})");
  CHECK(out[14] == R"({"k[REDACTED:known-secret]":1,"n":"\t"})");
  CHECK(out[15] == R"({"msg":"cut [REDACTED:known-secret])");
  CHECK(out[16] == R"({x"y "[REDACTED:known-secret]"})");
  CHECK(out[17] == in[17]);
  CHECK(out[18] == R"({"pass\u0077ord":"[REDACTED:generic-password]"})");
  CHECK(out[19] == R"({"pass\u0077ord": "[REDACTED:generic-password]", "n": 1})");
  // Each at the escaped value's place in its own line: line, path, offset, length.
  std::vector<std::string> got;
  for (const auto& a : f.read_alerts())
    got.push_back(a["event"].get<std::string>() + " " + std::to_string(a["line"].get<int>()) +
                  (a.contains("path") ? " " + a["path"].get<std::string>() + " " +
                                            std::to_string(a["offset"].get<int>()) + "+" +
                                            std::to_string(a["length"].get<int>())
                                      : ""));
  CHECK(got == std::vector<std::string>{"finding 13 b 21+25", "finding 14 inner>t 19+26",
                                        "finding 15 ? 3+25", "invalid-json 16",
                                        "finding 16 msg 12+25", "invalid-json 17",
                                        "finding 17 ? 6+25", "finding 19 password 18+15",
                                        "finding 20 password 18+11"});
}
