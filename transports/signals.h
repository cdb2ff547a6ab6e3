// SignalForwarder: makes the stdio proxy transparent to signals.
//
// Promises: while started, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to the proxy
// are forwarded to the child's process group (ChildProcess::send_signal) and then reported to
// `on_signal(sig)`; the proxy itself is not killed by them. When the child exits, `on_signal(SIGCHLD)`
// is called exactly once (the child is reaped by then: ChildProcess::try_wait/wait return the
// status). Callbacks run on the forwarder's own thread, one at a time.
//
// How: the signals are blocked in every thread and read from a signalfd by one thread that also
// polls an eventfd for stop(). No async signal handler runs, so the callback may do anything
// except call stop() or destroy the forwarder.
//
// Requirements: call SignalForwarder::block_signals() in main() before any thread is started
// (threads inherit the mask; a thread that has them unblocked would take the default action,
// killing the proxy). Do not move the ChildProcess while a forwarder refers to it. Not handled:
// SIGTSTP/SIGTTIN/SIGTTOU (job control keeps its default meaning for the proxy), SIGPIPE (ignored,
// transports/fd_io.h), SIGWINCH and real-time signals.
#pragma once

#include <signal.h>

#include <array>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "transports/child_process.h"

namespace scrub {

// Setting up the forwarder failed (signalfd/eventfd/thread creation).
struct SignalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SignalForwarder {
 public:
  static constexpr std::array<int, 6> kForwardedSignals = {SIGINT,  SIGTERM, SIGHUP,
                                                           SIGQUIT, SIGUSR1, SIGUSR2};

  // Blocks kForwardedSignals and SIGCHLD in the calling thread (and so in threads it starts later).
  // Idempotent. Children started by ChildProcess do not inherit the mask.
  static void block_signals();

  SignalForwarder(ChildProcess& child, std::function<void(int sig)> on_signal);
  ~SignalForwarder();  // stop()
  SignalForwarder(const SignalForwarder&) = delete;
  SignalForwarder& operator=(const SignalForwarder&) = delete;

  // Calls block_signals() for the calling thread and starts the forwarding thread. A child that
  // already exited is reported right away. No-op if already started. Throws SignalError.
  void start();
  // Signals in `sigs` are not forwarded, only reported to on_signal (e.g. SIGHUP when mcp-scrub
  // itself reloads its secrets on it). Call before start().
  void intercept(std::vector<int> sigs) { intercepted_ = std::move(sigs); }
  // Stops and joins the thread; the signals stay blocked (pending ones stay pending). Idempotent.
  // Must not be called from on_signal.
  void stop();

 private:
  void run();
  void handle(int sig);

  ChildProcess& child_;
  std::function<void(int)> on_signal_;
  std::thread thread_;
  int signal_fd_ = -1;
  int stop_fd_ = -1;
  bool child_exit_reported_ = false;  // forwarder thread only
  std::vector<int> intercepted_;
};

}  // namespace scrub
