// Live secret sources and rotation. Owns the known values in force and rebuilds the compiled set
// off the data path: on --secrets-refresh, on SIGHUP (trigger()), and once at start.
//
// Promises:
//  - A reload that fails (a secrets command exits non-zero or times out, a file cannot be read, a
//    rule file no longer compiles) keeps the last good set and raises a "reload-failed" alert.
//  - A value that disappears from the sources stays masked for the rotation grace, then is
//    dropped. A value that comes back leaves the grace list.
//  - The swap is atomic (EngineHolder): no message is scanned by neither set.
//  - Alerts and logs say what changed in counts only, never a value or a value's name.
//  - stale(): the last successful refresh is older than --max-secret-age; callers fail closed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <pthread.h>

#include "cli/engine_config.h"
#include "filter/alert_sink.h"
#include "filter/engine_holder.h"

namespace scrub {

// What a refused request is told while the secrets are stale (--max-secret-age).
inline constexpr const char* kStaleSecretsMessage =
    "mcp-scrub: the known secrets have not been refreshed within --max-secret-age; nothing is "
    "forwarded until a refresh succeeds";
inline constexpr int kStaleSecretsCode = -32004;

struct ReloadCounts {
  size_t values = 0, added = 0, removed = 0, in_grace = 0, expired = 0, rules = 0;
};

class Reloader {
 public:
  using Clock = std::chrono::steady_clock;

  // Builds the first set; throws ConfigError when it cannot (there is no last good set yet).
  Reloader(const EngineConfig& config, char** envp);
  ~Reloader();

  EngineHolder& holder() { return *holder_; }
  size_t known_values() const;
  // Periodic refresh and trigger() run on a background thread when a live source is configured
  // (reloads_configured()); without one, trigger() builds on the calling thread.
  void start(AlertSink* sink);
  void stop();
  void trigger();
  // One reload now, on the calling thread. Returns false when it failed (last good set kept).
  bool reload_now(AlertSink* sink);
  bool stale() const;
  bool reloads_configured() const;  // --secrets-cmd or --secrets-refresh given
  ReloadCounts last_counts() const;

  // Blocks SIGHUP in the calling thread (call before starting threads) and starts a thread that
  // turns each SIGHUP into trigger(). For commands without a child to forward it to.
  void reload_on_sighup();

  // For tests: the clock the grace and age are measured with.
  void set_clock_for_test(std::function<Clock::time_point()> now) { now_ = std::move(now); }

 private:
  struct Graced {
    std::string name;
    Clock::time_point expires;
  };
  bool build(AlertSink* sink, bool initial);
  void run();

  EngineConfig config_;
  char** envp_;
  std::unique_ptr<EngineHolder> holder_;
  std::chrono::milliseconds refresh_{0}, grace_{std::chrono::hours(24)}, max_age_{0};
  std::function<Clock::time_point()> now_ = [] { return Clock::now(); };

  mutable std::mutex mu_;  // guards the fields below
  std::map<std::string, std::string> current_;  // value -> name
  std::map<std::string, Graced> graced_;        // value -> name, expiry
  Clock::time_point last_success_;
  ReloadCounts counts_;

  std::mutex build_mu_;  // one reload at a time
  std::mutex run_mu_;    // guards pending_ and stopping_
  std::condition_variable cv_;
  bool pending_ = false, stopping_ = false;
  AlertSink* sink_ = nullptr;
  std::thread thread_;
  std::optional<pthread_t> hup_thread_;  // reload_on_sighup's
};

}  // namespace scrub
