#include <catch2/catch.hpp>
#include <unistd.h>

#include <random>
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
