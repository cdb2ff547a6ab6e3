// Framing: cuts a byte stream (a file descriptor) into lines without copying them.
//
// Promises: every byte read is handed out exactly once, in order. A line that fits in
// `max_line` bytes comes out whole, without its "\n" (a "\r" before it stays in the data; callers
// that care strip it). A longer line comes out as consecutive chunks of `max_line` bytes with
// `line_end == false`, then a final chunk with `line_end == true`, so memory stays bounded and
// nothing is dropped. `before_block` runs before each read(2) that may block: callers flush their
// output there, so a line is never held back while the reader waits. A read that can return at once
// (a regular file; a pipe or socket with data queued) does not count as blocking. The
// kReadablePadding bytes after a chunk's data are readable (what they hold is unspecified), so a
// parser that reads past the end (simdjson) can parse a line where it is.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string_view>
#include <memory>

namespace scrub {

class LineReader {
 public:
  enum class Status { kData, kEof, kError };
  struct Chunk {
    std::string_view data;   // valid until the next call to next()
    bool line_end = false;   // the chunk ends a line ("\n" consumed, or EOF after a partial line)
    bool newline = false;    // a "\n" ended it (false for a last line without one)
  };

  static constexpr size_t kReadablePadding = 64;

  LineReader(int fd, size_t max_line, std::function<void()> before_block = {});
  Status next(Chunk& chunk);
  // As next(), but when the buffer holds complete lines whose total length (their "\n"s
  // between them included) fits in max_line, hands them all out as one chunk: the lines joined
  // by their "\n"s, the last one's consumed (line_end and newline set). The same bytes, in the
  // same order, as that many calls to next(); a caller that cuts them at "\n" gets its lines.
  Status next_lines(Chunk& chunk);
  int error() const { return errno_; }
  // Asked after `before_block` ran: when it returns true, next() returns kEof instead of making
  // the read that may block (the caller has stopped; its input may not send more for a long
  // time).
  void set_stop(std::function<bool()> stop) { stop_ = std::move(stop); }
  size_t max_line() const { return max_line_; }
  // A read(2) of the descriptor now would not wait (data, end of input or an error is there).
  // Says nothing of lines already buffered.
  bool readable_now() const;
  // Busy polling: before a read that would wait (after `before_block`), asks readable_now() again
  // for up to `spin`, and reads as soon as it answers yes; only then the read that sleeps. For a
  // caller that expects its next bytes within microseconds (the wrap between a request and its
  // answer, or between answers and the next request) and has a CPU to spare: waking a thread
  // that slept costs more than that here. Zero (the default) never spins.
  void set_spin(std::chrono::microseconds spin) { spin_ = spin; }
  // Reads whose bytes (or end of input) came while polling, so the thread did not sleep.
  size_t polled_reads() const { return polled_reads_; }

 private:
  int fd_;
  size_t max_line_;
  std::function<void()> before_block_;
  std::function<bool()> stop_;
  std::chrono::microseconds spin_{0};
  size_t polled_reads_ = 0;
  // Not a std::vector: resizing one zero-fills it, and touching a megabyte of fresh pages was a
  // visible part of start-up. Pages are touched only as data arrives.
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t start_ = 0, end_ = 0, scanned_ = 0;
  bool regular_file_ = false;  // reads never wait: no poll(2) before each
  bool eof_ = false;
  bool in_long_line_ = false;
  int errno_ = 0;
};

}  // namespace scrub
