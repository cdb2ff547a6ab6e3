#include "transports/signals.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <utility>

namespace scrub {

namespace {

sigset_t handled_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : SignalForwarder::kForwardedSignals) sigaddset(&set, sig);
  sigaddset(&set, SIGCHLD);
  return set;
}

SignalError setup_error(const char* what, int err) {
  return SignalError(std::string("mcp-scrub: signal forwarding: ") + what + ": " +
                     std::system_category().message(err));
}

}  // namespace

void SignalForwarder::block_signals() {
  sigset_t set = handled_set();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalForwarder::SignalForwarder(ChildProcess& child, std::function<void(int sig)> on_signal)
    : child_(child), on_signal_(std::move(on_signal)) {}

SignalForwarder::~SignalForwarder() { stop(); }

void SignalForwarder::start() {
  if (thread_.joinable()) return;
  block_signals();
  sigset_t set = handled_set();
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) throw setup_error("signalfd", errno);
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    int err = errno;
    ::close(sfd);
    throw setup_error("eventfd", err);
  }
  signal_fd_ = sfd;
  stop_fd_ = efd;
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    ::close(signal_fd_);
    ::close(stop_fd_);
    signal_fd_ = stop_fd_ = -1;
    throw setup_error("thread", e.code().value());
  }
}

void SignalForwarder::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  ::close(signal_fd_);
  ::close(stop_fd_);
  signal_fd_ = stop_fd_ = -1;
}

void SignalForwarder::run() {
  // The child may have exited before we started and its SIGCHLD been discarded (if the signals
  // were not blocked yet); look once so the exit is never missed.
  handle(SIGCHLD);
  pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;  // only EFAULT/EINVAL/ENOMEM; nothing sensible left to do
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    signalfd_siginfo info;
    for (;;) {
      ssize_t n = ::read(signal_fd_, &info, sizeof info);
      if (n == static_cast<ssize_t>(sizeof info)) {
        handle(static_cast<int>(info.ssi_signo));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // EAGAIN: drained
    }
  }
}

void SignalForwarder::handle(int sig) {
  if (sig == SIGCHLD) {
    // SIGCHLD only says "some child changed state" and several coalesce into one: ask ours.
    if (!child_exit_reported_ && child_.try_wait().has_value()) {
      child_exit_reported_ = true;
      if (on_signal_) on_signal_(SIGCHLD);
    }
    return;
  }
  bool intercepted = false;
  for (int s : intercepted_) intercepted |= s == sig;
  if (!intercepted) child_.send_signal(sig);
  if (on_signal_) on_signal_(sig);
}

}  // namespace scrub
