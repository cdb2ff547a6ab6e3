#include "cli/stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "cli/engine_config.h"

#include "filter/pem_blocks.h"
#include "transports/line_reader.h"

namespace scrub {

StreamResult process_stream(int fd, const std::string& source, StreamMode mode, size_t max_line,
                            FollowingRedactor& following, const StreamCallbacks& cb,
                            StreamStats& stats, int* read_errno) {
  LineReader reader(fd, max_line, cb.flush);
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
      masked.clear();
      RedactStatus rs;
      if (mode == StreamMode::kJson) {
        JsonInfo info;
        rs = redactor.redact_json(line, masked, findings, &info);
        if (!info.valid && !line.empty()) {
          ++stats.invalid_json;
          if (cb.incident) cb.incident("invalid-json", "line is not valid JSON; masked as text", ctx);
        }
      } else if (pem.process(line, pem_out)) {
        Finding f;
        f.rule_id = PemBlockTracker::kRuleId;
        f.offset = 0;
        f.length = line.size();
        f.severity = Severity::kCritical;
        findings.push_back(std::move(f));
        // What the line holds besides the key (before its BEGIN marker, after its END) is
        // scanned like any text.
        rs = redactor.redact_text(pem_out, masked, findings);
        if (rs == RedactStatus::kClean) masked.swap(pem_out);
        if (rs != RedactStatus::kError) rs = RedactStatus::kMasked;
      } else {
        rs = redactor.redact_text(line, masked, findings);
      }
      if (rs == RedactStatus::kError) return StreamResult::kEngineError;
      report(rs == RedactStatus::kMasked);
      if (cb.output) {
        cb.output(rs == RedactStatus::kMasked ? std::string_view(masked) : line);
        cb.output(cr);
        if (chunk.newline) cb.output("\n");
      }
      continue;
    }
    // An overlong line, arriving in pieces.
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
                   const std::function<bool()>& stop) {
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
    StreamResult r = process_stream(fd, name, mode, max_line, redactor, cb, stats, &err);
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
