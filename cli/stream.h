// The line loop shared by `filter` and `scan`: frames a stream into lines, redacts each (text or
// JSON mode) and hands out the masked bytes and the findings. Lines longer than the limit are
// scanned in pieces with an overlap, never passed through unscanned.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "filter/alert_sink.h"
#include "filter/engine_holder.h"
#include "filter/redactor.h"

namespace scrub {

enum class StreamMode { kText, kJson };

struct StreamStats {
  uint64_t lines = 0;
  uint64_t bytes = 0;
  uint64_t masked_lines = 0;
  uint64_t findings = 0;
  uint64_t invalid_json = 0;
  uint64_t oversized = 0;
  int hs_error = 0;  // Hyperscan's error code when the engine failed on a line
};

struct StreamCallbacks {
  std::function<void(std::string_view)> output;   // null for scan: nothing is written
  std::function<void()> flush;                     // before a read that may block
  std::function<void(const Finding&, const AlertContext&)> finding;
  std::function<void(const std::string& kind, const std::string& msg, const AlertContext&)> incident;
  // Before the lines of each read are queued (a run of them, or one) and before each piece of
  // an overlong line: e.g. wait while secrets are stale (--max-secret-age).
  std::function<void()> before_line;
};

enum class StreamResult { kOk, kReadError, kEngineError };

// Runs process_stream over each input ("-" = stdin; none = stdin), logging unreadable files by
// name. Returns the command's exit code: kExitOk, kExitIo (an input could not be read; the others
// were still processed), or kExitEngine (stopped at the line the engine could not scan).
// `stop` is checked after each input (e.g. stdout went away).
//
// `threads` > 1 scans batches of lines on that many threads, the calling thread one of them.
// The output, the findings and the incidents come out in input order and are the same as with
// one thread; private-key blocks are followed in order before a batch is handed out, and an
// overlong line first drains every batch in flight, then is scanned in pieces on the calling
// thread. Whenever the input would block, every line read so far is scanned and written before
// `flush` is called.
int process_inputs(const std::vector<std::string>& files, StreamMode mode, size_t max_line,
                   FollowingRedactor& redactor, const StreamCallbacks& cb, StreamStats& stats,
                   const std::function<bool()>& stop = {}, size_t threads = 1);

// Each line is scanned with the set in force when it starts (the redactor follows its holder).
StreamResult process_stream(int fd, const std::string& source, StreamMode mode, size_t max_line,
                            FollowingRedactor& redactor, const StreamCallbacks& cb,
                            StreamStats& stats, int* read_errno, size_t threads = 1);

}  // namespace scrub
