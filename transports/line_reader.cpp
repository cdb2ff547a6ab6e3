#include "transports/line_reader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "transports/fd_io.h"

namespace scrub {

namespace {
constexpr size_t kReadSize = 256 * 1024;
}

bool LineReader::readable_now() const {
  return regular_file_ || poll_readable(fd_);  // poll(2) answers yes for every regular file, at once
}

LineReader::LineReader(int fd, size_t max_line, std::function<void()> before_block)
    : fd_(fd), max_line_(max_line ? max_line : 1), before_block_(std::move(before_block)) {
  struct stat st;
  regular_file_ = before_block_ && ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  cap_ = std::min(max_line_, size_t{1} << 20) + kReadSize;
  buf_.reset(new char[cap_ + kReadablePadding]);  // data stays within cap_
}

LineReader::Status LineReader::next_lines(Chunk& chunk) {
  if (!in_long_line_ && end_ > start_) {
    const void* nl = ::memrchr(buf_.get() + start_, '\n', end_ - start_);
    if (nl) {
      const size_t pos = static_cast<size_t>(static_cast<const char*>(nl) - buf_.get());
      if (pos - start_ <= max_line_) {  // then so is every line in it
        chunk.data = std::string_view(buf_.get() + start_, pos - start_);
        chunk.line_end = true;
        chunk.newline = true;
        start_ = scanned_ = pos + 1;
        return Status::kData;
      }
    }
  }
  return next(chunk);
}

LineReader::Status LineReader::next(Chunk& chunk) {
  for (;;) {
    // A complete line in the buffer?
    if (scanned_ < end_) {
      const void* nl = std::memchr(buf_.get() + scanned_, '\n', end_ - scanned_);
      if (nl) {
        size_t pos = static_cast<const char*>(nl) - buf_.get();
        if (pos - start_ <= max_line_) {
          chunk.data = std::string_view(buf_.get() + start_, pos - start_);
          chunk.line_end = true;
          chunk.newline = true;
          start_ = scanned_ = pos + 1;
          in_long_line_ = false;
          return Status::kData;
        }
        // The line is longer than max_line: hand out a piece; remember where its newline is.
        chunk.data = std::string_view(buf_.get() + start_, max_line_);
        chunk.line_end = false;
        chunk.newline = false;
        start_ += max_line_;
        scanned_ = pos;
        in_long_line_ = true;
        return Status::kData;
      }
      scanned_ = end_;
    }
    // Too long to hold: hand out a piece. Only once more than max_line bytes wait without a
    // newline: a line of exactly max_line bytes whose "\n" has not arrived yet still fits.
    if (end_ - start_ > max_line_) {
      chunk.data = std::string_view(buf_.get() + start_, max_line_);
      chunk.line_end = false;
      chunk.newline = false;
      start_ += max_line_;
      if (scanned_ < start_) scanned_ = start_;
      in_long_line_ = true;
      return Status::kData;
    }
    if (eof_) {
      // A long line that ended exactly at a piece boundary still gets its (empty) last chunk,
      // so the caller learns the line is over and flushes what it held back.
      if (end_ > start_ || in_long_line_) {
        in_long_line_ = false;
        chunk.data = std::string_view(buf_.get() + start_, end_ - start_);
        chunk.line_end = true;
        chunk.newline = false;
        start_ = scanned_ = end_;
        return Status::kData;
      }
      return Status::kEof;
    }
    // Make room: move the pending bytes to the front, grow if a long line needs it.
    if (start_ > 0) {
      std::memmove(buf_.get(), buf_.get() + start_, end_ - start_);
      end_ -= start_;
      scanned_ -= start_;
      start_ = 0;
    }
    if (cap_ - end_ < kReadSize) {
      size_t cap = std::max(cap_ * 2, end_ + kReadSize);
      std::unique_ptr<char[]> bigger(new char[cap + kReadablePadding]);
      std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    // Only a read that would wait: a file, or a pipe with data queued, reads on without it (a
    // caller's flush there would cut its batches short for nothing).
    if ((before_block_ || spin_.count() > 0) && !readable_now()) {
      if (before_block_) {
        before_block_();
        if (stop_ && stop_()) return Status::kEof;
      }
      if (spin_.count() > 0 && poll_readable_for(fd_, spin_)) ++polled_reads_;
    }
    // At most kReadSize at a time, though the buffer may hold more: what a read brings is handed
    // out and copied on while it is still in this CPU's cache. Reads that filled a 1.25 MiB
    // buffer cost `filter` 1-2 ms more on 64 MiB.
    ssize_t n;
    do {
      n = ::read(fd_, buf_.get() + end_, std::min(cap_ - end_, kReadSize));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      errno_ = errno;
      return Status::kError;
    }
    if (n == 0) eof_ = true;
    end_ += static_cast<size_t>(n);
  }
}

}  // namespace scrub
