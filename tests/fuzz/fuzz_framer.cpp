// libFuzzer target: the stdio framer (transports/line_reader.h) under arbitrary chunking of
// arbitrary bytes, and the text redaction loop on top of it (cli/stream.h, what `filter` runs).
//
// Input: byte 0 picks max_line, byte 1 the number n of chunk sizes, the next n bytes the chunk
// sizes (cycled), the rest is the stream. The reader's before_block hook writes the next chunk
// into a pipe just before each read(2), so every read returns exactly one chunk: deterministic,
// single-threaded.
//
// Invariants:
//  - the chunks are exactly what the data alone decides (a line of up to max_line bytes comes
//    out whole; a longer one in pieces of max_line, then the rest), however the bytes arrive;
//    every byte once, in order;
//  - the text loop writes the input back byte-identical when it finds nothing, and never lets a
//    known value through, whole lines or overlong lines in pieces.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "cli/stream.h"
#include "fuzz_common.h"
#include "transports/line_reader.h"

using namespace scrub;
using namespace scrub::fuzz;

namespace {

struct Feed {
  std::string_view data;
  std::vector<size_t> sizes;
  size_t pos = 0, next = 0;
  int wfd = -1;
  void step() {
    if (wfd < 0) return;
    if (pos >= data.size()) {
      ::close(wfd);
      wfd = -1;
      return;
    }
    size_t n = std::min(sizes.empty() ? data.size() : sizes[next++ % sizes.size()], data.size() - pos);
    if (::write(wfd, data.data() + pos, n) != static_cast<ssize_t>(n)) fail("pipe write");
    pos += n;
  }
};

struct Chunk {
  std::string data;
  bool line_end, newline;
  bool operator==(const Chunk& o) const {
    return data == o.data && line_end == o.line_end && newline == o.newline;
  }
};

// What the reader must hand out, from the bytes alone.
std::vector<Chunk> model(std::string_view data, size_t max_line) {
  std::vector<Chunk> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    bool newline = nl != std::string_view::npos;
    size_t end = newline ? nl : data.size();
    std::string_view line = data.substr(pos, end - pos);
    while (line.size() > max_line) {
      out.push_back({std::string(line.substr(0, max_line)), false, false});
      line.remove_prefix(max_line);
    }
    out.push_back({std::string(line), true, newline});
    pos = newline ? nl + 1 : data.size();
  }
  return out;
}

int make_pipe(int fds[2]) {
  if (::pipe(fds) != 0) fail("pipe");
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_line = 1 + data[0] % 200;
  size_t nsizes = data[1] % 16;
  if (size < 2 + nsizes) return 0;
  std::vector<size_t> sizes;
  for (size_t i = 0; i < nsizes; ++i) sizes.push_back(1 + data[2 + i]);
  std::string_view stream(reinterpret_cast<const char*>(data) + 2 + nsizes, size - 2 - nsizes);

  // 1. The framer alone, against the model.
  {
    int fds[2];
    make_pipe(fds);
    Feed feed{stream, sizes, 0, 0, fds[1]};
    LineReader reader(fds[0], max_line, [&] { feed.step(); });
    std::vector<Chunk> got;
    LineReader::Chunk c;
    LineReader::Status st;
    while ((st = reader.next(c)) == LineReader::Status::kData)
      got.push_back({std::string(c.data), c.line_end, c.newline});
    if (feed.wfd >= 0) ::close(feed.wfd);
    ::close(fds[0]);
    FUZZ_CHECK(st == LineReader::Status::kEof, "framer read error");
    std::vector<Chunk> want = model(stream, max_line);
    if (got.size() != want.size()) fail("framer: chunk count differs from the model", got.size());
    for (size_t i = 0; i < got.size(); ++i)
      if (!(got[i] == want[i])) fail("framer: chunk differs from the model", i);
  }

  // 2. The text loop on top, as `filter` runs it (max_line at least 64, as the CLI enforces).
  {
    static EngineHolder holder(fuzz_set());
    static FollowingRedactor following(holder);
    const size_t line_limit = 64 + data[0];
    int fds[2];
    make_pipe(fds);
    Feed feed{stream, sizes, 0, 0, fds[1]};
    std::string out;
    uint64_t findings = 0;
    StreamCallbacks cb;
    cb.output = [&](std::string_view s) { out.append(s); };
    cb.flush = [&] { feed.step(); };
    cb.finding = [&](const Finding&, const AlertContext&) { ++findings; };
    StreamStats stats;
    StreamResult r = process_stream(fds[0], "fuzz", StreamMode::kText, line_limit, following, cb,
                                    stats, nullptr);
    if (feed.wfd >= 0) ::close(feed.wfd);
    ::close(fds[0]);
    FUZZ_CHECK(r == StreamResult::kOk, "text loop did not finish cleanly");
    if (findings == 0) FUZZ_CHECK(out == stream, "clean stream not byte-identical");
    // Known values no longer than the overlap kept between pieces of an overlong line
    // (line_limit / 2) can never pass, wherever the line is cut.
    for (const auto& v : forbidden_values())
      if (v.size() <= line_limit / 2 && v.find('\n') == std::string::npos &&
          out.find(v) != std::string::npos)
        fail("text loop let a known value through", out.find(v));
  }
  return 0;
}
