#include <catch2/catch.hpp>
#include <unistd.h>

#include <random>
#include <string_view>
#include <tuple>
#include <vector>
#include <thread>

#include "transports/line_reader.h"

using scrub::LineReader;

namespace {
// Writes `data` into a pipe in random-sized writes from another thread; returns the read end.
int feed(const std::string& data, unsigned seed, std::thread& writer) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  writer = std::thread([data, seed, w = fds[1]] {
    std::mt19937 rng(seed);
    size_t pos = 0;
    while (pos < data.size()) {
      size_t n = std::min<size_t>(data.size() - pos, 1 + rng() % 3000);
      if (::write(w, data.data() + pos, n) < 0) break;
      pos += n;
    }
    ::close(w);
  });
  return fds[0];
}
}  // namespace

TEST_CASE("LineReader hands out every byte once, in order, with correct line ends", "[framer]") {
  std::mt19937 rng(1);
  for (size_t max_line : {64u, 100u, 4096u}) {
    for (unsigned round = 0; round < 20; ++round) {
      std::string data;
      std::vector<std::string> want_lines;
      size_t nlines = 1 + rng() % 50;
      for (size_t i = 0; i < nlines; ++i) {
        std::string line(rng() % (3 * max_line), 'a' + static_cast<char>(i % 26));
        want_lines.push_back(line);
        data += line;
        if (i + 1 < nlines || rng() % 2) data += '\n';
      }
      std::thread writer;
      int fd = feed(data, round, writer);
      LineReader reader(fd, max_line);
      LineReader::Chunk c;
      std::string rebuilt, current;
      std::vector<std::string> got_lines;
      while (reader.next(c) == LineReader::Status::kData) {
        REQUIRE(c.data.size() <= max_line);
        if (!c.line_end) REQUIRE(c.data.size() == max_line);
        current.append(c.data);
        rebuilt.append(c.data);
        if (c.newline) rebuilt += '\n';
        if (c.line_end) {
          got_lines.push_back(current);
          current.clear();
        }
      }
      writer.join();
      ::close(fd);
      CHECK(rebuilt == data);
      // A final empty line without newline produces no chunk.
      if (!want_lines.empty() && want_lines.back().empty() && data.back() != '\n') want_lines.pop_back();
      CHECK(got_lines == want_lines);
    }
  }
}

// next_lines() hands out runs of complete lines: cut at "\n", they are exactly next()'s chunks
// (the same pieces of an overlong line, the same line ends), and no run is longer than max_line.
TEST_CASE("LineReader::next_lines gives next()'s lines in runs within max_line", "[framer]") {
  std::mt19937 rng(7);
  for (size_t max_line : {64u, 100u, 4096u, 1u << 20}) {
    for (unsigned round = 0; round < 20; ++round) {
      std::string data;
      const size_t nlines = 1 + rng() % 400;
      for (size_t i = 0; i < nlines; ++i) {
        const size_t len = rng() % 8 == 0 ? rng() % (3 * max_line + 1) : rng() % 40;
        data += std::string(std::min<size_t>(len, 20000), 'a' + static_cast<char>(i % 26));
        if (rng() % 5 == 0) data += '\r';
        if (i + 1 < nlines || rng() % 2) data += '\n';
      }
      using Piece = std::tuple<std::string, bool, bool>;  // data, line_end, newline
      auto pieces = [&](bool runs) {
        std::thread writer;
        const int fd = feed(data, round, writer);
        LineReader reader(fd, max_line);
        LineReader::Chunk c;
        std::vector<Piece> out;
        size_t multi = 0;
        while ((runs ? reader.next_lines(c) : reader.next(c)) == LineReader::Status::kData) {
          REQUIRE(c.data.size() <= max_line);
          std::string_view d = c.data;
          if (!c.line_end || !c.newline || d.find('\n') == std::string_view::npos) {
            out.emplace_back(std::string(d), c.line_end, c.newline);
            continue;
          }
          REQUIRE(runs);  // next() never hands out a "\n"
          ++multi;
          for (size_t nl; (nl = d.find('\n')) != std::string_view::npos; d.remove_prefix(nl + 1))
            out.emplace_back(std::string(d.substr(0, nl)), true, true);
          out.emplace_back(std::string(d), true, true);
        }
        writer.join();
        ::close(fd);
        return std::make_pair(out, multi);
      };
      auto [one_by_one, none] = pieces(false);
      auto [in_runs, multi] = pieces(true);
      CHECK(none == 0);
      CHECK(in_runs == one_by_one);
      if (max_line >= 4096 && nlines > 100) CHECK(multi > 0);  // runs do happen
    }
  }
}

// Busy polling (the wrap's pumps): a line that comes within the window is read without the
// thread sleeping (counted), the same bytes as without polling; one that comes after the window
// is read by the read that sleeps (not counted), so an idle reader stops polling; without a
// window nothing is counted. The end of input ends a poll too.
TEST_CASE("LineReader::set_spin polls for the next bytes within the window and then sleeps", "[framer]") {
  using std::chrono::milliseconds;
  struct Case {
    std::chrono::microseconds spin;
    milliseconds delay;
    size_t polled;
  };
  // A window of a minute: the line comes within it however the machine schedules the writer.
  // A window of a millisecond and a line 200 ms later: the poll has long given up.
  for (const Case& c : {Case{std::chrono::minutes(1), milliseconds(5), 2},
                        Case{std::chrono::microseconds(1000), milliseconds(200), 0},
                        Case{std::chrono::microseconds(0), milliseconds(5), 0}}) {
    INFO("spin " << c.spin.count() << " us, line after " << c.delay.count() << " ms");
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::thread writer([w = fds[1], delay = c.delay] {
      std::this_thread::sleep_for(delay);
      const char line[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n";
      CHECK(::write(w, line, sizeof line - 1) == static_cast<ssize_t>(sizeof line - 1));
      std::this_thread::sleep_for(delay);
      ::close(w);
    });
    LineReader reader(fds[0], 1024);
    reader.set_spin(c.spin);
    LineReader::Chunk chunk;
    REQUIRE(reader.next(chunk) == LineReader::Status::kData);
    CHECK(chunk.data == R"({"jsonrpc":"2.0","id":1,"result":{}})");
    CHECK(chunk.newline);
    CHECK(reader.next(chunk) == LineReader::Status::kEof);  // polled for too when spinning
    CHECK(reader.polled_reads() == c.polled);
    writer.join();
    ::close(fds[0]);
  }
}
