// ChildProcess: the wrapped MCP server, started with pipes for its stdio.
//
// Promises:
//  - spawn() either returns a child that has already exec'd the program, or throws SpawnError
//    before anything else happened (no child left behind, no fd leaked). The exit code follows the
//    shell: 127 not found, 126 found but not runnable, 125 the proxy itself could not start it.
//  - The child starts clean: default signal dispositions (even if the proxy ignores SIGPIPE), an
//    empty signal mask, only fds 0-2 open, exactly the environment given, its own process group
//    (by default), and SIGKILL if the proxy's spawning thread dies (PR_SET_PDEATHSIG).
//  - A ChildProcess is always reaped: the destructor of a still-running child sends SIGTERM to its
//    group, waits up to 2 s, then SIGKILL, and reaps it. No zombie is left behind.
//  - send_signal(), try_wait(), wait() and wait_for() may be called concurrently from different
//    threads (the SignalForwarder thread signals while the proxy loop waits). A reaped pid is never
//    signalled, so a recycled pid cannot be hit. The fd accessors and close_*() are not
//    synchronised: one thread owns the pipes.
//
// Caveats: PR_SET_PDEATHSIG fires when the *thread* that called spawn() exits, so spawn from a
// thread that lives as long as the child (main()). Do not set SIGCHLD to SIG_IGN: the kernel would
// then reap the child itself and its status is lost (wait() returns -1).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace scrub {

// The child could not be started. `exit_code` is what the proxy should exit with: 127 when the
// program was not found (ENOENT, ENOTDIR), 126 when it exists but cannot be executed (EACCES,
// ENOEXEC, a directory, ...), 125 when the proxy failed to set it up (no command, pipe/fork
// failure). The message is ready for stderr: "mcp-scrub: cannot run 'foo': No such file or
// directory".
struct SpawnError : std::runtime_error {
  SpawnError(int exit_code, int error_number, const std::string& message)
      : std::runtime_error(message), exit_code(exit_code), error_number(error_number) {}
  int exit_code;
  int error_number;  // the errno behind it, 0 if none
};

struct ChildOptions {
  // argv[0] is looked up in PATH unless it contains '/': PATH is taken from `env` if it sets one,
  // else from the proxy's own environment, else the system default (confstr _CS_PATH). The lookup
  // happens in the proxy before fork, so "not found" costs no fork.
  std::vector<std::string> argv;
  // The child's complete environment, NAME=VALUE each. Empty means an empty environment, not
  // "inherit": use current_environment() for that.
  std::vector<std::string> env;
  bool own_process_group = true;  // setpgid(0, 0): signals reach the server and its helpers
  bool pipe_stdin = true;         // false: the child shares the proxy's fd
  bool pipe_stdout = true;
  bool pipe_stderr = true;
};

// The proxy's own environment as NAME=VALUE strings, in order.
std::vector<std::string> current_environment();

class ChildProcess {
 public:
  static constexpr std::chrono::milliseconds kTerminateGrace{2000};

  // Starts the child and returns once it has exec'd. Throws SpawnError (see above).
  static ChildProcess spawn(const ChildOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  // Terminates and reaps this object's current child first (as the destructor does).
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Closes the pipes; if the child has not been reaped: SIGTERM (+SIGCONT) to its group, up to
  // kTerminateGrace for it to exit, then SIGKILL; always reaps. May block up to kTerminateGrace.
  ~ChildProcess();

  pid_t pid() const { return pid_; }  // -1 for a moved-from object
  // Pollable fd (pidfd) that turns readable when the child exits, for the proxy loop's poll();
  // -1 if the kernel has no pidfd_open (< 5.3). Owned by this object, valid until destruction.
  int pidfd() const { return pidfd_; }

  // The proxy's ends of the pipes (blocking, close-on-exec); -1 if not piped or closed.
  int stdin_fd() const { return stdin_fd_; }
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }
  void close_stdin();   // the child reads end of file
  void close_stdout();
  void close_stderr();

  // Sends `sig` to the child's process group (so helpers it started get it too), or to its pid
  // when it has no group of its own or the group is gone. Returns false once the child has been
  // reaped (never signals a pid that may have been recycled) or if kill() failed.
  bool send_signal(int sig);

  // Non-blocking: the shell-style status (exit code, or 128 + signal number) once the child has
  // exited, std::nullopt while it runs. Reaps it the first time; later calls return the same.
  std::optional<int> try_wait();
  // Blocks until the child exits; shell-style status. -1 if the status was lost (someone else
  // reaped the child) or for a moved-from object.
  int wait();
  // Like wait() but gives up after `timeout`: then returns -1 and sets *timed_out (may be null).
  int wait_for(std::chrono::milliseconds timeout, bool* timed_out = nullptr);

 private:
  ChildProcess() = default;
  // Must hold mutex_. Returns true once reaped_ (now or before).
  bool reap_locked(bool block);
  void terminate_and_reap();
  void close_all_fds();
  void take(ChildProcess& other);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  bool own_process_group_ = true;
  mutable std::mutex mutex_;  // guards reaped_, status_, and the pid's validity for kill()
  bool reaped_ = false;
  int status_ = -1;
};

}  // namespace scrub
