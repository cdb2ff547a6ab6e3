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
                         Findings& findings, bool& invalid_json) {
  masked.clear();
  invalid_json = false;
  if (mode == StreamMode::kJson) {
    JsonInfo info;
    RedactStatus rs = redactor.redact_json(line, masked, findings, &info);
    invalid_json = !info.valid && !line.empty();
    return rs;
  }
  if (pem_text == nullptr) return redactor.redact_text(line, masked, findings);
  Finding f;
  f.rule_id = PemBlockTracker::kRuleId;
  f.offset = 0;
  f.length = line_len;
  f.severity = Severity::kCritical;
  findings.push_back(std::move(f));
  // What the line holds besides the key (before its BEGIN marker, after its END) is scanned like
  // any text.
  RedactStatus rs = redactor.redact_text(*pem_text, masked, findings);
  if (rs == RedactStatus::kError) return rs;
  if (rs == RedactStatus::kClean) masked.swap(*pem_text);
  return RedactStatus::kMasked;
}

constexpr const char* kInvalidJsonMessage = "line is not valid JSON; masked as text";

// `--threads`: complete lines are gathered into batches in input order, each batch is redacted
// on a pool thread with a Redactor of its own, and the batches are written back in order.
class ParallelLines {
 public:
  ParallelLines(const EngineHolder& holder, StreamMode mode, size_t threads,
                const StreamCallbacks& cb, StreamStats& stats, const std::string& source)
      : holder_(holder), mode_(mode), max_in_flight_(2 * threads + 1), cb_(cb), stats_(stats),
        pool_(threads) {
    ctx_.source = source;
  }
  ~ParallelLines() { pool_.join(); }  // before the batches the tasks point at go away

  // Queues one complete line. False once the engine failed on an earlier line.
  bool add(std::string_view line, const std::string* pem_text, bool cr, bool newline,
           uint64_t line_no) {
    if (!open_) open_ = std::make_unique<Batch>();
    Batch& b = *open_;
    Line l;
    l.off = b.text.size();
    l.orig_len = line.size();
    l.no = line_no;
    l.cr = cr;
    l.newline = newline;
    l.pem = pem_text != nullptr;
    b.text.append(pem_text != nullptr ? std::string_view(*pem_text) : line);
    l.len = b.text.size() - l.off;
    b.lines.push_back(l);
    if (b.text.size() >= kBatchBytes || b.lines.size() >= kBatchLines) dispatch();
    return !failed_;
  }

  // Scans and writes every line queued so far. False if the engine failed on one of them (the
  // lines before it are written; it and the lines after it are not).
  bool drain() {
    dispatch();
    while (!in_flight_.empty() && !failed_) emit_front();
    return !failed_;
  }

 private:
  static constexpr size_t kBatchBytes = 128 * 1024;
  static constexpr size_t kBatchLines = 2048;

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
    std::vector<Hit> hits;
    std::vector<uint64_t> invalid_json;
    uint64_t masked_lines = 0;
    bool engine_error = false;
    bool done = false;  // guarded by ParallelLines::mu_
  };

  void dispatch() {
    if (!open_ || open_->lines.empty()) return;
    Batch* b = open_.get();
    in_flight_.push_back(std::move(open_));
    boost::asio::post(pool_, [this, b] { run(*b); });
    while (in_flight_.size() > max_in_flight_ && !failed_) emit_front();
  }

  void run(Batch& b) {
    std::unique_ptr<FollowingRedactor> r = take_redactor();
    Redactor& redactor = r->current();
    std::string masked, pem_text;
    Findings findings;
    b.out.reserve(b.text.size() + b.text.size() / 8);
    for (const Line& l : b.lines) {
      std::string_view text(b.text.data() + l.off, l.len);
      bool invalid = false;
      if (l.pem) pem_text.assign(text);
      RedactStatus rs = redact_line(redactor, mode_, text, l.orig_len,
                                    l.pem ? &pem_text : nullptr, masked, findings, invalid);
      if (rs == RedactStatus::kError) {
        b.engine_error = true;
        break;
      }
      if (invalid) b.invalid_json.push_back(l.no);
      if (rs == RedactStatus::kMasked) ++b.masked_lines;
      for (Finding& f : findings) b.hits.push_back({std::move(f), l.no});
      findings.clear();
      b.out.append(rs == RedactStatus::kMasked ? std::string_view(masked) : text);
      if (l.cr) b.out.push_back('\r');
      if (l.newline) b.out.push_back('\n');
    }
    give_back(std::move(r));
    {
      std::lock_guard<std::mutex> lock(mu_);
      b.done = true;
    }
    done_cv_.notify_all();
  }

  void emit_front() {
    Batch& b = *in_flight_.front();
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
    if (cb_.output) cb_.output(b.out);
    if (b.engine_error) failed_ = true;
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

  const EngineHolder& holder_;
  const StreamMode mode_;
  const size_t max_in_flight_;
  const StreamCallbacks& cb_;
  StreamStats& stats_;
  AlertContext ctx_;
  std::unique_ptr<Batch> open_;
  std::deque<std::unique_ptr<Batch>> in_flight_;
  bool failed_ = false;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::vector<std::unique_ptr<FollowingRedactor>> idle_;
  boost::asio::thread_pool pool_;  // last: joined (in ~ParallelLines) before the rest goes
};

}  // namespace

StreamResult process_stream(int fd, const std::string& source, StreamMode mode, size_t max_line,
                            FollowingRedactor& following, const StreamCallbacks& cb,
                            StreamStats& stats, int* read_errno, size_t threads) {
  std::unique_ptr<ParallelLines> par;
  if (threads > 1)
    par = std::make_unique<ParallelLines>(following.holder(), mode, threads, cb, stats, source);
  bool par_failed = false;
  // Before a read that may block: everything read so far goes out first.
  LineReader reader(fd, max_line, [&] {
    if (par && !par->drain()) par_failed = true;
    if (cb.flush) cb.flush();
  });
  // Bytes of an overlong line kept back for the next piece: a secret may straddle the cut.
  const size_t overlap = std::min<size_t>(64 * 1024, std::max<size_t>(max_line / 2, 1));
  std::string long_buf, masked;
  bool in_long = false;
  size_t long_base = 0;  // offset of long_buf[0] within the overlong line
  Findings findings;
  PemBlockTracker pem;  // text mode: private keys printed over several lines
  std::string pem_out;
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
    LineReader::Status st = reader.next(chunk);
    if (par_failed) return StreamResult::kEngineError;
    if (st != LineReader::Status::kData && par && !par->drain()) return StreamResult::kEngineError;
    if (st == LineReader::Status::kEof) return StreamResult::kOk;
    if (st == LineReader::Status::kError) {
      if (read_errno) *read_errno = reader.error();
      return StreamResult::kReadError;
    }
    stats.bytes += chunk.data.size() + (chunk.newline ? 1 : 0);
    if (cb.before_line) cb.before_line();
    Redactor& redactor = following.current();
    if (!in_long && chunk.line_end) {
      ++stats.lines;
      ctx.line = stats.lines;
      std::string_view line = chunk.data;
      std::string_view cr;
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
        cr = "\r";
      }
      const bool pem_line = mode == StreamMode::kText && pem.process(line, pem_out);
      if (par) {
        if (!par->add(line, pem_line ? &pem_out : nullptr, !cr.empty(), chunk.newline,
                      stats.lines))
          return StreamResult::kEngineError;
        continue;
      }
      bool invalid = false;
      RedactStatus rs = redact_line(redactor, mode, line, line.size(),
                                    pem_line ? &pem_out : nullptr, masked, findings, invalid);
      if (rs == RedactStatus::kError) return StreamResult::kEngineError;
      if (invalid) {
        ++stats.invalid_json;
        if (cb.incident) cb.incident("invalid-json", kInvalidJsonMessage, ctx);
      }
      report(rs == RedactStatus::kMasked);
      if (cb.output) {
        cb.output(rs == RedactStatus::kMasked ? std::string_view(masked) : line);
        cb.output(cr);
        if (chunk.newline) cb.output("\n");
      }
      continue;
    }
    // An overlong line, arriving in pieces, after every line before it.
    if (par && !par->drain()) return StreamResult::kEngineError;
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
    if (rs == RedactStatus::kError) return StreamResult::kEngineError;
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
                    name, redactor.current().scanner().last_error());
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
