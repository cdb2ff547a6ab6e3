// Adversarial inputs, each with a defined outcome that the test asserts: masked, reported,
// or refused with a clear error. None may crash, hang or grow memory without bound.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "cli/stream.h"
#include "filter/json_string.h"
#include "filter/mcp_filter.h"
#include "property_cases.h"
#include "transports/fd_io.h"
#include "transports/line_reader.h"

using namespace scrub;
using namespace scrub::test;
using nlohmann::json;

namespace {

const std::string kKnown = "Zq8vR2xkPm4TnW7yL3bH";  // fake, registered as a known value
const std::string kGhp = "ghp_" + fake(36, 3);       // fake, found by a rule

const char* kRules = R"(
[[rules]]
id = "github-pat"
regex = '''\b(ghp_[0-9A-Za-z]{36})\b'''
keywords = ["ghp_"]
)";

std::shared_ptr<const CompiledSet> small_set() {
  static auto set = make_set(kRules, {{"env:KNOWN", kKnown}});
  return set;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Chunks a LineReader hands out for `parts`, each written to a pipe before one read.
std::vector<std::pair<std::string, bool>> frame(const std::vector<std::string>& parts, size_t max_line) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  size_t step = 0;
  bool closed = false;
  LineReader reader(fds[0], max_line, [&] {
    if (step < parts.size()) {
      REQUIRE(write_all(fds[1], parts[step]));
    } else if (!closed) {
      ::close(fds[1]);
      closed = true;
    }
    ++step;
  });
  std::vector<std::pair<std::string, bool>> out;
  LineReader::Chunk c;
  while (reader.next(c) == LineReader::Status::kData) out.push_back({std::string(c.data), c.line_end});
  if (!closed) ::close(fds[1]);
  ::close(fds[0]);
  return out;
}

}  // namespace

// Regression: an overlong line is scanned in pieces, and the tail kept for the next piece started
// at the secret itself, so the context its rule needs (`password = `) went out with the previous
// piece and the secret, unmatched without it, came through.
TEST_CASE("adversarial: an overlong line cut between a secret's context and the secret", "[adversarial][framer]") {
  auto set = make_set(R"(
[[rules]]
id = "pw"
regex = '''password\s*=\s*([A-Za-z0-9]{12,40})'''
)");
  EngineHolder holder(set);
  FollowingRedactor following(holder);
  const std::string secret = "Xk29vLq7RtPw4abcQ";
  for (size_t pad = 0; pad < 128; ++pad) {
    std::string line = std::string(pad, '.') + "password = " + secret + std::string(150, '-');
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(write_all(fds[1], line + "\n"));
    ::close(fds[1]);
    std::string out;
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { out.append(s); };
    StreamStats stats;
    REQUIRE(process_stream(fds[0], "t", StreamMode::kText, 64, following, cb, stats, nullptr) ==
            StreamResult::kOk);
    ::close(fds[0]);
    INFO("pad " << pad);
    CHECK(stats.oversized == 1);
    CHECK(out == std::string(pad, '.') + "password = [REDACTED:pw]" + std::string(150, '-') + "\n");
  }
}

