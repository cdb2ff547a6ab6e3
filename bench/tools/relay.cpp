// Benchmark baseline: a stdio relay that does no work, to put the stdio wrap's figures next to
// what one more process in the pipe costs by itself.
//
//   relay [--busy-us N] [--busy-poll-us N] [--direct-requests] [IGNORED...] -- COMMAND [ARGS...]
//
// Starts COMMAND with pipes on its stdin and stdout and copies bytes both ways on two threads,
// as they come, with the wrap's 256 KiB buffers on the server's stdout and on its own stdout.
// Options before `--` other than its own are ignored, so rtt_bench can pass it the wrap's.
// --busy-us N spins N microseconds before forwarding each chunk the server sends: a stand-in
// for scanning time, to see how the round trip grows with the work done per message.
// --busy-poll-us N polls each input for up to N microseconds before a read that would sleep, as
// the wrap's pumps do (its option of the same name; the relay's default is 0, never): what the
// hop costs when neither side of it sleeps.
// --direct-requests gives COMMAND the relay's own stdin: only the responses take the extra hop,
// what a proxy out of the request path (no request tracking, no refusing requests) would cost.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "transports/fd_io.h"

namespace {

void pump(int from, int to, long busy_us, long poll_us) {
  std::vector<char> buf(256 * 1024);
  for (;;) {
    if (poll_us > 0) scrub::poll_readable_for(from, std::chrono::microseconds(poll_us));
    const ssize_t n = scrub::read_some(from, buf.data(), buf.size());
    if (n <= 0) break;
    if (busy_us > 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(busy_us);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    if (!scrub::write_all(to, std::string_view(buf.data(), static_cast<size_t>(n)))) break;
  }
  ::close(to);
}

}  // namespace

int main(int argc, char** argv) {
  long busy_us = 0, poll_us = 0;
  bool direct_requests = false;
  int cmd = 1;
  for (; cmd < argc && std::strcmp(argv[cmd], "--") != 0; ++cmd) {
    if (!std::strcmp(argv[cmd], "--busy-us") && cmd + 1 < argc) busy_us = std::atol(argv[++cmd]);
    if (!std::strcmp(argv[cmd], "--busy-poll-us") && cmd + 1 < argc) poll_us = std::atol(argv[++cmd]);
    if (!std::strcmp(argv[cmd], "--direct-requests")) direct_requests = true;
  }
  if (++cmd >= argc) {
    std::fprintf(stderr,
                 "usage: relay [--busy-us N] [--busy-poll-us N] [--direct-requests] [IGNORED...] -- COMMAND "
                 "[ARGS...]\n");
    return 2;
  }
  scrub::ignore_sigpipe();
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    std::perror("relay: pipe");
    return 1;
  }
  scrub::widen_pipe(out[0]);
  scrub::widen_pipe(STDOUT_FILENO);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("relay: fork");
    return 1;
  }
  if (pid == 0) {
    if (!direct_requests) ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::execvp(argv[cmd], argv + cmd);
    std::perror("relay: exec");
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  std::thread to_server;
  if (direct_requests) ::close(in[1]);  // the server reads our stdin itself
  else to_server = std::thread([&] { pump(STDIN_FILENO, in[1], 0, poll_us); });
  pump(out[0], STDOUT_FILENO, busy_us, poll_us);
  if (to_server.joinable()) to_server.detach();  // blocked on our stdin, which the client may keep open
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
