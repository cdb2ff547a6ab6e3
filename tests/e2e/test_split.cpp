// End-to-end split property: a secret written by the wrapped server in two write(2) calls with a
// pause between them (tests/tools/split_server.cpp), on stdout (as a JSON-RPC result) and on
// stderr, is masked by the real binary. One mcp-scrub process serves many splits.
//  - every byte position, for the known values;
//  - a few positions inside the secret, for every example of every built-in rule;
//  - a few MCP channels through the binary, raw and \u-escaped;
//  - a line of exactly --max-message-bytes whose newline comes in the second write is forwarded;
//    one byte more is refused with an error that keeps the id.
// Failures name the rule id and the case; secrets are never printed.
#include <catch2/catch.hpp>
#include <atomic>
#include <map>
#include <thread>
#include <nlohmann/json.hpp>

#include "filter/literal_variants.h"
#include "patterns/rule_loader.h"
#include "run.h"
#include "tcp_harness.h"
#include "tests/unit/json_probe.h"
#include "tests/sanitizer_stride.h"

using namespace scrub::test;
using nlohmann::json;

namespace {

// Fake known values, passed to the wrap by environment variable.
const std::vector<std::string> kKnown = {
    "Zq8vR2xkPm4TnW7yL3bH",
    "p@ss/w+rd\"q\\t<&>9Kx",
    "mysql://svc:Xk29vLq7RtPw4@db.prod.internal/app",
    "cl\xc3\xa9-secr\xc3\xa8te-42\xc3\xbcZ",
};
const std::string kBefore = "alpha beta gamma: ";
const std::string kAfter = " delta epsilon";

struct Case {
  std::string id;  // rule id or known:N (printable)
  std::string text;
  std::string secret;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (size_t i = 0; i < kKnown.size(); ++i)
    out.push_back({"known:" + std::to_string(i), "the value is " + kKnown[i] + " now", kKnown[i]});
  // Every example (every third against a sanitizer build: tests/sanitizer_stride.h).
  const size_t stride = scrub::test::e2e_stride();
  size_t n = 0;
  for (const auto& r : scrub::builtin_rules().rules)
    for (const auto& ex : r.examples)
      if (n++ % stride == 0) out.push_back({r.id, ex.text, ex.secret});
  return out;
}

std::string json_str(const std::string& s) { return json(s).dump(); }

struct SplitWrap {
  TempDir dir;
  std::string key = dir.file("fp.key", "0123456789abcdef0123456789abcdef\n");

  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {bin(), "--no-env-secrets", "--fingerprint-key", key};
    for (size_t i = 0; i < kKnown.size(); ++i) {
      a.push_back("--secret-env");
      a.push_back("SPLIT_K" + std::to_string(i));
    }
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.push_back(tool("split_server"));
    return a;
  }
  // Every split test runs the same rules, known values and key: they share one compiled-database
  // cache in the build directory (the normal build's run fills it, the sanitizer builds' runs of
  // these tests load it) instead of each compiling the pack at start-up (8 s under ASan).
  std::vector<std::string> env() const {
    std::vector<std::string> e = {"HOME=" + dir.path, "XDG_CACHE_HOME=" + tool("split-db-cache")};
    for (size_t i = 0; i < kKnown.size(); ++i) e.push_back("SPLIT_K" + std::to_string(i) + "=" + kKnown[i]);
    return e;
  }
};

std::string split(const char* stream, size_t pos, const std::string& line) {
  return std::string("SPLIT ") + stream + " " + std::to_string(pos) + " " + scrub::base64_encode(line) + "\n";
}

// The stdout messages of the split property: a tools/call result per split, its text holding the
// secret; a known value split at every byte of the message, a rule's example in the middle of its
// (escaped) secret. Ids count up from 1.
struct OutSplit {
  size_t ci;
  size_t pos;
  int id;
  std::string line;
};
std::vector<OutSplit> stdout_splits(const std::vector<Case>& all) {
  std::vector<OutSplit> out;
  int next_id = 1;
  for (size_t ci = 0; ci < all.size(); ++ci) {
    const Case& c = all[ci];
    const std::string text = kBefore + c.text + kAfter;
    auto message = [&](int id) {
      return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
             R"(,"result":{"content":[{"type":"text","text":)" + json_str(text) + "}]}}";
    };
    std::string esc = json_str(c.secret);
    esc = esc.substr(1, esc.size() - 2);
    const std::string first = message(next_id);
    const size_t at = first.find(esc);
    REQUIRE(at != std::string::npos);
    if (c.id.rfind("known:", 0) == 0) {
      for (size_t pos = 0; pos <= first.size() + 1; ++pos, ++next_id)
        out.push_back({ci, pos, next_id, message(next_id)});
    } else {
      out.push_back({ci, at + esc.size() / 2, next_id, first});
      ++next_id;
    }
  }
  return out;
}

// The stdout half of the property's checks: one valid message per split, with its id, the secret
// masked. Returns how many leaked.
size_t check_stdout(const std::vector<Case>& all, const std::vector<OutSplit>& sent,
                    const std::string& out, const char* where) {
  std::map<int, std::string> got;
  for (const auto& l : lines(out)) {
    json j = json::parse(l, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    REQUIRE(j.contains("id"));
    got[j["id"].get<int>()] = l;
  }
  CHECK(got.size() == sent.size());
  size_t leaked = 0;
  for (const OutSplit& s : sent) {
    const Case& c = all[s.ci];
    auto it = got.find(s.id);
    INFO(where << ": case " << s.ci << " rule " << c.id << " split at " << s.pos);
    REQUIRE(it != got.end());
    CHECK(it->second.find("[REDACTED:") != std::string::npos);
    if (leaks(it->second, c.secret)) {
      ++leaked;
      FAIL_CHECK("secret came through");
    }
  }
  return leaked;
}

}  // namespace

TEST_CASE("split: every secret split across two writes of the server, stdout and stderr, is masked",
          "[e2e][split]") {
  const std::vector<Case> all = cases();
  std::string input;
  const std::vector<OutSplit> out_sent = stdout_splits(all);
  for (const OutSplit& s : out_sent) input += split("out", s.pos, s.line);
  struct Sent {
    size_t ci;
    size_t pos;
  };
  std::vector<Sent> err_sent;  // in order
  for (size_t ci = 0; ci < all.size(); ++ci) {
    const Case& c = all[ci];
    const bool every = c.id.rfind("known:", 0) == 0;
    const std::string text = kBefore + c.text + kAfter;
    // stderr: the text as a log line (a multi-line example is not one line of a log).
    if (text.find('\n') != std::string::npos) continue;
    const size_t sat = text.find(c.secret);
    std::vector<size_t> positions;
    if (every) {
      for (size_t pos = 0; pos <= text.size() + 1; ++pos) positions.push_back(pos);
    } else {
      positions = {sat + 1, sat + c.secret.size() / 2};
    }
    for (size_t pos : positions) {
      err_sent.push_back({ci, pos});
      input += split("err", pos, text);
    }
  }

  SplitWrap w;
  RunOptions o;
  o.input = input;
  o.extra_env = w.env();
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run(w.argv(), o);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(r.status == 0);
  INFO("wrap ran " << secs << " s for " << out_sent.size() << " stdout and " << err_sent.size()
                   << " stderr splits");

  size_t leaked = check_stdout(all, out_sent, r.out, "stdout");
  // stderr: the lines in order (mcp-scrub's own summary last), each whole and masked. (A line
  // after an example that opens a private key without closing it is masked whole, as the key's
  // body, by the multi-line key tracker: still one line, still masked.)
  std::vector<std::string> err_lines;
  for (const auto& l : lines(r.err))
    if (l.rfind("mcp-scrub: ", 0) != 0) err_lines.push_back(l);
  CHECK(err_lines.size() == err_sent.size());
  for (size_t i = 0; i < std::min(err_lines.size(), err_sent.size()); ++i) {
    const Case& c = all[err_sent[i].ci];
    INFO("stderr: case " << err_sent[i].ci << " rule " << c.id << " split at " << err_sent[i].pos);
    CHECK(err_lines[i].find("[REDACTED:") != std::string::npos);
    if (err_lines[i].find(c.secret) != std::string::npos) {
      ++leaked;
      FAIL_CHECK("secret came through on stderr");
    }
  }
  for (const auto& c : all) CHECK(r.err.find(c.secret) == std::string::npos);
  CHECK(leaked == 0);
}

// The same messages from a TCP upstream behind `mcp-scrub tcp --connect`: each written in two
// send(2) calls with a pause between them (TCP_NODELAY), so the proxy reads every message in two
// reads of the connection.
TEST_CASE("split: every secret split across two reads of a TCP connection is masked", "[e2e][split][tcp]") {
  const std::vector<Case> all = cases();
  const std::vector<OutSplit> sent = stdout_splits(all);

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(lfd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(lfd, 4) == 0);
  socklen_t alen = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen);
  const int upstream_port = ntohs(a.sin_port);
  std::atomic<bool> wrote_all{false};
  std::thread upstream([&] {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) return;
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool ok = true;
    for (const OutSplit& s : sent) {
      const std::string wire = s.line + "\n";
      const size_t cut = std::min(s.pos, wire.size());
      ok = ok && (cut == 0 || scrub::write_all(fd, std::string_view(wire).substr(0, cut)));
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      ok = ok && (cut == wire.size() || scrub::write_all(fd, std::string_view(wire).substr(cut)));
    }
    wrote_all = ok;
    ::shutdown(fd, SHUT_WR);  // end of the stream: the proxy passes it on to the client
    char b[4096];
    pollfd q{fd, POLLIN, 0};
    while (::poll(&q, 1, 20000) > 0 && ::read(fd, b, sizeof b) > 0) {
    }
    ::close(fd);
  });

  SplitWrap w;
  std::vector<std::string> argv = {bin(), "tcp", "--listen", "127.0.0.1:0", "--connect",
                                   "127.0.0.1:" + std::to_string(upstream_port), "--no-env-secrets",
                                   "--fingerprint-key", w.key};
  for (size_t i = 0; i < kKnown.size(); ++i) {
    argv.push_back("--secret-env");
    argv.push_back("SPLIT_K" + std::to_string(i));
  }
  Proxy proxy(argv, w.env());
  const int port = proxy.port();
  REQUIRE(port > 0);
  Client client = Client::tcp(port);
  REQUIRE(client.ok());
  std::string out;
  const bool eof = client.read_to_eof(out, std::chrono::seconds(120));
  upstream.join();
  ::close(lfd);
  REQUIRE(wrote_all);
  REQUIRE(eof);
  CHECK(check_stdout(all, sent, out, "tcp") == 0);
  for (const auto& c : all) CHECK(out.find(c.secret) == std::string::npos);
}

TEST_CASE("split: known values in MCP channels through the binary, raw and unicode-escaped", "[e2e][split]") {
  const std::vector<std::string> templates = {
      R"({"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":S}]}})",
      R"({"jsonrpc":"2.0","id":ID,"error":{"code":-32000,"message":S,"data":{"d":S}}})",
      R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":S}})",
      R"({"jsonrpc":"2.0","id":ID,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":S}}],"maxTokens":10}})",
      R"({"jsonrpc":"2.0","id":ID,"result":{"content":[],"structuredContent":{"k":S},"_meta":{"m":S}}})",
  };
  auto uescape = [](const std::string& s) {
    // Every character of the value as \u00XX (the values are ASCII or 2-byte UTF-8 here).
    std::string out = "\"";
    char buf[8];
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned cp = static_cast<unsigned char>(s[i]);
      if ((cp & 0xE0) == 0xC0 && i + 1 < s.size()) cp = ((cp & 0x1F) << 6) | (s[++i] & 0x3F);
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    }
    return out + "\"";
  };
  std::string input;
  std::vector<std::pair<size_t, bool>> sent;  // value index, has id
  int id = 1;
  for (size_t k = 0; k < kKnown.size(); ++k)
    for (const auto& t : templates)
      for (int form = 0; form < 2; ++form)
        for (int place = 0; place < 3; ++place) {
          std::string text = place == 0   ? kKnown[k] + kAfter
                             : place == 1 ? kBefore + kKnown[k] + kAfter
                                          : kBefore + kKnown[k];
          std::string s = form == 0 ? json_str(text) : uescape(text);
          std::string msg = t;
          for (size_t p; (p = msg.find("ID")) != std::string::npos;) msg.replace(p, 2, std::to_string(id));
          for (size_t p; (p = msg.find(":S")) != std::string::npos;) msg.replace(p + 1, 1, s);
          input += split("out", msg.size() / 2, msg);
          sent.push_back({k, t.find("ID") != std::string::npos});
          ++id;
        }
  SplitWrap w;
  RunOptions o;
  o.input = input;
  o.extra_env = w.env();
  RunResult r = run(w.argv(), o);
  REQUIRE(r.status == 0);
  auto out = lines(r.out);
  REQUIRE(out.size() == sent.size());
  for (size_t i = 0; i < out.size(); ++i) {
    INFO("message " << i << " value " << sent[i].first);
    json j = json::parse(out[i], nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    CHECK(j["jsonrpc"] == "2.0");
    if (sent[i].second) CHECK(j["id"] == static_cast<int>(i + 1));
    CHECK_FALSE(leaks(out[i], kKnown[sent[i].first]));
  }
}

TEST_CASE("split: a message of exactly --max-message-bytes whose newline comes later is forwarded",
          "[e2e][split][adversarial]") {
  // Regression: the framer handed out a line of exactly the limit as an overlong piece when its
  // "\n" arrived in a later read, and the wrap refused a message within the limit.
  const size_t limit = 200;
  auto message = [](int id, size_t size) {
    std::string head = R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"result":{"text":")";
    std::string tail = "\"}}";
    return head + std::string(size - head.size() - tail.size(), 'x') + tail;
  };
  const std::string exact = message(1, limit), over = message(2, limit + 1);
  REQUIRE(exact.size() == limit);
  SplitWrap w;
  RunOptions o;
  // Each line written in two writes split right before its newline.
  o.input = split("out", exact.size(), exact) + split("out", over.size(), over);
  o.extra_env = w.env();
  RunResult r = run(w.argv({"--max-message-bytes", std::to_string(limit)}), o);
  REQUIRE(r.status == 0);
  auto out = lines(r.out);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == exact);
  CHECK(out[1] == R"({"jsonrpc":"2.0","id":2,"error":{"code":-32003,"message":"mcp-scrub: the server's message larger than --max-message-bytes (200 bytes) not forwarded"}})");
}
