#include "cli/stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "cli/engine_config.h"

#include "filter/huge_pages.h"
#include "filter/line_masker.h"
#include "filter/pem_blocks.h"
#include "transports/line_reader.h"

namespace scrub {

namespace {

// One complete line, the same on every path. `pem_text` is set when the private-key tracker
// masked this line's key material: the line (`line_len` bytes) is reported as a key block and
// `pem_text` (the line with the key masked) is scanned for the rest. On kMasked, `masked` holds
// the line to write.
RedactStatus redact_line(Redactor& redactor, StreamMode mode, std::string_view line,
                         size_t line_len, std::string* pem_text, std::string& masked,
                         Findings& findings, bool& invalid_json, bool raw_clean = false,
                         bool padded = false) {
  masked.clear();
  invalid_json = false;
  if (mode == StreamMode::kJson) {
    JsonInfo info;
    RedactStatus rs = redactor.redact_json(line, masked, findings, &info, raw_clean, padded);
    invalid_json = !info.valid && !line.empty();
    return rs;
  }
  if (pem_text == nullptr) return redactor.redact_text(line, masked, findings);
  return redact_key_line(redactor, *pem_text, line_len, masked, findings);
}

constexpr const char* kInvalidJsonMessage = "line is not valid JSON; masked as text";

// Complete lines are gathered into batches in input order. A batch is first scanned in one
// Hyperscan call (Scanner::lines_with_events) and only the lines with a match event (in JSON
// mode also those with an escape that hides one: the decoded strings of a batch are a second
// call) are redacted one by one: most lines of a log hold nothing, and
// one call over 128 KiB costs much less than a call per line. The batches are written back in
// order either way.
//
// With `--threads` N > 1, N threads redact batches, each with a Redactor of its own: N - 1 pool
// threads and the reading thread itself. A pool thread takes the oldest batch no thread has
// started. The reading thread takes the newest (the one it just copied, still in its cache)
// once 2N - 1 wait, and instead of blocking on the oldest batch in flight it runs one that
// waits. A pool of N beside a reading thread that only reads and writes put N + 1 busy threads on
// N CPUs: the batches were scanned in slices of time and waited for the reader to be scheduled.
class LineBatches {
 public:
  LineBatches(const EngineHolder& holder, StreamMode mode, size_t threads,
              const StreamCallbacks& cb, StreamStats& stats, const std::string& source)
      : holder_(holder), mode_(mode), max_in_flight_(4 * threads), cb_(cb), stats_(stats) {
    ctx_.source = source;
    if (threads > 1) {
      // What the threads hold beyond one thread's run (4 batches of up to 128 KiB of lines and
      // their masked copies each, a Redactor's buffers) would lie past the heap's first
      // megabytes in huge pages: a fault on each 4 KiB page's first touch, about 370 of them
      // on the reading thread with two threads (7-14 µs each on the benchmarks' VMs).
      reserve_heap_in_huge_pages(threads * HugeBuffer::kHugePage);
      help_depth_ = 2 * (threads - 1) + 1;
      pool_ = std::make_unique<boost::asio::thread_pool>(threads - 1);
    }
  }
  ~LineBatches() {
    if (pool_) pool_->join();  // before the batches the tasks point at go away
  }

  // Queues the complete lines of `run` (LineReader::next_lines or next(): lines joined by their
  // "\n"s; the last one's was consumed when `newline`, else the input ended there), numbered on
  // from `line_no`, which is left at the last. The lines are copied into a batch a stretch at a
  // time, each followed by "\n" (lines_with_events scans a batch as lines) and without the "\r"
  // of a CRLF ending. False once the engine failed on an earlier line.
  bool add_lines(std::string_view run, bool newline, uint64_t& line_no) {
    const char* p = run.data();
    const size_t n = run.size();
    size_t i = 0;
    while (i <= n && !failed_) {
      Batch& b = open_batch();
      const size_t from = i, base = b.text.size(), first = b.lines.size();
      bool cr = false, full = false;
      while (i <= n && !full) {
        const void* q = std::memchr(p + i, '\n', n - i);
        const size_t e = q ? static_cast<size_t>(static_cast<const char*>(q) - p) : n;
        Line l;
        l.off = base + (i - from);
        l.len = e - i;
        l.no = ++line_no;
        l.newline = e < n || newline;
        if (l.len > 0 && p[e - 1] == '\r') {
          l.cr = cr = true;
          --l.len;
        }
        l.orig_len = l.len;
        b.lines.push_back(l);
        i = e + 1;
        full = base + (i - from) >= kBatchBytes || b.lines.size() >= kBatchLines;
      }
      b.text.append(p + from, std::min(i, n) - from);  // each line with its "\n" ...
      if (i > n) b.text.push_back('\n');               // ... the last one's consumed
      if (cr) drop_cr(b, first);
      if (full) dispatch();
    }
    return !failed_;
  }

  // The next line does not follow the last one queued (an overlong line came between them, read
  // in pieces outside the batches): the next batch carries no line before its first.
  void break_lines() {
    carry_.clear();
    carry_pem_ = false;
  }

  // Scans and writes every line queued so far. False if the engine failed on one of them (the
  // lines before it are written; it and the lines after it are not).
  bool drain() {
    dispatch();
    while (!in_flight_.empty() && !failed_) emit_front();
    return !failed_;
  }

 private:
  // 128 KiB: with two threads, 8 batches of 256 KiB in flight were about 6 MB of buffers whose
  // first touches (page faults) cost more than the calls smaller batches add (mixed log,
  // --threads 2: 97.2 -> 92.0 ms; one thread unchanged at 120-122 ms).
  static constexpr size_t kBatchBytes = 128 * 1024;
  static constexpr size_t kBatchLines = 4096;
  // JSON lines with escapes up to this long have their decoded strings scanned in a batch too.
  static constexpr size_t kDecodeBatchBytes = 16 * 1024;

  struct Line {
    size_t off = 0, len = 0, orig_len = 0;
    uint64_t no = 0;
    bool cr = false, newline = false, pem = false;
  };
  struct Hit {
    Finding finding;
    uint64_t line = 0;
  };
  struct Batch {
    std::string text;
    std::vector<Line> lines;
    // Filled by the pool thread.
    std::string out;
    size_t same = 0;  // > 0: the output is text's first `same` bytes (`out` unused)
    std::vector<Hit> hits;
    std::vector<uint64_t> invalid_json;
    // JSON: the decoded strings of the lines with escapes (Redactor::json_escaped_strings), the
    // line each comes from; scratch of the thread that runs the batch.
    std::string decoded;
    std::vector<size_t> decoded_ends;
    std::vector<uint32_t> decoded_line;
    // Text: the line before the first one (the previous batch's last), for rules whose match
    // runs across a line break; empty when there is none or it was too long to carry.
    std::string prev_line;
    bool prev_pem = false;
    uint64_t masked_lines = 0;
    bool engine_error = false;
    int hs_error = 0;  // Hyperscan's error code, with engine_error
    bool done = false;  // guarded by LineBatches::mu_
    bool done_locked(std::mutex& mu) const {
      std::lock_guard<std::mutex> lock(mu);
      return done;
    }
    void reset() {  // empty, capacity kept
      text.clear();
      lines.clear();
      out.clear();
      same = 0;
      hits.clear();
      invalid_json.clear();
      decoded.clear();
      decoded_ends.clear();
      decoded_line.clear();
      prev_line.clear();
      prev_pem = false;
      masked_lines = 0;
      engine_error = false;
      hs_error = 0;
      done = false;
    }
  };

  // The open batch, a written one reused when there is one: its buffers keep their capacity,
  // so no batch pays for fresh pages again (a 128 KiB string is mmap'ed anew each time
  // otherwise).
  Batch& open_batch() {
    if (!open_) {
      if (!spare_.empty()) {
        open_ = std::move(spare_.back());
        spare_.pop_back();
      } else {
        open_ = std::make_unique<Batch>();
      }
      open_->prev_line.swap(carry_);
      open_->prev_pem = carry_pem_;
      carry_.clear();
    }
    return *open_;
  }

  // Lines [first, end) of `b` were copied with the "\r" of a CRLF ending: the batch holds each
  // line without it, so the batch scan sees what the line's own scan sees.
  static void drop_cr(Batch& b, size_t first) {
    size_t w = b.lines[first].off;
    for (size_t k = first; k < b.lines.size(); ++k) {
      Line& l = b.lines[k];
      std::memmove(b.text.data() + w, b.text.data() + l.off, l.len);
      l.off = w;
      w += l.len;
      b.text[w++] = '\n';
    }
    b.text.resize(w);
  }


  void dispatch() {
    if (!open_ || open_->lines.empty()) return;
    Batch* b = open_.get();
    if (mode_ == StreamMode::kText) {
      track_private_keys(*b);
      // The next batch's first line is redacted behind this one's last too (see run()).
      const Line& last = b->lines.back();
      carry_.clear();
      if (last.newline && last.len <= LineMasker::kMaxBefore)
        carry_.assign(b->text.data() + last.off, last.len);
      carry_pem_ = last.pem;
    }
    in_flight_.push_back(std::move(open_));
    if (!pool_) {
      run(*b);
      emit_front();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(b);
    }
    boost::asio::post(*pool_, [this] { run_queued(false); });  // one task per batch
    if (queued() >= help_depth_) run_queued(true);
    // What is done is written at once; with too many in flight, the reader waits (or helps).
    while (!in_flight_.empty() && !failed_ &&
           (in_flight_.size() > max_in_flight_ || front_done()))
      emit_front();
  }

  size_t queued() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }
  bool front_done() { return in_flight_.front()->done_locked(mu_); }
  // Runs the oldest (or the newest) batch no thread has started; false if there is none. Every
  // queued batch has a pool task of its own, so a batch the reading thread takes leaves a task
  // that finds the queue without it, and no batch is left behind.
  bool run_queued(bool newest) {
    Batch* b = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return false;
      if (newest) {
        b = queue_.back();
        queue_.pop_back();
      } else {
        b = queue_.front();
        queue_.pop_front();
      }
    }
    run(*b);
    return true;
  }

  // Text mode: private keys printed over several lines (PemBlockTracker), here on the reading
  // thread as each batch leaves, so in input order. A key's body lines are replaced in the batch
  // by their masked form and marked `pem`. Asked line by line, the tracker's search for a BEGIN
  // marker was 6-7% of `filter --format text` on the mixed log; one search of the batch tells
  // that none of its lines holds one, as it is for nearly every batch.
  void track_private_keys(Batch& b) {
    if (!pem_.inside() && !PemBlockTracker::may_begin(b.text)) return;
    std::string text;
    text.reserve(b.text.size() + b.text.size() / 8);
    for (Line& l : b.lines) {
      const std::string_view line(b.text.data() + l.off, l.len);
      l.pem = pem_.process(line, pem_out_);
      l.off = text.size();
      text.append(l.pem ? std::string_view(pem_out_) : line);
      l.len = text.size() - l.off;
      text.push_back('\n');
    }
    b.text.swap(text);
  }

  void run(Batch& b) {
    // A pool thread's own buffers (masked copies, findings) come from an arena of its own: in
    // huge pages too (once per thread; nothing on the reading thread, whose heap is advised).
    if (pool_) advise_thread_arena_in_huge_pages();
    std::unique_ptr<FollowingRedactor> r = take_redactor();
    Redactor& redactor = r->current();
    std::string masked, pem_text;
    Findings findings;
    // While every line so far comes out as it is in `text` (clean, "\n"-ended, no "\r"), the
    // output is a prefix of `text` and is not copied: `same` is its length.
    size_t same = 0;
    bool copied = false;
    auto emit = [&](const Line& l, std::string_view line_out, bool as_is) {
      if (!copied) {
        if (as_is && !l.cr && l.newline && l.off == same) {
          same = l.off + l.len + 1;
          return;
        }
        b.out.reserve(b.text.size() + b.text.size() / 8);
        b.out.assign(b.text, 0, same);
        copied = true;
      }
      b.out.append(line_out);
      if (l.cr) b.out.push_back('\r');
      if (l.newline) b.out.push_back('\n');
    };
    // Which lines need a redaction of their own.
    std::vector<uint8_t> hit;
    bool prefilter = redactor.scanner().lines_prefilter();
    // JSON: which lines hold an escape, and of those, which need redact_json whatever the raw
    // scan says (`deep`): a decoded string of theirs has a match event, or the decoded strings do
    // not cover what redact_json would scan (Redactor::json_escaped_strings). Also padding after
    // the last line, so simdjson validates each line in place (Redactor::json_valid). Undone
    // below: `text` is what is written.
    std::vector<uint8_t> escaped, deep;
    const size_t text_size = b.text.size();
    if (mode_ == StreamMode::kJson) b.text.append(Redactor::kJsonPadding, ' ');
    if (prefilter && mode_ == StreamMode::kJson) {
      escaped.resize(b.lines.size());
      deep.assign(b.lines.size(), 0);
      size_t long_escaped = 0;  // bytes
      for (size_t i = 0; i < b.lines.size(); ++i) {
        const Line& l = b.lines[i];
        escaped[i] = std::memchr(b.text.data() + l.off, '\\', l.len) != nullptr;
        // A long line with escapes is redacted on its own: the calls a batch saves cost little
        // beside its scans, which a decoded string with a match event (likelier, the longer the
        // line) would make twice.
        if (escaped[i] && l.len >= kDecodeBatchBytes) {
          deep[i] = 1;
          long_escaped += l.len;
        }
      }
      // Mostly such lines (tool results of a megabyte): the batch scan would only be repeated.
      prefilter = long_escaped * 2 <= text_size;
      for (size_t i = 0; prefilter && i < b.lines.size(); ++i) {
        const Line& l = b.lines[i];
        if (!escaped[i] || deep[i]) continue;
        if (!redactor.json_escaped_strings(std::string_view(b.text.data() + l.off, l.len),
                                           b.decoded, b.decoded_ends))
          deep[i] = 1;
        b.decoded_line.resize(b.decoded_ends.size(), static_cast<uint32_t>(i));
      }
    }
    if (prefilter) {
      std::vector<size_t> ends;
      ends.reserve(b.lines.size());
      for (const Line& l : b.lines) ends.push_back(l.off + l.len);
      ScanStatus st =
          redactor.scanner().lines_with_events(std::string_view(b.text.data(), text_size), ends, hit);
      if (st == ScanStatus::kOk && !b.decoded_ends.empty()) {
        // Every decoded string as a unit of its own, in one call too.
        std::vector<uint8_t> decoded_hit;
        st = redactor.scanner().lines_with_events(b.decoded, b.decoded_ends, decoded_hit);
        for (size_t k = 0; k < decoded_hit.size(); ++k)
          if (decoded_hit[k]) deep[b.decoded_line[k]] = 1;
      }
      if (st != ScanStatus::kOk) {
        b.engine_error = true;
        b.hs_error = redactor.scanner().last_error();
        hit.clear();
      }
    }
    // Text: a rule whose match runs across a line break (an env list's `- name: DB_PASSWORD`,
    // then `value: ...` on the next line) ends its event on the second line, which alone scans
    // clean. Such a line is redacted again behind the line before it, and what falls in the line
    // is kept when the line before comes out of that unit as it went in. The batch's first line:
    // behind the previous batch's last (its scan of the batch could not see that one), always.
    auto redact_after_previous = [&](size_t i, std::string_view text) -> RedactStatus {
      const bool first = i == 0;
      if (b.lines[i].pem || (first ? b.prev_pem : b.lines[i - 1].pem)) return RedactStatus::kClean;
      const std::string_view prev =
          first ? std::string_view(b.prev_line)
                : std::string_view(b.text.data() + b.lines[i - 1].off, b.lines[i - 1].len);
      if (prev.empty()) return RedactStatus::kClean;
      masked.clear();
      return redactor.redact_text_after(prev, text, masked, findings);
    };
    auto emit_redacted = [&](const Line& l, std::string_view text, RedactStatus rs) {
      if (rs == RedactStatus::kMasked) ++b.masked_lines;
      for (Finding& f : findings) b.hits.push_back({std::move(f), l.no});
      findings.clear();
      emit(l, rs == RedactStatus::kMasked ? std::string_view(masked) : text,
           rs != RedactStatus::kMasked);
    };
    for (size_t i = 0; i < b.lines.size() && !b.engine_error; ++i) {
      const Line& l = b.lines[i];
      std::string_view text(b.text.data() + l.off, l.len);
      if (prefilter && !l.pem && !hit[i]) {
        if (mode_ == StreamMode::kText) {  // clean: as it came
          if (i == 0 && !b.prev_line.empty()) {
            RedactStatus rs = redact_after_previous(i, text);
            if (rs == RedactStatus::kError) {
              b.engine_error = true;
              b.hs_error = redactor.scanner().last_error();
              break;
            }
            if (rs == RedactStatus::kMasked) {
              emit_redacted(l, text, rs);
              continue;
            }
          }
          emit(l, text, true);
          continue;
        }
        // JSON without a match event and without escapes (nothing decodes to anything else):
        // only its validity is left to learn. Not JSON: reported, and as text it is clean.
        if (!escaped[i]) {
          if (!text.empty() && !redactor.json_valid(text, /*padded=*/true))
            b.invalid_json.push_back(l.no);
          emit(l, text, true);
          continue;
        }
        // With escapes whose decoded strings scan clean too: clean if it is JSON. Not JSON, it
        // is redact_json's to mask leniently (what a lenient client would decode).
        if (!deep[i] && redactor.json_valid(text, /*padded=*/true)) {
          emit(l, text, true);
          continue;
        }
      }
      bool invalid = false;
      if (l.pem) pem_text.assign(text);
      // A JSON line here without a match event holds an escape: only decoded strings can hide
      // anything, so the line itself is not scanned again.
      const bool raw_clean = prefilter && !l.pem && !hit[i];
      // (JSON lines: the batch's padding follows the last one, so every line is parsed in place.)
      RedactStatus rs = redact_line(redactor, mode_, text, l.orig_len, l.pem ? &pem_text : nullptr,
                                    masked, findings, invalid, raw_clean, mode_ == StreamMode::kJson);
      // With the batch scan, only when the line's own scan had no match event at all (the
      // batch's event then came from a match that began on the line before): redoing every line
      // whose events RE2 turned down cost the mixed log 2.6 ms of 97 (bench/pair.py 15). Without
      // it (a rule pack whose anchors rule the batch scan out), every clean line, as the wrap's
      // stderr pump does.
      if (rs == RedactStatus::kClean && mode_ == StreamMode::kText &&
          (i == 0 || !prefilter || redactor.scanner().match_events() == 0))
        rs = redact_after_previous(i, text);
      if (rs == RedactStatus::kError) {
        b.engine_error = true;
        b.hs_error = redactor.scanner().last_error();
        break;
      }
      if (invalid) b.invalid_json.push_back(l.no);
      emit_redacted(l, text, rs);
    }
    if (!copied) b.same = same;
    b.text.resize(text_size);
    give_back(std::move(r));
    {
      std::lock_guard<std::mutex> lock(mu_);
      b.done = true;
    }
    done_cv_.notify_all();
  }

  void emit_front() {
    Batch& b = *in_flight_.front();
    // Until it is done, the reading thread runs the batches no thread has started (only it
    // queues batches, so once the queue is empty, waiting is all that is left).
    while (!b.done_locked(mu_) && run_queued(false)) {
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return b.done; });
    }
    // In input order, as one thread reports them: a line's invalid-JSON incident, then its
    // findings.
    size_t inv = 0;
    auto incidents_up_to = [&](uint64_t line) {
      for (; inv < b.invalid_json.size() && b.invalid_json[inv] <= line; ++inv) {
        ++stats_.invalid_json;
        ctx_.line = b.invalid_json[inv];
        if (cb_.incident) cb_.incident("invalid-json", kInvalidJsonMessage, ctx_);
      }
    };
    for (const Hit& h : b.hits) {
      incidents_up_to(h.line);
      ++stats_.findings;
      ctx_.line = h.line;
      if (cb_.finding) cb_.finding(h.finding, ctx_);
    }
    incidents_up_to(UINT64_MAX);
    stats_.masked_lines += b.masked_lines;
    if (cb_.output) cb_.output(b.same > 0 ? std::string_view(b.text.data(), b.same) : b.out);
    if (b.engine_error) {
      failed_ = true;
      stats_.hs_error = b.hs_error;
    }
    b.reset();
    spare_.push_back(std::move(in_flight_.front()));
    in_flight_.pop_front();
  }

  std::unique_ptr<FollowingRedactor> take_redactor() {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return std::make_unique<FollowingRedactor>(holder_);
    std::unique_ptr<FollowingRedactor> r = std::move(idle_.back());
    idle_.pop_back();
    return r;
  }
  void give_back(std::unique_ptr<FollowingRedactor> r) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(r));
  }

  std::string carry_;  // the last dispatched batch's last line (text), for the next batch
  bool carry_pem_ = false;
  const EngineHolder& holder_;
  const StreamMode mode_;
  const size_t max_in_flight_;
  const StreamCallbacks& cb_;
  StreamStats& stats_;
  AlertContext ctx_;
  std::unique_ptr<Batch> open_;
  std::deque<std::unique_ptr<Batch>> in_flight_;
  std::vector<std::unique_ptr<Batch>> spare_;
  bool failed_ = false;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::vector<std::unique_ptr<FollowingRedactor>> idle_;
  std::deque<Batch*> queue_;  // dispatched, not started by any thread; guarded by mu_
  size_t help_depth_ = 0;      // the reading thread runs the newest batch once this many wait
  PemBlockTracker pem_;  // text mode, on the reading thread (track_private_keys)
  std::string pem_out_;
  std::unique_ptr<boost::asio::thread_pool> pool_;  // joined in ~LineBatches, before the rest
};

}  // namespace

StreamResult process_stream(int fd, const std::string& source, StreamMode mode, size_t max_line,
                            FollowingRedactor& following, const StreamCallbacks& cb,
                            StreamStats& stats, int* read_errno, size_t threads) {
  LineBatches batches(following.holder(), mode, std::max<size_t>(threads, 1), cb, stats, source);
  bool batch_failed = false;
  // Before a read that may block: everything read so far goes out first. If the engine failed on
  // it, no read: the input may not send more for a long time (`tail -f`), and the command
  // must stop now.
  LineReader reader(fd, max_line, [&] {
    if (!batches.drain()) batch_failed = true;
    if (cb.flush) cb.flush();
  });
  reader.set_stop([&] { return batch_failed; });
  // Bytes of an overlong line kept back for the next piece: a secret may straddle the cut.
  const size_t overlap = std::min<size_t>(64 * 1024, std::max<size_t>(max_line / 2, 1));
  std::string long_buf, masked;
  bool in_long = false;
  size_t long_base = 0;  // offset of long_buf[0] within the overlong line
  Findings findings;
  AlertContext ctx;
  ctx.source = source;
  LineReader::Chunk chunk;

  auto report = [&](bool masked_line) {
    if (masked_line) ++stats.masked_lines;
    for (const Finding& f : findings) {
      ++stats.findings;
      if (cb.finding) cb.finding(f, ctx);
    }
    findings.clear();
  };

  for (;;) {
    // Complete lines come in runs (all those the reader holds), an overlong one in pieces.
    LineReader::Status st = in_long ? reader.next(chunk) : reader.next_lines(chunk);
    if (batch_failed) return StreamResult::kEngineError;
    if (st != LineReader::Status::kData && !batches.drain()) return StreamResult::kEngineError;
    if (st == LineReader::Status::kEof) return StreamResult::kOk;
    if (st == LineReader::Status::kError) {
      if (read_errno) *read_errno = reader.error();
      return StreamResult::kReadError;
    }
    stats.bytes += chunk.data.size() + (chunk.newline ? 1 : 0);
    if (cb.before_line) cb.before_line();
    if (!in_long && chunk.line_end) {
      if (!batches.add_lines(chunk.data, chunk.newline, stats.lines))
        return StreamResult::kEngineError;
      continue;
    }
    // An overlong line, arriving in pieces, after every line before it.
    if (!batches.drain()) return StreamResult::kEngineError;
    batches.break_lines();
    Redactor& redactor = following.current();
    if (!in_long) {
      in_long = true;
      ++stats.lines;
      ++stats.oversized;
      ctx.line = stats.lines;
      long_buf.clear();
      long_base = 0;
      if (cb.incident)
        cb.incident("oversized-line",
                    "line longer than --max-line-bytes (" + std::to_string(max_line) +
                        "); scanned as text in pieces",
                    ctx);
    }
    long_buf.append(chunk.data);
    masked.clear();
    size_t consumed = 0;
    RedactStatus rs = redactor.redact_text_prefix(long_buf, chunk.line_end ? 0 : overlap, masked,
                                                  consumed, findings);
    if (rs == RedactStatus::kError) {
      stats.hs_error = redactor.scanner().last_error();
      return StreamResult::kEngineError;
    }
    for (Finding& f : findings) f.offset += long_base;
    report(rs == RedactStatus::kMasked);
    long_base += consumed;
    long_buf.erase(0, consumed);
    if (cb.output) {
      cb.output(masked);
      if (chunk.line_end && chunk.newline) cb.output("\n");
    }
    if (chunk.line_end) in_long = false;
  }
}

int process_inputs(const std::vector<std::string>& files, StreamMode mode, size_t max_line,
                   FollowingRedactor& redactor, const StreamCallbacks& cb, StreamStats& stats,
                   const std::function<bool()>& stop, size_t threads) {
  int rc = kExitOk;
  std::vector<std::string> inputs = files;
  if (inputs.empty()) inputs.push_back("-");
  for (const std::string& in : inputs) {
    int fd = 0;
    std::string name = "stdin";
    if (in != "-") {
      fd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
      name = in;
      if (fd < 0) {
        spdlog::error("{}: cannot open: {}", in, std::strerror(errno));
        rc = kExitIo;
        continue;
      }
    }
    int err = 0;
    StreamResult r = process_stream(fd, name, mode, max_line, redactor, cb, stats, &err, threads);
    if (fd != 0) ::close(fd);
    if (r == StreamResult::kEngineError) {
      if (cb.flush) cb.flush();
      spdlog::error("{}: the scanning engine failed (Hyperscan error {}); stopped without writing "
                    "the unscanned line",
                    name, stats.hs_error);
      return kExitEngine;
    }
    if (r == StreamResult::kReadError) {
      spdlog::error("{}: read error: {}", name, std::strerror(err));
      rc = kExitIo;
    }
    if (stop && stop()) break;
  }
  return rc;
}

}  // namespace scrub
